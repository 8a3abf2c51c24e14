package window

import (
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/tally"
)

func TestTimelines(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 7, 30, 0, time.UTC)
	w := New(5*time.Minute, time.Hour, Clock(func() time.Time { return now }))
	v6 := tally.Key{Variant: "v6"}
	seg := tally.Key{Variant: "v6", SegmentKey: "merchant_category", Segment: "electronics"}
	at := func(hh, mm int) int64 { return time.Date(2026, 11, 25, hh, mm, 0, 0, time.UTC).Unix() }
	w.Observe([]tally.Delta{
		// 11:10 and 11:15 fall in the 11:00 15-minute step, 11:20 in the 11:15 one.
		{Key: v6, Bucket: at(11, 10), Counts: tally.Counts{Predictions: 100, Flagged: 10, TP: 9, FP: 1, FN: 1, TN: 89}},
		{Key: v6, Bucket: at(11, 15), Counts: tally.Counts{Predictions: 50, Flagged: 5, TP: 1, FN: 2, TN: 10}},
		{Key: v6, Bucket: at(11, 20), Counts: tally.Counts{Predictions: 10, Flagged: 1}},
		{Key: seg, Bucket: at(12, 5), Counts: tally.Counts{Predictions: 7, Flagged: 2}},
		{Key: tally.Key{Variant: "v5", Versus: "v6"}, Bucket: at(12, 5), Counts: tally.Counts{Predictions: 7}},
	})

	t.Run("steps are aligned, summed and end with the partial one", func(t *testing.T) {
		tl, err := w.Timelines(Span(time.Hour), 15*time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := tl.Start, time.Date(2026, 11, 25, 11, 15, 0, 0, time.UTC); !got.Equal(want) {
			t.Fatalf("start %s, want %s (the 11:00 step reaches before the kept buckets)", got, want)
		}
		if len(tl.Series) != 2 || tl.Series[0].Key != v6 || tl.Series[1].Key != seg {
			t.Fatalf("series %v: want v6 overall then its segment, no pair series", keysOf(tl))
		}
		steps := tl.Series[0].Steps
		if len(steps) != 4 {
			t.Fatalf("%d steps, want 11:15, 11:30, 11:45, 12:00", len(steps))
		}
		if c := steps[0].Counts; c.Predictions != 60 || c.Flagged != 6 {
			t.Errorf("11:15 step: %d predictions, %d flagged; want 60 and 6 (the 11:15 and 11:20 buckets)", c.Predictions, c.Flagged)
		}
		if steps[1].Counts.Predictions != 0 || steps[1].Stats.FlagRate != nil {
			t.Errorf("an empty step has counts %+v and flag rate %v; want zero and undefined", steps[1].Counts, steps[1].Stats.FlagRate)
		}
		for i, s := range steps {
			if s.Partial != (i == len(steps)-1) {
				t.Errorf("step %d partial %v", i, s.Partial)
			}
		}
		if !steps[3].End.After(now) || steps[3].Start.After(now) {
			t.Errorf("last step [%s, %s) does not hold now %s", steps[3].Start, steps[3].End, now)
		}
	})

	t.Run("each step judges estimability on its own counts", func(t *testing.T) {
		w2 := New(5*time.Minute, time.Hour, Clock(func() time.Time { return now }))
		w2.Observe([]tally.Delta{
			{Key: v6, Bucket: at(11, 30), Counts: tally.Counts{Predictions: 100, Flagged: 20, TP: 15, FP: 5, FN: 2, TN: 78}},
			{Key: v6, Bucket: at(12, 0), Counts: tally.Counts{Predictions: 100, Flagged: 20, TP: 10, FN: 1}},
		})
		tl, err := w2.Timelines(Span(time.Hour), 30*time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		old, recent := tl.Series[0].Steps[0], tl.Series[0].Steps[1]
		if !old.Stats.Estimable.Precision.Estimable || old.Stats.Precision == nil {
			t.Errorf("resolved step: precision not estimable: %s", old.Stats.Estimable.Precision.Reason)
		}
		if recent.Stats.Estimable.Precision.Estimable || recent.Stats.Precision != nil || recent.Stats.PrecisionBounds == nil {
			t.Errorf("half-labeled step: precision %v estimable %v, want null with bounds", recent.Stats.Precision, recent.Stats.Estimable.Precision.Estimable)
		}
	})

	t.Run("keep filters series", func(t *testing.T) {
		tl, err := w.Timelines(Span(time.Hour), 5*time.Minute, func(k tally.Key) bool { return k.Overall() })
		if err != nil {
			t.Fatal(err)
		}
		if len(tl.Series) != 1 || tl.Series[0].Key != v6 {
			t.Errorf("series %v, want v6 overall only", keysOf(tl))
		}
	})

	for _, tc := range []struct {
		name string
		span Span
		step time.Duration
		want string
	}{
		{"all time has no buckets", AllTime, 5 * time.Minute, "not all time"},
		{"longer than kept", Span(2 * time.Hour), 5 * time.Minute, "longer than"},
		{"step not a multiple of the bucket", Span(time.Hour), 7 * time.Minute, "multiple of the bucket"},
		{"zero step", Span(time.Hour), 0, "multiple of the bucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := w.Timelines(tc.span, tc.step, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one saying %q", err, tc.want)
			}
		})
	}
	t.Run("too many steps", func(t *testing.T) {
		wl := New(time.Second, 24*time.Hour, Clock(func() time.Time { return now }))
		if _, err := wl.Timelines(Span(24*time.Hour), time.Second, nil); err == nil || !strings.Contains(err.Error(), "longer step") {
			t.Errorf("err %v, want too many steps", err)
		}
	})
}

func keysOf(tl Timelines) []tally.Key {
	var ks []tally.Key
	for _, s := range tl.Series {
		ks = append(ks, s.Key)
	}
	return ks
}
