package main

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// inference is what a label process needs to know about one generated request.
type inference struct {
	id    string
	at    time.Time // prediction time
	fraud bool      // the truth
	// flagged: the production model (v5) scored it at or above its threshold.
	flagged bool
}

// labelProcess decides which labels an inference gets and when they become known.
type labelProcess interface {
	// plan queues the inference's labels on q, drawing from rng, and returns what
	// became of it (fate: a label source, fateUnlabeled or fateDeclined) and how
	// many of its labels are corrections of an earlier one.
	plan(rng *rand.Rand, inf inference, q *labelQueue) (fate string, corrections int)
	// describe says in one line what the process does (for recording.json).
	describe() string
}

// Label sources written into the label events.
const (
	sourceDispute         = "dispute"
	sourceIssuerAlert     = "issuer_alert"
	sourceChargebackClose = "chargeback_window"

	// fateUnlabeled: the inference never gets a label (left to maturity).
	fateUnlabeled = "unlabeled"
	// fateDeclined: production declined the request; it never gets a label.
	fateDeclined = "declined"
)

// fastLabels is the demo's compressed label process: 90 % of inferences get
// their true label after delay × U(0.5, 1.5), one in 200 of those is corrected
// (flipped) one delay later, the rest are never labeled. It exists so that the
// demo shows movement within a minute; fraud labels are nothing like it.
type fastLabels struct {
	delay time.Duration
}

func (f fastLabels) plan(rng *rand.Rand, inf inference, q *labelQueue) (string, int) {
	if rng.IntN(10) == 0 {
		return fateUnlabeled, 0
	}
	due := inf.at.Add(time.Duration(float64(f.delay) * (0.5 + rng.Float64())))
	q.add(due, inf.id, inf.fraud, sourceDispute)
	if rng.IntN(200) == 0 { // an analyst corrects the dispute outcome later
		q.add(due.Add(f.delay), inf.id, !inf.fraud, sourceDispute)
		return sourceDispute, 1
	}
	return sourceDispute, 0
}

func (f fastLabels) describe() string {
	return fmt.Sprintf("fast (the demo's): 90%% of inferences labeled after %s x U(0.5, 1.5), 0.5%% of those corrected one delay later, 10%% never labeled", f.delay)
}

// realisticLabels is how fraud labels really arrive (PRODUCT.md, "Label reality"):
//
//   - A request production declined (v5 flagged it) never happened for the
//     cardholder: no dispute, no chargeback window, no label ever (selective
//     labels). declineShare of the flagged requests are declined; the rest are
//     let through and labeled like any other.
//   - Fraud that went through: alertShare of it is confirmed by an issuer alert
//     after a delay log-uniform in [alertMin, alertMax]; the rest is disputed,
//     the dispute settling after a log-normal delay (median disputeMedian, log
//     standard deviation disputeSigma) truncated to [disputeMin, disputeMax] by
//     drawing again.
//   - A legitimate transaction that went through: legitConfirmed of them are
//     confirmed legitimate when the chargeback window closes, chargebackWindow
//     after the transaction plus a processing lag uniform in [0, 24h); the rest
//     never get a label (they are left to maturity).
type realisticLabels struct {
	declineShare           float64
	alertShare             float64
	alertMin, alertMax     time.Duration
	disputeMedian          time.Duration
	disputeSigma           float64
	disputeMin, disputeMax time.Duration
	legitConfirmed         float64
	chargebackWindow       time.Duration
}

// defaultRealisticLabels are the defaults of `verdict dataset`'s flags.
func defaultRealisticLabels() realisticLabels {
	const day = 24 * time.Hour
	return realisticLabels{
		declineShare: 1, alertShare: 0.05, alertMin: 5 * time.Minute, alertMax: 4 * time.Hour,
		disputeMedian: 15 * day, disputeSigma: 0.6, disputeMin: 3 * day, disputeMax: 60 * day,
		legitConfirmed: 0.5, chargebackWindow: 45 * day,
	}
}

// chargebackLag is the spread of legitimate confirmations after the window closes.
const chargebackLag = 24 * time.Hour

func (r realisticLabels) plan(rng *rand.Rand, inf inference, q *labelQueue) (string, int) {
	if inf.flagged && rng.Float64() < r.declineShare {
		return fateDeclined, 0
	}
	switch {
	case inf.fraud && rng.Float64() < r.alertShare:
		lo, hi := math.Log(float64(r.alertMin)), math.Log(float64(r.alertMax))
		q.add(inf.at.Add(time.Duration(math.Exp(lo+(hi-lo)*rng.Float64()))), inf.id, true, sourceIssuerAlert)
		return sourceIssuerAlert, 0
	case inf.fraud:
		q.add(inf.at.Add(r.disputeDelay(rng)), inf.id, true, sourceDispute)
		return sourceDispute, 0
	case rng.Float64() < r.legitConfirmed:
		lag := time.Duration(rng.Int64N(int64(chargebackLag)))
		q.add(inf.at.Add(r.chargebackWindow+lag), inf.id, false, sourceChargebackClose)
		return sourceChargebackClose, 0
	}
	return fateUnlabeled, 0
}

// disputeDelay draws the truncated log-normal delay of a dispute's settlement.
func (r realisticLabels) disputeDelay(rng *rand.Rand) time.Duration {
	mu := math.Log(float64(r.disputeMedian))
	for range 1000 {
		d := time.Duration(math.Exp(mu + r.disputeSigma*rng.NormFloat64()))
		if d >= r.disputeMin && d <= r.disputeMax {
			return d
		}
	}
	// The flags make [min, max] hold the median, so this is never reached in practice.
	return r.disputeMedian
}

func (r realisticLabels) describe() string {
	return fmt.Sprintf("realistic: %s of production-flagged requests declined and never labeled; of the fraud that went through, "+
		"%s confirmed by issuer alerts after %s to %s (log-uniform), the rest disputed after a log-normal delay "+
		"(median %s, sigma %g) within [%s, %s]; %s of legitimate transactions confirmed when the %s chargeback window closes "+
		"(+ up to 1d), the rest never labeled (left to maturity)",
		pct(r.declineShare), pct(r.alertShare), r.alertMin, r.alertMax, formatDays(r.disputeMedian), r.disputeSigma,
		formatDays(r.disputeMin), formatDays(r.disputeMax), pct(r.legitConfirmed), formatDays(r.chargebackWindow))
}

// validate names the flag of a setting that makes no sense.
func (r realisticLabels) validate() error {
	share := func(flag string, v float64) error {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("%s %v: want a share between 0 and 1", flag, v)
		}
		return nil
	}
	for _, s := range []struct {
		flag string
		v    float64
	}{{"--decline", r.declineShare}, {"--alert-share", r.alertShare}, {"--legit-confirmed", r.legitConfirmed}} {
		if err := share(s.flag, s.v); err != nil {
			return err
		}
	}
	switch {
	case r.alertMin <= 0 || r.alertMax < r.alertMin:
		return fmt.Errorf("--alert-delay-min %s and --alert-delay-max %s: want 0 < min <= max", r.alertMin, r.alertMax)
	case r.disputeMin <= 0 || r.disputeMax < r.disputeMin:
		return fmt.Errorf("--dispute-min %s and --dispute-max %s: want 0 < min <= max", formatDays(r.disputeMin), formatDays(r.disputeMax))
	case r.disputeMedian < r.disputeMin || r.disputeMedian > r.disputeMax:
		return fmt.Errorf("--dispute-median %s: want it within [--dispute-min, --dispute-max] = [%s, %s]",
			formatDays(r.disputeMedian), formatDays(r.disputeMin), formatDays(r.disputeMax))
	case !(r.disputeSigma >= 0 && r.disputeSigma <= 3):
		return fmt.Errorf("--dispute-sigma %v: want between 0 and 3", r.disputeSigma)
	case r.chargebackWindow <= 0:
		return fmt.Errorf("--chargeback-window %s must be positive", formatDays(r.chargebackWindow))
	}
	return nil
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'g', 4, 64) + "%" }

// dayDuration is a flag value: a Go duration (90m, 36h) or a number of days (45d,
// 1.5d), since label delays are counted in days.
type dayDuration struct{ d *time.Duration }

func (v dayDuration) String() string {
	if v.d == nil {
		return ""
	}
	return formatDays(*v.d)
}

func (v dayDuration) Set(s string) error {
	d, err := parseDays(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		f, err := strconv.ParseFloat(n, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || f > 100*365 {
			return 0, fmt.Errorf("%q: want a duration such as 45d, 1.5d or 36h", s)
		}
		return time.Duration(f * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a duration such as 45d, 1.5d or 36h", s)
	}
	return d, nil
}

// formatDays prints whole and half days as 45d or 1.5d, anything else as Go does.
func formatDays(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%(day/2) == 0 {
		return strconv.FormatFloat(float64(d)/float64(day), 'f', -1, 64) + "d"
	}
	return d.String()
}

// plannedLabel is a label that becomes known at due.
type plannedLabel struct {
	due      time.Time
	seq      int // planning order: ties on due keep it
	id       string
	positive bool
	source   string
}

// labelQueue holds planned labels until they are due: a min-heap on (due, seq),
// so that weeks of pending disputes cost O(log n) each.
type labelQueue struct {
	items []plannedLabel
	seq   int
}

func (q *labelQueue) add(due time.Time, id string, positive bool, source string) {
	q.seq++
	heap.Push((*labelHeap)(q), plannedLabel{due: due, seq: q.seq, id: id, positive: positive, source: source})
}

// popDue removes the labels due at or before now and returns them in order.
func (q *labelQueue) popDue(now time.Time) []plannedLabel {
	var out []plannedLabel
	for len(q.items) > 0 && !q.items[0].due.After(now) {
		out = append(out, heap.Pop((*labelHeap)(q)).(plannedLabel))
	}
	return out
}

// line is the label event in verdict JSON.
func (l plannedLabel) line() []byte {
	b, _ := json.Marshal(map[string]any{"inference_id": l.id, "label": l.positive,
		"time": l.due.UTC().Format(time.RFC3339Nano), "source": l.source})
	return b
}

// labelHeap implements heap.Interface on a labelQueue.
type labelHeap labelQueue

func (h *labelHeap) Len() int { return len(h.items) }
func (h *labelHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if c := a.due.Compare(b.due); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}
func (h *labelHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *labelHeap) Push(x any)    { h.items = append(h.items, x.(plannedLabel)) }
func (h *labelHeap) Pop() any {
	n := len(h.items)
	x := h.items[n-1]
	h.items = h.items[:n-1]
	return x
}
