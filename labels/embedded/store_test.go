package embedded

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/storetest"
	"github.com/verdictml/verdict/tally"
)

var t0 = time.Now().Add(-2 * time.Hour).Truncate(time.Hour)

func open(t *testing.T, dir string, cfg labels.Config) (*Store, *labels.Join, *storetest.Recorder) {
	t.Helper()
	st, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	tl := storetest.NewRecorder()
	j, err := labels.Open(context.Background(), st, cfg, tl)
	if err != nil {
		t.Fatal(err)
	}
	return st, j, tl
}

// TestStoreConformance runs the join semantics on the embedded store; a reopen
// closes the store and opens its directory again, as a restarted process does.
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (labels.Store, func(*testing.T) labels.Store) {
		dir := t.TempDir()
		open := func(t *testing.T) *Store {
			st, err := Open(dir, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
		st := open(t)
		return st, func(t *testing.T) labels.Store {
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st = open(t)
			return st
		}
	})
}

func TestOnlyOneProcessHoldsTheStore(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st2, err := Open(dir, Options{}); err == nil {
		st2.Close()
		t.Fatal("second Open of a held store succeeded")
	}
}

func TestDropBucketsKeepsAllTime(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, j, _ := open(t, dir, labels.Config{})
	old := ingest.Prediction{InferenceID: "old", Variant: "v5", Score: 0.9, Threshold: 0.5, Time: t0.Add(-30 * 24 * time.Hour)}
	cur := ingest.Prediction{InferenceID: "new", Variant: "v5", Score: 0.9, Threshold: 0.5, Time: t0}
	if _, err := j.Apply(ctx, ingest.Batch{Predictions: []ingest.Prediction{old, cur}}); err != nil {
		t.Fatal(err)
	}
	if err := st.DropBucketsBefore(t0.Add(-24 * time.Hour).Unix()); err != nil {
		t.Fatal(err)
	}
	var buckets, all int64
	err := st.Tallies(ctx, 0, func(d tally.Delta, allTime bool) error {
		if allTime {
			all += d.Counts.Predictions
		} else {
			buckets += d.Counts.Predictions
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if all != 2 || buckets != 1 {
		t.Fatalf("after drop: all-time %d (want 2), buckets %d (want 1)", all, buckets)
	}
	st.Close()
}

func TestCorruptRecordIsAnErrorNotAPanic(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.db.Set(recordKey("bad"), []byte{1, 1, 1}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Records(context.Background(), []string{"bad"}); err == nil {
		t.Fatal("corrupt record decoded without error")
	}
}

func TestExpireDeletesOnlyOldFullyResolvedRecords(t *testing.T) {
	ctx := context.Background()
	st, j, _ := open(t, t.TempDir(), labels.Config{})
	defer st.Close()
	old, recent := t0.Add(-100*24*time.Hour), t0
	p := func(id string, at time.Time) ingest.Prediction {
		return ingest.Prediction{InferenceID: id, Variant: "v5", Score: 0.9, Threshold: 0.5, Time: at}
	}
	l := func(id string, at time.Time) ingest.Label {
		return ingest.Label{InferenceID: id, Positive: true, Time: at}
	}
	b := ingest.Batch{
		Predictions: []ingest.Prediction{p("old-labeled", old), p("old-pending", old), p("recent", recent), p("old-corrected", old)},
		Labels: []ingest.Label{l("old-labeled", old.Add(time.Hour)), l("recent", recent), l("old-corrected", old.Add(time.Hour)),
			l("old-corrected", recent), l("label-only", old)},
	}
	if _, err := j.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	// A second write of an old record leaves it two age entries; it is one record.
	if _, err := j.Apply(ctx, ingest.Batch{Labels: []ingest.Label{l("old-labeled", old.Add(2*time.Hour))}}); err != nil {
		t.Fatal(err)
	}
	before := tallyOf(t, st)
	n, err := st.Expire(t0.Add(-90*24*time.Hour), 1000)
	if err != nil || n != 1 {
		t.Fatalf("Expire deleted %d (%v), want 1 (old-labeled)", n, err)
	}
	recs, err := st.Records(ctx, []string{"old-labeled", "old-pending", "recent", "old-corrected", "label-only"})
	if err != nil {
		t.Fatal(err)
	}
	if recs[0] != nil {
		t.Error("old fully labeled record survived")
	}
	for i, id := range []string{"old-pending", "recent", "old-corrected", "label-only"} {
		if recs[i+1] == nil {
			t.Errorf("%s was deleted", id)
		}
	}
	if after := tallyOf(t, st); after != before {
		t.Errorf("expiry changed the tallies: %+v, was %+v", after, before)
	}
	if n, err := st.Expire(t0.Add(-90*24*time.Hour), 1000); err != nil || n != 0 {
		t.Errorf("second Expire deleted %d (%v), want 0", n, err)
	}
	// The documented price: a prediction replayed after its record expired counts again.
	if res, err := j.Apply(ctx, ingest.Batch{Predictions: []ingest.Prediction{p("old-labeled", old)}}); err != nil || res.Applied != 1 {
		t.Errorf("replay after expiry: %+v %v, want it applied once more", res, err)
	}
}

func tallyOf(t *testing.T, st *Store) tally.Counts {
	t.Helper()
	var c tally.Counts
	err := st.Tallies(context.Background(), 0, func(d tally.Delta, allTime bool) error {
		if allTime && d.Key.Overall() {
			c.Add(d.Counts)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCollectorReportsCacheUseAndDisk(t *testing.T) {
	ctx := context.Background()
	st, j, _ := open(t, t.TempDir(), labels.Config{})
	defer st.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(st.Collector())
	value := func(name string) float64 {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == name {
				m := f.GetMetric()[0]
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("%s not collected", name)
		return 0
	}
	var b ingest.Batch
	for i := range 2000 {
		b.Predictions = append(b.Predictions, ingest.Prediction{InferenceID: fmt.Sprintf("c%d", i), Variant: "v5", Score: 0.5, Threshold: 0.5, Time: t0})
	}
	if _, err := j.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := st.db.Flush(); err != nil { // move records from the memtable into a table
		t.Fatal(err)
	}
	before := value("verdict_store_block_cache_hits_total") + value("verdict_store_block_cache_misses_total")
	if _, err := st.Records(ctx, []string{"c1", "c2", "c3"}); err != nil {
		t.Fatal(err)
	}
	if after := value("verdict_store_block_cache_hits_total") + value("verdict_store_block_cache_misses_total"); after <= before {
		t.Errorf("point reads from a table did not touch the block cache: %v then %v", before, after)
	}
	if d := value("verdict_store_disk_bytes"); d <= 0 {
		t.Errorf("disk bytes %v, want > 0", d)
	}
}

func TestPairSeriesSurviveReopenAndLegacyTalliesStillSum(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := labels.Config{SegmentKeys: []string{"mcc"}, Bucket: 5 * time.Minute}
	st, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	// A tally written by a version without pair cells: 19 words.
	legacy := tally.EncodeCounts(tally.Counts{Predictions: 7, TP: 2})[:19*8]
	series := seriesKey(tally.Key{Variant: "v5"})
	if err := st.db.Merge(append([]byte{prefixAllTime}, series...), legacy, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, j, _ := open(t, dir, cfg)
	var b ingest.Batch
	for i := range 10 {
		id := fmt.Sprintf("id-%d", i)
		attrs := map[string]string{"mcc": "5411"}
		b.Predictions = append(b.Predictions,
			ingest.Prediction{InferenceID: id, Variant: "v5", Score: 0.9, Threshold: 0.5, Time: t0, Attributes: attrs},
			ingest.Prediction{InferenceID: id, Variant: "v6", Role: ingest.RoleShadow, Score: float64(i) / 10, Threshold: 0.5, Time: t0, Attributes: attrs})
		if i < 4 {
			b.Labels = append(b.Labels, ingest.Label{InferenceID: id, Positive: true, Time: t0})
		}
	}
	if _, err := j.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, _, tl := open(t, dir, cfg)
	defer st.Close()
	// v6 flags scores 0.5..0.9 (ids 5..9); v5 flags all. Labeled positives: ids 0..3,
	// flagged by v5 only; pending: ids 4 (v5 only) and 5..9 (both).
	var want tally.PairCounts
	want[tally.ClassPositive][tally.OnlyFirst] = 4
	want[tally.ClassPending][tally.OnlyFirst] = 1
	want[tally.ClassPending][tally.Both] = 5
	for _, k := range []tally.Key{{Variant: "v5", Versus: "v6"}, {Variant: "v5", Versus: "v6", SegmentKey: "mcc", Segment: "5411"}} {
		if got := tl.Restored[k].Pair; got != want {
			t.Errorf("%+v all time: %v, want %v", k, got, want)
		}
		var sum tally.PairCounts
		for _, c := range tl.RestoredBuckets[k] {
			for ci := range c.Pair {
				for ai := range c.Pair[ci] {
					sum[ci][ai] += c.Pair[ci][ai]
				}
			}
		}
		if sum != want {
			t.Errorf("%+v buckets: %v, want %v", k, sum, want)
		}
	}
	// The legacy tally summed with the new, longer deltas.
	if got := tl.Restored[tally.Key{Variant: "v5"}]; got.Predictions != 17 || got.TP != 6 {
		t.Errorf("v5 all time after a legacy tally: %d predictions, %d TP; want 17 and 6", got.Predictions, got.TP)
	}
}

// TestCensoredDeclinedInferences runs VERDICT_DECLINED=censored with a review source
// on the embedded store: declined inferences leave the maturity index, their censored
// counts survive a reopen, a review label resolves them, and a censored record expires.
func TestCensoredDeclinedInferences(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := labels.Config{Maturity: time.Hour, Declined: labels.DeclinedCensored, ReviewSources: []string{"review"}}
	st, j, _ := open(t, dir, cfg)
	old := t0.Add(-100 * 24 * time.Hour)
	p := func(id, variant string, role ingest.Role, score float64) ingest.Prediction {
		return ingest.Prediction{InferenceID: id, Variant: variant, Role: role, Score: score, Threshold: 0.5, Time: old}
	}
	b := ingest.Batch{Predictions: []ingest.Prediction{
		p("declined", "v5", ingest.RoleProduction, 0.9), p("declined", "v6", ingest.RoleShadow, 0.7),
		p("reviewed", "v5", ingest.RoleProduction, 0.8), p("reviewed", "v6", ingest.RoleShadow, 0.3),
		p("approved", "v5", ingest.RoleProduction, 0.1), p("approved", "v6", ingest.RoleShadow, 0.6),
	}, Labels: []ingest.Label{
		{InferenceID: "declined", Positive: false, Time: old.Add(5 * 24 * time.Hour), Source: "chargeback_window"},
	}}
	if _, err := j.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n, err := j.Mature(ctx, t0, 1000); err != nil || n != 2 {
		t.Fatalf("matured %d (%v), want 2 (the approved inference's predictions)", n, err)
	}
	if due, err := st.Due(ctx, t0, 1000); err != nil || len(due) != 0 {
		t.Fatalf("maturity index after the sweep: %v (%v), want empty: censored predictions never mature", due, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, j, tl := open(t, dir, cfg)
	defer st.Close()
	v5, v6 := tl.Restored[tally.Key{Variant: "v5"}], tl.Restored[tally.Key{Variant: "v6"}]
	if v5.Censored != 2 || v5.CensoredFlagged != 2 || v5.TN != 1 || v5.Matured != 1 || v5.Resolved() != 1 {
		t.Errorf("v5 restored %+v, want 2 censored (both flagged) and 1 matured TN", v5)
	}
	if v6.Censored != 2 || v6.CensoredFlagged != 1 || v6.FP != 1 || v6.Matured != 1 || v6.Resolved() != 1 {
		t.Errorf("v6 restored %+v, want 2 censored (1 flagged) and 1 matured FP", v6)
	}
	review := ingest.Label{InferenceID: "reviewed", Positive: true, Time: old.Add(24 * time.Hour), Source: "review"}
	if _, err := j.Apply(ctx, ingest.Batch{Labels: []ingest.Label{review}}); err != nil {
		t.Fatal(err)
	}
	all := tallyOf(t, st)
	if all.Censored != 2 || all.CensoredFlagged != 2 || all.TP != 1 || all.FN != 1 {
		t.Errorf("after the review label: %+v, want v5 TP, v6 FN and 2 still censored", all)
	}
	// Censored predictions do not keep their record forever.
	n, err := st.Expire(t0.Add(-90*24*time.Hour), 1000)
	if err != nil || n != 3 {
		t.Fatalf("Expire deleted %d (%v), want 3 (declined, reviewed and approved)", n, err)
	}
}

// TestTalliesWrittenBeforeTheCensoredCountsStillMerge: a tally value of the older,
// shorter encoding merges with newer deltas.
func TestTalliesWrittenBeforeTheCensoredCountsStillMerge(t *testing.T) {
	st, err := Open(t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k := tally.Key{Variant: "v5"}
	key := append([]byte{prefixAllTime}, seriesKey(k)...)
	legacy := tally.EncodeCounts(tally.Counts{Predictions: 3, TN: 3})
	legacy = legacy[:len(legacy)-16] // before Censored and CensoredFlagged
	if err := st.db.Merge(key, legacy, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.db.Merge(key, tally.EncodeCounts(tally.Counts{Predictions: 1, Censored: 1}), nil); err != nil {
		t.Fatal(err)
	}
	if err := st.db.Merge(key, legacy, nil); err != nil {
		t.Fatal(err)
	}
	got := tallyOf(t, st)
	if want := (tally.Counts{Predictions: 7, TN: 6, Censored: 1}); got != want {
		t.Fatalf("merged %+v, want %+v", got, want)
	}
}
