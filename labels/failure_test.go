package labels_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/storetest"
	"github.com/verdictml/verdict/tally"
)

// panickingStore panics in Commit while armed, like a storage engine that gives up
// (pebble's fatal commit error).
type panickingStore struct {
	*storetest.Memory
	armed atomic.Bool
}

func (p *panickingStore) Commit(ctx context.Context, c *labels.Change) error {
	if p.armed.Load() {
		panic("pebble: fatal commit error: no space left on device")
	}
	return p.Memory.Commit(ctx, c)
}

// applyWithin runs Apply and fails the test if it does not return within a generous
// bound (a hang, not a slow machine).
func applyWithin(t *testing.T, j *labels.Join, b ingest.Batch) (ingest.Result, error) {
	t.Helper()
	type out struct {
		res ingest.Result
		err error
	}
	ch := make(chan out, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- out{err: &panicked{p}}
			}
		}()
		res, err := j.Apply(context.Background(), b)
		ch <- out{res, err}
	}()
	select {
	case o := <-ch:
		return o.res, o.err
	case <-time.After(30 * time.Second):
		t.Fatal("Apply did not return: the join is stuck behind a leader that is gone")
		return ingest.Result{}, nil
	}
}

type panicked struct{ v any }

func (p *panicked) Error() string { return "Apply panicked" }

func TestPanickingCommitFailsItsGroupAndLaterCallsProceed(t *testing.T) {
	st := &panickingStore{Memory: storetest.NewMemory()}
	obs := storetest.NewRecorder()
	j, err := labels.Open(context.Background(), st, labels.Config{}, obs)
	if err != nil {
		t.Fatal(err)
	}
	st.armed.Store(true)
	b := storetest.Preds(storetest.Pred("a", "v5", 0.9))
	_, err = applyWithin(t, j, b)
	if _, isPanic := err.(*panicked); err == nil || isPanic {
		t.Fatalf("Apply with a panicking store: err = %v, want an error (not a panic) from the join", err)
	}
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("error %q does not say why the commit failed", err)
	}
	if len(obs.Observed) != 0 {
		t.Fatalf("a failed commit reached the windows: %v", obs.Observed)
	}

	// Several callers at once while the store still panics: every one gets an error.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = applyWithin(t, j, storetest.Preds(storetest.Pred("b"+string(rune('0'+i)), "v5", 0.9)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if _, isPanic := err.(*panicked); err == nil || isPanic {
			t.Errorf("caller %d: err = %v, want an error", i, err)
		}
	}

	// The store recovers: the next call leads a commit again and counts once.
	st.armed.Store(false)
	if _, err := applyWithin(t, j, b); err != nil {
		t.Fatalf("after the store recovered: %v", err)
	}
	if got, want := storetest.OCOf(obs.Observed[tally.Key{Variant: "v5"}]), (storetest.OC{Pred: 1, Flag: 1}); got != want {
		t.Fatalf("after recovery: %+v, want %+v", got, want)
	}
}

// busyStore counts how many commits and exclusive runs are in progress at once.
type busyStore struct {
	*storetest.Memory
	active, overlaps atomic.Int32
}

func (b *busyStore) enter() {
	if b.active.Add(1) > 1 {
		b.overlaps.Add(1)
	}
	time.Sleep(200 * time.Microsecond)
	b.active.Add(-1)
}

func (b *busyStore) Commit(ctx context.Context, c *labels.Change) error {
	b.enter()
	return b.Memory.Commit(ctx, c)
}

func TestExclusiveNeverOverlapsACommit(t *testing.T) {
	st := &busyStore{Memory: storetest.NewMemory()}
	j, err := labels.Open(context.Background(), st, labels.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	runs := atomic.Int32{}
	for w := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 50 {
				id := string(rune('a'+w)) + string(rune('a'+i%26)) + string(rune('a'+i/26))
				if _, err := j.Apply(context.Background(), storetest.Preds(storetest.Pred(id, "v5", 0.9))); err != nil {
					t.Error(err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 20 {
				if err := j.Exclusive(context.Background(), func(context.Context) error { st.enter(); runs.Add(1); return nil }); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if runs.Load() != 80 {
		t.Fatalf("%d exclusive runs, want 80", runs.Load())
	}
	if n := st.overlaps.Load(); n != 0 {
		t.Fatalf("%d times an exclusive run and a commit (or two runs) overlapped", n)
	}
	if got := storetest.ReadTallies(t, st).AllTime[tally.Key{Variant: "v5"}].Predictions; got != 200 {
		t.Fatalf("predictions: %d, want 200", got)
	}
	if err := j.Exclusive(context.Background(), func(context.Context) error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("a panicking exclusive run: err = %v, want its panic as an error", err)
	}
	if _, err := applyWithin(t, j, storetest.Preds(storetest.Pred("after", "v5", 0.9))); err != nil {
		t.Fatal(err)
	}
}
