package alarms

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// published is what one flush period holds: a metric's value per query id of the
// alarm, nothing for an id left out (not published, or lost with its request).
type published map[string]float64

// datapoint evaluates one period of alarm a over the published values, the way the
// local evaluator does for CloudWatch: "-" for a missing datapoint, else the value.
func datapoint(t *testing.T, a Alarm, pub published) string {
	t.Helper()
	src := NewSamples()
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for _, q := range a.Metrics {
		if q.MetricStat == nil {
			continue
		}
		if v, ok := pub[q.ID]; ok {
			for m := range 5 { // one flush a minute
				src.Add(q.MetricStat.Metric, t0.Add(time.Duration(m)*time.Minute), v)
			}
		}
	}
	v, ok, err := (&Evaluator{Source: src}).datapoint(context.Background(), a, t0, t0.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.4g", v)
}

// withExpression is a with its returned expression replaced: the expression the
// alarm had before the presence guard, to show what changed.
func withExpression(a Alarm, expr string) Alarm {
	a.Metrics = slices.Clone(a.Metrics)
	for i := range a.Metrics {
		if a.Metrics[i].ReturnData {
			a.Metrics[i].Expression = expr
		}
	}
	return a
}

func builtAlarm(t *testing.T, path string, k Kind) Alarm {
	t.Helper()
	s := mustSpec(t, path)
	all, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		if a.AlarmName == s.AlarmName(k) {
			return a
		}
	}
	t.Fatalf("%s has no %s alarm", path, k)
	return Alarm{}
}

// missingCase is one row of a missing-data table: what one period published, the
// datapoint the alarm sees, and the one it saw before the presence guard ("" where
// the table has no before).
type missingCase struct {
	name       string
	pub        published
	want, then string
}

// checkMissingData runs a missing-data table against alarm a and, when it is not
// nil, against before: a with the expression it had before the presence guard.
func checkMissingData(t *testing.T, prefix string, a Alarm, before *Alarm, cases []missingCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(prefix+tc.name, func(t *testing.T) {
			if got := datapoint(t, a, tc.pub); got != tc.want {
				t.Errorf("datapoint %s, want %s", got, tc.want)
			}
			if before == nil {
				return
			}
			if got := datapoint(t, *before, tc.pub); got != tc.then {
				t.Errorf("before the presence guard: datapoint %s, want %s", got, tc.then)
			}
		})
	}
}

// The drop alarms' missing-data table (docs/alarms.md, "What each missing-data case
// evaluates to"): min_n 50, max_recall_drop 0.05. nc, nb = LabeledPositives of the
// candidate and the baseline, vc, vb = their Recall. "before" is the datapoint of
// the expression without the presence guard, IF((nc >= 50) AND (nb >= 50), (vb -
// vc) / vb): a candidate value lost while its n arrived was a drop of 1, a breach.
func TestDropAlarmMissingDataTable(t *testing.T) {
	a := builtAlarm(t, "testdata/spec.yaml", KindRecallDrop)
	before := withExpression(a, "IF((nc >= 50) AND (nb >= 50), (vb - vc) / vb)")
	cases := []missingCase{
		{"everything present", published{"nc": 80, "nb": 90, "vc": 0.6, "vb": 0.8}, "0.25", "0.25"},
		{"candidate better: a negative drop", published{"nc": 80, "nb": 90, "vc": 0.9, "vb": 0.8}, "-0.125", "-0.125"},
		{"candidate recall 0 is a real drop of 1", published{"nc": 80, "nb": 90, "vc": 0, "vb": 0.8}, "1", "1"},
		{"candidate recall missing, its n present", published{"nc": 80, "nb": 90, "vb": 0.8}, "-", "1"},
		{"baseline recall missing, its n present", published{"nc": 80, "nb": 90, "vc": 0.6}, "-", "0"},
		{"both recalls missing, n's present", published{"nc": 80, "nb": 90}, "-", "0"},
		{"baseline recall 0", published{"nc": 80, "nb": 90, "vc": 0.6, "vb": 0}, "-", "0"},
		{"both recalls 0", published{"nc": 80, "nb": 90, "vc": 0, "vb": 0}, "-", "0"},
		{"candidate n one below min_n", published{"nc": 49, "nb": 90, "vc": 0.1, "vb": 0.8}, "-", "-"},
		{"candidate n at min_n", published{"nc": 50, "nb": 90, "vc": 0.1, "vb": 0.8}, "0.875", "0.875"},
		{"baseline n one below min_n", published{"nc": 80, "nb": 49, "vc": 0.1, "vb": 0.8}, "-", "-"},
		{"candidate n missing (not serving yet)", published{"nb": 90, "vc": 0.1, "vb": 0.8}, "-", "-"},
		{"baseline n missing", published{"nc": 80, "vc": 0.1, "vb": 0.8}, "-", "-"},
		{"candidate's n and recall both lost", published{"nb": 90, "vb": 0.8}, "-", "-"},
		{"nothing published", published{}, "-", "-"},
	}
	checkMissingData(t, "", a, &before, cases)
}

// The floor alarms' missing-data table: precision_floor 0.8, min_n 50.
func TestFloorAlarmMissingDataTable(t *testing.T) {
	a := builtAlarm(t, "testdata/spec.yaml", KindPrecisionFloor)
	before := withExpression(a, "IF(n >= 50, v)")
	cases := []missingCase{
		{"value and n present", published{"n": 60, "v": 0.7}, "0.7", "0.7"},
		{"value 0 is a real breach", published{"n": 60, "v": 0}, "0", "0"},
		{"value missing, n present", published{"n": 60}, "-", "0"},
		{"n one below min_n", published{"n": 49, "v": 0.1}, "-", "-"},
		{"n at min_n", published{"n": 50, "v": 0.1}, "0.1", "0.1"},
		{"n missing", published{"v": 0.1}, "-", "-"},
		{"nothing published", published{}, "-", "-"},
	}
	checkMissingData(t, "", a, &before, cases)
}

// The shift alarms' missing-data table: min_predictions 1000. r is the value the
// kind reads (FlagRateShiftVsBaseline, SegmentFlagRateShift, ScoreShiftPSIVsBaseline,
// SegmentScoreShiftPSI).
func TestShiftAlarmMissingDataTable(t *testing.T) {
	for _, k := range []Kind{KindFlagRateShift, KindSegmentFlagRate, KindScoreShift, KindSegmentScoreShift} {
		a := builtAlarm(t, "testdata/shift.yaml", k)
		id := a.Metrics[2].ID // nc, nb, then the value
		v := func(x float64) published { return published{"nc": 5000, "nb": 5000, id: x} }
		cases := []missingCase{
			{"value missing, n's present", published{"nc": 5000, "nb": 5000}, "-", ""},
			{"candidate n one below min_predictions", published{"nc": 999, "nb": 5000, id: 2}, "-", ""},
			{"candidate n at min_predictions", published{"nc": 1000, "nb": 5000, id: 2}, "2", ""},
			{"baseline n one below min_predictions", published{"nc": 5000, "nb": 999, id: 2}, "-", ""},
			{"baseline n missing", published{"nc": 5000, id: 2}, "-", ""},
			{"nothing published", published{}, "-", ""},
			{"value present", v(2), "2", ""},
		}
		if k == KindFlagRateShift {
			cases = append(cases, missingCase{"a ratio below 1 is folded", v(0.25), "4", ""})
		}
		checkMissingData(t, string(k)+"/", a, nil, cases)
	}
}

// Every value-reading math alarm guards on its value's presence, so a lost value
// can never turn into IF's 0 for a true condition.
func TestEveryGuardedValueIsCheckedForPresence(t *testing.T) {
	for _, gs := range goldenSpecs {
		all, err := Build(mustSpec(t, gs.path))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range all {
			for _, q := range a.Metrics {
				if !q.ReturnData || !strings.HasPrefix(q.Expression, "IF(") || strings.Contains(q.Expression, "inv >=") {
					continue
				}
				if !strings.Contains(q.Expression, "FILL(") {
					t.Errorf("%s: %s has no presence guard", a.AlarmName, q.Expression)
				}
			}
		}
	}
}
