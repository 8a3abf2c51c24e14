package judge

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/verdictml/verdict/window"
)

// Config holds the thresholds of a judgement. The zero value of a field means its
// default (see DefaultConfig); Validate rejects values that make no sense.
type Config struct {
	// Alpha is the family-wise error rate of one judgement: the chance that a
	// candidate no worse than the baseline fails on noise, across every metric and
	// segment tested together (Holm correction). Default 0.01.
	Alpha float64
	// MinN is the fewest samples each variant needs before a metric is tested: recall's
	// n is the labeled positives (TP + FN), precision's n the resolved predicted
	// positives (TP + FP). Default 100.
	MinN int64
	// RecallTolerance and PrecisionTolerance are practical-significance margins: a
	// metric fails only if its drop is significant and larger than this (absolute,
	// e.g. 0.02 = two points). Default 0.02 each; set a negative value for zero.
	RecallTolerance    float64
	PrecisionTolerance float64
	// MinPredictions is the fewest predictions each variant needs before the
	// label-free signals (flag rate, score PSI) are reported. Default 1000.
	MinPredictions int64
	// PSIWarn and PSIAlert are the score-distribution shift levels. Defaults 0.1 and
	// 0.25 (the usual "moderate" and "major" population-shift thresholds).
	PSIWarn, PSIAlert float64
	// Window is the window used when a request names none. Default 24h.
	Window window.Span
}

// Defaults.
const (
	DefaultAlpha          = 0.01
	DefaultMinN           = 100
	DefaultTolerance      = 0.02
	DefaultMinPredictions = 1000
	DefaultPSIWarn        = 0.1
	DefaultPSIAlert       = 0.25
	DefaultWindow         = window.Span(24 * time.Hour)
)

// DefaultConfig is the configuration with every default filled in.
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
	if c.Alpha == 0 {
		c.Alpha = DefaultAlpha
	}
	if c.MinN == 0 {
		c.MinN = DefaultMinN
	}
	if c.RecallTolerance == 0 {
		c.RecallTolerance = DefaultTolerance
	} else if c.RecallTolerance < 0 {
		c.RecallTolerance = 0
	}
	if c.PrecisionTolerance == 0 {
		c.PrecisionTolerance = DefaultTolerance
	} else if c.PrecisionTolerance < 0 {
		c.PrecisionTolerance = 0
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
	if c.Window == window.AllTime {
		c.Window = DefaultWindow
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
	if c.MinN < 1 {
		bad("MinN", "%d must be at least 1", c.MinN)
	}
	if c.MinPredictions < 1 {
		bad("MinPredictions", "%d must be at least 1", c.MinPredictions)
	}
	if !(c.RecallTolerance < 1) || math.IsNaN(c.RecallTolerance) {
		bad("RecallTolerance", "%g must be below 1", c.RecallTolerance)
	}
	if !(c.PrecisionTolerance < 1) || math.IsNaN(c.PrecisionTolerance) {
		bad("PrecisionTolerance", "%g must be below 1", c.PrecisionTolerance)
	}
	if !(c.PSIWarn > 0) || !(c.PSIAlert >= c.PSIWarn) {
		bad("PSIWarn/PSIAlert", "%g/%g must satisfy 0 < warn <= alert", c.PSIWarn, c.PSIAlert)
	}
	if c.Window < 0 {
		bad("Window", "%s must not be negative", c.Window)
	}
	return errors.Join(errs...)
}
