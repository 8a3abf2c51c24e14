package alarms

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/cwmetric"
)

// points turns the CloudWatch documentation's notation into an evaluation
// range: "0" a datapoint within the threshold, "X" a breaching one, "-" missing.
func points(t *testing.T, s string) []Point {
	t.Helper()
	var ps []Point
	for _, f := range strings.Fields(s) {
		switch f {
		case "0":
			ps = append(ps, Point{Present: true})
		case "X":
			ps = append(ps, Point{Present: true, Breaching: true})
		case "-":
			ps = append(ps, Point{})
		default:
			t.Fatalf("bad datapoint %q in %q", f, s)
		}
	}
	return ps
}

// The two tables in the CloudWatch User Guide, "How alarm state is evaluated
// when data is missing": 5 datapoints retrieved, oldest first, for each
// TreatMissingData. "keep" is "Retain current state".
func TestDecideFollowsCloudWatchMissingDataTables(t *testing.T) {
	type row struct {
		points                                   string
		missing, ignore, breaching, notBreaching string
	}
	tables := []struct {
		name string
		m, n int
		rows []row
	}{
		{"3 of 3", 3, 3, []row{
			{"0 - X - X", "OK", "OK", "OK", "OK"},
			{"0 - - - -", "OK", "OK", "OK", "OK"},
			{"- - - - -", "INSUFFICIENT_DATA", "keep", "ALARM", "OK"},
			{"0 X X - X", "ALARM", "ALARM", "ALARM", "ALARM"},
			{"- - - - X", "INSUFFICIENT_DATA", "keep", "ALARM", "OK"},
			{"X - - - -", "ALARM", "keep", "ALARM", "OK"},
		}},
		{"2 of 3", 2, 3, []row{
			{"0 - X - X", "ALARM", "ALARM", "ALARM", "ALARM"},
			{"0 0 X 0 X", "ALARM", "ALARM", "ALARM", "ALARM"},
			{"0 - X - -", "OK", "OK", "ALARM", "OK"},
			{"- - - - 0", "OK", "OK", "ALARM", "OK"},
			{"- - - - X", "INSUFFICIENT_DATA", "keep", "ALARM", "OK"},
		}},
	}
	for _, tb := range tables {
		for _, r := range tb.rows {
			for _, c := range []struct{ treat, want string }{
				{MissingMissing, r.missing}, {MissingIgnore, r.ignore},
				{MissingBreaching, r.breaching}, {MissingNotBreaching, r.notBreaching},
			} {
				t.Run(tb.name+"/"+r.points+"/"+c.treat, func(t *testing.T) {
					// Run from both possible previous states so "keep" is
					// distinguishable from a coincidence.
					for _, prev := range []State{StateOK, StateAlarm} {
						want := State(c.want)
						if c.want == "keep" {
							want = prev
						}
						got, reason := decide(points(t, r.points), tb.n, tb.m, c.treat, prev)
						if got != want {
							t.Errorf("from %s: got %s (%s), want %s", prev, got, reason, want)
						}
					}
				})
			}
		}
	}
}

func TestDecideMOfNCases(t *testing.T) {
	cases := []struct {
		name   string
		points string
		m, n   int
		want   State
	}{
		{"breaching datapoints need not be consecutive", "- - X 0 X", 2, 3, StateAlarm},
		{"only the most recent N present datapoints count", "X X 0 0 X", 2, 3, StateOK},
		{"older present datapoints fill in for missing recent ones", "X X - - 0", 2, 3, StateAlarm},
		{"one breach of 1 of 1 alarms", "- - 0 0 X", 1, 1, StateAlarm},
		{"recovery to OK needs only one datapoint within threshold of 3 of 3", "X X X X 0", 3, 3, StateOK},
		{"M of N with every datapoint present", "0 X X X 0", 3, 4, StateAlarm},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := decide(points(t, tc.points), tc.n, tc.m, MissingMissing, StateOK)
			if got != tc.want {
				t.Errorf("got %s (%s), want %s", got, reason, tc.want)
			}
		})
	}
}

func TestExpressionMissingDataSemantics(t *testing.T) {
	present := func(v float64) value { return value{v: v, ok: true, series: true} }
	missing := value{series: true}
	cases := []struct {
		name, expr string
		env        map[string]value
		want       value
	}{
		{"guard passes the value when n is large enough", "IF(n >= 50, v)", map[string]value{"n": present(60), "v": present(0.8)}, present(0.8)},
		{"guard drops the datapoint when n is small", "IF(n >= 50, v)", map[string]value{"n": present(49), "v": present(0.8)}, missing},
		{"guard drops the datapoint when n is missing", "IF(n >= 50, v)", map[string]value{"n": missing, "v": present(0.8)}, missing},
		{"true condition with missing value gives 0 (documented)", "IF(n >= 50, v)", map[string]value{"n": present(60), "v": missing}, present(0)},
		{"false condition uses the third argument", "IF(n >= 50, v, 1)", map[string]value{"n": present(1), "v": present(0.8)}, present(1)},
		{"both guards must pass", "IF((nc >= 50) AND (nb >= 50), (vb - vc) / vb)",
			map[string]value{"nc": present(80), "nb": present(40), "vc": present(0.6), "vb": present(0.8)}, missing},
		{"relative drop", "IF((nc >= 50) AND (nb >= 50), (vb - vc) / vb)",
			map[string]value{"nc": present(80), "nb": present(90), "vc": present(0.6), "vb": present(0.8)}, present(0.25)},
		{"division by zero drops the datapoint", "IF(inv >= 1, err / inv)", map[string]value{"inv": present(0), "err": present(0)}, missing},
		{"missing series operand counts as 0 next to a present one", "a + b", map[string]value{"a": present(2), "b": missing}, present(2)},
		{"missing series next to a scalar stays missing", "a * 100", map[string]value{"a": missing}, missing},
		{"unary minus and precedence", "-a + 2 * 3", map[string]value{"a": present(1)}, present(5)},
		{"FILL keeps a present value", "FILL(a, 0)", map[string]value{"a": present(0.7)}, present(0.7)},
		{"FILL gives a missing value the filler", "FILL(a, -1)", map[string]value{"a": missing}, present(-1)},
		{"two FILLs tell a present 0 from a missing value", "FILL(a, 0) == FILL(a, 1)", map[string]value{"a": present(0)}, present(1)},
		{"two FILLs find a missing value", "FILL(a, 0) == FILL(a, 1)", map[string]value{"a": missing}, present(0)},
		{"a missing comparison next to a present one is false", "(n >= 50) AND (FILL(v, 0) == FILL(v, 1))",
			map[string]value{"n": missing, "v": present(0.5)}, present(0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, err := parseExpr(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			got := x.eval(tc.env)
			if got.ok != tc.want.ok || (got.ok && abs(got.v-tc.want.v) > 1e-9) {
				t.Errorf("%s = %+v, want %+v", tc.expr, got, tc.want)
			}
		})
	}
}

func TestParseExprRejectsUnsupportedInput(t *testing.T) {
	for _, s := range []string{"FILL(m1, REPEAT)", "FILL(m1, m2)", "FILL(m1)", "IF(a)", "a +", "(a", "a b"} {
		if _, err := parseExpr(s); err == nil {
			t.Errorf("parseExpr(%q) succeeded, want error", s)
		}
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// history publishes the candidate's recall and its n every minute for the
// given 5-minute periods (one entry per period, starting at t0).
func history(s *Spec, t0 time.Time, periods []struct{ recall, n float64 }) *Samples {
	src := NewSamples()
	dims := []Dimension{{cwmetric.DimEndpointName, s.Endpoint}, {cwmetric.DimVariantName, s.Candidate.Variant}}
	for i, p := range periods {
		for m := range 5 {
			at := t0.Add(time.Duration(i)*5*time.Minute + time.Duration(m)*time.Minute)
			if p.n >= 0 {
				src.Add(Metric{s.Namespace, cwmetric.LabeledPositives, dims}, at, p.n)
			}
			if p.recall >= 0 {
				src.Add(Metric{s.Namespace, cwmetric.Recall, dims}, at, p.recall)
			}
		}
	}
	return src
}

func recallAlarm(t *testing.T, s *Spec) Alarm {
	t.Helper()
	alarms, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alarms {
		if a.AlarmName == s.AlarmName(KindRecallFloor) {
			return a
		}
	}
	t.Fatal("no recall-floor alarm")
	return Alarm{}
}

func TestEvaluatorRecallFloorOnVerdictHistory(t *testing.T) {
	s := mustSpec(t, "testdata/spec.yaml") // recall floor 0.7, min n 50, 2 of 3, notBreaching
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	type p = struct{ recall, n float64 }
	cases := []struct {
		name    string
		periods []p
		want    State
	}{
		{"low recall on too few labels does not alarm", []p{{0.3, 10}, {0.2, 12}, {0.25, 20}}, StateOK},
		{"low recall on enough labels in 2 of 3 periods alarms", []p{{0.9, 80}, {0.5, 80}, {0.55, 90}}, StateAlarm},
		{"one low period is not enough", []p{{0.9, 80}, {0.9, 80}, {0.5, 90}}, StateOK},
		{"a guarded gap between two low periods still alarms", []p{{0.5, 80}, {0.3, 5}, {0.5, 90}}, StateAlarm},
		{"no history at all is OK under notBreaching", nil, StateOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := &Evaluator{Source: history(s, t0, tc.periods)}
			at := t0.Add(15 * time.Minute)
			j, err := ev.Evaluate(context.Background(), recallAlarm(t, s), at, StateOK)
			if err != nil {
				t.Fatal(err)
			}
			if j.State != tc.want {
				t.Errorf("state %s (%s), want %s", j.State, j.Reason, tc.want)
			}
		})
	}
}

func TestEvaluatorRunReportsTransitions(t *testing.T) {
	s := mustSpec(t, "testdata/spec.yaml")
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	type p = struct{ recall, n float64 }
	src := history(s, t0, []p{{0.9, 80}, {0.9, 80}, {0.5, 80}, {0.5, 80}, {0.9, 80}, {0.9, 80}})
	js, err := (&Evaluator{Source: src}).Run(context.Background(), recallAlarm(t, s), t0.Add(5*time.Minute), t0.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range js {
		got = append(got, j.At.Format("15:04")+" "+string(j.State))
	}
	want := "09:05 OK,09:10 OK,09:15 OK,09:20 ALARM,09:25 ALARM,09:30 OK"
	if strings.Join(got, ",") != want {
		t.Errorf("timeline = %s\nwant       %s", strings.Join(got, ","), want)
	}
}

func TestSamplesStatistics(t *testing.T) {
	src := NewSamples()
	m := Metric{"AWS/SageMaker", cwmetric.ModelLatency, nil}
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := 1; i <= 100; i++ {
		src.Add(m, t0.Add(time.Duration(i)*time.Second), float64(i))
	}
	for stat, want := range map[string]float64{"Average": 50.5, "Sum": 5050, "Minimum": 1, "Maximum": 100, "SampleCount": 100, "p99": 99, "p50": 50} {
		v, ok, err := src.Statistic(context.Background(), m, stat, t0, t0.Add(time.Hour))
		if err != nil || !ok || v != want {
			t.Errorf("%s = %v, %v, %v; want %v", stat, v, ok, err, want)
		}
	}
	if _, ok, _ := src.Statistic(context.Background(), m, "Average", t0.Add(time.Hour), t0.Add(2*time.Hour)); ok {
		t.Error("empty interval reported a value")
	}
}

// shiftPeriod is one 5-minute period of published shift signals: the candidate's
// and the baseline's ShiftPredictionCount and one value of the alarm's metric;
// a negative entry is not published.
type shiftPeriod struct{ nc, nb, v float64 }

// shiftHistory publishes, every minute of each period, the n's and metric (with
// the BaselineVariant dimension) the shift alarms of s read.
func shiftHistory(s *Spec, t0 time.Time, metric string, periods []shiftPeriod) *Samples {
	src := NewSamples()
	cand := []Dimension{{cwmetric.DimEndpointName, s.Endpoint}, {cwmetric.DimVariantName, s.Candidate.Variant}}
	base := []Dimension{{cwmetric.DimEndpointName, s.Endpoint}, {cwmetric.DimVariantName, s.Baseline.Variant}}
	vs := append(slices.Clone(cand), Dimension{cwmetric.DimBaselineVariant, s.Baseline.Variant})
	for i, p := range periods {
		for m := range 5 {
			at := t0.Add(time.Duration(i)*5*time.Minute + time.Duration(m)*time.Minute)
			for _, x := range []struct {
				name string
				dims []Dimension
				v    float64
			}{{cwmetric.ShiftPredictionCount, cand, p.nc}, {cwmetric.ShiftPredictionCount, base, p.nb}, {metric, vs, p.v}} {
				if x.v >= 0 {
					src.Add(Metric{s.Namespace, x.name, x.dims}, at, x.v)
				}
			}
		}
	}
	return src
}

func TestShiftAlarmsOnTheLocalEvaluator(t *testing.T) {
	s := mustSpec(t, "testdata/shift.yaml") // folds 1.5, PSI 0.1 / 0.2, min predictions 1000, 2 of 3, notBreaching
	built, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	alarm := func(k Kind) Alarm {
		for _, a := range built {
			if a.AlarmName == s.AlarmName(k) {
				return a
			}
		}
		t.Fatalf("no %s alarm", k)
		return Alarm{}
	}
	t0 := time.Date(2026, 1, 5, 2, 0, 0, 0, time.UTC)
	type sp = shiftPeriod
	cases := []struct {
		name    string
		kind    Kind
		metric  string
		periods []sp
		want    State
	}{
		{"candidate flagging a third as often alarms", KindFlagRateShift, cwmetric.FlagRateShiftVsBaseline,
			[]sp{{2000, 9000, 1}, {3000, 8000, 0.35}, {4000, 7000, 0.3}}, StateAlarm},
		{"candidate flagging twice as often alarms", KindFlagRateShift, cwmetric.FlagRateShiftVsBaseline,
			[]sp{{2000, 9000, 2}, {3000, 8000, 2.1}, {4000, 7000, 1}}, StateAlarm},
		{"moving with the baseline within the fold is OK", KindFlagRateShift, cwmetric.FlagRateShiftVsBaseline,
			[]sp{{2000, 9000, 0.8}, {3000, 8000, 1.3}, {4000, 7000, 0.7}}, StateOK},
		{"quiet traffic cannot flip it: extreme ratios on 900 predictions", KindFlagRateShift, cwmetric.FlagRateShiftVsBaseline,
			[]sp{{900, 9000, 0.01}, {950, 8000, 0.02}, {999, 7000, 0.05}}, StateOK},
		{"the baseline's n guards too", KindFlagRateShift, cwmetric.FlagRateShiftVsBaseline,
			[]sp{{5000, 500, 0.2}, {5000, 500, 0.2}, {5000, 500, 0.2}}, StateOK},
		{"a ratio left out with its n's present is not a breach", KindFlagRateShift, cwmetric.FlagRateShiftVsBaseline,
			[]sp{{5000, 5000, -1}, {5000, 5000, -1}, {5000, 5000, -1}}, StateOK},
		{"no data at all (no reference, no candidate yet) is OK under notBreaching", KindFlagRateShift, cwmetric.FlagRateShiftVsBaseline,
			nil, StateOK},
		{"one low period between guarded gaps is not enough", KindFlagRateShift, cwmetric.FlagRateShiftVsBaseline,
			[]sp{{500, 9000, 0.2}, {3000, 8000, 0.3}, {500, 7000, 0.2}}, StateOK},
		{"a segment shown to move by a fold of 2 alarms", KindSegmentFlagRate, cwmetric.SegmentFlagRateShift,
			[]sp{{3000, 8000, 1}, {4000, 7000, 1.9}, {5000, 6000, 2.2}}, StateAlarm},
		{"segments not shown to move are OK", KindSegmentFlagRate, cwmetric.SegmentFlagRateShift,
			[]sp{{3000, 8000, 1}, {4000, 7000, 1}, {5000, 6000, 1.2}}, StateOK},
		{"no eligible segment (summary left out) is OK", KindSegmentFlagRate, cwmetric.SegmentFlagRateShift,
			[]sp{{3000, 8000, -1}, {4000, 7000, -1}, {5000, 6000, -1}}, StateOK},
		{"scores moving 0.15 PSI beyond the baseline's alarm", KindScoreShift, cwmetric.ScoreShiftPSIVsBaseline,
			[]sp{{3000, 8000, 0.02}, {4000, 7000, 0.15}, {5000, 6000, 0.16}}, StateAlarm},
		{"a candidate moving less than the baseline (negative) is OK", KindScoreShift, cwmetric.ScoreShiftPSIVsBaseline,
			[]sp{{3000, 8000, -0.3}, {4000, 7000, -0.3}, {5000, 6000, -0.3}}, StateOK},
		{"the worst segment's PSI beyond 0.2 alarms", KindSegmentScoreShift, cwmetric.SegmentScoreShiftPSI,
			[]sp{{3000, 8000, 0.3}, {4000, 7000, 0.31}, {5000, 6000, 0.05}}, StateAlarm},
		{"the worst segment's PSI on quiet traffic does not", KindSegmentScoreShift, cwmetric.SegmentScoreShiftPSI,
			[]sp{{300, 8000, 0.9}, {400, 7000, 0.9}, {500, 6000, 0.9}}, StateOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := &Evaluator{Source: shiftHistory(s, t0, tc.metric, tc.periods)}
			j, err := ev.Evaluate(context.Background(), alarm(tc.kind), t0.Add(15*time.Minute), StateInsufficientData)
			if err != nil {
				t.Fatal(err)
			}
			if j.State != tc.want {
				t.Errorf("%s: state %s (%s), want %s", tc.kind, j.State, j.Reason, tc.want)
			}
		})
	}
}
