package rehearsal

import (
	"context"
	"testing"
	"time"

	"github.com/verdictml/verdict/alarms"
)

func TestMetricHistoryDropBeforeKeepsItBounded(t *testing.T) {
	h := NewMetricHistory()
	m := alarms.Metric{Namespace: "Verdict", MetricName: "Recall"}
	gone := alarms.Metric{Namespace: "Verdict", MetricName: "Precision"}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i := range 10 {
		h.Add(m, t0.Add(time.Duration(i)*time.Minute), float64(i))
	}
	h.Add(gone, t0, 1)
	h.DropBefore(t0.Add(5 * time.Minute))
	ctx := context.Background()
	if _, ok, _ := h.Statistic(ctx, m, "SampleCount", t0, t0.Add(5*time.Minute)); ok {
		t.Error("samples before the cut are still there")
	}
	if n, ok, _ := h.Statistic(ctx, m, "SampleCount", t0, t0.Add(time.Hour)); !ok || n != 5 {
		t.Errorf("%v samples kept, want the 5 from the cut on", n)
	}
	if len(h.series) != 1 {
		t.Errorf("%d series, want the emptied one forgotten", len(h.series))
	}
}
