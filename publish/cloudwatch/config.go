package cloudwatch

import (
	"errors"
	"fmt"
	"time"

	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/window"
)

// Defaults. cwmetric.DefaultNamespace and the metric and dimension names follow the metric
// contract in docs/alarms.md (also alarms/contract.go).
const (
	DefaultWindow           = window.Span(time.Hour)
	DefaultInterval         = 60 * time.Second
	DefaultHighResInterval  = 10 * time.Second
	DefaultQueueSize        = 10
	DefaultMaxAttempts      = 5
	DefaultMaxBackoff       = 20 * time.Second
	DefaultSendTimeout      = 30 * time.Second
	maxDimensionValueLength = 1024
)

// Config is what the publisher sends and how. The zero value of a field means its
// default; Validate names every field that is wrong.
type Config struct {
	// Namespace of every metric. Default "Verdict"; the alarm spec's namespace must
	// match.
	Namespace string
	// EndpointName is the SageMaker endpoint, the EndpointName dimension of every
	// metric. Required.
	EndpointName string
	// Window is the sliding window each value is computed over. Default 1h.
	Window window.Span
	// Interval is the flush interval. Default 60 s, or 10 s with HighResolution.
	Interval time.Duration
	// HighResolution publishes with StorageResolution 1 (1-second resolution; costs
	// more, and alarms then may use 10/20/30 s periods). Default standard (60).
	HighResolution bool
	// Variants maps verdict's variant id to its CloudWatch dimensions. A variant not
	// listed is published with VariantName = its id.
	Variants map[string]Variant
	// Pairs are the candidates published against their baseline (PrecisionDelta,
	// RecallDelta, SegmentRegressions, WorstSegmentRecallDelta), each judged over
	// its Range of the windows — the zero Range: the comparison period since the
	// candidate's first prediction, so the SegmentRegressions an alarm reads every
	// minute keep the judge's error rates however long the rollout runs.
	Pairs []judge.Pair
	// Judge holds the thresholds the pairs are judged with: the same ones the
	// Prometheus collector and /v1/judge use. The zero value is judge's defaults.
	Judge judge.Config
	// TopSegments maps a segment key (e.g. "merchant_category") to how many of its
	// segments get per-segment metrics: the N with the most predictions in the window,
	// summed over all variants, so every variant publishes the same segments. Keys not
	// listed get none: each (metric, dimensions) is a billed custom metric.
	TopSegments map[string]int
	// Shift, when set, publishes the shift signals of every pair: each variant's live
	// range (the window, started no earlier than the reference's end) against the
	// reference period (Deps.Reference, the shadow stage), and the candidate's
	// movement against the baseline's (docs/alarms.md). It needs Pairs.
	Shift *judge.ShiftConfig
	// QueueSize is how many built flushes may wait for the sender; when full, the
	// oldest is dropped (and counted). Default 10.
	QueueSize int
	// MaxAttempts and MaxBackoff configure the SDK's standard retryer (exponential
	// backoff with jitter, retry token bucket). Defaults 5 and 20 s.
	MaxAttempts int
	MaxBackoff  time.Duration
	// SendTimeout bounds one PutMetricData call including its retries. Default 30 s.
	SendTimeout time.Duration
	// OmitTimestamp sends datums without Timestamp, so CloudWatch stamps them on
	// receipt. Only for the kumo emulator, which cannot decode timestamps; production
	// must send them (one per flush, shared by a ratio and its n).
	OmitTimestamp bool
}

// Variant is how one verdict variant appears in CloudWatch.
type Variant struct {
	// VariantName is the VariantName dimension value. Default: verdict's variant id.
	VariantName string
	// EndpointConfigName, when set, adds the EndpointConfigName dimension to the
	// variant's metrics. The alarms that verdict generates read EndpointName and
	// VariantName only, so leave it empty for variants those alarms watch.
	EndpointConfigName string
}

func (c Config) withDefaults() Config {
	if c.Namespace == "" {
		c.Namespace = cwmetric.DefaultNamespace
	}
	if c.Window == window.AllTime {
		c.Window = DefaultWindow
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
		if c.HighResolution {
			c.Interval = DefaultHighResInterval
		}
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	return c
}

// Validate reports every setting that is out of range, naming the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("cloudwatch config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	dim := func(field, v string, required bool) {
		if v == "" && !required {
			return
		}
		if err := checkDimensionValue(v); err != nil {
			bad(field, "%v", err)
		}
	}
	if err := cwmetric.CheckNamespace(c.Namespace); err != nil {
		bad("Namespace", "%v", err)
	}
	dim("EndpointName", c.EndpointName, true)
	if c.Window < 0 {
		bad("Window", "%s must not be negative", c.Window)
	}
	if c.Interval < time.Second {
		bad("Interval", "%s must be at least 1s", c.Interval)
	}
	for id, v := range c.Variants {
		dim(fmt.Sprintf("Variants[%q].VariantName", id), v.VariantName, false)
		dim(fmt.Sprintf("Variants[%q].EndpointConfigName", id), v.EndpointConfigName, false)
	}
	for i, p := range c.Pairs {
		switch {
		case p.Baseline == "" || p.Candidate == "":
			bad(fmt.Sprintf("Pairs[%d]", i), "baseline and candidate are both required")
		case p.Baseline == p.Candidate:
			bad(fmt.Sprintf("Pairs[%d]", i), "baseline and candidate are both %q", p.Baseline)
		}
	}
	if err := c.Judge.Validate(); err != nil {
		bad("Judge", "%v", err)
	}
	if c.Shift != nil {
		if len(c.Pairs) == 0 {
			bad("Shift", "needs Pairs: the shift signals compare a candidate with its baseline")
		}
		if err := c.Shift.Validate(); err != nil {
			bad("Shift", "%v", err)
		}
	}
	for k, n := range c.TopSegments {
		if n < 0 {
			bad(fmt.Sprintf("TopSegments[%q]", k), "%d must not be negative", n)
		}
		if err := checkDimensionValue(k); err != nil {
			bad(fmt.Sprintf("TopSegments[%q]", k), "segment key: %v", err)
		}
	}
	if c.QueueSize < 1 {
		bad("QueueSize", "%d must be at least 1", c.QueueSize)
	}
	if c.MaxAttempts < 1 {
		bad("MaxAttempts", "%d must be at least 1", c.MaxAttempts)
	}
	if c.MaxBackoff < 0 {
		bad("MaxBackoff", "%s must not be negative", c.MaxBackoff)
	}
	if c.SendTimeout < 0 {
		bad("SendTimeout", "%s must not be negative", c.SendTimeout)
	}
	return errors.Join(errs...)
}

// checkDimensionValue applies CloudWatch's rules for a dimension value: 1 to 1024
// ASCII characters, at least one of them not whitespace.
func checkDimensionValue(v string) error {
	if len(v) > maxDimensionValueLength {
		return fmt.Errorf("dimension value of %d characters, at most %d", len(v), maxDimensionValueLength)
	}
	blank := true
	for i := 0; i < len(v); i++ {
		b := v[i]
		switch {
		case b >= 0x80:
			return fmt.Errorf("dimension value %q is not ASCII", v)
		case b < 0x20 || b == 0x7f:
			return fmt.Errorf("dimension value %q holds a control character", v)
		case b != ' ':
			blank = false
		}
	}
	if blank {
		return fmt.Errorf("dimension value %q is empty or blank", v)
	}
	return nil
}
