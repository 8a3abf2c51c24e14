package rehearsal

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/verdictml/verdict/deploy"
)

// Schedule is a traffic shift on simulated time: the new fleet's share after each
// step, a bake of Wait after every step (the last one included), then the
// termination wait, during which SageMaker still rolls back on an alarm.
type Schedule struct {
	Type  string
	Start time.Time
	// Shares are the new fleet's traffic share after each step, as fractions.
	Shares          []float64
	Wait            time.Duration
	TerminationWait time.Duration
}

// NewSchedule is the shift of rollout r starting at start (deploy.Rollout.Shares
// and the waits; the same timeline as `verdict deploy plan`).
func NewSchedule(r *deploy.Rollout, start time.Time) Schedule {
	s := Schedule{Type: r.Traffic.Type, Start: start, Wait: r.Traffic.WaitInterval, TerminationWait: r.Traffic.TerminationWait}
	for _, p := range r.Shares() {
		s.Shares = append(s.Shares, p/100)
	}
	return s
}

// ShiftEnd is when the last step's bake ends and the termination wait begins.
func (s Schedule) ShiftEnd() time.Time {
	return s.Start.Add(time.Duration(len(s.Shares)) * s.Wait)
}

// End is when the old fleet would be terminated: the rollout has completed.
func (s Schedule) End() time.Time { return s.ShiftEnd().Add(s.TerminationWait) }

// step is the index of the step in effect at t: -1 before the start, len(Shares)
// once every step has baked.
func (s Schedule) step(t time.Time) int {
	switch {
	case t.Before(s.Start):
		return -1
	case s.Wait <= 0:
		return len(s.Shares) - 1
	}
	return min(int(t.Sub(s.Start)/s.Wait), len(s.Shares))
}

// ShareAt is the new fleet's traffic share at t: 0 before the start, the current
// step's share during the shift, 1 once every step has baked.
func (s Schedule) ShareAt(t time.Time) float64 {
	i := s.step(t)
	switch {
	case i < 0 || len(s.Shares) == 0:
		return 0
	case i >= len(s.Shares):
		return 1
	}
	return s.Shares[i]
}

// Phase describes where the shift is at t.
func (s Schedule) Phase(t time.Time) string {
	i := s.step(t)
	switch {
	case i < 0:
		return "before the shift"
	case !t.Before(s.End()):
		return "complete"
	case i >= len(s.Shares) || (s.Wait <= 0 && !t.Before(s.ShiftEnd())):
		return "termination wait"
	}
	return fmt.Sprintf("step %d/%d", i+1, len(s.Shares))
}

// Served reports whether the new fleet serves the request with inference id id
// when it has share of the traffic. The choice is a hash of the id, so it is
// deterministic and monotone: a request served at some share is served at every
// larger share. Share 0 serves none, share 1 serves all.
func Served(id string, share float64) bool {
	h := fnv.New64a()
	h.Write([]byte(id))
	x := h.Sum64()
	// splitmix64's finalizer: FNV leaves similar ids (txn-1, txn-2) close together.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	// The top 53 bits as a uniform number in [0, 1).
	u := float64(x>>11) / (1 << 53)
	return u < share
}
