// Package logevery lets a caller log a run of the same failure at most once per
// interval, saying how many it left out: a full disk fails every request and every
// background job, and a line each would flood the log, often on that same disk.
package logevery

import (
	"sync"
	"time"
)

// Limiter allows one call per Every. The zero value with Every set is ready; it is
// safe for concurrent use.
type Limiter struct {
	Every time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	last    time.Time
	skipped int
}

// Allow reports whether the caller should log now: the first call and the first
// one at least Every after the last allowed. When it allows, skipped is how many
// calls it refused since the last allowed one, made at since (zero the first time).
func (l *Limiter) Allow() (ok bool, skipped int, since time.Time) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && t.Sub(l.last) < l.Every {
		l.skipped++
		return false, 0, time.Time{}
	}
	skipped, since = l.skipped, l.last
	l.last, l.skipped = t, 0
	return true, skipped, since
}
