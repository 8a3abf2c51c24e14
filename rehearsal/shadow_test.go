package rehearsal

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/deploy"
	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/tally"
)

var shadowFrom = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// shadowRecording is rate inferences a second over span from shadowFrom, each
// scored by v5 and v6 (both variants every request, as in a shadow stage), in two
// merchant categories of equal traffic; 12 % of electronics and 3 % of grocery is
// fraud, scored high (mean 0.78) unless v6 is weak there (mean 0.38) from weakFrom
// on (zero: never). Fraud gets a label an hour after its prediction.
func shadowRecording(rate float64, span time.Duration, weakFrom time.Time) *Recording {
	rng := rand.New(rand.NewPCG(9, 0x5ad0))
	rec := &Recording{}
	n := int(rate * span.Seconds())
	for i := range n {
		at := shadowFrom.Add(time.Duration(i) * span / time.Duration(n))
		cat, fraudRate := "grocery", 0.03
		if i%2 == 0 {
			cat, fraudRate = "electronics", 0.12
		}
		fraud := rng.Float64() < fraudRate
		id := fmt.Sprintf("t%d", i)
		for _, v := range []string{"v5", "v6"} {
			mean := 0.18
			if fraud {
				mean = 0.78
				if v == "v6" && cat == "electronics" && !weakFrom.IsZero() && !at.Before(weakFrom) {
					mean = 0.38
				}
			}
			rec.Predictions = append(rec.Predictions, ingest.Prediction{InferenceID: id, Variant: v, Threshold: 0.5, Time: at,
				Score: math.Min(1, math.Max(0, mean+0.14*rng.NormFloat64())), Attributes: map[string]string{"merchant_category": cat}})
		}
		if fraud {
			rec.Labels = append(rec.Labels, ingest.Label{InferenceID: id, Positive: true, Time: at.Add(time.Hour)})
		}
	}
	// Labels in the order they became known.
	for i := 1; i < len(rec.Labels); i++ {
		for j := i; j > 0 && rec.Labels[j].Time.Before(rec.Labels[j-1].Time); j-- {
			rec.Labels[j], rec.Labels[j-1] = rec.Labels[j-1], rec.Labels[j]
		}
	}
	return rec
}

func TestShadowStageSnapshotsAreTheStageAlone(t *testing.T) {
	rec := shadowRecording(2, 3*time.Hour, time.Time{})
	end := shadowFrom.Add(2 * time.Hour)
	snaps, err := ShadowStage{Start: shadowFrom, End: end, Join: labels.Config{SegmentKeys: []string{"merchant_category"}, Bucket: 5 * time.Minute},
		Longest: time.Hour, Dir: t.TempDir()}.Run(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	// Recount from the recording: predictions made in the stage (Period: up to and
	// including its end; Reference: its whole buckets, before the end), and the
	// labels known by the end.
	var period, ref [2]int64
	fraudLabeled := map[string]bool{}
	for _, l := range rec.Labels {
		if !l.Time.After(end) {
			fraudLabeled[l.InferenceID] = true
		}
	}
	var tp int64
	for _, p := range rec.Predictions {
		v := 0
		if p.Variant == "v6" {
			v = 1
		}
		if !p.Time.After(end) {
			period[v]++
			if v == 0 && fraudLabeled[p.InferenceID] && p.Flagged() {
				tp++
			}
		}
		if p.Time.Before(end) {
			ref[v]++
		}
	}
	for i, v := range []string{"v5", "v6"} {
		pr, _ := snaps.Period.Row(tally.Key{Variant: v})
		rr, _ := snaps.Reference.Row(tally.Key{Variant: v})
		if pr.Counts.Predictions != period[i] || rr.Counts.Predictions != ref[i] {
			t.Errorf("%s: period %d and reference %d predictions, recount %d and %d", v, pr.Counts.Predictions, rr.Counts.Predictions, period[i], ref[i])
		}
	}
	if pr, _ := snaps.Period.Row(tally.Key{Variant: "v5"}); pr.Counts.TP != tp {
		t.Errorf("v5 TP %d by the stage's end, recount %d (labels known later must not count)", pr.Counts.TP, tp)
	}
	if !snaps.Period.Period || !snaps.Period.Start.Equal(shadowFrom) || !snaps.Reference.End.Equal(end) {
		t.Errorf("period from %s (period %v), reference to %s", snaps.Period.Start, snaps.Period.Period, snaps.Reference.End)
	}
	if _, ok := snaps.Period.Paired("v5", "v6", "merchant_category", "electronics"); !ok {
		t.Error("the stage's pairs are missing: the gate's judge needs them")
	}
	if _, err := (ShadowStage{Start: end, End: end}).Run(context.Background(), rec); err == nil {
		t.Error("an empty shadow stage must be refused")
	}
}

// shiftAlarms are the shift alarms of an alarm spec over v6 against v5. The
// overall flag-rate alarm waits for a fold of 3: in the two-category recordings
// here electronics is half the traffic, so its regression moves the overall flag
// rate too, and these tests are about the segment alarm naming it.
func shiftAlarms(t *testing.T) []alarms.Alarm {
	t.Helper()
	spec, err := alarms.ParseSpec([]byte(`
name: t
endpoint: e
candidate: {variant: v6}
baseline: {variant: v5}
thresholds: {max_flag_rate_shift: 3, max_segment_flag_rate_shift: 1.5, max_segment_score_shift: 0.25}
`))
	if err != nil {
		t.Fatal(err)
	}
	as, err := alarms.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func gatedRehearsal(t *testing.T, override string) *Rehearsal {
	t.Helper()
	r, err := deploy.ParseRollout([]byte(`
endpoint: e
production: {variant: AllTraffic, model: m5, instance_type: ml.c5.xlarge, instance_count: 2}
candidate: {model: m6, endpoint_config: e6}
shadow: {endpoint_config: e6-shadow, variant: shadow-v6, gate: {baseline: v5, candidate: v6}}
traffic: {type: LINEAR, step: {capacity_percent: 50}, wait_interval: 15m, termination_wait: 15m, max_execution_timeout: 2h}
alarms: {names: [a]}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := cloudwatch.Config{EndpointName: "e", Pairs: []judge.Pair{{Baseline: "v5", Candidate: "v6"}}, Shift: &judge.ShiftConfig{}}
	return &Rehearsal{Schedule: NewSchedule(r, shadowFrom.Add(time.Hour)), Baseline: "v5", Candidate: "v6", Alarms: shiftAlarms(t),
		Publisher: cfg, Gate: r.ShadowGate(), Override: override,
		Join: labels.Config{SegmentKeys: []string{"merchant_category"}, Bucket: 5 * time.Minute}, Longest: time.Hour, Dir: t.TempDir()}
}

func TestRehearsalStopsAtTheShadowGate(t *testing.T) {
	// v6 is weak on electronics from the start: the shadow stage shows it.
	rec := shadowRecording(5, 2*time.Hour, shadowFrom)
	out, err := gatedRehearsal(t, "").Run(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if out.Result != Blocked || out.ShadowGate == nil || !strings.Contains(out.Reason, "merchant_category=electronics max_flag_rate_drop") || len(out.Steps) != 0 {
		t.Fatalf("result %s (%s), %d steps; want blocked at the gate naming electronics and no shift", out.Result, out.Reason, len(out.Steps))
	}
	out, err = gatedRehearsal(t, "testing the alarms").Run(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if out.Result == Blocked || out.ShadowGate.Overridden != "testing the alarms" || len(out.Steps) == 0 {
		t.Errorf("with an override: result %s, overridden %q, %d steps; want the shift rehearsed", out.Result, out.ShadowGate.Overridden, len(out.Steps))
	}
}

func TestShiftAlarmsRollBackARegressionThatStartsWithTheShift(t *testing.T) {
	// v6 scores like v5 in the shadow stage and turns weak on electronics when the
	// shift starts: the gate lets it through and the segment flag-rate alarm rolls
	// it back, naming electronics.
	rec := shadowRecording(5, 2*time.Hour, shadowFrom.Add(time.Hour))
	out, err := gatedRehearsal(t, "").Run(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if !out.ShadowGate.Open {
		t.Fatalf("gate blocked a clean shadow stage: %s", out.ShadowGate.Summary())
	}
	if out.Result != RolledBack || !strings.HasSuffix(out.Alarm, string(alarms.KindSegmentFlagRate)) || !strings.HasPrefix(out.Segment, "merchant_category=electronics") {
		t.Fatalf("result %s by %s in %q; want rolled back by segment-flag-rate-shift in electronics", out.Result, out.Alarm, out.Segment)
	}
	t.Logf("rolled back %s into the shift: %s", out.At.Sub(out.Start), out.Segment)
}

func TestShiftAlarmsLetACleanCandidateThrough(t *testing.T) {
	rec := shadowRecording(5, 2*time.Hour, time.Time{})
	out, err := gatedRehearsal(t, "").Run(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if out.Result != Completed || !out.ShadowGate.Open {
		t.Fatalf("result %s by %s (gate open %v); want completed", out.Result, out.Alarm, out.ShadowGate.Open)
	}
	last := out.Steps[len(out.Steps)-1].Shift
	if last == nil || last.FlagRateVsBaseline == nil || last.SegmentFlagRateShift == nil {
		t.Fatalf("the last step has no shift signals: %+v", last)
	}
}
