package judge

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// Sort orders of a shadow report's segments.
const (
	// SortDivergence: largest score PSI first, then largest absolute mean-score
	// difference (how far the candidate's behaviour diverges; needs no labels).
	SortDivergence = "divergence"
	// SortRecall and SortPrecision: most negative delta (candidate worse) first.
	SortRecall    = "recall"
	SortPrecision = "precision"
	// SortFlagRate: largest absolute flag-rate difference first.
	SortFlagRate = "flag_rate"
	// SortSegment: by segment key and value.
	SortSegment = "segment"
)

// SortOrders lists the accepted report sort orders.
func SortOrders() []string {
	return []string{SortDivergence, SortRecall, SortPrecision, SortFlagRate, SortSegment}
}

// VariantSummary is one variant's numbers in one scope of a shadow report.
type VariantSummary struct {
	Predictions   int64    `json:"predictions"`
	Resolved      int64    `json:"resolved"`
	LabelCoverage *float64 `json:"label_coverage"`
	MeanScore     *float64 `json:"mean_score"`
	FlagRate      *float64 `json:"flag_rate"`
	// Precision is null while it is not estimable from the labels so far (Estimable
	// says why); PrecisionBounds is the interval it lies in meanwhile.
	Precision       *float64         `json:"precision"`
	PrecisionCI     Interval         `json:"precision_ci95"`
	PrecisionBounds *window.Interval `json:"precision_bounds"`
	Recall          *float64         `json:"recall"`
	RecallCI        Interval         `json:"recall_ci95"`
	F1              *float64         `json:"f1"`
	// ScoreHistogram is the share of predictions in each of the ten equal-width
	// score bins [0, 0.1), ..., [0.9, 1].
	ScoreHistogram [tally.ScoreBins]float64 `json:"score_histogram"`
	// Estimable says whether precision, recall and F1 are estimable from the labels
	// so far (window.Rule).
	Estimable window.Estimates `json:"estimable"`
}

func summarize(c tally.Counts, rule window.Rule) VariantSummary {
	s := window.DeriveWith(c, rule)
	v := VariantSummary{
		Predictions: c.Predictions, Resolved: c.Resolved(),
		LabelCoverage: s.LabelCoverage, MeanScore: s.MeanScore, FlagRate: s.FlagRate,
		Precision: s.Precision, Recall: s.Recall, F1: s.F1,
		PrecisionCI: proportion(c.TP, c.TP+c.FP).CI, RecallCI: proportion(c.TP, c.TP+c.FN).CI,
		PrecisionBounds: s.PrecisionBounds, Estimable: s.Estimable,
	}
	var n int64
	for _, b := range c.Bins {
		n += b
	}
	if n > 0 {
		for i, b := range c.Bins {
			v.ScoreHistogram[i] = float64(b) / float64(n)
		}
	}
	return v
}

// ReportRow is one scope of the shadow report: each variant's numbers, how far the
// candidate diverges, and the judge's significance and decision there.
type ReportRow struct {
	Scope
	Baseline  VariantSummary `json:"baseline"`
	Candidate VariantSummary `json:"candidate"`
	// Score divergence (label-free).
	PSI            *float64 `json:"psi"`
	PSILevel       Level    `json:"psi_level"`
	MeanScoreDelta *float64 `json:"mean_score_delta"`
	// Flag-rate difference (label-free), two-sided Holm-adjusted p-value.
	FlagRateDelta  *float64 `json:"flag_rate_delta"`
	FlagRatePValue *float64 `json:"flag_rate_p_value"`
	FlagRateLevel  Level    `json:"flag_rate_level"`
	// Labeled deltas (candidate - baseline) and the always-valid p-values for "the
	// candidate is worse", adjusted for its share of α; null without labels.
	RecallDelta     *float64 `json:"recall_delta"`
	RecallPValue    *float64 `json:"recall_p_value"`
	PrecisionDelta  *float64 `json:"precision_delta"`
	PrecisionPValue *float64 `json:"precision_p_value"`
	// Discordance (paired designs only; label-free): where the two models disagree.
	Discordance *Discordance `json:"discordance,omitempty"`
	Decision    Decision     `json:"decision"`
	Reason      string       `json:"reason"`
}

// Report is the analyst's shadow comparison of candidate against baseline.
type Report struct {
	Baseline    string      `json:"baseline"`
	Candidate   string      `json:"candidate"`
	Window      string      `json:"window"`
	WindowStart *time.Time  `json:"window_start,omitempty"`
	WindowEnd   time.Time   `json:"window_end"`
	Sort        string      `json:"sort"`
	Decision    Decision    `json:"decision"`
	Reason      string      `json:"reason"`
	Overall     ReportRow   `json:"overall"`
	Segments    []ReportRow `json:"segments"`
	Warnings    []string    `json:"warnings"`
	Method      Method      `json:"method"`
}

// Compare builds the shadow report of candidate against baseline in snap, its
// segments ordered by sortBy (one of SortOrders; empty means SortDivergence).
func Compare(snap window.Snapshot, baseline, candidate, sortBy string, cfg Config) (Report, error) {
	if sortBy == "" {
		sortBy = SortDivergence
	}
	if !slices.Contains(SortOrders(), sortBy) {
		return Report{}, fmt.Errorf("judge: sort %q: want one of %s", sortBy, strings.Join(SortOrders(), ", "))
	}
	j, err := Judge(snap, baseline, candidate, cfg)
	if err != nil {
		return Report{}, err
	}
	r := Report{
		Baseline: j.Baseline, Candidate: j.Candidate, Window: j.Window, WindowStart: j.WindowStart, WindowEnd: j.WindowEnd,
		Sort: sortBy, Decision: j.Decision, Reason: j.Reason, Overall: reportRow(j.Overall, cfg.Estimable),
		Segments: make([]ReportRow, 0, len(j.Segments)), Warnings: j.Warnings, Method: j.Method,
	}
	for _, s := range j.Segments {
		r.Segments = append(r.Segments, reportRow(s, cfg.Estimable))
	}
	slices.SortStableFunc(r.Segments, func(a, b ReportRow) int {
		bySegment := a.Scope.compare(b.Scope)
		switch sortBy {
		case SortDivergence:
			return cmp.Or(desc(a.PSI, b.PSI), desc(abs(a.MeanScoreDelta), abs(b.MeanScoreDelta)), bySegment)
		case SortRecall:
			return cmp.Or(asc(a.RecallDelta, b.RecallDelta), bySegment)
		case SortPrecision:
			return cmp.Or(asc(a.PrecisionDelta, b.PrecisionDelta), bySegment)
		case SortFlagRate:
			return cmp.Or(desc(abs(a.FlagRateDelta), abs(b.FlagRateDelta)), bySegment)
		}
		return bySegment
	})
	return r, nil
}

func reportRow(s ScopeJudgement, rule window.Rule) ReportRow {
	b, c := s.Counts()
	row := ReportRow{
		Scope: s.Scope, Baseline: summarize(b, rule), Candidate: summarize(c, rule),
		PSI: s.Score.PSI, PSILevel: s.Score.Level, MeanScoreDelta: s.Score.MeanDelta,
		FlagRateDelta: s.FlagRate.Delta, FlagRatePValue: s.FlagRate.AdjustedPValue, FlagRateLevel: s.FlagRate.Level,
		Decision: s.Decision, Reason: s.Reason,
	}
	row.RecallDelta, row.RecallPValue = s.Recall.Delta, s.Recall.AdjustedPValue
	row.PrecisionDelta, row.PrecisionPValue = s.Precision.Delta, s.Precision.AdjustedPValue
	row.Discordance = s.Discordance
	return row
}

func abs(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := math.Abs(*p)
	return &v
}

// asc orders smaller values first and undefined values last.
func asc(a, b *float64) int { return nilsLast(a, b, false) }

// desc orders larger values first and undefined values last.
func desc(a, b *float64) int { return nilsLast(a, b, true) }

// nilsLast orders defined values (larger first when descending) before undefined
// ones.
func nilsLast(a, b *float64, descending bool) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	case descending:
		return cmp.Compare(*b, *a)
	}
	return cmp.Compare(*a, *b)
}
