package window

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/verdictml/verdict/tally"
)

const day = 24 * time.Hour

// aged is one prediction of the cohort tests: its time and what it counts.
type aged struct {
	t time.Time
	c tally.Counts
}

// agedStream is n predictions spread over the 60 days before now, plus one on each
// side of every whole hour before now (where the window and class boundaries fall),
// each pending, labeled or matured at random.
func agedStream(seed uint64, now time.Time, n int) []aged {
	rng := rand.New(rand.NewPCG(seed, 9))
	var times []time.Time
	for range n {
		times = append(times, now.Add(-time.Duration(rng.Int64N(int64(60*day)))))
	}
	for h := time.Duration(0); h < 60*day; h += time.Hour {
		times = append(times, now.Add(-h-time.Second), now.Add(-h))
	}
	out := make([]aged, len(times))
	for i, t := range times {
		c := tally.Counts{Predictions: 1}
		switch rng.IntN(5) {
		case 0:
			c.TP, c.Flagged = 1, 1
		case 1:
			c.FP, c.Flagged, c.Matured = 1, 1, 1
		case 2:
			c.TN = 1
		case 3:
			c.Flagged, c.Censored, c.CensoredFlagged = 1, 1, 1
		}
		out[i] = aged{t, c}
	}
	return out
}

func observe(w *Windows, k tally.Key, ps []aged) {
	for _, p := range ps {
		b := p.t.Unix() / 300 * 300
		w.Observe([]tally.Delta{{Key: k, Bucket: b, Counts: p.c}})
	}
}

// sumWhere is the plain recount: the counts of the predictions whose time satisfies in.
func sumWhere(ps []aged, in func(t time.Time) bool) tally.Counts {
	var c tally.Counts
	for _, p := range ps {
		if in(p.t) {
			c.Add(p.c)
		}
	}
	return c
}

func TestAgedSnapshotsAndCohortsMatchARecountByPredictionTime(t *testing.T) {
	// now on a day boundary and ages in whole days or hours: every bucket and day
	// cohort lies on one side of every boundary, so the recount by prediction time
	// is exact.
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	w := New(5*time.Minute, 7*day, Cohorts(40*day))
	w.now = func() time.Time { return now }
	k := tally.Key{Variant: "v5"}
	ps := agedStream(1, now, 5000)
	observe(w, k, ps)
	if h := w.Horizon(); h != 40*day {
		t.Fatalf("horizon %s, want 40d", h)
	}
	check := func(t *testing.T) {
		t.Helper()
		for _, tc := range []struct {
			span   Span
			minAge time.Duration
		}{
			{Span(day), 30 * day}, {Span(7 * day), 30 * day}, {Span(24 * time.Hour), 6 * day},
			{Span(time.Hour), time.Hour}, {AllTime, 30 * day}, {AllTime, 2 * time.Hour}, {Span(10 * day), 30 * day},
		} {
			snap, err := w.SnapshotAged(tc.span, tc.minAge)
			if err != nil {
				t.Fatalf("%s at %s: %v", tc.span, tc.minAge, err)
			}
			end := now.Add(-tc.minAge)
			want := sumWhere(ps, func(pt time.Time) bool {
				return pt.Before(end) && (tc.span == AllTime || !pt.Before(end.Add(-time.Duration(tc.span))))
			})
			r, _ := snap.Row(k)
			if r.Counts != want {
				t.Errorf("window %s at least %s old: %+v, recount %+v", tc.span, Span(tc.minAge), r.Counts, want)
			}
			if !snap.End.Equal(end) {
				t.Errorf("window %s at least %s old ends %v, want %v", tc.span, Span(tc.minAge), snap.End, end)
			}
		}
		ages := w.DefaultAges(30 * day)
		if fmt.Sprint(ages) != fmt.Sprint([]time.Duration{time.Hour, day, 7 * day, 30 * day}) {
			t.Fatalf("default ages %v", ages)
		}
		cs, err := w.Cohorts(ages)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs.Rows) != 1 || len(cs.Rows[0].Classes) != 5 {
			t.Fatalf("cohort rows %+v, want one row of 5 classes", cs.Rows)
		}
		bounds := append(append([]time.Duration{0}, ages...), 1000*day)
		for i, cl := range cs.Rows[0].Classes {
			want := sumWhere(ps, func(pt time.Time) bool {
				age := now.Sub(pt)
				return age > bounds[i] && age <= bounds[i+1] || (i == 0 && age == 0)
			})
			if cl.Counts != want {
				t.Errorf("class %d [%s, %s): %+v, recount %+v", i, cl.MinAge, cl.MaxAge, cl.Counts, want)
			}
			if cl.MinAge != bounds[i] || (i < len(ages) && cl.MaxAge != bounds[i+1]) || (i == len(ages) && cl.MaxAge != 0) {
				t.Errorf("class %d bounds [%s, %s)", i, cl.MinAge, cl.MaxAge)
			}
		}
	}
	t.Run("live", check)

	t.Run("restored from the store's tallies", func(t *testing.T) {
		live := w
		w = New(5*time.Minute, 7*day, Cohorts(40*day))
		w.now = live.now
		var total tally.Counts
		for _, p := range ps {
			total.Add(p.c)
			w.Restore(tally.Delta{Key: k, Bucket: p.t.Unix() / 300 * 300, Counts: p.c}, false)
		}
		w.Restore(tally.Delta{Key: k, Counts: total}, true)
		check(t)
		w = live
	})

	t.Run("two days later, after buckets folded into cohorts and old cohorts dropped", func(t *testing.T) {
		now = now.Add(2 * day)
		more := agedStream(2, now, 500)
		observe(w, k, more) // prunes: the clock moved past the last prune
		ps = append(ps, more...)
		check(t)
		for _, s := range w.series {
			for d := range s.cohorts {
				if d < dayOf(now.Add(-40*day).Unix()) {
					t.Errorf("cohort of %v kept beyond the 40d horizon", time.Unix(d, 0).UTC())
				}
			}
			for b := range s.buckets {
				if b < w.cutoff() {
					t.Errorf("bucket %v kept beyond the 7d retention", time.Unix(b, 0).UTC())
				}
			}
		}
	})

	t.Run("reloaded in full from a shared store", func(t *testing.T) {
		var total tally.Counts
		for _, p := range ps {
			total.Add(p.c)
		}
		// Stale view first: a reload must replace, not add.
		observe(w, k, agedStream(3, now, 100))
		load := func(fn func(tally.Delta, bool) error) error {
			if err := fn(tally.Delta{Key: k, Counts: total}, true); err != nil {
				return err
			}
			for _, p := range ps {
				if err := fn(tally.Delta{Key: k, Bucket: p.t.Unix() / 300 * 300, Counts: p.c}, false); err != nil {
					return err
				}
			}
			return nil
		}
		if err := w.Reload(w.cohortCutoff(), load); err != nil {
			t.Fatal(err)
		}
		check(t)
	})
}

func TestFullReloadDropsACohortTheStoreNoLongerHolds(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	w := New(5*time.Minute, 7*day, Cohorts(40*day))
	w.now = func() time.Time { return now }
	k := tally.Key{Variant: "v5"}
	observe(w, k, []aged{{now.Add(-20 * day), tally.Counts{Predictions: 1}}, {now.Add(-time.Hour), tally.Counts{Predictions: 1}}})
	load := func(fn func(tally.Delta, bool) error) error {
		return fn(tally.Delta{Key: k, Counts: tally.Counts{Predictions: 1}}, true)
	}
	if err := w.Reload(w.cohortCutoff(), load); err != nil {
		t.Fatal(err)
	}
	cs, err := w.Cohorts([]time.Duration{7 * day, 30 * day})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, cl := range cs.Rows[0].Classes {
		got = append(got, cl.Counts.Predictions)
	}
	if fmt.Sprint(got) != "[0 0 1]" {
		t.Errorf("after a full reload of a store holding only an all-time count: classes %v, want [0 0 1] (all of it older than kept)", got)
	}
}

func TestAgedSnapshotRefusesWhatIsNotKept(t *testing.T) {
	w := New(5*time.Minute, 7*day, Cohorts(40*day))
	for _, tc := range []struct {
		span   Span
		minAge time.Duration
		ok     bool
	}{
		{Span(7 * day), 33 * day, true},
		{Span(7 * day), 34 * day, false},
		{AllTime, 40 * day, true},
		{AllTime, 41 * day, false},
		{Span(time.Hour), -time.Hour, false},
	} {
		if _, err := w.SnapshotAged(tc.span, tc.minAge); (err == nil) != tc.ok {
			t.Errorf("window %s at least %s old: err %v, want ok %v", tc.span, tc.minAge, err, tc.ok)
		}
	}
	noCohorts := New(5*time.Minute, 7*day)
	if h := noCohorts.Horizon(); h != 7*day {
		t.Errorf("horizon without cohorts %s, want the longest window", h)
	}
	if _, err := noCohorts.SnapshotAged(Span(day), 7*day); err == nil {
		t.Error("a window reaching past the buckets was served")
	}
	if ages := noCohorts.DefaultAges(30 * day); fmt.Sprint(ages) != fmt.Sprint([]time.Duration{time.Hour, day, 7 * day}) {
		t.Errorf("default ages without cohorts %v", ages)
	}
	if _, err := w.Cohorts([]time.Duration{day, time.Hour}); err == nil {
		t.Error("descending ages accepted")
	}
}

func TestAgedSnapshotOnlyHoldsPredictionsOldEnough(t *testing.T) {
	// now off every boundary: the window takes whole buckets entirely older than its
	// end, so every prediction in it is at least minAge old.
	now := time.Date(2026, 11, 25, 13, 17, 42, 0, time.UTC)
	w := New(5*time.Minute, 7*day, Cohorts(40*day))
	w.now = func() time.Time { return now }
	k := tally.Key{Variant: "v5"}
	ps := agedStream(4, now, 5000)
	observe(w, k, ps)
	for _, minAge := range []time.Duration{time.Hour, 3 * day, 7 * day, 30 * day} {
		snap, err := w.SnapshotAged(Span(2*day), minAge)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := snap.Row(k)
		end := now.Add(-minAge)
		// At most: everything old enough within the widened window.
		upper := sumWhere(ps, func(pt time.Time) bool { return pt.Before(end) && pt.After(end.Add(-2*day-day)) })
		// At least: what lies a bucket (or day) away from both edges.
		slack := 5 * time.Minute
		if minAge >= 7*day {
			slack = day
		}
		lower := sumWhere(ps, func(pt time.Time) bool { return pt.Before(end.Add(-slack)) && pt.After(end.Add(-2*day+slack)) })
		if r.Counts.Predictions > upper.Predictions || r.Counts.Predictions < lower.Predictions {
			t.Errorf("at least %s old: %d predictions, want within [%d, %d]", minAge, r.Counts.Predictions, lower.Predictions, upper.Predictions)
		}
		if snap.End.After(end) || snap.Start.Before(end.Add(-2*day-day)) {
			t.Errorf("at least %s old: [%v, %v], want within [%v, %v]", minAge, snap.Start, snap.End, end.Add(-3*day), end)
		}
	}
}

func TestPairSeriesStayOutOfAgedRowsAndAgeClasses(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	w := New(5*time.Minute, 7*day, Cohorts(40*day), Clock(func() time.Time { return now }))
	old := now.Add(-20*day).Unix() / 300 * 300
	var pc tally.Counts
	pc.Pair[tally.ClassMatured][tally.OnlyFirst] = 2
	w.Observe([]tally.Delta{
		{Key: tally.Key{Variant: "v5"}, Bucket: old, Counts: tally.Counts{Predictions: 2, FP: 2, Flagged: 2, Matured: 2}},
		{Key: tally.Key{Variant: "v5", Versus: "v6"}, Bucket: old, Counts: pc},
	})
	snap, err := w.SnapshotAged(AllTime, 10*day)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Rows) != 1 || snap.Rows[0].Key.Paired() {
		t.Errorf("aged rows %+v, want v5 only", snap.Rows)
	}
	if p, ok := snap.Paired("v5", "v6", "", ""); !ok || p != pc.Pair {
		t.Errorf("aged pairs %+v (found %v), want %v", p, ok, pc.Pair)
	}
	cs, err := w.Cohorts([]time.Duration{day})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Rows) != 1 || cs.Rows[0].Key.Paired() {
		t.Errorf("age class rows %+v, want v5 only", cs.Rows)
	}
}
