package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// Snapshots is what GET /v1/metrics needs from the windows.
type Snapshots interface {
	// Longest is the longest span whose buckets are kept.
	Longest() window.Span
	// SnapshotAged is a window of predictions at least minAge old (0: the plain
	// window); it fails when span + minAge reaches past the windows' horizon.
	SnapshotAged(span window.Span, minAge time.Duration) (window.Snapshot, error)
}

// LabelPolicy is how labels resolve predictions, as configured. The API reports it
// next to the numbers it shapes, and min_age=matured reads Maturity.
type LabelPolicy struct {
	// Maturity is VERDICT_MATURITY: an unlabeled prediction this old resolves as
	// negative (zero when predictions never mature).
	Maturity time.Duration
	// Declined is VERDICT_DECLINED (negative or censored) and ReviewSources
	// VERDICT_REVIEW_SOURCES.
	Declined      string
	ReviewSources []string
	// Coverage is the estimability rule's coverage (VERDICT_ESTIMABLE_COVERAGE).
	Coverage float64
}

// Policy is LabelPolicy as JSON.
type Policy struct {
	Maturity          *string  `json:"maturity"` // null when predictions never mature
	Declined          string   `json:"declined,omitempty"`
	ReviewSources     []string `json:"review_sources,omitempty"`
	EstimableCoverage float64  `json:"estimable_coverage,omitempty"`
}

func (p LabelPolicy) json() *Policy {
	out := &Policy{Declined: p.Declined, ReviewSources: p.ReviewSources, EstimableCoverage: p.Coverage}
	if p.Maturity > 0 {
		m := window.Span(p.Maturity).String()
		out.Maturity = &m
	}
	return out
}

// Option configures a handler.
type Option func(*options)

type options struct{ policy LabelPolicy }

// WithPolicy tells the handlers the label policy in force.
func WithPolicy(p LabelPolicy) Option { return func(o *options) { o.policy = p } }

// reading is what the handlers over the windows share: the label policy in force
// and the log.
type reading struct {
	log    *slog.Logger
	policy LabelPolicy
}

func newReading(log *slog.Logger, opts []Option) reading {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	return reading{log: log, policy: o.policy}
}

// query admits a GET or HEAD whose query string is well formed and names only
// known parameters; otherwise it answers the request and ok is false.
func (rd reading) query(w http.ResponseWriter, r *http.Request, known ...string) (q url.Values, ok bool) {
	if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
		return nil, false
	}
	q, err := params(r.URL.RawQuery, known...)
	if err != nil {
		badRequest(w, r, err, rd.log)
		return nil, false
	}
	return q, true
}

// rowFilter is the by, variant and segment_key parameters of /v1/metrics and
// /v1/coverage: whose rows to answer with, and whether segments too.
type rowFilter struct {
	bySegment           bool
	variant, segmentKey string
}

// parseRowFilter reads by (variant, the default, or segment), variant and
// segment_key.
func parseRowFilter(q url.Values) (rowFilter, error) {
	by := q.Get("by")
	if by != "" && by != "segment" && by != "variant" {
		return rowFilter{}, badParam("by", `want "variant" or "segment"`)
	}
	return rowFilter{bySegment: by == "segment", variant: q.Get("variant"), segmentKey: q.Get("segment_key")}, nil
}

// splitRows answers with rows as f asks: each variant's overall row (of the one
// variant, when given) and, by segment, its segment rows (of the one segment key,
// when given); segments is nil unless by segment.
func splitRows[R, T any](f rowFilter, rows []R, key func(R) tally.Key, answer func(R) T) (variants, segments []T) {
	variants = []T{}
	if f.bySegment {
		segments = []T{}
	}
	for _, row := range rows {
		k := key(row)
		if f.variant != "" && k.Variant != f.variant {
			continue
		}
		switch {
		case k.Overall():
			variants = append(variants, answer(row))
		case f.bySegment && (f.segmentKey == "" || k.SegmentKey == f.segmentKey):
			segments = append(segments, answer(row))
		}
	}
	return variants, segments
}

// UnmatchedFunc reports the labels waiting for their first prediction.
type UnmatchedFunc func(ctx context.Context) (int64, error)

// metricsParameters are the query parameters GET /v1/metrics reads; others are
// refused.
var metricsParameters = []string{"window", "by", "variant", "segment_key", "min_age"}

// MetricsHandler serves
// GET /v1/metrics?window=1h[&by=segment][&variant=v6][&segment_key=merchant_category][&min_age=30d]:
// per variant (and segment), the counts over a window and the statistics derived
// from them.
type MetricsHandler struct {
	reading
	snaps     Snapshots
	unmatched UnmatchedFunc
}

// NewMetricsHandler returns the handler. unmatched and log may be nil.
func NewMetricsHandler(snaps Snapshots, unmatched UnmatchedFunc, log *slog.Logger, opts ...Option) *MetricsHandler {
	return &MetricsHandler{reading: newReading(log, opts), snaps: snaps, unmatched: unmatched}
}

// MetricsResponse is the body of GET /v1/metrics.
type MetricsResponse struct {
	Window string     `json:"window"`
	Start  *time.Time `json:"start"` // null for window=all
	End    time.Time  `json:"end"`
	// MinAge is the min_age the window was restricted to: every prediction counted
	// is at least this old (end is that long ago).
	MinAge string `json:"min_age,omitempty"`
	// Labels is the label policy the counts were resolved under.
	Labels *Policy `json:"labels,omitempty"`
	// Variants holds one row per variant, over all its predictions.
	Variants []Series `json:"variants"`
	// Segments holds one row per (variant, segment key, segment value); only with
	// by=segment.
	Segments []Series `json:"segments,omitempty"`
	// LabelsUnmatched is the number of labels waiting for their first prediction.
	LabelsUnmatched *int64 `json:"labels_unmatched,omitempty"`
}

// Series is one row: counts over the window and the statistics derived from them.
// Statistics whose denominator is zero, and precision (with its CI and F1) while it
// is not estimable from the labels so far, are null; Estimable says which and why.
type Series struct {
	Variant    string `json:"variant"`
	SegmentKey string `json:"segment_key,omitempty"`
	Segment    string `json:"segment,omitempty"`
	Counts

	Precision   *float64         `json:"precision"`
	PrecisionCI *window.Interval `json:"precision_ci"`
	// PrecisionBounds is where precision lies whatever the open flagged predictions
	// turn out to be; reported whether precision is estimable or not.
	PrecisionBounds *window.Interval `json:"precision_bounds"`
	Recall          *float64         `json:"recall"`
	RecallCI        *window.Interval `json:"recall_ci"`
	F1              *float64         `json:"f1"`
	LabelCoverage   *float64         `json:"label_coverage"`
	FlagRate        *float64         `json:"flag_rate"`
	MeanScore       *float64         `json:"mean_score"`
	// Estimable says whether precision, recall and F1 can be estimated from the
	// labels so far, and why not (or, for recall, that it is early).
	Estimable window.Estimates `json:"estimable"`
}

// Counts are a row's counts: predictions by prediction time and what became of them.
type Counts struct {
	Predictions        int64 `json:"predictions"`
	PredictedPositives int64 `json:"predicted_positives"`
	Errors             int64 `json:"errors"`
	TP                 int64 `json:"tp"`
	FP                 int64 `json:"fp"`
	FN                 int64 `json:"fn"`
	TN                 int64 `json:"tn"`
	Resolved           int64 `json:"resolved"`
	Matured            int64 `json:"matured"`
	// Pending is predictions - resolved; Censored the part of them that only a
	// (review) label resolves, declined by the serving variant (VERDICT_DECLINED).
	Pending  int64 `json:"pending"`
	Censored int64 `json:"censored"`
}

func countsOf(c tally.Counts) Counts {
	return Counts{Predictions: c.Predictions, PredictedPositives: c.Flagged, Errors: c.Errors,
		TP: c.TP, FP: c.FP, FN: c.FN, TN: c.TN, Resolved: c.Resolved(), Matured: c.Matured,
		Pending: c.Pending(), Censored: c.Censored}
}

func seriesOf(r window.Row) Series {
	s := r.Stats
	return Series{
		Variant: r.Key.Variant, SegmentKey: r.Key.SegmentKey, Segment: r.Key.Segment,
		Counts:    countsOf(r.Counts),
		Precision: s.Precision, PrecisionCI: s.PrecisionCI, PrecisionBounds: s.PrecisionBounds,
		Recall: s.Recall, RecallCI: s.RecallCI,
		F1: s.F1, LabelCoverage: s.LabelCoverage, FlagRate: s.FlagRate, MeanScore: s.MeanScore,
		Estimable: s.Estimable,
	}
}

// ServeHTTP implements http.Handler.
func (m *MetricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q, ok := m.query(w, r, metricsParameters...)
	if !ok {
		return
	}
	span, err := window.ParseSpan(q.Get("window"))
	if err != nil {
		badRequest(w, r, &paramError{"window", err.Error()}, m.log)
		return
	}
	if longest := m.snaps.Longest(); span != window.AllTime && span > longest {
		badRequest(w, r, &paramError{"window", fmt.Sprintf("window %s is longer than the %s verdict keeps (VERDICT_WINDOWS); use window=all or a shorter one", span, longest)}, m.log)
		return
	}
	rows, err := parseRowFilter(q)
	if err != nil {
		badRequest(w, r, err, m.log)
		return
	}
	minAge, err := parseMinAge(q.Get("min_age"), m.policy.Maturity)
	if err != nil {
		badRequest(w, r, &paramError{"min_age", err.Error()}, m.log)
		return
	}
	if rows.segmentKey != "" && !rows.bySegment {
		badRequest(w, r, badParam("segment_key", "only applies with by=segment"), m.log)
		return
	}
	snap, err := m.snaps.SnapshotAged(span, minAge)
	if err != nil {
		badRequest(w, r, badParam("min_age", "%v (VERDICT_COHORT_HORIZON); use a shorter window or min_age", err), m.log)
		return
	}
	resp := MetricsResponse{Window: span.String(), End: snap.End.UTC(), Labels: m.policy.json()}
	resp.Variants, resp.Segments = splitRows(rows, snap.Rows, func(row window.Row) tally.Key { return row.Key }, seriesOf)
	if minAge > 0 {
		resp.MinAge = window.Span(minAge).String()
	}
	if !snap.Start.IsZero() {
		s := snap.Start.UTC()
		resp.Start = &s
	}
	if m.unmatched != nil {
		if n, err := m.unmatched(r.Context()); err != nil {
			m.log.Warn("read unmatched labels", "err", err)
		} else {
			resp.LabelsUnmatched = &n
		}
	}
	writeJSON(w, r, http.StatusOK, resp, m.log)
}

// parseMinAge reads min_age: empty (none), "matured" (VERDICT_MATURITY) or a
// duration like 30d or 36h.
func parseMinAge(s string, maturity time.Duration) (time.Duration, error) {
	switch s {
	case "", "0":
		return 0, nil
	case "matured":
		if maturity <= 0 {
			return 0, errors.New(`min_age=matured: predictions never mature here (VERDICT_MATURITY_MODE=unresolved or VERDICT_MATURITY=0); give an age like 30d`)
		}
		return maturity, nil
	}
	sp, err := window.ParseSpan(s)
	if err != nil || sp == window.AllTime {
		return 0, fmt.Errorf("min_age %q: want an age like 30d or 36h, or matured", s)
	}
	return time.Duration(sp), nil
}
