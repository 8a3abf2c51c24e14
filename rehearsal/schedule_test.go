package rehearsal

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/verdictml/verdict/deploy"
)

// fleetRollout is a rollout of a fleet of the given instances.
func fleetRollout(t *testing.T, instances int, traffic string) *deploy.Rollout {
	t.Helper()
	r, err := deploy.ParseRollout([]byte(fmt.Sprintf(`
endpoint: fraud-detector
production: {variant: AllTraffic, model: m-v5, instance_type: ml.c5.xlarge, instance_count: %d}
candidate: {model: m-v6, endpoint_config: fraud-detector-v6}
alarms: {names: [a]}
traffic:
`, instances) + traffic))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestScheduleSharesPerRoutingType(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	type at struct {
		after time.Duration
		share float64
		phase string
	}
	tests := []struct {
		name      string
		instances int
		traffic   string
		end       time.Duration
		want      []at
	}{
		{"linear 10% of 10 instances every 5m bakes each step, then the termination wait", 10,
			"  type: LINEAR\n  step: {capacity_percent: 10}\n  wait_interval: 5m\n  termination_wait: 10m\n  max_execution_timeout: 2h\n",
			60 * time.Minute,
			[]at{{-time.Second, 0, "before the shift"}, {0, 0.1, "step 1/10"}, {4*time.Minute + 59*time.Second, 0.1, "step 1/10"},
				{5 * time.Minute, 0.2, "step 2/10"}, {45 * time.Minute, 1, "step 10/10"}, {50 * time.Minute, 1, "termination wait"},
				{60 * time.Minute, 1, "complete"}}},
		{"linear 30% steps end at 100%, not 120%", 10,
			"  type: LINEAR\n  step: {capacity_percent: 30}\n  wait_interval: 10m\n  termination_wait: 0s\n  max_execution_timeout: 1h\n",
			40 * time.Minute,
			[]at{{0, 0.3, "step 1/4"}, {20 * time.Minute, 0.9, "step 3/4"}, {30 * time.Minute, 1, "step 4/4"}, {40 * time.Minute, 1, "complete"}}},
		{"linear by instance count: 1 of 4 instances is 25%", 4,
			"  type: LINEAR\n  step: {instance_count: 1}\n  wait_interval: 5m\n  termination_wait: 5m\n  max_execution_timeout: 1h\n",
			25 * time.Minute,
			[]at{{0, 0.25, "step 1/4"}, {15 * time.Minute, 1, "step 4/4"}, {20 * time.Minute, 1, "termination wait"}}},
		{"linear 30% of 4 instances moves whole instances: 25% steps", 4,
			"  type: LINEAR\n  step: {capacity_percent: 30}\n  wait_interval: 5m\n  termination_wait: 5m\n  max_execution_timeout: 1h\n",
			25 * time.Minute,
			[]at{{0, 0.25, "step 1/4"}, {5 * time.Minute, 0.5, "step 2/4"}, {15 * time.Minute, 1, "step 4/4"}}},
		{"canary holds its share for one bake, then takes all traffic", 20,
			"  type: CANARY\n  canary: {capacity_percent: 5}\n  wait_interval: 10m\n  termination_wait: 5m\n  max_execution_timeout: 1h\n",
			25 * time.Minute,
			[]at{{-time.Minute, 0, "before the shift"}, {0, 0.05, "step 1/2"}, {10 * time.Minute, 1, "step 2/2"},
				{20 * time.Minute, 1, "termination wait"}, {25 * time.Minute, 1, "complete"}}},
		{"a rolling update bakes every batch and has no termination wait", 4,
			"  type: ROLLING\n  batch: {instance_count: 1}\n  wait_interval: 5m\n  max_execution_timeout: 2h\n",
			20 * time.Minute,
			[]at{{0, 0.25, "step 1/4"}, {10 * time.Minute, 0.75, "step 3/4"}, {20 * time.Minute, 1, "complete"}}},
		{"all at once shifts everything at the start", 4,
			"  type: ALL_AT_ONCE\n  wait_interval: 5m\n  termination_wait: 10m\n  max_execution_timeout: 1h\n",
			15 * time.Minute,
			[]at{{-time.Second, 0, "before the shift"}, {0, 1, "step 1/1"}, {5 * time.Minute, 1, "termination wait"}, {15 * time.Minute, 1, "complete"}}},
		{"all at once without waits completes at once", 4,
			"  type: ALL_AT_ONCE\n  wait_interval: 0s\n  termination_wait: 0s\n  provisioning: 5m\n  max_execution_timeout: 10m\n",
			0,
			[]at{{-time.Second, 0, "before the shift"}, {0, 1, "complete"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSchedule(fleetRollout(t, tc.instances, tc.traffic), t0)
			if got := s.End().Sub(t0); got != tc.end {
				t.Errorf("End = start + %s, want + %s", got, tc.end)
			}
			for _, w := range tc.want {
				at := t0.Add(w.after)
				if got := s.ShareAt(at); math.Abs(got-w.share) > 1e-9 {
					t.Errorf("ShareAt(start%+v) = %v, want %v", w.after, got, w.share)
				}
				if got := s.Phase(at); got != w.phase {
					t.Errorf("Phase(start%+v) = %q, want %q", w.after, got, w.phase)
				}
			}
		})
	}
}

func TestServedIsADeterministicShareOfIDs(t *testing.T) {
	const n = 10000
	tests := []struct {
		share     float64
		min, max  int
		behaviour string
	}{
		{0, 0, 0, "share 0 serves none"},
		{1, n, n, "share 1 serves all"},
		{0.3, n*30/100 - 200, n*30/100 + 200, "share 0.3 serves about 30 %"},
		{0.05, n*5/100 - 100, n*5/100 + 100, "share 0.05 serves about 5 %"},
	}
	for _, tc := range tests {
		t.Run(tc.behaviour, func(t *testing.T) {
			served := 0
			for i := range n {
				id := fmt.Sprintf("demo-1767571200-%d", i)
				s := Served(id, tc.share)
				if s != Served(id, tc.share) {
					t.Fatalf("Served(%q, %v) is not deterministic", id, tc.share)
				}
				if s && !Served(id, math.Min(1, tc.share+0.1)) {
					t.Fatalf("Served(%q) at %v but not at a larger share", id, tc.share)
				}
				if s {
					served++
				}
			}
			if served < tc.min || served > tc.max {
				t.Errorf("served %d of %d ids at share %v, want %d..%d", served, n, tc.share, tc.min, tc.max)
			}
		})
	}
}
