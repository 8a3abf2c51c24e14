package loadtest

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Phase is one stretch of the arrival schedule: a constant rate (From == To) or a
// linear ramp from From to To arrivals per second over Duration, like Inference
// Recommender's phases but in requests per second rather than users.
type Phase struct {
	From     float64       `json:"from_rate"`
	To       float64       `json:"to_rate"`
	Duration time.Duration `json:"duration"`
}

// Peak is the highest intended rate in the phase.
func (p Phase) Peak() float64 { return math.Max(p.From, p.To) }

// expected is the number of arrivals the rate function integrates to by t.
func (p Phase) expected(t time.Duration) float64 {
	s := t.Seconds()
	return p.From*s + (p.To-p.From)*s*s/(2*p.Duration.Seconds())
}

// Arrivals is the number of requests the phase schedules: arrival k (0-based) is
// sent at the time the rate integrates to k, for every such time before Duration.
func (p Phase) Arrivals() int {
	return int(math.Ceil(p.expected(p.Duration) - 1e-9))
}

// Offset is when arrival k is due, from the start of the phase: the t at which the
// integral of the rate reaches k (exact for ramps: the root of a quadratic).
func (p Phase) Offset(k int) time.Duration {
	if k <= 0 {
		return 0
	}
	n := float64(k)
	a := (p.To - p.From) / (2 * p.Duration.Seconds())
	var s float64
	if math.Abs(a) < 1e-12 {
		s = n / p.From
	} else {
		// a s² + From s - n = 0, the root on the increasing branch.
		s = (-p.From + math.Sqrt(p.From*p.From+4*a*n)) / (2 * a)
	}
	return time.Duration(s * float64(time.Second))
}

func (p Phase) String() string {
	if p.From == p.To {
		return fmt.Sprintf("%s/s for %s", fmtRate(p.From), p.Duration)
	}
	return fmt.Sprintf("%s→%s/s over %s", fmtRate(p.From), fmtRate(p.To), p.Duration)
}

func fmtRate(r float64) string { return strconv.FormatFloat(r, 'f', -1, 64) }

// MaxRate bounds a phase's rate: beyond it the arrival spacing (1 µs) is below what
// the scheduler can keep.
const MaxRate = 1e6

// ParsePhases reads a schedule such as "200/30s,400/30s,800/1m" (steps) or
// "0-800/2m,800/5m" (a ramp, then a hold): comma-separated phases, each RATE/DURATION
// or FROM-TO/DURATION. A phase without /DURATION takes defaultDuration. The error
// names the phase at fault and why.
func ParsePhases(s string, defaultDuration time.Duration) ([]Phase, error) {
	var phases []Phase
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		p, err := parsePhase(part, defaultDuration)
		if err != nil {
			return nil, fmt.Errorf("phase %d %q: %w", i+1, part, err)
		}
		phases = append(phases, p)
	}
	return phases, nil
}

func parsePhase(s string, defaultDuration time.Duration) (Phase, error) {
	rates, dur, hasDur := strings.Cut(s, "/")
	p := Phase{Duration: defaultDuration}
	if hasDur {
		d, err := time.ParseDuration(dur)
		if err != nil {
			return p, fmt.Errorf("duration %q: want a Go duration such as 30s or 2m", dur)
		}
		p.Duration = d
	}
	from, to, ramp := strings.Cut(rates, "-")
	var err error
	if p.From, err = parseRate(from); err != nil {
		return p, err
	}
	p.To = p.From
	if ramp {
		if p.To, err = parseRate(to); err != nil {
			return p, err
		}
	}
	return p, p.validate()
}

func parseRate(s string) (float64, error) {
	r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("rate %q: want requests per second, e.g. 800", s)
	}
	return r, nil
}

func (p Phase) validate() error {
	switch {
	case p.Duration <= 0:
		return fmt.Errorf("duration %s must be positive", p.Duration)
	case math.IsNaN(p.From) || math.IsNaN(p.To) || p.From < 0 || p.To < 0:
		return errors.New("rates must be at least 0")
	case p.Peak() > MaxRate:
		return fmt.Errorf("rate %s is above %s/s", fmtRate(p.Peak()), fmtRate(MaxRate))
	case p.From == 0 && p.To == 0:
		return errors.New("a phase at 0/s sends nothing")
	}
	return nil
}

// scheduleDuration is the length of all phases.
func scheduleDuration(phases []Phase) time.Duration {
	var d time.Duration
	for _, p := range phases {
		d += p.Duration
	}
	return d
}
