package api

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// Timelines is what GET /v1/series needs from the windows.
type Timelines interface {
	Timelines(span window.Span, step time.Duration, keep func(tally.Key) bool) (window.Timelines, error)
	// Longest is the longest span whose buckets are kept; Bucket their width.
	Longest() window.Span
	Bucket() time.Duration
}

// Statistic names of GET /v1/series, in the order they are listed.
const (
	StatPrecision     = window.StatPrecision
	StatRecall        = window.StatRecall
	StatF1            = window.StatF1
	StatFlagRate      = "flag_rate"
	StatLabelCoverage = "label_coverage"
	StatMeanScore     = "mean_score"
)

// SeriesStatistics lists the statistics GET /v1/series can return.
func SeriesStatistics() []string {
	return []string{StatPrecision, StatRecall, StatF1, StatFlagRate, StatLabelCoverage, StatMeanScore}
}

// seriesParameters are the query parameters GET /v1/series reads.
var seriesParameters = []string{"window", "step", "variant", "segment", "metric"}

// Default span and resolution of GET /v1/series.
const (
	defaultSeriesSpan  = window.Span(24 * time.Hour)
	defaultSeriesSteps = 120
)

// SeriesHandler serves GET /v1/series: per variant (or one segment), the counts and
// statistics of each step of prediction time over a window.
type SeriesHandler struct {
	reading
	timelines Timelines
}

// NewSeriesHandler returns the handler. log may be nil.
func NewSeriesHandler(tl Timelines, log *slog.Logger, opts ...Option) *SeriesHandler {
	return &SeriesHandler{reading: newReading(log, opts), timelines: tl}
}

// SeriesResponse is the body of GET /v1/series.
type SeriesResponse struct {
	Window string `json:"window"`
	Step   string `json:"step"`
	// Start is the first step's start; End is now, inside the last step.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Metrics are the statistics each point carries.
	Metrics []string `json:"metrics"`
	Labels  *Policy  `json:"labels"`
	// Series holds one timeline per variant (its overall series, or the segment
	// asked for), ordered by variant.
	Series []Timeline `json:"series"`
}

// Timeline is one series' points, oldest first.
type Timeline struct {
	Variant    string  `json:"variant"`
	SegmentKey string  `json:"segment_key,omitempty"`
	Segment    string  `json:"segment,omitempty"`
	Points     []Point `json:"points"`
}

// Point is one step: the predictions whose prediction time lies in [start, end),
// what became of them so far, and the statistics derived from that. Each step is
// a cohort on its own: a recent step's labels are still arriving.
type Point struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Partial marks the step that holds now (predictions still arriving in it).
	Partial bool `json:"partial,omitempty"`
	Counts
	Statistics map[string]Statistic `json:"statistics"`
}

// Statistic is one statistic of one step. Value is null when its denominator is
// zero or, for precision and F1, while it is not estimable from the labels so far;
// Estimable says which, and Reason why.
type Statistic struct {
	Value *float64 `json:"value"`
	// CI is the 95 % Wilson interval (precision, recall, flag rate).
	CI *window.Interval `json:"ci,omitempty"`
	// Bounds is where precision lies whatever its open flagged predictions turn out
	// to be; set whether precision is estimable or not.
	Bounds    *window.Interval `json:"bounds,omitempty"`
	Estimable bool             `json:"estimable"`
	Reason    string           `json:"reason,omitempty"`
	Note      string           `json:"note,omitempty"`
}

// ServeHTTP implements http.Handler.
func (h *SeriesHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q, ok := h.query(w, r, seriesParameters...)
	if !ok {
		return
	}
	bad := func(param, format string, args ...any) {
		badRequest(w, r, badParam(param, format, args...), h.log)
	}
	longest, bucket := h.timelines.Longest(), h.timelines.Bucket()
	span := min(defaultSeriesSpan, longest)
	if s := q.Get("window"); s != "" {
		sp, err := window.ParseSpan(s)
		switch {
		case err != nil:
			bad("window", "%q: want a duration like 1h, 24h or 7d", s)
			return
		case sp == window.AllTime:
			bad("window", "a time series reads the kept buckets: give a duration up to %s (VERDICT_WINDOWS), not all", longest)
			return
		case sp > longest:
			bad("window", "%s is longer than the %s verdict keeps (VERDICT_WINDOWS); use a shorter one", sp, longest)
			return
		}
		span = sp
	}
	step := defaultStep(span, bucket)
	if s := q.Get("step"); s != "" {
		sp, err := window.ParseSpan(s)
		if err != nil || sp == window.AllTime || time.Duration(sp)%bucket != 0 {
			bad("step", "%q: want a multiple of the bucket width %s (VERDICT_BUCKET), such as %s", s, window.Span(bucket), window.Span(step))
			return
		}
		if n := time.Duration(span) / time.Duration(sp); n > window.MaxSteps {
			bad("step", "%s gives %d steps over %s; at most %d: use a longer step", sp, n, span, window.MaxSteps)
			return
		}
		step = time.Duration(sp)
	}
	metrics := SeriesStatistics()
	if s := q.Get("metric"); s != "" {
		metrics = nil
		for _, m := range strings.Split(s, ",") {
			m = strings.TrimSpace(m)
			if !slices.Contains(SeriesStatistics(), m) {
				bad("metric", "%q: want one or more of %s, comma separated", m, strings.Join(SeriesStatistics(), ", "))
				return
			}
			if !slices.Contains(metrics, m) {
				metrics = append(metrics, m)
			}
		}
	}
	segKey, segValue := "", ""
	if s := q.Get("segment"); s != "" {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" || v == "" {
			bad("segment", "%q: want key=value, e.g. segment=merchant_category=electronics", s)
			return
		}
		segKey, segValue = k, v
	}
	variant := q.Get("variant")
	keep := func(k tally.Key) bool {
		return (variant == "" || k.Variant == variant) && k.SegmentKey == segKey && k.Segment == segValue
	}
	tls, err := h.timelines.Timelines(span, step, keep)
	if err != nil {
		h.log.Warn("series", "err", err)
		bad("window", "%v", err)
		return
	}
	resp := SeriesResponse{Window: span.String(), Step: window.Span(step).String(), Start: tls.Start, End: tls.End.UTC(),
		Metrics: metrics, Labels: h.policy.json(), Series: make([]Timeline, 0, len(tls.Series))}
	for _, tl := range tls.Series {
		out := Timeline{Variant: tl.Key.Variant, SegmentKey: tl.Key.SegmentKey, Segment: tl.Key.Segment, Points: make([]Point, 0, len(tl.Steps))}
		for _, st := range tl.Steps {
			out.Points = append(out.Points, pointOf(st, metrics))
		}
		resp.Series = append(resp.Series, out)
	}
	writeJSON(w, r, http.StatusOK, resp, h.log)
}

// defaultStep is the shortest multiple of the bucket width that cuts span into at
// most defaultSeriesSteps steps.
func defaultStep(span window.Span, bucket time.Duration) time.Duration {
	want := (time.Duration(span) + defaultSeriesSteps - 1) / defaultSeriesSteps
	n := (want + bucket - 1) / bucket
	return max(1, n) * bucket
}

func pointOf(st window.Step, metrics []string) Point {
	s, c := st.Stats, st.Counts
	p := Point{Start: st.Start, End: st.End, Partial: st.Partial, Counts: countsOf(c), Statistics: map[string]Statistic{}}
	noPredictions := "undefined: no predictions in this step"
	for _, m := range metrics {
		var x Statistic
		switch m {
		case StatPrecision:
			e := s.Estimable.Precision
			x = Statistic{Value: s.Precision, CI: s.PrecisionCI, Bounds: s.PrecisionBounds, Estimable: e.Estimable, Reason: e.Reason, Note: e.Note}
		case StatRecall:
			e := s.Estimable.Recall
			x = Statistic{Value: s.Recall, CI: s.RecallCI, Estimable: e.Estimable, Reason: e.Reason, Note: e.Note}
		case StatF1:
			e := s.Estimable.F1
			x = Statistic{Value: s.F1, Estimable: e.Estimable, Reason: e.Reason, Note: e.Note}
		case StatFlagRate:
			x = Statistic{Value: s.FlagRate, Estimable: s.FlagRate != nil}
			if s.FlagRate != nil {
				ci := window.Wilson(c.Flagged, c.Predictions, window.Z95)
				x.CI = &ci
			}
		case StatLabelCoverage:
			x = Statistic{Value: s.LabelCoverage, Estimable: s.LabelCoverage != nil}
		case StatMeanScore:
			x = Statistic{Value: s.MeanScore, Estimable: s.MeanScore != nil}
		}
		if x.Value == nil && x.Reason == "" && (m == StatFlagRate || m == StatLabelCoverage || m == StatMeanScore) {
			x.Reason = noPredictions
		}
		p.Statistics[m] = x
	}
	return p
}
