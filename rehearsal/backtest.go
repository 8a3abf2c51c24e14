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
	"github.com/verdictml/verdict/tally"
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
	Alarms    []alarms.Alarm
	Publisher cloudwatch.Config
	Interval  time.Duration
	// Join is the join's configuration; Longest its longest window; Rule decides
	// when statistics are estimable.
	Join    labels.Config
	Longest time.Duration
	Rule    window.Rule
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
	// Ticks counts the ticks from From to To (a look every Every, a publish
	// every Interval with alarms); Computed those at which the gates read the
	// windows. At the others nothing the gates read had changed since, so a
	// look judges the same counts again, a publish repeats the last values, and
	// an alarm whose evaluation range holds nothing else keeps its state.
	Ticks    int `json:"ticks"`
	Computed int `json:"computed"`
	// LastChange is the last tick at which what the gates read changed: from
	// there to To every look and evaluation repeats.
	LastChange      time.Time  `json:"last_change"`
	RegressionStart *time.Time `json:"regression_start"`
	Window          string     `json:"window"`
	Every           Duration   `json:"every"`
	// JudgeRange is what the judge gate read: its comparison period, or a sliding
	// window.
	JudgeRange string `json:"judge_range"`
	// FailuresToAlarm is the judge gate's rule: abort after this many failed looks.
	FailuresToAlarm int                  `json:"failures_to_alarm"`
	Judge           judge.BacktestResult `json:"judge"`
	// Seen is what the judge's range held, per variant, at each computed look:
	// the evidence the decisions had (the looks in between held the same).
	Seen   []Seen        `json:"seen"`
	Alarms []AlarmResult `json:"alarms,omitempty"`
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
	row, ok := snap.Row(tally.Key{Variant: variant})
	if !ok {
		return WindowView{}
	}
	c := row.Counts
	return WindowView{Predictions: c.Predictions, Flagged: c.Flagged, Resolved: c.Resolved(),
		LabeledPositives: c.TP + c.FN, Matured: c.Matured}
}

// Run backtests over rec.
//
// It moves tick by tick (a look every Every; with alarms, a publish every
// Interval and an evaluation every alarm period), but computes the gates only
// when what they read may have changed (Tick.Changed): otherwise a look judges
// the same counts again, a publish repeats the last values, and an alarm whose
// evaluation range holds nothing else keeps its state. Stretches in which
// nothing changes are passed over, their looks and evaluations repeated
// without replaying them (Exhaustive replays everything; the results are the
// same).
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
		pub = &Publisher{Config: b.Publisher, Samples: NewMetricHistory()}
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
	// The sliding windows the gates read; periods and all time move with the
	// kept range and the events, which the replay tracks anyway.
	var spans []time.Duration
	if r := b.Judge.Config.Range; r.Sliding && r.Window != window.AllTime {
		spans = append(spans, time.Duration(r.Window))
	}
	if pub != nil {
		w := b.Publisher.Window
		if w == window.AllTime {
			w = cloudwatch.DefaultWindow
		}
		spans = append(spans, time.Duration(w))
	}
	var (
		looks    []judge.Look
		timeline = make([][]alarms.Assessment, len(b.Alarms))
		states   = make([]alarms.State, len(b.Alarms))
		eval     *alarms.Evaluator
		// settle is how long after a change the alarms' evaluations can still
		// differ: their evaluation range reaches that far back.
		settle time.Duration
		// lastChange is the last tick at which what the gates read changed;
		// published and looked report whether a publish and a look were computed
		// since (the next ones repeat them).
		lastChange        time.Time
		published, looked bool
		lastLook          window.Snapshot
	)
	for i := range states {
		states[i] = alarms.StateInsufficientData
	}
	if pub != nil {
		eval = &alarms.Evaluator{Source: pub.Samples, ExtraPeriods: extraPeriods}
		settle = lookback(b.Alarms, period)
	}
	isLook := func(t time.Time) bool { return t.Sub(from)%every == 0 && !t.Equal(from) }
	isEvaluation := func(t time.Time) bool { return pub != nil && t.Equal(t.Truncate(period)) }
	bucket := bucketWidth(b.Join)
	// repeat records the looks and alarm evaluations of a tick at which nothing
	// changed and the alarms had settled.
	repeat := func(at time.Time) {
		rep.Ticks++
		if isEvaluation(at) {
			for i, a := range b.Alarms {
				prev := timeline[i][len(timeline[i])-1]
				timeline[i] = append(timeline[i], alarms.Assessment{Alarm: a.AlarmName, At: at, State: states[i], Reason: prev.Reason})
			}
		}
		if isLook(at) {
			looks = append(looks, judge.Look{At: at, Snapshot: restamp(lastLook, at, bucket), Same: true})
		}
	}
	longest := max(b.Longest, time.Duration(span), time.Duration(b.Publisher.Window))
	cfg := ReplayConfig{Join: b.Join, Longest: longest, Rule: b.Rule, Spans: spans, From: from, To: to, Step: step, Dir: b.Dir,
		Progress: b.ReplayProgress}
	err := Replay(ctx, rec, cfg, func(ctx context.Context, t Tick) (time.Time, error) {
		now, w := t.Now, t.Windows
		fresh := b.Exhaustive || t.Changed || lastChange.IsZero()
		if fresh {
			lastChange, published, looked = now, false, false
		}
		settled := !b.Exhaustive && now.Sub(lastChange) >= settle
		if settled && published == (pub != nil) && looked {
			if pub != nil {
				pub.Repeat(now) // the evaluation range after the next change reads it
			}
			repeat(now)
		} else {
			rep.Ticks++
			if !published || (isLook(now) && !looked) {
				rep.Computed++
			}
			if pub != nil {
				if published {
					pub.Repeat(now)
				} else if err := pub.Publish(now, w); err != nil {
					return time.Time{}, err
				}
				published = !b.Exhaustive
			}
			if isEvaluation(now) {
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
			if isLook(now) {
				same := looked
				if !looked {
					// The gate judges its comparison period (by default since the
					// candidate's first prediction), not a sliding window: its
					// decisions then hold however often it looks.
					snap, err := judge.RangeSnapshot(w, b.Judge.Config.Range, b.Candidate)
					if err != nil {
						return time.Time{}, fmt.Errorf("backtest: judge's range at %s: %w", now.Format(time.RFC3339), err)
					}
					lastLook, looked = snap, !b.Exhaustive
					rep.Seen = append(rep.Seen, Seen{At: now, Baseline: viewOf(snap, b.Baseline), Candidate: viewOf(snap, b.Candidate)})
				}
				looks = append(looks, judge.Look{At: now, Snapshot: restamp(lastLook, now, bucket), Same: same})
				if b.Progress != nil {
					b.Progress(now)
				}
			}
		}
		if b.Exhaustive || !settled || published != (pub != nil) || !looked {
			return time.Time{}, nil
		}
		// Nothing changes before NextChange: repeat the looks and evaluations up
		// to it, and resume one settle early so that the alarms' evaluation range
		// holds the repeated publishes when the change comes.
		end := t.NextChange
		if end.IsZero() || end.After(to) {
			end = to.Add(1)
		}
		resume := now.Add((end.Sub(now) - settle - 1) / step * step)
		if !resume.After(now.Add(step)) {
			return time.Time{}, nil
		}
		for at := now.Add(step); at.Before(resume); at = at.Add(step) {
			repeat(at)
		}
		if resume.After(to) {
			return time.Time{}, ErrStop
		}
		return resume, nil
	})
	if err != nil {
		return BacktestReport{}, err
	}
	rep.LastChange = lastChange
	if len(looks) == 0 {
		return BacktestReport{}, fmt.Errorf("backtest: the recording spans %s, less than one look interval %s", to.Sub(from), every)
	}
	rep.Judge, err = judge.Backtest(looks, b.Baseline, b.Candidate, b.Judge)
	if err != nil {
		return BacktestReport{}, err
	}
	for i, a := range b.Alarms {
		rep.Alarms = append(rep.Alarms, alarmResult(a.AlarmName, timeline[i], regStart))
	}
	return rep, nil
}

// restamp is snap as it reads at, when nothing it holds has changed since it
// was taken: the same counts, the window's end (and a sliding window's first
// bucket, a period's length) moved on, as window.Snapshot and Period set them.
func restamp(snap window.Snapshot, at time.Time, bucket time.Duration) window.Snapshot {
	snap.End = at
	switch {
	case snap.Period:
		snap.Span = window.Span(at.Sub(snap.Start).Truncate(time.Second))
	case snap.Span != window.AllTime:
		b := int64(bucket / time.Second)
		snap.Start = time.Unix(at.Add(-time.Duration(snap.Span)).Unix()/b*b, 0).UTC()
	}
	return snap
}

// alarmResult scores one alarm's timeline against the regression start (zero:
// none).
func alarmResult(name string, js []alarms.Assessment, regStart time.Time) AlarmResult {
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
