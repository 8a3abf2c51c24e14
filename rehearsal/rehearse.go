package rehearsal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/deploy"
	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// Rehearsal replays a recording through a rollout: the shadow-stage gate on the
// recording's shadow stage, then a simulated traffic shift with the rollback
// alarms evaluated locally.
//
// The shadow stage is the recording before Schedule.Start (from ShadowStart): both
// variants scored every request. With a Gate, the judge's judgement of that stage
// (the labels known by the shift start, paired) goes through the gate as `deploy
// promote-shadow` would send it; a blocked gate stops the rollout there unless
// Override gives a reason. The stage's counts are also the reference period of the
// shift signals (Publisher.Shift).
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
	// Publisher is the CloudWatch publisher's configuration (PublisherFor, with
	// the judge's thresholds in Publisher.Judge).
	Publisher cloudwatch.Config
	// Gate, when set, is the shadow-stage gate the shift must pass; its judgement
	// uses the same thresholds, Publisher.Judge (one verdict serves both). Override,
	// when not empty, is the reason to shift although the gate blocks.
	Gate     *deploy.Gate
	Override string
	// ShadowStart is where the shadow stage starts (default: the recording's first
	// prediction); it ends at Schedule.Start.
	ShadowStart time.Time
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
	// GateProgress, when set, sees the shadow gate's answer before the shift.
	GateProgress func(deploy.GateResult)
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
	// Shift is the candidate's shift signals (with a reference), as published.
	Shift *StepShift `json:"shift,omitempty"`
}

// StepShift is what the shift alarms read at one step: the candidate's movement
// since the shadow stage against the baseline's, overall and in the segment where
// it is largest (docs/alarms.md).
type StepShift struct {
	// CandidatePredictions and BaselinePredictions are the live n's
	// (ShiftPredictionCount).
	CandidatePredictions int64 `json:"candidate_predictions"`
	BaselinePredictions  int64 `json:"baseline_predictions"`
	// FlagRateVsBaseline, PSIVsBaseline, SegmentFlagRateShift and
	// SegmentPSIVsBaseline are FlagRateShiftVsBaseline, ScoreShiftPSIVsBaseline,
	// SegmentFlagRateShift and SegmentScoreShiftPSI.
	FlagRateVsBaseline   *float64 `json:"flag_rate_vs_baseline"`
	PSIVsBaseline        *float64 `json:"psi_vs_baseline"`
	SegmentFlagRateShift *float64 `json:"segment_flag_rate_shift"`
	SegmentPSIVsBaseline *float64 `json:"segment_psi_vs_baseline"`
	// FlagRateSegment and ScoreSegment name the segments behind the two segment
	// signals, with the numbers.
	FlagRateSegment string `json:"flag_rate_segment,omitempty"`
	ScoreSegment    string `json:"score_segment,omitempty"`
}

// Result values.
const (
	RolledBack = "rolled_back"
	Completed  = "completed"
	// Blocked: the shadow gate refused the promotion; no shift started.
	Blocked = "blocked_at_shadow_gate"
)

// Outcome is how the rollout would have ended.
type Outcome struct {
	Result string `json:"result"`
	// At is when the rollback was triggered, the rollout completed, or (blocked)
	// the shift would have started.
	At time.Time `json:"at"`
	// ShadowGate is the shadow gate's answer, when the rollout has one.
	ShadowGate *deploy.GateResult `json:"shadow_gate,omitempty"`
	// Alarm and Reason name the alarm that rolled back and why (the first, in spec
	// order, if several were in ALARM).
	Alarm  string `json:"alarm,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Segment names the segment behind a segment alarm that rolled back.
	Segment string    `json:"segment,omitempty"`
	Start   time.Time `json:"shift_start"`
	End     time.Time `json:"planned_end"`
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
	_, dataEnd := rec.Span()
	out := Outcome{Result: Completed, At: s.End(), Start: s.Start, End: s.End(), DataEnd: dataEnd}

	// The shadow stage: the gate, and the reference of the shift signals.
	var ref cloudwatch.Reference
	if r.Gate != nil || r.Publisher.Shift != nil {
		shadowStart := r.ShadowStart
		if shadowStart.IsZero() {
			shadowStart = rec.FirstPrediction()
		}
		stage := ShadowStage{Start: shadowStart, End: s.Start, Join: r.Join, Longest: r.Longest, Rule: r.Rule, Dir: r.Dir}
		snaps, err := stage.Run(ctx, rec)
		if err != nil {
			return Outcome{}, err
		}
		ref = cloudwatch.FixedReference(snaps.Reference)
		if r.Gate != nil {
			j, err := judge.Judge(snaps.Period, r.Gate.Baseline, r.Gate.Candidate, r.Publisher.Judge)
			if err != nil {
				return Outcome{}, fmt.Errorf("rehearsal: shadow gate: %w", err)
			}
			res, err := r.Gate.Admit(j, r.Override)
			out.ShadowGate = &res
			if r.GateProgress != nil {
				r.GateProgress(res)
			}
			switch {
			case errors.Is(err, deploy.ErrGateBlocked):
				out.Result, out.At, out.Reason = Blocked, s.Start, res.Summary()
				return out, nil
			case err != nil:
				return Outcome{}, fmt.Errorf("rehearsal: %w", err)
			}
		}
	}

	// The first evaluation, at the shift start, reads the periods before it and
	// no earlier: the clock starts there (the events before it are applied at
	// the first tick), however long the shadow stage before it was.
	from = later(from, s.Start.Truncate(period).Add(-lookback(r.Alarms, period)).Truncate(interval))
	pub := &Publisher{Config: r.Publisher, Reference: ref, Samples: NewMetricHistory()}
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
		if row, ok := w.Snapshot(span).Row(tally.Key{Variant: r.Candidate}); ok {
			step.CandidatePredictions = row.Counts.Predictions
			step.CandidateLabeledPositives = row.Counts.TP + row.Counts.FN
		}
		if step.Shift, err = r.shiftSignals(now, w, ref); err != nil {
			return time.Time{}, err
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
			switch sh := step.Shift; {
			case sh == nil:
			case strings.HasSuffix(fired.Alarm, string(alarms.KindSegmentFlagRate)):
				out.Segment = sh.FlagRateSegment
			case strings.HasSuffix(fired.Alarm, string(alarms.KindSegmentScoreShift)):
				out.Segment = sh.ScoreSegment
			}
			return time.Time{}, ErrStop
		}
		return time.Time{}, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	return out, nil
}

// shiftSignals are the candidate's shift signals at now, as the publisher computes
// them; nil without a reference or before it ended.
func (r *Rehearsal) shiftSignals(now time.Time, w *window.Windows, ref cloudwatch.Reference) (*StepShift, error) {
	if r.Publisher.Shift == nil || ref == nil {
		return nil, nil
	}
	shifts, err := cloudwatch.Shifts(r.Publisher, w, ref)
	switch {
	case errors.Is(err, cloudwatch.ErrReferencePending):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("rehearsal: shift signals at %s: %w", now.Format(time.RFC3339), err)
	}
	for _, sh := range shifts {
		if sh.Candidate != r.Candidate {
			continue
		}
		out := &StepShift{
			CandidatePredictions: sh.Overall.Candidate.LivePredictions, BaselinePredictions: sh.Overall.Baseline.LivePredictions,
			FlagRateVsBaseline: sh.Overall.FlagRateVsBaseline, PSIVsBaseline: sh.Overall.PSIVsBaseline,
			SegmentFlagRateShift: sh.SegmentFlagRateShift, SegmentPSIVsBaseline: sh.SegmentPSIVsBaseline,
		}
		for _, ss := range sh.Segments {
			if sh.SegmentFlagRateScope != nil && ss.Scope == *sh.SegmentFlagRateScope {
				out.FlagRateSegment = fmt.Sprintf("%s: %s flag rate %s → %s of the shadow stage's, %s %s → %s (fold %.2f shown)",
					ss.Scope, sh.Candidate, pct(ss.Candidate.ReferenceFlagRate), pct(ss.Candidate.LiveFlagRate),
					sh.Baseline, pct(ss.Baseline.ReferenceFlagRate), pct(ss.Baseline.LiveFlagRate), *sh.SegmentFlagRateShift)
			}
			if sh.SegmentPSIScope != nil && ss.Scope == *sh.SegmentPSIScope && ss.Candidate.PSI != nil && ss.Baseline.PSI != nil {
				out.ScoreSegment = fmt.Sprintf("%s: %s score PSI %.3f against the shadow stage, %s %.3f",
					ss.Scope, sh.Candidate, *ss.Candidate.PSI, sh.Baseline, *ss.Baseline.PSI)
			}
		}
		return out, nil
	}
	return nil, nil
}

func pct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100**v)
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
