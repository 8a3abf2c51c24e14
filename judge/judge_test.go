package judge

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/verdictml/verdict/internal/shadowsim"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

func failingSegments(j Judgement) []string {
	var out []string
	for _, s := range j.Segments {
		if s.Decision == Fail {
			out = append(out, s.Segment)
		}
	}
	return out
}

func TestJudgeFailsTheRegressingCategoryOnly(t *testing.T) {
	snap := shadowsim.Snapshot(1, shadowsim.Categories(), shadowsim.Regress(shadowsim.Categories(), "electronics", 0.60))
	j, err := Judge(snap, "v5", "v6", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Decision != Fail {
		t.Fatalf("decision %s, want fail: %s", j.Decision, j.Reason)
	}
	if got := failingSegments(j); len(got) != 1 || got[0] != "electronics" {
		t.Errorf("failing segments %v, want [electronics]", got)
	}
	if j.SegmentRegressions != 1 {
		t.Errorf("segment regressions %d, want 1", j.SegmentRegressions)
	}
	if j.WorstSegment == nil || j.WorstSegment.Segment != "electronics" || *j.WorstSegmentRecallDelta > -0.1 {
		t.Errorf("worst segment %v delta %v, want electronics below -0.1", j.WorstSegment, j.WorstSegmentRecallDelta)
	}
	if !strings.Contains(j.Reason, "merchant_category=electronics") {
		t.Errorf("reason does not name the category: %s", j.Reason)
	}
	if j.Segments[0].Segment != "electronics" {
		t.Errorf("failing segment not listed first: %s", j.Segments[0].Segment)
	}
}

func TestJudgeNeverFailsWithoutRegression(t *testing.T) {
	j, err := Judge(shadowsim.Snapshot(1, shadowsim.Categories(), shadowsim.Categories()), "v5", "v6", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Decision == Fail {
		t.Fatalf("decision fail without regression: %s", j.Reason)
	}
	if j.SegmentRegressions != 0 || j.SegmentsRequired != 6 {
		t.Errorf("regressions %d required %d, want 0 and 6", j.SegmentRegressions, j.SegmentsRequired)
	}
	if j.Design != Paired {
		t.Errorf("design %s, want paired (shadow data)", j.Design)
	}
}

func TestJudgeDecisions(t *testing.T) {
	segs := func(v string, overall, fuel, travel, tiny [4]int64) []window.Row {
		r := func(seg string, c [4]int64) window.Row { return shadowsim.Row(v, seg, c[0], c[1], c[2], c[3]) }
		return []window.Row{r("", overall), r("fuel", fuel), r("travel", travel), r("tiny", tiny)}
	}
	// overallOnly is the baseline's and the candidate's overall counts, no segments.
	overallOnly := func(b, c [4]int64) window.Snapshot {
		return shadowsim.SnapshotOf(shadowsim.Row("v5", "", b[0], b[1], b[2], b[3]), shadowsim.Row("v6", "", c[0], c[1], c[2], c[3]))
	}
	even := [4]int64{80000, 20000, 20000, 880000}
	tinyOK := [4]int64{8, 2, 2, 88}
	for _, tc := range []struct {
		name     string
		snap     window.Snapshot
		cfg      Config
		want     Decision
		inReason string
	}{
		{"candidate without data is inconclusive and lists the variants",
			shadowsim.SnapshotOf(shadowsim.Row("v5", "", 800, 200, 200, 8800)), Config{},
			Inconclusive, `no data for candidate "v6" in 24h (variants with data: v5)`},
		{"baseline without data is inconclusive",
			shadowsim.SnapshotOf(shadowsim.Row("v6", "", 800, 200, 200, 8800)), Config{},
			Inconclusive, `no data for baseline "v5"`},
		{"a candidate that looks as good on few labels is inconclusive, not pass, and says what it needs",
			overallOnly([4]int64{800, 200, 200, 8800}, [4]int64{48, 10, 12, 900}), Config{},
			Inconclusive, "recall in overall: recall 0.800 → 0.800 (+0.000; difference in ["},
		{"the inconclusive reason counts the labels still needed",
			overallOnly([4]int64{800, 200, 200, 8800}, [4]int64{48, 10, 12, 900}), Config{},
			Inconclusive, "more labeled positives (TP+FN)"},
		{"equal performance on many labels passes",
			overallOnly(even, even), Config{},
			Pass, "shown not worse"},
		{"a clearly better candidate passes",
			overallOnly([4]int64{700, 300, 300, 8700}, [4]int64{850, 150, 150, 8850}), Config{},
			Pass, ""},
		{"a drop fails",
			overallOnly([4]int64{8000, 2000, 2000, 88000}, [4]int64{7000, 2000, 3000, 88000}), Config{},
			Fail, "recall in overall 0.800 → 0.700"},
		{"a drop far inside the tolerance passes",
			overallOnly([4]int64{80000, 20000, 20000, 880000}, [4]int64{79900, 20000, 20100, 880000}), Config{},
			Pass, ""},
		{"with zero tolerance an equal candidate can never pass",
			overallOnly(even, even),
			Config{RecallTolerance: -1},
			Inconclusive, "it can pass only if that shrinks below the tolerance"},
		{"a segment regression fails and is named",
			shadowsim.SnapshotOf(append(segs("v5", [4]int64{160008, 40002, 40002, 1760088}, even, even, tinyOK),
				segs("v6", [4]int64{140008, 40002, 60002, 1760088}, even, [4]int64{60000, 20000, 40000, 880000}, tinyOK)...)...),
			Config{},
			Fail, "recall in merchant_category=travel 0.800 → 0.600"},
		{"a tiny segment is not required for a pass",
			shadowsim.SnapshotOf(append(segs("v5", [4]int64{160008, 40002, 40002, 1760088}, even, even, tinyOK),
				segs("v6", [4]int64{160006, 40002, 40004, 1760088}, even, even, [4]int64{6, 2, 4, 88})...)...),
			Config{},
			Pass, "in 2 required segment(s)"},
		{"a segment required by name must pass too",
			shadowsim.SnapshotOf(append(segs("v5", [4]int64{160008, 40002, 40002, 1760088}, even, even, tinyOK),
				segs("v6", [4]int64{160006, 40002, 40004, 1760088}, even, even, [4]int64{6, 2, 4, 88})...)...),
			Config{RequiredSegments: []string{"merchant_category=tiny"}},
			Inconclusive, "recall in merchant_category=tiny"},
		{"a required segment the candidate has no labels in keeps it inconclusive",
			shadowsim.SnapshotOf(append(segs("v5", [4]int64{160008, 40002, 40002, 1760088}, even, even, tinyOK),
				shadowsim.Row("v6", "", 80000, 20000, 20000, 880000), shadowsim.Row("v6", "fuel", 80000, 20000, 20000, 880000))...),
			Config{},
			Inconclusive, "recall in merchant_category=travel: no labels yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := Judge(tc.snap, "v5", "v6", tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if j.Decision != tc.want || !strings.Contains(j.Reason, tc.inReason) {
				t.Errorf("got %s: %s\nwant %s containing %q", j.Decision, j.Reason, tc.want, tc.inReason)
			}
			if _, err := json.Marshal(j); err != nil {
				t.Errorf("judgement does not encode: %v", err)
			}
		})
	}
}

// pairRow is a pair series of v5 (first) and v6 over labeled positives: only v5
// flagged b, only v6 c, both both, neither neither.
func pairRow(segment string, b, c, both, neither int64) window.PairRow {
	k := tally.Key{Variant: "v5", Versus: "v6"}
	if segment != "" {
		k.SegmentKey, k.Segment = "merchant_category", segment
	}
	var p tally.PairCounts
	p[tally.ClassPositive] = [tally.Agreements]int64{neither, b, c, both}
	p[tally.ClassNegative][tally.Neither] = 9000 // the labeled negatives neither flagged
	return window.PairRow{Key: k, Counts: p}
}

func TestPairedDesignUsesTheSameLabels(t *testing.T) {
	// Both variants: 1000 labeled positives; v5 catches 900, v6 880. Unpaired, 20
	// fewer catches in 1000 is noise; paired, 30 catches only v5 made against 10
	// only v6 made is evidence the candidate is worse — and the judge says where.
	rows := []window.Row{shadowsim.Row("v5", "", 900, 100, 100, 8900), shadowsim.Row("v6", "", 880, 100, 120, 8900)}
	unpaired, err := Judge(shadowsim.SnapshotOf(rows...), "v5", "v6", Config{RecallTolerance: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	snap := shadowsim.SnapshotOf(rows...)
	snap.Pairs = []window.PairRow{pairRow("", 30, 10, 870, 90)}
	paired, err := Judge(snap, "v5", "v6", Config{RecallTolerance: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	if unpaired.Design != Unpaired || paired.Design != Paired {
		t.Fatalf("designs %s and %s, want unpaired and paired", unpaired.Design, paired.Design)
	}
	r := paired.Overall.Recall
	if *r.OnlyBaseline != 30 || *r.OnlyCandidate != 10 || r.Baseline.Successes != 900 || r.Candidate.Successes != 880 || r.Baseline.N != 1000 {
		t.Errorf("paired recall %+v, want 30 vs 10 discordant of 1000, 900 vs 880 caught", r)
	}
	// The paired bounds are narrower than the unpaired ones on the same labels.
	pw := *r.DeltaUpper - *r.DeltaLower
	uw := *unpaired.Overall.Recall.DeltaUpper - *unpaired.Overall.Recall.DeltaLower
	if !(pw < uw/2) {
		t.Errorf("paired bounds %.3f wide, unpaired %.3f: pairing must carry more information", pw, uw)
	}
	// McNemar's exact sequential p-value on 30 vs 10 discordant pairs, by hand:
	// 1/e with e = B(30.5, 10.5)/B(½, ½) · 2⁴⁰.
	want := math.Exp(-(logBeta(30.5, 10.5) - logBeta(0.5, 0.5) + 40*math.Log(2)))
	if !near(*r.PValue, want, 1e-12) {
		t.Errorf("paired recall p %v, want McNemar's %v", *r.PValue, want)
	}
	if paired.Overall.Discordance == nil || paired.Overall.Discordance.Pairs != 10000 {
		t.Errorf("discordance %+v, want over 10000 pairs", paired.Overall.Discordance)
	}
}

func TestJudgeRejectsUnjudgeableInput(t *testing.T) {
	snap := shadowsim.SnapshotOf(shadowsim.Row("v5", "", 1, 1, 1, 1))
	for _, tc := range []struct {
		name, base, cand string
		cfg              Config
		want             string
	}{
		{"same variant twice", "v5", "v5", Config{}, `baseline and candidate are both "v5"`},
		{"empty baseline", "", "v6", Config{}, "baseline variant is empty"},
		{"empty candidate", "v5", "", Config{}, "candidate variant is empty"},
		{"alpha out of range", "v5", "v6", Config{Alpha: 1.5}, "Alpha: 1.5 must be in (0, 1)"},
		{"beta out of range", "v5", "v6", Config{Beta: 2}, "Beta: 2 must be in (0, 1)"},
		{"a required segment without a value", "v5", "v6", Config{RequiredSegments: []string{"electronics"}}, `RequiredSegments: "electronics": want key=value`},
		{"an unknown pass metric", "v5", "v6", Config{PassMetrics: []Metric{"f1"}}, `PassMetrics: "f1"`},
		{"psi levels inverted", "v5", "v6", Config{PSIWarn: 0.3, PSIAlert: 0.2}, "PSIWarn/PSIAlert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Judge(snap, tc.base, tc.cand, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestJudgeLabelFreeSignals(t *testing.T) {
	// Same labels, but the candidate flags twice as often and its scores moved up.
	base := shadowsim.Row("v5", "", 800, 200, 200, 8800)
	cand := shadowsim.Row("v6", "", 800, 200, 200, 8800)
	cand.Counts.Flagged = 2000
	cand.Counts.Bins = [tally.ScoreBins]int64{0, 0, 0, 0, 0, 0, 0, 0, 9000, 1000}
	cand.Counts.ScoreSum = 8000
	j, err := Judge(shadowsim.SnapshotOf(base, cand), "v5", "v6", Config{RecallTolerance: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	o := j.Overall
	if o.FlagRate.Level != LevelWarn || !near(*o.FlagRate.Delta, 0.1, 1e-12) {
		t.Errorf("flag rate %+v, want warn with delta 0.1", o.FlagRate)
	}
	if o.Score.Level != LevelAlert || *o.Score.PSI < 0.25 {
		t.Errorf("score shift %+v, want alert", o.Score)
	}
	if !near(*o.Score.BaselineMean, 0.18, 1e-12) || !near(*o.Score.CandidateMean, 0.8, 1e-12) || !near(*o.Score.MeanDelta, 0.62, 1e-12) {
		t.Errorf("means %v %v %v, want ScoreSum/Predictions = 0.18 and 0.8", *o.Score.BaselineMean, *o.Score.CandidateMean, *o.Score.MeanDelta)
	}
	if j.Decision != Pass {
		t.Errorf("label-free signals must not change the decision: %s", j.Decision)
	}
	if len(j.Warnings) != 2 {
		t.Errorf("warnings %q, want flag rate and PSI", j.Warnings)
	}
}

func TestJudgeSurvivesCorruptCounts(t *testing.T) {
	bad := shadowsim.Row("v6", "", 800, 200, 200, 8800)
	bad.Counts.Flagged = bad.Counts.Predictions + 5
	bad.Counts.TP = -3
	bad.Counts.ScoreSum = math.NaN()
	bad.Counts.Bins[0] = -1
	for _, cand := range []window.Row{bad, shadowsim.Row("v6", "", 0, 0, 0, 0)} {
		j, err := Judge(shadowsim.SnapshotOf(shadowsim.Row("v5", "", 800, 200, 200, 8800), cand), "v5", "v6", Config{})
		if err != nil {
			t.Fatal(err)
		}
		if j.Decision == Fail {
			t.Errorf("corrupt or empty counts failed the candidate: %s", j.Reason)
		}
		if _, err := json.Marshal(j); err != nil {
			t.Errorf("judgement does not encode: %v", err)
		}
	}
}

func TestPrecisionIsNotJudgedWhileNotEstimable(t *testing.T) {
	// Positive-only early labels: 80 flagged predictions of which 70 labeled fraud and
	// 10 still open, for both variants; the candidate's resolved precision looks
	// worse (60/70 against 70/70), but most of its open flags could be fraud too.
	base := shadowsim.Row("v5", "", 70, 0, 10, 0)
	cand := shadowsim.Row("v6", "", 60, 10, 20, 0)
	for _, r := range []*window.Row{&base, &cand} {
		r.Counts.Predictions += 1000
		r.Counts.Flagged += 10 // open flagged predictions: precision not estimable
	}
	j, err := Judge(shadowsim.SnapshotOf(base, cand), "v5", "v6", Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := j.Overall.Precision
	if p.Decision != Inconclusive || !strings.Contains(p.Reason, "not yet estimable for the baseline") || p.PValue != nil {
		t.Errorf("precision %s (p %v): %s; want inconclusive, untested while not estimable", p.Decision, p.PValue, p.Reason)
	}
}
