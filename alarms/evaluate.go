package alarms

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// State is an alarm state.
type State string

// Alarm states.
const (
	StateOK               State = "OK"
	StateAlarm            State = "ALARM"
	StateInsufficientData State = "INSUFFICIENT_DATA"
)

// Point is one period's datapoint in an evaluation.
type Point struct {
	Start     time.Time
	Value     float64
	Present   bool
	Breaching bool
}

// Assessment is an alarm's state at one evaluation and why (named apart from
// judge.Judgement, the gate's decision).
type Assessment struct {
	Alarm  string
	At     time.Time
	State  State
	Reason string
	// Points is the evaluation range, oldest first.
	Points []Point
}

// Evaluator applies CloudWatch's alarm semantics to a metric history: periods
// aligned to the period length, an evaluation range a little longer than
// EvaluationPeriods, M of N datapoints, and TreatMissingData, as documented in
// the CloudWatch User Guide ("How alarm state is evaluated when data is
// missing"). docs/alarms.md lists the rules.
type Evaluator struct {
	Source MetricSource
	// ExtraPeriods is how many periods before the last EvaluationPeriods the
	// evaluation range reaches back. CloudWatch does not publish the number
	// (its documented example retrieves 5 datapoints for 3 evaluation periods);
	// 0 means 2.
	ExtraPeriods int
}

// Evaluate judges the alarm at time at, given the state it was in (used by
// TreatMissingData ignore). Only complete periods ending at or before at count.
func (e *Evaluator) Evaluate(ctx context.Context, a Alarm, at time.Time, prev State) (Assessment, error) {
	period := alarmPeriod(a)
	if period <= 0 {
		return Assessment{}, fmt.Errorf("alarms: evaluate %s: no period", a.AlarmName)
	}
	extra := e.ExtraPeriods
	if extra <= 0 {
		extra = 2
	}
	n := int(a.EvaluationPeriods)
	rangeLen := n + extra
	end := at.Truncate(period)
	points := make([]Point, rangeLen)
	for i := range points {
		start := end.Add(-time.Duration(rangeLen-i) * period)
		v, ok, err := e.datapoint(ctx, a, start, start.Add(period))
		if err != nil {
			return Assessment{}, fmt.Errorf("alarms: evaluate %s at %s: %w", a.AlarmName, start.Format(time.RFC3339), err)
		}
		points[i] = Point{Start: start, Value: v, Present: ok, Breaching: ok && breaches(a.ComparisonOperator, v, a.Threshold)}
	}
	state, reason := decide(points, n, int(a.DatapointsToAlarm), a.TreatMissingData, prev)
	return Assessment{Alarm: a.AlarmName, At: at, State: state, Reason: reason + " " + describeCondition(a), Points: points}, nil
}

// alarmPeriod is the alarm's period: its own, or its metrics' (CloudWatch
// requires every metric of a math alarm to use the same period).
func alarmPeriod(a Alarm) time.Duration {
	for _, q := range a.Metrics {
		if q.MetricStat != nil {
			return time.Duration(q.MetricStat.Period) * time.Second
		}
	}
	return time.Duration(a.Period) * time.Second
}

// Run evaluates the alarm once per period from from to to, starting in
// INSUFFICIENT_DATA as a new alarm does, and returns every assessment: the
// timeline a rehearsal or backtest reads.
func (e *Evaluator) Run(ctx context.Context, a Alarm, from, to time.Time) ([]Assessment, error) {
	period := alarmPeriod(a)
	if period <= 0 {
		return nil, fmt.Errorf("alarms: run %s: no period", a.AlarmName)
	}
	state := StateInsufficientData
	var out []Assessment
	for at := from.Truncate(period); !at.After(to); at = at.Add(period) {
		j, err := e.Evaluate(ctx, a, at, state)
		if err != nil {
			return nil, err
		}
		state = j.State
		out = append(out, j)
	}
	return out, nil
}

// datapoint computes the alarm's value for one period: the metric's statistic,
// or the returned expression over the queries' statistics.
func (e *Evaluator) datapoint(ctx context.Context, a Alarm, start, end time.Time) (float64, bool, error) {
	if a.MetricName != "" {
		stat := a.Statistic
		if a.ExtendedStatistic != "" {
			stat = a.ExtendedStatistic
		}
		return e.Source.Statistic(ctx, Metric{a.Namespace, a.MetricName, a.Dimensions}, stat, start, end)
	}
	env := map[string]value{}
	var result *Query
	for i, q := range a.Metrics {
		if q.MetricStat != nil {
			v, ok, err := e.Source.Statistic(ctx, q.MetricStat.Metric, q.MetricStat.Stat, start, end)
			if err != nil {
				return 0, false, err
			}
			env[q.ID] = value{v: v, ok: ok, series: true}
		}
		if q.ReturnData {
			result = &a.Metrics[i]
		}
	}
	if result == nil {
		return 0, false, fmt.Errorf("no query returns data")
	}
	v, err := e.evalQuery(a, result.ID, env, 0)
	return v.v, v.ok, err
}

func (e *Evaluator) evalQuery(a Alarm, id string, env map[string]value, depth int) (value, error) {
	if v, ok := env[id]; ok {
		return v, nil
	}
	if depth > len(a.Metrics) {
		return value{}, fmt.Errorf("expression %s refers to itself", id)
	}
	for _, q := range a.Metrics {
		if q.ID != id || q.Expression == "" {
			continue
		}
		x, err := parseExpr(q.Expression)
		if err != nil {
			return value{}, err
		}
		for _, ref := range exprIDs(x) {
			if _, ok := env[ref]; ok {
				continue
			}
			v, err := e.evalQuery(a, ref, env, depth+1)
			if err != nil {
				return value{}, err
			}
			env[ref] = v
		}
		v := x.eval(env)
		env[id] = v
		return v, nil
	}
	return value{}, fmt.Errorf("unknown query id %q", id)
}

func breaches(op string, v, threshold float64) bool {
	switch op {
	case LessThanThreshold:
		return v < threshold
	case LessThanOrEqualToThreshold:
		return v <= threshold
	case GreaterThanThreshold:
		return v > threshold
	case GreaterThanOrEqualToThreshold:
		return v >= threshold
	}
	return false
}

// decide applies CloudWatch's rules to an evaluation range (oldest first) for
// an M (datapointsToAlarm) of N (evaluationPeriods) alarm:
//
//   - No datapoint in the range: missing -> INSUFFICIENT_DATA, ignore -> keep
//     the state, breaching -> ALARM, notBreaching -> OK.
//   - At least N present datapoints: the most recent N decide, whatever the
//     missing-data treatment: ALARM when at least M breach, else OK.
//   - Fewer than N: breaching / notBreaching fill the N-k gaps (as few as
//     possible) and the N values decide as above. missing / ignore judge the
//     present datapoints: ALARM when at least M breach; OK when any does not
//     breach; otherwise (all present ones breach, fewer than M) missing goes to
//     ALARM if the oldest breaching datapoint is at least M periods old and to
//     INSUFFICIENT_DATA if not, and ignore keeps the state.
func decide(points []Point, n, m int, treat string, prev State) (State, string) {
	if m <= 0 {
		m = n
	}
	if treat == "" {
		treat = MissingMissing
	}
	var present []Point
	for _, p := range points {
		if p.Present {
			present = append(present, p)
		}
	}
	count := func(ps []Point) int {
		c := 0
		for _, p := range ps {
			if p.Breaching {
				c++
			}
		}
		return c
	}
	verdict := func(breaching, of int, filled string) (State, string) {
		s := fmt.Sprintf("%d of the last %d datapoints breaching", breaching, of)
		if filled != "" {
			s += filled
		}
		if breaching >= m {
			return StateAlarm, fmt.Sprintf("Threshold crossed: %s (need %d).", s, m)
		}
		return StateOK, fmt.Sprintf("%s (need %d).", upperFirst(s), m)
	}
	k := len(present)
	switch {
	case k == 0:
		msg := fmt.Sprintf("No datapoints in the %d-period evaluation range, treated as %s.", len(points), treat)
		switch treat {
		case MissingBreaching:
			return StateAlarm, msg
		case MissingNotBreaching:
			return StateOK, msg
		case MissingIgnore:
			return prev, msg + " State kept."
		default:
			return StateInsufficientData, msg
		}
	case k >= n:
		return verdict(count(present[k-n:]), n, "")
	}
	b := count(present)
	switch treat {
	case MissingBreaching:
		return verdict(b+n-k, n, fmt.Sprintf(", %d missing filled as breaching", n-k))
	case MissingNotBreaching:
		return verdict(b, n, fmt.Sprintf(", %d missing filled as not breaching", n-k))
	}
	if b >= m {
		return verdict(b, k, fmt.Sprintf(" (only %d present)", k))
	}
	if b < k {
		return verdict(b, k, fmt.Sprintf(" (only %d present)", k))
	}
	// Every present datapoint breaches, but fewer than M of them.
	age := 0
	for i, p := range points {
		if p.Breaching {
			age = len(points) - i
			break
		}
	}
	if treat == MissingIgnore {
		return prev, fmt.Sprintf("Only %d present datapoint(s), all breaching, fewer than %d; missing data ignored, state kept.", k, m)
	}
	if age >= m {
		return StateAlarm, fmt.Sprintf("Threshold crossed: the oldest breaching datapoint is %d periods old (>= %d) and no present datapoint is within the threshold.", age, m)
	}
	return StateInsufficientData, fmt.Sprintf("Only %d present datapoint(s), all breaching, fewer than %d and too recent to judge.", k, m)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func describeCondition(a Alarm) string {
	return fmt.Sprintf("[breaching: value %s %s; missing data: %s]", ComparisonSymbol(a.ComparisonOperator), fmtFloat(a.Threshold), a.TreatMissingData)
}
