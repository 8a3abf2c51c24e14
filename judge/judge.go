package judge

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/window"
)

// Decision is the outcome of a comparison, a segment or a whole judgement.
type Decision string

// Decisions.
const (
	// Pass: enough samples, and no metric is significantly worse by more than its
	// tolerance.
	Pass Decision = "pass"
	// Fail: some metric is significantly worse (after the Holm correction) by more
	// than its tolerance.
	Fail Decision = "fail"
	// Inconclusive: not enough samples yet to tell (and nothing failed).
	Inconclusive Decision = "inconclusive"
)

// Decisions returns every decision in a stable order (for exporters of enums).
func Decisions() []Decision { return []Decision{Pass, Fail, Inconclusive} }

// Metric names a labeled metric that is compared.
type Metric string

// Metrics.
const (
	Recall    Metric = "recall"
	Precision Metric = "precision"
)

// Level grades a label-free signal.
type Level string

// Levels.
const (
	// LevelOK: no notable shift.
	LevelOK Level = "ok"
	// LevelWarn: a moderate shift (PSI >= PSIWarn, or a significant flag-rate change).
	LevelWarn Level = "warn"
	// LevelAlert: a major shift (PSI >= PSIAlert).
	LevelAlert Level = "alert"
	// LevelInsufficient: too few predictions to say.
	LevelInsufficient Level = "insufficient"
)

// Interval is a 95 % Wilson interval.
type Interval struct {
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
}

// Proportion is x successes out of n with its 95 % Wilson interval. Value is null
// when n is zero (the interval is then [0, 1]).
type Proportion struct {
	Successes int64    `json:"successes"`
	N         int64    `json:"n"`
	Value     *float64 `json:"value"`
	CI        Interval `json:"ci95"`
}

// proportion is x of n; counts that cannot be a proportion (n <= 0, x < 0 or
// x > n, as only corrupt tallies would give) leave it undefined.
func proportion(x, n int64) Proportion {
	p := Proportion{Successes: x, N: n, CI: Interval{0, 1}}
	if n > 0 && x >= 0 && x <= n {
		ci := window.Wilson(x, n, window.Z95)
		p.CI = Interval{ci.Lower, ci.Upper}
		p.Value = ptr(float64(x) / float64(n))
	}
	return p
}

// difference is c - b, undefined unless both are defined.
func difference(b, c *float64) *float64 {
	if b == nil || c == nil {
		return nil
	}
	return ptr(*c - *b)
}

// Comparison is one labeled metric of the candidate against the baseline in one
// scope (overall or a segment).
type Comparison struct {
	Metric    Metric     `json:"metric"`
	Decision  Decision   `json:"decision"`
	Reason    string     `json:"reason"`
	Baseline  Proportion `json:"baseline"`
	Candidate Proportion `json:"candidate"`
	// Delta is candidate - baseline (negative: the candidate is worse).
	Delta     *float64 `json:"delta"`
	Tolerance float64  `json:"tolerance"`
	// Tested reports that both variants had at least MinN samples, so the metric was
	// tested and counted in the Holm family.
	Tested bool `json:"tested"`
	// Z is the pooled two-proportion z statistic; PValue its one-sided p-value for
	// "the candidate is worse"; AdjustedPValue the Holm-adjusted one.
	Z              *float64 `json:"z"`
	PValue         *float64 `json:"p_value"`
	AdjustedPValue *float64 `json:"adjusted_p_value"`
	// Significant: AdjustedPValue <= Alpha (the candidate is worse beyond noise).
	Significant bool `json:"significant"`
}

// FlagRateShift compares the share of predictions flagged positive; it needs no
// labels. The test is two-sided (a model flagging much more or much less is news).
type FlagRateShift struct {
	Baseline       Proportion `json:"baseline"`
	Candidate      Proportion `json:"candidate"`
	Delta          *float64   `json:"delta"`
	PValue         *float64   `json:"p_value"`
	AdjustedPValue *float64   `json:"adjusted_p_value"`
	Level          Level      `json:"level"`
}

// ScoreShift compares the score distributions; it needs no labels.
type ScoreShift struct {
	BaselineMean  *float64 `json:"baseline_mean"`
	CandidateMean *float64 `json:"candidate_mean"`
	MeanDelta     *float64 `json:"mean_delta"`
	// PSI of the candidate's score histogram against the baseline's.
	PSI   *float64 `json:"psi"`
	Level Level    `json:"level"`
}

// Scope is the whole variant (both fields empty) or one segment of it.
type Scope struct {
	SegmentKey string `json:"segment_key,omitempty"`
	Segment    string `json:"segment,omitempty"`
}

// Overall reports whether the scope is the variant's overall series.
func (s Scope) Overall() bool { return s.SegmentKey == "" }

func (s Scope) String() string {
	if s.Overall() {
		return "overall"
	}
	return s.SegmentKey + "=" + s.Segment
}

// ScopeJudgement is the comparison in one scope.
type ScopeJudgement struct {
	Scope
	Decision  Decision      `json:"decision"`
	Reason    string        `json:"reason"`
	Recall    Comparison    `json:"recall"`
	Precision Comparison    `json:"precision"`
	FlagRate  FlagRateShift `json:"flag_rate"`
	Score     ScoreShift    `json:"score"`

	base, cand labels.Counts
}

// Counts returns the baseline's and the candidate's counts in this scope.
func (s ScopeJudgement) Counts() (baseline, candidate labels.Counts) { return s.base, s.cand }

// Method records the rules and thresholds a judgement was made with.
type Method struct {
	Test               string  `json:"test"`
	Correction         string  `json:"correction"`
	Alpha              float64 `json:"alpha"`
	MinN               int64   `json:"min_n"`
	RecallTolerance    float64 `json:"recall_tolerance"`
	PrecisionTolerance float64 `json:"precision_tolerance"`
	MinPredictions     int64   `json:"min_predictions"`
	PSIWarn            float64 `json:"psi_warn"`
	PSIAlert           float64 `json:"psi_alert"`
}

// Judgement is the candidate against the baseline over one window.
type Judgement struct {
	Decision    Decision   `json:"decision"`
	Reason      string     `json:"reason"`
	Baseline    string     `json:"baseline"`
	Candidate   string     `json:"candidate"`
	Window      string     `json:"window"`
	WindowStart *time.Time `json:"window_start,omitempty"`
	WindowEnd   time.Time  `json:"window_end"`
	// SegmentRegressions is how many segments fail: significantly worse than the
	// baseline in recall or precision after the Holm correction, with enough samples,
	// by more than the tolerance.
	SegmentRegressions int `json:"segment_regressions"`
	// SegmentsJudged is how many segments had enough samples to pass or fail.
	SegmentsJudged int `json:"segments_judged"`
	// WorstSegmentRecallDelta is the lowest candidate - baseline recall among segments
	// where recall was tested (null if none was); WorstSegment names that segment.
	WorstSegmentRecallDelta *float64         `json:"worst_segment_recall_delta"`
	WorstSegment            *Scope           `json:"worst_segment,omitempty"`
	Overall                 ScopeJudgement   `json:"overall"`
	Segments                []ScopeJudgement `json:"segments"`
	// Warnings lists label-free signals at warn or alert level and segments too
	// small to judge; they do not change the decision.
	Warnings []string `json:"warnings"`
	Method   Method   `json:"method"`
}

// Judge compares candidate against baseline in snap, overall and per segment. It
// fails only on input it cannot judge at all (empty or equal variant names, an
// invalid config); missing data is an inconclusive judgement, not an error.
func Judge(snap window.Snapshot, baseline, candidate string, cfg Config) (Judgement, error) {
	if err := cfg.Validate(); err != nil {
		return Judgement{}, err
	}
	cfg = cfg.withDefaults()
	switch {
	case baseline == "":
		return Judgement{}, errors.New("judge: baseline variant is empty")
	case candidate == "":
		return Judgement{}, errors.New("judge: candidate variant is empty")
	case baseline == candidate:
		return Judgement{}, fmt.Errorf("judge: baseline and candidate are both %q", baseline)
	}
	j := Judgement{
		Baseline: baseline, Candidate: candidate, Window: snap.Span.String(), WindowEnd: snap.End,
		Segments: []ScopeJudgement{}, Warnings: []string{},
		Method: Method{
			Test:       "pooled two-proportion z-test, one-sided (candidate worse)",
			Correction: "holm",
			Alpha:      cfg.Alpha, MinN: cfg.MinN,
			RecallTolerance: cfg.RecallTolerance, PrecisionTolerance: cfg.PrecisionTolerance,
			MinPredictions: cfg.MinPredictions, PSIWarn: cfg.PSIWarn, PSIAlert: cfg.PSIAlert,
		},
	}
	if !snap.Start.IsZero() {
		start := snap.Start
		j.WindowStart = &start
	}

	type pair struct{ base, cand labels.Counts }
	scopes := map[Scope]*pair{{}: {}}
	var haveBase, haveCand bool
	variants := map[string]bool{}
	for _, r := range snap.Rows {
		variants[r.Key.Variant] = true
		if r.Key.Variant != baseline && r.Key.Variant != candidate {
			continue
		}
		sc := Scope{SegmentKey: r.Key.SegmentKey, Segment: r.Key.Segment}
		p := scopes[sc]
		if p == nil {
			p = &pair{}
			scopes[sc] = p
		}
		if r.Key.Variant == baseline {
			p.base.Add(r.Counts)
			haveBase = haveBase || r.Counts.Predictions > 0 || r.Counts.Resolved() > 0
		} else {
			p.cand.Add(r.Counts)
			haveCand = haveCand || r.Counts.Predictions > 0 || r.Counts.Resolved() > 0
		}
	}

	all := make([]*ScopeJudgement, 0, len(scopes))
	for sc, p := range scopes {
		all = append(all, &ScopeJudgement{Scope: sc, base: p.base, cand: p.cand})
	}
	slices.SortFunc(all, func(a, b *ScopeJudgement) int {
		if a.Overall() != b.Overall() {
			if a.Overall() {
				return -1
			}
			return 1
		}
		return cmp.Or(strings.Compare(a.SegmentKey, b.SegmentKey), strings.Compare(a.Segment, b.Segment))
	})

	// Labeled comparisons: one Holm family over every tested metric in every scope.
	var family []*Comparison
	for _, s := range all {
		b, c := s.base, s.cand
		s.Recall = newComparison(Recall, b.TP, b.TP+b.FN, c.TP, c.TP+c.FN, cfg.RecallTolerance, cfg.MinN)
		s.Precision = newComparison(Precision, b.TP, b.TP+b.FP, c.TP, c.TP+c.FP, cfg.PrecisionTolerance, cfg.MinN)
		for _, cm := range []*Comparison{&s.Recall, &s.Precision} {
			if cm.Tested {
				family = append(family, cm)
			}
		}
	}
	adjusted := Holm(pValues(family, func(c *Comparison) float64 { return *c.PValue }))
	for i, cm := range family {
		cm.AdjustedPValue = ptr(adjusted[i])
		cm.Significant = adjusted[i] <= cfg.Alpha && *cm.Delta < 0
	}
	for _, s := range all {
		for _, cm := range []*Comparison{&s.Recall, &s.Precision} {
			cm.decide(cfg.Alpha, cfg.MinN)
		}
	}

	// Label-free signals: flag rate (its own Holm family) and score PSI.
	var flags []*FlagRateShift
	for _, s := range all {
		s.FlagRate = newFlagRateShift(s.base, s.cand, cfg.MinPredictions)
		if s.FlagRate.PValue != nil {
			flags = append(flags, &s.FlagRate)
		}
		s.Score = newScoreShift(s.base, s.cand, cfg)
	}
	fadj := Holm(pValues(flags, func(f *FlagRateShift) float64 { return *f.PValue }))
	for i, f := range flags {
		f.AdjustedPValue = ptr(fadj[i])
		if fadj[i] <= cfg.Alpha {
			f.Level = LevelWarn
		}
	}

	for _, s := range all {
		s.decide()
		if s.Overall() {
			j.Overall = *s
			continue
		}
		if s.Decision == Fail {
			j.SegmentRegressions++
		}
		if s.Decision != Inconclusive {
			j.SegmentsJudged++
		}
		if s.Recall.Tested && (j.WorstSegmentRecallDelta == nil || *s.Recall.Delta < *j.WorstSegmentRecallDelta) {
			j.WorstSegmentRecallDelta = ptr(*s.Recall.Delta)
			sc := s.Scope
			j.WorstSegment = &sc
		}
		j.Segments = append(j.Segments, *s)
	}
	slices.SortStableFunc(j.Segments, func(a, b ScopeJudgement) int {
		if (a.Decision == Fail) != (b.Decision == Fail) {
			if a.Decision == Fail {
				return -1
			}
			return 1
		}
		return 0
	})
	for _, s := range all {
		j.Warnings = append(j.Warnings, s.warnings()...)
	}
	if n := len(j.Segments) - j.SegmentsJudged; n > 0 {
		j.Warnings = append(j.Warnings, fmt.Sprintf("%d of %d segments have too few labels to judge (min n %d per variant)", n, len(j.Segments), cfg.MinN))
	}
	j.decide(haveBase, haveCand, variants, cfg)
	return j, nil
}

func pValues[T any](xs []T, p func(T) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = p(x)
	}
	return out
}

func newComparison(m Metric, bx, bn, cx, cn int64, tol float64, minN int64) Comparison {
	c := Comparison{Metric: m, Baseline: proportion(bx, bn), Candidate: proportion(cx, cn), Tolerance: tol}
	c.Delta = difference(c.Baseline.Value, c.Candidate.Value)
	if bn >= minN && cn >= minN {
		if t, ok := TwoProportionZ(bx, bn, cx, cn); ok {
			c.Tested = true
			c.Z, c.PValue = ptr(t.Z), ptr(t.Lower)
		}
	}
	return c
}

// nOf says what a metric's n counts.
func nOf(m Metric) string {
	if m == Recall {
		return "labeled positives (TP+FN)"
	}
	return "resolved predicted positives (TP+FP)"
}

func (c *Comparison) decide(alpha float64, minN int64) {
	if !c.Tested {
		c.Decision = Inconclusive
		c.Reason = fmt.Sprintf("not enough labels: %s needs %d %s per variant; baseline has %d, candidate %d",
			c.Metric, minN, nOf(c.Metric), c.Baseline.N, c.Candidate.N)
		return
	}
	d := *c.Delta
	move := fmt.Sprintf("%s %.3f → %.3f (%+.3f)", c.Metric, *c.Baseline.Value, *c.Candidate.Value, d)
	adj := *c.AdjustedPValue
	switch {
	case c.Significant && -d > c.Tolerance:
		c.Decision = Fail
		c.Reason = fmt.Sprintf("%s: significantly worse (adjusted p %.2g ≤ α %g) and the drop exceeds the tolerance %g",
			move, adj, alpha, c.Tolerance)
	case c.Significant:
		c.Decision = Pass
		c.Reason = fmt.Sprintf("%s: significantly lower (adjusted p %.2g ≤ α %g) but within the tolerance %g",
			move, adj, alpha, c.Tolerance)
	case d >= 0:
		c.Decision = Pass
		c.Reason = fmt.Sprintf("%s: candidate is not worse", move)
	default:
		c.Decision = Pass
		c.Reason = fmt.Sprintf("%s: drop not significant (adjusted p %.2g > α %g)", move, adj, alpha)
	}
}

func newFlagRateShift(b, c labels.Counts, minPred int64) FlagRateShift {
	f := FlagRateShift{Baseline: proportion(b.Flagged, b.Predictions), Candidate: proportion(c.Flagged, c.Predictions), Level: LevelInsufficient}
	f.Delta = difference(f.Baseline.Value, f.Candidate.Value)
	if b.Predictions >= minPred && c.Predictions >= minPred {
		if t, ok := TwoProportionZ(b.Flagged, b.Predictions, c.Flagged, c.Predictions); ok {
			f.PValue = ptr(t.TwoSided)
			f.Level = LevelOK
		}
	}
	return f
}

func newScoreShift(b, c labels.Counts, cfg Config) ScoreShift {
	s := ScoreShift{Level: LevelInsufficient}
	if b.Predictions > 0 {
		s.BaselineMean = ptr(b.ScoreSum / float64(b.Predictions))
	}
	if c.Predictions > 0 {
		s.CandidateMean = ptr(c.ScoreSum / float64(c.Predictions))
	}
	s.MeanDelta = difference(s.BaselineMean, s.CandidateMean)
	if psi, ok := PSI(b.Bins, c.Bins); ok {
		s.PSI = ptr(psi)
		if b.Predictions >= cfg.MinPredictions && c.Predictions >= cfg.MinPredictions {
			s.Level = psiLevel(psi, cfg)
		}
	}
	return s
}

func psiLevel(psi float64, cfg Config) Level {
	switch {
	case psi >= cfg.PSIAlert:
		return LevelAlert
	case psi >= cfg.PSIWarn:
		return LevelWarn
	}
	return LevelOK
}

func (s *ScopeJudgement) decide() {
	var fails, waits []string
	for _, c := range []Comparison{s.Recall, s.Precision} {
		switch c.Decision {
		case Fail:
			fails = append(fails, c.Reason)
		case Inconclusive:
			waits = append(waits, c.Reason)
		}
	}
	switch {
	case len(fails) > 0:
		s.Decision, s.Reason = Fail, strings.Join(fails, "; ")
	case len(waits) > 0:
		s.Decision, s.Reason = Inconclusive, strings.Join(waits, "; ")
	default:
		s.Decision, s.Reason = Pass, s.Recall.Reason+"; "+s.Precision.Reason
	}
}

func (s *ScopeJudgement) warnings() []string {
	var w []string
	if s.Score.Level == LevelWarn || s.Score.Level == LevelAlert {
		w = append(w, fmt.Sprintf("%s: score distribution shifted, PSI %s (%s; mean score %s)",
			s.Scope, num(s.Score.PSI, 3), s.Score.Level, pair(s.Score.BaselineMean, s.Score.CandidateMean, 3)))
	}
	if s.FlagRate.Level == LevelWarn {
		w = append(w, fmt.Sprintf("%s: flag rate changed %s (adjusted p %s)",
			s.Scope, pair(s.FlagRate.Baseline.Value, s.FlagRate.Candidate.Value, 4), pval(s.FlagRate.AdjustedPValue)))
	}
	return w
}

func (j *Judgement) decide(haveBase, haveCand bool, variants map[string]bool, cfg Config) {
	known := make([]string, 0, len(variants))
	for v := range variants {
		known = append(known, v)
	}
	slices.Sort(known)
	missing := func(role, v string) string {
		return fmt.Sprintf("no data for %s %q in window %s (variants with data: %s)", role, v, j.Window, listOrNone(known))
	}
	var failing []string
	for _, s := range append([]ScopeJudgement{j.Overall}, j.Segments...) {
		for _, c := range []Comparison{s.Recall, s.Precision} {
			if c.Decision == Fail {
				failing = append(failing, fmt.Sprintf("%s in %s %.3f → %.3f (%+.3f, adjusted p %.2g)",
					c.Metric, s.Scope, *c.Baseline.Value, *c.Candidate.Value, *c.Delta, *c.AdjustedPValue))
			}
		}
	}
	switch {
	case len(failing) > 0:
		j.Decision = Fail
		const show = 3
		more := ""
		if len(failing) > show {
			more = fmt.Sprintf("; and %d more", len(failing)-show)
			failing = failing[:show]
		}
		j.Reason = fmt.Sprintf("candidate %s is worse than baseline %s beyond tolerance (%d segment(s) regressed, window %s, α %g): %s%s",
			j.Candidate, j.Baseline, j.SegmentRegressions, j.Window, cfg.Alpha, strings.Join(failing, "; "), more)
	case !haveCand:
		j.Decision, j.Reason = Inconclusive, missing("candidate", j.Candidate)
	case !haveBase:
		j.Decision, j.Reason = Inconclusive, missing("baseline", j.Baseline)
	case j.Overall.Decision == Inconclusive:
		j.Decision, j.Reason = Inconclusive, "overall: "+j.Overall.Reason
	default:
		j.Decision = Pass
		j.Reason = fmt.Sprintf("no significant drop beyond tolerance overall or in %d judged segment(s) (window %s, α %g, Holm)",
			j.SegmentsJudged, j.Window, cfg.Alpha)
		if n := len(j.Segments) - j.SegmentsJudged; n > 0 {
			j.Reason += fmt.Sprintf("; %d segment(s) not yet judged for lack of labels", n)
		}
	}
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func ptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
