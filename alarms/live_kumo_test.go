package alarms

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/verdictml/verdict/internal/emulatortest"
)

// kumo v0.33.1 keeps simple alarms (not math alarms) and never evaluates them;
// SetAlarmState is the only way to move one. So this puts the spec's simple
// alarms over the wire, moves one to ALARM, and reads the set's states back.
func TestLiveStatusOnKumoShowsAnAlarmSetToALARM(t *testing.T) {
	cw := emulatortest.CloudWatchClient(t)
	ctx := context.Background()
	s := mustSpec(t, "testdata/spec.yaml")
	unique := emulatortest.UniqueName(t, "live")
	s.Name = "kumo-" + unique[len(unique)-8:] // short, and unique per run
	s.AlarmNamePrefix = "verdict-" + s.Name + "-"
	defs, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	var put []string
	for _, a := range defs {
		if len(a.Metrics) > 0 {
			continue // kumo rejects math alarms
		}
		in := a.Input()
		if _, err := cw.PutMetricAlarm(ctx, in); err != nil {
			t.Fatalf("PutMetricAlarm %s: %v", a.AlarmName, err)
		}
		put = append(put, a.AlarmName)
		// kumo drops PutMetricAlarm's Tags (AWS keeps them on create) but
		// implements TagResource, so tag the alarm as AWS would have.
		d, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{a.AlarmName}})
		if err != nil || len(d.MetricAlarms) != 1 {
			t.Fatalf("DescribeAlarms %s: %v (%d alarms)", a.AlarmName, err, len(d.MetricAlarms))
		}
		if _, err := cw.TagResource(ctx, &cloudwatch.TagResourceInput{ResourceARN: d.MetricAlarms[0].AlarmArn, Tags: in.Tags}); err != nil {
			t.Fatalf("TagResource %s: %v", a.AlarmName, err)
		}
	}
	// An alarm with the prefix that verdict did not create is left out.
	handmade := s.AlarmNamePrefix + "handmade"
	simple := defs[0]
	for _, a := range defs {
		if len(a.Metrics) == 0 {
			simple = a
		}
	}
	in := simple.Input()
	in.AlarmName, in.Tags = aws.String(handmade), nil
	if _, err := cw.PutMetricAlarm(ctx, in); err != nil {
		t.Fatalf("PutMetricAlarm %s: %v", handmade, err)
	}
	t.Cleanup(func() {
		_, _ = cw.DeleteAlarms(context.Background(), &cloudwatch.DeleteAlarmsInput{AlarmNames: append(put, handmade)})
	})
	if len(put) == 0 {
		t.Fatal("the spec has no simple alarm to put on kumo")
	}
	fired := put[0]
	const reason = "rehearsal: recall floor crossed"
	if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{
		AlarmName: aws.String(fired), StateValue: types.StateValueAlarm, StateReason: aws.String(reason),
	}); err != nil {
		t.Fatalf("SetAlarmState: %v", err)
	}

	states, err := LiveStatus(ctx, cw, s)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]LiveState{}
	for _, st := range states {
		byName[st.Alarm] = st
	}
	if _, ok := byName[handmade]; ok {
		t.Errorf("status lists %s, which verdict did not tag", handmade)
	}
	got := byName[fired]
	if got.State != StateAlarm || got.Reason != reason || got.Updated.IsZero() || got.Missing {
		t.Errorf("%s = %+v, want ALARM with reason %q and a timestamp", fired, got, reason)
	}
	for _, n := range put[1:] {
		if st := byName[n]; st.Missing || st.State == "" {
			t.Errorf("%s = %+v, want a state from kumo", n, st)
		}
	}
	for _, a := range defs {
		if len(a.Metrics) > 0 && !byName[a.AlarmName].Missing {
			t.Errorf("%s was never put but is not reported missing: %+v", a.AlarmName, byName[a.AlarmName])
		}
	}
	var b bytes.Buffer
	if err := WriteLiveStatus(&b, states); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), fired) || !strings.Contains(b.String(), "ALARM") || !strings.Contains(b.String(), reason) {
		t.Errorf("status output lacks the fired alarm:\n%s", b.String())
	}
	t.Logf("status on kumo:\n%s", b.String())
}
