package window

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/verdictml/verdict/tally"
)

// daySeconds is the width of a day cohort.
const daySeconds = 24 * 3600

// dayOf is the start (Unix seconds) of the UTC day holding t.
func dayOf(t int64) int64 {
	d := t / daySeconds * daySeconds
	if t < 0 && t%daySeconds != 0 {
		d -= daySeconds
	}
	return d
}

// cohort is the buckets of one UTC day that are older than the bucket retention,
// summed; start and end bound the buckets it holds, so ages stay exact where the
// day is only partly folded in.
type cohort struct {
	start, end int64
	c          tally.Counts
}

func (h *cohort) add(start, end int64, c tally.Counts) {
	h.start, h.end = min(h.start, start), max(h.end, end)
	h.c.Add(c)
}

func newSeries() *series {
	return &series{buckets: map[int64]*tally.Counts{}, cohorts: map[int64]*cohort{}}
}

// each calls fn with every kept part of s: its buckets and its day cohorts, with the
// prediction times they span, [start, end).
func (s *series) each(bucket int64, fn func(start, end int64, c *tally.Counts)) {
	for b, c := range s.buckets {
		fn(b, b+bucket, c)
	}
	for _, h := range s.cohorts {
		fn(h.start, h.end, &h.c)
	}
}

// Cohorts makes the windows keep, beyond the buckets of the longest window, one tally
// per UTC day of prediction time back to horizon: enough for the label coverage of
// old cohorts and for windows restricted to matured predictions (SnapshotAged). A
// horizon no longer than the longest window keeps none.
func Cohorts(horizon time.Duration) Option {
	return func(w *Windows) { w.horizon = int64(horizon / time.Second) }
}

// WithRule makes snapshots judge estimability with r instead of the default Rule.
func WithRule(r Rule) Option { return func(w *Windows) { w.rule = r } }

// Rule is the estimability rule the snapshots apply.
func (w *Windows) Rule() Rule { return w.rule }

// cohortCutoff is the oldest bucket start a day cohort keeps: the start of the
// horizon's day, or the bucket cutoff without cohorts.
func (w *Windows) cohortCutoff() int64 {
	if w.horizon <= w.retention {
		return w.cutoff()
	}
	return dayOf(w.now().Unix() - w.horizon)
}

// Horizon is the age up to which the view keeps every prediction in a bucket or a day
// cohort: the reach of SnapshotAged and Cohorts.
func (w *Windows) Horizon() time.Duration {
	if w.horizon <= w.retention {
		return time.Duration(w.Longest())
	}
	return time.Duration(w.horizon) * time.Second
}

// SnapshotAged is Snapshot restricted to predictions at least minAge old: the window
// of span ending minAge ago, over the buckets (and, beyond the longest window, the
// day cohorts) that lie entirely before that end; the start is widened to whole
// buckets or days as in Snapshot. With AllTime it is everything at least minAge old.
// A zero minAge is Snapshot. span + minAge must not exceed Horizon.
func (w *Windows) SnapshotAged(span Span, minAge time.Duration) (Snapshot, error) {
	if minAge < 0 {
		return Snapshot{}, fmt.Errorf("minimum age %s is negative", minAge)
	}
	if minAge == 0 {
		return w.Snapshot(span), nil
	}
	if reach := time.Duration(span) + minAge; reach > w.Horizon() {
		return Snapshot{}, fmt.Errorf("window %s ending %s ago reaches %s back; the windows keep %s", span, Span(minAge), Span(reach), Span(w.Horizon()))
	}
	to := w.now().Unix() - int64(minAge/time.Second)
	from := int64(math.MinInt64)
	if span != AllTime {
		from = to - int64(time.Duration(span)/time.Second)
	}
	snap := Snapshot{Span: span, End: time.Unix(to, 0).UTC()}
	start := int64(math.MaxInt64)
	w.mu.RLock()
	snap.Rows = make([]Row, 0, len(w.series))
	for k, s := range w.series {
		var c tally.Counts
		if span == AllTime {
			// Everything, less the parts that are not entirely older than the end
			// (all of them are kept: minAge is within the horizon).
			c = s.total
			s.each(w.bucket, func(_, end int64, bc *tally.Counts) {
				if end > to {
					c.Sub(*bc)
				}
			})
		} else {
			s.each(w.bucket, func(b, end int64, bc *tally.Counts) {
				if end > from && end <= to {
					c.Add(*bc)
					start = min(start, b)
				}
			})
		}
		snap.add(k, c)
	}
	w.mu.RUnlock()
	if span != AllTime {
		if start == math.MaxInt64 {
			start = from
		}
		snap.Start = time.Unix(start, 0).UTC()
	}
	return w.finish(snap), nil
}

// AgeClass is the predictions of one series whose age falls in [MinAge, MaxAge):
// whole buckets (or days), classed by their youngest prediction, so every prediction
// of a class is at least MinAge old and may be up to one bucket (or day) older than
// MaxAge. The oldest class has MaxAge 0 (no bound) and holds everything older,
// including what the view keeps in the all-time counts only.
type AgeClass struct {
	MinAge, MaxAge time.Duration
	Counts         tally.Counts
	Stats          Stats
}

// Name names the class: "<1h", "1h-24h", ">=30d".
func (c AgeClass) Name() string { return AgeName(c.MinAge, c.MaxAge) }

// AgeName names the age class [minAge, maxAge), maxAge 0 meaning no bound.
func AgeName(minAge, maxAge time.Duration) string {
	switch {
	case minAge == 0 && maxAge == 0:
		return "all"
	case minAge == 0:
		return "<" + Span(maxAge).String()
	case maxAge == 0:
		return ">=" + Span(minAge).String()
	}
	return Span(minAge).String() + "-" + Span(maxAge).String()
}

// CohortRow is one series' age classes, youngest first.
type CohortRow struct {
	Key     tally.Key
	Classes []AgeClass
}

// CohortSnapshot is every series' predictions by age of prediction time, ordered like
// Snapshot's rows (pair series left out).
type CohortSnapshot struct {
	End  time.Time
	Ages []time.Duration
	Rows []CohortRow
}

// DefaultAges are the boundaries of the age classes: 1h, 24h, 7d, 30d and maturity (if
// positive), ascending, those within Horizon.
func (w *Windows) DefaultAges(maturity time.Duration) []time.Duration {
	ages := []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour}
	if maturity > 0 {
		ages = append(ages, maturity)
	}
	slices.Sort(ages)
	ages = slices.Compact(ages)
	h := w.Horizon()
	return slices.DeleteFunc(ages, func(a time.Duration) bool { return a > h })
}

// Cohorts classes every series' predictions by age at the given boundaries
// (ascending, positive, the last within Horizon): len(ages)+1 classes, youngest first.
func (w *Windows) Cohorts(ages []time.Duration) (CohortSnapshot, error) {
	for i, a := range ages {
		if a <= 0 || (i > 0 && a <= ages[i-1]) {
			return CohortSnapshot{}, errors.New("age class boundaries must be positive and ascending")
		}
	}
	if len(ages) > 0 && ages[len(ages)-1] > w.Horizon() {
		return CohortSnapshot{}, fmt.Errorf("age %s is beyond the %s the windows keep", Span(ages[len(ages)-1]), Span(w.Horizon()))
	}
	now := w.now()
	snap := CohortSnapshot{End: now.UTC(), Ages: slices.Clone(ages)}
	class := func(end int64) int {
		youngest := time.Duration(max(0, now.Unix()-end)) * time.Second
		i, _ := slices.BinarySearch(ages, youngest)
		if i < len(ages) && ages[i] == youngest {
			i++
		}
		return i
	}
	w.mu.RLock()
	for k, s := range w.series {
		if k.Paired() {
			continue
		}
		row := CohortRow{Key: k, Classes: make([]AgeClass, len(ages)+1)}
		rest := s.total
		s.each(w.bucket, func(_, end int64, c *tally.Counts) {
			row.Classes[class(end)].Counts.Add(*c)
			rest.Sub(*c)
		})
		row.Classes[len(ages)].Counts.Add(rest)
		snap.Rows = append(snap.Rows, row)
	}
	w.mu.RUnlock()
	for _, row := range snap.Rows {
		for i := range row.Classes {
			cl := &row.Classes[i]
			if i > 0 {
				cl.MinAge = ages[i-1]
			}
			if i < len(ages) {
				cl.MaxAge = ages[i]
			}
			cl.Stats = DeriveWith(cl.Counts, w.rule)
		}
	}
	slices.SortFunc(snap.Rows, func(a, b CohortRow) int { return compareKeys(a.Key, b.Key) })
	return snap, nil
}
