package cloudwatch

import (
	"math"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/internal/golden"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// shiftNow is when the shift tests flush: an hour into a shift that followed a
// two-hour shadow stage (06:00 to 08:00).
var (
	shiftNow   = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	shadowFrom = shiftNow.Add(-3 * time.Hour)
	shiftStart = shiftNow.Add(-time.Hour)
)

// flagged is a series' counts without labels: n predictions, f of them flagged,
// the flagged ones in the top score bin, the others in the bottom one.
func flagged(n, f int64) tally.Counts {
	c := tally.Counts{Predictions: n, Flagged: f}
	c.Bins[tally.ScoreBins-1], c.Bins[0] = f, n-f
	return c
}

// shiftWindows are windows on the test clock holding a shadow stage (both variants
// scored the same 30,000 requests) and an hour of shift (the candidate serving a
// quarter), with the candidate's flag rate in travel falling from 16 % to 6 %.
func shiftWindows() *window.Windows {
	w := window.New(5*time.Minute, 24*time.Hour, window.Clock(func() time.Time { return shiftNow }))
	ref, live := shadowFrom.Unix(), shiftStart.Unix()
	mc := func(variant, segment string) tally.Key {
		return tally.Key{Variant: variant, SegmentKey: "merchant_category", Segment: segment}
	}
	w.Observe([]tally.Delta{
		// Shadow stage.
		{Key: tally.Key{Variant: "fraud-v4"}, Bucket: ref, Counts: flagged(30000, 1500)},
		{Key: tally.Key{Variant: "fraud-v5"}, Bucket: ref, Counts: flagged(30000, 1500)},
		{Key: mc("fraud-v4", "travel"), Bucket: ref, Counts: flagged(10000, 1600)},
		{Key: mc("fraud-v5", "travel"), Bucket: ref, Counts: flagged(10000, 1600)},
		{Key: mc("fraud-v4", "grocery"), Bucket: ref, Counts: flagged(20000, 600)},
		{Key: mc("fraud-v5", "grocery"), Bucket: ref, Counts: flagged(20000, 600)},
		// Shift: the baseline serves three quarters.
		{Key: tally.Key{Variant: "fraud-v4"}, Bucket: live, Counts: flagged(12000, 600)},
		{Key: tally.Key{Variant: "fraud-v5"}, Bucket: live, Counts: flagged(4000, 150)},
		{Key: mc("fraud-v4", "travel"), Bucket: live, Counts: flagged(4500, 720)},
		{Key: mc("fraud-v5", "travel"), Bucket: live, Counts: flagged(1500, 90)},
		{Key: mc("fraud-v4", "grocery"), Bucket: live, Counts: flagged(7500, 225)},
		{Key: mc("fraud-v5", "grocery"), Bucket: live, Counts: flagged(2500, 60)},
	})
	return w
}

func shiftConfig() Config {
	return Config{
		EndpointName: "fraud-detector", Window: window.Span(2 * time.Hour),
		Pairs:       []judge.Pair{{Baseline: "fraud-v4", Candidate: "fraud-v5"}},
		TopSegments: map[string]int{"merchant_category": 1},
		Shift:       &judge.ShiftConfig{},
	}
}

func storedReference(w *window.Windows, now time.Time) StoredReference {
	return StoredReference{Ranges: w, Since: shadowFrom, Until: shiftStart, Now: func() time.Time { return now }}
}

func TestShiftSignalsAgainstTheStoredReference(t *testing.T) {
	w := shiftWindows()
	got, err := FlushDatums(shiftConfig(), w, storedReference(w, shiftNow), shiftNow)
	if err != nil {
		t.Fatal(err)
	}
	v4 := dims("EndpointName=fraud-detector", "VariantName=fraud-v4")
	v5 := dims("EndpointName=fraud-detector", "VariantName=fraud-v5")
	vs := dims("EndpointName=fraud-detector", "VariantName=fraud-v5", "BaselineVariant=fraud-v4")
	seg := func(d map[string]string, segment string) map[string]string {
		out := dims("SegmentKey=merchant_category", "Segment="+segment)
		for k, v := range d {
			out[k] = v
		}
		return out
	}
	// Recounted from the deltas above. The 2h window reaches back into the shadow
	// stage; the live range starts where it ended, so the n's are the shift's alone.
	rate := func(x, n float64) float64 { return (x + 0.5) / (n + 1) }
	psi := func(refShare, liveShare float64) float64 {
		return (liveShare-refShare)*math.Log(liveShare/refShare) + (refShare-liveShare)*math.Log((1-liveShare)/(1-refShare))
	}
	want := []struct {
		metric string
		dims   map[string]string
		value  float64
		unit   types.StandardUnit
	}{
		{cwmetric.ShiftPredictionCount, v4, 12000, types.StandardUnitCount},
		{cwmetric.ShiftPredictionCount, v5, 4000, types.StandardUnitCount},
		{cwmetric.FlagRateShiftRatio, v4, 1, types.StandardUnitNone}, // 5 % live and in the reference
		{cwmetric.FlagRateShiftRatio, v5, 0.0375 / 0.05, types.StandardUnitNone},
		{cwmetric.ScoreShiftPSI, v5, psi(0.05, 0.0375), types.StandardUnitNone},
		{cwmetric.FlagRateShiftVsBaseline, vs, rate(150, 4000) / rate(1500, 30000) / (rate(600, 12000) / rate(1500, 30000)), types.StandardUnitNone},
		{cwmetric.ScoreShiftPSIVsBaseline, vs, psi(0.05, 0.0375), types.StandardUnitNone},
		// grocery is the top segment: 10,000 predictions in the window against
		// travel's 6,000 (the window starts after the shadow stage's bucket).
		{cwmetric.ShiftPredictionCount, seg(v5, "grocery"), 2500, types.StandardUnitCount},
		{cwmetric.FlagRateShiftRatio, seg(v4, "grocery"), 1, types.StandardUnitNone}, // 3 % on both sides
		{cwmetric.FlagRateShiftRatio, seg(v5, "grocery"), 0.024 / 0.03, types.StandardUnitNone},
		{cwmetric.FlagRateShiftVsBaseline, seg(vs, "grocery"), rate(60, 2500) / rate(600, 20000) / (rate(225, 7500) / rate(600, 20000)), types.StandardUnitNone},
	}
	for _, wt := range want {
		d, ok := find(got, wt.metric, wt.dims)
		if !ok {
			t.Errorf("%s %v missing", wt.metric, wt.dims)
			continue
		}
		if !approxEqual(aws.ToFloat64(d.Value), wt.value) || d.Unit != wt.unit {
			t.Errorf("%s %v = %v %s, want %v %s", wt.metric, wt.dims, aws.ToFloat64(d.Value), d.Unit, wt.value, wt.unit)
		}
	}
	if _, ok := find(got, cwmetric.ShiftPredictionCount, seg(v5, "travel")); ok {
		t.Error("travel is not a top segment: no per-segment shift metrics for it")
	}
	// The worst segment covers every segment with enough predictions, top or not:
	// travel, where the candidate's flag rate fell from 16 % to 6 % while the
	// baseline's held at 16 %. Recount its shown fold: ln r and se of the four
	// continuity-corrected rates, z = Φ⁻¹(1 − 0.001/(2·2)) for two eligible segments.
	lnR := math.Log(rate(90, 1500)) - math.Log(rate(1600, 10000)) - math.Log(rate(720, 4500)) + math.Log(rate(1600, 10000))
	se := math.Sqrt(1/90.5 - 1/1501.0 + 2*(1/1600.5-1/10001.0) + 1/720.5 - 1/4501.0)
	z := 3.4807564043745 // Φ⁻¹(1 − 0.00025)
	d, ok := find(got, cwmetric.SegmentFlagRateShift, vs)
	if !ok || !approxEqual(aws.ToFloat64(d.Value), math.Exp(math.Abs(lnR)-z*se)) {
		t.Errorf("SegmentFlagRateShift = %v (present %v), want %v", aws.ToFloat64(d.Value), ok, math.Exp(math.Abs(lnR)-z*se))
	}
	travelPSI := psi(0.16, 0.06) // the baseline's PSI there is 0
	if d, ok := find(got, cwmetric.SegmentScoreShiftPSI, vs); !ok || !approxEqual(aws.ToFloat64(d.Value), travelPSI) {
		t.Errorf("SegmentScoreShiftPSI = %v (present %v), want travel's %v", aws.ToFloat64(d.Value), ok, travelPSI)
	}
	// Rule 1 of the contract: every shift signal goes out with its n — the live
	// ShiftPredictionCount of each variant it reads, in the same scope.
	for _, d := range got {
		switch aws.ToString(d.MetricName) {
		case cwmetric.FlagRateShiftRatio, cwmetric.ScoreShiftPSI, cwmetric.FlagRateShiftVsBaseline, cwmetric.ScoreShiftPSIVsBaseline,
			cwmetric.SegmentFlagRateShift, cwmetric.SegmentScoreShiftPSI:
		default:
			continue
		}
		m := dimMap(d.Dimensions)
		variants := []string{m["VariantName"]}
		if b := m["BaselineVariant"]; b != "" {
			variants = append(variants, b)
			delete(m, "BaselineVariant")
		}
		for _, v := range variants {
			m["VariantName"] = v
			if _, ok := find(got, cwmetric.ShiftPredictionCount, m); !ok {
				t.Errorf("%s %v went out without ShiftPredictionCount %v", aws.ToString(d.MetricName), dimMap(d.Dimensions), m)
			}
		}
	}
}

func TestShiftsNameTheSegmentsBehindTheSummaries(t *testing.T) {
	w := shiftWindows()
	got, err := Shifts(shiftConfig(), w, storedReference(w, shiftNow))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].SegmentFlagRateScope == nil || got[0].SegmentFlagRateScope.Segment != "travel" ||
		got[0].SegmentPSIScope == nil || got[0].SegmentPSIScope.Segment != "travel" {
		t.Fatalf("shifts %+v, want travel behind both summaries", got)
	}
}

func TestShiftSignalsWaitForTheReferenceToEnd(t *testing.T) {
	w := shiftWindows()
	got, err := FlushDatums(shiftConfig(), w, storedReference(w, shiftStart.Add(-time.Minute)), shiftNow)
	if err != nil {
		t.Fatalf("a reference that has not ended is no error: %v", err)
	}
	for _, d := range got {
		switch aws.ToString(d.MetricName) {
		case cwmetric.ShiftPredictionCount, cwmetric.FlagRateShiftRatio, cwmetric.FlagRateShiftVsBaseline, cwmetric.SegmentFlagRateShift:
			t.Fatalf("%s published before the reference ended", aws.ToString(d.MetricName))
		}
	}
	if _, ok := find(got, cwmetric.PredictionCount, dims("EndpointName=fraud-detector", "VariantName=fraud-v5")); !ok {
		t.Error("the window's metrics must go out as before")
	}
}

func TestAFixedReferenceEndingAfterTheWindowsIsPending(t *testing.T) {
	w := shiftWindows()
	ref, err := w.Between(shadowFrom, shiftStart)
	if err != nil {
		t.Fatal(err)
	}
	ref.End = shiftNow.Add(time.Hour) // a shift that starts after the windows' now
	got, err := FlushDatums(shiftConfig(), w, FixedReference(ref), shiftNow)
	if err != nil {
		t.Fatalf("a reference ending after now is pending, not an error: %v", err)
	}
	if _, ok := find(got, cwmetric.ShiftPredictionCount, dims("EndpointName=fraud-detector", "VariantName=fraud-v5")); ok {
		t.Error("shift signals published before the reference ended")
	}
}

func TestAReferenceThatCannotBeReadIsCountedAndTheRestPublished(t *testing.T) {
	w := shiftWindows()
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	ref := StoredReference{Ranges: w, Since: shiftNow.Add(-48 * time.Hour), Until: shiftStart, Now: func() time.Time { return shiftNow }}
	p, err := New(shiftConfig(), Deps{Client: rec, Snapshots: w, Reference: ref, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(t.Context()); err == nil {
		t.Error("a reference older than the buckets kept must be reported")
	}
	if got := value(t, reg, "verdict_cloudwatch_errors_total", "reason", ReasonReference); got != 1 {
		t.Errorf("errors_total{reason=reference} = %v, want 1", got)
	}
	f, ok := p.queue.pop(t.Context())
	if !ok {
		t.Fatal("nothing queued: the window's metrics must go out without the shift signals")
	}
	p.deliver(t.Context(), f)
	if _, ok := find(rec.datums(), cwmetric.SegmentRegressions, dims("EndpointName=fraud-detector", "VariantName=fraud-v5", "BaselineVariant=fraud-v4")); !ok {
		t.Error("SegmentRegressions missing from the flush")
	}
	if _, err := New(shiftConfig(), Deps{Client: rec, Snapshots: w}); err == nil {
		t.Error("Shift without a Reference must be refused")
	}
	cfg := shiftConfig()
	cfg.Pairs = nil
	if err := cfg.Validate(); err == nil {
		t.Error("Shift without Pairs must be refused")
	}
}

func TestABaselineOfTwoCandidatesIsPublishedOnce(t *testing.T) {
	w := shiftWindows()
	w.Observe([]tally.Delta{{Key: tally.Key{Variant: "fraud-v6"}, Bucket: shadowFrom.Unix(), Counts: flagged(30000, 1400)},
		{Key: tally.Key{Variant: "fraud-v6"}, Bucket: shiftStart.Unix(), Counts: flagged(2000, 100)}})
	cfg := shiftConfig()
	cfg.Pairs = append(cfg.Pairs, judge.Pair{Baseline: "fraud-v4", Candidate: "fraud-v6"})
	got, err := FlushDatums(cfg, w, storedReference(w, shiftNow), shiftNow)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range got {
		if aws.ToString(d.MetricName) == cwmetric.ShiftPredictionCount && sameDims(dimMap(d.Dimensions), dims("EndpointName=fraud-detector", "VariantName=fraud-v4")) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the baseline's ShiftPredictionCount went out %d times, want once", n)
	}
	if _, ok := find(got, cwmetric.FlagRateShiftVsBaseline, dims("EndpointName=fraud-detector", "VariantName=fraud-v6", "BaselineVariant=fraud-v4")); !ok {
		t.Error("the second candidate's FlagRateShiftVsBaseline is missing")
	}
}

// The shift signals on the wire: names, dimensions in contract order, units.
func TestShiftSignalsWireRequestMatchesGolden(t *testing.T) {
	w := shiftWindows()
	cfg := shiftConfig()
	cfg.Interval = time.Hour
	r := flushOverWire(t, prometheus.NewRegistry(), cfg, Deps{Snapshots: w, Reference: storedReference(w, shiftNow)})
	body := r.Body.(map[string]any)
	var shift []any
	for _, d := range body["MetricData"].([]any) {
		switch d.(map[string]any)["MetricName"] {
		case cwmetric.ShiftPredictionCount, cwmetric.FlagRateShiftRatio, cwmetric.ScoreShiftPSI, cwmetric.FlagRateShiftVsBaseline,
			cwmetric.ScoreShiftPSIVsBaseline, cwmetric.SegmentFlagRateShift, cwmetric.SegmentScoreShiftPSI:
			shift = append(shift, d)
		}
	}
	body["MetricData"] = shift
	golden.Check(t, "put_metric_data_shift_wire.json", datumLines(t, body))
}
