package cloudwatch

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// ratioN maps each ratio to the n the alarms guard it with (docs/alarms.md rule 1).
var ratioN = map[string]string{
	cwmetric.Precision: cwmetric.PredictedPositives, cwmetric.PrecisionLowerBound: cwmetric.PredictedPositives,
	cwmetric.Recall: cwmetric.LabeledPositives, cwmetric.RecallLowerBound: cwmetric.LabeledPositives,
	cwmetric.F1: cwmetric.ResolvedCount, cwmetric.FlagRate: cwmetric.PredictionCount, cwmetric.LabelCoverage: cwmetric.PredictionCount,
}

func TestFlushKeepsTheMetricContract(t *testing.T) {
	flushAt := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	healthy := []series{
		{variant: "fraud-v4", counts: counts(400, 100, 100, 9400)},
		{variant: "fraud-v5", counts: counts(410, 90, 90, 9410)},
		{variant: "fraud-v4", segmentKey: "merchant_category", segment: "travel", counts: counts(200, 50, 50, 4700)},
		{variant: "fraud-v5", segmentKey: "merchant_category", segment: "travel", counts: counts(205, 45, 45, 4705)},
	}
	regressing := []series{
		{variant: "fraud-v4", counts: counts(800, 200, 200, 18800)},
		{variant: "fraud-v5", counts: counts(700, 200, 300, 18800)},
		{variant: "fraud-v4", segmentKey: "merchant_category", segment: "travel", counts: counts(400, 100, 100, 9400)},
		{variant: "fraud-v5", segmentKey: "merchant_category", segment: "travel", counts: counts(300, 100, 200, 9400)},
		{variant: "fraud-v4", segmentKey: "merchant_category", segment: "grocery", counts: counts(400, 100, 100, 9400)},
		{variant: "fraud-v5", segmentKey: "merchant_category", segment: "grocery", counts: counts(400, 100, 100, 9400)},
	}
	v5 := dims("EndpointName=fraud-detector", "VariantName=fraud-v5")
	v4 := dims("EndpointName=fraud-detector", "VariantName=fraud-v4")
	vs := dims("EndpointName=fraud-detector", "VariantName=fraud-v5", "BaselineVariant=fraud-v4")
	pair := []judge.Pair{{Baseline: "fraud-v4", Candidate: "fraud-v5"}}

	tests := []struct {
		name   string
		series []series
		cfg    func(*Config)
		check  func(t *testing.T, ds []types.MetricDatum)
	}{
		{
			name:   "every ratio goes out with its n, in the same flush, with the same timestamp",
			series: healthy, cfg: func(c *Config) { c.Pairs = pair },
			check: func(t *testing.T, ds []types.MetricDatum) {
				for _, d := range ds {
					if !aws.ToTime(d.Timestamp).Equal(flushAt) {
						t.Errorf("%s %v at %v, want the flush time %v", aws.ToString(d.MetricName), dimMap(d.Dimensions), aws.ToTime(d.Timestamp), flushAt)
					}
					n, ok := ratioN[aws.ToString(d.MetricName)]
					if !ok {
						continue
					}
					if _, ok := find(ds, n, dimMap(d.Dimensions)); !ok {
						t.Errorf("%s %v published without its n %s", aws.ToString(d.MetricName), dimMap(d.Dimensions), n)
					}
				}
			},
		},
		{
			name:   "the baseline variant's own precision, recall and n are published",
			series: healthy, cfg: func(c *Config) { c.Pairs = pair },
			check: func(t *testing.T, ds []types.MetricDatum) {
				for m, want := range map[string]float64{
					cwmetric.Precision: 0.8, cwmetric.Recall: 0.8, cwmetric.PredictedPositives: 500, cwmetric.LabeledPositives: 500,
				} {
					d, ok := find(ds, m, v4)
					if !ok || !approxEqual(aws.ToFloat64(d.Value), want) {
						t.Errorf("baseline %s = %v (found %v), want %v", m, aws.ToFloat64(d.Value), ok, want)
					}
				}
			},
		},
		{
			name:   "SegmentRegressions is published as 0 when no segment regresses",
			series: healthy, cfg: func(c *Config) { c.Pairs = pair },
			check: func(t *testing.T, ds []types.MetricDatum) {
				d, ok := find(ds, cwmetric.SegmentRegressions, vs)
				if !ok || aws.ToFloat64(d.Value) != 0 {
					t.Errorf("SegmentRegressions %v found %v, want a 0 datapoint", aws.ToFloat64(d.Value), ok)
				}
				if d.Unit != types.StandardUnitCount {
					t.Errorf("SegmentRegressions unit %q, want Count", d.Unit)
				}
			},
		},
		{
			name:   "a regressing segment is counted and the deltas are published against the baseline",
			series: regressing, cfg: func(c *Config) { c.Pairs = pair },
			check: func(t *testing.T, ds []types.MetricDatum) {
				want := map[string]float64{
					cwmetric.SegmentRegressions: 1,
					cwmetric.RecallDelta:        0.7 - 0.8, cwmetric.PrecisionDelta: 700.0/900 - 0.8,
				}
				for m, w := range want {
					d, ok := find(ds, m, vs)
					if !ok || !approxEqual(aws.ToFloat64(d.Value), w) {
						t.Errorf("%s = %v (found %v), want %v", m, aws.ToFloat64(d.Value), ok, w)
					}
				}
				// The worst segment's recall is shown worse by at least this much: an
				// anytime-valid bound, so below zero but above the point estimate -0.2.
				if d, ok := find(ds, cwmetric.WorstSegmentRecallDelta, vs); !ok || !(aws.ToFloat64(d.Value) < 0 && aws.ToFloat64(d.Value) > 0.6-0.8) {
					t.Errorf("WorstSegmentRecallDelta = %v (found %v), want in (-0.2, 0)", aws.ToFloat64(d.Value), ok)
				}
			},
		},
		{
			name: "deltas are omitted while a variant has no labels, SegmentRegressions is not",
			series: []series{
				{variant: "fraud-v4", counts: counts(4, 1, 1, 94)},
				{variant: "fraud-v5", counts: tally.Counts{Predictions: 100, Flagged: 5}},
			},
			cfg: func(c *Config) { c.Pairs = pair },
			check: func(t *testing.T, ds []types.MetricDatum) {
				for _, m := range []string{cwmetric.RecallDelta, cwmetric.PrecisionDelta, cwmetric.WorstSegmentRecallDelta} {
					if _, ok := find(ds, m, vs); ok {
						t.Errorf("%s published while the candidate has no labels", m)
					}
				}
				if d, ok := find(ds, cwmetric.SegmentRegressions, vs); !ok || aws.ToFloat64(d.Value) != 0 {
					t.Errorf("SegmentRegressions missing or non-zero: %v", d.Value)
				}
			},
		},
		{
			name:   "undefined ratios are omitted while their counts are published",
			series: []series{{variant: "fraud-v5", counts: counts(0, 0, 0, 20)}},
			check: func(t *testing.T, ds []types.MetricDatum) {
				for _, m := range []string{cwmetric.Precision, cwmetric.Recall, cwmetric.F1, cwmetric.PrecisionLowerBound, cwmetric.RecallLowerBound} {
					if _, ok := find(ds, m, v5); ok {
						t.Errorf("undefined %s published", m)
					}
				}
				for m, want := range map[string]float64{
					cwmetric.LabeledPositives: 0, cwmetric.PredictedPositives: 0, cwmetric.TrueNegatives: 20,
					cwmetric.ResolvedCount: 20, cwmetric.PredictionCount: 20, cwmetric.FlagRate: 0, cwmetric.LabelCoverage: 1,
				} {
					if d, ok := find(ds, m, v5); !ok || aws.ToFloat64(d.Value) != want {
						t.Errorf("%s = %v (found %v), want %v", m, aws.ToFloat64(d.Value), ok, want)
					}
				}
			},
		},
		{
			name:   "precision and its n are omitted together while precision is not estimable",
			series: []series{{variant: "fraud-v5", counts: tally.Counts{Predictions: 1000, Flagged: 100, TP: 60, FN: 10, TN: 5}}},
			check: func(t *testing.T, ds []types.MetricDatum) {
				for _, m := range []string{cwmetric.Precision, cwmetric.PrecisionLowerBound, cwmetric.F1, cwmetric.PredictedPositives} {
					if d, ok := find(ds, m, v5); ok {
						t.Errorf("%s = %v published: 60 of 100 flagged predictions are resolved", m, aws.ToFloat64(d.Value))
					}
				}
				for m, want := range map[string]float64{
					cwmetric.Recall: 60.0 / 70, cwmetric.LabeledPositives: 70, cwmetric.TruePositives: 60, cwmetric.PredictionCount: 1000,
				} {
					if d, ok := find(ds, m, v5); !ok || !approxEqual(aws.ToFloat64(d.Value), want) {
						t.Errorf("%s = %v (found %v), want %v", m, aws.ToFloat64(d.Value), ok, want)
					}
				}
			},
		},
		{
			name:   "variant ids map to VariantName and EndpointConfigName by config",
			series: healthy,
			cfg: func(c *Config) {
				c.Pairs = pair
				c.Variants = map[string]Variant{
					"fraud-v4": {VariantName: "AllTraffic"},
					"fraud-v5": {VariantName: "AllTraffic", EndpointConfigName: "fraud-detector-v5"},
				}
			},
			check: func(t *testing.T, ds []types.MetricDatum) {
				for _, want := range []map[string]string{
					dims("EndpointName=fraud-detector", "VariantName=AllTraffic"),
					dims("EndpointName=fraud-detector", "VariantName=AllTraffic", "EndpointConfigName=fraud-detector-v5"),
					dims("EndpointName=fraud-detector", "VariantName=AllTraffic", "EndpointConfigName=fraud-detector-v5", "BaselineVariant=AllTraffic"),
				} {
					m := cwmetric.Precision
					if _, ok := want[cwmetric.DimBaselineVariant]; ok {
						m = cwmetric.SegmentRegressions
					}
					if _, ok := find(ds, m, want); !ok {
						t.Errorf("no %s with dimensions %v", m, want)
					}
				}
			},
		},
		{
			name:   "standard resolution by default, StorageResolution 1 when high resolution",
			series: healthy, cfg: func(c *Config) { c.HighResolution = true },
			check: func(t *testing.T, ds []types.MetricDatum) {
				for _, d := range ds {
					if aws.ToInt32(d.StorageResolution) != 1 {
						t.Fatalf("%s StorageResolution %v, want 1", aws.ToString(d.MetricName), d.StorageResolution)
					}
				}
			},
		},
		{
			name:   "no per-segment metrics unless the segment key is configured",
			series: healthy,
			check: func(t *testing.T, ds []types.MetricDatum) {
				for _, d := range ds {
					if _, ok := dimMap(d.Dimensions)[cwmetric.DimSegment]; ok {
						t.Fatalf("per-segment datum %s %v without TopSegments", aws.ToString(d.MetricName), dimMap(d.Dimensions))
					}
				}
			},
		},
		{
			name: "a variant without predictions in a top segment publishes its n's there as 0",
			series: []series{
				{variant: "fraud-v4", counts: counts(10, 0, 0, 0)},
				{variant: "fraud-v5", counts: counts(10, 0, 0, 0)},
				{variant: "fraud-v4", segmentKey: "merchant", segment: "travel", counts: counts(10, 0, 0, 0)},
			},
			cfg: func(c *Config) { c.TopSegments = map[string]int{"merchant": 1} },
			check: func(t *testing.T, ds []types.MetricDatum) {
				seg := dims("EndpointName=fraud-detector", "VariantName=fraud-v5", "SegmentKey=merchant", "Segment=travel")
				for _, m := range []string{cwmetric.LabeledPositives, cwmetric.PredictedPositives, cwmetric.PredictionCount} {
					if d, ok := find(ds, m, seg); !ok || aws.ToFloat64(d.Value) != 0 {
						t.Errorf("%s in the empty segment: %v (found %v), want 0", m, d.Value, ok)
					}
				}
				if _, ok := find(ds, cwmetric.Recall, seg); ok {
					t.Error("Recall published for an empty segment")
				}
			},
		},
		{
			name: "segments that are not valid dimension values are left out",
			series: []series{
				{variant: "fraud-v5", counts: counts(1, 1, 1, 1)},
				{variant: "fraud-v5", segmentKey: "merchant", segment: "café", counts: counts(1, 1, 1, 100)},
				{variant: "fraud-v5", segmentKey: "merchant", segment: "cafe", counts: counts(1, 1, 1, 1)},
			},
			cfg: func(c *Config) { c.TopSegments = map[string]int{"merchant": 1} },
			check: func(t *testing.T, ds []types.MetricDatum) {
				if _, ok := find(ds, cwmetric.PredictionCount, dims("EndpointName=fraud-detector", "VariantName=fraud-v5", "SegmentKey=merchant", "Segment=cafe")); !ok {
					t.Error("the valid segment did not take the top slot")
				}
				for _, d := range ds {
					if dimMap(d.Dimensions)[cwmetric.DimSegment] == "café" {
						t.Fatal("non-ASCII segment published")
					}
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{EndpointName: "fraud-detector"}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			ds := sentDatums(t, cfg, endAt{windowsOf(tc.series...), flushAt})
			if len(ds) == 0 {
				t.Fatal("no datums sent")
			}
			tc.check(t, ds)
		})
	}
}

func TestTopSegmentsByPredictionVolume(t *testing.T) {
	row := func(variant, key, seg string, predictions int64) window.Row {
		return window.Row{Key: tally.Key{Variant: variant, SegmentKey: key, Segment: seg}, Counts: tally.Counts{Predictions: predictions}}
	}
	tests := []struct {
		name string
		rows []window.Row
		topN map[string]int
		want []segmentID
	}{
		{
			name: "the N busiest segments of each configured key",
			rows: []window.Row{
				row("a", "mcc", "travel", 50), row("a", "mcc", "grocery", 300), row("a", "mcc", "gaming", 100),
				row("a", "country", "DE", 10), row("a", "country", "FR", 20),
			},
			topN: map[string]int{"mcc": 2, "country": 1},
			want: []segmentID{{"country", "FR"}, {"mcc", "gaming"}, {"mcc", "grocery"}},
		},
		{
			name: "volume is summed over variants so every variant publishes the same segments",
			rows: []window.Row{
				row("prod", "mcc", "travel", 100), row("shadow", "mcc", "travel", 100),
				row("prod", "mcc", "grocery", 150), row("shadow", "mcc", "grocery", 0),
			},
			topN: map[string]int{"mcc": 1},
			want: []segmentID{{"mcc", "travel"}},
		},
		{
			name: "ties go to the lower segment name",
			rows: []window.Row{row("a", "mcc", "b", 5), row("a", "mcc", "a", 5), row("a", "mcc", "c", 5)},
			topN: map[string]int{"mcc": 2},
			want: []segmentID{{"mcc", "a"}, {"mcc", "b"}},
		},
		{
			name: "unconfigured keys and N = 0 publish no segment",
			rows: []window.Row{row("a", "mcc", "travel", 5), row("a", "country", "DE", 5)},
			topN: map[string]int{"country": 0},
			want: nil,
		},
		{
			name: "N larger than the segments takes them all",
			rows: []window.Row{row("a", "mcc", "travel", 5), row("a", "", "", 1000)},
			topN: map[string]int{"mcc": 10},
			want: []segmentID{{"mcc", "travel"}},
		},
		{
			name: "invalid dimension values give their slot to the next segment",
			rows: []window.Row{row("a", "mcc", "", 900), row("a", "mcc", "   ", 800), row("a", "mcc", "ok", 1)},
			topN: map[string]int{"mcc": 1},
			want: []segmentID{{"mcc", "ok"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := slices.SortedFunc(maps.Keys(topSegments(tc.rows, tc.topN)), func(a, b segmentID) int {
				if a.Key != b.Key {
					return strings.Compare(a.Key, b.Key)
				}
				return strings.Compare(a.Value, b.Value)
			})
			if !slices.Equal(got, tc.want) {
				t.Errorf("top segments = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConfigValidateNamesEveryBadField(t *testing.T) {
	err := Config{
		EndpointName: "",
		Interval:     time.Millisecond,
		Variants:     map[string]Variant{"v": {VariantName: "naïve"}},
		Pairs:        []judge.Pair{{Baseline: "a", Candidate: "a"}, {Candidate: "b"}},
		TopSegments:  map[string]int{"mcc": -1},
		QueueSize:    -1,
	}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, field := range []string{"EndpointName", "Interval", `Variants["v"].VariantName`, "Pairs[0]", "Pairs[1]", `TopSegments["mcc"]`, "QueueSize"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
	if err := (Config{EndpointName: "fraud-detector"}).Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"standard resolution", Config{EndpointName: "e"}, Config{
			Namespace: "Verdict", EndpointName: "e", Window: window.Span(time.Hour), Interval: time.Minute,
			QueueSize: 10, MaxAttempts: 5, MaxBackoff: 20 * time.Second, SendTimeout: 30 * time.Second,
		}},
		{"high resolution flushes every 10 s", Config{EndpointName: "e", HighResolution: true}, Config{
			Namespace: "Verdict", EndpointName: "e", Window: window.Span(time.Hour), Interval: 10 * time.Second, HighResolution: true,
			QueueSize: 10, MaxAttempts: 5, MaxBackoff: 20 * time.Second, SendTimeout: 30 * time.Second,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.withDefaults(); fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("withDefaults() = %+v, want %+v", got, tc.want)
			}
		})
	}
}
