package numfmt

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                 "0s",
		90 * time.Second:                  "1m30s",
		5 * time.Minute:                   "5m",
		time.Hour:                         "1h",
		90 * time.Minute:                  "1h30m",
		168 * time.Hour:                   "168h",
		time.Hour + 5*time.Second:         "1h0m5s",
		1500 * time.Millisecond:           "1.5s",
		10*time.Minute + time.Millisecond: "10m0.001s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}
