package rehearsal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/window"
)

// Rehearsal replays a recording through a simulated traffic shift with the
// rollback alarms evaluated locally.
//
// The recording is shadow data: baseline and candidate both scored every
// request. During the shift a request counts for the candidate when Served(id,
// share at its prediction time) and for the baseline otherwise, so each variant's
// windows hold only what it would have served. Every Interval the CloudWatch
// publisher's values are recorded (FlushDatums); every alarm period each alarm
// is evaluated with CloudWatch's semantics. An alarm in ALARM from the start of
// the shift until the end of the termination wait rolls the rollout back.
type Rehearsal struct {
	Schedule            Schedule
	Baseline, Candidate string
	// Alarms are the rollback alarms (the rollout's AutoRollbackConfiguration).
	Alarms []alarms.Alarm
	// Publisher is the CloudWatch publisher's configuration (PublisherFor);
	// Judge computes its baseline metrics.
	Publisher cloudwatch.Config
	Judge     cloudwatch.Judge
	// Interval is the publish interval. Default cloudwatch.DefaultInterval.
	Interval time.Duration
	// Join is the join's configuration; Longest its longest window; Rule decides
	// when statistics are estimable.
	Join    labels.Config
	Longest time.Duration
	Rule    window.Rule
	// From is where the replay starts (the baseline alone before Schedule.Start).
	// Default: the recording's first prediction.
	From time.Time
	// Dir holds the temporary join store (default: the system's temporary directory).
	Dir string
	// Progress, when set, sees each step as it is evaluated.
	Progress func(Step)
	// ReplayProgress, when set, sees how far the replay has got after every
	// publish interval.
	ReplayProgress func(Progress)
}

// AlarmState is one alarm's state at one step and why.
type AlarmState struct {
	Alarm  string       `json:"alarm"`
	State  alarms.State `json:"state"`
	Reason string       `json:"reason"`
}

// Step is the rehearsal at one alarm evaluation.
type Step struct {
	At    time.Time `json:"at"`
	Phase string    `json:"phase"`
	// Share is the candidate's traffic share at At.
	Share float64 `json:"share"`
	// CandidatePredictions and CandidateLabeledPositives are the candidate's
	// served predictions and labeled positives in the publisher's window.
	CandidatePredictions      int64        `json:"candidate_predictions"`
	CandidateLabeledPositives int64        `json:"candidate_labeled_positives"`
	Alarms                    []AlarmState `json:"alarms"`
}

// Result values.
const (
	RolledBack = "rolled_back"
	Completed  = "completed"
)

// Outcome is how the rollout would have ended.
type Outcome struct {
	Result string `json:"result"`
	// At is when the rollback was triggered or the rollout completed.
	At time.Time `json:"at"`
	// Alarm and Reason name the alarm that rolled back and why (the first, in spec
	// order, if several were in ALARM).
	Alarm  string    `json:"alarm,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Start  time.Time `json:"shift_start"`
	End    time.Time `json:"planned_end"`
	// DataEnd is the last recorded event; a rollout planned past it saw no new
	// traffic at the end.
	DataEnd time.Time `json:"data_end"`
	Steps   []Step    `json:"steps"`
}

// Run rehearses the rollout over rec.
func (r *Rehearsal) Run(ctx context.Context, rec *Recording) (Outcome, error) {
	if len(r.Alarms) == 0 {
		return Outcome{}, errors.New("rehearsal: no alarms to watch")
	}
	if len(rec.Predictions) == 0 {
		return Outcome{}, errors.New("rehearsal: the recording has no predictions")
	}
	interval := r.Interval
	if interval == 0 {
		interval = cloudwatch.DefaultInterval
	}
	period, err := alarmPeriod(r.Alarms)
	if err != nil {
		return Outcome{}, err
	}
	if interval <= 0 || period%interval != 0 {
		return Outcome{}, fmt.Errorf("rehearsal: publish interval %s must divide the alarm period %s", interval, period)
	}
	from := r.From
	if from.IsZero() {
		from = rec.FirstPrediction()
	}
	from = from.Truncate(interval)
	s := r.Schedule
	if s.Start.Before(from) {
		return Outcome{}, fmt.Errorf("rehearsal: the shift starts at %s, before the replay (%s)", s.Start.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	// The first evaluation, at the shift start, reads the periods before it and
	// no earlier: the clock starts there (the events before it are applied at
	// the first tick), however long the shadow stage before it was.
	from = later(from, s.Start.Truncate(period).Add(-lookback(r.Alarms, period)).Truncate(interval))
	_, dataEnd := rec.Span()
	out := Outcome{Result: Completed, At: s.End(), Start: s.Start, End: s.End(), DataEnd: dataEnd}

	pub := &Publisher{Config: r.Publisher, Judge: r.Judge, Samples: NewMetricHistory()}
	eval := &alarms.Evaluator{Source: pub.Samples, ExtraPeriods: extraPeriods}
	states := make([]alarms.State, len(r.Alarms))
	for i := range states {
		states[i] = alarms.StateInsufficientData
	}
	serve := func(p ingest.Prediction) bool {
		switch p.Variant {
		case r.Candidate:
			return Served(p.InferenceID, s.ShareAt(p.Time))
		case r.Baseline:
			return !Served(p.InferenceID, s.ShareAt(p.Time))
		}
		return false
	}
	span := r.Publisher.Window
	if span == window.AllTime {
		span = cloudwatch.DefaultWindow
	}
	cfg := ReplayConfig{Join: r.Join, Longest: max(r.Longest, time.Duration(span)), Rule: r.Rule, From: from, To: s.End(),
		Step: interval, Serve: serve, Dir: r.Dir, Progress: r.ReplayProgress}
	err = Replay(ctx, rec, cfg, func(ctx context.Context, t Tick) (time.Time, error) {
		now, w := t.Now, t.Windows
		if err := pub.Publish(now, w); err != nil {
			return time.Time{}, err
		}
		if !now.Equal(now.Truncate(period)) || now.Before(s.Start) {
			return time.Time{}, nil
		}
		step := Step{At: now, Phase: s.Phase(now), Share: s.ShareAt(now)}
		if row, ok := w.Snapshot(span).Row(labels.Key{Variant: r.Candidate}); ok {
			step.CandidatePredictions = row.Counts.Predictions
			step.CandidateLabeledPositives = row.Counts.TP + row.Counts.FN
		}
		var fired *AlarmState
		for i, a := range r.Alarms {
			j, err := eval.Evaluate(ctx, a, now, states[i])
			if err != nil {
				return time.Time{}, fmt.Errorf("rehearsal: %w", err)
			}
			states[i] = j.State
			st := AlarmState{Alarm: a.AlarmName, State: j.State, Reason: j.Reason}
			step.Alarms = append(step.Alarms, st)
			if j.State == alarms.StateAlarm && fired == nil {
				fired = &st
			}
		}
		out.Steps = append(out.Steps, step)
		if r.Progress != nil {
			r.Progress(step)
		}
		if fired != nil && now.Before(s.End()) {
			out.Result, out.At, out.Alarm, out.Reason = RolledBack, now, fired.Alarm, fired.Reason
			return time.Time{}, ErrStop
		}
		return time.Time{}, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	return out, nil
}

// alarmPeriod is the evaluation period shared by the alarms (an alarm spec gives
// every alarm the same one).
func alarmPeriod(as []alarms.Alarm) (time.Duration, error) {
	var period time.Duration
	for _, a := range as {
		p := time.Duration(a.Period) * time.Second
		for _, q := range a.Metrics {
			if q.MetricStat != nil {
				p = time.Duration(q.MetricStat.Period) * time.Second
				break
			}
		}
		switch {
		case p <= 0:
			return 0, fmt.Errorf("rehearsal: alarm %s has no period", a.AlarmName)
		case period != 0 && p != period:
			return 0, fmt.Errorf("rehearsal: alarm %s has period %s, others %s; rehearse one alarm set at a time", a.AlarmName, p, period)
		}
		period = p
	}
	return period, nil
}

// extraPeriods is how far before its evaluation periods the local evaluator
// looks (alarms.Evaluator.ExtraPeriods; CloudWatch's documented example).
const extraPeriods = 2

// lookback is how long before an evaluation the published values it reads
// start, with a period to spare: the alarms' longest evaluation range.
func lookback(as []alarms.Alarm, period time.Duration) time.Duration {
	n := int32(0)
	for _, a := range as {
		n = max(n, a.EvaluationPeriods)
	}
	return time.Duration(int(n)+extraPeriods+1) * period
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
