package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/internal/emulatortest"
)

// 'alarms status' without -metrics reads the set's states from CloudWatch:
// here kumo, where SetAlarmState is the only way an alarm changes state.
func TestAlarmsStatusReadsCloudWatch(t *testing.T) {
	url := emulatortest.KumoEndpoint(t)
	cw := emulatortest.CloudWatchClient(t)
	ctx := context.Background()
	fakeAWSEnv(t)

	b, err := os.ReadFile("../../alarms/testdata/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	unique := emulatortest.UniqueName(t, "status")
	name := "cmd-" + unique[len(unique)-8:]
	specPath := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(specPath, []byte(strings.Replace(string(b), "name: fraud-v5", "name: "+name, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := alarms.LoadSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := alarms.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	var simple alarms.Alarm
	for _, a := range defs {
		if len(a.Metrics) == 0 { // kumo rejects math alarms
			simple = a
			break
		}
	}
	in := simple.Input()
	if _, err := cw.PutMetricAlarm(ctx, in); err != nil {
		t.Fatalf("PutMetricAlarm: %v", err)
	}
	t.Cleanup(func() {
		_, _ = cw.DeleteAlarms(context.Background(), &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{simple.AlarmName}})
	})
	d, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{simple.AlarmName}})
	if err != nil || len(d.MetricAlarms) != 1 {
		t.Fatalf("DescribeAlarms: %v", err)
	}
	// kumo drops PutMetricAlarm's tags; TagResource sets them as AWS would.
	if _, err := cw.TagResource(ctx, &cloudwatch.TagResourceInput{ResourceARN: d.MetricAlarms[0].AlarmArn, Tags: in.Tags}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{
		AlarmName: aws.String(simple.AlarmName), StateValue: types.StateValueAlarm, StateReason: aws.String("day-0 drill"),
	}); err != nil {
		t.Fatalf("SetAlarmState: %v", err)
	}

	var out bytes.Buffer
	if err := runAlarms(ctx, []string{"status", "-spec", specPath, "-endpoint-url", url}, &out); err != nil {
		t.Fatalf("alarms status: %v\n%s", err, out.String())
	}
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, simple.AlarmName+" ") {
			line = l
		}
	}
	if !strings.Contains(line, " ALARM ") || !strings.Contains(line, "day-0 drill") {
		t.Errorf("status line of %s = %q, want ALARM and the reason:\n%s", simple.AlarmName, line, out.String())
	}
	if !strings.Contains(out.String(), "not in CloudWatch as this set's alarm") {
		t.Errorf("the alarms never put are not reported missing:\n%s", out.String())
	}
}

func TestAlarmsStatusAtNeedsMetrics(t *testing.T) {
	err := runAlarms(context.Background(), []string{"status", "-spec", "../../alarms/testdata/spec.yaml", "-at", "2025-03-03T09:00:00Z"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "-at needs -metrics") {
		t.Fatalf("err = %v", err)
	}
}
