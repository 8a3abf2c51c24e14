package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/verdictml/verdict/internal/jsonanswer"
)

// The Prometheus metrics the ingest health reads: /metrics is the one source of
// truth, and this is a JSON view of it.
const (
	metricAccepted   = "verdict_ingest_events_accepted_total"
	metricDuplicates = "verdict_ingest_events_duplicates_total"
	metricRejected   = "verdict_ingest_events_rejected_total"
	metricSinkErrors = "verdict_ingest_sink_errors_total"
	metricRequests   = "verdict_ingest_requests_failed_total"
	metricNewest     = "verdict_ingest_newest_event_timestamp_seconds"
	metricReady      = "verdict_ready"
	metricUnmatched  = "verdict_labels_unmatched"
)

// Rate measurement: a sample of the counters every sampleEvery, rates over the
// last rateWindow.
const (
	sampleEvery = 5 * time.Second
	rateWindow  = time.Minute
)

// IngestHealth serves GET /v1/ingest: events accepted and rejected (by class) and
// their rates, how far behind the newest event time is, and readiness, read from
// the Prometheus registry.
type IngestHealth struct {
	g   prometheus.Gatherer
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	samples []reading // oldest first, within rateWindow of the newest
}

// reading is the counters at one moment.
type reading struct {
	at     time.Time
	ingest Ingest
}

// NewIngestHealth reads g. log may be nil.
func NewIngestHealth(g prometheus.Gatherer, log *slog.Logger) *IngestHealth {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &IngestHealth{g: g, log: log, now: time.Now}
}

// Run samples the counters every few seconds until ctx ends, so rates are there
// from a page's first load.
func (h *IngestHealth) Run(ctx context.Context) error {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		if _, err := h.sample(); err != nil {
			h.log.Warn("ingest health: read metrics", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Ingest is the body of GET /v1/ingest.
type Ingest struct {
	At time.Time `json:"at"`
	// Ready is verdict_ready: the join store can commit what arrives.
	Ready bool `json:"ready"`
	// Kinds holds one entry per event kind (prediction, label) seen.
	Kinds []KindHealth `json:"kinds"`
	// Rejections are the rejected lines by kind and class, totals since start.
	Rejections []Rejections `json:"rejections"`
	// RequestsFailed are HTTP ingest requests not served in full, by reason.
	RequestsFailed []RequestsFailed `json:"requests_failed"`
	// SinkErrors counts batches the join store failed to commit.
	SinkErrors float64 `json:"sink_errors"`
	// LabelsUnmatched are labels waiting for their first prediction.
	LabelsUnmatched *float64 `json:"labels_unmatched"`
	// RateWindow is what the rates are measured over; null rates are not
	// measured yet (a few seconds after start).
	RateWindow string `json:"rate_window"`
}

// KindHealth is one event kind's flow.
type KindHealth struct {
	Kind       string  `json:"kind"`
	Accepted   float64 `json:"accepted"`
	Duplicates float64 `json:"duplicates"`
	Rejected   float64 `json:"rejected"`
	// AcceptedPerSecond and RejectedPerSecond are over the rate window.
	AcceptedPerSecond *float64 `json:"accepted_per_second"`
	RejectedPerSecond *float64 `json:"rejected_per_second"`
	// NewestEvent is the event time of the newest accepted event; LagSeconds how
	// long before At it is (for labels, this includes the label delay itself).
	NewestEvent *time.Time `json:"newest_event"`
	LagSeconds  *float64   `json:"lag_seconds"`
}

// Rejections is one rejection class's total.
type Rejections struct {
	Kind  string  `json:"kind"`
	Class string  `json:"class"`
	Count float64 `json:"count"`
}

// RequestsFailed is one failure reason's total.
type RequestsFailed struct {
	Kind   string  `json:"kind"`
	Reason string  `json:"reason"`
	Count  float64 `json:"count"`
}

// ServeHTTP implements http.Handler.
func (h *IngestHealth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !jsonanswer.OnlyGet(w, r) {
		return
	}
	in, err := h.sample()
	if err != nil {
		h.log.Warn("ingest health: read metrics", "err", err)
		jsonanswer.Write(w, r, http.StatusInternalServerError, jsonanswer.ErrorBody{Error: fmt.Sprintf("reading the metrics registry: %v", err)})
		return
	}
	jsonanswer.Write(w, r, http.StatusOK, in)
}

// sample reads the registry, keeps the reading for rates, and returns the health
// with rates over the readings of the last rateWindow.
func (h *IngestHealth) sample() (Ingest, error) {
	fams, err := h.g.Gather()
	if err != nil && len(fams) == 0 {
		return Ingest{}, err
	}
	now := h.now()
	rd := read(fams, now)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, rd)
	for len(h.samples) > 1 && now.Sub(h.samples[0].at) > rateWindow {
		h.samples = h.samples[1:]
	}
	in := rd.ingest
	if oldest := h.samples[0]; now.Sub(oldest.at) >= time.Second {
		dt := now.Sub(oldest.at).Seconds()
		for i := range in.Kinds {
			k := &in.Kinds[i]
			var was KindHealth // a kind not seen then had counted nothing
			if j := slices.IndexFunc(oldest.ingest.Kinds, func(o KindHealth) bool { return o.Kind == k.Kind }); j >= 0 {
				was = oldest.ingest.Kinds[j]
			}
			a := math.Max(0, k.Accepted-was.Accepted) / dt
			rj := math.Max(0, k.Rejected-was.Rejected) / dt
			k.AcceptedPerSecond, k.RejectedPerSecond = &a, &rj
		}
	}
	return in, nil
}

func read(fams []*dto.MetricFamily, now time.Time) reading {
	rd := reading{at: now}
	in := Ingest{At: now.UTC(), Kinds: []KindHealth{}, Rejections: []Rejections{}, RequestsFailed: []RequestsFailed{}, RateWindow: "1m"}
	kinds := map[string]*KindHealth{}
	kind := func(k string) *KindHealth {
		if kinds[k] == nil {
			kinds[k] = &KindHealth{Kind: k}
		}
		return kinds[k]
	}
	rejections := map[[2]string]float64{}
	failed := map[[2]string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			l := labelsOf(m)
			v := valueOf(m)
			switch f.GetName() {
			case metricAccepted:
				kind(l["kind"]).Accepted += v
			case metricDuplicates:
				kind(l["kind"]).Duplicates += v
			case metricRejected:
				kind(l["kind"]).Rejected += v
				rejections[[2]string{l["kind"], l["class"]}] += v
			case metricSinkErrors:
				in.SinkErrors += v
			case metricRequests:
				failed[[2]string{l["kind"], l["reason"]}] += v
			case metricNewest:
				if v > 0 {
					t := time.Unix(0, int64(v*1e9)).UTC()
					lag := math.Max(0, now.Sub(t).Seconds())
					k := kind(l["kind"])
					k.NewestEvent, k.LagSeconds = &t, &lag
				}
			case metricReady:
				in.Ready = v == 1
			case metricUnmatched:
				u := v
				in.LabelsUnmatched = &u
			}
		}
	}
	for _, k := range kinds {
		in.Kinds = append(in.Kinds, *k)
	}
	slices.SortFunc(in.Kinds, func(a, b KindHealth) int { return cmp.Compare(a.Kind, b.Kind) })
	for k, v := range rejections {
		in.Rejections = append(in.Rejections, Rejections{Kind: k[0], Class: k[1], Count: v})
	}
	slices.SortFunc(in.Rejections, func(a, b Rejections) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return cmp.Compare(a.Kind+a.Class, b.Kind+b.Class)
	})
	for k, v := range failed {
		in.RequestsFailed = append(in.RequestsFailed, RequestsFailed{Kind: k[0], Reason: k[1], Count: v})
	}
	slices.SortFunc(in.RequestsFailed, func(a, b RequestsFailed) int { return cmp.Compare(a.Kind+a.Reason, b.Kind+b.Reason) })
	rd.ingest = in
	return rd
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func valueOf(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}
