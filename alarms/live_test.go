package alarms

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/verdictml/verdict/internal/golden"
)

// appliedFake is a fake CloudWatch holding the spec's applied alarm set.
func appliedFake(t *testing.T, s *Spec) *fakeCloudWatch {
	t.Helper()
	f := newFakeCloudWatch()
	plan, err := MakePlan(context.Background(), f, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(context.Background(), f, plan); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLiveStatus(t *testing.T) {
	s := mustSpec(t, "testdata/spec.yaml")
	names := s.AlarmNames()
	fired := names[1]
	since := time.Date(2025, 3, 3, 9, 25, 0, 0, time.UTC)
	cases := []struct {
		name string
		edit func(f *fakeCloudWatch)
		want map[string]LiveState // by alarm; others must be INSUFFICIENT_DATA
		n    int
	}{
		{"every applied alarm reports its state", func(*fakeCloudWatch) {}, nil, len(names)},
		{"an alarm in ALARM shows its reason and since when", func(f *fakeCloudWatch) {
			a := f.alarms[fired]
			a.StateValue, a.StateReason, a.StateUpdatedTimestamp = types.StateValueAlarm, aws.String("Threshold Crossed: 3 of 3 datapoints"), aws.Time(since)
			f.alarms[fired] = a
		}, map[string]LiveState{fired: {Alarm: fired, State: StateAlarm, Reason: "Threshold Crossed: 3 of 3 datapoints", Updated: since}}, len(names)},
		{"an alarm not applied is missing", func(f *fakeCloudWatch) { delete(f.alarms, names[0]) },
			map[string]LiveState{names[0]: {Alarm: names[0], Missing: true}}, len(names)},
		{"an untagged alarm with the prefix is someone else's and left out", func(f *fakeCloudWatch) {
			_, _ = f.PutMetricAlarm(context.Background(), &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String(s.AlarmNamePrefix + "handmade")})
		}, nil, len(names)},
		{"an untagged alarm in the way of a spec alarm is missing", func(f *fakeCloudWatch) {
			f.tags[arnOf(names[0])] = map[string]string{}
		}, map[string]LiveState{names[0]: {Alarm: names[0], Missing: true}}, len(names)},
		{"a set alarm the spec no longer defines is listed last", func(f *fakeCloudWatch) {
			in := &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String(s.AlarmNamePrefix + "retired"),
				Tags: []types.Tag{{Key: aws.String(TagManaged), Value: aws.String("true")}, {Key: aws.String(TagAlarmSet), Value: aws.String(s.Name)}}}
			_, _ = f.PutMetricAlarm(context.Background(), in)
		}, map[string]LiveState{s.AlarmNamePrefix + "retired": {Alarm: s.AlarmNamePrefix + "retired", State: StateInsufficientData, Undefined: true}}, len(names) + 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := appliedFake(t, s)
			tc.edit(f)
			got, err := LiveStatus(context.Background(), f, s)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.n {
				t.Fatalf("%d states, want %d: %+v", len(got), tc.n, got)
			}
			for i, st := range got {
				if i < len(names) && st.Alarm != names[i] {
					t.Errorf("state %d is %s, want the spec's order (%s)", i, st.Alarm, names[i])
				}
				want, ok := tc.want[st.Alarm]
				if !ok {
					want = LiveState{Alarm: st.Alarm, State: StateInsufficientData}
				}
				if st != want {
					t.Errorf("%s = %+v, want %+v", st.Alarm, st, want)
				}
			}
		})
	}
}

func TestWriteLiveStatusGolden(t *testing.T) {
	s := mustSpec(t, "testdata/spec.yaml")
	names := s.AlarmNames()
	f := appliedFake(t, s)
	a := f.alarms[names[1]]
	a.StateValue, a.StateReason = types.StateValueAlarm, aws.String("Threshold Crossed: 3 out of the last 3 datapoints were less than the threshold (0.7).")
	a.StateUpdatedTimestamp = aws.Time(time.Date(2025, 3, 3, 9, 25, 0, 0, time.UTC))
	f.alarms[names[1]] = a
	delete(f.alarms, names[2])
	states, err := LiveStatus(context.Background(), f, s)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteLiveStatus(&b, states); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "status_live.txt", b.Bytes())
}
