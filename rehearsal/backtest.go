package rehearsal

import (
	"context"
	"errors"
	"fmt"
	"sort"
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
	// From is the first tick (default: the recording's first event) and To the
	// last one (default: its last event). Events after To are not replayed.
	From, To time.Time
	// Dir holds the temporary join store (default: the system's temporary directory).
	Dir string
	// Exhaustive ticks through every step up to To: nothing is skipped and the
	// replay does not stop early. The results are the same (that is what the
	// tests check), only slower.
	Exhaustive bool
	// Progress, when set, is called at every look.
	Progress func(at time.Time)
	// ReplayProgress, when set, sees how far the replay has got after every tick.
	ReplayProgress func(Progress)
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
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Until is the last tick replayed: To, or earlier when nothing the gates read
	// could change after it (Stopped says why).
	Until   time.Time `json:"until"`
	Stopped string    `json:"stopped,omitempty"`
	// Skipped are stretches not replayed tick by tick: the windows the gates read
	// were empty throughout and every gate's state had settled on them, so each
	// skipped look and alarm evaluation would have repeated the one before.
	Skipped         []Stretch  `json:"skipped,omitempty"`
	RegressionStart *time.Time `json:"regression_start"`
	Window          string     `json:"window"`
	Every           Duration   `json:"every"`
	// JudgeRange is what the judge gate read: its comparison period, or a sliding
	// window.
	JudgeRange string `json:"judge_range"`
	// FailuresToAlarm is the judge gate's rule: abort after this many failed looks.
	FailuresToAlarm int                  `json:"failures_to_alarm"`
	Judge           judge.BacktestResult `json:"judge"`
	// Seen is what the judge's window held at each look, per variant: the
	// evidence each decision had.
	Seen   []Seen        `json:"seen"`
	Alarms []AlarmResult `json:"alarms,omitempty"`
	// Labels counts the recording's labels up to To, and of those the ones known
	// by Until: the rest arrived after the last look that could see them.
	Labels         int `json:"labels"`
	LabelsReplayed int `json:"labels_replayed"`
}

// Stretch is a span of simulated time.
type Stretch struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Seen is the judge's window at one look.
type Seen struct {
	At        time.Time  `json:"at"`
	Baseline  WindowView `json:"baseline"`
	Candidate WindowView `json:"candidate"`
}

// WindowView is one variant's counts in a window (overall).
type WindowView struct {
	Predictions int64 `json:"predictions"`
	Flagged     int64 `json:"flagged"`
	// Resolved counts predictions with an outcome (labeled, or matured);
	// LabeledPositives those whose label is positive (TP + FN).
	Resolved         int64 `json:"resolved"`
	LabeledPositives int64 `json:"labeled_positives"`
	Matured          int64 `json:"matured"`
}

func viewOf(snap window.Snapshot, variant string) WindowView {
	row, ok := snap.Row(labels.Key{Variant: variant})
	if !ok {
		return WindowView{}
	}
	c := row.Counts
	return WindowView{Predictions: c.Predictions, Flagged: c.Flagged, Resolved: c.TP + c.FP + c.FN + c.TN,
		LabeledPositives: c.TP + c.FN, Matured: c.Matured}
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
	var (
		pub    *Publisher
		period time.Duration
	)
	if len(b.Alarms) > 0 {
		var err error
		period, err = alarmPeriod(b.Alarms)
		if err != nil {
			return BacktestReport{}, err
		}
		if interval <= 0 || every%interval != 0 || period%interval != 0 {
			return BacktestReport{}, fmt.Errorf("backtest: publish interval %s must divide the look interval %s and the alarm period %s", interval, every, period)
		}
		step = interval
		pub = &Publisher{Config: b.Publisher, Judge: b.PublisherJudge, Samples: NewMetricHistory()}
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
	rep := BacktestReport{From: from, To: to, Window: span.String(), JudgeRange: b.Judge.Config.Range.String(), Every: Duration(every), FailuresToAlarm: b.Judge.FailuresToAlarm}
	if rep.FailuresToAlarm == 0 {
		rep.FailuresToAlarm = 1
	}
	regStart := b.Judge.RegressionStart
	if !regStart.IsZero() {
		rep.RegressionStart = &regStart
	}
	var (
		looks    []judge.Look
		timeline = make([][]alarms.Judgement, len(b.Alarms))
		states   = make([]alarms.State, len(b.Alarms))
		eval     *alarms.Evaluator
		// settle is how long the windows must have been empty before the gates'
		// states are known to repeat: the alarms' evaluation range (the judge
		// keeps no state between looks).
		settle time.Duration
		// idleSince is when the windows last became empty (zero: they are not);
		// idleFails reports that the judge fails on the empty windows.
		idleSince time.Time
		idleFails bool
		// refillUntil: after a skip, ticks before it only publish, refilling the
		// alarms' evaluation range with what the skipped ticks would have sent.
		refillUntil time.Time
	)
	for i := range states {
		states[i] = alarms.StateInsufficientData
	}
	if pub != nil {
		eval = &alarms.Evaluator{Source: pub.Samples, ExtraPeriods: extraPeriods}
		settle = lookback(b.Alarms, period)
	}
	reads := max(time.Duration(span), time.Duration(b.Publisher.Window))
	cfg := ReplayConfig{Join: b.Join, Longest: max(b.Longest, reads), Reads: reads, From: from, To: to, Step: step, Dir: b.Dir,
		Progress: b.ReplayProgress}
	err := Replay(ctx, rec, cfg, func(ctx context.Context, t Tick) (time.Time, error) {
		now, w := t.Now, t.Windows
		rep.Until = now
		if pub != nil {
			if err := pub.Publish(now, w); err != nil {
				return time.Time{}, err
			}
		}
		if now.Before(refillUntil) {
			return time.Time{}, nil
		}
		if pub != nil && now.Equal(now.Truncate(period)) {
			for i, a := range b.Alarms {
				j, err := eval.Evaluate(ctx, a, now, states[i])
				if err != nil {
					return time.Time{}, fmt.Errorf("backtest: %w", err)
				}
				states[i] = j.State
				j.Points = nil // the timeline keeps states, not every evaluation's datapoints
				timeline[i] = append(timeline[i], j)
			}
		}
		if now.Sub(from)%every == 0 && !now.Equal(from) {
			// The gate judges its comparison period (by default since the candidate's
			// first prediction), not a sliding window: its decisions then hold however
			// often it looks.
			snap, err := judge.RangeSnapshot(w, b.Judge.Config.Range, b.Candidate)
			if err != nil {
				return time.Time{}, fmt.Errorf("backtest: judge's range at %s: %w", now.Format(time.RFC3339), err)
			}
			looks = append(looks, judge.Look{At: now, Snapshot: snap})
			rep.Seen = append(rep.Seen, Seen{At: now, Baseline: viewOf(snap, b.Baseline), Candidate: viewOf(snap, b.Candidate)})
			if b.Progress != nil {
				b.Progress(now)
			}
		}
		if !t.Idle || b.Exhaustive {
			idleSince = time.Time{}
			return time.Time{}, nil
		}
		if idleSince.IsZero() {
			idleSince = now
			j, err := judge.Judge(w.Snapshot(span), b.Baseline, b.Candidate, b.Judge.Config)
			if err != nil {
				return time.Time{}, fmt.Errorf("backtest: judge the empty window at %s: %w", now.Format(time.RFC3339), err)
			}
			idleFails = j.Decision == judge.Fail
		}
		if idleFails || now.Sub(idleSince) < settle {
			return time.Time{}, nil // every look fails anew, or the alarms have not settled yet
		}
		// Nothing changes until the next prediction (or the regression start,
		// which the alarms' detection is measured from).
		until := t.NextPrediction
		if regStart.After(now) && (until.IsZero() || regStart.Before(until)) {
			until = regStart
		}
		if until.IsZero() {
			rep.Stopped = fmt.Sprintf("from %s on the %s window is empty and no prediction is left, so every later look and alarm evaluation would repeat the last one",
				now.Format(time.RFC3339), window.Span(reads))
			return time.Time{}, ErrStop
		}
		resume := until.Add(-settle - step)
		if !resume.After(now.Add(step)) {
			return time.Time{}, nil
		}
		resume = now.Add(resume.Sub(now) / step * step)
		refillUntil = resume.Add(settle)
		rep.Skipped = append(rep.Skipped, Stretch{From: now, To: refillUntil})
		return resume, nil
	})
	if err != nil {
		return BacktestReport{}, err
	}
	if len(looks) == 0 {
		return BacktestReport{}, fmt.Errorf("backtest: the recording spans %s, less than one look interval %s", to.Sub(from), every)
	}
	rep.Labels = sort.Search(len(rec.Labels), func(i int) bool { return rec.Labels[i].Time.After(to) })
	rep.LabelsReplayed = sort.Search(len(rec.Labels), func(i int) bool { return rec.Labels[i].Time.After(rep.Until) })
	rep.Judge, err = judge.Backtest(looks, b.Baseline, b.Candidate, b.Judge)
	if err != nil {
		return BacktestReport{}, err
	}
	for i, a := range b.Alarms {
		rep.Alarms = append(rep.Alarms, alarmResult(a.AlarmName, timeline[i], regStart))
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
