// Package deploy builds, validates and applies the SageMaker requests of a model
// rollout: the shadow stage (an endpoint config with a shadow variant and data
// capture), the blue/green traffic shift (UpdateEndpoint with ALL_AT_ONCE,
// CANARY or LINEAR routing and verdict's alarms as auto-rollback triggers),
// weight moves of a stable A/B split, and watching a rollout to its end.
package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"go.yaml.in/yaml/v3"

	"github.com/verdictml/verdict/alarms"
)

// Rollout is a reviewed rollout spec (YAML); see testdata/rollout.yaml and
// docs/deploy.md.
type Rollout struct {
	// Endpoint is the SageMaker endpoint being updated.
	Endpoint string `yaml:"endpoint"`
	// Production is what serves the endpoint now.
	Production Fleet `yaml:"production"`
	// Candidate is the new model and the endpoint config created for it.
	Candidate Candidate `yaml:"candidate"`
	// DataCapture, when set, is added to every endpoint config created.
	DataCapture *DataCapture `yaml:"data_capture"`
	// Shadow, when set, is the stage before the shift: the candidate runs as a
	// shadow variant next to production.
	Shadow *Shadow `yaml:"shadow"`
	// Traffic is the blue/green shift to the candidate.
	Traffic Traffic `yaml:"traffic"`
	// Alarms are the CloudWatch alarms that roll the shift back.
	Alarms AlarmRefs `yaml:"alarms"`
	// Tags are added to the endpoint configs created.
	Tags map[string]string `yaml:"tags"`
	// SLO, when set, is the candidate's service level under load, for
	// `verdict loadtest` and the Inference Recommender load test.
	SLO *SLO `yaml:"slo"`
}

// Fleet is a production variant's model and instances.
type Fleet struct {
	// Variant is the production variant name. In a blue/green update the new
	// fleet keeps this name.
	Variant       string `yaml:"variant"`
	Model         string `yaml:"model"`
	InstanceType  string `yaml:"instance_type"`
	InstanceCount int    `yaml:"instance_count"`
}

// Candidate is the new model.
type Candidate struct {
	Model string `yaml:"model"`
	// InstanceType and InstanceCount default to production's.
	InstanceType  string `yaml:"instance_type"`
	InstanceCount int    `yaml:"instance_count"`
	// EndpointConfig is the name of the endpoint config created for the shift.
	EndpointConfig string `yaml:"endpoint_config"`
	// Variant, if given, must equal production's variant (blue/green keeps it).
	Variant string `yaml:"variant"`
}

// DataCapture configures SageMaker Data Capture, verdict's prediction source.
type DataCapture struct {
	Destination        string   `yaml:"destination"`
	SamplingPercentage *int     `yaml:"sampling_percentage"`
	Capture            []string `yaml:"capture"` // Input, Output; default both
	KMSKeyID           string   `yaml:"kms_key_id"`
}

// Shadow is the shadow stage.
type Shadow struct {
	// EndpointConfig is the name of the endpoint config with the shadow variant.
	EndpointConfig string `yaml:"endpoint_config"`
	// Variant is the shadow variant's name.
	Variant string `yaml:"variant"`
	// SamplingWeight is the shadow variant's weight relative to production's
	// (1.0): the share of requests copied to the shadow. Default 1.
	SamplingWeight *float64 `yaml:"sampling_weight"`
	// Gate is what the shadow comparison must show before the shadow is promoted;
	// the defaults apply when it is left out.
	Gate *Gate `yaml:"gate"`
}

// Traffic is the blue/green traffic routing.
type Traffic struct {
	Type string `yaml:"type"` // ALL_AT_ONCE, CANARY or LINEAR
	// Canary (CANARY) and Step (LINEAR) size the first step and each step.
	Canary *Size `yaml:"canary"`
	Step   *Size `yaml:"step"`
	// WaitInterval is the baking time after each step.
	WaitInterval time.Duration `yaml:"wait_interval"`
	// TerminationWait keeps the old fleet after the shift completes.
	TerminationWait time.Duration `yaml:"termination_wait"`
	// MaxExecutionTimeout bounds the whole deployment.
	MaxExecutionTimeout time.Duration `yaml:"max_execution_timeout"`
}

// Size is a step size: a share of the new fleet's capacity or an instance count.
type Size struct {
	CapacityPercent int `yaml:"capacity_percent"`
	InstanceCount   int `yaml:"instance_count"`
}

// AlarmRefs names the rollback alarms directly or through an alarm spec.
type AlarmRefs struct {
	Names []string `yaml:"names"`
	// FromSpec is an alarm spec file (relative to the rollout file); its alarm
	// names are added to Names.
	FromSpec string `yaml:"from_spec"`
}

// Traffic routing types.
const (
	AllAtOnce = "ALL_AT_ONCE"
	Canary    = "CANARY"
	Linear    = "LINEAR"
)

// LoadRollout reads a rollout spec, resolves alarms.from_spec relative to it,
// applies defaults and validates.
func LoadRollout(path string) (*Rollout, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("deploy: read rollout spec: %w", err)
	}
	r, err := decodeRollout(b)
	if err != nil {
		return nil, fmt.Errorf("deploy: rollout spec %s: %w", path, err)
	}
	if r.Alarms.FromSpec != "" {
		p := r.Alarms.FromSpec
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), p)
		}
		s, err := alarms.LoadSpec(p)
		if err != nil {
			return nil, fmt.Errorf("deploy: rollout spec %s: alarms.from_spec: %w", path, err)
		}
		for _, n := range s.AlarmNames() {
			if !slices.Contains(r.Alarms.Names, n) {
				r.Alarms.Names = append(r.Alarms.Names, n)
			}
		}
		// The alarms watch the same two models the shadow gate compares.
		if g := r.ShadowGate(); g != nil {
			if g.Baseline == "" {
				g.Baseline = s.Baseline.Variant
			}
			if g.Candidate == "" {
				g.Candidate = s.Candidate.Variant
			}
		}
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("deploy: rollout spec %s: %w", path, err)
	}
	return r, nil
}

// ParseRollout decodes and validates a rollout spec whose alarms are given by
// name (alarms.from_spec needs LoadRollout to resolve the file).
func ParseRollout(b []byte) (*Rollout, error) {
	r, err := decodeRollout(b)
	if err != nil {
		return nil, err
	}
	if r.Alarms.FromSpec != "" {
		return nil, errors.New("alarms.from_spec: load the rollout from its file to resolve it")
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func decodeRollout(b []byte) (*Rollout, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var r Rollout
	if err := dec.Decode(&r); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty rollout spec")
		}
		return nil, fmt.Errorf("decode yaml: %w", err)
	}
	r.applyDefaults()
	return &r, nil
}

func (r *Rollout) applyDefaults() {
	if r.Candidate.InstanceType == "" {
		r.Candidate.InstanceType = r.Production.InstanceType
	}
	if r.Candidate.InstanceCount == 0 {
		r.Candidate.InstanceCount = r.Production.InstanceCount
	}
	if r.Shadow != nil && r.Shadow.SamplingWeight == nil {
		one := 1.0
		r.Shadow.SamplingWeight = &one
	}
	if r.Shadow != nil {
		if r.Shadow.Gate == nil {
			r.Shadow.Gate = &Gate{}
		}
		r.Shadow.Gate.applyDefaults()
	}
	r.DataCapture.applyDefaults()
}

func (dc *DataCapture) applyDefaults() {
	if dc == nil {
		return
	}
	if dc.SamplingPercentage == nil {
		hundred := 100
		dc.SamplingPercentage = &hundred
	}
	if len(dc.Capture) == 0 {
		dc.Capture = []string{"Input", "Output"}
	}
}

// DataCaptureConfig's limits (SageMaker API reference, DataCaptureConfig and
// CaptureOption): DestinationS3Uri at most 512 characters matching
// ^(https|s3)://([^/])/?(.*)$ (verdict reads the captures, so s3:// only),
// KmsKeyId at most 2048 characters of [a-zA-Z0-9:/_-], 1 to 32 CaptureOptions
// whose CaptureMode is Input, Output or InputAndOutput, InitialSamplingPercentage
// 0 to 100.
const (
	maxCaptureDestinationLen = 512
	maxKMSKeyIDLen           = 2048
	maxCaptureOptions        = 32
)

var (
	captureDestinationRE = regexp.MustCompile(`^s3://[^/]`)
	kmsKeyIDRE           = regexp.MustCompile(`^[a-zA-Z0-9:/_-]*$`)
)

// validate reports what SageMaker's DataCaptureConfig would reject.
func (dc *DataCapture) validate() []error {
	if dc == nil {
		return nil
	}
	var errs []error
	switch d := dc.Destination; {
	case !captureDestinationRE.MatchString(d):
		errs = append(errs, fmt.Errorf("data_capture.destination: %q must be an s3:// URI", d))
	case len(d) > maxCaptureDestinationLen:
		errs = append(errs, fmt.Errorf("data_capture.destination: %d characters; DestinationS3Uri takes at most %d", len(d), maxCaptureDestinationLen))
	}
	if p := dc.SamplingPercentage; p != nil && (*p < 0 || *p > 100) {
		errs = append(errs, fmt.Errorf("data_capture.sampling_percentage: %d must be 0-100", *p))
	}
	if n := len(dc.Capture); n > maxCaptureOptions {
		errs = append(errs, fmt.Errorf("data_capture.capture: %d modes; CaptureOptions takes 1 to %d", n, maxCaptureOptions))
	}
	for i, c := range dc.Capture {
		switch c {
		case string(types.CaptureModeInput), string(types.CaptureModeOutput), string(types.CaptureModeInputAndOutput):
		default:
			errs = append(errs, fmt.Errorf("data_capture.capture[%d]: %q must be Input, Output or InputAndOutput", i, c))
		}
	}
	switch k := dc.KMSKeyID; {
	case len(k) > maxKMSKeyIDLen:
		errs = append(errs, fmt.Errorf("data_capture.kms_key_id: %d characters; KmsKeyId takes at most %d", len(k), maxKMSKeyIDLen))
	case !kmsKeyIDRE.MatchString(k):
		errs = append(errs, fmt.Errorf("data_capture.kms_key_id: %q may hold only letters, digits and : / _ -", k))
	}
	return errs
}

// SageMaker's tag limits (API reference, CreateEndpointConfig's Tags: at most 50;
// Tag: Key 1-128 and Value 0-256 characters of ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$)
// and the reserved prefix of AWS's tagging rules: keys starting with aws: (any
// case) are AWS's. verdict adds verdict:managed itself, so verdict: keys are
// reserved too.
const (
	maxResourceTags = 50
	maxTagKeyLen    = 128
	maxTagValueLen  = 256
)

var tagTextRE = regexp.MustCompile(`^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`)

// validateTags reports what SageMaker would reject in the spec's tags (field is
// the spec's tags field), counting the tags verdict adds itself.
func validateTags(field string, tags map[string]string) []error {
	var errs []error
	if n := len(tags) + len(managedTags(nil)); n > maxResourceTags {
		errs = append(errs, fmt.Errorf("%s: %d tags; with verdict's own verdict:managed the endpoint config would carry %d, and SageMaker takes at most %d",
			field, len(tags), n, maxResourceTags))
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, lk := tags[k], strings.ToLower(k)
		switch {
		case k == "" || utf8.RuneCountInString(k) > maxTagKeyLen:
			errs = append(errs, fmt.Errorf("%s: key %q must be 1-%d characters", field, k, maxTagKeyLen))
		case strings.HasPrefix(lk, "aws:"):
			errs = append(errs, fmt.Errorf("%s.%s: keys starting with aws: are reserved for AWS", field, k))
		case strings.HasPrefix(lk, "verdict:"):
			errs = append(errs, fmt.Errorf("%s.%s: keys starting with verdict: are verdict's own", field, k))
		case !tagTextRE.MatchString(k):
			errs = append(errs, fmt.Errorf("%s: key %q may hold only letters, digits, spaces and _ . : / = + - @", field, k))
		}
		switch {
		case utf8.RuneCountInString(v) > maxTagValueLen:
			errs = append(errs, fmt.Errorf("%s.%s: value is %d characters; at most %d", field, k, utf8.RuneCountInString(v), maxTagValueLen))
		case !tagTextRE.MatchString(v):
			errs = append(errs, fmt.Errorf("%s.%s: value %q may hold only letters, digits, spaces and _ . : / = + - @", field, k, v))
		}
	}
	return errs
}

// SageMaker's limits (API reference: BlueGreenUpdatePolicy, TrafficRoutingConfig,
// CapacitySize, AutoRollbackConfig, EndpointConfig names).
const (
	maxWait             = time.Hour
	minExecutionTimeout = 600 * time.Second
	maxExecutionTimeout = 28800 * time.Second
	maxAlarms           = 10
)

var (
	// resourceNameRE is SageMaker's pattern for endpoint, endpoint config,
	// model and variant names.
	resourceNameRE = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)
	instanceTypeRE = regexp.MustCompile(`^ml\.[a-z0-9]+\.[a-z0-9]+$`)
)

// Validate reports everything SageMaker would reject, each problem naming its field.
func (r *Rollout) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	name := func(field, v string) {
		if !resourceNameRE.MatchString(v) {
			if v == "" {
				bad(field, "is required")
				return
			}
			bad(field, "%q must be 1-63 letters, digits and hyphens, starting and ending with a letter or digit", v)
		}
	}
	fleet := func(field, instanceType string, count int) {
		if !instanceTypeRE.MatchString(instanceType) {
			bad(field+".instance_type", "%q must be a SageMaker instance type such as ml.c5.xlarge", instanceType)
		}
		if count < 1 {
			bad(field+".instance_count", "%d must be at least 1", count)
		}
	}
	name("endpoint", r.Endpoint)
	name("production.variant", r.Production.Variant)
	name("production.model", r.Production.Model)
	fleet("production", r.Production.InstanceType, r.Production.InstanceCount)
	name("candidate.model", r.Candidate.Model)
	name("candidate.endpoint_config", r.Candidate.EndpointConfig)
	fleet("candidate", r.Candidate.InstanceType, r.Candidate.InstanceCount)
	if r.Candidate.Variant != "" && r.Candidate.Variant != r.Production.Variant {
		bad("candidate.variant", "%q differs from production.variant %q; a blue/green update keeps the production variant name (the fleets differ by endpoint config)",
			r.Candidate.Variant, r.Production.Variant)
	}
	if r.Candidate.Model != "" && r.Candidate.Model == r.Production.Model {
		bad("candidate.model", "%q is the production model; nothing to roll out", r.Candidate.Model)
	}

	errs = append(errs, r.DataCapture.validate()...)
	errs = append(errs, validateTags("tags", r.Tags)...)

	if sh := r.Shadow; sh != nil {
		name("shadow.endpoint_config", sh.EndpointConfig)
		name("shadow.variant", sh.Variant)
		if sh.Variant == r.Production.Variant {
			bad("shadow.variant", "%q must differ from the production variant", sh.Variant)
		}
		if sh.EndpointConfig != "" && sh.EndpointConfig == r.Candidate.EndpointConfig {
			bad("shadow.endpoint_config", "%q must differ from candidate.endpoint_config", sh.EndpointConfig)
		}
		if w := *sh.SamplingWeight; math.IsNaN(w) || w <= 0 || w > 1 {
			bad("shadow.sampling_weight", "%v must be in (0, 1]", w)
		}
		if sh.Gate != nil {
			errs = append(errs, sh.Gate.validate("shadow.gate")...)
		}
	}

	errs = append(errs, r.validateTraffic()...)
	errs = append(errs, r.SLO.validate()...)

	if n := len(r.Alarms.Names); n < 1 || n > maxAlarms {
		bad("alarms", "%d alarms; AutoRollbackConfiguration takes 1 to %d", n, maxAlarms)
	}
	seen := map[string]bool{}
	for i, a := range r.Alarms.Names {
		switch {
		case a == "" || len(a) > 255:
			bad(fmt.Sprintf("alarms.names[%d]", i), "%q must be 1-255 characters", a)
		case seen[a]:
			bad(fmt.Sprintf("alarms.names[%d]", i), "%q is listed twice", a)
		}
		seen[a] = true
	}
	return errors.Join(errs...)
}

func (r *Rollout) validateTraffic() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("traffic.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	t := r.Traffic
	count := r.Candidate.InstanceCount
	size := func(field string, s *Size, minPct, maxPct int) {
		switch {
		case s == nil:
			bad(field, "is required for %s", t.Type)
		case (s.CapacityPercent == 0) == (s.InstanceCount == 0):
			bad(field, "set exactly one of capacity_percent and instance_count")
		case s.CapacityPercent != 0 && (s.CapacityPercent < minPct || s.CapacityPercent > maxPct):
			bad(field+".capacity_percent", "%d must be %d-%d", s.CapacityPercent, minPct, maxPct)
		case s.InstanceCount < 0:
			bad(field+".instance_count", "%d must be at least 1", s.InstanceCount)
		case s.InstanceCount > 0 && count > 0:
			pct := 100 * float64(s.InstanceCount) / float64(count)
			if pct < float64(minPct) || pct > float64(maxPct) {
				bad(field+".instance_count", "%d of %d instances is %.0f%% of the new fleet; must be %d-%d%%", s.InstanceCount, count, pct, minPct, maxPct)
			}
		}
	}
	switch t.Type {
	case Linear:
		size("step", t.Step, 10, 50)
		if t.Canary != nil {
			bad("canary", "is only for CANARY")
		}
	case Canary:
		size("canary", t.Canary, 1, 50)
		if t.Step != nil {
			bad("step", "is only for LINEAR")
		}
	case AllAtOnce:
		if t.Step != nil || t.Canary != nil {
			bad("type", "ALL_AT_ONCE takes neither step nor canary")
		}
	default:
		bad("type", "%q must be ALL_AT_ONCE, CANARY or LINEAR", t.Type)
	}
	secs := func(field string, d, lo, hi time.Duration) {
		switch {
		case d%time.Second != 0:
			bad(field, "%s must be a whole number of seconds", d)
		case d < lo || d > hi:
			bad(field, "%s must be %s-%s (%d-%d seconds)", d, lo, hi, int(lo.Seconds()), int(hi.Seconds()))
		}
	}
	secs("wait_interval", t.WaitInterval, 0, maxWait)
	secs("termination_wait", t.TerminationWait, 0, maxWait)
	secs("max_execution_timeout", t.MaxExecutionTimeout, minExecutionTimeout, maxExecutionTimeout)
	if len(errs) == 0 {
		if total := r.TotalWait(); t.MaxExecutionTimeout <= total {
			bad("max_execution_timeout", "%s must be longer than the total waits %s (%d steps x wait_interval %s + termination_wait %s)",
				t.MaxExecutionTimeout, total, r.Steps(), t.WaitInterval, t.TerminationWait)
		}
	}
	return errs
}

// ShadowGate is the rollout's shadow-stage gate, nil without a shadow stage.
func (r *Rollout) ShadowGate() *Gate {
	if r.Shadow == nil {
		return nil
	}
	return r.Shadow.Gate
}

// stepPercent is the share of the new fleet's capacity one step adds.
func (r *Rollout) stepPercent() float64 {
	s := r.Traffic.Step
	if r.Traffic.Type == Canary {
		s = r.Traffic.Canary
	}
	switch {
	case s == nil:
		return 100
	case s.CapacityPercent > 0:
		return float64(s.CapacityPercent)
	case r.Candidate.InstanceCount > 0:
		return 100 * float64(s.InstanceCount) / float64(r.Candidate.InstanceCount)
	}
	return 100
}

// Shares lists the new fleet's traffic share after each step, in percent.
func (r *Rollout) Shares() []float64 {
	switch r.Traffic.Type {
	case Canary:
		return []float64{r.stepPercent(), 100}
	case Linear:
		var out []float64
		p := r.stepPercent()
		for i := 1; ; i++ {
			s := math.Min(100, float64(i)*p)
			out = append(out, s)
			if s >= 100 {
				return out
			}
		}
	}
	return []float64{100}
}

// Steps is the number of traffic steps.
func (r *Rollout) Steps() int { return len(r.Shares()) }

// TotalWait is the waiting a shift adds up to: a bake of WaitInterval after
// every step (the last one included) plus TerminationWait. SageMaker requires
// MaximumExecutionTimeoutInSeconds to exceed it.
func (r *Rollout) TotalWait() time.Duration {
	return time.Duration(r.Steps())*r.Traffic.WaitInterval + r.Traffic.TerminationWait
}
