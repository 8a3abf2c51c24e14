package loadtest

import (
	"strings"
	"testing"
	"time"
)

func TestPhaseArrivalsAreOnSchedule(t *testing.T) {
	cases := []struct {
		name     string
		p        Phase
		arrivals int
		offsets  map[int]time.Duration // arrival -> due offset
	}{
		{"constant 800/s for 1s", Phase{From: 800, To: 800, Duration: time.Second}, 800,
			map[int]time.Duration{0: 0, 1: 1250 * time.Microsecond, 400: 500 * time.Millisecond, 799: 998750 * time.Microsecond}},
		// 0 -> 100/s over 10 s integrates to 5 t²: arrival k is due at sqrt(k/5) s.
		{"ramp from 0", Phase{From: 0, To: 100, Duration: 10 * time.Second}, 500,
			map[int]time.Duration{0: 0, 5: time.Second, 20: 2 * time.Second, 320: 8 * time.Second}},
		// 100 -> 300/s over 2 s integrates to 100 t + 50 t²: 400 arrivals; 150 at t = 1 s.
		{"ramp up", Phase{From: 100, To: 300, Duration: 2 * time.Second}, 400, map[int]time.Duration{150: time.Second}},
		// 300 -> 100/s over 2 s integrates to 300 t - 50 t²: 250 at t = 1 s.
		{"ramp down", Phase{From: 300, To: 100, Duration: 2 * time.Second}, 400, map[int]time.Duration{250: time.Second}},
		{"fractional rate rounds the count up", Phase{From: 2.5, To: 2.5, Duration: time.Second}, 3, map[int]time.Duration{2: 800 * time.Millisecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if n := tc.p.Arrivals(); n != tc.arrivals {
				t.Errorf("Arrivals() = %d, want %d", n, tc.arrivals)
			}
			for k, want := range tc.offsets {
				if got := tc.p.Offset(k); (got - want).Abs() > time.Microsecond {
					t.Errorf("Offset(%d) = %s, want %s", k, got, want)
				}
			}
			prev := time.Duration(-1)
			for k := range tc.p.Arrivals() {
				off := tc.p.Offset(k)
				if off <= prev || off >= tc.p.Duration {
					t.Fatalf("Offset(%d) = %s after %s: offsets must increase and stay within the phase", k, off, prev)
				}
				prev = off
			}
		})
	}
}

func TestParsePhases(t *testing.T) {
	got, err := ParsePhases("200/30s, 400/30s,0-800/2m,800", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := []Phase{{200, 200, 30 * time.Second}, {400, 400, 30 * time.Second}, {0, 800, 2 * time.Minute}, {800, 800, time.Minute}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("phase %d = %+v, want %+v", i+1, got[i], want[i])
		}
	}
	bad := []struct{ in, want string }{
		{"800/soon", `phase 1 "800/soon": duration "soon"`},
		{"200/30s,fast/1m", `phase 2 "fast/1m": rate "fast"`},
		{"-5/1m", `phase 1 "-5/1m": rate ""`},
		{"0/1m", "a phase at 0/s sends nothing"},
		{"800/0s", "duration 0s must be positive"},
		{"2000000/1s", "above 1000000/s"},
	}
	for _, tc := range bad {
		if _, err := ParsePhases(tc.in, time.Minute); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePhases(%q) error %v, want it to contain %q", tc.in, err, tc.want)
		}
	}
}
