package ingest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Format says which input format a Decoder expects for predictions. Labels are always
// verdict JSON.
type Format string

// Formats a DecoderConfig may name.
const (
	// FormatAuto decides per line: a JSON object with a captureData member is a
	// SageMaker Data Capture record, anything else is verdict JSON.
	FormatAuto Format = "auto"
	// FormatVerdict accepts verdict JSON only.
	FormatVerdict Format = "verdict"
	// FormatDataCapture accepts SageMaker Data Capture records only.
	FormatDataCapture Format = "datacapture"
)

// Defaults a zero DecoderConfig field takes.
const (
	DefaultThreshold         = 0.5
	DefaultMaxLineBytes      = 64 << 10
	DefaultMaxAttributes     = 32
	DefaultMaxAttributeBytes = 256
)

// Fixed limits. The join store keys records by inference id and variant joined with
// NUL, so neither may contain NUL, and both stay short enough to be cheap keys.
const (
	MaxInferenceIDBytes = 256
	MaxVariantBytes     = 256
)

// DecoderConfig configures a Decoder. Zero fields take the documented defaults, so the
// cmd wiring can fill it from the environment and leave out what it does not set.
type DecoderConfig struct {
	// Format is "auto" (default), "verdict" or "datacapture"; it applies to
	// predictions only.
	Format Format
	// DefaultThreshold is the threshold of a prediction that carries none and whose
	// variant has none in Thresholds. Zero means 0.5.
	DefaultThreshold float64
	// Thresholds are per-variant thresholds, in [0, 1].
	Thresholds map[string]float64
	// Variants, when not empty, pins the accepted variant names; a prediction for
	// any other variant is rejected as unknown_variant.
	Variants []string
	// Roles gives the role of a variant's predictions that carry no role of their
	// own. Variants not listed default to production.
	Roles map[string]Role
	// MaxLineBytes caps one input line, without its line terminator. Zero means
	// 64 KiB. Longer lines are rejected as oversize_line and skipped.
	MaxLineBytes int
	// MaxAttributes caps the attributes of one prediction. Zero means 32.
	MaxAttributes int
	// MaxAttributeBytes caps an attribute's name and its value, each. Zero means 256.
	MaxAttributeBytes int
	// DataCapture says how to read SageMaker Data Capture records.
	DataCapture DataCaptureConfig
	// MaxVariants caps the distinct variant names a decoder accepts when Variants
	// does not pin them: a prediction for one more is rejected as limit_exceeded.
	// Variants named in Thresholds, Roles and DataCapture, and those passed to
	// Decoder.KnowVariants, count among them and are always accepted. Zero means no
	// cap.
	MaxVariants int
	// MaxClockSkew rejects events (predictions and labels) whose time is more than
	// this ahead of Now, as future_time. Zero means no check.
	MaxClockSkew time.Duration
	// MaxAge rejects events whose time is older than this before Now, as too_old: a
	// store that deletes records after a retention would count such an event again.
	// Zero means no check.
	MaxAge time.Duration
	// Now is the clock of MaxClockSkew and MaxAge; nil means time.Now.
	Now func() time.Time
	// LabelCSV says how to read CSV label files (DecodeLabelsCSV).
	LabelCSV LabelCSVConfig
}

// ConfigError is one problem in a DecoderConfig: the field (a Go path such as
// "Thresholds[\"v5\"]") and what is wrong with it.
type ConfigError struct {
	Field   string
	Problem string
}

func (e *ConfigError) Error() string { return "ingest: DecoderConfig." + e.Field + ": " + e.Problem }

// DataCaptureConfig says how a SageMaker Data Capture record becomes a Prediction.
//
// Selectors name a value in the captured payload: "csv:N" is column N (0-based) of
// the single CSV record, "json:a.b.0.c" walks JSON objects by key and arrays by
// 0-based index. Keys containing dots cannot be selected.
type DataCaptureConfig struct {
	// Variant is the variant the records belong to. Data Capture records do not
	// name their variant; the capture file's S3 key does (see ParseCaptureKey), and
	// sources that read capture files set it per file (Decoder.WithCaptureVariant).
	// Without it (and without VariantSelector) Data Capture records are rejected.
	Variant string
	// VariantSelector, when set, selects the variant in captureData.endpointOutput
	// (e.g. "json:model_version": the model states its version in its response), or
	// in captureData.endpointInput with the prefix "input:" ("input:json:model"; the
	// request names the model the application chose), for endpoints whose fleets
	// share one variant name and one capture folder, such as both fleets of a
	// blue/green deployment. "output:" names the default side explicitly. It
	// overrides Variant.
	VariantSelector string
	// Fleets, when set, names the variant of an inference id: the application's own
	// record of which model served it (ReadVariantMap reads one). A record whose id
	// it knows takes that variant, over VariantSelector and Variant; the others fall
	// back to them.
	Fleets VariantLookup
	// Role of the records; empty means the role Roles gives Variant, else production.
	Role Role
	// Score selects the score in captureData.endpointOutput. Empty means the output
	// is a single number (a one-value CSV or a JSON number).
	Score string
	// Attributes maps an attribute name to a selector into
	// captureData.endpointInput, e.g. "merchant_category": "json:merchant_category"
	// or "merchant_category": "csv:3".
	Attributes map[string]string
}

// withDefaults returns a copy of c with zero fields set to their defaults, after
// checking that every field makes sense.
func (c DecoderConfig) withDefaults() (DecoderConfig, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	switch c.Format {
	case "":
		c.Format = FormatAuto
	case FormatAuto, FormatVerdict, FormatDataCapture:
	default:
		bad("Format", "%q is not one of auto, verdict, datacapture", c.Format)
	}
	if c.DefaultThreshold == 0 {
		c.DefaultThreshold = DefaultThreshold
	}
	if !unitInterval(c.DefaultThreshold) {
		bad("DefaultThreshold", "%v is outside [0, 1]", c.DefaultThreshold)
	}
	for _, v := range sortedKeys(c.Thresholds) {
		if t := c.Thresholds[v]; !unitInterval(t) {
			bad(fmt.Sprintf("Thresholds[%q]", v), "%v is outside [0, 1]", t)
		}
	}
	for i, v := range c.Variants {
		if why := variantProblem(v); why != "" {
			bad(fmt.Sprintf("Variants[%d]", i), "%s", why)
		}
	}
	pinned := func(field, v string) {
		if len(c.Variants) > 0 && !slices.Contains(c.Variants, v) {
			bad(field, "variant %q is not in Variants", v)
		}
	}
	for _, v := range sortedKeys(c.Thresholds) {
		pinned(fmt.Sprintf("Thresholds[%q]", v), v)
	}
	for _, v := range sortedKeys(c.Roles) {
		field := fmt.Sprintf("Roles[%q]", v)
		if r := c.Roles[v]; r != RoleProduction && r != RoleShadow {
			bad(field, "%q is not one of production, shadow", r)
		}
		pinned(field, v)
	}
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = DefaultMaxLineBytes
	}
	if c.MaxLineBytes < 0 {
		bad("MaxLineBytes", "%d is negative", c.MaxLineBytes)
	}
	if c.MaxAttributes == 0 {
		c.MaxAttributes = DefaultMaxAttributes
	}
	if c.MaxAttributes < 0 {
		bad("MaxAttributes", "%d is negative", c.MaxAttributes)
	}
	if c.MaxAttributeBytes == 0 {
		c.MaxAttributeBytes = DefaultMaxAttributeBytes
	}
	if c.MaxAttributeBytes < 0 {
		bad("MaxAttributeBytes", "%d is negative", c.MaxAttributeBytes)
	}

	if c.MaxVariants < 0 {
		bad("MaxVariants", "%d is negative", c.MaxVariants)
	}
	if c.MaxClockSkew < 0 {
		bad("MaxClockSkew", "%s is negative", c.MaxClockSkew)
	}
	if c.MaxAge < 0 {
		bad("MaxAge", "%s is negative", c.MaxAge)
	}
	if c.Now == nil {
		c.Now = time.Now
	}

	dc := c.DataCapture
	if dc.Variant != "" {
		if why := variantProblem(dc.Variant); why != "" {
			bad("DataCapture.Variant", "%s", why)
		}
		pinned("DataCapture.Variant", dc.Variant)
	}
	switch dc.Role {
	case "", RoleProduction, RoleShadow:
	default:
		bad("DataCapture.Role", "%q is not one of production, shadow", dc.Role)
	}
	if dc.Score != "" {
		if _, err := parseSelector(dc.Score); err != nil {
			bad("DataCapture.Score", "%v", err)
		}
	}
	if dc.VariantSelector != "" {
		if _, err := parseVariantSelector(dc.VariantSelector); err != nil {
			bad("DataCapture.VariantSelector", "%v", err)
		}
	}
	if len(dc.Attributes) > c.MaxAttributes {
		bad("DataCapture.Attributes", "%d attributes, over MaxAttributes (%d)", len(dc.Attributes), c.MaxAttributes)
	}
	for _, name := range sortedKeys(dc.Attributes) {
		field := fmt.Sprintf("DataCapture.Attributes[%q]", name)
		if name == "" || len(name) > c.MaxAttributeBytes || strings.IndexByte(name, 0) >= 0 {
			bad(field, "attribute name must be 1 to %d bytes without NUL", c.MaxAttributeBytes)
		}
		if _, err := parseSelector(dc.Attributes[name]); err != nil {
			bad(field, "%v", err)
		}
	}
	c.LabelCSV.check(bad)
	return c, errors.Join(errs...)
}

func unitInterval(f float64) bool { return !math.IsNaN(f) && f >= 0 && f <= 1 }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
