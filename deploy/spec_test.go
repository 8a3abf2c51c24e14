package deploy

import (
	"strings"
	"testing"
	"time"
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
		// LINEAR step: 10-50 % of the new fleet.
		{"linear step 10% is the minimum", func(r *Rollout) { r.Traffic.Step = &Size{CapacityPercent: 10} }, ""},
		{"linear step 50% is the maximum", func(r *Rollout) { r.Traffic.Step = &Size{CapacityPercent: 50} }, ""},
		{"linear step below 10%", func(r *Rollout) { r.Traffic.Step = &Size{CapacityPercent: 5} }, "traffic.step.capacity_percent: 5 must be 10-50"},
		{"linear step above 50%", func(r *Rollout) { r.Traffic.Step = &Size{CapacityPercent: 60} }, "traffic.step.capacity_percent: 60 must be 10-50"},
		{"linear step as instance count within 10-50%", func(r *Rollout) { r.Traffic.Step = &Size{InstanceCount: 2} }, ""},
		{"linear step as instance count above 50%", func(r *Rollout) { r.Traffic.Step = &Size{InstanceCount: 3} }, "3 of 4 instances is 75% of the new fleet; must be 10-50%"},
		{"linear step required", func(r *Rollout) { r.Traffic.Step = nil }, "traffic.step: is required for LINEAR"},
		{"linear step with both sizes", func(r *Rollout) { r.Traffic.Step = &Size{CapacityPercent: 10, InstanceCount: 1} }, "set exactly one of"},
		// CANARY: at most 50 %.
		{"canary 50% is allowed", func(r *Rollout) {
			r.Traffic.Type, r.Traffic.Step, r.Traffic.Canary = Canary, nil, &Size{CapacityPercent: 50}
		}, ""},
		{"canary above 50%", func(r *Rollout) {
			r.Traffic.Type, r.Traffic.Step, r.Traffic.Canary = Canary, nil, &Size{CapacityPercent: 51}
		}, "traffic.canary.capacity_percent: 51 must be 1-50"},
		{"canary of 3 of 4 instances", func(r *Rollout) {
			r.Traffic.Type, r.Traffic.Step, r.Traffic.Canary = Canary, nil, &Size{InstanceCount: 3}
		}, "traffic.canary.instance_count"},
		{"canary with a linear step", func(r *Rollout) { r.Traffic.Type, r.Traffic.Canary = Canary, &Size{CapacityPercent: 10} }, "traffic.step: is only for LINEAR"},
		{"all at once takes no sizes", func(r *Rollout) { r.Traffic.Type = AllAtOnce }, "ALL_AT_ONCE takes neither"},
		{"unknown routing type", func(r *Rollout) { r.Traffic.Type = "ROLLING" }, "traffic.type: \"ROLLING\" must be"},
		// Waits: 0-3600 s.
		{"wait interval of an hour", func(r *Rollout) {
			r.Traffic.WaitInterval, r.Traffic.Step, r.Traffic.MaxExecutionTimeout = time.Hour, &Size{CapacityPercent: 50}, 8*time.Hour
		}, ""},
		{"wait interval over an hour", func(r *Rollout) { r.Traffic.WaitInterval = time.Hour + time.Second }, "traffic.wait_interval: 1h0m1s must be 0s-1h0m0s"},
		{"negative wait interval", func(r *Rollout) { r.Traffic.WaitInterval = -time.Second }, "traffic.wait_interval"},
		{"termination wait over an hour", func(r *Rollout) { r.Traffic.TerminationWait = 2 * time.Hour }, "traffic.termination_wait: 2h0m0s must be 0s-1h0m0s"},
		{"fractional seconds", func(r *Rollout) { r.Traffic.WaitInterval = 1500 * time.Millisecond }, "whole number of seconds"},
		// MaximumExecutionTimeoutInSeconds: 600-28800 and longer than the waits.
		{"execution timeout below 600s", func(r *Rollout) { r.Traffic.MaxExecutionTimeout = 599 * time.Second }, "traffic.max_execution_timeout: 9m59s must be 10m0s-8h0m0s"},
		{"execution timeout above 28800s", func(r *Rollout) { r.Traffic.MaxExecutionTimeout = 28801 * time.Second }, "must be 10m0s-8h0m0s"},
		{"execution timeout not above the total waits", func(r *Rollout) { r.Traffic.MaxExecutionTimeout = time.Hour }, "1h0m0s must be longer than the total waits 1h0m0s (10 steps x wait_interval 5m0s + termination_wait 10m0s)"},
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
			err := r.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("want error containing %q, got none", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
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
		name string
		t    Traffic
		want string
	}{
		{"linear 10%", Traffic{Type: Linear, Step: &Size{CapacityPercent: 10}}, "[10 20 30 40 50 60 70 80 90 100]"},
		{"linear 30% ends with a partial step", Traffic{Type: Linear, Step: &Size{CapacityPercent: 30}}, "[30 60 90 100]"},
		{"linear 1 of 4 instances", Traffic{Type: Linear, Step: &Size{InstanceCount: 1}}, "[25 50 75 100]"},
		{"canary", Traffic{Type: Canary, Canary: &Size{CapacityPercent: 5}}, "[5 100]"},
		{"all at once", Traffic{Type: AllAtOnce}, "[100]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Rollout{Candidate: Candidate{InstanceCount: 4}, Traffic: tc.t}
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
