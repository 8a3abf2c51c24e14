// Package loadtest replays captured requests against a model endpoint at a scheduled
// rate, open loop, and reports the latency distribution, achieved rate, errors by
// class, the divergence of the candidate's scores from production's, and a verdict
// against a latency/rate SLO.
//
// Open loop: request k is due at its scheduled time whatever the target does with
// earlier ones, and its latency is measured from that intended time, not from when it
// was actually sent. A stalled server therefore shows its stall in every request that
// was due during it (no coordinated omission), and a generator that falls behind its
// schedule shows its own lag in the latency instead of hiding it. When MaxInFlight
// requests are outstanding a due request is not sent: it is counted as dropped at the
// concurrency cap, never queued to wait.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Config is one load test.
type Config struct {
	// Phases is the arrival schedule, run one after another.
	Phases []Phase
	// MaxInFlight caps outstanding requests; a request due while the cap is reached
	// is dropped (and counted).
	MaxInFlight int
	// Timeout bounds one request, from when it is sent.
	Timeout time.Duration
	// Compare, when set, scores the candidate's responses to payloads that carry a
	// production score.
	Compare *Comparison
	// Progress, when set, is called every second while the test runs, from another
	// goroutine.
	Progress func(Progress)
}

// Comparison reads the candidate's score from a response body. Threshold decides
// flags (score >= Threshold) for both models.
type Comparison struct {
	Score     func(body []byte) (float64, error)
	Threshold float64
}

// Progress is a snapshot while the test runs.
type Progress struct {
	Elapsed      time.Duration
	Phase        int // 1-based
	Phases       int
	IntendedRate float64 // the schedule's rate now
	Sent         int64
	Completed    int64
	InFlight     int64
	Dropped      int64
	Errors       int64
	// RecentRate and RecentP99 cover the completions since the previous report.
	RecentRate float64
	RecentP99  time.Duration
}

// Histogram range: 1 µs to 1 h at 3 significant digits (0.1 % resolution).
const (
	histMin    = 1
	histMax    = int64(time.Hour / time.Microsecond)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

func record(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
	}
	_ = h.RecordValue(us) // in range by construction
}

// tally is one phase's counts.
type tally struct {
	latency *hdrhistogram.Histogram // completion - intended send time
	service *hdrhistogram.Histogram // completion - actual send time
	lag     *hdrhistogram.Histogram // actual - intended send time
	sent    int
	dropped int
	classes map[Class]int
	okIn    int // OK completions that fell within this phase's time window
}

func newTally() *tally {
	return &tally{latency: newHist(), service: newHist(), lag: newHist(), classes: map[Class]int{}}
}

type runner struct {
	cfg      Config
	target   Target
	payloads []Payload
	start    time.Time
	bounds   []time.Duration // end offset of each phase

	mu        sync.Mutex
	phases    []*tally
	recent    *hdrhistogram.Histogram
	recentN   int64
	lastDone  time.Time
	compared  []atomic.Bool
	diverge   *divergence
	completed atomic.Int64
	sent      atomic.Int64
	dropped   atomic.Int64
	errs      atomic.Int64
	inFlight  atomic.Int64
	phaseNow  atomic.Int64
}

// Run plays the schedule against target, cycling through payloads in order, and
// returns the report. It returns early, with the report so far and ctx's error, when
// ctx ends; requests then in flight count as canceled.
func Run(ctx context.Context, target Target, payloads []Payload, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(payloads) == 0 {
		return nil, errors.New("loadtest: no payloads to send")
	}
	r := &runner{cfg: cfg, target: target, payloads: payloads, recent: newHist(), compared: make([]atomic.Bool, len(payloads))}
	if cfg.Compare != nil {
		r.diverge = newDivergence(cfg.Compare.Threshold)
	}
	var off time.Duration
	for range cfg.Phases {
		r.phases = append(r.phases, newTally())
	}
	for _, p := range cfg.Phases {
		off += p.Duration
		r.bounds = append(r.bounds, off)
	}

	stopProgress := r.reportProgress(ctx)
	r.start = time.Now()
	interrupted := r.dispatch(ctx)
	stopProgress()
	return r.report(interrupted), ctx.Err()
}

func (c Config) validate() error {
	var errs []error
	if len(c.Phases) == 0 {
		errs = append(errs, errors.New("loadtest: no phases"))
	}
	for i, p := range c.Phases {
		if err := p.validate(); err != nil {
			errs = append(errs, fmt.Errorf("loadtest: phase %d (%s): %w", i+1, p, err))
		}
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("loadtest: MaxInFlight %d must be at least 1", c.MaxInFlight))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("loadtest: Timeout %s must be positive", c.Timeout))
	}
	if c.Compare != nil && c.Compare.Score == nil {
		errs = append(errs, errors.New("loadtest: Compare.Score is required"))
	}
	return errors.Join(errs...)
}

// dispatch sends every arrival at its due time and waits for the responses. It
// reports whether ctx ended first.
func (r *runner) dispatch(ctx context.Context) (interrupted bool) {
	sem := make(chan struct{}, r.cfg.MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	seq := 0
	var phaseStart time.Duration
	for pi, p := range r.cfg.Phases {
		r.phaseNow.Store(int64(pi))
		n := p.Arrivals()
		for k := range n {
			due := r.start.Add(phaseStart + p.Offset(k))
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					timer.Stop()
					return true
				case <-timer.C:
				}
			} else if ctx.Err() != nil {
				return true
			}
			idx := seq % len(r.payloads)
			seq++
			select {
			case sem <- struct{}{}:
			default:
				r.dropped.Add(1)
				r.mu.Lock()
				r.phases[pi].dropped++
				r.mu.Unlock()
				continue
			}
			r.inFlight.Add(1)
			r.sent.Add(1)
			wg.Go(func() {
				defer func() { <-sem; r.inFlight.Add(-1) }()
				r.send(ctx, pi, idx, due)
			})
		}
		phaseStart += p.Duration
	}
	return false
}

// send makes one request and records it.
func (r *runner) send(ctx context.Context, phase, idx int, due time.Time) {
	sentAt := time.Now()
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	body, err := r.target.Invoke(rctx, r.payloads[idx])
	done := time.Now()
	class := Classify(rctx, err)
	if err != nil && ctx.Err() != nil {
		class = Canceled // the run ended, not the request's own timeout
	}
	cancel()

	r.completed.Add(1)
	if class != OK {
		r.errs.Add(1)
	}
	doneIn := r.phaseAt(done.Sub(r.start))
	r.mu.Lock()
	t := r.phases[phase]
	t.sent++
	t.classes[class]++
	record(t.latency, done.Sub(due))
	record(t.service, done.Sub(sentAt))
	record(t.lag, sentAt.Sub(due))
	if class == OK && doneIn >= 0 {
		r.phases[doneIn].okIn++
	}
	record(r.recent, done.Sub(due))
	r.recentN++
	if done.After(r.lastDone) {
		r.lastDone = done
	}
	r.mu.Unlock()

	p := r.payloads[idx]
	if class == OK && r.diverge != nil && p.Production != nil && !r.compared[idx].Swap(true) {
		score, err := r.cfg.Compare.Score(body)
		r.diverge.add(p.Segment, *p.Production, score, err)
	}
}

// phaseAt is the phase whose time window holds offset, or -1 after the schedule.
func (r *runner) phaseAt(offset time.Duration) int {
	for i, end := range r.bounds {
		if offset < end {
			return i
		}
	}
	return -1
}

// reportProgress calls cfg.Progress every second until the returned stop.
func (r *runner) reportProgress(ctx context.Context) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				r.cfg.Progress(r.snapshot(now, now.Sub(last)))
				last = now
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (r *runner) snapshot(now time.Time, since time.Duration) Progress {
	pi := int(r.phaseNow.Load())
	elapsed := now.Sub(r.start)
	p := r.cfg.Phases[pi]
	var phaseStart time.Duration
	if pi > 0 {
		phaseStart = r.bounds[pi-1]
	}
	frac := min(1, max(0, (elapsed-phaseStart).Seconds()/p.Duration.Seconds()))
	r.mu.Lock()
	p99 := time.Duration(r.recent.ValueAtQuantile(99)) * time.Microsecond
	n := r.recentN
	r.recent.Reset()
	r.recentN = 0
	r.mu.Unlock()
	if n == 0 {
		p99 = 0
	}
	return Progress{
		Elapsed: elapsed, Phase: pi + 1, Phases: len(r.cfg.Phases),
		IntendedRate: p.From + (p.To-p.From)*frac,
		Sent:         r.sent.Load(), Completed: r.completed.Load(), InFlight: r.inFlight.Load(),
		Dropped: r.dropped.Load(), Errors: r.errs.Load(),
		RecentRate: float64(n) / since.Seconds(), RecentP99: p99,
	}
}
