package judge

import (
	"errors"
	"fmt"
	"time"

	"github.com/verdictml/verdict/window"
)

// Look is the window snapshot a gate would have seen at one moment of a replay.
type Look struct {
	At       time.Time
	Snapshot window.Snapshot
	// Same marks a look at the same counts as the look before (a replay knows
	// nothing it reads changed in between): the judgement before is reused,
	// reason included, instead of computed again.
	Same bool
}

// BacktestOptions configure a backtest.
type BacktestOptions struct {
	Config Config
	// FailuresToAlarm is how many failed looks abort the rollout, as Argo Rollouts'
	// failureLimit + 1 or Flagger's threshold count them (in total, not in a row).
	// Default 1: the judge's fail is anytime-valid over the comparison period, so one
	// is the decision; waiting for more only delays the rollback.
	FailuresToAlarm int
	// RegressionStart is when the candidate started to be worse in the replayed
	// data; zero for a replay without regression.
	RegressionStart time.Time
}

// LookResult is the judge's decision at one look.
type LookResult struct {
	At                 time.Time `json:"at"`
	Decision           Decision  `json:"decision"`
	SegmentRegressions int       `json:"segment_regressions"`
	Reason             string    `json:"reason"`
}

// BacktestResult reports how the judge would have gated a replayed rollout.
type BacktestResult struct {
	Looks []LookResult `json:"looks"`
	// AlarmAt is the look at which the failures reached FailuresToAlarm (the
	// rollout would have been aborted there); nil if never.
	AlarmAt *time.Time `json:"alarm_at"`
	// FalseFails counts failed looks before RegressionStart (all of them when there
	// is no regression); FalseAlarm reports an alarm before RegressionStart.
	FalseFails int  `json:"false_fails"`
	FalseAlarm bool `json:"false_alarm"`
	// TimeToDetect is AlarmAt - RegressionStart for an alarm at or after the
	// regression started; nil when there is no regression or it went undetected.
	TimeToDetect *time.Duration `json:"time_to_detect"`
	// Detected reports an alarm at or after RegressionStart.
	Detected bool `json:"detected"`
	// FalsePasses counts passing looks at or after RegressionStart: a gate that
	// promotes on a pass would have shipped the regression there.
	FalsePasses int `json:"false_passes"`
	// FirstPassAt is the first passing look; FirstDecisionLook the 1-based index of
	// the first look that was not inconclusive (0: none was).
	FirstPassAt       *time.Time `json:"first_pass_at"`
	FirstDecisionLook int        `json:"first_decision_look"`
	// LooksBefore and LooksAfter count the looks before RegressionStart (all of them
	// without a regression) and at or after it: the denominators of the false-fail
	// rate (FalseFails/LooksBefore) and the false-pass rate (FalsePasses/LooksAfter).
	LooksBefore int `json:"looks_before"`
	LooksAfter  int `json:"looks_after"`
}

// Backtest judges candidate against baseline at every look, in time order, and
// reports when the gate would have aborted the rollout: time to detect a
// regression that started at opts.RegressionStart, and false fails and alarms
// before it (or in a replay without regression).
func Backtest(looks []Look, baseline, candidate string, opts BacktestOptions) (BacktestResult, error) {
	if len(looks) == 0 {
		return BacktestResult{}, errors.New("backtest: no looks")
	}
	if opts.FailuresToAlarm == 0 {
		opts.FailuresToAlarm = 1
	}
	if opts.FailuresToAlarm < 0 {
		return BacktestResult{}, fmt.Errorf("backtest: FailuresToAlarm %d must be at least 1", opts.FailuresToAlarm)
	}
	regressing := !opts.RegressionStart.IsZero()
	res := BacktestResult{Looks: make([]LookResult, 0, len(looks))}
	fails := 0
	var j Judgement
	for i, l := range looks {
		if i > 0 && !l.At.After(looks[i-1].At) {
			return BacktestResult{}, fmt.Errorf("backtest: look %d at %s is not after look %d at %s", i, l.At.Format(time.RFC3339), i-1, looks[i-1].At.Format(time.RFC3339))
		}
		if !l.Same || i == 0 {
			var err error
			if j, err = Judge(l.Snapshot, baseline, candidate, opts.Config); err != nil {
				return BacktestResult{}, fmt.Errorf("backtest: look %d at %s: %w", i, l.At.Format(time.RFC3339), err)
			}
		}
		res.Looks = append(res.Looks, LookResult{At: l.At, Decision: j.Decision, SegmentRegressions: j.SegmentRegressions, Reason: j.Reason})
		if j.Decision != Inconclusive && res.FirstDecisionLook == 0 {
			res.FirstDecisionLook = i + 1
		}
		if !regressing || l.At.Before(opts.RegressionStart) {
			res.LooksBefore++
		} else {
			res.LooksAfter++
		}
		if j.Decision == Pass {
			if res.FirstPassAt == nil {
				at := l.At
				res.FirstPassAt = &at
			}
			if regressing && !l.At.Before(opts.RegressionStart) {
				res.FalsePasses++
			}
		}
		if j.Decision != Fail {
			continue
		}
		before := !regressing || l.At.Before(opts.RegressionStart)
		if before {
			res.FalseFails++
		}
		fails++
		if fails == opts.FailuresToAlarm && res.AlarmAt == nil {
			at := l.At
			res.AlarmAt = &at
			if before {
				res.FalseAlarm = true
			} else {
				res.Detected = true
				ttd := l.At.Sub(opts.RegressionStart)
				res.TimeToDetect = &ttd
			}
		}
	}
	return res, nil
}
