package judge

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/verdictml/verdict/window"
)

// Config holds the thresholds and the pass policy of a judgement. The zero value of a
// field means its default (see DefaultConfig); Validate rejects values that make no
// sense.
type Config struct {
	// Alpha is the false-fail rate of a whole comparison period: the chance that a
	// candidate no worse than the baseline anywhere ever fails, however often the
	// gate asks and across every metric and segment (anytime-valid tests, Bonferroni
	// across them). Default 0.01.
	Alpha float64
	// Beta is the false-pass rate: the chance that a candidate worse than the
	// baseline by at least the tolerance in some required scope ever passes. Default
	// 0.05.
	Beta float64
	// RecallTolerance and PrecisionTolerance are the non-inferiority margins overall:
	// a metric passes once the data show the candidate worse by less than this
	// (absolute, 0.02 = two points). Default 0.02 each.
	RecallTolerance    float64
	PrecisionTolerance float64
	// SegmentRecallTolerance and SegmentPrecisionTolerance are the margins in
	// segments, which hold a fraction of the labels. Default 0.05 each.
	SegmentRecallTolerance    float64
	SegmentPrecisionTolerance float64
	// MinSegmentShare makes a segment required for a pass (it must be shown
	// non-inferior too) once it holds at least this share of the period's
	// predictions or of its labeled positives. Default 0.05; a negative value
	// requires no segment by share.
	MinSegmentShare float64
	// RequiredSegments are segments required for a pass whatever their share, as
	// "key=value" (merchant_category=electronics).
	RequiredSegments []string
	// PassMetrics are the metrics a required scope must show non-inferior to pass.
	// Default recall only: under fraud's label delay negatives arrive weeks late, so
	// precision can rarely be shown within a rollout; a significant precision drop
	// still fails.
	PassMetrics []Metric
	// MissingAtRandom declares that a prediction's label does not depend on whether a
	// model flagged it: no declines (flags only queue a review) and labels merely
	// late. Default false, the fraud case: the serving model's flags decline the
	// transaction, and a declined transaction never gets a dispute, so the labels that
	// do arrive are the fraud the baseline let through — which favours any candidate
	// that disagrees with it. Then a pass must hold even if every prediction the
	// baseline flagged and that has no label was fraud the candidate missed (the
	// worst completion of the missing labels); fail tests take the completion most
	// favourable to the candidate. Both stay valid whatever the missing labels are.
	MissingAtRandom bool
	// Estimable is the rule that says when a variant's precision can be estimated
	// from the labels so far (window.Rule, VERDICT_ESTIMABLE_COVERAGE). Precision is
	// neither failed nor passed while either variant's is not: early labels are
	// mostly positives, and a precision from them is biased upward.
	Estimable window.Rule
	// MinPredictions is the fewest predictions each variant needs before the
	// label-free signals (flag rate, score PSI) are graded. Default 1000.
	MinPredictions int64
	// PSIWarn and PSIAlert are the score-distribution shift levels. Defaults 0.1 and
	// 0.25 (the usual "moderate" and "major" population-shift thresholds).
	PSIWarn, PSIAlert float64
	// Range is the data judged when a request names none. Default: the comparison
	// period since the candidate's first prediction.
	Range Range
}

// Range is the data a judgement reads: a comparison period that grows from its start
// (what a rollout gate wants: its decisions hold however often it asks), or a
// sliding window (a single look at recent data).
type Range struct {
	// Window is a sliding window ending now when set (window.AllTime included, with
	// Sliding); otherwise the range is a comparison period.
	Window  window.Span
	Sliding bool
	// Since is the period's start; zero means the candidate's first prediction in
	// the buckets kept.
	Since time.Time
}

// Period is a comparison period from since (zero: from the candidate's first
// prediction).
func Period(since time.Time) Range { return Range{Since: since} }

// Sliding is a sliding window of span ending now.
func Sliding(span window.Span) Range { return Range{Window: span, Sliding: true} }

// String is "period", "period since <RFC 3339>" or the window's span.
func (r Range) String() string {
	switch {
	case r.Sliding:
		return r.Window.String()
	case r.Since.IsZero():
		return "period"
	}
	return "period since " + r.Since.UTC().Format(time.RFC3339)
}

// Defaults.
const (
	DefaultAlpha            = 0.01
	DefaultBeta             = 0.05
	DefaultTolerance        = 0.02
	DefaultSegmentTolerance = 0.05
	DefaultMinSegmentShare  = 0.05
	DefaultMinPredictions   = 1000
	DefaultPSIWarn          = 0.1
	DefaultPSIAlert         = 0.25
)

// DefaultConfig is the configuration with every default filled in.
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
	if c.Alpha == 0 {
		c.Alpha = DefaultAlpha
	}
	if c.Beta == 0 {
		c.Beta = DefaultBeta
	}
	tol := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		} else if *v < 0 {
			*v = 0
		}
	}
	tol(&c.RecallTolerance, DefaultTolerance)
	tol(&c.PrecisionTolerance, DefaultTolerance)
	tol(&c.SegmentRecallTolerance, DefaultSegmentTolerance)
	tol(&c.SegmentPrecisionTolerance, DefaultSegmentTolerance)
	if c.MinSegmentShare == 0 {
		c.MinSegmentShare = DefaultMinSegmentShare
	}
	if len(c.PassMetrics) == 0 {
		c.PassMetrics = []Metric{Recall}
	}
	if c.MinPredictions == 0 {
		c.MinPredictions = DefaultMinPredictions
	}
	if c.PSIWarn == 0 {
		c.PSIWarn = DefaultPSIWarn
	}
	if c.PSIAlert == 0 {
		c.PSIAlert = DefaultPSIAlert
	}
	return c
}

// Validate reports every setting that is out of range, naming the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("judge config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !(c.Alpha > 0 && c.Alpha < 1) {
		bad("Alpha", "%g must be in (0, 1)", c.Alpha)
	}
	if !(c.Beta > 0 && c.Beta < 1) {
		bad("Beta", "%g must be in (0, 1)", c.Beta)
	}
	if c.MinPredictions < 1 {
		bad("MinPredictions", "%d must be at least 1", c.MinPredictions)
	}
	for _, t := range []struct {
		name string
		v    float64
	}{
		{"RecallTolerance", c.RecallTolerance}, {"PrecisionTolerance", c.PrecisionTolerance},
		{"SegmentRecallTolerance", c.SegmentRecallTolerance}, {"SegmentPrecisionTolerance", c.SegmentPrecisionTolerance},
	} {
		if !(t.v < 1) || math.IsNaN(t.v) {
			bad(t.name, "%g must be below 1", t.v)
		}
	}
	if !(c.MinSegmentShare < 1) || math.IsNaN(c.MinSegmentShare) {
		bad("MinSegmentShare", "%g must be below 1", c.MinSegmentShare)
	}
	for _, s := range c.RequiredSegments {
		if k, v, ok := strings.Cut(s, "="); !ok || k == "" || v == "" {
			bad("RequiredSegments", "%q: want key=value, e.g. merchant_category=electronics", s)
		}
	}
	for _, m := range c.PassMetrics {
		if m != Recall && m != Precision {
			bad("PassMetrics", "%q: want recall or precision", m)
		}
	}
	if !(c.PSIWarn > 0) || !(c.PSIAlert >= c.PSIWarn) {
		bad("PSIWarn/PSIAlert", "%g/%g must satisfy 0 < warn <= alert", c.PSIWarn, c.PSIAlert)
	}
	if c.Range.Sliding && c.Range.Window < 0 {
		bad("Range", "window %s must not be negative", c.Range.Window)
	}
	return errors.Join(errs...)
}

func (c Config) requires(m Metric) bool { return slices.Contains(c.PassMetrics, m) }

func (c Config) tolerance(m Metric, overall bool) float64 {
	switch {
	case m == Recall && overall:
		return c.RecallTolerance
	case m == Recall:
		return c.SegmentRecallTolerance
	case overall:
		return c.PrecisionTolerance
	}
	return c.SegmentPrecisionTolerance
}
