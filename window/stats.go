package window

import (
	"fmt"
	"math"
	"strings"

	"github.com/verdictml/verdict/tally"
)

// Z95 is the standard normal quantile for a two-sided 95 % interval.
const Z95 = 1.959963984540054

// Interval is a confidence interval for a proportion.
type Interval struct {
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
}

// Stats are the statistics derived from one series' counts. A nil field is
// undefined (its denominator is zero) or, for precision, its CI and F1, not
// estimable from the labels so far (Estimable says which and why): no value is
// better than a biased one.
type Stats struct {
	// Precision = TP / (TP + FP), over resolved predictions flagged positive.
	Precision   *float64
	PrecisionCI *Interval
	// PrecisionBounds is the interval precision is known to lie in whatever the open
	// flagged predictions (pending, not censored) turn out to be:
	// [TP / (TP+FP+open), (TP+open) / (TP+FP+open)]. Set whenever a flagged prediction
	// is resolved or open, estimable or not; its width is the share still open.
	PrecisionBounds *Interval
	// Recall = TP / (TP + FN), over resolved predictions labeled positive.
	Recall   *float64
	RecallCI *Interval
	// F1 is the harmonic mean of precision and recall (undefined if either is, or both
	// are zero; not estimable while precision is not).
	F1 *float64
	// LabelCoverage = resolved / predictions.
	LabelCoverage *float64
	// FlagRate = flagged / predictions; it needs no labels.
	FlagRate *float64
	// MeanScore is the mean score of the predictions.
	MeanScore *float64
	// Estimable says whether precision, recall and F1 can be estimated from the labels
	// so far (Rule), and why not or what to keep in mind.
	Estimable Estimates
}

// Estimability is whether one statistic can be estimated from the labels so far.
type Estimability struct {
	Estimable bool `json:"estimable"`
	// Reason says why a statistic is not estimable (or undefined).
	Reason string `json:"reason,omitempty"`
	// Note says what to keep in mind about an estimable one (for example that recall
	// is early: from the positives labeled so far).
	Note string `json:"note,omitempty"`
}

// Estimates is the estimability of each label-based statistic.
type Estimates struct {
	Precision Estimability `json:"precision"`
	Recall    Estimability `json:"recall"`
	F1        Estimability `json:"f1"`
}

// Statistic names, as Prometheus's statistic label and the API's keys.
const (
	StatPrecision = "precision"
	StatRecall    = "recall"
	StatF1        = "f1"
)

// Each calls fn for precision, recall and F1, in that order.
func (e Estimates) Each(fn func(statistic string, x Estimability)) {
	fn(StatPrecision, e.Precision)
	fn(StatRecall, e.Recall)
	fn(StatF1, e.F1)
}

// DefaultCoverage is Rule.Coverage's default.
const DefaultCoverage = 0.95

// Rule decides when a statistic is estimable. Fraud labels are lopsided: a few
// positives are confirmed within hours, negatives mostly by maturity weeks later, so
// the resolved part of a recent cohort is mostly positives.
//
//   - Precision (and F1) needs the negatives: it is estimable once at least Coverage
//     of the flagged predictions (censored ones aside) are resolved, by a label or by
//     maturity. Before that, the point estimate from the resolved ones is biased
//     upward; only PrecisionBounds is reported. The bounds' width is the share of
//     flagged predictions still open, so the rule caps the error from missing labels
//     at 1 - Coverage.
//   - Recall is estimable as soon as a positive is labeled, but while less than
//     Coverage of the predictions (censored aside) are resolved it is early: it
//     comes from the positives confirmed so far, which favour fast-confirmed fraud.
type Rule struct {
	// Coverage is the resolved share that makes precision estimable and recall no
	// longer early, in (0, 1]. Zero means DefaultCoverage.
	Coverage float64
}

func (r Rule) coverage() float64 {
	if r.Coverage <= 0 {
		return DefaultCoverage
	}
	return r.Coverage
}

// Derive computes the statistics of c with the default Rule.
func Derive(c tally.Counts) Stats { return DeriveWith(c, Rule{}) }

// DeriveWith computes the statistics of c, with estimability judged by rule.
func DeriveWith(c tally.Counts, rule Rule) Stats {
	var s Stats
	need := rule.coverage()
	// Open flagged predictions: pending and not censored (negative counts, which only
	// inconsistent test counts produce, are taken as none).
	resolvedFlagged := c.TP + c.FP
	openFlagged := max(0, c.Flagged-c.CensoredFlagged-resolvedFlagged)
	if n := resolvedFlagged + openFlagged; n > 0 {
		s.PrecisionBounds = &Interval{Lower: float64(c.TP) / float64(n), Upper: float64(c.TP+openFlagged) / float64(n)}
	}
	switch {
	case resolvedFlagged == 0 && openFlagged == 0 && c.CensoredFlagged > 0:
		s.Estimable.Precision.Reason = fmt.Sprintf("undefined: all %d flagged predictions are censored (declined by the serving variant, no label to come)", c.CensoredFlagged)
	case resolvedFlagged == 0 && openFlagged == 0:
		s.Estimable.Precision.Reason = "undefined: no flagged predictions"
	case float64(resolvedFlagged) < need*float64(resolvedFlagged+openFlagged):
		s.Estimable.Precision.Reason = fmt.Sprintf("%d of %d flagged predictions resolved (%s, estimable from %s): the open ones are mostly negatives still waiting for a label or maturity, so precision from the resolved ones would be biased upward; it lies in precision_bounds",
			resolvedFlagged, resolvedFlagged+openFlagged, pct(float64(resolvedFlagged)/float64(resolvedFlagged+openFlagged)), pct(need))
	default:
		s.Estimable.Precision.Estimable = true
		s.Precision = ptr(float64(c.TP) / float64(resolvedFlagged))
		s.PrecisionCI = ptrI(Wilson(c.TP, resolvedFlagged, Z95))
		if c.CensoredFlagged > 0 {
			s.Estimable.Precision.Note = fmt.Sprintf("leaves out %d censored flagged predictions (declined by the serving variant)", c.CensoredFlagged)
		}
	}

	coverable := c.Predictions - c.Censored
	resolved := c.Resolved()
	if n := c.TP + c.FN; n > 0 {
		s.Recall = ptr(float64(c.TP) / float64(n))
		s.RecallCI = ptrI(Wilson(c.TP, n, Z95))
		s.Estimable.Recall.Estimable = true
		var notes []string
		if float64(resolved) < need*float64(coverable) {
			notes = append(notes, fmt.Sprintf("early: from the %d positives labeled so far, with %s of predictions resolved; late-confirmed fraud is not in yet", n, pct(float64(resolved)/float64(coverable))))
		}
		if c.Censored > 0 {
			notes = append(notes, fmt.Sprintf("leaves out %d censored predictions (declined by the serving variant)", c.Censored))
		}
		s.Estimable.Recall.Note = strings.Join(notes, "; ")
	} else {
		s.Estimable.Recall.Reason = "undefined: no labeled positives"
	}

	switch {
	case !s.Estimable.Precision.Estimable:
		s.Estimable.F1.Reason = "precision is not estimable"
	case s.Recall == nil:
		s.Estimable.F1.Reason = "recall is undefined"
	case *s.Precision+*s.Recall == 0:
		s.Estimable.F1.Reason = "undefined: precision and recall are both zero"
	default:
		s.F1 = ptr(2 * *s.Precision * *s.Recall / (*s.Precision + *s.Recall))
		s.Estimable.F1 = Estimability{Estimable: true, Note: s.Estimable.Recall.Note}
	}
	if c.Predictions > 0 {
		s.LabelCoverage = ptr(float64(resolved) / float64(c.Predictions))
		s.FlagRate = ptr(float64(c.Flagged) / float64(c.Predictions))
		s.MeanScore = ptr(c.ScoreSum / float64(c.Predictions))
	}
	return s
}

// pct formats a share as a whole percentage, rounded down so 94.9 % never reads 95 %.
func pct(v float64) string { return fmt.Sprintf("%d %%", int(math.Floor(v*100+1e-9))) }

// Wilson is the Wilson score interval for x successes in n trials at normal quantile
// z (Wilson 1927). Unlike the normal approximation it stays inside [0, 1] and behaves
// at p = 0, p = 1 and small n. For n = 0 it is the uninformative [0, 1].
func Wilson(x, n int64, z float64) Interval {
	if n <= 0 {
		return Interval{0, 1}
	}
	nf := float64(n)
	p := float64(x) / nf
	z2 := z * z
	denom := 1 + z2/nf
	centre := (p + z2/(2*nf)) / denom
	half := z / denom * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return Interval{Lower: math.Max(0, centre-half), Upper: math.Min(1, centre+half)}
}

func ptr(v float64) *float64    { return &v }
func ptrI(v Interval) *Interval { return &v }
