package rehearsal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/window"
)

// Backtest replays a recording with both variants scoring every request (shadow
// data) and reports when each gate would have caught a regression: the judge
// (a look every Every, as an Argo Rollouts or Flagger gate would query
// /v1/judge) and, when Alarms are set, each rollback alarm on what the
// CloudWatch publisher would have sent.
type Backtest struct {
	Baseline, Candidate string
	// Window is the sliding window of the judge's looks. Default 1h.
	Window window.Span
	// Every is the time between the judge's looks. Default 5m.
	Every time.Duration
	// Judge configures the judge and its alarm rule; Judge.RegressionStart is
	// also the reference for the alarms (zero: a replay without regression).
	Judge judge.BacktestOptions
	// Alarms are evaluated when set, on Publisher's values every Interval
	// (default cloudwatch.DefaultInterval), which must divide Every.
	Alarms         []alarms.Alarm
	Publisher      cloudwatch.Config
	PublisherJudge cloudwatch.Judge
	Interval       time.Duration
	// Join is the join's configuration; Longest its longest window; Rule decides
	// when statistics are estimable.
	Join    labels.Config
	Longest time.Duration
	Rule    window.Rule
	// From and To bound the replay; default the recording's span.
	From, To time.Time
	// Dir holds the temporary join store (default: the system's temporary directory).
	Dir string
	// Progress, when set, is called at every look.
	Progress func(at time.Time)
}

// AlarmResult is how one alarm would have done.
type AlarmResult struct {
	Alarm string `json:"alarm"`
	// FirstAlarm is the first evaluation in ALARM; nil if never.
	FirstAlarm *time.Time `json:"first_alarm"`
	// FalseAlarms counts entries into ALARM before the regression started (all of
	// them in a replay without regression).
	FalseAlarms int `json:"false_alarms"`
	// Detected: in ALARM at some evaluation at or after the regression started;
	// DetectedAt the first such evaluation, TimeToDetect its distance from the start.
	Detected     bool       `json:"detected"`
	DetectedAt   *time.Time `json:"detected_at,omitempty"`
	TimeToDetect *Duration  `json:"time_to_detect,omitempty"`
	Evaluations  int        `json:"evaluations"`
}

// Duration is a time.Duration that reads as "25m0s" in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// BacktestReport is a backtest's result.
type BacktestReport struct {
	From            time.Time  `json:"from"`
	To              time.Time  `json:"to"`
	RegressionStart *time.Time `json:"regression_start"`
	Window          string     `json:"window"`
	Every           Duration   `json:"every"`
	// JudgeRange is what the judge gate read: its comparison period, or a sliding
	// window.
	JudgeRange string `json:"judge_range"`
	// FailuresToAlarm is the judge gate's rule: abort after this many failed looks.
	FailuresToAlarm int                  `json:"failures_to_alarm"`
	Judge           judge.BacktestResult `json:"judge"`
	Alarms          []AlarmResult        `json:"alarms,omitempty"`
}

// Run backtests over rec.
func (b *Backtest) Run(ctx context.Context, rec *Recording) (BacktestReport, error) {
	if len(rec.Predictions) == 0 {
		return BacktestReport{}, errors.New("backtest: the recording has no predictions")
	}
	span := b.Window
	if span == window.AllTime {
		span = window.Span(time.Hour)
	}
	every := b.Every
	if every == 0 {
		every = 5 * time.Minute
	}
	step := every
	interval := b.Interval
	if interval == 0 {
		interval = cloudwatch.DefaultInterval
	}
	var pub *Publisher
	if len(b.Alarms) > 0 {
		period, err := alarmPeriod(b.Alarms)
		if err != nil {
			return BacktestReport{}, err
		}
		if interval <= 0 || every%interval != 0 || period%interval != 0 {
			return BacktestReport{}, fmt.Errorf("backtest: publish interval %s must divide the look interval %s and the alarm period %s", interval, every, period)
		}
		step = interval
		pub = &Publisher{Config: b.Publisher, Judge: b.PublisherJudge, Samples: alarms.NewSamples()}
	}
	first, last := rec.Span()
	from, to := b.From, b.To
	if from.IsZero() {
		from = first
	}
	if to.IsZero() {
		to = last
	}
	from = from.Truncate(step)
	if to.Before(from) {
		return BacktestReport{}, fmt.Errorf("backtest: ends at %s, before it starts at %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	var looks []judge.Look
	cfg := ReplayConfig{Join: b.Join, Longest: max(b.Longest, time.Duration(span), time.Duration(b.Publisher.Window)), Rule: b.Rule, From: from, To: to, Step: step, Dir: b.Dir}
	err := Replay(ctx, rec, cfg, func(ctx context.Context, now time.Time, w *window.Windows) error {
		if pub != nil {
			if err := pub.Publish(now, w); err != nil {
				return err
			}
		}
		if now.Sub(from)%every != 0 || now.Equal(from) {
			return nil
		}
		// The gate judges its comparison period (by default since the candidate's
		// first prediction), not a sliding window: its decisions then hold however
		// often it looks.
		snap, err := judge.RangeSnapshot(w, b.Judge.Config.Range, b.Candidate)
		if err != nil {
			return fmt.Errorf("backtest: judge's range at %s: %w", now.Format(time.RFC3339), err)
		}
		looks = append(looks, judge.Look{At: now, Snapshot: snap})
		if b.Progress != nil {
			b.Progress(now)
		}
		return nil
	})
	if err != nil {
		return BacktestReport{}, err
	}
	if len(looks) == 0 {
		return BacktestReport{}, fmt.Errorf("backtest: the recording spans %s, less than one look interval %s", to.Sub(from), every)
	}
	rep := BacktestReport{From: from, To: to, Window: span.String(), JudgeRange: b.Judge.Config.Range.String(), Every: Duration(every), FailuresToAlarm: b.Judge.FailuresToAlarm}
	if rep.FailuresToAlarm == 0 {
		rep.FailuresToAlarm = 1
	}
	regStart := b.Judge.RegressionStart
	if !regStart.IsZero() {
		rep.RegressionStart = &regStart
	}
	rep.Judge, err = judge.Backtest(looks, b.Baseline, b.Candidate, b.Judge)
	if err != nil {
		return BacktestReport{}, err
	}
	if pub == nil {
		return rep, nil
	}
	eval := &alarms.Evaluator{Source: pub.Samples}
	for _, a := range b.Alarms {
		js, err := eval.Run(ctx, a, from, to)
		if err != nil {
			return BacktestReport{}, fmt.Errorf("backtest: %w", err)
		}
		rep.Alarms = append(rep.Alarms, alarmResult(a.AlarmName, js, regStart))
	}
	return rep, nil
}

// alarmResult scores one alarm's timeline against the regression start (zero:
// none).
func alarmResult(name string, js []alarms.Judgement, regStart time.Time) AlarmResult {
	res := AlarmResult{Alarm: name, Evaluations: len(js)}
	prev := alarms.StateInsufficientData
	for _, j := range js {
		alarming := j.State == alarms.StateAlarm
		if alarming && res.FirstAlarm == nil {
			at := j.At
			res.FirstAlarm = &at
		}
		before := regStart.IsZero() || j.At.Before(regStart)
		switch {
		case alarming && before && prev != alarms.StateAlarm:
			res.FalseAlarms++
		case alarming && !before && !res.Detected:
			at := j.At
			ttd := Duration(j.At.Sub(regStart))
			res.Detected, res.DetectedAt, res.TimeToDetect = true, &at, &ttd
		}
		prev = j.State
	}
	return res
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}
