package prom

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

func TestCollectorReadsTheCurrentSnapshot(t *testing.T) {
	w := window.New(5*time.Minute, time.Hour)
	b := time.Now().Unix() / 300 * 300
	w.Observe([]tally.Delta{
		{Key: tally.Key{Variant: "v5"}, Bucket: b, Counts: tally.Counts{Predictions: 10, Flagged: 4, TP: 3, FP: 1, FN: 1, TN: 5}},
		{Key: tally.Key{Variant: "v6"}, Bucket: b, Counts: tally.Counts{Predictions: 3, TN: 3}},
	})
	unmatched := int64(7)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(w, []window.Span{window.AllTime, window.Span(time.Hour)}, func(context.Context) (int64, error) { return unmatched, nil }, nil))
	got := gather(t, reg)
	want := map[string]float64{
		"verdict_precision,variant=v5,window=all":                    0.75,
		"verdict_recall,variant=v5,window=1h":                        0.75,
		"verdict_outcomes,outcome=tp,variant=v5,window=all":          3,
		"verdict_outcomes,outcome=tn,variant=v6,window=1h":           3,
		"verdict_predictions,variant=v6,window=all":                  3,
		"verdict_flag_rate,variant=v6,window=all":                    0,
		"verdict_labels_unmatched":                                   7,
		"verdict_precision_wilson,bound=upper,variant=v5,window=all": window.Wilson(3, 4, window.Z95).Upper,
	}
	hasSamples(t, got, want)
	for _, absent := range []string{"verdict_precision,variant=v6,window=all", "verdict_recall,variant=v6,window=1h", "verdict_f1,variant=v6,window=all"} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s is undefined for v6 and must be absent", absent)
		}
	}
	// The next scrape sees new commits: no second copy to drift.
	w.Observe([]tally.Delta{{Key: tally.Key{Variant: "v6"}, Bucket: b, Counts: tally.Counts{Predictions: 1, Flagged: 1, TP: 1}}})
	if g := gather(t, reg)["verdict_precision,variant=v6,window=all"]; g != 1 {
		t.Errorf("after a commit: v6 precision %v, want 1", g)
	}
}

func TestCollectorReportsAFailingUnmatchedRead(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(window.New(time.Minute, time.Hour), nil, func(context.Context) (int64, error) { return 0, errors.New("disk gone") }, nil))
	if _, err := reg.Gather(); err == nil {
		t.Fatal("gather succeeded although the unmatched count could not be read")
	}
}

// gather reads every sample as "name,label=value,..." (empty labels left out).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				if l.GetValue() != "" {
					key += "," + l.GetName() + "=" + l.GetValue()
				}
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

// hasSamples checks that got holds every sample of want, with its value.
func hasSamples(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestNotEstimablePrecisionHasNoSample(t *testing.T) {
	w := window.New(5*time.Minute, time.Hour)
	b := time.Now().Unix() / 300 * 300
	// v5: 40 flagged, only 8 resolved (positives first); v6: every flagged resolved.
	w.Observe([]tally.Delta{
		{Key: tally.Key{Variant: "v5"}, Bucket: b, Counts: tally.Counts{Predictions: 400, Flagged: 40, TP: 8, FN: 2}},
		{Key: tally.Key{Variant: "v6"}, Bucket: b, Counts: tally.Counts{Predictions: 400, Flagged: 40, TP: 30, FP: 10, FN: 5, TN: 355, Censored: 0}},
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(w, []window.Span{window.AllTime}, nil, nil))
	got := gather(t, reg)
	for _, absent := range []string{"verdict_precision,variant=v5,window=all", "verdict_f1,variant=v5,window=all",
		"verdict_precision_wilson,bound=lower,variant=v5,window=all"} {
		if v, ok := got[absent]; ok {
			t.Errorf("%s = %v: precision is not estimable for v5, want no sample", absent, v)
		}
	}
	want := map[string]float64{
		"verdict_statistic_estimable,statistic=precision,variant=v5,window=all": 0,
		"verdict_statistic_estimable,statistic=f1,variant=v5,window=all":        0,
		"verdict_statistic_estimable,statistic=recall,variant=v5,window=all":    1,
		"verdict_precision_bounds,bound=lower,variant=v5,window=all":            8.0 / 40,
		"verdict_precision_bounds,bound=upper,variant=v5,window=all":            1,
		"verdict_pending,variant=v5,window=all":                                 390,
		"verdict_recall,variant=v5,window=all":                                  0.8,
		"verdict_statistic_estimable,statistic=precision,variant=v6,window=all": 1,
		"verdict_precision,variant=v6,window=all":                               0.75,
		"verdict_pending,variant=v6,window=all":                                 0,
	}
	hasSamples(t, got, want)
}

func TestCohortCollector(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	w := window.New(5*time.Minute, 7*24*time.Hour, window.Cohorts(40*24*time.Hour), window.Clock(func() time.Time { return now }))
	at := func(age time.Duration) int64 { return now.Add(-age).Unix() / 300 * 300 }
	w.Observe([]tally.Delta{
		{Key: tally.Key{Variant: "v5"}, Bucket: at(2 * time.Hour), Counts: tally.Counts{Predictions: 50, Flagged: 5, TP: 1, Censored: 4, CensoredFlagged: 4}},
		{Key: tally.Key{Variant: "v5"}, Bucket: at(35 * 24 * time.Hour), Counts: tally.Counts{Predictions: 20, Flagged: 2, TP: 1, FP: 1, TN: 18, Matured: 15}},
		{Key: tally.Key{Variant: "v5", SegmentKey: "mcc", Segment: "5411"}, Bucket: at(2 * time.Hour), Counts: tally.Counts{Predictions: 50}},
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCohortCollector(w, 30*24*time.Hour, nil))
	got := gather(t, reg)
	want := map[string]float64{
		"verdict_cohort_predictions,age=1h-24h,variant=v5":             50,
		"verdict_cohort_label_coverage,age=1h-24h,variant=v5":          1.0 / 50,
		"verdict_cohort_resolved,age=1h-24h,label=positive,variant=v5": 1,
		"verdict_cohort_pending,age=1h-24h,variant=v5":                 49,
		"verdict_cohort_censored,age=1h-24h,variant=v5":                4,
		"verdict_cohort_predictions,age=>=30d,variant=v5":              20,
		"verdict_cohort_label_coverage,age=>=30d,variant=v5":           1,
		"verdict_cohort_resolved,age=>=30d,label=negative,variant=v5":  4,
		"verdict_cohort_resolved,age=>=30d,label=matured,variant=v5":   15,
		"verdict_cohort_predictions,age=<1h,variant=v5":                0,
		"verdict_cohort_predictions,age=7d-30d,variant=v5":             0,
		"verdict_cohort_resolved,age=7d-30d,label=positive,variant=v5": 0,
		"verdict_cohort_predictions,age=24h-7d,variant=v5":             0,
		"verdict_cohort_resolved,age=1h-24h,label=negative,variant=v5": 0,
		"verdict_cohort_resolved,age=1h-24h,label=matured,variant=v5":  0,
		"verdict_cohort_resolved,age=>=30d,label=positive,variant=v5":  1,
		"verdict_cohort_pending,age=>=30d,variant=v5":                  0,
		"verdict_cohort_censored,age=>=30d,variant=v5":                 0,
		"verdict_cohort_resolved,age=24h-7d,label=positive,variant=v5": 0,
		"verdict_cohort_resolved,age=<1h,label=positive,variant=v5":    0,
	}
	hasSamples(t, got, want)
	for k := range got {
		if strings.Contains(k, "segment") || strings.Contains(k, "5411") {
			t.Errorf("%s: cohort metrics are per variant only", k)
		}
		if strings.HasPrefix(k, "verdict_cohort_label_coverage,age=<1h") {
			t.Errorf("%s present for an empty class", k)
		}
	}
}
