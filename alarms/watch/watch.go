// Package watch evaluates an alarm set live, on this machine: every publish interval
// it records what verdict's CloudWatch publisher would send (the same datums, from
// the same windows) and applies CloudWatch's alarm semantics to that history with
// the local evaluator, so the dashboard and GET /v1/alarms show each rollback
// alarm's state, its datapoints and how close it is to firing — without AWS.
//
// What it cannot see: SageMaker's own endpoint metrics (ModelLatency,
// Invocation5XXErrors), which verdict does not publish; alarms on them are listed
// as not evaluated locally. Its states are what CloudWatch would compute from
// verdict's metrics alone, started when this process started: CloudWatch's own
// alarm history is the authority (verdict alarms status).
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/internal/jsonanswer"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/rehearsal"
	"github.com/verdictml/verdict/window"
)

// StateNotEvaluated is the state of an alarm on metrics verdict does not publish.
const StateNotEvaluated = "NOT_EVALUATED_LOCALLY"

// extraPeriods is how far before its evaluation periods the evaluator reads
// (alarms.Evaluator's default).
const extraPeriods = 2

// Config is what the watch evaluates and on what.
type Config struct {
	// Spec is the alarm set; File the path it was read from (shown, not read).
	Spec *alarms.Spec
	File string
	// Publisher is the CloudWatch publisher's configuration: the same namespace,
	// endpoint, window, variant names, pairs, judge thresholds and top segments as
	// the real one.
	Publisher cloudwatch.Config
	// Reference is the reference period of Publisher.Shift's signals (the shift
	// alarms' reference); required when Publisher.Shift is set.
	Reference cloudwatch.Reference
	// Every is how often a flush is recorded and the alarms evaluated: the
	// publisher's interval. Default cloudwatch.DefaultInterval.
	Every time.Duration
}

// Watch records the would-be CloudWatch metrics and keeps every alarm's state.
type Watch struct {
	cfg     Config
	alarms  []alarms.Alarm
	windows *window.Windows
	log     *slog.Logger
	now     func() time.Time

	mu     sync.Mutex
	pub    *rehearsal.Publisher
	eval   *alarms.Evaluator
	status Status
}

// New builds the alarms of cfg.Spec and a watch over w. log may be nil.
func New(cfg Config, w *window.Windows, log *slog.Logger) (*Watch, error) {
	if cfg.Spec == nil {
		return nil, errors.New("watch: no alarm spec")
	}
	built, err := alarms.Build(cfg.Spec)
	if err != nil {
		return nil, err
	}
	if err := cfg.Publisher.Validate(); err != nil {
		return nil, fmt.Errorf("watch: publisher configuration: %w", err)
	}
	if cfg.Publisher.Shift != nil && cfg.Reference == nil {
		return nil, errors.New("watch: shift signals need a Reference")
	}
	if cfg.Every <= 0 {
		cfg.Every = cloudwatch.DefaultInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	history := rehearsal.NewMetricHistory()
	wt := &Watch{
		cfg: cfg, alarms: built, windows: w, log: log, now: time.Now,
		pub:  &rehearsal.Publisher{Config: cfg.Publisher, Reference: cfg.Reference, Samples: history},
		eval: &alarms.Evaluator{Source: history, ExtraPeriods: extraPeriods},
	}
	wt.status = wt.baseStatus()
	return wt, nil
}

// Run records and evaluates every cfg.Every until ctx ends.
func (wt *Watch) Run(ctx context.Context) error {
	t := time.NewTicker(wt.cfg.Every)
	defer t.Stop()
	for {
		if err := wt.Record(ctx, wt.now()); err != nil {
			wt.log.Warn("alarm watch: record and evaluate", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Record adds one flush of the publisher's metrics at now to the history and
// evaluates every alarm at now.
func (wt *Watch) Record(ctx context.Context, now time.Time) error {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if err := wt.pub.Publish(now, wt.windows); err != nil {
		return err
	}
	period := wt.cfg.Spec.Evaluation.Period
	keep := time.Duration(wt.cfg.Spec.Evaluation.EvaluationPeriods+extraPeriods+2) * period
	wt.pub.Samples.DropBefore(now.Add(-keep))
	st := wt.baseStatus()
	at := now.UTC()
	st.EvaluatedAt = &at
	for i, a := range wt.alarms {
		out := &st.Alarms[i]
		if !out.Local {
			continue
		}
		// The state it was in: the last evaluation's, INSUFFICIENT_DATA (a new
		// alarm's, from baseStatus) before the first.
		prev := alarms.State(wt.status.Alarms[i].State)
		j, err := wt.eval.Evaluate(ctx, a, now, prev)
		if err != nil {
			return err
		}
		out.State, out.Reason = string(j.State), j.Reason
		out.Points = pointsOf(j.Points)
		n := a.EvaluationPeriods
		for k, p := range j.Points {
			if k >= len(j.Points)-int(n) && p.Breaching {
				out.BreachingDatapoints++
			}
		}
		// The current, incomplete period as if it ended now.
		pj, err := wt.eval.Evaluate(ctx, a, now.Truncate(period).Add(period), j.State)
		if err != nil {
			return err
		}
		out.IfPeriodEndedNow, out.IfPeriodEndedNowReason = string(pj.State), pj.Reason
		if last := pj.Points[len(pj.Points)-1]; last.Present {
			v := last.Value
			out.Current = &v
			out.CurrentBreaching = last.Breaching
		}
	}
	wt.status = st
	return nil
}

// Status is the body of GET /v1/alarms.
type Status struct {
	// Configured is false when no alarm spec is set (VERDICT_ALARM_SPEC); Reason
	// then says so and nothing else is set.
	Configured bool   `json:"configured"`
	Reason     string `json:"reason,omitempty"`
	AlarmSet   string `json:"alarm_set,omitempty"`
	File       string `json:"file,omitempty"`
	Endpoint   string `json:"endpoint,omitempty"`
	Candidate  string `json:"candidate,omitempty"`
	Baseline   string `json:"baseline,omitempty"`
	// EvaluatedAt is the last evaluation (null before the first).
	EvaluatedAt *time.Time `json:"evaluated_at"`
	// RecordedEvery is how often the publisher's values are recorded; Period the
	// alarms' period; Window the span each published value is computed over.
	RecordedEvery string        `json:"recorded_every,omitempty"`
	Period        string        `json:"period,omitempty"`
	Window        string        `json:"window,omitempty"`
	Alarms        []AlarmStatus `json:"alarms"`
	Note          string        `json:"note,omitempty"`
}

// AlarmStatus is one alarm's state as the local evaluator sees it.
type AlarmStatus struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Local is false for alarms on SageMaker's own metrics (not published by
	// verdict); their State is NOT_EVALUATED_LOCALLY.
	Local bool `json:"evaluated_locally"`
	// State is OK, ALARM or INSUFFICIENT_DATA over the complete periods so far;
	// Reason is the evaluator's explanation.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Comparison is <, <=, > or >=; the alarm breaches when value Comparison
	// Threshold.
	Comparison        string  `json:"comparison"`
	Threshold         float64 `json:"threshold"`
	EvaluationPeriods int     `json:"evaluation_periods"`
	DatapointsToAlarm int     `json:"datapoints_to_alarm"`
	TreatMissingData  string  `json:"treat_missing_data"`
	// Points is the evaluation range, oldest first.
	Points []Point `json:"points"`
	// BreachingDatapoints counts breaching datapoints among the last
	// EvaluationPeriods: the alarm fires at DatapointsToAlarm.
	BreachingDatapoints int `json:"breaching_datapoints"`
	// Current is the value of the period in progress so far (null: no datapoint,
	// e.g. the minimum-n guard withholds it); IfPeriodEndedNow is the state the
	// alarm would take if that period closed now.
	Current                *float64 `json:"current"`
	CurrentBreaching       bool     `json:"current_breaching"`
	IfPeriodEndedNow       string   `json:"if_period_ended_now,omitempty"`
	IfPeriodEndedNowReason string   `json:"if_period_ended_now_reason,omitempty"`
}

// Point is one period's datapoint; Value is null when missing.
type Point struct {
	Start     time.Time `json:"start"`
	Value     *float64  `json:"value"`
	Breaching bool      `json:"breaching"`
}

func pointsOf(ps []alarms.Point) []Point {
	out := make([]Point, len(ps))
	for i, p := range ps {
		out[i] = Point{Start: p.Start.UTC(), Breaching: p.Breaching}
		if p.Present {
			v := p.Value
			out[i].Value = &v
		}
	}
	return out
}

// baseStatus is the status before any evaluation: every alarm with its
// definition, local ones in INSUFFICIENT_DATA.
func (wt *Watch) baseStatus() Status {
	s := wt.cfg.Spec
	st := Status{
		Configured: true, AlarmSet: s.Name, File: wt.cfg.File, Endpoint: s.Endpoint,
		Candidate: s.Candidate.Variant, Baseline: s.Baseline.Variant,
		RecordedEvery: window.Span(wt.cfg.Every).String(), Period: window.Span(s.Evaluation.Period).String(),
		Window: wt.cfg.Publisher.Window.String(), Alarms: make([]AlarmStatus, 0, len(wt.alarms)),
		Note: "evaluated on this machine, with CloudWatch's semantics, over what the CloudWatch publisher would send since verdict started; CloudWatch's own states are the authority (verdict alarms status)",
	}
	if wt.cfg.Publisher.Window == 0 {
		st.Window = cloudwatch.DefaultWindow.String()
	}
	for _, a := range wt.alarms {
		as := AlarmStatus{
			Name: a.AlarmName, Description: a.AlarmDescription, Local: !onSageMaker(a),
			State: string(alarms.StateInsufficientData), Comparison: alarms.ComparisonSymbol(a.ComparisonOperator), Threshold: a.Threshold,
			EvaluationPeriods: int(a.EvaluationPeriods), DatapointsToAlarm: int(a.DatapointsToAlarm), TreatMissingData: a.TreatMissingData,
			Points: []Point{},
		}
		if !as.Local {
			as.State = StateNotEvaluated
			as.Reason = "reads SageMaker's own endpoint metrics, which verdict does not publish: see it in CloudWatch"
		}
		st.Alarms = append(st.Alarms, as)
	}
	return st
}

// onSageMaker reports whether the alarm reads SageMaker's namespace.
func onSageMaker(a alarms.Alarm) bool {
	if a.Namespace == cwmetric.SageMakerNamespace {
		return true
	}
	for _, q := range a.Metrics {
		if q.MetricStat != nil && q.MetricStat.Metric.Namespace == cwmetric.SageMakerNamespace {
			return true
		}
	}
	return false
}

// Status returns the latest evaluation.
func (wt *Watch) Status() Status {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	return wt.status
}

// ServeHTTP serves GET /v1/alarms.
func (wt *Watch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serve(w, r, wt.Status())
}

// Unconfigured serves GET /v1/alarms when no alarm spec is set.
func Unconfigured() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, Status{Configured: false, Alarms: []AlarmStatus{},
			Reason: "no alarm spec: set VERDICT_ALARM_SPEC to a spec file (docs/alarms.md) to see its alarms evaluated here"})
	})
}

func serve(w http.ResponseWriter, r *http.Request, st Status) {
	if jsonanswer.OnlyGet(w, r) {
		jsonanswer.Write(w, r, http.StatusOK, st)
	}
}
