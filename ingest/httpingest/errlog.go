package httpingest

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// failureLogEvery is how often a run of failed commits is logged: a full disk refuses
// every request for as long as it lasts, and a line per request would flood the log
// (often on the same disk). Every failure is still counted
// (verdict_ingest_sink_errors_total) and answered 503.
const failureLogEvery = 10 * time.Second

// failureLog logs the first commit failure at once and then at most one per
// failureLogEvery, saying how many it left out since the last line.
type failureLog struct {
	log *slog.Logger
	now func() time.Time

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (f *failureLog) error(ctx context.Context, msg string, args ...any) {
	f.mu.Lock()
	now := f.now()
	if !f.last.IsZero() && now.Sub(f.last) < failureLogEvery {
		f.suppressed++
		f.mu.Unlock()
		return
	}
	n, prev := f.suppressed, f.last
	f.last, f.suppressed = now, 0
	f.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n, "since", prev.UTC().Format(time.RFC3339))
	}
	f.log.ErrorContext(ctx, msg, args...)
}
