package judge

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/internal/shadowsim"
	"github.com/verdictml/verdict/window"
)

// firstLook is when the looks of the backtest tests start.
var firstLook = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// minuteLooks is a look a minute from firstLook at each candidate row, always against base.
func minuteLooks(base window.Row, cands ...window.Row) []Look {
	looks := make([]Look, len(cands))
	for i, cand := range cands {
		looks[i] = Look{At: firstLook.Add(time.Duration(i) * time.Minute), Snapshot: shadowsim.SnapshotOf(base, cand)}
	}
	return looks
}

// replay builds looks every 5 minutes over accumulating traffic; from look
// regressFrom on (negative: never), the candidate regresses on electronics.
func replay(seed uint64, looks, regressFrom int) ([]Look, time.Time) {
	w := window.New(5*time.Minute, 24*time.Hour)
	rng := rand.New(rand.NewPCG(seed, 0xbac7))
	step := shadowsim.Shrink(shadowsim.Categories(), 0.1)
	var out []Look
	for i := range looks {
		cand := step
		if regressFrom >= 0 && i >= regressFrom {
			cand = shadowsim.Regress(step, "electronics", 0.55)
		}
		shadowsim.Simulate(w, rng, step, cand)
		out = append(out, Look{At: firstLook.Add(time.Duration(i) * 5 * time.Minute), Snapshot: w.Snapshot(window.AllTime)})
	}
	start := time.Time{}
	if regressFrom >= 0 {
		start = firstLook.Add(time.Duration(regressFrom) * 5 * time.Minute)
	}
	return out, start
}

func TestBacktestMeasuresTimeToDetect(t *testing.T) {
	looks, start := replay(7, 24, 4)
	res, err := Backtest(looks, "v5", "v6", BacktestOptions{RegressionStart: start})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Detected || res.FalseAlarm || res.FalseFails != 0 {
		t.Fatalf("detected %v false alarm %v false fails %d; looks %+v", res.Detected, res.FalseAlarm, res.FalseFails, res.Looks)
	}
	if *res.TimeToDetect <= 0 || *res.TimeToDetect > 90*time.Minute {
		t.Errorf("time to detect %s, want within 90 minutes of the regression", res.TimeToDetect)
	}
	if !res.AlarmAt.Equal(start.Add(*res.TimeToDetect)) {
		t.Errorf("alarm at %s, regression at %s, ttd %s", res.AlarmAt, start, res.TimeToDetect)
	}
	t.Logf("regression at look 4 detected after %s", res.TimeToDetect)
}

func TestBacktestCountsNoFalseAlarmsWithoutRegression(t *testing.T) {
	const seeds = 20
	alarms := 0
	for seed := uint64(1); seed <= seeds; seed++ {
		looks, _ := replay(seed, 12, -1)
		res, err := Backtest(looks, "v5", "v6", BacktestOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Detected || res.TimeToDetect != nil {
			t.Errorf("seed %d: detection reported without a regression", seed)
		}
		if res.FalseAlarm {
			alarms++
		}
	}
	if alarms > 0 {
		t.Errorf("%d of %d non-regressing replays would have been rolled back", alarms, seeds)
	}
}

func TestBacktestRejectsBadTimelines(t *testing.T) {
	looks, _ := replay(1, 2, -1)
	for _, tc := range []struct {
		name  string
		looks []Look
		opts  BacktestOptions
		want  string
	}{
		{"no looks", nil, BacktestOptions{}, "no looks"},
		{"out of order", []Look{looks[1], looks[0]}, BacktestOptions{}, "look 1 at 2026-03-02T09:00:00Z is not after look 0"},
		{"negative failures to alarm", looks, BacktestOptions{FailuresToAlarm: -1}, "FailuresToAlarm -1"},
		{"bad config", looks, BacktestOptions{Config: Config{Alpha: 3}}, "Alpha"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Backtest(tc.looks, "v5", "v6", tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBacktestAlarmNeedsEnoughFailures(t *testing.T) {
	base := shadowsim.Row("v5", "", 800, 200, 200, 8800)
	bad := shadowsim.Row("v6", "", 600, 200, 400, 8800)
	good := shadowsim.Row("v6", "", 800, 200, 200, 8800)
	looks := minuteLooks(base, good, bad, good, bad, bad)
	res, err := Backtest(looks, "v5", "v6", BacktestOptions{FailuresToAlarm: 3, RegressionStart: firstLook.Add(2 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if res.FalseFails != 1 || res.FalseAlarm || !res.Detected || *res.TimeToDetect != 2*time.Minute {
		t.Errorf("false fails %d alarm %v detected %v ttd %v, want 1, false, true, 2m", res.FalseFails, res.FalseAlarm, res.Detected, res.TimeToDetect)
	}
}

func TestBacktestCountsFalsePassesAndTheFirstDecision(t *testing.T) {
	base := shadowsim.Row("v5", "", 80000, 20000, 20000, 880000)
	same := shadowsim.Row("v6", "", 80000, 20000, 20000, 880000)
	few := shadowsim.Row("v6", "", 8, 2, 2, 88)
	// Inconclusive, then pass twice; the regression is said to start at look 2.
	looks := minuteLooks(base, few, same, same)
	res, err := Backtest(looks, "v5", "v6", BacktestOptions{RegressionStart: firstLook.Add(2 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if res.LooksBefore != 2 || res.LooksAfter != 1 {
		t.Errorf("looks before/after the regression %d/%d, want 2/1", res.LooksBefore, res.LooksAfter)
	}
	if res.FalsePasses != 1 || res.FirstDecisionLook != 2 || res.FirstPassAt == nil || !res.FirstPassAt.Equal(firstLook.Add(time.Minute)) {
		t.Errorf("false passes %d, first decision look %d, first pass %v; want 1, 2, %s", res.FalsePasses, res.FirstDecisionLook, res.FirstPassAt, firstLook.Add(time.Minute))
	}
}

func TestBacktestReusesTheJudgementOfALookMarkedSame(t *testing.T) {
	// The same looks with every other one marked Same and given an empty
	// snapshot: a Same look must repeat the look before, not judge its snapshot.
	looks, start := replay(7, 12, 4)
	marked := append([]Look(nil), looks...)
	for i := 1; i < len(marked); i += 2 {
		marked[i] = Look{At: marked[i].At, Same: true}
	}
	got, err := Backtest(marked, "v5", "v6", BacktestOptions{RegressionStart: start})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Backtest(looks, "v5", "v6", BacktestOptions{RegressionStart: start})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range got.Looks {
		if w := want.Looks[i-i%2]; l.Decision != w.Decision || l.Reason != w.Reason {
			t.Errorf("look %d: %s (%s); want look %d's %s (%s)", i, l.Decision, l.Reason, i-i%2, w.Decision, w.Reason)
		}
	}
}
