// Package window keeps sliding-window confusion counts per variant and per (variant,
// segment), bucketed by prediction time, and derives the statistics analysts and
// alarms read: precision, recall, F1, Wilson intervals, label coverage, flag rate.
//
// It is a view: the join store holds the tallies, and Windows is rebuilt from them on
// start (labels.Observer.Restore) and kept current with each commit's deltas
// (labels.Observer.Observe).
package window

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/verdictml/verdict/tally"
)

// Windows holds every series' all-time counts and its recent buckets.
type Windows struct {
	bucket    int64 // seconds
	retention int64 // seconds of buckets kept in memory
	// horizon is how far back (seconds) day cohorts keep what the buckets no longer
	// do; at most retention means no cohorts.
	horizon int64
	rule    Rule
	now     func() time.Time

	mu     sync.RWMutex
	series map[tally.Key]*series
	// lastPrune is when buckets older than the retention were last dropped.
	lastPrune int64
}

type series struct {
	total   tally.Counts
	buckets map[int64]*tally.Counts
	// cohorts holds, per UTC day (its start), the buckets older than the retention
	// and no older than the horizon's day.
	cohorts map[int64]*cohort
}

// Option changes how Windows are built.
type Option func(*Windows)

// Clock makes the windows end at now() instead of the wall clock: replays and
// rehearsals run on event time.
func Clock(now func() time.Time) Option { return func(w *Windows) { w.now = now } }

// New returns empty windows with the given bucket width and the longest window that
// will be queried (buckets older than that are folded away).
func New(bucket, longest time.Duration, opts ...Option) *Windows {
	if bucket <= 0 {
		bucket = 5 * time.Minute
	}
	w := &Windows{
		bucket:    int64(bucket / time.Second),
		retention: int64(longest/time.Second) + int64(bucket/time.Second),
		now:       time.Now,
		series:    map[tally.Key]*series{},
	}
	for _, o := range opts {
		o(w)
	}
	return w
}

func (w *Windows) get(k tally.Key) *series {
	s := w.series[k]
	if s == nil {
		s = newSeries()
		w.series[k] = s
	}
	return s
}

func (s *series) addBucket(b int64, c tally.Counts) {
	bc := s.buckets[b]
	if bc == nil {
		bc = &tally.Counts{}
		s.buckets[b] = bc
	}
	bc.Add(c)
}

// Restore implements labels.Observer: stored tallies, all-time and per bucket.
func (w *Windows) Restore(d tally.Delta, allTime bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.get(d.Key)
	if allTime {
		s.total.Add(d.Counts)
		return
	}
	w.place(s, d.Bucket, d.Counts, w.cutoff())
}

// place adds c to bucket b of s: to the bucket if it is kept (from cut on), else to
// its day cohort if that is kept, else nowhere (it is in the total only).
func (w *Windows) place(s *series, b int64, c tally.Counts, cut int64) {
	switch {
	case b >= cut:
		s.addBucket(b, c)
	case b >= w.cohortCutoff():
		day := dayOf(b)
		dc := s.cohorts[day]
		if dc == nil {
			dc = &cohort{start: b, end: b + w.bucket}
			s.cohorts[day] = dc
		}
		dc.add(b, b+w.bucket, c)
	}
}

// Observe implements labels.Observer: a commit's deltas.
func (w *Windows) Observe(deltas []tally.Delta) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cut := w.cutoff()
	for _, d := range deltas {
		s := w.get(d.Key)
		s.total.Add(d.Counts)
		w.place(s, d.Bucket, d.Counts, cut)
	}
	if now := w.now().Unix(); now-w.lastPrune >= w.bucket {
		w.prune(cut)
		w.lastPrune = now
	}
}

func (w *Windows) cutoff() int64 { return w.now().Unix() - w.retention }

// prune folds buckets older than cut into their day cohorts (or drops them, beyond
// the horizon) and drops cohorts beyond the horizon.
func (w *Windows) prune(cut int64) {
	cohortCut := w.cohortCutoff()
	for _, s := range w.series {
		for b, c := range s.buckets {
			if b < cut {
				delete(s.buckets, b)
				w.place(s, b, *c, cut)
			}
		}
		for d := range s.cohorts {
			if d < cohortCut {
				delete(s.cohorts, d)
			}
		}
	}
}

// Span is a window: a duration of prediction time ending now, or all time (zero).
type Span time.Duration

// Longest is the longest window the view keeps buckets for; a longer span would be
// partial.
func (w *Windows) Longest() Span {
	return Span(time.Duration(w.retention-w.bucket) * time.Second)
}

// AllTime is the window over every prediction ever joined.
const AllTime Span = 0

// ParseSpan reads "1h", "24h", "7d", "30m" or "all".
func ParseSpan(s string) (Span, error) {
	if s == "all" || s == "" {
		return AllTime, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != d {
			return 0, fmt.Errorf("window %q: want a duration like 1h, 24h, 7d or all", s)
		}
		return Span(time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("window %q: want a duration like 1h, 24h, 7d or all", s)
	}
	return Span(d), nil
}

// String is the span as ParseSpan reads it.
func (s Span) String() string {
	d := time.Duration(s)
	switch {
	case s == AllTime:
		return "all"
	case d%(24*time.Hour) == 0 && d >= 48*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// Row is one series' counts over a window and the statistics derived from them.
type Row struct {
	Key    tally.Key
	Counts tally.Counts
	Stats  Stats
}

// Snapshot is every series over one window, ordered by variant, then overall before
// segments, then segment key and value. Pair series (inferences two variants both
// scored) are in Pairs, never in Rows.
type Snapshot struct {
	Span  Span
	Start time.Time // zero for all time
	End   time.Time
	Rows  []Row
	Pairs []PairRow
	// Period marks a comparison period (Windows.Period): a range that grows from its
	// start, not a sliding window.
	Period bool
}

// PairRow is one pair series' counts over a window: Key.Variant is the first
// variant of the pair, Key.Versus the second.
type PairRow struct {
	Key    tally.Key
	Counts tally.PairCounts
}

// Snapshot sums each series over the window ending now: the buckets whose start lies
// in [now-span, now], widened to whole buckets (so a 1h window over 5m buckets covers
// up to 1h05m), or the all-time counts for AllTime.
func (w *Windows) Snapshot(span Span) Snapshot {
	now := w.now()
	if span == AllTime {
		return w.snapshot(Snapshot{Span: span, End: now}, 0, noEnd, true)
	}
	from := w.bucketOf(now.Add(-time.Duration(span)))
	return w.snapshot(Snapshot{Span: span, End: now, Start: time.Unix(from, 0).UTC()}, from, noEnd, false)
}

// noEnd is the bucket bound of a range that runs up to now.
const noEnd = math.MaxInt64

// Period sums each series over the buckets from the one holding start up to now: a
// comparison period that grows with time, as a rollout gate's does. Its Span is the
// time from the period's first bucket to now. A start older than the buckets the view
// keeps is an error: that period would be partial.
func (w *Windows) Period(start time.Time) (Snapshot, error) {
	now := w.now()
	from := w.bucketOf(start)
	if kept := w.cutoff() + w.bucket; from < kept {
		return Snapshot{}, fmt.Errorf("window: period start %s is older than the %s of buckets kept (the longest window); nothing before %s can be summed",
			start.UTC().Format(time.RFC3339), w.Longest(), time.Unix(kept, 0).UTC().Format(time.RFC3339))
	}
	if start.After(now) {
		return Snapshot{}, fmt.Errorf("window: period start %s is in the future (now %s)", start.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	span := Span(now.Sub(time.Unix(from, 0)).Truncate(time.Second))
	return w.snapshot(Snapshot{Span: span, End: now, Start: time.Unix(from, 0).UTC(), Period: true}, from, noEnd, false), nil
}

// Between sums each series over a closed stretch of the past: the buckets from the
// one holding start up to the last one that ends at or before end (a bucket holding
// end is left out, so a range that starts at end, such as Period(end), never counts a
// prediction twice when end is on a bucket boundary). It is how a reference period
// (the shadow stage before a traffic shift) is read back from the stored tallies. A
// start older than the buckets kept, or an end after now or not after start, is an
// error. The snapshot's Start and End are the bucket boundaries summed.
func (w *Windows) Between(start, end time.Time) (Snapshot, error) {
	now := w.now()
	from, to := w.bucketOf(start), w.bucketOf(end)
	if kept := w.cutoff() + w.bucket; from < kept {
		return Snapshot{}, fmt.Errorf("window: range start %s is older than the %s of buckets kept (the longest window); nothing before %s can be summed",
			start.UTC().Format(time.RFC3339), w.Longest(), time.Unix(kept, 0).UTC().Format(time.RFC3339))
	}
	switch {
	case end.After(now):
		return Snapshot{}, fmt.Errorf("window: range end %s is in the future (now %s)", end.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case to <= from:
		return Snapshot{}, fmt.Errorf("window: range %s to %s holds no whole bucket of %s", start.UTC().Format(time.RFC3339),
			end.UTC().Format(time.RFC3339), time.Duration(w.bucket)*time.Second)
	}
	s, e := time.Unix(from, 0).UTC(), time.Unix(to, 0).UTC()
	return w.snapshot(Snapshot{Span: Span(e.Sub(s)), Start: s, End: e}, from, to, false), nil
}

// FirstSeen is the start of the earliest kept bucket in which variant has a tally, or
// false if it has none. Kept means a Period can start there: buckets on their way
// out (older than the longest window, not yet pruned) do not count.
func (w *Windows) FirstSeen(variant string) (time.Time, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	kept := w.cutoff() + w.bucket
	first, ok := int64(0), false
	for k, s := range w.series {
		if k.Variant != variant || !k.Overall() || k.Paired() {
			continue
		}
		for b, c := range s.buckets {
			if (c.Predictions > 0 || c.Errors > 0) && b >= kept && (!ok || b < first) {
				first, ok = b, true
			}
		}
	}
	return time.Unix(first, 0).UTC(), ok
}

func (w *Windows) bucketOf(t time.Time) int64 {
	u := t.Unix()
	b := u / w.bucket * w.bucket
	if u < 0 && u%w.bucket != 0 {
		b -= w.bucket
	}
	return b
}

// snapshot sums each series' buckets b with from <= b < to, or its all-time counts.
func (w *Windows) snapshot(snap Snapshot, from, to int64, allTime bool) Snapshot {
	// A window or period ends now: a bucket dated ahead of the clock is not in it.
	to = min(to, snap.End.Unix()+1)
	w.mu.RLock()
	snap.Rows = make([]Row, 0, len(w.series))
	for k, s := range w.series {
		var c tally.Counts
		if allTime {
			c = s.total
		} else {
			for b, bc := range s.buckets {
				if b >= from && b < to {
					c.Add(*bc)
				}
			}
		}
		snap.add(k, c)
	}
	w.mu.RUnlock()
	return w.finish(snap)
}

// add files series k's counts: a pair's cells among the pairs, else a row.
func (s *Snapshot) add(k tally.Key, c tally.Counts) {
	if k.Paired() {
		s.Pairs = append(s.Pairs, PairRow{Key: k, Counts: c.Pair})
		return
	}
	s.Rows = append(s.Rows, Row{Key: k, Counts: c})
}

// finish derives the rows' statistics and sorts rows and pairs.
func (w *Windows) finish(snap Snapshot) Snapshot {
	for i := range snap.Rows {
		snap.Rows[i].Stats = DeriveWith(snap.Rows[i].Counts, w.rule)
	}
	slices.SortFunc(snap.Rows, func(a, b Row) int { return compareKeys(a.Key, b.Key) })
	slices.SortFunc(snap.Pairs, func(a, b PairRow) int {
		return cmp.Or(strings.Compare(a.Key.Versus, b.Key.Versus), compareKeys(a.Key, b.Key))
	})
	return snap
}

func compareKeys(a, b tally.Key) int {
	if c := strings.Compare(a.Variant, b.Variant); c != 0 {
		return c
	}
	if a.Overall() != b.Overall() {
		if a.Overall() {
			return -1
		}
		return 1
	}
	if c := strings.Compare(a.SegmentKey, b.SegmentKey); c != 0 {
		return c
	}
	return strings.Compare(a.Segment, b.Segment)
}

// Overall keeps the variants' overall rows.
func (s Snapshot) Overall() []Row {
	var out []Row
	for _, r := range s.Rows {
		if r.Key.Overall() {
			out = append(out, r)
		}
	}
	return out
}

// Paired finds the paired counts of first and second in one scope (segment key and
// value empty: overall), oriented so that first is the pair's first variant whatever
// the order of their names; false when the two never scored the same inference.
func (s Snapshot) Paired(first, second, segmentKey, segment string) (tally.PairCounts, bool) {
	a, b, swap := first, second, false
	if b < a {
		a, b, swap = b, a, true
	}
	k := tally.Key{Variant: a, Versus: b, SegmentKey: segmentKey, Segment: segment}
	for _, r := range s.Pairs {
		if r.Key == k {
			if swap {
				return r.Counts.Swapped(), true
			}
			return r.Counts, true
		}
	}
	return tally.PairCounts{}, false
}

// Row finds one series' row.
func (s Snapshot) Row(k tally.Key) (Row, bool) {
	for _, r := range s.Rows {
		if r.Key == k {
			return r, true
		}
	}
	return Row{}, false
}

// Reload replaces the view with the store's current tallies, for stores that other
// processes write too: load must call fn with every all-time tally and every bucket
// tally from since on (labels.Store.Tallies). All-time counts, the buckets from since
// on and the day cohorts that start at or after since are replaced; older buckets and
// cohorts are kept as they were, so a frequent reload can read only recent buckets
// and an occasional full one (since = FullReloadSince) the rest.
func (w *Windows) Reload(since int64, load func(fn func(tally.Delta, bool) error) error) error {
	totals := map[tally.Key]tally.Counts{}
	recent := map[tally.Key]*series{}
	cut, cohortCut := w.cutoff(), w.cohortCutoff()
	// replaced: the bucket's tally is read again. A cohort straddling since keeps what
	// it had (adding part of its day would count that part twice).
	replaced := func(b int64) bool {
		return b >= since && b >= cohortCut && (b >= cut || dayOf(b) >= since)
	}
	err := load(func(d tally.Delta, allTime bool) error {
		if allTime {
			c := totals[d.Key]
			c.Add(d.Counts)
			totals[d.Key] = c
			return nil
		}
		if !replaced(d.Bucket) {
			return nil
		}
		m := recent[d.Key]
		if m == nil {
			m = newSeries()
			recent[d.Key] = m
		}
		w.place(m, d.Bucket, d.Counts, cut)
		return nil
	})
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, s := range w.series {
		s.total = totals[k]
		for b := range s.buckets {
			if replaced(b) {
				delete(s.buckets, b)
			}
		}
		for d := range s.cohorts {
			if d >= since {
				delete(s.cohorts, d)
			}
		}
	}
	for k, c := range totals {
		w.get(k).total = c
	}
	for k, m := range recent {
		s := w.get(k)
		for b, c := range m.buckets {
			s.buckets[b] = c
		}
		for d, c := range m.cohorts {
			s.cohorts[d] = c
		}
	}
	w.prune(cut)
	return nil
}
