package watch

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

const spec = `
name: demo-v6
endpoint: fraud-detector
candidate:
  variant: v6
  sagemaker_variant: AllTraffic
baseline:
  variant: v5
evaluation:
  period: 1m
  evaluation_periods: 3
  datapoints_to_alarm: 2
min_n: 20
thresholds:
  precision_floor: 0.1
  recall_floor: 0.7
  max_precision_drop: 0.5
  max_recall_drop: 0.05
  latency_p99_ms: 40
`

// regressing feeds one minute of traffic per call: v5 catches 45 of 50 labeled
// frauds, v6 20 of them.
func regressing(w *window.Windows, at time.Time) {
	b := at.Unix() / 60 * 60
	w.Observe([]tally.Delta{
		{Key: tally.Key{Variant: "v5"}, Bucket: b, Counts: tally.Counts{Predictions: 1000, Flagged: 60, TP: 45, FP: 15, FN: 5, TN: 935}},
		{Key: tally.Key{Variant: "v6"}, Bucket: b, Counts: tally.Counts{Predictions: 1000, Flagged: 30, TP: 20, FP: 10, FN: 30, TN: 940}},
	})
}

func newWatch(t *testing.T, now *time.Time) (*Watch, *window.Windows) {
	t.Helper()
	return newWatchOf(t, spec, now)
}

// newWatchOf is a watch of the alarm spec yaml over windows of one hour.
func newWatchOf(t *testing.T, yaml string, now *time.Time) (*Watch, *window.Windows) {
	t.Helper()
	s, err := alarms.ParseSpec([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	w := window.New(time.Minute, time.Hour, window.Clock(func() time.Time { return *now }))
	wt, err := New(Config{Spec: s, File: "alarms.yaml", Every: 10 * time.Second, Publisher: cloudwatch.Config{
		Namespace: s.Namespace, EndpointName: s.Endpoint, Window: window.Span(time.Hour),
		Pairs: []judge.Pair{{Baseline: "v5", Candidate: "v6"}},
		Judge: judge.Config{Range: judge.Sliding(window.Span(time.Hour))},
	}}, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	return wt, w
}

func alarmNamed(t *testing.T, st Status, name string) AlarmStatus {
	t.Helper()
	for _, a := range st.Alarms {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no alarm %s in %+v", name, st.Alarms)
	return AlarmStatus{}
}

func TestWatchEvaluatesWhatThePublisherWouldSend(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	wt, w := newWatch(t, &now)
	ctx := context.Background()

	st := wt.Status()
	if st.EvaluatedAt != nil || len(st.Alarms) != 5 {
		t.Fatalf("before the first record: evaluated %v, %d alarms", st.EvaluatedAt, len(st.Alarms))
	}
	if a := alarmNamed(t, st, "verdict-demo-v6-recall-floor"); a.State != "INSUFFICIENT_DATA" {
		t.Errorf("a new alarm is %s, want INSUFFICIENT_DATA", a.State)
	}

	// Four minutes of regressing traffic, recorded every 10 s.
	for range 24 {
		regressing(w, now)
		if err := wt.Record(ctx, now); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Second)
	}
	st = wt.Status()
	floor := alarmNamed(t, st, "verdict-demo-v6-recall-floor")
	if floor.State != "ALARM" || floor.BreachingDatapoints < 2 {
		t.Errorf("recall floor: %s with %d breaching datapoints (%s); want ALARM", floor.State, floor.BreachingDatapoints, floor.Reason)
	}
	if floor.Current == nil || math.Abs(*floor.Current-0.4) > 1e-9 || !floor.CurrentBreaching || floor.IfPeriodEndedNow != "ALARM" {
		t.Errorf("recall floor now: current %v breaching %v, if the period ended now %s; want 0.4, breaching, ALARM",
			floor.Current, floor.CurrentBreaching, floor.IfPeriodEndedNow)
	}
	if floor.Comparison != "<" || floor.Threshold != 0.7 || floor.DatapointsToAlarm != 2 || len(floor.Points) != 5 {
		t.Errorf("definition: %s %v, %d of %d, %d points", floor.Comparison, floor.Threshold, floor.DatapointsToAlarm, floor.EvaluationPeriods, len(floor.Points))
	}
	drop := alarmNamed(t, st, "verdict-demo-v6-recall-drop")
	if drop.State != "ALARM" || drop.Current == nil || *drop.Current < 0.5 {
		t.Errorf("recall drop: %s, current %v; want ALARM at (0.9 - 0.4) / 0.9", drop.State, drop.Current)
	}
	lat := alarmNamed(t, st, "verdict-demo-v6-latency-p99")
	if lat.Local || lat.State != StateNotEvaluated {
		t.Errorf("latency alarm: local %v state %s; SageMaker's metrics are not published by verdict", lat.Local, lat.State)
	}

	rec := httptest.NewRecorder()
	wt.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/alarms", nil))
	var body Status
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 || !body.Configured || body.AlarmSet != "demo-v6" {
		t.Errorf("GET /v1/alarms: %d %v %+v", rec.Code, err, body)
	}
	rec = httptest.NewRecorder()
	wt.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/alarms?state=ALARM", nil))
	if rec.Code != 400 {
		t.Errorf("unknown parameter: %d", rec.Code)
	}
}

func TestWatchGuardKeepsSmallSamplesFromAlarming(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	wt, w := newWatch(t, &now)
	w.Observe([]tally.Delta{
		{Key: tally.Key{Variant: "v6"}, Bucket: now.Unix(), Counts: tally.Counts{Predictions: 100, Flagged: 2, TP: 1, FN: 9, TN: 90}},
	})
	for range 24 {
		if err := wt.Record(context.Background(), now); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Second)
	}
	floor := alarmNamed(t, wt.Status(), "verdict-demo-v6-recall-floor")
	// Recall 0.1 on 10 labeled positives: below min_n 20, every datapoint missing,
	// notBreaching: OK.
	if floor.State != "OK" || floor.Current != nil || floor.BreachingDatapoints != 0 {
		t.Errorf("recall floor on 10 positives: %s, current %v, %d breaching; want OK with no datapoint", floor.State, floor.Current, floor.BreachingDatapoints)
	}
}

func TestUnconfigured(t *testing.T) {
	rec := httptest.NewRecorder()
	Unconfigured().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/alarms", nil))
	var body Status
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Configured || body.Reason == "" || body.Alarms == nil {
		t.Errorf("unconfigured: %s", rec.Body)
	}
}

func TestWatchCarriesTheStateIntoTheNextEvaluation(t *testing.T) {
	// With treat_missing_data ignore, periods without datapoints keep the state the
	// alarm was in: the watch must hand each evaluation the one before's.
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	wt, w := newWatchOf(t, spec+"treat_missing_data:\n  recall-floor: ignore\n", &now)
	for range 24 {
		regressing(w, now)
		if err := wt.Record(context.Background(), now); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Second)
	}
	if a := alarmNamed(t, wt.Status(), "verdict-demo-v6-recall-floor"); a.State != "ALARM" {
		t.Fatalf("after four regressing minutes: %s (%s), want ALARM", a.State, a.Reason)
	}
	// Two hours later the window is empty: every datapoint is missing.
	now = now.Add(2 * time.Hour)
	if err := wt.Record(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	a := alarmNamed(t, wt.Status(), "verdict-demo-v6-recall-floor")
	if a.State != "ALARM" || a.Current != nil {
		t.Errorf("with no datapoints and missing data ignored: %s (%s), current %v; want ALARM kept, no datapoint", a.State, a.Reason, a.Current)
	}
}
