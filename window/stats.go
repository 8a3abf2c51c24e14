package window

import (
	"math"

	"github.com/verdictml/verdict/labels"
)

// Z95 is the standard normal quantile for a two-sided 95 % interval.
const Z95 = 1.959963984540054

// Interval is a confidence interval for a proportion.
type Interval struct {
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
}

// Stats are the statistics derived from one series' counts. A nil field is
// undefined (its denominator is zero): no value is better than a made-up one.
type Stats struct {
	// Precision = TP / (TP + FP), over resolved predictions flagged positive.
	Precision   *float64
	PrecisionCI *Interval
	// Recall = TP / (TP + FN), over resolved predictions labeled positive.
	Recall   *float64
	RecallCI *Interval
	// F1 is the harmonic mean of precision and recall (undefined if either is, or both
	// are zero).
	F1 *float64
	// LabelCoverage = resolved / predictions.
	LabelCoverage *float64
	// FlagRate = flagged / predictions; it needs no labels.
	FlagRate *float64
	// MeanScore is the mean score of the predictions.
	MeanScore *float64
}

// Derive computes the statistics of c.
func Derive(c labels.Counts) Stats {
	var s Stats
	if n := c.TP + c.FP; n > 0 {
		s.Precision = ptr(float64(c.TP) / float64(n))
		s.PrecisionCI = ptrI(Wilson(c.TP, n, Z95))
	}
	if n := c.TP + c.FN; n > 0 {
		s.Recall = ptr(float64(c.TP) / float64(n))
		s.RecallCI = ptrI(Wilson(c.TP, n, Z95))
	}
	if s.Precision != nil && s.Recall != nil && *s.Precision+*s.Recall > 0 {
		s.F1 = ptr(2 * *s.Precision * *s.Recall / (*s.Precision + *s.Recall))
	}
	if c.Predictions > 0 {
		s.LabelCoverage = ptr(float64(c.Resolved()) / float64(c.Predictions))
		s.FlagRate = ptr(float64(c.Flagged) / float64(c.Predictions))
		s.MeanScore = ptr(c.ScoreSum / float64(c.Predictions))
	}
	return s
}

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
