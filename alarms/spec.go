package alarms

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/internal/strictyaml"
)

// Spec is a reviewed alarm spec: which endpoint and candidate the alarms watch,
// against which baseline, with which thresholds and evaluation settings. It is
// read from YAML; see testdata/spec.yaml and docs/alarms.md.
type Spec struct {
	// Name identifies the alarm set. It is tagged on every alarm (TagAlarmSet)
	// so apply touches only this set's alarms.
	Name string `yaml:"name"`
	// Namespace verdict publishes into; cwmetric.DefaultNamespace when empty.
	Namespace string `yaml:"namespace"`
	// Endpoint is the SageMaker endpoint name (the EndpointName dimension).
	Endpoint  string    `yaml:"endpoint"`
	Candidate Candidate `yaml:"candidate"`
	Baseline  Baseline  `yaml:"baseline"`
	// AlarmNamePrefix starts every alarm name; "verdict-<name>-" when empty.
	AlarmNamePrefix string     `yaml:"alarm_name_prefix"`
	Evaluation      Evaluation `yaml:"evaluation"`
	// MinN is the minimum-n guard: a precision or recall datapoint exists only
	// when the statistic's own n (PredictedPositives, LabeledPositives) is at
	// least MinN; below it the alarm sees missing data.
	MinN int `yaml:"min_n"`
	// MinPredictions is the minimum-n guard of the shift alarms (flag-rate-shift,
	// score-shift and their segment forms): a datapoint exists only when both the
	// candidate and the baseline have at least this many predictions since the
	// shift started (ShiftPredictionCount); below it the alarm sees missing data.
	MinPredictions int        `yaml:"min_predictions"`
	Thresholds     Thresholds `yaml:"thresholds"`
	// TreatMissingData overrides the per-kind default (see DefaultTreatMissingData).
	TreatMissingData map[Kind]string `yaml:"treat_missing_data"`
	Actions          Actions         `yaml:"actions"`
	// Tags are added to every alarm next to verdict's own tags.
	Tags map[string]string `yaml:"tags"`
}

// Candidate is the new model the alarms judge.
type Candidate struct {
	// Variant is verdict's VariantName dimension value for the candidate.
	Variant string `yaml:"variant"`
	// SageMakerVariant is the production variant name on the endpoint, used for
	// SageMaker's own ModelLatency and Invocation5XXErrors metrics.
	SageMakerVariant string `yaml:"sagemaker_variant"`
	// EndpointConfig is the new fleet's endpoint config name. During a blue/green
	// shift both fleets share the variant name, so SageMaker's metrics for the new
	// fleet carry this as the EndpointConfigName dimension. Empty for a variant
	// that is not being shifted in (e.g. a stable A/B split).
	EndpointConfig string `yaml:"endpoint_config"`
}

// Baseline is the variant the candidate is compared with.
type Baseline struct {
	Variant string `yaml:"variant"`
}

// Evaluation holds CloudWatch's evaluation settings, shared by all alarms of a set.
type Evaluation struct {
	Period            time.Duration `yaml:"period"`
	EvaluationPeriods int           `yaml:"evaluation_periods"`
	DatapointsToAlarm int           `yaml:"datapoints_to_alarm"`
}

// Thresholds says which alarms exist: an unset threshold means no such alarm.
type Thresholds struct {
	// PrecisionFloor and RecallFloor alarm when the candidate's value is below them.
	PrecisionFloor *float64 `yaml:"precision_floor"`
	RecallFloor    *float64 `yaml:"recall_floor"`
	// MaxPrecisionDrop and MaxRecallDrop alarm when the candidate is worse than
	// the baseline by more than this fraction of the baseline's value
	// ((baseline - candidate) / baseline), e.g. 0.05 = 5 % worse.
	MaxPrecisionDrop *float64 `yaml:"max_precision_drop"`
	MaxRecallDrop    *float64 `yaml:"max_recall_drop"`
	// MaxSegmentRegressions alarms when more segments than this are significantly
	// worse than the baseline (verdict's SegmentRegressions signal).
	MaxSegmentRegressions *int `yaml:"max_segment_regressions"`
	// LatencyP99Ms alarms when SageMaker's ModelLatency p99 on the candidate
	// exceeds it (milliseconds here; CloudWatch's metric is in microseconds).
	LatencyP99Ms *float64 `yaml:"latency_p99_ms"`
	// Max5XXRate alarms when Invocation5XXErrors / Invocations on the candidate
	// exceeds it, judged only when there were at least MinInvocations.
	Max5XXRate     *float64 `yaml:"max_5xx_rate"`
	MinInvocations int      `yaml:"min_invocations"`

	// The shift alarms read label-free signals against the reference period (the
	// shadow stage; the publisher's VERDICT_REFERENCE_SINCE/UNTIL), so they can fire
	// inside a traffic shift, when almost no labels exist.
	//
	// MaxFlagRateShift alarms when the candidate's flag rate moved since the
	// reference by more than this fold either way, relative to the baseline's
	// movement over the same traffic (FlagRateShiftVsBaseline): 1.5 alarms when the
	// candidate flags less than 1/1.5 (two thirds) or more than 1.5 times what the
	// baseline's movement predicts.
	MaxFlagRateShift *float64 `yaml:"max_flag_rate_shift"`
	// MaxSegmentFlagRateShift alarms when some segment's flag rate is shown (at
	// the publisher's confidence) to have moved by more than this fold, relative to
	// the baseline's (SegmentFlagRateShift).
	MaxSegmentFlagRateShift *float64 `yaml:"max_segment_flag_rate_shift"`
	// MaxScoreShift alarms when the candidate's score distribution moved from its
	// reference by more PSI than the baseline's did (ScoreShiftPSIVsBaseline).
	MaxScoreShift *float64 `yaml:"max_score_shift"`
	// MaxSegmentScoreShift is the same in the segment where it is largest
	// (SegmentScoreShiftPSI).
	MaxSegmentScoreShift *float64 `yaml:"max_segment_score_shift"`
}

// Actions are optional alarm actions (e.g. SNS topics paging the on-call).
// SageMaker's auto-rollback needs none: it watches the alarm state itself.
type Actions struct {
	Alarm            []string `yaml:"alarm"`
	OK               []string `yaml:"ok"`
	InsufficientData []string `yaml:"insufficient_data"`
}

// Kind is one kind of rollback alarm.
type Kind string

// The alarm kinds, in the order they are built.
const (
	KindPrecisionFloor     Kind = "precision-floor"
	KindRecallFloor        Kind = "recall-floor"
	KindPrecisionDrop      Kind = "precision-drop"
	KindRecallDrop         Kind = "recall-drop"
	KindSegmentRegressions Kind = "segment-regressions"
	KindLatencyP99         Kind = "latency-p99"
	KindErrorRate          Kind = "error-rate"
	KindFlagRateShift      Kind = "flag-rate-shift"
	KindSegmentFlagRate    Kind = "segment-flag-rate-shift"
	KindScoreShift         Kind = "score-shift"
	KindSegmentScoreShift  Kind = "segment-score-shift"
)

var kinds = []Kind{KindPrecisionFloor, KindRecallFloor, KindPrecisionDrop, KindRecallDrop,
	KindSegmentRegressions, KindLatencyP99, KindErrorRate,
	KindFlagRateShift, KindSegmentFlagRate, KindScoreShift, KindSegmentScoreShift}

// Kinds lists every alarm kind in build order.
func Kinds() []Kind { return slices.Clone(kinds) }

// TreatMissingData values.
const (
	MissingBreaching    = "breaching"
	MissingNotBreaching = "notBreaching"
	MissingIgnore       = "ignore"
	MissingMissing      = "missing"
)

// DefaultTreatMissingData is the missing-data treatment per kind; docs/alarms.md
// explains each choice. Every verdict alarm reads missing data as "nothing to
// judge" (too few labels, or no traffic on the new fleet yet), never as evidence
// of a regression, so a rollback needs DatapointsToAlarm real, guarded breaching
// datapoints.
func DefaultTreatMissingData(Kind) string { return MissingNotBreaching }

// Defaults applied by Load to fields left empty.
const (
	DefaultPeriod            = 5 * time.Minute
	DefaultEvaluationPeriods = 3
	DefaultDatapointsToAlarm = 2
	DefaultMinN              = 50
	DefaultMinInvocations    = 100
	DefaultMinPredictions    = 1000
)

// LoadSpec reads, defaults and validates an alarm spec file.
func LoadSpec(path string) (*Spec, error) {
	return strictyaml.Load(path, "alarms", "spec", ParseSpec)
}

// ParseSpec decodes YAML strictly (unknown fields are errors), applies defaults
// and validates.
func ParseSpec(b []byte) (*Spec, error) {
	return strictyaml.Parse(b, "spec", (*Spec).applyDefaults, (*Spec).Validate)
}

func (s *Spec) applyDefaults() {
	if s.Namespace == "" {
		s.Namespace = cwmetric.DefaultNamespace
	}
	if s.AlarmNamePrefix == "" && s.Name != "" {
		s.AlarmNamePrefix = "verdict-" + s.Name + "-"
	}
	if s.Evaluation.Period == 0 {
		s.Evaluation.Period = DefaultPeriod
	}
	if s.Evaluation.EvaluationPeriods == 0 {
		s.Evaluation.EvaluationPeriods = DefaultEvaluationPeriods
	}
	if s.Evaluation.DatapointsToAlarm == 0 {
		s.Evaluation.DatapointsToAlarm = min(DefaultDatapointsToAlarm, s.Evaluation.EvaluationPeriods)
	}
	if s.MinN == 0 {
		s.MinN = DefaultMinN
	}
	if s.MinPredictions == 0 {
		s.MinPredictions = DefaultMinPredictions
	}
	if s.Thresholds.MinInvocations == 0 {
		s.Thresholds.MinInvocations = DefaultMinInvocations
	}
}

var (
	setNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// dimensionValueRE: CloudWatch dimension values are 1..1024 characters; we
	// additionally refuse control characters and surrounding spaces.
	printableRE = regexp.MustCompile(`^[[:print:]]+$`)
)

// PutMetricAlarm's limits (CloudWatch API reference, PutMetricAlarm and
// MetricDataQuery; the service model's AlarmName, AlarmDescription, ResourceList,
// ResourceName, MetricExpression shapes): an alarm name of at most 255 characters, a
// description of at most 1024, at most 5 actions per state of at most 1024
// characters each, at most 20 MetricDataQuery structures of which at most 10
// MetricStat and 10 expressions, each expression at most 2048 characters, and "as
// many as 50 tags with an alarm".
const (
	maxAlarmNameLen   = 255
	maxDescriptionLen = 1024
	maxActions        = 5
	maxActionLen      = 1024
	maxMetricQueries  = 20
	maxMetricStats    = 10
	maxExpressions    = 10
	maxExpressionLen  = 2048
	maxTags           = 50
)

// Validate reports every problem in the spec, each naming its field.
func (s *Spec) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !setNameRE.MatchString(s.Name) {
		bad("name", "%q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", s.Name)
	}
	checkDimValue := func(field, v string, required bool) {
		switch {
		case v == "" && required:
			bad(field, "is required")
		case v == "":
		case len(v) > 1024:
			bad(field, "is %d characters; CloudWatch dimension values are at most 1024", len(v))
		case !printableRE.MatchString(v) || strings.TrimSpace(v) != v:
			bad(field, "%q must be printable ASCII without surrounding spaces", v)
		}
	}
	checkDimValue("endpoint", s.Endpoint, true)
	// The publisher's own rule: a spec must not read a namespace verdict cannot publish.
	if err := cwmetric.CheckNamespace(s.Namespace); err != nil {
		bad("namespace", "%v", err)
	}
	checkDimValue("candidate.variant", s.Candidate.Variant, true)
	th := s.Thresholds
	needsSageMaker := th.LatencyP99Ms != nil || th.Max5XXRate != nil
	checkDimValue("candidate.sagemaker_variant", s.Candidate.SageMakerVariant, needsSageMaker)
	checkDimValue("candidate.endpoint_config", s.Candidate.EndpointConfig, false)
	needsBaseline := th.MaxPrecisionDrop != nil || th.MaxRecallDrop != nil || th.MaxSegmentRegressions != nil ||
		th.MaxFlagRateShift != nil || th.MaxSegmentFlagRateShift != nil || th.MaxScoreShift != nil || th.MaxSegmentScoreShift != nil
	checkDimValue("baseline.variant", s.Baseline.Variant, needsBaseline)
	if s.Baseline.Variant != "" && s.Baseline.Variant == s.Candidate.Variant {
		bad("baseline.variant", "%q is the candidate itself; compare against the production model", s.Baseline.Variant)
	}
	if !printableRE.MatchString(s.AlarmNamePrefix) {
		bad("alarm_name_prefix", "%q must be printable ASCII", s.AlarmNamePrefix)
	} else {
		for _, k := range s.kinds() {
			if n := len(s.AlarmName(k)); n > maxAlarmNameLen {
				bad("alarm_name_prefix", "is %d characters; the %s alarm's name would be %d, over CloudWatch's %d", len(s.AlarmNamePrefix), k, n, maxAlarmNameLen)
				break
			}
		}
	}

	errs = append(errs, validateEvaluation(s.Evaluation)...)
	if s.MinN < 1 {
		bad("min_n", "%d must be at least 1", s.MinN)
	}
	if s.MinPredictions < 1 {
		bad("min_predictions", "%d must be at least 1", s.MinPredictions)
	}

	fraction := func(field string, v *float64, lowOpen bool) {
		if v == nil {
			return
		}
		if math.IsNaN(*v) || *v > 1 || *v < 0 || (lowOpen && *v == 0) {
			bad(field, "%v must be a fraction in (0, 1]", *v)
		}
	}
	fraction("thresholds.precision_floor", th.PrecisionFloor, true)
	fraction("thresholds.recall_floor", th.RecallFloor, true)
	fraction("thresholds.max_precision_drop", th.MaxPrecisionDrop, true)
	fraction("thresholds.max_recall_drop", th.MaxRecallDrop, true)
	fraction("thresholds.max_5xx_rate", th.Max5XXRate, true)
	if v := th.MaxSegmentRegressions; v != nil && *v < 0 {
		bad("thresholds.max_segment_regressions", "%d must be 0 or more", *v)
	}
	if v := th.LatencyP99Ms; v != nil && (math.IsNaN(*v) || *v <= 0 || *v > 3_600_000) {
		bad("thresholds.latency_p99_ms", "%v must be a positive number of milliseconds (at most one hour)", *v)
	}
	fold := func(field string, v *float64) {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0) || *v <= 1) {
			bad(field, "%v must be a fold change above 1 (1.5: a third fewer or half as many more)", *v)
		}
	}
	fold("thresholds.max_flag_rate_shift", th.MaxFlagRateShift)
	fold("thresholds.max_segment_flag_rate_shift", th.MaxSegmentFlagRateShift)
	psi := func(field string, v *float64) {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0) || *v <= 0) {
			bad(field, "%v must be a positive PSI (0.1 moderate, 0.25 major)", *v)
		}
	}
	psi("thresholds.max_score_shift", th.MaxScoreShift)
	psi("thresholds.max_segment_score_shift", th.MaxSegmentScoreShift)
	if th.MinInvocations < 1 {
		bad("thresholds.min_invocations", "%d must be at least 1", th.MinInvocations)
	}
	if s.kinds() == nil {
		bad("thresholds", "no alarm configured; set at least one threshold")
	}

	for k, v := range s.TreatMissingData {
		if !slices.Contains(kinds, k) {
			bad("treat_missing_data", "unknown alarm kind %q (one of %s)", k, joinKinds())
			continue
		}
		switch v {
		case MissingBreaching, MissingNotBreaching, MissingIgnore, MissingMissing:
		default:
			bad("treat_missing_data."+string(k), "%q must be breaching, notBreaching, ignore or missing", v)
		}
	}
	for _, list := range []struct {
		field, member string
		arns          []string
	}{{"actions.alarm", "AlarmActions", s.Actions.Alarm}, {"actions.ok", "OKActions", s.Actions.OK},
		{"actions.insufficient_data", "InsufficientDataActions", s.Actions.InsufficientData}} {
		if n := len(list.arns); n > maxActions {
			bad(list.field, "%d actions; PutMetricAlarm's %s takes at most %d", n, list.member, maxActions)
		}
		for i, arn := range list.arns {
			if !strings.HasPrefix(arn, "arn:") || len(arn) > maxActionLen {
				bad(fmt.Sprintf("%s[%d]", list.field, i), "%q is not an ARN of at most %d characters", arn, maxActionLen)
			}
		}
	}
	if n := len(s.Tags) + len(s.verdictTags()); n > maxTags {
		bad("tags", "%d tags; with verdict's own %d (%s, %s) every alarm would carry %d, and CloudWatch allows %d per alarm",
			len(s.Tags), len(s.verdictTags()), TagManaged, TagAlarmSet, n, maxTags)
	}
	for k, v := range s.Tags {
		lk := strings.ToLower(k)
		switch {
		case k == "" || len(k) > 128:
			bad("tags", "key %q must be 1-128 characters", k)
		case strings.HasPrefix(lk, "aws:") || strings.HasPrefix(lk, "verdict:"):
			bad("tags."+k, "keys starting with aws: or verdict: are reserved")
		case len(v) > 256:
			bad("tags."+k, "value is %d characters; at most 256", len(v))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, s.validateBuilt()...)
	}
	return errors.Join(errs...)
}

// validateBuilt checks what only the built alarms show: each description, the
// size of each math expression and of each Metrics array, against PutMetricAlarm's
// limits. It runs on an otherwise valid spec (build dereferences the thresholds).
func (s *Spec) validateBuilt() []error {
	var errs []error
	for _, k := range s.kinds() {
		a := s.build(k)
		if n := len(a.AlarmDescription); n > maxDescriptionLen {
			field, length := s.longestNamed()
			errs = append(errs, fmt.Errorf("%s: its %d characters make the %s alarm's AlarmDescription %d characters; CloudWatch's PutMetricAlarm takes at most %d: use a shorter %s",
				field, length, k, n, maxDescriptionLen, field))
		}
		stats, exprs := 0, 0
		for _, q := range a.Metrics {
			if q.MetricStat != nil {
				stats++
			}
			if q.Expression == "" {
				continue
			}
			exprs++
			if n := len(q.Expression); n > maxExpressionLen {
				errs = append(errs, fmt.Errorf("thresholds: the %s alarm's expression %s is %d characters; at most %d", k, q.ID, n, maxExpressionLen))
			}
		}
		if stats > maxMetricStats || exprs > maxExpressions || len(a.Metrics) > maxMetricQueries {
			errs = append(errs, fmt.Errorf("thresholds: the %s alarm has %d metrics and %d expressions; PutMetricAlarm takes at most %d of each and %d in all",
				k, stats, exprs, maxMetricStats, maxMetricQueries))
		}
	}
	return errs
}

// longestNamed is the longest of the spec's values that alarm descriptions quote,
// and its field: what to shorten when a description is too long.
func (s *Spec) longestNamed() (field string, length int) {
	for _, f := range []struct{ field, v string }{
		{"candidate.variant", s.Candidate.Variant}, {"baseline.variant", s.Baseline.Variant}, {"endpoint", s.Endpoint},
		{"candidate.sagemaker_variant", s.Candidate.SageMakerVariant}, {"candidate.endpoint_config", s.Candidate.EndpointConfig},
		{"name", s.Name},
	} {
		if len(f.v) > length {
			field, length = f.field, len(f.v)
		}
	}
	return field, length
}

func joinKinds() string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// validateEvaluation checks CloudWatch's PutMetricAlarm rules for period and
// evaluation periods.
func validateEvaluation(e Evaluation) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("evaluation.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	p := e.Period
	switch {
	case p <= 0:
		bad("period", "%s must be positive", p)
	case p%time.Second != 0:
		bad("period", "%s must be a whole number of seconds", p)
	case p == 10*time.Second || p == 20*time.Second || p == 30*time.Second:
		bad("period", "%s: sub-minute periods need high-resolution metrics, and verdict publishes standard resolution; use a multiple of 60s", p)
	case p%time.Minute != 0:
		bad("period", "%s: CloudWatch accepts 10s, 20s, 30s or a multiple of 60s", p)
	}
	if e.EvaluationPeriods < 1 {
		bad("evaluation_periods", "%d must be at least 1", e.EvaluationPeriods)
	}
	if e.DatapointsToAlarm < 1 || e.DatapointsToAlarm > e.EvaluationPeriods {
		bad("datapoints_to_alarm", "%d must be between 1 and evaluation_periods (%d)", e.DatapointsToAlarm, e.EvaluationPeriods)
	}
	if p > 0 && e.EvaluationPeriods >= 1 {
		total := p * time.Duration(e.EvaluationPeriods)
		limit := 24 * time.Hour
		if p >= time.Hour {
			limit = 7 * 24 * time.Hour
		}
		if total > limit {
			bad("evaluation_periods", "period %s x %d = %s exceeds CloudWatch's limit of %s for this period", p, e.EvaluationPeriods, total, limit)
		}
	}
	return errs
}

// kinds lists the alarm kinds the spec configures, in build order.
func (s *Spec) kinds() []Kind {
	th := s.Thresholds
	var ks []Kind
	add := func(set bool, k Kind) {
		if set {
			ks = append(ks, k)
		}
	}
	add(th.PrecisionFloor != nil, KindPrecisionFloor)
	add(th.RecallFloor != nil, KindRecallFloor)
	add(th.MaxPrecisionDrop != nil, KindPrecisionDrop)
	add(th.MaxRecallDrop != nil, KindRecallDrop)
	add(th.MaxSegmentRegressions != nil, KindSegmentRegressions)
	add(th.LatencyP99Ms != nil, KindLatencyP99)
	add(th.Max5XXRate != nil, KindErrorRate)
	add(th.MaxFlagRateShift != nil, KindFlagRateShift)
	add(th.MaxSegmentFlagRateShift != nil, KindSegmentFlagRate)
	add(th.MaxScoreShift != nil, KindScoreShift)
	add(th.MaxSegmentScoreShift != nil, KindSegmentScoreShift)
	return ks
}

// AlarmName is the CloudWatch alarm name of one kind in this set.
func (s *Spec) AlarmName(k Kind) string { return s.AlarmNamePrefix + string(k) }

// AlarmNames lists the names of every alarm the spec defines, in build order;
// a rollout's AutoRollbackConfiguration takes them.
func (s *Spec) AlarmNames() []string {
	var names []string
	for _, k := range s.kinds() {
		names = append(names, s.AlarmName(k))
	}
	return names
}

// VerdictMetricAlarmNames lists the alarms that read verdict's own metrics — every
// kind but SageMaker's latency-p99 and error-rate — in build order. They are right
// during a blue/green shift only if verdict tells the two fleets apart (both keep
// the production variant's name); SageMaker's own metrics carry the new fleet's
// EndpointConfigName.
func (s *Spec) VerdictMetricAlarmNames() []string {
	var names []string
	for _, k := range s.kinds() {
		if k != KindLatencyP99 && k != KindErrorRate {
			names = append(names, s.AlarmName(k))
		}
	}
	return names
}

func (s *Spec) treatMissing(k Kind) string {
	if v, ok := s.TreatMissingData[k]; ok {
		return v
	}
	return DefaultTreatMissingData(k)
}
