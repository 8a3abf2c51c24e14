package ingest

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what sources did with their input. A nil *Metrics is valid and
// records nothing, so sources need no checks.
//
// Exported series:
//
//	verdict_ingest_events_accepted_total{kind,source}          valid events committed (duplicates included)
//	verdict_ingest_events_duplicates_total{kind,source}        of those, events that changed nothing
//	verdict_ingest_events_rejected_total{kind,source,class}    rejected lines
//	verdict_ingest_sink_errors_total{kind,source}              batches the sink failed to commit
//	verdict_ingest_requests_failed_total{kind,source,reason}   requests not served in full (busy, body_timeout, ...)
//	verdict_ingest_newest_event_timestamp_seconds{kind}        newest accepted event time (Unix seconds)
//
// Ingest lag is time() - verdict_ingest_newest_event_timestamp_seconds. The gauge is
// absent until the first event of its kind is accepted, so a fresh process does not
// report a lag of 56 years.
type Metrics struct {
	accepted   *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	sinkErrors *prometheus.CounterVec
	requests   *prometheus.CounterVec
	newest     *newestCollector
}

// Source label values used by the sources in this repository.
const (
	SourceHTTP    = "http"
	SourceFile    = "file"
	SourceKinesis = "kinesis"
)

// NewMetrics creates the ingest metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_ingest_events_accepted_total",
			Help: "Valid events committed to the join store, duplicates included.",
		}, []string{"kind", "source"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_ingest_events_duplicates_total",
			Help: "Committed events that changed nothing (replays, stale labels).",
		}, []string{"kind", "source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_ingest_events_rejected_total",
			Help: "Input lines rejected, by rejection class.",
		}, []string{"kind", "source", "class"}),
		sinkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_ingest_sink_errors_total",
			Help: "Batches the join store failed to commit.",
		}, []string{"kind", "source"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_ingest_requests_failed_total",
			Help: "Ingest requests not served in full, by reason: busy (over the concurrency cap), body_too_large, body_timeout, body_unreadable, client_gone (the client left before its commit was confirmed).",
		}, []string{"kind", "source", "reason"}),
		newest: &newestCollector{
			desc: prometheus.NewDesc("verdict_ingest_newest_event_timestamp_seconds",
				"Event time of the newest accepted event (prediction time, label time), in Unix seconds.",
				[]string{"kind"}, nil),
			unix: map[Kind]float64{},
		},
	}
	for _, c := range []prometheus.Collector{m.accepted, m.duplicates, m.rejected, m.sinkErrors, m.requests, m.newest} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ingest: register metrics: %w", err)
		}
	}
	return m, nil
}

// Committed records a batch the sink committed: every event counts as accepted,
// res.Duplicates of them as duplicates, and the newest event time advances. Sources
// build single-kind batches; for a batch holding both kinds, duplicates (which Result
// does not split by kind) are counted under kind "mixed".
func (m *Metrics) Committed(source string, b Batch, res Result) {
	if m == nil {
		return
	}
	if n := len(b.Predictions); n > 0 {
		m.accepted.WithLabelValues(string(KindPrediction), source).Add(float64(n))
		m.newest.advance(KindPrediction, newest(b.Predictions, func(p Prediction) time.Time { return p.Time }))
	}
	if n := len(b.Labels); n > 0 {
		m.accepted.WithLabelValues(string(KindLabel), source).Add(float64(n))
		m.newest.advance(KindLabel, newest(b.Labels, func(l Label) time.Time { return l.Time }))
	}
	if res.Duplicates > 0 {
		m.duplicates.WithLabelValues(string(batchKind(b)), source).Add(float64(res.Duplicates))
	}
}

// Rejected records rejected lines of one kind.
func (m *Metrics) Rejected(kind Kind, source string, rej []Rejection) {
	if m == nil {
		return
	}
	for _, r := range rej {
		m.rejected.WithLabelValues(string(kind), source, string(r.Class)).Inc()
	}
}

// SinkFailed records a batch the sink could not commit.
func (m *Metrics) SinkFailed(source string, b Batch) {
	if m == nil {
		return
	}
	m.sinkErrors.WithLabelValues(string(batchKind(b)), source).Inc()
}

// Request failure reasons of verdict_ingest_requests_failed_total.
const (
	RequestBusy           = "busy"
	RequestBodyTooLarge   = "body_too_large"
	RequestBodyTimeout    = "body_timeout"
	RequestBodyUnreadable = "body_unreadable"
	RequestClientGone     = "client_gone"
)

// RequestFailed records a request of one kind that was not served in full.
func (m *Metrics) RequestFailed(kind Kind, source, reason string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(string(kind), source, reason).Inc()
}

func batchKind(b Batch) Kind {
	switch {
	case len(b.Labels) == 0:
		return KindPrediction
	case len(b.Predictions) == 0:
		return KindLabel
	}
	return "mixed"
}

func newest[E any](events []E, at func(E) time.Time) time.Time {
	var t time.Time
	for _, e := range events {
		if et := at(e); et.After(t) {
			t = et
		}
	}
	return t
}

// newestCollector exports the newest accepted event time per kind, and nothing for a
// kind that has none yet.
type newestCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	unix map[Kind]float64
}

// advance moves kind k's newest time to t, but never past the clock: an event dated
// ahead (within the accepted skew) must not make the lag negative and hide real lag.
func (c *newestCollector) advance(k Kind, t time.Time) {
	if t.IsZero() {
		return
	}
	if now := time.Now(); t.After(now) {
		t = now
	}
	u := float64(t.UnixNano()) / 1e9
	c.mu.Lock()
	c.unix[k] = math.Max(c.unix[k], u)
	c.mu.Unlock()
}

func (c *newestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *newestCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, u := range c.unix {
		if m, err := prometheus.NewConstMetric(c.desc, prometheus.GaugeValue, u, string(k)); err == nil {
			ch <- m
		}
	}
}
