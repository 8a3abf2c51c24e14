package deploy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/internal/spectest"
)

// trafficLimit is one limit of the traffic section: set puts a value of size n
// (percent, instances or seconds) into the rollout; the boundary cases run one
// below, at and one above the limit, each expected to pass or to fail naming field.
type trafficLimit struct {
	name, field string
	cases       []spectest.Size
	set         func(r *Rollout, n int)
}

func linear(r *Rollout, instances int, step Size) {
	r.Candidate.InstanceCount = instances
	r.Traffic.Type, r.Traffic.Step = Linear, &step
}

func canary(r *Rollout, instances int, c Size) {
	r.Candidate.InstanceCount = instances
	r.Traffic.Type, r.Traffic.Step, r.Traffic.Canary = Canary, nil, &c
}

func rolling(r *Rollout, instances int, batch Size) {
	r.Candidate.InstanceCount = instances
	r.Traffic.Type, r.Traffic.Step, r.Traffic.Batch, r.Traffic.TerminationWait = Rolling, nil, &batch, 0
	r.Traffic.MaxExecutionTimeout = maxExecutionTimeout // room for many batches
	r.Traffic.Provisioning = MinProvisioning
	r.Traffic.WaitInterval = 0
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

// Every traffic limit of UpdateEndpoint's DeploymentConfig a rollout can reach,
// one below, at and one above (SageMaker API reference: TrafficRoutingConfig,
// CapacitySize, BlueGreenUpdatePolicy, RollingUpdatePolicy; and the whole-instance
// and provisioning rules of spec.go).
func TestTrafficLimitBoundaries(t *testing.T) {
	limits := []trafficLimit{
		{"linear step percent, lower (10 instances)", "traffic.step.capacity_percent", spectest.Below(10),
			func(r *Rollout, n int) { linear(r, 10, Size{CapacityPercent: n}) }},
		{"linear step percent, upper", "traffic.step.capacity_percent", spectest.Around(50),
			func(r *Rollout, n int) { linear(r, 10, Size{CapacityPercent: n}) }},
		{"linear step of at least one whole instance (4 instances: 25%)", "traffic.step.capacity_percent", spectest.Below(25),
			func(r *Rollout, n int) { linear(r, 4, Size{CapacityPercent: n}) }},
		{"linear step in instances, upper (10 instances: 5 is 50%)", "traffic.step.instance_count", spectest.Around(5),
			func(r *Rollout, n int) { linear(r, 10, Size{InstanceCount: n}) }},
		{"linear step in instances, lower (20 instances: 2 is 10%)", "traffic.step.instance_count", spectest.Below(2),
			func(r *Rollout, n int) { linear(r, 20, Size{InstanceCount: n}) }},
		{"canary percent, upper", "traffic.canary.capacity_percent", spectest.Around(50),
			func(r *Rollout, n int) { canary(r, 100, Size{CapacityPercent: n}) }},
		{"canary percent, lower (100 instances; 0 is unset)", "traffic.canary", spectest.Below(1),
			func(r *Rollout, n int) { canary(r, 100, Size{CapacityPercent: n}) }},
		{"canary of at least one whole instance (4 instances: 25%)", "traffic.canary.capacity_percent", spectest.Below(25),
			func(r *Rollout, n int) { canary(r, 4, Size{CapacityPercent: n}) }},
		{"rolling batch percent, lower (20 instances)", "traffic.batch.capacity_percent", spectest.Below(5),
			func(r *Rollout, n int) { rolling(r, 20, Size{CapacityPercent: n}) }},
		{"rolling batch percent, upper", "traffic.batch.capacity_percent", spectest.Around(50),
			func(r *Rollout, n int) { rolling(r, 20, Size{CapacityPercent: n}) }},
		{"rolling batch of at least one whole instance (4 instances: 25%)", "traffic.batch.capacity_percent", spectest.Below(25),
			func(r *Rollout, n int) { rolling(r, 4, Size{CapacityPercent: n}) }},
		{"rolling batch in instances, upper (4 instances: 2 is 50%)", "traffic.batch.instance_count", spectest.Around(2),
			func(r *Rollout, n int) { rolling(r, 4, Size{InstanceCount: n}) }},
		{"rollback batch percent, upper", "traffic.rollback_batch.capacity_percent", spectest.Around(100), func(r *Rollout, n int) {
			rolling(r, 4, Size{InstanceCount: 1})
			r.Traffic.RollbackBatch = &Size{CapacityPercent: n}
		}},
		{"rollback batch in instances, upper (the fleet)", "traffic.rollback_batch.instance_count", spectest.Around(4), func(r *Rollout, n int) {
			rolling(r, 4, Size{InstanceCount: 1})
			r.Traffic.RollbackBatch = &Size{InstanceCount: n}
		}},
		{"wait interval (s)", "traffic.wait_interval", spectest.Around(3600), func(r *Rollout, n int) {
			linear(r, 4, Size{InstanceCount: 1})
			r.Traffic.WaitInterval, r.Traffic.MaxExecutionTimeout = secs(n), maxExecutionTimeout
		}},
		{"termination wait (s)", "traffic.termination_wait", spectest.Around(3600), func(r *Rollout, n int) {
			r.Traffic.TerminationWait, r.Traffic.MaxExecutionTimeout = secs(n), maxExecutionTimeout
		}},
		{"max execution timeout, upper (s)", "traffic.max_execution_timeout", spectest.Around(28800), func(r *Rollout, n int) {
			r.Traffic.MaxExecutionTimeout = secs(n)
		}},
		{"max execution timeout, lower (s; an all-at-once shift without waits)", "traffic.max_execution_timeout", spectest.Below(600), func(r *Rollout, n int) {
			r.Traffic.Type, r.Traffic.Step, r.Traffic.WaitInterval, r.Traffic.TerminationWait = AllAtOnce, nil, 0, 0
			r.Traffic.Provisioning, r.Traffic.MaxExecutionTimeout = MinProvisioning, secs(n)
		}},
		{"provisioning allowance (s)", "traffic.provisioning", spectest.Below(300), func(r *Rollout, n int) {
			r.Traffic.Provisioning = secs(n)
		}},
		{"max execution timeout against provisioning and waits (s; the example needs 45m)", "traffic.max_execution_timeout", spectest.Below(2700), func(r *Rollout, n int) {
			r.Traffic.MaxExecutionTimeout = secs(n)
		}},
		{"max execution timeout against a rolling update's batches (s; 4 x (15m + 5m))", "traffic.max_execution_timeout", spectest.Below(4800), func(r *Rollout, n int) {
			r.Traffic.Type, r.Traffic.Step, r.Traffic.Batch, r.Traffic.TerminationWait = Rolling, nil, &Size{InstanceCount: 1}, 0
			r.Traffic.MaxExecutionTimeout = secs(n)
		}},
	}
	for _, l := range limits {
		for _, c := range l.cases {
			t.Run(fmt.Sprintf("%s/%d", l.name, c.N), func(t *testing.T) {
				r := mustRollout(t)
				l.set(r, c.N)
				spectest.Limit(t, r.Validate(), l.field, c)
			})
		}
	}
}

func TestWarningsSayWhenAStepRounds(t *testing.T) {
	cases := []struct {
		name string
		edit func(r *Rollout)
		want string
	}{
		{"whole instances: no warning", func(*Rollout) {}, ""},
		{"30% of 4 instances is 1.2", func(r *Rollout) { r.Traffic.Step = &Size{CapacityPercent: 30} },
			"traffic.step: 30% of 4 instances is 1.2 instances; a fleet moves whole instances and SageMaker does not document how it rounds: planned and rehearsed as 1 instance(s) (25%) per step, 4 steps (it could be 2, 50%); set instance_count to say which"},
		{"50% of 4 instances is 2", func(r *Rollout) { r.Traffic.Step = &Size{CapacityPercent: 50} }, ""},
		{"a rolling batch of 30% of 4", func(r *Rollout) {
			r.Traffic.Type, r.Traffic.Step, r.Traffic.Batch, r.Traffic.TerminationWait = Rolling, nil, &Size{CapacityPercent: 30}, 0
			r.Shadow = nil
		}, "traffic.batch: 30% of 4 instances is 1.2 instances"},
		{"a rolling promotion from the shadow stage", func(r *Rollout) {
			r.Traffic.Type, r.Traffic.Step, r.Traffic.Batch, r.Traffic.TerminationWait = Rolling, nil, &Size{InstanceCount: 1}, 0
		}, "traffic.type: ROLLING from the shadow stage: SageMaker excludes multi-variant endpoints from rolling deployments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRollout(t)
			r.FleetIdentity = FleetModelOutput // only the rounding here
			tc.edit(r)
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(r.Warnings(), "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("warnings %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWarningsSayWhenTheAlarmsCannotTellTheFleetsApart(t *testing.T) {
	cases := []struct {
		name string
		edit func(t *testing.T, r *Rollout)
		want []string // substrings, one per warning; none: no warning
	}{
		{"fleet identity declared", func(_ *testing.T, r *Rollout) { r.FleetIdentity = FleetModelOutput }, nil},
		{"not declared, alarms reading verdict's metrics", func(_ *testing.T, r *Rollout) { r.FleetIdentity = "" }, []string{
			"fleet_identity: not set, and verdict-fraud-v5-precision-floor, verdict-fraud-v5-recall-floor, verdict-fraud-v5-precision-drop, verdict-fraud-v5-recall-drop, verdict-fraud-v5-segment-regressions read verdict's metrics of fraud-v5 and fraud-v4: during the shift both fleets serve as AllTraffic and Data Capture writes both into s3://fraud-ml-capture/fraud-detector/fraud-detector/AllTraffic/ without naming the model"}},
		{"not declared, SageMaker's own metrics only", func(t *testing.T, r *Rollout) {
			r.FleetIdentity = ""
			r.verdictAlarms = nil
		}, nil},
		{"not declared, alarms by name only", func(t *testing.T, r *Rollout) {
			r.FleetIdentity, r.alarmSpecKnown = "", false
		}, []string{"fleet_identity: not set: if any of the rollback alarms reads verdict's metrics"}},
		{"the alarm spec's candidate named like the production variant", func(_ *testing.T, r *Rollout) {
			r.FleetIdentity = FleetModelOutput
			r.alarmSpecVariants[0] = "AllTraffic"
		}, []string{"alarms.from_spec: the alarm spec's candidate.variant is \"AllTraffic\", the production variant's name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRollout(t)
			tc.edit(t, r)
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			got := r.Warnings()
			if len(got) != len(tc.want) {
				t.Fatalf("%d warnings %q, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %q lacks %q", got[i], w)
				}
			}
		})
	}
	r := mustRollout(t)
	r.FleetIdentity = "folder"
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), `fleet_identity: "folder" must be model-output, request or application`) {
		t.Errorf("err %v", err)
	}
}
