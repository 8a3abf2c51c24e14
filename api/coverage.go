package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// Cohorts is what GET /v1/coverage needs from the windows.
type Cohorts interface {
	Cohorts(ages []time.Duration) (window.CohortSnapshot, error)
	DefaultAges(maturity time.Duration) []time.Duration
}

// CoverageHandler serves GET /v1/coverage[?by=segment][&variant=v6][&segment_key=merchant_category]: per variant (and segment), the predictions of
// each age class of prediction time and how many of them are resolved, by label
// class. It shows what is still missing: fraud negatives arrive by maturity, weeks
// after the positives.
type CoverageHandler struct {
	reading
	cohorts Cohorts
}

// NewCoverageHandler returns the handler. log may be nil.
func NewCoverageHandler(cohorts Cohorts, log *slog.Logger, opts ...Option) *CoverageHandler {
	return &CoverageHandler{reading: newReading(log, opts), cohorts: cohorts}
}

// CoverageResponse is the body of GET /v1/coverage.
type CoverageResponse struct {
	End time.Time `json:"end"`
	// Labels is the label policy the counts were resolved under.
	Labels *Policy `json:"labels"`
	// Ages names the age classes, youngest first, as each row's classes.
	Ages []string `json:"ages"`
	// Variants holds one row per variant; Segments one per (variant, segment key,
	// value), only with by=segment.
	Variants []CoverageRow `json:"variants"`
	Segments []CoverageRow `json:"segments,omitempty"`
}

// CoverageRow is one series' age classes, youngest first.
type CoverageRow struct {
	Variant    string        `json:"variant"`
	SegmentKey string        `json:"segment_key,omitempty"`
	Segment    string        `json:"segment,omitempty"`
	Classes    []CohortClass `json:"classes"`
}

// CohortClass is the predictions of one age class (by prediction time) and where
// their labels stand.
type CohortClass struct {
	// Age names the class: "<1h", "1h-24h", ..., ">=30d". MinAge and MaxAge bound
	// it (MaxAge null for the oldest): every prediction in it is at least MinAge old.
	Age    string  `json:"age"`
	MinAge string  `json:"min_age"`
	MaxAge *string `json:"max_age"`
	// Matured: every prediction in the class is past VERDICT_MATURITY.
	Matured bool `json:"matured"`

	Predictions        int64 `json:"predictions"`
	PredictedPositives int64 `json:"predicted_positives"`
	// LabeledPositives = tp + fn; LabeledNegatives = fp + tn resolved by a label;
	// MaturedNegatives = fp + tn resolved by maturity; Pending = not resolved yet,
	// Censored the part of it only a (review) label resolves.
	LabeledPositives int64 `json:"labeled_positives"`
	LabeledNegatives int64 `json:"labeled_negatives"`
	MaturedNegatives int64 `json:"matured_negatives"`
	Pending          int64 `json:"pending"`
	Censored         int64 `json:"censored"`
	// LabelCoverage = resolved / predictions (null without predictions).
	LabelCoverage *float64 `json:"label_coverage"`
	// Estimable is whether the class alone estimates precision, recall and F1.
	Estimable window.Estimates `json:"estimable"`
}

// coverageParameters are the query parameters GET /v1/coverage reads.
var coverageParameters = []string{"by", "variant", "segment_key"}

// ServeHTTP implements http.Handler.
func (h *CoverageHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q, ok := h.query(w, r, coverageParameters...)
	if !ok {
		return
	}
	rows, err := parseRowFilter(q)
	if err != nil {
		badRequest(w, r, err, h.log)
		return
	}
	maturity := h.policy.Maturity
	ages := h.cohorts.DefaultAges(maturity)
	snap, err := h.cohorts.Cohorts(ages)
	if err != nil {
		h.log.Error("age classes", "err", err)
		writeJSON(w, r, http.StatusInternalServerError, ErrorBody{Error: fmt.Sprintf("age classes: %v", err)}, h.log)
		return
	}
	resp := CoverageResponse{End: snap.End, Labels: h.policy.json()}
	for i := 0; i <= len(ages); i++ {
		var lo, hi time.Duration
		if i > 0 {
			lo = ages[i-1]
		}
		if i < len(ages) {
			hi = ages[i]
		}
		resp.Ages = append(resp.Ages, window.AgeName(lo, hi))
	}
	resp.Variants, resp.Segments = splitRows(rows, snap.Rows, func(row window.CohortRow) tally.Key { return row.Key }, func(row window.CohortRow) CoverageRow {
		out := CoverageRow{Variant: row.Key.Variant, SegmentKey: row.Key.SegmentKey, Segment: row.Key.Segment}
		for _, cl := range row.Classes {
			out.Classes = append(out.Classes, classOf(cl, maturity))
		}
		return out
	})
	writeJSON(w, r, http.StatusOK, resp, h.log)
}

func classOf(cl window.AgeClass, maturity time.Duration) CohortClass {
	c := cl.Counts
	out := CohortClass{
		Age: cl.Name(), MinAge: window.Span(cl.MinAge).String(),
		Matured:     maturity > 0 && cl.MinAge >= maturity,
		Predictions: c.Predictions, PredictedPositives: c.Flagged,
		LabeledPositives: c.TP + c.FN, LabeledNegatives: c.FP + c.TN - c.Matured, MaturedNegatives: c.Matured,
		Pending: c.Pending(), Censored: c.Censored,
		LabelCoverage: cl.Stats.LabelCoverage, Estimable: cl.Stats.Estimable,
	}
	if cl.MinAge == 0 {
		out.MinAge = "0s"
	}
	if cl.MaxAge > 0 {
		m := window.Span(cl.MaxAge).String()
		out.MaxAge = &m
	}
	return out
}
