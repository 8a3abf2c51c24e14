package alarms

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/verdictml/verdict/internal/golden"
)

// fakeCloudWatch keeps alarms in memory the way CloudWatch reports them back:
// tags only through ListTagsForResource, and PutMetricAlarm ignoring tags on
// update. DescribeAlarms pages two alarms at a time.
type fakeCloudWatch struct {
	alarms map[string]types.MetricAlarm
	tags   map[string]map[string]string // by ARN
	calls  []string
}

func newFakeCloudWatch() *fakeCloudWatch {
	return &fakeCloudWatch{alarms: map[string]types.MetricAlarm{}, tags: map[string]map[string]string{}}
}

func arnOf(name string) string { return "arn:aws:cloudwatch:us-east-1:000000000000:alarm:" + name }

func (f *fakeCloudWatch) PutMetricAlarm(_ context.Context, in *cloudwatch.PutMetricAlarmInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricAlarmOutput, error) {
	name := aws.ToString(in.AlarmName)
	f.calls = append(f.calls, "PutMetricAlarm "+name)
	arn := arnOf(name)
	if _, exists := f.alarms[name]; !exists {
		f.tags[arn] = map[string]string{}
		for _, t := range in.Tags {
			f.tags[arn][aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	f.alarms[name] = types.MetricAlarm{
		AlarmName: in.AlarmName, AlarmArn: aws.String(arn), AlarmDescription: in.AlarmDescription,
		ActionsEnabled: in.ActionsEnabled, Namespace: in.Namespace, MetricName: in.MetricName,
		Dimensions: in.Dimensions, Period: in.Period, Statistic: in.Statistic, ExtendedStatistic: in.ExtendedStatistic,
		Metrics: in.Metrics, ComparisonOperator: in.ComparisonOperator, Threshold: in.Threshold,
		EvaluationPeriods: in.EvaluationPeriods, DatapointsToAlarm: in.DatapointsToAlarm,
		TreatMissingData: in.TreatMissingData, EvaluateLowSampleCountPercentile: in.EvaluateLowSampleCountPercentile,
		AlarmActions: in.AlarmActions, OKActions: in.OKActions, InsufficientDataActions: in.InsufficientDataActions,
		StateValue: types.StateValueInsufficientData,
	}
	return &cloudwatch.PutMetricAlarmOutput{}, nil
}

func (f *fakeCloudWatch) DescribeAlarms(_ context.Context, in *cloudwatch.DescribeAlarmsInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	var names []string
	for n := range f.alarms {
		if strings.HasPrefix(n, aws.ToString(in.AlarmNamePrefix)) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	start := 0
	if in.NextToken != nil {
		start = slices.Index(names, *in.NextToken)
	}
	out := &cloudwatch.DescribeAlarmsOutput{}
	for i := start; i < len(names) && i < start+2; i++ {
		out.MetricAlarms = append(out.MetricAlarms, f.alarms[names[i]])
	}
	if start+2 < len(names) {
		out.NextToken = aws.String(names[start+2])
	}
	return out, nil
}

func (f *fakeCloudWatch) DeleteAlarms(_ context.Context, in *cloudwatch.DeleteAlarmsInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.DeleteAlarmsOutput, error) {
	f.calls = append(f.calls, "DeleteAlarms "+strings.Join(in.AlarmNames, ","))
	for _, n := range in.AlarmNames {
		delete(f.alarms, n)
		delete(f.tags, arnOf(n))
	}
	return &cloudwatch.DeleteAlarmsOutput{}, nil
}

func (f *fakeCloudWatch) ListTagsForResource(_ context.Context, in *cloudwatch.ListTagsForResourceInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.ListTagsForResourceOutput, error) {
	out := &cloudwatch.ListTagsForResourceOutput{}
	for k, v := range f.tags[aws.ToString(in.ResourceARN)] {
		out.Tags = append(out.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return out, nil
}

func (f *fakeCloudWatch) TagResource(_ context.Context, in *cloudwatch.TagResourceInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.TagResourceOutput, error) {
	arn := aws.ToString(in.ResourceARN)
	f.calls = append(f.calls, "TagResource "+arn)
	for _, t := range in.Tags {
		f.tags[arn][aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return &cloudwatch.TagResourceOutput{}, nil
}

// foreign adds an alarm verdict did not create.
func (f *fakeCloudWatch) foreign(name string, tags map[string]string) {
	f.alarms[name] = types.MetricAlarm{AlarmName: aws.String(name), AlarmArn: aws.String(arnOf(name)),
		MetricName: aws.String("CPUUtilization"), Namespace: aws.String("AWS/EC2"), Threshold: aws.Float64(90),
		ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold, EvaluationPeriods: aws.Int32(1), Period: aws.Int32(60)}
	f.tags[arnOf(name)] = tags
}

func planAndApply(t *testing.T, cw *fakeCloudWatch, s *Spec) *Plan {
	t.Helper()
	p, err := MakePlan(context.Background(), cw, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(context.Background(), cw, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApplyCreatesThenIsIdempotent(t *testing.T) {
	cw := newFakeCloudWatch()
	s := mustSpec(t, "testdata/spec.yaml")
	p := planAndApply(t, cw, s)
	if got := p.Count(ActionCreate); got != 7 {
		t.Fatalf("first plan creates %d alarms, want 7", got)
	}
	cw.calls = nil
	p = planAndApply(t, cw, s)
	if p.HasChanges() || p.Count(ActionUnchanged) != 7 {
		var b bytes.Buffer
		_ = p.Write(&b)
		t.Fatalf("second plan is not empty:\n%s", b.String())
	}
	if len(cw.calls) != 0 {
		t.Errorf("second apply called CloudWatch: %v", cw.calls)
	}
}

func TestPlanShowsChangedThresholdAsFieldDiff(t *testing.T) {
	cw := newFakeCloudWatch()
	s := mustSpec(t, "testdata/spec.yaml")
	planAndApply(t, cw, s)
	s.Thresholds.RecallFloor = ptr(0.75)
	p, err := MakePlan(context.Background(), cw, s)
	if err != nil {
		t.Fatal(err)
	}
	if p.Count(ActionUpdate) != 1 {
		t.Fatalf("updates = %d, want 1", p.Count(ActionUpdate))
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Condition: LessThanThreshold 0.7 -> LessThanThreshold 0.75") {
		t.Errorf("plan lacks the threshold change:\n%s", b.String())
	}
	cw.calls = nil
	if err := Apply(context.Background(), cw, p); err != nil {
		t.Fatal(err)
	}
	if want := []string{"PutMetricAlarm verdict-fraud-v5-recall-floor"}; !slices.Equal(cw.calls, want) {
		t.Errorf("apply calls = %v, want %v", cw.calls, want)
	}
}

func TestPlanDeletesOnlyThisSetsAlarmsTheSpecDropped(t *testing.T) {
	cw := newFakeCloudWatch()
	s := mustSpec(t, "testdata/spec.yaml")
	planAndApply(t, cw, s)
	cw.foreign("verdict-fraud-v5-hand-made", map[string]string{"owner": "sre"})
	s.Thresholds.LatencyP99Ms = nil
	cw.calls = nil
	p := planAndApply(t, cw, s)
	if p.Count(ActionDelete) != 1 {
		t.Fatalf("deletes = %d, want 1", p.Count(ActionDelete))
	}
	if want := []string{"DeleteAlarms verdict-fraud-v5-latency-p99"}; !slices.Equal(cw.calls, want) {
		t.Errorf("apply calls = %v, want %v", cw.calls, want)
	}
	if _, ok := cw.alarms["verdict-fraud-v5-hand-made"]; !ok {
		t.Error("apply deleted an alarm verdict does not manage")
	}
}

func TestApplyRefusesConflicts(t *testing.T) {
	cases := []struct {
		name, reason string
		tags         map[string]string
	}{
		{"untagged alarm in the way", "without the verdict:managed=true tag", map[string]string{}},
		{"alarm of another alarm set", "belongs to verdict alarm set \"fraud-v6\"", map[string]string{TagManaged: "true", TagAlarmSet: "fraud-v6"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cw := newFakeCloudWatch()
			cw.foreign("verdict-fraud-v5-recall-floor", tc.tags)
			s := mustSpec(t, "testdata/spec.yaml")
			p, err := MakePlan(context.Background(), cw, s)
			if err != nil {
				t.Fatal(err)
			}
			if p.Count(ActionConflict) != 1 {
				t.Fatalf("conflicts = %d, want 1", p.Count(ActionConflict))
			}
			var b bytes.Buffer
			_ = p.Write(&b)
			if !strings.Contains(b.String(), tc.reason) {
				t.Errorf("plan does not explain the conflict (%q):\n%s", tc.reason, b.String())
			}
			err = Apply(context.Background(), cw, p)
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("Apply err = %v, want ErrConflict", err)
			}
			if len(cw.calls) != 0 {
				t.Errorf("a refused apply still called CloudWatch: %v", cw.calls)
			}
		})
	}
}

func TestApplyRestoresMissingTagsWithTagResource(t *testing.T) {
	cw := newFakeCloudWatch()
	s := mustSpec(t, "testdata/spec.yaml")
	planAndApply(t, cw, s)
	s.Tags["team"] = "risk-ml"
	cw.calls = nil
	p := planAndApply(t, cw, s)
	if p.Count(ActionUpdate) != 7 {
		t.Fatalf("updates = %d, want 7 (tag change on every alarm)", p.Count(ActionUpdate))
	}
	for _, c := range cw.calls {
		if !strings.HasPrefix(c, "TagResource ") {
			t.Errorf("tag-only change made call %q; PutMetricAlarm ignores tags on update", c)
		}
	}
	if got := cw.tags[arnOf("verdict-fraud-v5-recall-floor")]["team"]; got != "risk-ml" {
		t.Errorf("team tag = %q after apply", got)
	}
}

func TestPlanTextGolden(t *testing.T) {
	cw := newFakeCloudWatch()
	s := mustSpec(t, "testdata/spec.yaml")
	planAndApply(t, cw, s)
	// Review scenario: a tighter recall floor, no more latency alarm, and a
	// hand-made alarm squatting on a name the spec now wants.
	s.Thresholds.RecallFloor = ptr(0.75)
	s.Thresholds.LatencyP99Ms = nil
	delete(cw.alarms, "verdict-fraud-v5-error-rate")
	cw.foreign("verdict-fraud-v5-error-rate", map[string]string{})
	s.Evaluation.DatapointsToAlarm = 3
	p, err := MakePlan(context.Background(), cw, s)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "plan.txt", b.Bytes())
}

func TestFromMetricAlarmAppliesCloudWatchDefaults(t *testing.T) {
	a := FromMetricAlarm(types.MetricAlarm{AlarmName: aws.String("x"), EvaluationPeriods: aws.Int32(3)})
	if a.DatapointsToAlarm != 3 || a.TreatMissingData != MissingMissing || !a.ActionsEnabled {
		t.Errorf("defaults not applied: %+v", a)
	}
}
