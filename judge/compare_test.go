package judge

import (
	"strings"
	"testing"

	"github.com/verdictml/verdict/internal/shadowsim"
)

func TestCompareOrdersSegments(t *testing.T) {
	snap := shadowsim.Regressed().Snap
	for _, tc := range []struct {
		sort  string
		first string
		check func(a, b ReportRow) bool // a precedes b
	}{
		{SortDivergence, "electronics", func(a, b ReportRow) bool { return *a.PSI >= *b.PSI }},
		{SortRecall, "electronics", func(a, b ReportRow) bool { return *a.RecallDelta <= *b.RecallDelta }},
		{SortPrecision, "", func(a, b ReportRow) bool { return *a.PrecisionDelta <= *b.PrecisionDelta }},
		{SortFlagRate, "", func(a, b ReportRow) bool { return abs64(*a.FlagRateDelta) >= abs64(*b.FlagRateDelta) }},
		{SortSegment, "electronics", func(a, b ReportRow) bool { return a.Segment < b.Segment }},
	} {
		t.Run("sort by "+tc.sort, func(t *testing.T) {
			rep, err := Compare(snap, "v5", "v6", tc.sort, Config{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.first != "" && rep.Segments[0].Segment != tc.first {
				t.Errorf("first %s, want %s", rep.Segments[0].Segment, tc.first)
			}
			for i := 1; i < len(rep.Segments); i++ {
				if !tc.check(rep.Segments[i-1], rep.Segments[i]) {
					t.Errorf("%s before %s breaks the order", rep.Segments[i-1].Segment, rep.Segments[i].Segment)
				}
			}
		})
	}
	if _, err := Compare(snap, "v5", "v6", "vibes", Config{}); err == nil || !strings.Contains(err.Error(), `sort "vibes"`) {
		t.Errorf("unknown sort: %v", err)
	}
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestCompareRowCarriesBothVariantsNumbers(t *testing.T) {
	snap := shadowsim.SnapshotOf(shadowsim.Row("v5", "", 800, 200, 200, 8800), shadowsim.Row("v6", "", 600, 100, 400, 8900))
	rep, err := Compare(snap, "v5", "v6", "", Config{})
	if err != nil {
		t.Fatal(err)
	}
	o := rep.Overall
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"baseline recall", *o.Baseline.Recall, 0.8},
		{"candidate recall", *o.Candidate.Recall, 0.6},
		{"baseline precision", *o.Baseline.Precision, 0.8},
		{"candidate precision", *o.Candidate.Precision, 600.0 / 700},
		{"recall delta", *o.RecallDelta, -0.2},
		{"baseline flag rate", *o.Baseline.FlagRate, 0.1},
		{"candidate flag rate", *o.Candidate.FlagRate, 0.07},
		{"flag-rate delta", *o.FlagRateDelta, -0.03},
		{"baseline mean score = ScoreSum / Predictions", *o.Baseline.MeanScore, (0.9*1000 + 0.1*9000) / 10000},
		{"candidate coverage", *o.Candidate.LabelCoverage, 1},
		{"histogram share of bin 9", o.Candidate.ScoreHistogram[9], 0.07},
	} {
		if !near(tc.got, tc.want, 1e-12) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if o.Baseline.RecallCI.Lower >= 0.8 || o.Baseline.RecallCI.Upper <= 0.8 {
		t.Errorf("recall interval %+v does not cover 0.8", o.Baseline.RecallCI)
	}
	if rep.Decision != Fail || o.Decision != Fail || o.RecallPValue == nil {
		t.Errorf("decision %s/%s p %v, want fail with a p-value", rep.Decision, o.Decision, o.RecallPValue)
	}
}
