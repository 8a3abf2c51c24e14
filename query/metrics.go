// Package query is the analysts' JSON API over verdict's windows:
// GET /v1/metrics?window=1h[&by=segment][&variant=v6][&segment_key=merchant_category].
//
// The schema is documented in docs/api.md and is stable: fields are only ever added.
package query

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/verdictml/verdict/window"
)

// Snapshots is what the API needs from the windows.
type Snapshots interface {
	Snapshot(span window.Span) window.Snapshot
	// Longest is the longest span whose buckets are kept.
	Longest() window.Span
}

// UnmatchedFunc reports the labels waiting for their first prediction.
type UnmatchedFunc func(ctx context.Context) (int64, error)

// Metrics serves GET /v1/metrics.
type Metrics struct {
	snaps     Snapshots
	unmatched UnmatchedFunc
	log       *slog.Logger
}

// NewMetrics returns the handler. unmatched may be nil.
func NewMetrics(snaps Snapshots, unmatched UnmatchedFunc, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Metrics{snaps: snaps, unmatched: unmatched, log: log}
}

// Response is the body of GET /v1/metrics.
type Response struct {
	Window string     `json:"window"`
	Start  *time.Time `json:"start"` // null for window=all
	End    time.Time  `json:"end"`
	// Variants holds one row per variant, over all its predictions.
	Variants []Series `json:"variants"`
	// Segments holds one row per (variant, segment key, segment value); only with
	// by=segment.
	Segments []Series `json:"segments,omitempty"`
	// LabelsUnmatched is the number of labels waiting for their first prediction.
	LabelsUnmatched *int64 `json:"labels_unmatched,omitempty"`
}

// Series is one row: counts over the window and the statistics derived from them.
// Statistics whose denominator is zero are null.
type Series struct {
	Variant    string `json:"variant"`
	SegmentKey string `json:"segment_key,omitempty"`
	Segment    string `json:"segment,omitempty"`

	Predictions        int64 `json:"predictions"`
	PredictedPositives int64 `json:"predicted_positives"`
	Errors             int64 `json:"errors"`
	TP                 int64 `json:"tp"`
	FP                 int64 `json:"fp"`
	FN                 int64 `json:"fn"`
	TN                 int64 `json:"tn"`
	Resolved           int64 `json:"resolved"`
	Matured            int64 `json:"matured"`

	Precision     *float64         `json:"precision"`
	PrecisionCI   *window.Interval `json:"precision_ci"`
	Recall        *float64         `json:"recall"`
	RecallCI      *window.Interval `json:"recall_ci"`
	F1            *float64         `json:"f1"`
	LabelCoverage *float64         `json:"label_coverage"`
	FlagRate      *float64         `json:"flag_rate"`
	MeanScore     *float64         `json:"mean_score"`
}

// ErrorBody is the body of every 4xx/5xx answer.
type ErrorBody struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter,omitempty"`
}

func seriesOf(r window.Row) Series {
	c, s := r.Counts, r.Stats
	return Series{
		Variant: r.Key.Variant, SegmentKey: r.Key.SegmentKey, Segment: r.Key.Segment,
		Predictions: c.Predictions, PredictedPositives: c.Flagged, Errors: c.Errors,
		TP: c.TP, FP: c.FP, FN: c.FN, TN: c.TN, Resolved: c.Resolved(), Matured: c.Matured,
		Precision: s.Precision, PrecisionCI: s.PrecisionCI, Recall: s.Recall, RecallCI: s.RecallCI,
		F1: s.F1, LabelCoverage: s.LabelCoverage, FlagRate: s.FlagRate, MeanScore: s.MeanScore,
	}
}

// ServeHTTP implements http.Handler.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		WriteJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: "use GET"})
		return
	}
	q := r.URL.Query()
	span, err := window.ParseSpan(q.Get("window"))
	if err != nil {
		WriteJSON(w, http.StatusBadRequest, ErrorBody{Error: err.Error(), Parameter: "window"})
		return
	}
	if longest := m.snaps.Longest(); span != window.AllTime && span > longest {
		WriteJSON(w, http.StatusBadRequest, ErrorBody{
			Error:     fmt.Sprintf("window %s is longer than the %s verdict keeps (VERDICT_WINDOWS); use window=all or a shorter one", span, longest),
			Parameter: "window",
		})
		return
	}
	by := q.Get("by")
	if by != "" && by != "segment" && by != "variant" {
		WriteJSON(w, http.StatusBadRequest, ErrorBody{Error: `by: want "variant" or "segment"`, Parameter: "by"})
		return
	}
	variant, segKey := q.Get("variant"), q.Get("segment_key")
	snap := m.snaps.Snapshot(span)
	resp := Response{Window: span.String(), End: snap.End.UTC(), Variants: []Series{}}
	if !snap.Start.IsZero() {
		s := snap.Start.UTC()
		resp.Start = &s
	}
	for _, row := range snap.Rows {
		if variant != "" && row.Key.Variant != variant {
			continue
		}
		switch {
		case row.Key.Overall():
			resp.Variants = append(resp.Variants, seriesOf(row))
		case by == "segment" && (segKey == "" || row.Key.SegmentKey == segKey):
			resp.Segments = append(resp.Segments, seriesOf(row))
		}
	}
	if by == "segment" && resp.Segments == nil {
		resp.Segments = []Series{}
	}
	if m.unmatched != nil {
		if n, err := m.unmatched(r.Context()); err != nil {
			m.log.Warn("read unmatched labels", "err", err)
		} else {
			resp.LabelsUnmatched = &n
		}
	}
	WriteJSON(w, http.StatusOK, resp)
}

// WriteJSON writes v as the JSON body with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}
