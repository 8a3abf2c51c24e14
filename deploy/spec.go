// Package deploy builds, validates and applies the SageMaker requests of a model
// rollout: the shadow stage (an endpoint config with a shadow variant and data
// capture), the blue/green traffic shift (UpdateEndpoint with ALL_AT_ONCE,
// CANARY or LINEAR routing and verdict's alarms as auto-rollback triggers),
// weight moves of a stable A/B split, and watching a rollout to its end.
package deploy

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/internal/numfmt"
	"github.com/verdictml/verdict/internal/strictyaml"
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
	// FleetIdentity says how the verdict that feeds the rollback alarms tells the
	// new fleet from the old during the shift, when both serve as the production
	// variant and Data Capture writes both into one folder: FleetModelOutput,
	// FleetRequest or FleetApplication (docs/ingest.md). Unset, Warnings says the
	// alarms reading verdict's metrics cannot be trusted.
	FleetIdentity string `yaml:"fleet_identity"`

	// From the alarm spec of alarms.from_spec: the alarms reading verdict's metrics,
	// and the candidate's and baseline's variant ids there.
	verdictAlarms     []string
	alarmSpecVariants [2]string
	alarmSpecKnown    bool
}

// How verdict tells the fleets of a blue/green shift apart (Rollout.FleetIdentity).
const (
	// FleetModelOutput: the model states its version in its response, selected with
	// VERDICT_CAPTURE_VARIANT_SELECTOR (recommended).
	FleetModelOutput = "model-output"
	// FleetRequest: the request names the model the application chose, selected
	// with VERDICT_CAPTURE_VARIANT_SELECTOR=input:...
	FleetRequest = "request"
	// FleetApplication: the application's own records name the model: the
	// verdict JSON predictions it posts, or VERDICT_CAPTURE_VARIANT_MAP.
	FleetApplication = "application"
)

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

// Traffic is how the new fleet takes over: a blue/green traffic shift
// (ALL_AT_ONCE, CANARY, LINEAR: DeploymentConfig.BlueGreenUpdatePolicy) or a
// rolling deployment (ROLLING: DeploymentConfig.RollingUpdatePolicy).
type Traffic struct {
	Type string `yaml:"type"` // ALL_AT_ONCE, CANARY, LINEAR or ROLLING
	// Canary (CANARY) and Step (LINEAR) size the first step and each step.
	Canary *Size `yaml:"canary"`
	Step   *Size `yaml:"step"`
	// Batch (ROLLING) is MaximumBatchSize: the capacity each rolling step
	// provisions on the new fleet, turns traffic onto and terminates on the old.
	Batch *Size `yaml:"batch"`
	// RollbackBatch (ROLLING, optional) is RollbackMaximumBatchSize: the batch in
	// which a rollback brings the old fleet back; unset, all of it at once.
	RollbackBatch *Size `yaml:"rollback_batch"`
	// WaitInterval is the baking time after each step (each batch).
	WaitInterval time.Duration `yaml:"wait_interval"`
	// TerminationWait (blue/green only) keeps the old fleet after the shift completes.
	TerminationWait time.Duration `yaml:"termination_wait"`
	// MaxExecutionTimeout bounds the whole deployment, provisioning included.
	MaxExecutionTimeout time.Duration `yaml:"max_execution_timeout"`
	// Provisioning is the time allowed for SageMaker to bring up new instances
	// (launch, model download, the container's startup health checks) before they
	// take traffic: once for a blue/green shift, for every batch of a rolling one.
	// It counts against MaxExecutionTimeout. Default DefaultProvisioning.
	Provisioning time.Duration `yaml:"provisioning"`
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

// Traffic routing types: SageMaker's TrafficRoutingConfig types, and ROLLING for
// a RollingUpdatePolicy.
const (
	AllAtOnce = "ALL_AT_ONCE"
	Canary    = "CANARY"
	Linear    = "LINEAR"
	Rolling   = "ROLLING"
)

// DefaultProvisioning is verdict's allowance for SageMaker to bring up new
// instances before they take traffic, and MinProvisioning the least it accepts.
// SageMaker publishes no provisioning time; what bounds it is documented: the
// container must pass its startup health checks within a window after it starts
// (4 minutes in the container guide, "How your container should respond to health
// check (Ping) requests"; ContainerStartupHealthCheckTimeoutInSeconds raises it to
// at most 3600 s), after the instance launched and downloaded the model
// (ModelDataDownloadTimeoutInSeconds, at most 3600 s). MinProvisioning is a little
// more than the health-check window alone; the default leaves room for the launch
// and the download. Models that load slowly should say so in traffic.provisioning.
const (
	DefaultProvisioning = 15 * time.Minute
	MinProvisioning     = 5 * time.Minute
)

// LoadRollout reads a rollout spec, resolves alarms.from_spec relative to it,
// applies defaults and validates.
func LoadRollout(path string) (*Rollout, error) {
	return strictyaml.Load(path, "deploy", "rollout spec", func(b []byte) (*Rollout, error) {
		return strictyaml.Parse(b, "rollout spec", (*Rollout).applyDefaults, func(r *Rollout) error {
			if err := r.loadAlarmSpec(path); err != nil {
				return err
			}
			return r.Validate()
		})
	})
}

// ParseRollout decodes and validates a rollout spec whose alarms are given by
// name (alarms.from_spec needs LoadRollout to resolve the file).
func ParseRollout(b []byte) (*Rollout, error) {
	return strictyaml.Parse(b, "rollout spec", (*Rollout).applyDefaults, func(r *Rollout) error {
		if r.Alarms.FromSpec != "" {
			return errors.New("alarms.from_spec: load the rollout from its file to resolve it")
		}
		return r.Validate()
	})
}

// loadAlarmSpec resolves alarms.from_spec, relative to the rollout spec at path:
// the alarm spec's alarms join the rollback alarms, and its variants fill in the
// shadow gate's where the rollout leaves them out.
func (r *Rollout) loadAlarmSpec(path string) error {
	if r.Alarms.FromSpec == "" {
		return nil
	}
	p := r.Alarms.FromSpec
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(path), p)
	}
	s, err := alarms.LoadSpec(p)
	if err != nil {
		return fmt.Errorf("alarms.from_spec: %w", err)
	}
	for _, n := range s.AlarmNames() {
		if !slices.Contains(r.Alarms.Names, n) {
			r.Alarms.Names = append(r.Alarms.Names, n)
		}
	}
	r.verdictAlarms = s.VerdictMetricAlarmNames()
	r.alarmSpecVariants = [2]string{s.Candidate.Variant, s.Baseline.Variant}
	r.alarmSpecKnown = true
	// The alarms watch the same two models the shadow gate compares.
	if g := r.ShadowGate(); g != nil {
		if g.Baseline == "" {
			g.Baseline = s.Baseline.Variant
		}
		if g.Candidate == "" {
			g.Candidate = s.Candidate.Variant
		}
	}
	return nil
}

func (r *Rollout) applyDefaults() {
	if r.Candidate.InstanceType == "" {
		r.Candidate.InstanceType = r.Production.InstanceType
	}
	if r.Candidate.InstanceCount == 0 {
		r.Candidate.InstanceCount = r.Production.InstanceCount
	}
	if r.Traffic.Provisioning == 0 {
		r.Traffic.Provisioning = DefaultProvisioning
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

// checkName reports, through bad, a SageMaker resource name (an endpoint, endpoint
// config, model or variant) that is missing or that SageMaker would reject.
func checkName(bad func(field, format string, args ...any), field, v string) {
	switch {
	case v == "":
		bad(field, "is required")
	case !resourceNameRE.MatchString(v):
		bad(field, "%q must be 1-63 letters, digits and hyphens, starting and ending with a letter or digit", v)
	}
}

// checkInstances reports, through bad, the instance type and count of a fleet
// (field.instance_type, field.instance_count) that SageMaker would reject.
func checkInstances(bad func(field, format string, args ...any), field, instanceType string, count int) {
	if !instanceTypeRE.MatchString(instanceType) {
		bad(field+".instance_type", "%q must be a SageMaker instance type such as ml.c5.xlarge", instanceType)
	}
	if count < 1 {
		bad(field+".instance_count", "%d must be at least 1", count)
	}
}

// Validate reports everything SageMaker would reject, each problem naming its field.
func (r *Rollout) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	name := func(field, v string) { checkName(bad, field, v) }
	fleet := func(field, instanceType string, count int) { checkInstances(bad, field, instanceType, count) }
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
	switch r.FleetIdentity {
	case "", FleetModelOutput, FleetRequest, FleetApplication:
	default:
		bad("fleet_identity", "%q must be %s, %s or %s", r.FleetIdentity, FleetModelOutput, FleetRequest, FleetApplication)
	}

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
	// size checks a step, canary or batch: its share of the new fleet in
	// [minPct, maxPct] (SageMaker's rule, on the size as given) and at least one
	// whole instance, since a fleet shifts, provisions and terminates whole
	// instances.
	size := func(field string, s *Size, minPct, maxPct int) {
		switch {
		case s == nil:
			bad(field, "is required for %s", t.Type)
		case (s.CapacityPercent == 0) == (s.InstanceCount == 0):
			bad(field, "set exactly one of capacity_percent and instance_count")
		case s.CapacityPercent != 0 && (s.CapacityPercent < minPct || s.CapacityPercent > maxPct):
			bad(field+".capacity_percent", "%d must be %d-%d", s.CapacityPercent, minPct, maxPct)
		case s.CapacityPercent != 0 && count > 0 && s.CapacityPercent*count < 100:
			bad(field+".capacity_percent", "%d%% of %d instances is %s of an instance, and a fleet moves whole instances; use instance_count: 1 (%s of the new fleet)",
				s.CapacityPercent, count, fmtInstances(float64(s.CapacityPercent*count)/100), pct(100/float64(count)))
		case s.InstanceCount < 0:
			bad(field+".instance_count", "%d must be at least 1", s.InstanceCount)
		case s.InstanceCount > 0 && count > 0:
			p := 100 * float64(s.InstanceCount) / float64(count)
			if p < float64(minPct) || p > float64(maxPct) {
				bad(field+".instance_count", "%d of %d instances is %.0f%% of the new fleet; must be %d-%d%%", s.InstanceCount, count, p, minPct, maxPct)
			}
		}
	}
	only := func(field string, set bool, types string) {
		if set {
			bad(field, "is only for %s", types)
		}
	}
	switch t.Type {
	case Linear:
		size("step", t.Step, 10, 50)
		only("canary", t.Canary != nil, "CANARY")
	case Canary:
		size("canary", t.Canary, 1, 50)
		only("step", t.Step != nil, "LINEAR")
	case AllAtOnce:
		if t.Step != nil || t.Canary != nil {
			bad("type", "ALL_AT_ONCE takes neither step nor canary")
		}
	case Rolling:
		size("batch", t.Batch, 5, 50)
		if rb := t.RollbackBatch; rb != nil {
			size("rollback_batch", rb, 1, 100)
		}
		only("step", t.Step != nil, "LINEAR")
		only("canary", t.Canary != nil, "CANARY")
		only("termination_wait", t.TerminationWait != 0, "blue/green shifts (a rolling deployment terminates old instances batch by batch)")
	default:
		bad("type", "%q must be ALL_AT_ONCE, CANARY, LINEAR or ROLLING", t.Type)
	}
	if t.Type != Rolling {
		only("batch", t.Batch != nil, "ROLLING")
		only("rollback_batch", t.RollbackBatch != nil, "ROLLING")
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
	secs("provisioning", t.Provisioning, MinProvisioning, maxExecutionTimeout)
	if len(errs) == 0 {
		if need := r.RequiredExecutionTime(); t.MaxExecutionTimeout < need {
			bad("max_execution_timeout", "%s is shorter than the deployment can take, %s (%s)", t.MaxExecutionTimeout, need, r.executionBreakdown())
		}
	}
	return errs
}

// fmtInstances prints a fraction of instances, 0.4 rather than 0.4000.
func fmtInstances(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// ShadowGate is the rollout's shadow-stage gate, nil without a shadow stage.
func (r *Rollout) ShadowGate() *Gate {
	if r.Shadow == nil {
		return nil
	}
	return r.Shadow.Gate
}

// stepSize is what one step moves: the LINEAR step, the CANARY canary, the
// ROLLING batch; nil for ALL_AT_ONCE.
func (r *Rollout) stepSize() *Size {
	switch r.Traffic.Type {
	case Linear:
		return r.Traffic.Step
	case Canary:
		return r.Traffic.Canary
	case Rolling:
		return r.Traffic.Batch
	}
	return nil
}

// StepInstances is how many whole instances of the new fleet one step moves (the
// canary's size for CANARY, a batch for ROLLING; the whole fleet for ALL_AT_ONCE).
// A capacity percent is rounded down to whole instances, at least one: SageMaker
// moves whole instances and does not document how it rounds, and rounding down
// plans as many steps as it could take (Warnings says when it rounds).
func (r *Rollout) StepInstances() int {
	n := r.Candidate.InstanceCount
	s := r.stepSize()
	switch {
	case s == nil || n <= 0:
		return max(n, 1)
	case s.InstanceCount > 0:
		return min(s.InstanceCount, n)
	}
	return min(max(s.CapacityPercent*n/100, 1), n)
}

// Shares lists the new fleet's traffic share after each step, in percent: whole
// instances of the new fleet over its instance count.
func (r *Rollout) Shares() []float64 {
	n := r.Candidate.InstanceCount
	if n <= 0 {
		return []float64{100}
	}
	step := r.StepInstances()
	share := func(instances int) float64 { return 100 * float64(min(instances, n)) / float64(n) }
	switch r.Traffic.Type {
	case Canary:
		if step >= n {
			return []float64{100}
		}
		return []float64{share(step), 100}
	case Linear, Rolling:
		var out []float64
		for i := step; ; i += step {
			out = append(out, share(i))
			if i >= n {
				return out
			}
		}
	}
	return []float64{100}
}

// Steps is the number of traffic steps (batches, for ROLLING).
func (r *Rollout) Steps() int { return len(r.Shares()) }

// RequiredExecutionTime is what MaxExecutionTimeout must cover: the provisioning
// allowance — once before a blue/green shift's first step, before every batch of
// a rolling deployment, which provisions batch by batch — and the total waits: a
// bake of WaitInterval after every step (the last one included), plus
// TerminationWait for a blue/green shift.
func (r *Rollout) RequiredExecutionTime() time.Duration {
	t := r.Traffic
	if t.Type == Rolling {
		return time.Duration(r.Steps()) * (t.Provisioning + t.WaitInterval)
	}
	return t.Provisioning + time.Duration(r.Steps())*t.WaitInterval + t.TerminationWait
}

// executionBreakdown explains RequiredExecutionTime.
func (r *Rollout) executionBreakdown() string {
	t := r.Traffic
	if t.Type == Rolling {
		return fmt.Sprintf("%d batch(es) x (provisioning %s + wait_interval %s)", r.Steps(), numfmt.Duration(t.Provisioning), numfmt.Duration(t.WaitInterval))
	}
	return fmt.Sprintf("provisioning %s + %d step(s) x wait_interval %s + termination_wait %s",
		numfmt.Duration(t.Provisioning), r.Steps(), numfmt.Duration(t.WaitInterval), numfmt.Duration(t.TerminationWait))
}

// Warnings are what a reviewer of the rollout should know that is not an error:
// alarms that cannot tell the fleets of the shift apart, and a step that SageMaker
// will round to whole instances.
func (r *Rollout) Warnings() []string {
	out := r.fleetWarnings()
	if r.Traffic.Type == Rolling && r.Shadow != nil {
		out = append(out, fmt.Sprintf("traffic.type: ROLLING from the shadow stage: SageMaker excludes multi-variant endpoints from rolling deployments (Deployment guardrails, Exclusions) and the shadow stage's %s has the shadow variant %s besides %s; the exclusions do not say whether a shadow variant counts: if UpdateEndpoint refuses the promotion, promote with a LINEAR shift",
			r.Shadow.EndpointConfig, r.Shadow.Variant, r.Production.Variant))
	}
	n := r.Candidate.InstanceCount
	field := map[string]string{Linear: "traffic.step", Canary: "traffic.canary", Rolling: "traffic.batch"}[r.Traffic.Type]
	if s := r.stepSize(); s != nil && s.CapacityPercent > 0 && n > 0 && (s.CapacityPercent*n)%100 != 0 {
		exact := float64(s.CapacityPercent*n) / 100
		down := r.StepInstances()
		out = append(out, fmt.Sprintf("%s: %d%% of %d instances is %s instances; a fleet moves whole instances and SageMaker does not document how it rounds: planned and rehearsed as %d instance(s) (%s) per step, %d steps (it could be %d, %s); set instance_count to say which",
			field, s.CapacityPercent, n, fmtInstances(exact), down, pct(100*float64(down)/float64(n)), r.Steps(), down+1, pct(100*float64(min(down+1, n))/float64(n))))
	}
	return out
}

// fleetWarnings says when the rollback alarms may not tell the new fleet from the
// old. Both keep the production variant's name during the shift, and Data Capture
// writes both under {endpoint}/{variant}/; SageMaker's own metrics carry the new
// fleet's EndpointConfigName, verdict's carry whatever variant id verdict gave a
// prediction.
func (r *Rollout) fleetWarnings() []string {
	var out []string
	v := r.Production.Variant
	where := "into one folder"
	if dc := r.DataCapture; dc != nil {
		where = "into " + strings.TrimSuffix(dc.Destination, "/") + "/" + r.Endpoint + "/" + v + "/"
	}
	if r.alarmSpecKnown {
		for i, field := range []string{"candidate.variant", "baseline.variant"} {
			if r.alarmSpecVariants[i] == v && len(r.verdictAlarms) > 0 {
				out = append(out, fmt.Sprintf("alarms.from_spec: the alarm spec's %s is %q, the production variant's name: during the shift both fleets serve as %s and Data Capture writes both %s, so %s read the two models as one; give verdict's variants the models' names (docs/ingest.md, telling the fleets of a shift apart)",
					field, v, v, where, strings.Join(r.verdictAlarms, ", ")))
			}
		}
	}
	if r.FleetIdentity != "" {
		return out
	}
	switch {
	case r.alarmSpecKnown && len(r.verdictAlarms) == 0:
		return out // SageMaker's own metrics only: EndpointConfigName tells the fleets apart
	case r.alarmSpecKnown:
		out = append(out, fmt.Sprintf("fleet_identity: not set, and %s read verdict's metrics of %s and %s: during the shift both fleets serve as %s and Data Capture writes both %s without naming the model, so they are right only if the verdict publishing them tells the fleets apart - the model's version in its response (VERDICT_CAPTURE_VARIANT_SELECTOR), a request attribute (input:...), or the application's record (its verdict JSON predictions, VERDICT_CAPTURE_VARIANT_MAP); configure one and name it in fleet_identity (%s, %s, %s)",
			strings.Join(r.verdictAlarms, ", "), r.alarmSpecVariants[0], r.alarmSpecVariants[1], v, where, FleetModelOutput, FleetRequest, FleetApplication))
	default:
		out = append(out, fmt.Sprintf("fleet_identity: not set: if any of the rollback alarms reads verdict's metrics, it is right during the shift only if verdict tells the fleets apart (both serve as %s, their captures go %s); configure one way and name it in fleet_identity (%s, %s, %s)",
			v, where, FleetModelOutput, FleetRequest, FleetApplication))
	}
	return out
}
