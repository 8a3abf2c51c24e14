package window

import (
	"fmt"
	"slices"
	"time"

	"github.com/verdictml/verdict/tally"
)

// MaxSteps is the most steps one Timelines call returns per series.
const MaxSteps = 2000

// Step is one step of a time series: the predictions whose prediction time lies in
// [Start, End), what became of them so far, and the statistics derived from that.
// A step is a cohort: its counts grow as labels for its predictions arrive, so an
// old step's precision becomes estimable while a recent one's is not yet.
type Step struct {
	Start, End time.Time
	// Partial marks the step that holds now: predictions are still arriving in it.
	Partial bool
	Counts  tally.Counts
	Stats   Stats
}

// Timeline is one series' steps, oldest first.
type Timeline struct {
	Key   tally.Key
	Steps []Step
}

// Timelines is every kept series over a span, cut into steps of equal width.
type Timelines struct {
	Span Span
	Step time.Duration
	// Start is the first step's start, End is now (inside the last step).
	Start, End time.Time
	// Series are ordered as a Snapshot's rows: by variant, overall before segments,
	// then segment key and value. Pair series are left out.
	Series []Timeline
}

// Timelines cuts the span ending now into steps of width step, aligned to multiples
// of step since the Unix epoch (so two calls a moment apart give the same steps),
// and sums each series kept by keep (nil keeps all) into them. step must be a
// multiple of the bucket width and span at most Longest; the first step starts at
// or after the oldest kept bucket, so no step is missing part of its buckets.
func (w *Windows) Timelines(span Span, step time.Duration, keep func(tally.Key) bool) (Timelines, error) {
	bucket := time.Duration(w.bucket) * time.Second
	switch {
	case span == AllTime:
		return Timelines{}, fmt.Errorf("window: a time series needs a span such as 24h, not all time (buckets are kept for %s)", w.Longest())
	case span > w.Longest():
		return Timelines{}, fmt.Errorf("window: span %s is longer than the %s of buckets kept (the longest window)", span, w.Longest())
	case step <= 0 || step%bucket != 0:
		return Timelines{}, fmt.Errorf("window: step %s must be a positive multiple of the bucket width %s", Span(step), Span(bucket))
	}
	now := w.now()
	stepSec := int64(step / time.Second)
	floor := func(t int64) int64 {
		f := t / stepSec * stepSec
		if t < 0 && t%stepSec != 0 {
			f -= stepSec
		}
		return f
	}
	end := now.Unix()
	first := floor(now.Add(-time.Duration(span)).Unix())
	if kept := w.cutoff() + w.bucket; first < kept {
		first += stepSec * ((kept - first + stepSec - 1) / stepSec)
	}
	last := floor(end)
	if first > last {
		first = last
	}
	n := int((last-first)/stepSec) + 1
	if n > MaxSteps {
		return Timelines{}, fmt.Errorf("window: %d steps of %s in %s; at most %d: use a longer step", n, Span(step), span, MaxSteps)
	}
	out := Timelines{Span: span, Step: step, Start: time.Unix(first, 0).UTC(), End: now}
	w.mu.RLock()
	for k, s := range w.series {
		if k.Paired() || (keep != nil && !keep(k)) {
			continue
		}
		counts := make([]tally.Counts, n)
		for b, c := range s.buckets {
			if b < first || b > end {
				continue
			}
			counts[(b-first)/stepSec].Add(*c)
		}
		tl := Timeline{Key: k, Steps: make([]Step, n)}
		for i := range counts {
			start := first + int64(i)*stepSec
			tl.Steps[i] = Step{Start: time.Unix(start, 0).UTC(), End: time.Unix(start+stepSec, 0).UTC(), Counts: counts[i]}
		}
		tl.Steps[n-1].Partial = true
		out.Series = append(out.Series, tl)
	}
	w.mu.RUnlock()
	for _, tl := range out.Series {
		for i := range tl.Steps {
			tl.Steps[i].Stats = DeriveWith(tl.Steps[i].Counts, w.rule)
		}
	}
	slices.SortFunc(out.Series, func(a, b Timeline) int { return compareKeys(a.Key, b.Key) })
	return out, nil
}

// Bucket is the width of the prediction-time buckets: windows move, and time series
// step, in multiples of it.
func (w *Windows) Bucket() time.Duration { return time.Duration(w.bucket) * time.Second }
