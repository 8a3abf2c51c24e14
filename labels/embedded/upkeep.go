package embedded

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/errgroup"
)

// Upkeep is what an open store needs while it serves: bounding (bucket tallies
// older than KeepBuckets dropped, records past Retention deleted, hourly) and
// recovery (after a failure, the store reopened once its cause is gone, tried every
// second). The DynamoDB store needs neither: its table's TTL bounds it.
type Upkeep struct {
	Store *Store
	// KeepBuckets is how far back bucket tallies are kept (all-time tallies keep
	// their contribution).
	KeepBuckets time.Duration
	// Retention deletes fully resolved records older than it (Store.Expire); zero
	// keeps every record.
	Retention time.Duration
	// Reopen brings the failed store back; nil means Store.Reopen. Whoever derives
	// state from the store (the join's windows) passes a function that holds its
	// writers, calls Store.Reopen and rebuilds that state. Reopen is called while
	// the store reports ErrFailed, and again after each call that failed.
	Reopen func(ctx context.Context) error
}

// Run keeps the store until ctx ends, then returns nil. Failures are logged (to
// Options.Logger) and retried; they never stop it.
func (u Upkeep) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { u.pruneLoop(ctx); return nil })
	g.Go(func() error { u.reopenLoop(ctx); return nil })
	return g.Wait()
}

// pruneLoop drops old bucket tallies and expires old records at once, then hourly.
func (u Upkeep) pruneLoop(ctx context.Context) {
	s := u.Store
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := s.DropBucketsBefore(time.Now().Add(-u.KeepBuckets).Unix()); err != nil {
			s.log.Error("drop old bucket tallies", "err", err)
		}
		if u.Retention > 0 {
			const limit = 10000
			total := 0
			for ctx.Err() == nil {
				n, err := s.Expire(time.Now().Add(-u.Retention), limit)
				if err != nil {
					s.log.Error("expire old join records", "err", err)
					break
				}
				total += n
				if n < limit {
					break
				}
			}
			if total > 0 {
				s.log.Info("expired join records", "count", total, "retention", u.Retention)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reopenEvery is how often a failed store is tried again.
const reopenEvery = time.Second

// reopenLoop reopens the store while it has failed (or the last Reopen did).
func (u Upkeep) reopenLoop(ctx context.Context) {
	s := u.Store
	reopen := u.Reopen
	if reopen == nil {
		reopen = func(context.Context) error { return s.Reopen() }
	}
	t := time.NewTicker(reopenEvery)
	defer t.Stop()
	var retry bool
	var lastWarn time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !retry && !errors.Is(s.Health(), ErrFailed) {
			continue
		}
		err := reopen(ctx)
		retry = err != nil
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case time.Since(lastWarn) > 30*time.Second:
			s.log.Warn("join store still failed; retrying every second", "err", err)
			lastWarn = time.Now()
		}
	}
}
