package window

import (
	"math"
	"testing"
	"time"

	"github.com/verdictml/verdict/tally"
)

func TestWilsonMatchesPublishedValues(t *testing.T) {
	tests := []struct {
		name         string
		x, n         int64
		lower, upper float64
	}{
		// Newcombe (1998), Statistics in Medicine 17, table I, method 3 (score).
		{"Newcombe example 81/263", 81, 263, 0.2553, 0.3662},
		{"p = 0 keeps a non-zero upper bound", 0, 10, 0, 0.2775},
		{"p = 1 keeps a lower bound below one", 10, 10, 0.7225, 1},
		{"p = 0.5 is symmetric", 5, 10, 0.2366, 0.7634},
		{"n = 0 is uninformative", 0, 0, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Wilson(tc.x, tc.n, Z95)
			if math.Abs(got.Lower-tc.lower) > 5e-5 || math.Abs(got.Upper-tc.upper) > 5e-5 {
				t.Errorf("Wilson(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", tc.x, tc.n, got.Lower, got.Upper, tc.lower, tc.upper)
			}
		})
	}
}

func TestDerive(t *testing.T) {
	approx := func(t *testing.T, name string, got *float64, want float64) {
		t.Helper()
		if got == nil || math.Abs(*got-want) > 1e-12 {
			t.Errorf("%s = %v, want %v", name, deref(got), want)
		}
	}
	t.Run("counts give precision, recall, F1, coverage, flag rate", func(t *testing.T) {
		s := Derive(tally.Counts{Predictions: 100, Flagged: 10, TP: 8, FP: 2, FN: 4, TN: 46, ScoreSum: 30})
		approx(t, "precision", s.Precision, 0.8)
		approx(t, "recall", s.Recall, 8.0/12)
		approx(t, "f1", s.F1, 2*0.8*(8.0/12)/(0.8+8.0/12))
		approx(t, "label coverage", s.LabelCoverage, 0.6)
		approx(t, "flag rate", s.FlagRate, 0.1)
		approx(t, "mean score", s.MeanScore, 0.3)
	})
	t.Run("undefined statistics are nil, not zero", func(t *testing.T) {
		s := Derive(tally.Counts{Predictions: 5, TN: 5})
		if s.Precision != nil || s.Recall != nil || s.F1 != nil || s.PrecisionCI != nil || s.RecallCI != nil {
			t.Errorf("no positives: got precision %v recall %v f1 %v", deref(s.Precision), deref(s.Recall), deref(s.F1))
		}
		approx(t, "flag rate", s.FlagRate, 0)
		if s := Derive(tally.Counts{}); s.FlagRate != nil || s.LabelCoverage != nil || s.MeanScore != nil {
			t.Error("no predictions: rates must be nil")
		}
	})
	t.Run("zero precision and recall leave F1 undefined", func(t *testing.T) {
		s := Derive(tally.Counts{Predictions: 2, Flagged: 1, FP: 1, FN: 1})
		approx(t, "precision", s.Precision, 0)
		approx(t, "recall", s.Recall, 0)
		if s.F1 != nil {
			t.Errorf("F1 = %v, want nil", *s.F1)
		}
	})
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestSlidingWindowsByPredictionTime(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 2, 0, 0, time.UTC)
	w := New(5*time.Minute, 24*time.Hour)
	w.now = func() time.Time { return now }
	v5 := tally.Key{Variant: "v5"}
	at := func(ago time.Duration) int64 {
		s := now.Add(-ago).Unix()
		return s / 300 * 300
	}
	w.Observe([]tally.Delta{
		{Key: v5, Bucket: at(0), Counts: tally.Counts{Predictions: 1, TP: 1}},
		{Key: v5, Bucket: at(50 * time.Minute), Counts: tally.Counts{Predictions: 2, FP: 2}},
		{Key: v5, Bucket: at(3 * time.Hour), Counts: tally.Counts{Predictions: 4, FN: 4}},
		{Key: v5, Bucket: at(30 * time.Hour), Counts: tally.Counts{Predictions: 8, TN: 8}}, // beyond retention
	})
	tests := []struct {
		span Span
		want int64
	}{
		{Span(time.Hour), 3},
		{Span(24 * time.Hour), 7},
		{AllTime, 15},
	}
	for _, tc := range tests {
		t.Run(tc.span.String(), func(t *testing.T) {
			snap := w.Snapshot(tc.span)
			r, ok := snap.Row(v5)
			if !ok || r.Counts.Predictions != tc.want {
				t.Fatalf("predictions in %s: got %d, want %d", tc.span, r.Counts.Predictions, tc.want)
			}
		})
	}
	// A correction to an old prediction moves all-time but no bucket window.
	w.Observe([]tally.Delta{{Key: v5, Bucket: at(30 * time.Hour), Counts: tally.Counts{TN: -1, FP: 1}}})
	if r, _ := w.Snapshot(AllTime).Row(v5); r.Counts.FP != 3 || r.Counts.TN != 7 {
		t.Errorf("all-time after correction: fp %d tn %d, want 3 and 7", r.Counts.FP, r.Counts.TN)
	}
	if r, _ := w.Snapshot(Span(24 * time.Hour)).Row(v5); r.Counts.FP != 2 {
		t.Errorf("24h after old correction: fp %d, want 2", r.Counts.FP)
	}
	// Time passes: the 1h window slides past the 50-minute-old bucket.
	now = now.Add(20 * time.Minute)
	if r, _ := w.Snapshot(Span(time.Hour)).Row(v5); r.Counts.Predictions != 1 {
		t.Errorf("1h window 20 minutes later: %d predictions, want 1", r.Counts.Predictions)
	}
}

func TestRestoreRebuildsTheSameView(t *testing.T) {
	now := time.Now()
	live := New(time.Minute, time.Hour)
	deltas := []tally.Delta{
		{Key: tally.Key{Variant: "v5"}, Bucket: now.Unix() / 60 * 60, Counts: tally.Counts{Predictions: 3, TP: 1}},
		{Key: tally.Key{Variant: "v5", SegmentKey: "mcc", Segment: "5411"}, Bucket: now.Unix() / 60 * 60, Counts: tally.Counts{Predictions: 3, TP: 1}},
	}
	live.Observe(deltas)
	restored := New(time.Minute, time.Hour)
	for _, d := range deltas {
		restored.Restore(d, true)
		restored.Restore(d, false)
	}
	for _, span := range []Span{AllTime, Span(time.Hour)} {
		a, b := live.Snapshot(span), restored.Snapshot(span)
		if len(a.Rows) != len(b.Rows) {
			t.Fatalf("%s: %d rows live, %d restored", span, len(a.Rows), len(b.Rows))
		}
		for i := range a.Rows {
			if a.Rows[i].Key != b.Rows[i].Key || a.Rows[i].Counts != b.Rows[i].Counts {
				t.Errorf("%s row %d: live %+v, restored %+v", span, i, a.Rows[i], b.Rows[i])
			}
		}
	}
	if rows := live.Snapshot(AllTime).Rows; !rows[0].Key.Overall() {
		t.Errorf("overall row must sort before segments: %+v", rows)
	}
}

func TestParseSpan(t *testing.T) {
	tests := []struct {
		in      string
		want    Span
		wantErr bool
	}{
		{"1h", Span(time.Hour), false},
		{"24h", Span(24 * time.Hour), false},
		{"7d", Span(7 * 24 * time.Hour), false},
		{"30m", Span(30 * time.Minute), false},
		{"all", AllTime, false},
		{"", AllTime, false},
		{"0d", 0, true},
		{"-1h", 0, true},
		{"1.5d", 0, true},
		{"week", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseSpan(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseSpan(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err == nil && tc.in != "" {
			if back, _ := ParseSpan(got.String()); back != got {
				t.Errorf("%q does not round-trip: %s", tc.in, got)
			}
		}
	}
}

func TestReloadReplacesRecentBucketsAndKeepsOlderOnes(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	w := New(5*time.Minute, 24*time.Hour)
	w.now = func() time.Time { return now }
	v5 := tally.Key{Variant: "v5"}
	old, recent := now.Add(-5*time.Hour).Unix(), now.Add(-10*time.Minute).Unix()
	w.Observe([]tally.Delta{
		{Key: v5, Bucket: old, Counts: tally.Counts{Predictions: 1}},
		{Key: v5, Bucket: recent, Counts: tally.Counts{Predictions: 1}},
	})
	// The store (written by other processes too) now holds more: 2 old, 5 recent.
	store := []struct {
		d       tally.Delta
		allTime bool
	}{
		{tally.Delta{Key: v5, Counts: tally.Counts{Predictions: 7}}, true},
		{tally.Delta{Key: v5, Bucket: old, Counts: tally.Counts{Predictions: 2}}, false},
		{tally.Delta{Key: v5, Bucket: recent, Counts: tally.Counts{Predictions: 5}}, false},
	}
	load := func(fn func(tally.Delta, bool) error) error {
		for _, s := range store {
			if err := fn(s.d, s.allTime); err != nil {
				return err
			}
		}
		return nil
	}
	if err := w.Reload(now.Add(-time.Hour).Unix(), load); err != nil {
		t.Fatal(err)
	}
	pred := func(span Span) int64 { r, _ := w.Snapshot(span).Row(v5); return r.Counts.Predictions }
	if got := pred(AllTime); got != 7 {
		t.Errorf("all time after reload: %d, want 7", got)
	}
	if got := pred(Span(time.Hour)); got != 5 {
		t.Errorf("1h after recent reload: %d, want 5", got)
	}
	if got := pred(Span(24 * time.Hour)); got != 6 {
		t.Errorf("24h after recent reload: %d, want 6 (old bucket kept at 1)", got)
	}
	if err := w.Reload(0, load); err != nil {
		t.Fatal(err)
	}
	if got := pred(Span(24 * time.Hour)); got != 7 {
		t.Errorf("24h after full reload: %d, want 7", got)
	}
}

func TestPeriodsAndPairs(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	w := New(5*time.Minute, 24*time.Hour, Clock(func() time.Time { return now }))
	var pc tally.PairCounts
	pc[tally.ClassPositive][tally.OnlyFirst] = 3
	pc[tally.ClassPending][tally.Both] = 2
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	w.Observe([]tally.Delta{
		{Key: tally.Key{Variant: "v5"}, Bucket: at(-3 * time.Hour), Counts: tally.Counts{Predictions: 10}},
		{Key: tally.Key{Variant: "v6"}, Bucket: at(-2 * time.Hour), Counts: tally.Counts{Predictions: 4}},
		{Key: tally.Key{Variant: "v6"}, Bucket: at(-30 * time.Minute), Counts: tally.Counts{Predictions: 1}},
		{Key: tally.Key{Variant: "v5", Versus: "v6"}, Bucket: at(-2 * time.Hour), Counts: tally.Counts{Pair: pc}},
	})
	t.Run("pairs are never rows", func(t *testing.T) {
		snap := w.Snapshot(AllTime)
		if len(snap.Rows) != 2 || len(snap.Pairs) != 1 {
			t.Fatalf("rows %d, pairs %d; want 2 and 1", len(snap.Rows), len(snap.Pairs))
		}
	})
	t.Run("paired counts are oriented by the caller's first variant", func(t *testing.T) {
		snap := w.Snapshot(AllTime)
		got, ok := snap.Paired("v6", "v5", "", "")
		if !ok || got[tally.ClassPositive][tally.OnlySecond] != 3 || got[tally.ClassPending][tally.Both] != 2 {
			t.Errorf("Paired(v6, v5) = %v, %v", got, ok)
		}
		if got, ok := snap.Paired("v5", "v6", "", ""); !ok || got != pc {
			t.Errorf("Paired(v5, v6) = %v, %v; want %v", got, ok, pc)
		}
		if _, ok := snap.Paired("v5", "v7", "", ""); ok {
			t.Error("a pair that never scored together was found")
		}
	})
	t.Run("a period sums from its start's bucket to now", func(t *testing.T) {
		snap, err := w.Period(now.Add(-2*time.Hour + time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if !snap.Start.Equal(now.Add(-2 * time.Hour)) {
			t.Errorf("start %s, want the bucket of the period start", snap.Start)
		}
		v5, _ := snap.Row(tally.Key{Variant: "v5"})
		v6, _ := snap.Row(tally.Key{Variant: "v6"})
		if v5.Counts.Predictions != 0 || v6.Counts.Predictions != 5 || len(snap.Pairs) != 1 {
			t.Errorf("period: v5 %d, v6 %d predictions, %d pairs; want 0, 5, 1", v5.Counts.Predictions, v6.Counts.Predictions, len(snap.Pairs))
		}
	})
	t.Run("a period older than the buckets kept is refused", func(t *testing.T) {
		if _, err := w.Period(now.Add(-48 * time.Hour)); err == nil {
			t.Error("want an error for a period older than the longest window")
		}
		if _, err := w.Period(now.Add(time.Hour)); err == nil {
			t.Error("want an error for a period in the future")
		}
	})
	t.Run("a range between two times sums the whole buckets in it", func(t *testing.T) {
		snap, err := w.Between(now.Add(-3*time.Hour+time.Minute), now.Add(-30*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if !snap.Start.Equal(now.Add(-3*time.Hour)) || !snap.End.Equal(now.Add(-30*time.Minute)) || snap.Period {
			t.Errorf("range %s to %s (period %v), want the buckets from 09:00 to 11:30", snap.Start, snap.End, snap.Period)
		}
		v5, _ := snap.Row(tally.Key{Variant: "v5"})
		v6, _ := snap.Row(tally.Key{Variant: "v6"})
		if v5.Counts.Predictions != 10 || v6.Counts.Predictions != 4 || len(snap.Pairs) != 1 {
			t.Errorf("range: v5 %d, v6 %d predictions, %d pairs; want 10, 4 (the bucket at its end left out), 1",
				v5.Counts.Predictions, v6.Counts.Predictions, len(snap.Pairs))
		}
		// A period from the range's end counts the rest: nothing twice.
		after, err := w.Period(snap.End)
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := after.Row(tally.Key{Variant: "v6"}); r.Counts.Predictions != 1 {
			t.Errorf("period from the range's end: v6 %d predictions, want 1", r.Counts.Predictions)
		}
		// An end inside a bucket leaves that bucket out.
		snap, err = w.Between(now.Add(-3*time.Hour), now.Add(-2*time.Hour+time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if v6, _ := snap.Row(tally.Key{Variant: "v6"}); v6.Counts.Predictions != 0 || !snap.End.Equal(now.Add(-2*time.Hour)) {
			t.Errorf("end inside a bucket: v6 %d predictions up to %s, want 0 up to 10:00", v6.Counts.Predictions, snap.End)
		}
	})
	t.Run("a range that cannot be summed is refused", func(t *testing.T) {
		for name, r := range map[string][2]time.Time{
			"older than the buckets kept": {now.Add(-48 * time.Hour), now.Add(-time.Hour)},
			"ending in the future":        {now.Add(-time.Hour), now.Add(time.Hour)},
			"without a whole bucket":      {now.Add(-time.Hour), now.Add(-time.Hour + time.Minute)},
			"ending before it starts":     {now.Add(-time.Hour), now.Add(-2 * time.Hour)},
		} {
			if _, err := w.Between(r[0], r[1]); err == nil {
				t.Errorf("%s: want an error", name)
			}
		}
	})
	t.Run("first seen is the variant's earliest bucket", func(t *testing.T) {
		if got, ok := w.FirstSeen("v6"); !ok || !got.Equal(now.Add(-2*time.Hour)) {
			t.Errorf("FirstSeen(v6) = %s, %v", got, ok)
		}
		if _, ok := w.FirstSeen("v7"); ok {
			t.Error("FirstSeen of an unknown variant")
		}
	})
	t.Run("first seen is always a bucket a period can start at", func(t *testing.T) {
		// v5's bucket at -3h is 24h-3h old at now+21h02m: past the longest window,
		// not yet pruned (nothing observed since). A period cannot start there.
		later := now
		defer func() { now = later }()
		now = now.Add(21*time.Hour + 2*time.Minute)
		if got, ok := w.FirstSeen("v5"); ok {
			t.Errorf("FirstSeen(v5) = %s past the buckets kept", got)
		}
		first, ok := w.FirstSeen("v6")
		if !ok {
			t.Fatal("FirstSeen(v6): none")
		}
		if _, err := w.Period(first); err != nil {
			t.Errorf("Period(FirstSeen(v6) = %s): %v", first, err)
		}
	})
}
