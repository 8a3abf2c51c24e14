package alarms

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
)

// kumoClient returns a CloudWatch client for the kumo emulator that
// scripts/emulators.sh starts, skipping the test when it is not running (or
// failing it when VERDICT_REQUIRE_EMULATORS=1).
func kumoClient(t *testing.T) *cloudwatch.Client {
	t.Helper()
	url := os.Getenv("VERDICT_TEST_KUMO_ENDPOINT")
	if url == "" {
		if os.Getenv("VERDICT_REQUIRE_EMULATORS") == "1" {
			t.Fatal("VERDICT_TEST_KUMO_ENDPOINT is not set; run scripts/test.sh")
		}
		t.Skip("kumo not running (VERDICT_TEST_KUMO_ENDPOINT unset); see scripts/emulators.sh")
	}
	return testCloudWatchClient(url)
}

// kumo v0.33.1 stores simple metric alarms but drops DatapointsToAlarm,
// TreatMissingData and ExtendedStatistic and rejects math alarms (see
// EMULATORS.md), so this checks the segment-regressions alarm's supported
// fields after a real PutMetricAlarm/DescribeAlarms round trip.
func TestKumoStoresTheSegmentRegressionAlarm(t *testing.T) {
	cw := kumoClient(t)
	ctx := context.Background()
	s := mustSpec(t, "testdata/spec.yaml")
	s.Name = "kumo-" + t.Name()[len(t.Name())-8:]
	s.AlarmNamePrefix = "verdict-" + s.Name + "-"
	alarms, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	var want Alarm
	for _, a := range alarms {
		if a.AlarmName == s.AlarmName(KindSegmentRegressions) {
			want = a
		}
	}
	if _, err := cw.PutMetricAlarm(ctx, want.Input()); err != nil {
		t.Fatalf("PutMetricAlarm: %v", err)
	}
	t.Cleanup(func() {
		_, _ = cw.DeleteAlarms(context.Background(), &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{want.AlarmName}})
	})
	out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{want.AlarmName}})
	if err != nil {
		t.Fatalf("DescribeAlarms: %v", err)
	}
	if len(out.MetricAlarms) != 1 {
		t.Fatalf("DescribeAlarms returned %d alarms, want 1", len(out.MetricAlarms))
	}
	got := FromMetricAlarm(out.MetricAlarms[0])
	for _, f := range diffFields(got, want) {
		switch f.Field {
		case "DatapointsToAlarm", "TreatMissingData": // not kept by kumo
		default:
			t.Errorf("%s: kumo has %q, verdict put %q", f.Field, f.From, f.To)
		}
	}
	if aws.ToString(out.MetricAlarms[0].AlarmArn) == "" {
		t.Error("no AlarmArn")
	}
}
