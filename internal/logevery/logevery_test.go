package logevery

import (
	"testing"
	"time"
)

func TestAllowOncePerIntervalWithTheCountLeftOut(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	now := t0
	l := Limiter{Every: 10 * time.Second, Now: func() time.Time { return now }}
	type want struct {
		ok      bool
		skipped int
		since   time.Time
	}
	step := func(d time.Duration, w want) {
		t.Helper()
		now = now.Add(d)
		ok, skipped, since := l.Allow()
		if got := (want{ok, skipped, since}); got != w {
			t.Fatalf("at %s: got %+v, want %+v", now.Sub(t0), got, w)
		}
	}
	step(0, want{ok: true})                                       // the first call logs
	step(time.Second, want{})                                     // refused
	step(8*time.Second, want{})                                   // 9 s: refused
	step(999*time.Millisecond, want{})                            // 9.999 s: refused
	step(time.Millisecond, want{true, 3, t0})                     // 10 s: allowed, 3 left out since t0
	step(10*time.Second, want{true, 0, t0.Add(10 * time.Second)}) // none left out
}
