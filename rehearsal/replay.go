package rehearsal

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
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
	// Longest is the longest window the windows keep; comparison periods
	// (window.Period) reach back no further.
	Longest time.Duration
	// Rule decides when statistics are estimable (VERDICT_ESTIMABLE_COVERAGE).
	Rule window.Rule
	// Spans are the sliding windows the callback snapshots (besides periods and
	// all time): when their start passes a bucket that holds predictions, what
	// they read changes (Tick.Changed).
	Spans []time.Duration
	// From is the first tick. Events before it are applied at the first tick.
	From time.Time
	// To is the last tick (inclusive). Events after it are not replayed.
	To time.Time
	// Step is the simulated time between ticks; it must be positive. Ticks are
	// From + k*Step; a callback may skip some (see Tick.NextChange).
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
	// Changed reports that what a snapshot of the windows holds may differ from
	// the previous tick: an event was applied, a prediction matured, a sliding
	// window of ReplayConfig.Spans moved past a bucket of predictions, or buckets
	// left the kept range (Longest), which moves comparison periods. When it is
	// false, every snapshot (sliding, period or all time) holds the same counts as
	// at the previous tick; only its end, and a period's length, moved on.
	Changed bool
	// NextChange is the earliest time after Now at which Changed can next be
	// true; zero when nothing changes any more up to To. Until then a callback
	// whose state depends only on what it reads may skip ticks.
	NextChange time.Time
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

// maxBatch bounds the events applied in one commit; maxMature the predictions
// matured in one call.
const (
	maxBatch  = 4096
	maxMature = 1 << 20
)

// Replay applies rec to a fresh join tick by tick: at each tick now it applies
// every prediction made and every label known at or before now, resolves
// predictions that matured by now, and calls step with the tick. step returns
// the time of the next tick: zero for the next one (now + Step), or a later one
// to skip the ticks in between (rounded down to the tick grid, never past
// Tick.NextChange: events are applied at the tick after them, so a skip never
// hides a change). Returning ErrStop ends the replay early.
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
	store, err := embedded.Open(dir, embedded.Options{NoSync: true, CacheBytes: 256 << 20})
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

	// nPreds and nLabels are the events up to To.
	nPreds := sort.Search(len(rec.Predictions), func(i int) bool { return rec.Predictions[i].Time.After(cfg.To) })
	nLabels := sort.Search(len(rec.Labels), func(i int) bool { return rec.Labels[i].Time.After(cfg.To) })
	moves := windowMoves(rec.Predictions[:nPreds], cfg)
	prog := Progress{From: cfg.From, To: cfg.To, Total: nPreds + nLabels}
	// dueIndex counts the predictions whose maturity the join has been asked
	// about (they are in time order).
	var pi, li, mi, dueIndex int
	prev := cfg.From.Add(-cfg.Step)
	for !now.After(cfg.To) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("rehearsal: stopped at %s: %w", now.Format(time.RFC3339), err)
		}
		var preds []ingest.Prediction
		start := pi
		for ; pi < nPreds && !rec.Predictions[pi].Time.After(now); pi++ {
			if p := rec.Predictions[pi]; cfg.Serve == nil || cfg.Serve(p) {
				preds = append(preds, p)
			}
		}
		changed := pi > start
		// Predictions first: a label arriving in the same tick finds them.
		if err := apply(ctx, join, ingest.Batch{Predictions: preds}); err != nil {
			return fmt.Errorf("rehearsal: apply predictions up to %s: %w", now.Format(time.RFC3339), err)
		}
		start = li
		for ; li < nLabels && !rec.Labels[li].Time.After(now); li++ {
		}
		changed = changed || li > start
		if err := apply(ctx, join, ingest.Batch{Labels: rec.Labels[start:li]}); err != nil {
			return fmt.Errorf("rehearsal: apply labels up to %s: %w", now.Format(time.RFC3339), err)
		}
		// Mature only when some prediction's maturity passed since the last time
		// (all due ones were resolved then): the store's scan for due predictions
		// steps over every resolved one, which over weeks of ticks adds up.
		due := dueIndex
		if cfg.Join.Maturity > 0 {
			cut := now.Add(-cfg.Join.Maturity)
			for ; due < nPreds && rec.Predictions[due].Time.Before(cut); due++ {
			}
		}
		for due > dueIndex {
			// One scan a tick: each steps over the resolved predictions before
			// the due ones.
			n, err := join.Mature(ctx, now, maxMature)
			if err != nil {
				return fmt.Errorf("rehearsal: mature predictions at %s: %w", now.Format(time.RFC3339), err)
			}
			changed = changed || n > 0
			if n < maxMature {
				dueIndex = due
			}
		}
		// Drop the buckets past the kept range even when nothing was committed,
		// as a server's traffic would: comparison periods start within it.
		windows.Observe(nil)
		// Window moves with an instant in (prev, now]; those over by now are done.
		for ; mi < len(moves) && moves[mi].to-1 <= now.UnixNano(); mi++ {
			changed = changed || moves[mi].to-1 > prev.UnixNano()
		}
		if mi < len(moves) && moves[mi].from <= now.UnixNano() && moves[mi].to-1 > prev.UnixNano() {
			changed = true
		}
		t := Tick{Now: now, Windows: windows, Changed: changed}
		next := int64(-1)
		if pi < nPreds {
			next = rec.Predictions[pi].Time.UnixNano()
		}
		if li < nLabels && (next < 0 || rec.Labels[li].Time.UnixNano() < next) {
			next = rec.Labels[li].Time.UnixNano()
		}
		if mi < len(moves) {
			m := max(moves[mi].from, now.UnixNano()+1)
			if next < 0 || m < next {
				next = m
			}
		}
		if next >= 0 {
			t.NextChange = time.Unix(0, next)
		}
		skipTo, err := step(ctx, t)
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
		if !skipTo.After(now) {
			skipTo = now.Add(cfg.Step)
		}
		if !t.NextChange.IsZero() && skipTo.After(t.NextChange) {
			skipTo = t.NextChange
		}
		prev = now
		// Back onto the tick grid, at least one step on.
		now = now.Add(max(cfg.Step, skipTo.Sub(now)/cfg.Step*cfg.Step))
	}
	return nil
}

// move is a stretch of time, in Unix nanoseconds [from, to), at any instant of
// which the windows' contents may change with no event (a tick sees the
// instants since the tick before, up to its own time): a sliding window's start, or the
// kept range's, passing a bucket that holds predictions, or those predictions
// maturing.
type move struct{ from, to int64 }

// windowMoves lists, merged and in order, the stretches in which the windows'
// contents can change by the clock alone. Every prediction counts, served or
// not: a stretch too many costs a tick, one too few would hide a change.
func windowMoves(preds []ingest.Prediction, cfg ReplayConfig) []move {
	b := bucketWidth(cfg.Join)
	bucket := int64(b / time.Second)
	var ms []move
	add := func(from, to time.Time) { ms = append(ms, move{from.UnixNano(), to.UnixNano()}) }
	last := int64(-1 << 62)
	for _, p := range preds {
		bs := p.Time.Unix() / bucket * bucket
		if bs == last {
			continue
		}
		last = bs
		start := time.Unix(bs, 0)
		for _, s := range cfg.Spans {
			// A sliding window of span s at now covers the buckets from the one
			// holding now-s: this bucket leaves it at bs + b + s.
			at := start.Add(b + s)
			add(at, at.Add(1))
		}
		// The kept range: a period cannot start at the bucket once now is past
		// bs+Longest, and the bucket is dropped within a bucket of now passing
		// bs+Longest+b (windows prune at most once a bucket).
		add(start.Add(cfg.Longest+1), start.Add(cfg.Longest+2*b+1))
		if cfg.Join.Maturity > 0 {
			// A prediction p of the bucket matures at the first tick after
			// p+Maturity.
			add(start.Add(cfg.Join.Maturity+1), start.Add(cfg.Join.Maturity+b))
		}
	}
	slices.SortFunc(ms, func(x, y move) int { return cmp.Or(cmp.Compare(x.from, y.from), cmp.Compare(x.to, y.to)) })
	var out []move
	for _, m := range ms {
		if n := len(out); n > 0 && m.from <= out[n-1].to {
			out[n-1].to = max(out[n-1].to, m.to)
			continue
		}
		out = append(out, m)
	}
	return out
}

// bucketWidth is the width of the join's buckets: c.Bucket, or the join's and the
// windows' default of 5 minutes.
func bucketWidth(c labels.Config) time.Duration {
	if c.Bucket <= 0 {
		return 5 * time.Minute
	}
	return c.Bucket
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
