package prom

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/window"
)

func TestCollectorReadsTheCurrentSnapshot(t *testing.T) {
	w := window.New(5*time.Minute, time.Hour)
	b := time.Now().Unix() / 300 * 300
	w.Observe([]labels.Delta{
		{Key: labels.Key{Variant: "v5"}, Bucket: b, Counts: labels.Counts{Predictions: 10, Flagged: 4, TP: 3, FP: 1, FN: 1, TN: 5}},
		{Key: labels.Key{Variant: "v6"}, Bucket: b, Counts: labels.Counts{Predictions: 3, TN: 3}},
	})
	unmatched := int64(7)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(w, []window.Span{window.AllTime, window.Span(time.Hour)}, func(context.Context) (int64, error) { return unmatched, nil }, nil))
	values := func() map[string]float64 {
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
	got := values()
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
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for _, absent := range []string{"verdict_precision,variant=v6,window=all", "verdict_recall,variant=v6,window=1h", "verdict_f1,variant=v6,window=all"} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s is undefined for v6 and must be absent", absent)
		}
	}
	// The next scrape sees new commits: no second copy to drift.
	w.Observe([]labels.Delta{{Key: labels.Key{Variant: "v6"}, Bucket: b, Counts: labels.Counts{Predictions: 1, Flagged: 1, TP: 1}}})
	if g := values()["verdict_precision,variant=v6,window=all"]; g != 1 {
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
