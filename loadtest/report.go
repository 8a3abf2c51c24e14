package loadtest

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Report is the outcome of a load test.
type Report struct {
	Started     time.Time `json:"started"`
	DurationS   float64   `json:"duration_s"` // of the schedule
	Payloads    int       `json:"payloads"`   // distinct payloads, replayed in a cycle
	MaxInFlight int       `json:"max_in_flight"`
	TimeoutS    float64   `json:"timeout_s"`
	// Interrupted: the run ended before its schedule did.
	Interrupted bool          `json:"interrupted"`
	Phases      []PhaseReport `json:"phases"`
	Total       Summary       `json:"total"`
	Divergence  *Divergence   `json:"divergence,omitempty"`
	Verdict     *Verdict      `json:"verdict,omitempty"`
}

// PhaseReport is one phase's outcome. Requests belong to the phase they were due in.
type PhaseReport struct {
	FromRate  float64 `json:"from_rate"`
	ToRate    float64 `json:"to_rate"`
	DurationS float64 `json:"duration_s"`
	// Judged: the SLO was checked on this phase (its peak rate is at most the SLO's
	// rate); faster phases show headroom only.
	Judged bool `json:"judged"`
	Summary
	phase Phase
}

// Summary counts requests and their latency.
type Summary struct {
	// Scheduled is how many requests the schedule made due (until an interruption).
	Scheduled int `json:"scheduled"`
	// Sent excludes the requests dropped at the concurrency cap.
	Sent    int `json:"sent"`
	Dropped int `json:"dropped_concurrency_cap"`
	OK      int `json:"ok"`
	// Errors counts completed requests by error class.
	Errors map[Class]int `json:"errors"`
	// IntendedRate is Scheduled over the duration; AchievedRate the successful
	// responses that completed within the duration, over it.
	IntendedRate float64 `json:"intended_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	// Latency is measured from each request's intended send time (what a caller
	// arriving on schedule would have waited), ServiceTime from its actual send, and
	// SendLag is how late the generator sent (its own overhead).
	Latency     Latency `json:"latency"`
	ServiceTime Latency `json:"service_time"`
	SendLag     Latency `json:"send_lag"`
}

// ErrorCount is the number of completed requests that failed.
func (s Summary) ErrorCount() int {
	n := 0
	for _, c := range s.Errors {
		n += c
	}
	return n
}

// Latency is a distribution in milliseconds, from an HDR histogram (1 µs to 1 h,
// 3 significant digits: each value within 0.1 %).
type Latency struct {
	Count  int64   `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Count: h.TotalCount(), MeanMS: h.Mean() / 1000,
		P50MS: ms(h.ValueAtQuantile(50)), P90MS: ms(h.ValueAtQuantile(90)),
		P99MS: ms(h.ValueAtQuantile(99)), P999MS: ms(h.ValueAtQuantile(99.9)),
		MaxMS: ms(h.Max()),
	}
}

func (r *runner) report(interrupted bool) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &Report{
		Started: r.start, DurationS: scheduleDuration(r.cfg.Phases).Seconds(), Payloads: len(r.payloads),
		MaxInFlight: r.cfg.MaxInFlight, TimeoutS: r.cfg.Timeout.Seconds(), Interrupted: interrupted,
	}
	all := newTally()
	for i, p := range r.cfg.Phases {
		t := r.phases[i]
		sum := summarize(t, p.Duration)
		rep.Phases = append(rep.Phases, PhaseReport{FromRate: p.From, ToRate: p.To, DurationS: p.Duration.Seconds(), Summary: sum, phase: p})
		all.latency.Merge(t.latency)
		all.service.Merge(t.service)
		all.lag.Merge(t.lag)
		all.sent += t.sent
		all.dropped += t.dropped
		all.okIn += t.classes[OK]
		for c, n := range t.classes {
			all.classes[c] += n
		}
	}
	wall := scheduleDuration(r.cfg.Phases)
	if end := r.lastDone.Sub(r.start); end > wall {
		wall = end
	}
	rep.Total = summarize(all, wall)
	rep.Total.IntendedRate = float64(rep.Total.Scheduled) / scheduleDuration(r.cfg.Phases).Seconds()
	if r.diverge != nil {
		rep.Divergence = r.diverge.result()
	}
	return rep
}

func summarize(t *tally, d time.Duration) Summary {
	s := Summary{
		Scheduled: t.sent + t.dropped, Sent: t.sent, Dropped: t.dropped, OK: t.classes[OK],
		Errors: map[Class]int{}, Latency: latencyOf(t.latency), ServiceTime: latencyOf(t.service), SendLag: latencyOf(t.lag),
	}
	for c, n := range t.classes {
		if c != OK {
			s.Errors[c] = n
		}
	}
	s.IntendedRate = float64(s.Scheduled) / d.Seconds()
	s.AchievedRate = float64(t.okIn) / d.Seconds()
	return s
}

// SLO is the service level a load test is judged against.
type SLO struct {
	// P99 bounds the 99th percentile latency from the intended send time.
	P99 time.Duration
	// Rate (requests/s) is the load the target must sustain: phases up to it are
	// judged, and the schedule must reach it.
	Rate float64
	// MaxErrorRate is the largest share of failed requests allowed, in [0, 1).
	MaxErrorRate float64
}

func (s SLO) String() string {
	return fmt.Sprintf("p99 <= %s at up to %s/s, errors <= %s", fmtMS(float64(s.P99)/1e6), fmtRate(s.Rate), fmtPct(s.MaxErrorRate))
}

// Verdict is the SLO's judgement of a report.
type Verdict struct {
	Pass         bool     `json:"pass"`
	P99MS        float64  `json:"slo_p99_ms"`
	Rate         float64  `json:"slo_rate"`
	MaxErrorRate float64  `json:"slo_max_error_rate"`
	Reasons      []string `json:"reasons"`
}

// Judge checks the report against slo and stores the verdict in it. Every phase whose
// peak intended rate is at most slo.Rate must keep p99 within slo.P99, drop nothing at
// the concurrency cap (a drop is a request the target was too slow to take) and fail
// at most MaxErrorRate of its requests; at least one of them must run at slo.Rate,
// and the schedule must have completed. Pass is evidence, not the absence of it: a
// schedule that never reaches the SLO's rate fails.
func (r *Report) Judge(slo SLO) *Verdict {
	v := &Verdict{P99MS: float64(slo.P99) / 1e6, Rate: slo.Rate, MaxErrorRate: slo.MaxErrorRate}
	fail := func(format string, args ...any) { v.Reasons = append(v.Reasons, fmt.Sprintf(format, args...)) }
	const eps = 1e-9
	reached := false
	judged := 0
	for i := range r.Phases {
		p := &r.Phases[i]
		peak := max(p.FromRate, p.ToRate)
		if peak > slo.Rate*(1+eps) {
			continue
		}
		p.Judged = true
		judged++
		if peak >= slo.Rate*(1-eps) {
			reached = true
		}
		name := fmt.Sprintf("phase %d (%s)", i+1, p.phase)
		switch {
		case p.Sent == 0:
			fail("%s: no request was sent", name)
		case p.Latency.P99MS > v.P99MS:
			fail("%s: p99 %s > %s (from the intended send time; service time p99 %s, send lag p99 %s)",
				name, fmtMS(p.Latency.P99MS), fmtMS(v.P99MS), fmtMS(p.ServiceTime.P99MS), fmtMS(p.SendLag.P99MS))
		}
		if p.Dropped > 0 {
			fail("%s: %d of %d requests dropped at the concurrency cap (%d in flight): the target fell behind the schedule",
				name, p.Dropped, p.Scheduled, r.MaxInFlight)
		}
		if p.Sent > 0 {
			if rate := float64(p.ErrorCount()) / float64(p.Sent); rate > slo.MaxErrorRate {
				fail("%s: %s of requests failed (%s), over %s", name, fmtPct(rate), fmtClasses(p.Errors), fmtPct(slo.MaxErrorRate))
			}
		}
	}
	if !reached {
		peak := 0.0
		for _, p := range r.Phases {
			peak = max(peak, p.FromRate, p.ToRate)
		}
		if judged == 0 {
			fail("every phase runs above the SLO rate %s/s: none was judged", fmtRate(slo.Rate))
		} else {
			fail("the schedule's judged phases peak at %s/s, below the SLO rate %s/s: nothing shows the target sustains it", fmtRate(peak), fmtRate(slo.Rate))
		}
	}
	if r.Interrupted {
		fail("the run was interrupted before its schedule ended")
	}
	v.Pass = len(v.Reasons) == 0
	r.Verdict = v
	return v
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "load test: %d phase(s), %s, %d distinct payload(s), at most %d in flight, timeout %s\n",
		len(r.Phases), time.Duration(r.DurationS*float64(time.Second)), r.Payloads, r.MaxInFlight, time.Duration(r.TimeoutS*float64(time.Second)))
	if r.Interrupted {
		b.WriteString("INTERRUPTED before the schedule ended: partial results\n")
	}
	b.WriteString("latency from the intended send time, in ms (open loop: a stall shows in every request due during it)\n")
	names := []string{"phase"}
	for i, p := range r.Phases {
		mark := ""
		if r.Verdict != nil && !p.Judged {
			mark = " (headroom, not judged)"
		}
		names = append(names, fmt.Sprintf("%d  %s%s", i+1, p.phase, mark))
	}
	names = append(names, "total")
	width := 0
	for _, n := range names {
		width = max(width, len([]rune(n)))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", width-len([]rune(s))) } // left-aligned in a right-aligned table
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tscheduled\tdropped\terrors\tintended/s\tachieved/s\tp50\tp90\tp99\tp99.9\tmax\t\n", pad(names[0]))
	row := func(name string, s Summary) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", pad(name), s.Scheduled, s.Dropped, s.ErrorCount(),
			s.IntendedRate, s.AchievedRate, fmtNum(s.Latency.P50MS), fmtNum(s.Latency.P90MS), fmtNum(s.Latency.P99MS),
			fmtNum(s.Latency.P999MS), fmtNum(s.Latency.MaxMS))
	}
	for i := range r.Phases {
		row(names[i+1], r.Phases[i].Summary)
	}
	row("total", r.Total)
	if err := tw.Flush(); err != nil {
		return err
	}
	t := r.Total
	if len(t.Errors) > 0 {
		fmt.Fprintf(&b, "errors: %s\n", fmtClasses(t.Errors))
	}
	fmt.Fprintf(&b, "service time (from the actual send): p50 %s, p99 %s, max %s ms; generator send lag: p99 %s, max %s ms\n",
		fmtNum(t.ServiceTime.P50MS), fmtNum(t.ServiceTime.P99MS), fmtNum(t.ServiceTime.MaxMS), fmtNum(t.SendLag.P99MS), fmtNum(t.SendLag.MaxMS))
	if d := r.Divergence; d != nil {
		fmt.Fprintf(&b, "\ncandidate vs production scores on identical payloads (flag at score >= %v):\n", d.Threshold)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "segment\tpairs\tunscored\tmean |diff|\tmax |diff|\tmean diff\tflag disagreement\tflag rate prod\tflag rate cand\t")
		for _, s := range d.Segments {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.4f\t%.4f\t%+.4f\t%s\t%s\t%s\t\n", s.Segment, s.Pairs, s.Unscored, s.MeanAbsDiff, s.MaxAbsDiff,
				s.MeanDiff, fmtPct(s.FlagDisagreement), fmtPct(s.ProductionFlagRate), fmtPct(s.CandidateFlagRate))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if v := r.Verdict; v != nil {
		slo := SLO{P99: time.Duration(v.P99MS * 1e6), Rate: v.Rate, MaxErrorRate: v.MaxErrorRate}
		if v.Pass {
			fmt.Fprintf(&b, "\nSLO (%s): PASS\n", slo)
		} else {
			fmt.Fprintf(&b, "\nSLO (%s): FAIL\n", slo)
			for _, why := range v.Reasons {
				fmt.Fprintf(&b, "  - %s\n", why)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtMS(ms float64) string { return fmtNum(ms) + " ms" }

func fmtNum(f float64) string {
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.2f", f)
}

func fmtPct(f float64) string {
	if f != 0 && f < 0.01 {
		return fmt.Sprintf("%.3g%%", 100*f)
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}

func fmtClasses(m map[Class]int) string {
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", c, m[c]))
	}
	return strings.Join(parts, ", ")
}
