package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/internal/spectest"
)

func mustRollout(t *testing.T) *Rollout {
	t.Helper()
	r, err := LoadRollout("testdata/rollout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLoadRolloutTakesAlarmNamesFromTheAlarmSpec(t *testing.T) {
	r := mustRollout(t)
	if len(r.Alarms.Names) != 7 || r.Alarms.Names[1] != "verdict-fraud-v5-recall-floor" {
		t.Errorf("alarm names = %v", r.Alarms.Names)
	}
	if r.Candidate.InstanceType != "ml.c5.xlarge" || r.Candidate.InstanceCount != 4 {
		t.Errorf("candidate fleet did not default to production's: %+v", r.Candidate)
	}
}

func TestRolloutValidationEnforcesSageMakerLimits(t *testing.T) {
	alarmNames := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, "alarm-"+string(rune('a'+i)))
		}
		return out
	}
	cases := []struct {
		name    string
		edit    func(r *Rollout)
		wantErr string
	}{
		{"example is valid", func(*Rollout) {}, ""},
		// Routing shapes; sizes and durations at their limits are in traffic_test.go.
		{"linear step required", func(r *Rollout) { r.Traffic.Step = nil }, "traffic.step: is required for LINEAR"},
		{"linear step with both sizes", func(r *Rollout) { r.Traffic.Step = &Size{CapacityPercent: 10, InstanceCount: 1} }, "set exactly one of"},
		{"linear step of 10% of 4 instances is not a whole instance", func(r *Rollout) { r.Traffic.Step = &Size{CapacityPercent: 10} },
			"traffic.step.capacity_percent: 10% of 4 instances is 0.4 of an instance, and a fleet moves whole instances; use instance_count: 1 (25% of the new fleet)"},
		{"linear step as instance count above 50%", func(r *Rollout) { r.Traffic.Step = &Size{InstanceCount: 3} }, "3 of 4 instances is 75% of the new fleet; must be 10-50%"},
		{"canary of 3 of 4 instances", func(r *Rollout) {
			r.Traffic.Type, r.Traffic.Step, r.Traffic.Canary = Canary, nil, &Size{InstanceCount: 3}
		}, "traffic.canary.instance_count"},
		{"canary with a linear step", func(r *Rollout) { r.Traffic.Type, r.Traffic.Canary = Canary, &Size{CapacityPercent: 25} }, "traffic.step: is only for LINEAR"},
		{"all at once takes no sizes", func(r *Rollout) { r.Traffic.Type = AllAtOnce }, "ALL_AT_ONCE takes neither"},
		{"unknown routing type", func(r *Rollout) { r.Traffic.Type = "BLUE" }, "traffic.type: \"BLUE\" must be ALL_AT_ONCE, CANARY, LINEAR or ROLLING"},
		{"rolling needs a batch", func(r *Rollout) { r.Traffic.Type, r.Traffic.Step, r.Traffic.TerminationWait = Rolling, nil, 0 }, "traffic.batch: is required for ROLLING"},
		{"rolling takes no linear step", func(r *Rollout) {
			r.Traffic.Type, r.Traffic.Batch, r.Traffic.TerminationWait = Rolling, &Size{InstanceCount: 1}, 0
		}, "traffic.step: is only for LINEAR"},
		{"rolling has no termination wait", func(r *Rollout) {
			r.Traffic.Type, r.Traffic.Step, r.Traffic.Batch = Rolling, nil, &Size{InstanceCount: 1}
		}, "traffic.termination_wait: is only for blue/green shifts"},
		{"a batch is only for rolling", func(r *Rollout) { r.Traffic.Batch = &Size{InstanceCount: 1} }, "traffic.batch: is only for ROLLING"},
		{"a rollback batch is only for rolling", func(r *Rollout) { r.Traffic.RollbackBatch = &Size{InstanceCount: 1} }, "traffic.rollback_batch: is only for ROLLING"},
		{"rolling by batches of one instance", func(r *Rollout) {
			r.Traffic.Type, r.Traffic.Step, r.Traffic.TerminationWait, r.Traffic.Batch = Rolling, nil, 0, &Size{InstanceCount: 1}
		}, ""},
		{"negative wait interval", func(r *Rollout) { r.Traffic.WaitInterval = -time.Second }, "traffic.wait_interval"},
		{"fractional seconds", func(r *Rollout) { r.Traffic.WaitInterval = 1500 * time.Millisecond }, "whole number of seconds"},
		{"execution timeout shorter than provisioning and waits", func(r *Rollout) { r.Traffic.MaxExecutionTimeout = 44 * time.Minute },
			"traffic.max_execution_timeout: 44m0s is shorter than the deployment can take, 45m0s (provisioning 15m + 4 step(s) x wait_interval 5m + termination_wait 10m)"},
		// AutoRollbackConfiguration: 1-10 alarms.
		{"no alarms", func(r *Rollout) { r.Alarms.Names = nil }, "alarms: 0 alarms; AutoRollbackConfiguration takes 1 to 10"},
		{"ten alarms", func(r *Rollout) { r.Alarms.Names = alarmNames(10) }, ""},
		{"eleven alarms", func(r *Rollout) { r.Alarms.Names = alarmNames(11) }, "alarms: 11 alarms"},
		{"duplicate alarm", func(r *Rollout) { r.Alarms.Names = []string{"a", "a"} }, "alarms.names[1]: \"a\" is listed twice"},
		// Blue/green keeps the variant name.
		{"candidate variant must equal production's", func(r *Rollout) { r.Candidate.Variant = "v5" }, "candidate.variant: \"v5\" differs from production.variant \"AllTraffic\""},
		{"same variant name given explicitly", func(r *Rollout) { r.Candidate.Variant = "AllTraffic" }, ""},
		// Names, fleets, capture, shadow.
		{"bad endpoint config name", func(r *Rollout) { r.Candidate.EndpointConfig = "v5_config" }, "candidate.endpoint_config: \"v5_config\""},
		{"candidate equals production model", func(r *Rollout) { r.Candidate.Model = "fraud-model-v4" }, "nothing to roll out"},
		{"bad instance type", func(r *Rollout) { r.Candidate.InstanceType = "c5.xlarge" }, "candidate.instance_type"},
		{"zero instances", func(r *Rollout) { r.Production.InstanceCount = 0 }, "production.instance_count: 0"},
		{"capture destination not s3", func(r *Rollout) { r.DataCapture.Destination = "/tmp/x" }, "data_capture.destination"},
		{"capture sampling above 100", func(r *Rollout) { *r.DataCapture.SamplingPercentage = 101 }, "data_capture.sampling_percentage: 101"},
		{"shadow named like production", func(r *Rollout) { r.Shadow.Variant = "AllTraffic" }, "shadow.variant: \"AllTraffic\" must differ"},
		{"shadow weight above 1", func(r *Rollout) { *r.Shadow.SamplingWeight = 2 }, "shadow.sampling_weight: 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRollout(t)
			tc.edit(r)
			spectest.Err(t, r.Validate(), tc.wantErr)
		})
	}
}

func TestParseRolloutRejectsUnknownFields(t *testing.T) {
	_, err := ParseRollout([]byte("endpoint: e\ntraffic: {type: LINEAR, stepsize: 10}\n"))
	if err == nil || !strings.Contains(err.Error(), "stepsize") {
		t.Fatalf("err = %v, want it to name stepsize", err)
	}
}

func TestShares(t *testing.T) {
	cases := []struct {
		name      string
		instances int
		t         Traffic
		want      string
	}{
		{"linear 10% of 10 instances", 10, Traffic{Type: Linear, Step: &Size{CapacityPercent: 10}}, "[10 20 30 40 50 60 70 80 90 100]"},
		{"linear 30% of 10 ends with a partial step", 10, Traffic{Type: Linear, Step: &Size{CapacityPercent: 30}}, "[30 60 90 100]"},
		{"linear 1 of 4 instances", 4, Traffic{Type: Linear, Step: &Size{InstanceCount: 1}}, "[25 50 75 100]"},
		{"linear 30% of 4 instances: whole instances, rounded down", 4, Traffic{Type: Linear, Step: &Size{CapacityPercent: 30}}, "[25 50 75 100]"},
		{"linear 50% of 3 instances: 1 instance, not 1.5", 3, Traffic{Type: Linear, Step: &Size{CapacityPercent: 50}}, "[33.3 66.7 100]"},
		{"canary 5% of 20 instances", 20, Traffic{Type: Canary, Canary: &Size{CapacityPercent: 5}}, "[5 100]"},
		{"canary 30% of 4 instances is one instance", 4, Traffic{Type: Canary, Canary: &Size{CapacityPercent: 30}}, "[25 100]"},
		{"rolling batches of 2 of 4 instances", 4, Traffic{Type: Rolling, Batch: &Size{InstanceCount: 2}}, "[50 100]"},
		{"rolling batches of 5% of 20 instances", 20, Traffic{Type: Rolling, Batch: &Size{CapacityPercent: 5}},
			"[5 10 15 20 25 30 35 40 45 50 55 60 65 70 75 80 85 90 95 100]"},
		{"all at once", 4, Traffic{Type: AllAtOnce}, "[100]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Rollout{Candidate: Candidate{InstanceCount: tc.instances}, Traffic: tc.t}
			if got := fmtShares(r.Shares()); got != tc.want {
				t.Errorf("Shares() = %s, want %s", got, tc.want)
			}
		})
	}
}

func fmtShares(s []float64) string {
	var b strings.Builder
	b.WriteString("[")
	for i, v := range s {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strings.TrimSuffix(pct(v), "%"))
	}
	b.WriteString("]")
	return b.String()
}
