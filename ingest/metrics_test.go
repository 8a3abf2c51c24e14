package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gathered reads one series from g: its value, and whether it exists. (testutil would
// do, but it needs a module go.mod does not carry.)
func gathered(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func TestMetricsCountCommitsRejectionsAndNewestTime(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := gathered(t, reg, "verdict_ingest_newest_event_timestamp_seconds", map[string]string{"kind": "prediction"}); ok {
		t.Fatal("newest-time gauge is exported before any event was accepted")
	}

	t1 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m.Committed(SourceHTTP, Batch{Predictions: []Prediction{{Time: t1}, {Time: t1.Add(time.Minute)}, {Time: t1.Add(-time.Hour)}}}, Result{Applied: 2, Duplicates: 1})
	m.Committed(SourceFile, Batch{Labels: []Label{{Time: t1.Add(-24 * time.Hour)}}}, Result{Applied: 1})
	// An older batch does not move the newest time back.
	m.Committed(SourceHTTP, Batch{Predictions: []Prediction{{Time: t1.Add(-48 * time.Hour)}}}, Result{Duplicates: 1})
	m.Rejected(KindPrediction, SourceHTTP, []Rejection{{Class: ClassMalformedJSON}, {Class: ClassMalformedJSON}, {Class: ClassOversizeLine}})
	m.SinkFailed(SourceHTTP, Batch{Labels: []Label{{}}})

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"verdict_ingest_events_accepted_total", map[string]string{"kind": "prediction", "source": "http"}, 4},
		{"verdict_ingest_events_accepted_total", map[string]string{"kind": "label", "source": "file"}, 1},
		{"verdict_ingest_events_duplicates_total", map[string]string{"kind": "prediction", "source": "http"}, 2},
		{"verdict_ingest_events_rejected_total", map[string]string{"kind": "prediction", "source": "http", "class": "malformed_json"}, 2},
		{"verdict_ingest_events_rejected_total", map[string]string{"kind": "prediction", "source": "http", "class": "oversize_line"}, 1},
		{"verdict_ingest_sink_errors_total", map[string]string{"kind": "label", "source": "http"}, 1},
		{"verdict_ingest_newest_event_timestamp_seconds", map[string]string{"kind": "prediction"}, float64(t1.Add(time.Minute).Unix())},
		{"verdict_ingest_newest_event_timestamp_seconds", map[string]string{"kind": "label"}, float64(t1.Add(-24 * time.Hour).Unix())},
	}
	for _, c := range checks {
		got, ok := gathered(t, reg, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := gathered(t, reg, "verdict_ingest_events_duplicates_total", map[string]string{"kind": "label", "source": "file"}); ok {
		t.Error("a batch without duplicates created a duplicates series")
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.Committed(SourceHTTP, Batch{Predictions: []Prediction{{}}}, Result{Duplicates: 1})
	m.Rejected(KindLabel, SourceHTTP, []Rejection{{Class: ClassMissingField}})
	m.SinkFailed(SourceHTTP, Batch{})
}

func TestNewMetricsReportsDoubleRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil || !strings.Contains(err.Error(), "ingest: register metrics") {
		t.Errorf("second registration: %v, want an error", err)
	}
}
