package alarms

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/internal/numfmt"
)

// Alarm is one CloudWatch metric alarm as verdict defines it: either a single
// metric (MetricName set) or a metric math expression (Queries set). Field names
// and JSON names follow PutMetricAlarm, so each element of the JSON export (an
// array, one object per alarm) is what `aws cloudwatch put-metric-alarm
// --cli-input-json` takes; the CLI takes one object at a time (docs/alarms.md).
type Alarm struct {
	AlarmName        string `json:"AlarmName" yaml:"AlarmName"`
	AlarmDescription string `json:"AlarmDescription,omitempty" yaml:"AlarmDescription,omitempty"`
	ActionsEnabled   bool   `json:"ActionsEnabled" yaml:"ActionsEnabled"`

	Namespace         string      `json:"Namespace,omitempty" yaml:"Namespace,omitempty"`
	MetricName        string      `json:"MetricName,omitempty" yaml:"MetricName,omitempty"`
	Dimensions        []Dimension `json:"Dimensions,omitempty" yaml:"Dimensions,omitempty"`
	Period            int32       `json:"Period,omitempty" yaml:"Period,omitempty"`
	Statistic         string      `json:"Statistic,omitempty" yaml:"Statistic,omitempty"`
	ExtendedStatistic string      `json:"ExtendedStatistic,omitempty" yaml:"ExtendedStatistic,omitempty"`

	Metrics []Query `json:"Metrics,omitempty" yaml:"Metrics,omitempty"`

	ComparisonOperator               string  `json:"ComparisonOperator" yaml:"ComparisonOperator"`
	Threshold                        float64 `json:"Threshold" yaml:"Threshold"`
	EvaluationPeriods                int32   `json:"EvaluationPeriods" yaml:"EvaluationPeriods"`
	DatapointsToAlarm                int32   `json:"DatapointsToAlarm" yaml:"DatapointsToAlarm"`
	TreatMissingData                 string  `json:"TreatMissingData" yaml:"TreatMissingData"`
	EvaluateLowSampleCountPercentile string  `json:"EvaluateLowSampleCountPercentile,omitempty" yaml:"EvaluateLowSampleCountPercentile,omitempty"`

	AlarmActions            []string `json:"AlarmActions,omitempty" yaml:"AlarmActions,omitempty"`
	OKActions               []string `json:"OKActions,omitempty" yaml:"OKActions,omitempty"`
	InsufficientDataActions []string `json:"InsufficientDataActions,omitempty" yaml:"InsufficientDataActions,omitempty"`

	Tags []Tag `json:"Tags,omitempty" yaml:"Tags,omitempty"`
}

// Dimension is a CloudWatch dimension.
type Dimension struct {
	Name  string `json:"Name" yaml:"Name"`
	Value string `json:"Value" yaml:"Value"`
}

// Tag is a resource tag.
type Tag struct {
	Key   string `json:"Key" yaml:"Key"`
	Value string `json:"Value" yaml:"Value"`
}

// Query is one entry of a math alarm's Metrics: a metric (MetricStat) or an
// expression over other entries' IDs.
type Query struct {
	ID         string      `json:"Id" yaml:"Id"`
	Expression string      `json:"Expression,omitempty" yaml:"Expression,omitempty"`
	Label      string      `json:"Label,omitempty" yaml:"Label,omitempty"`
	MetricStat *MetricStat `json:"MetricStat,omitempty" yaml:"MetricStat,omitempty"`
	ReturnData bool        `json:"ReturnData" yaml:"ReturnData"`
}

// MetricStat is a metric with the period and statistic to aggregate it by.
type MetricStat struct {
	Metric Metric `json:"Metric" yaml:"Metric"`
	Period int32  `json:"Period" yaml:"Period"`
	Stat   string `json:"Stat" yaml:"Stat"`
}

// Metric names one CloudWatch metric.
type Metric struct {
	Namespace  string      `json:"Namespace" yaml:"Namespace"`
	MetricName string      `json:"MetricName" yaml:"MetricName"`
	Dimensions []Dimension `json:"Dimensions,omitempty" yaml:"Dimensions,omitempty"`
}

// Comparison operators used by verdict's alarms.
const (
	LessThanThreshold             = string(types.ComparisonOperatorLessThanThreshold)
	GreaterThanThreshold          = string(types.ComparisonOperatorGreaterThanThreshold)
	LessThanOrEqualToThreshold    = string(types.ComparisonOperatorLessThanOrEqualToThreshold)
	GreaterThanOrEqualToThreshold = string(types.ComparisonOperatorGreaterThanOrEqualToThreshold)
)

// ComparisonSymbol returns the operator of a comparison (<, <=, > or >=): the alarm
// breaches when value op threshold. Any other comparison gives "".
func ComparisonSymbol(comparison string) string {
	switch comparison {
	case LessThanThreshold:
		return "<"
	case LessThanOrEqualToThreshold:
		return "<="
	case GreaterThanThreshold:
		return ">"
	case GreaterThanOrEqualToThreshold:
		return ">="
	}
	return ""
}

// Build turns a validated spec into its alarms, in a stable order.
func Build(s *Spec) ([]Alarm, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("alarms: invalid spec: %w", err)
	}
	var out []Alarm
	for _, k := range s.kinds() {
		out = append(out, s.build(k)) // Validate checked each against PutMetricAlarm's limits
	}
	return out, nil
}

func (s *Spec) build(k Kind) Alarm {
	period := int32(s.Evaluation.Period.Seconds())
	th := s.Thresholds
	a := Alarm{
		AlarmName:               s.AlarmName(k),
		ActionsEnabled:          true,
		EvaluationPeriods:       int32(s.Evaluation.EvaluationPeriods),
		DatapointsToAlarm:       int32(s.Evaluation.DatapointsToAlarm),
		TreatMissingData:        s.treatMissing(k),
		AlarmActions:            slices.Clone(s.Actions.Alarm),
		OKActions:               slices.Clone(s.Actions.OK),
		InsufficientDataActions: slices.Clone(s.Actions.InsufficientData),
		Tags:                    s.tags(),
	}
	cand := []Dimension{{cwmetric.DimEndpointName, s.Endpoint}, {cwmetric.DimVariantName, s.Candidate.Variant}}
	base := []Dimension{{cwmetric.DimEndpointName, s.Endpoint}, {cwmetric.DimVariantName, s.Baseline.Variant}}
	vs := []Dimension{{cwmetric.DimEndpointName, s.Endpoint}, {cwmetric.DimVariantName, s.Candidate.Variant}, {cwmetric.DimBaselineVariant, s.Baseline.Variant}}
	sm := []Dimension{{cwmetric.DimEndpointName, s.Endpoint}, {cwmetric.DimVariantName, s.Candidate.SageMakerVariant}}
	if s.Candidate.EndpointConfig != "" {
		sm = append(sm, Dimension{cwmetric.DimEndpointConfigName, s.Candidate.EndpointConfig})
	}
	stat := func(id, metric, statistic string, dims []Dimension) Query {
		return Query{ID: id, MetricStat: &MetricStat{
			Metric: Metric{Namespace: s.Namespace, MetricName: metric, Dimensions: dims},
			Period: period, Stat: statistic}}
	}
	minN := strconv.Itoa(s.MinN)
	// The shift alarms' guard: both variants have enough predictions since the
	// shift started.
	minP := strconv.Itoa(s.MinPredictions)
	shiftGuard := func(v string) string {
		return "(nc >= " + minP + ") AND (nb >= " + minP + ") AND " + present(v)
	}
	shiftN := func() []Query {
		return []Query{stat("nc", cwmetric.ShiftPredictionCount, "Minimum", cand), stat("nb", cwmetric.ShiftPredictionCount, "Minimum", base)}
	}
	since := "since the shift started (against the reference period, the shadow stage)"
	window := fmt.Sprintf("%d of %d periods of %s", s.Evaluation.DatapointsToAlarm, s.Evaluation.EvaluationPeriods, numfmt.Duration(s.Evaluation.Period))
	who := fmt.Sprintf("%s on endpoint %s", s.Candidate.Variant, s.Endpoint)

	switch k {
	case KindPrecisionFloor, KindRecallFloor:
		// Dereference only this kind's threshold: the other one may be unset.
		metric, nMetric, floor := cwmetric.Recall, cwmetric.LabeledPositives, th.RecallFloor
		if k == KindPrecisionFloor {
			metric, nMetric, floor = cwmetric.Precision, cwmetric.PredictedPositives, th.PrecisionFloor
		}
		lower := strings.ToLower(metric)
		a.Metrics = []Query{
			stat("n", nMetric, "Minimum", cand),
			stat("v", metric, "Average", cand),
			{ID: "guarded", Expression: "IF((n >= " + minN + ") AND " + present("v") + ", v)", Label: lower + " when " + nMetric + " >= " + minN, ReturnData: true},
		}
		a.ComparisonOperator, a.Threshold = LessThanThreshold, *floor
		a.AlarmDescription = fmt.Sprintf("verdict: %s of %s below %s in %s; judged only when %s >= %s.",
			lower, who, fmtFloat(*floor), window, nMetric, minN)
	case KindPrecisionDrop, KindRecallDrop:
		metric, nMetric, drop := cwmetric.Recall, cwmetric.LabeledPositives, th.MaxRecallDrop
		if k == KindPrecisionDrop {
			metric, nMetric, drop = cwmetric.Precision, cwmetric.PredictedPositives, th.MaxPrecisionDrop
		}
		lower := strings.ToLower(metric)
		a.Metrics = []Query{
			stat("nc", nMetric, "Minimum", cand),
			stat("nb", nMetric, "Minimum", base),
			stat("vc", metric, "Average", cand),
			stat("vb", metric, "Average", base),
			{ID: "drop", Expression: "IF((nc >= " + minN + ") AND (nb >= " + minN + ") AND " + present("vc") + " AND (vb > 0), (vb - vc) / vb)",
				Label: "relative " + lower + " drop vs " + s.Baseline.Variant, ReturnData: true},
		}
		a.ComparisonOperator, a.Threshold = GreaterThanThreshold, *drop
		a.AlarmDescription = fmt.Sprintf("verdict: %s of %s more than %s%% below baseline %s in %s; judged only when %s >= %s on both.",
			lower, who, fmtFloat(*drop*100), s.Baseline.Variant, window, nMetric, minN)
	case KindSegmentRegressions:
		a.Namespace, a.MetricName, a.Dimensions = s.Namespace, cwmetric.SegmentRegressions, vs
		a.Period, a.Statistic = period, string(types.StatisticMaximum)
		a.ComparisonOperator, a.Threshold = GreaterThanThreshold, float64(*th.MaxSegmentRegressions)
		a.AlarmDescription = fmt.Sprintf("verdict: more than %d segments of %s significantly worse than baseline %s in %s (segments with enough samples only).",
			*th.MaxSegmentRegressions, who, s.Baseline.Variant, window)
	case KindLatencyP99:
		a.Namespace, a.MetricName, a.Dimensions = cwmetric.SageMakerNamespace, cwmetric.ModelLatency, sm
		a.Period, a.ExtendedStatistic = period, "p99"
		a.EvaluateLowSampleCountPercentile = "ignore"
		// ModelLatency is in microseconds.
		a.ComparisonOperator, a.Threshold = GreaterThanThreshold, *th.LatencyP99Ms*1000
		a.AlarmDescription = fmt.Sprintf("verdict: SageMaker ModelLatency p99 of %s above %s ms (%s us) in %s; low sample counts are not evaluated.",
			s.candidateFleet(), fmtFloat(*th.LatencyP99Ms), fmtFloat(*th.LatencyP99Ms*1000), window)
	case KindErrorRate:
		minInv := strconv.Itoa(th.MinInvocations)
		a.Metrics = []Query{
			{ID: "inv", MetricStat: &MetricStat{Metric: Metric{cwmetric.SageMakerNamespace, cwmetric.Invocations, sm}, Period: period, Stat: "Sum"}},
			{ID: "err", MetricStat: &MetricStat{Metric: Metric{cwmetric.SageMakerNamespace, cwmetric.Invocation5XXErrors, sm}, Period: period, Stat: "Sum"}},
			{ID: "rate", Expression: "IF(inv >= " + minInv + ", err / inv)", Label: "5XX rate when Invocations >= " + minInv, ReturnData: true},
		}
		a.ComparisonOperator, a.Threshold = GreaterThanThreshold, *th.Max5XXRate
		a.AlarmDescription = fmt.Sprintf("verdict: 5XX error rate of %s above %s in %s; judged only when Invocations >= %s.",
			s.candidateFleet(), fmtFloat(*th.Max5XXRate), window, minInv)
	case KindFlagRateShift:
		// The guard also needs the ratio itself: a missing r drops the datapoint
		// rather than giving IF's 0 for a true condition with a missing value. The
		// published ratio is continuity-corrected, so it is never 0 and 1 / r never
		// divides by zero.
		f := *th.MaxFlagRateShift
		a.Metrics = append(shiftN(),
			stat("r", cwmetric.FlagRateShiftVsBaseline, "Average", vs),
			Query{ID: "fold", Expression: "IF(" + shiftGuard("r") + ", IF(r >= 1, r, 1 / r))",
				Label: "flag-rate fold change vs " + s.Baseline.Variant + "'s movement", ReturnData: true})
		a.ComparisonOperator, a.Threshold = GreaterThanThreshold, f
		a.AlarmDescription = fmt.Sprintf("verdict: flag rate of %s moved %s by more than a fold of %s either way relative to baseline %s's movement (ratio of ratios below %s or above %s) in %s; judged only when ShiftPredictionCount >= %s on both.",
			who, since, fmtFloat(f), s.Baseline.Variant, fmtFloat(round4(1/f)), fmtFloat(f), window, minP)
	case KindSegmentFlagRate:
		f := *th.MaxSegmentFlagRateShift
		a.Metrics = append(shiftN(),
			stat("w", cwmetric.SegmentFlagRateShift, "Average", vs),
			Query{ID: "worst", Expression: "IF(" + shiftGuard("w") + ", w)", Label: "largest flag-rate fold change shown in a segment", ReturnData: true})
		a.ComparisonOperator, a.Threshold = GreaterThanThreshold, f
		a.AlarmDescription = fmt.Sprintf("verdict: in some segment the flag rate of %s is shown to have moved %s by more than a fold of %s relative to baseline %s's movement in %s; judged only when ShiftPredictionCount >= %s on both.",
			who, since, fmtFloat(f), s.Baseline.Variant, window, minP)
	case KindScoreShift, KindSegmentScoreShift:
		metric, limit, where := cwmetric.SegmentScoreShiftPSI, th.MaxSegmentScoreShift, "in the segment where it moved most"
		if k == KindScoreShift {
			metric, limit, where = cwmetric.ScoreShiftPSIVsBaseline, th.MaxScoreShift, "overall"
		}
		a.Metrics = append(shiftN(),
			stat("p", metric, "Average", vs),
			Query{ID: "psi", Expression: "IF(" + shiftGuard("p") + ", p)", Label: "score PSI against the reference beyond " + s.Baseline.Variant + "'s", ReturnData: true})
		a.ComparisonOperator, a.Threshold = GreaterThanThreshold, *limit
		a.AlarmDescription = fmt.Sprintf("verdict: score distribution of %s moved %s, %s, by more than %s PSI beyond baseline %s's movement in %s; judged only when ShiftPredictionCount >= %s on both.",
			who, since, where, fmtFloat(*limit), s.Baseline.Variant, window, minP)
	}
	a.AlarmDescription += " Missing data: " + a.TreatMissingData + ". Managed by verdict alarm set " + s.Name + "."
	return a
}

// present is a metric math condition that holds exactly where the query id has a
// datapoint: FILL gives a missing datapoint 0 on one side and 1 on the other.
// Metric math counts a missing value as 0 next to a present time series
// (arithmetic and comparisons) and IF gives 0 for a true condition with a missing
// value (CloudWatch User Guide, "Metric math syntax and functions", "Using IF
// expressions"), so without it a guard whose n's are present turns a value left
// out of the flush, or lost with a rejected request, into a real datapoint.
func present(id string) string { return "(FILL(" + id + ", 0) == FILL(" + id + ", 1))" }

func (s *Spec) candidateFleet() string {
	f := fmt.Sprintf("variant %s on endpoint %s", s.Candidate.SageMakerVariant, s.Endpoint)
	if s.Candidate.EndpointConfig != "" {
		f += " (new fleet " + s.Candidate.EndpointConfig + ")"
	}
	return f
}

// verdictTags are the tags verdict puts on every alarm of the set.
func (s *Spec) verdictTags() []Tag { return []Tag{{TagManaged, "true"}, {TagAlarmSet, s.Name}} }

func (s *Spec) tags() []Tag {
	tags := s.verdictTags()
	keys := make([]string, 0, len(s.Tags))
	for k := range s.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		tags = append(tags, Tag{k, s.Tags[k]})
	}
	return tags
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// round4 rounds to four decimals, for descriptions.
func round4(f float64) float64 { return math.Round(f*1e4) / 1e4 }

// Input is the PutMetricAlarm request for the alarm.
func (a Alarm) Input() *cloudwatch.PutMetricAlarmInput {
	in := &cloudwatch.PutMetricAlarmInput{
		AlarmName:               aws.String(a.AlarmName),
		ActionsEnabled:          aws.Bool(a.ActionsEnabled),
		ComparisonOperator:      types.ComparisonOperator(a.ComparisonOperator),
		Threshold:               aws.Float64(a.Threshold),
		EvaluationPeriods:       aws.Int32(a.EvaluationPeriods),
		DatapointsToAlarm:       aws.Int32(a.DatapointsToAlarm),
		TreatMissingData:        aws.String(a.TreatMissingData),
		AlarmActions:            a.AlarmActions,
		OKActions:               a.OKActions,
		InsufficientDataActions: a.InsufficientDataActions,
	}
	if a.AlarmDescription != "" {
		in.AlarmDescription = aws.String(a.AlarmDescription)
	}
	if a.MetricName != "" {
		in.Namespace = aws.String(a.Namespace)
		in.MetricName = aws.String(a.MetricName)
		in.Dimensions = sdkDimensions(a.Dimensions)
		in.Period = aws.Int32(a.Period)
		if a.Statistic != "" {
			in.Statistic = types.Statistic(a.Statistic)
		}
		if a.ExtendedStatistic != "" {
			in.ExtendedStatistic = aws.String(a.ExtendedStatistic)
		}
	}
	if a.EvaluateLowSampleCountPercentile != "" {
		in.EvaluateLowSampleCountPercentile = aws.String(a.EvaluateLowSampleCountPercentile)
	}
	for _, q := range a.Metrics {
		mq := types.MetricDataQuery{Id: aws.String(q.ID), ReturnData: aws.Bool(q.ReturnData)}
		if q.Expression != "" {
			mq.Expression = aws.String(q.Expression)
		}
		if q.Label != "" {
			mq.Label = aws.String(q.Label)
		}
		if ms := q.MetricStat; ms != nil {
			mq.MetricStat = &types.MetricStat{
				Metric: &types.Metric{
					Namespace:  aws.String(ms.Metric.Namespace),
					MetricName: aws.String(ms.Metric.MetricName),
					Dimensions: sdkDimensions(ms.Metric.Dimensions),
				},
				Period: aws.Int32(ms.Period),
				Stat:   aws.String(ms.Stat),
			}
		}
		in.Metrics = append(in.Metrics, mq)
	}
	for _, t := range a.Tags {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	return in
}

func sdkDimensions(ds []Dimension) []types.Dimension {
	var out []types.Dimension
	for _, d := range ds {
		out = append(out, types.Dimension{Name: aws.String(d.Name), Value: aws.String(d.Value)})
	}
	return out
}

// FromMetricAlarm converts an alarm as DescribeAlarms returns it, applying
// CloudWatch's defaults (DatapointsToAlarm = EvaluationPeriods, TreatMissingData
// = missing) so it compares equal to the definition that created it. Tags are
// not part of DescribeAlarms and are left empty.
func FromMetricAlarm(m types.MetricAlarm) Alarm {
	a := Alarm{
		AlarmName:                        aws.ToString(m.AlarmName),
		AlarmDescription:                 aws.ToString(m.AlarmDescription),
		ActionsEnabled:                   m.ActionsEnabled == nil || *m.ActionsEnabled,
		Namespace:                        aws.ToString(m.Namespace),
		MetricName:                       aws.ToString(m.MetricName),
		Dimensions:                       fromSDKDimensions(m.Dimensions),
		Period:                           aws.ToInt32(m.Period),
		Statistic:                        string(m.Statistic),
		ExtendedStatistic:                aws.ToString(m.ExtendedStatistic),
		ComparisonOperator:               string(m.ComparisonOperator),
		Threshold:                        aws.ToFloat64(m.Threshold),
		EvaluationPeriods:                aws.ToInt32(m.EvaluationPeriods),
		DatapointsToAlarm:                aws.ToInt32(m.DatapointsToAlarm),
		TreatMissingData:                 aws.ToString(m.TreatMissingData),
		EvaluateLowSampleCountPercentile: aws.ToString(m.EvaluateLowSampleCountPercentile),
		AlarmActions:                     m.AlarmActions,
		OKActions:                        m.OKActions,
		InsufficientDataActions:          m.InsufficientDataActions,
	}
	if a.DatapointsToAlarm == 0 {
		a.DatapointsToAlarm = a.EvaluationPeriods
	}
	if a.TreatMissingData == "" {
		a.TreatMissingData = MissingMissing
	}
	for _, q := range m.Metrics {
		aq := Query{ID: aws.ToString(q.Id), Expression: aws.ToString(q.Expression), Label: aws.ToString(q.Label),
			ReturnData: q.ReturnData == nil || *q.ReturnData}
		if ms := q.MetricStat; ms != nil && ms.Metric != nil {
			aq.MetricStat = &MetricStat{
				Metric: Metric{Namespace: aws.ToString(ms.Metric.Namespace), MetricName: aws.ToString(ms.Metric.MetricName),
					Dimensions: fromSDKDimensions(ms.Metric.Dimensions)},
				Period: aws.ToInt32(ms.Period), Stat: aws.ToString(ms.Stat),
			}
		}
		a.Metrics = append(a.Metrics, aq)
	}
	return a
}

func fromSDKDimensions(ds []types.Dimension) []Dimension {
	var out []Dimension
	for _, d := range ds {
		out = append(out, Dimension{aws.ToString(d.Name), aws.ToString(d.Value)})
	}
	return out
}
