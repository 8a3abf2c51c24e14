package embedded

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
)

// Upkeep expires what retention allows as soon as it runs, leaves everything else,
// does not reopen a healthy store, and returns nil when its context ends.
func TestUpkeepExpiresOldRecordsAndStopsWithItsContext(t *testing.T) {
	st, j, _ := open(t, t.TempDir(), labels.Config{})
	defer st.Close()
	old, recent := t0.Add(-100*24*time.Hour), t0
	b := ingest.Batch{
		Predictions: []ingest.Prediction{
			{InferenceID: "old", Variant: "v5", Score: 0.9, Threshold: 0.5, Time: old},
			{InferenceID: "recent", Variant: "v5", Score: 0.9, Threshold: 0.5, Time: recent},
		},
		Labels: []ingest.Label{
			{InferenceID: "old", Positive: true, Time: old.Add(time.Hour)},
			{InferenceID: "recent", Positive: true, Time: recent},
		},
	}
	if _, err := j.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var reopened atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Upkeep{Store: st, KeepBuckets: 200 * 24 * time.Hour, Retention: 90 * 24 * time.Hour,
			Reopen: func(context.Context) error { reopened.Add(1); return nil }}.Run(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := st.Records(context.Background(), []string{"old", "recent"})
		if err != nil {
			t.Fatal(err)
		}
		if recs[1] == nil {
			t.Fatal("the recent record was expired")
		}
		if recs[0] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the record older than retention was not expired within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // one reopen tick: a healthy store is left alone
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v, want nil when its context ends", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if n := reopened.Load(); n != 0 {
		t.Fatalf("Reopen called %d times on a healthy store", n)
	}
}
