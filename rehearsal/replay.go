package rehearsal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/embedded"
	"github.com/verdictml/verdict/window"
)

// ReplayConfig is how a recording is replayed.
type ReplayConfig struct {
	// Join is the join's configuration (segment keys, bucket, maturity).
	Join labels.Config
	// Longest is the longest window the windows keep.
	Longest time.Duration
	// Reads is the longest window the callback snapshots (default Longest):
	// Tick.Idle is about sliding windows up to this span. A callback that reads a
	// period growing from a fixed start (window.Period) must not skip on Idle.
	Reads time.Duration
	// From is the first tick. Events before it are applied at the first tick.
	From time.Time
	// To is the last tick (inclusive). Events after it are not replayed.
	To time.Time
	// Step is the simulated time between ticks; it must be positive. Ticks are
	// From + k*Step; a callback may skip some (Tick.Idle).
	Step time.Duration
	// Serve decides which predictions count (a rehearsal drops the ones the
	// simulated traffic split did not serve); nil counts every prediction.
	Serve func(ingest.Prediction) bool
	// Dir is where the temporary join store is created; empty means the system's
	// temporary directory. The store is removed when Replay returns.
	Dir string
	// Progress, when set, is called after every tick.
	Progress func(Progress)
}

// Tick is the replay at one step: the windows end at Now and hold every
// prediction made and every label known by then.
type Tick struct {
	Now     time.Time
	Windows *window.Windows
	// Idle reports that no counted prediction lies in any window of span up to
	// ReplayConfig.Reads ending at Now: such windows are empty, and stay empty until the
	// next prediction (labels and maturity can only touch predictions outside
	// them). A callback whose state has settled on the empty windows may skip
	// ticks up to NextPrediction.
	Idle bool
	// NextPrediction is the time of the next prediction still to replay; zero
	// when none is left before To.
	NextPrediction time.Time
}

// Progress is how far a replay has got.
type Progress struct {
	Now      time.Time
	From, To time.Time
	// Applied and Total count events (predictions and labels): applied so far,
	// and in the replay up to To.
	Applied, Total int
}

// ErrStop, returned by a tick callback, ends the replay without error.
var ErrStop = errors.New("rehearsal: stop")

// maxBatch bounds the events applied in one commit.
const maxBatch = 4096

// Replay applies rec to a fresh join tick by tick: at each tick now it applies
// every prediction made and every label known at or before now, resolves
// predictions that matured by now, and calls step with the tick. step returns
// the time of the next tick: zero for the next one (now + Step), or a later one
// to skip the ticks in between (rounded down to the tick grid; events in the
// skipped stretch are applied at the next tick, so a callback skips only while
// the windows it reads cannot change: Tick.Idle). Returning ErrStop ends the
// replay early.
func Replay(ctx context.Context, rec *Recording, cfg ReplayConfig, step func(ctx context.Context, t Tick) (time.Time, error)) (err error) {
	if cfg.Step <= 0 {
		return fmt.Errorf("rehearsal: step %s must be positive", cfg.Step)
	}
	if cfg.To.Before(cfg.From) {
		return fmt.Errorf("rehearsal: replay ends at %s, before it starts at %s", cfg.To.Format(time.RFC3339), cfg.From.Format(time.RFC3339))
	}
	dir, err := os.MkdirTemp(cfg.Dir, "verdict-rehearsal-")
	if err != nil {
		return fmt.Errorf("rehearsal: create temporary join store: %w", err)
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = fmt.Errorf("rehearsal: remove temporary join store: %w", rmErr)
		}
	}()
	store, err := embedded.Open(dir, embedded.Options{NoSync: true, CacheBytes: 64 << 20})
	if err != nil {
		return fmt.Errorf("rehearsal: open temporary join store: %w", err)
	}
	defer store.Close()

	now := cfg.From
	windows := window.New(cfg.Join.Bucket, cfg.Longest, window.Clock(func() time.Time { return now }), window.WithRule(cfg.Rule))
	join, err := labels.Open(ctx, store, cfg.Join, windows)
	if err != nil {
		return fmt.Errorf("rehearsal: open join: %w", err)
	}
	defer join.Close()

	reads := cfg.Reads
	if reads <= 0 || reads > cfg.Longest {
		reads = cfg.Longest
	}
	bucket := int64(cfg.Join.Bucket / time.Second)
	if bucket <= 0 {
		bucket = int64(5 * time.Minute / time.Second)
	}
	// nPreds and nLabels are the events up to To.
	nPreds := sort.Search(len(rec.Predictions), func(i int) bool { return rec.Predictions[i].Time.After(cfg.To) })
	nLabels := sort.Search(len(rec.Labels), func(i int) bool { return rec.Labels[i].Time.After(cfg.To) })
	prog := Progress{From: cfg.From, To: cfg.To, Total: nPreds + nLabels}
	var (
		pi, li     int
		counted    bool  // a prediction has been counted
		lastBucket int64 // the newest counted prediction's bucket (Unix seconds)
	)
	for !now.After(cfg.To) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("rehearsal: stopped at %s: %w", now.Format(time.RFC3339), err)
		}
		var preds []ingest.Prediction
		for ; pi < nPreds && !rec.Predictions[pi].Time.After(now); pi++ {
			if p := rec.Predictions[pi]; cfg.Serve == nil || cfg.Serve(p) {
				preds = append(preds, p)
				if b := p.Time.Unix() / bucket * bucket; !counted || b > lastBucket {
					counted, lastBucket = true, b
				}
			}
		}
		// Predictions first: a label arriving in the same tick finds them.
		if err := apply(ctx, join, ingest.Batch{Predictions: preds}); err != nil {
			return fmt.Errorf("rehearsal: apply predictions up to %s: %w", now.Format(time.RFC3339), err)
		}
		start := li
		for ; li < nLabels && !rec.Labels[li].Time.After(now); li++ {
		}
		if err := apply(ctx, join, ingest.Batch{Labels: rec.Labels[start:li]}); err != nil {
			return fmt.Errorf("rehearsal: apply labels up to %s: %w", now.Format(time.RFC3339), err)
		}
		for {
			n, err := join.Mature(ctx, now, maxBatch)
			if err != nil {
				return fmt.Errorf("rehearsal: mature predictions at %s: %w", now.Format(time.RFC3339), err)
			}
			if n == 0 {
				break
			}
		}
		t := Tick{Now: now, Windows: windows}
		// The window of span Reads covers the buckets from this one on (as
		// window.Snapshot computes it); shorter windows start later.
		windowStart := now.Add(-reads).Unix() / bucket * bucket
		t.Idle = !counted || lastBucket < windowStart
		if pi < nPreds {
			t.NextPrediction = rec.Predictions[pi].Time
		}
		next, err := step(ctx, t)
		prog.Now, prog.Applied = now, pi+li
		if cfg.Progress != nil {
			cfg.Progress(prog)
		}
		if err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
		if !next.After(now) {
			next = now.Add(cfg.Step)
		}
		// Back onto the tick grid, never past the next prediction.
		if !t.NextPrediction.IsZero() && next.After(t.NextPrediction) {
			next = t.NextPrediction
		}
		next = now.Add(max(cfg.Step, next.Sub(now)/cfg.Step*cfg.Step))
		now = next
	}
	return nil
}

// apply commits b in batches of at most maxBatch events.
func apply(ctx context.Context, join *labels.Join, b ingest.Batch) error {
	for len(b.Predictions) > 0 {
		n := min(len(b.Predictions), maxBatch)
		if _, err := join.Apply(ctx, ingest.Batch{Predictions: b.Predictions[:n]}); err != nil {
			return err
		}
		b.Predictions = b.Predictions[n:]
	}
	for len(b.Labels) > 0 {
		n := min(len(b.Labels), maxBatch)
		if _, err := join.Apply(ctx, ingest.Batch{Labels: b.Labels[:n]}); err != nil {
			return err
		}
		b.Labels = b.Labels[n:]
	}
	return nil
}
