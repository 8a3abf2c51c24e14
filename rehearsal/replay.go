package rehearsal

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	// Longest is the longest window the callback will snapshot.
	Longest time.Duration
	// Rule decides when statistics are estimable (VERDICT_ESTIMABLE_COVERAGE).
	Rule window.Rule
	// From is the first step. Events before it are applied at the first step.
	From time.Time
	// To is the last step (inclusive). Events after it are not replayed.
	To time.Time
	// Step is the simulated time between steps; it must be positive.
	Step time.Duration
	// Serve decides which predictions count (a rehearsal drops the ones the
	// simulated traffic split did not serve); nil counts every prediction.
	Serve func(ingest.Prediction) bool
	// Dir is where the temporary join store is created; empty means the system's
	// temporary directory. The store is removed when Replay returns.
	Dir string
}

// ErrStop, returned by a step callback, ends the replay without error.
var ErrStop = errors.New("rehearsal: stop")

// maxBatch bounds the events applied in one commit.
const maxBatch = 4096

// Replay applies rec to a fresh join in steps of simulated time: at each step
// now (From, From+Step, ..., up to To) it applies every prediction made and every
// label known at or before now, resolves predictions that matured by now, and
// calls step with now and the windows (which end at now). step returning ErrStop
// ends the replay early.
func Replay(ctx context.Context, rec *Recording, cfg ReplayConfig, step func(ctx context.Context, now time.Time, w *window.Windows) error) (err error) {
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

	pi, li := 0, 0
	for ; !now.After(cfg.To); now = now.Add(cfg.Step) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("rehearsal: stopped at %s: %w", now.Format(time.RFC3339), err)
		}
		var preds []ingest.Prediction
		for ; pi < len(rec.Predictions) && !rec.Predictions[pi].Time.After(now); pi++ {
			if p := rec.Predictions[pi]; cfg.Serve == nil || cfg.Serve(p) {
				preds = append(preds, p)
			}
		}
		// Predictions first: a label arriving in the same step finds them.
		if err := apply(ctx, join, ingest.Batch{Predictions: preds}); err != nil {
			return fmt.Errorf("rehearsal: apply predictions up to %s: %w", now.Format(time.RFC3339), err)
		}
		start := li
		for ; li < len(rec.Labels) && !rec.Labels[li].Time.After(now); li++ {
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
		if err := step(ctx, now, windows); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
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
