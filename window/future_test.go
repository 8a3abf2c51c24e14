package window

import (
	"testing"
	"time"

	"github.com/verdictml/verdict/tally"
)

func TestWindowsEndNowNotAtTheNewestBucket(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 2, 0, 0, time.UTC)
	w := New(5*time.Minute, 24*time.Hour, Clock(func() time.Time { return now }))
	v5 := tally.Key{Variant: "v5"}
	bucket := func(t time.Time) int64 { return t.Unix() / 300 * 300 }
	w.Observe([]tally.Delta{
		{Key: v5, Bucket: bucket(now), Counts: tally.Counts{Predictions: 1}},
		{Key: v5, Bucket: bucket(now.AddDate(1, 0, 0)), Counts: tally.Counts{Predictions: 10}}, // stored before the clock rules
	})
	for _, span := range []Span{Span(time.Hour), Span(24 * time.Hour)} {
		if r, _ := w.Snapshot(span).Row(v5); r.Counts.Predictions != 1 {
			t.Errorf("%s window counts %d predictions, want 1: a bucket a year ahead is not in a window ending now", span, r.Counts.Predictions)
		}
	}
	if r, _ := w.Snapshot(AllTime).Row(v5); r.Counts.Predictions != 11 {
		t.Errorf("all time: %d, want 11", r.Counts.Predictions)
	}
}
