package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/internal/emulatortest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/tally"
)

// These tests run against kumo over the wire (scripts/test.sh starts it).

// t0 is recent, so bucket counters (which expire Retention after their bucket) are
// still live whenever the tests run.
var t0 = time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)

func pred(id, variant string, score float64, attrs ...string) ingest.Prediction {
	p := ingest.Prediction{InferenceID: id, Variant: variant, Role: ingest.RoleProduction, Score: score, Threshold: 0.5, Time: t0, Attributes: map[string]string{}}
	if variant == "v6" {
		p.Role = ingest.RoleShadow
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		p.Attributes[attrs[i]] = attrs[i+1]
	}
	return p
}

func label(id string, positive bool, at time.Duration) ingest.Label {
	return ingest.Label{InferenceID: id, Positive: positive, Time: t0.Add(at)}
}

func preds(p ...ingest.Prediction) ingest.Batch { return ingest.Batch{Predictions: p} }
func lbls(l ...ingest.Label) ingest.Batch       { return ingest.Batch{Labels: l} }

// oc is the outcome counts of one series that these tests check.
type oc struct{ Pred, Flag, Err, TP, FP, FN, TN, Matured int64 }

func ocOf(c tally.Counts) oc {
	return oc{c.Predictions, c.Flagged, c.Errors, c.TP, c.FP, c.FN, c.TN, c.Matured}
}

// newStore returns a store on table (created if needed) for writer.
func newStore(t *testing.T, db *dynamodb.Client, table, writer string) *Store {
	t.Helper()
	st, err := New(db, Config{Table: table, WriterID: writer})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// tallies reads a store's tallies back: all-time per series, and buckets per series.
type tallies struct {
	allTime map[tally.Key]tally.Counts
	buckets map[tally.Key]map[int64]tally.Counts
}

func readTallies(t *testing.T, st labels.Store, since int64) tallies {
	t.Helper()
	tl := tallies{allTime: map[tally.Key]tally.Counts{}, buckets: map[tally.Key]map[int64]tally.Counts{}}
	err := st.Tallies(context.Background(), since, func(d tally.Delta, allTime bool) error {
		if allTime {
			if _, dup := tl.allTime[d.Key]; dup {
				return fmt.Errorf("all-time %+v reported twice: shards not summed", d.Key)
			}
			tl.allTime[d.Key] = d.Counts
			return nil
		}
		if tl.buckets[d.Key] == nil {
			tl.buckets[d.Key] = map[int64]tally.Counts{}
		}
		if _, dup := tl.buckets[d.Key][d.Bucket]; dup {
			return fmt.Errorf("bucket %d of %+v reported twice: shards not summed", d.Bucket, d.Key)
		}
		tl.buckets[d.Key][d.Bucket] = d.Counts
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func (tl tallies) outcomes() map[tally.Key]oc {
	out := map[tally.Key]oc{}
	for k, c := range tl.allTime {
		if !c.IsZero() && !k.Paired() {
			out[k] = ocOf(c)
		}
	}
	return out
}

// checkPairs compares the all-time pair series with a plain recount of the stream.
func (tl tallies) checkPairs(t *testing.T, s stream) {
	t.Helper()
	first := map[string]map[string]ingest.Prediction{}
	for _, p := range s.preds {
		if first[p.InferenceID] == nil {
			first[p.InferenceID] = map[string]ingest.Prediction{}
		}
		if _, ok := first[p.InferenceID][p.Variant]; !ok {
			first[p.InferenceID][p.Variant] = p
		}
	}
	final := map[string]ingest.Label{}
	for _, l := range s.labels {
		if cur, ok := final[l.InferenceID]; !ok || l.Time.After(cur.Time) {
			final[l.InferenceID] = l
		}
	}
	want := map[tally.Key]tally.PairCounts{}
	for id, byVariant := range first {
		a, okA := byVariant["v5"]
		b, okB := byVariant["v6"]
		if !okA || !okB {
			continue
		}
		class := tally.ClassPending
		if l, ok := final[id]; ok {
			class = tally.ClassNegative
			if l.Positive {
				class = tally.ClassPositive
			}
		}
		agree := tally.AgreementOf(a.Score >= a.Threshold, b.Score >= b.Threshold)
		for _, k := range []tally.Key{
			{Variant: "v5", Versus: "v6"},
			{Variant: "v5", Versus: "v6", SegmentKey: "merchant_category", Segment: a.Attributes["merchant_category"]},
		} {
			c := want[k]
			c[class][agree]++
			want[k] = c
		}
	}
	for k, w := range want {
		if got := tl.allTime[k].Pair; got != w {
			t.Errorf("pair %+v: got %v, recount %v", k, got, w)
		}
	}
	for k, c := range tl.allTime {
		if _, ok := want[k]; k.Paired() && !ok && c.Pair != (tally.PairCounts{}) {
			t.Errorf("pair %+v: got %v, recount has none", k, c.Pair)
		}
	}
}

// checkBucketsSumToAllTime: every series' bucket tallies add up to its all-time tally.
func (tl tallies) checkBucketsSumToAllTime(t *testing.T) {
	t.Helper()
	for k, all := range tl.allTime {
		var sum tally.Counts
		for _, c := range tl.buckets[k] {
			sum.Add(c)
		}
		if ocOf(sum) != ocOf(all) {
			t.Errorf("%+v: buckets sum to %+v, all-time %+v", k, ocOf(sum), ocOf(all))
		}
	}
}

func TestJoinSemanticsOnDynamoDB(t *testing.T) {
	v5 := tally.Key{Variant: "v5"}
	v6 := tally.Key{Variant: "v6"}
	tests := []struct {
		name      string
		cfg       labels.Config
		steps     []ingest.Batch
		want      map[tally.Key]oc
		unmatched int64
	}{
		{
			name:  "label after prediction resolves it",
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9)), lbls(label("a", true, time.Hour))},
			want:  map[tally.Key]oc{v5: {Pred: 1, Flag: 1, TP: 1}},
		},
		{
			name:  "label before prediction waits in the store and resolves on arrival",
			steps: []ingest.Batch{lbls(label("a", true, time.Hour)), preds(pred("a", "v5", 0.2))},
			want:  map[tally.Key]oc{v5: {Pred: 1, FN: 1}},
		},
		{
			name:      "a label with no prediction yet is counted as unmatched",
			steps:     []ingest.Batch{lbls(label("a", true, time.Hour), label("b", false, time.Hour))},
			want:      map[tally.Key]oc{},
			unmatched: 2,
		},
		{
			name:  "one label resolves production and shadow predictions",
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9), pred("a", "v6", 0.1)), lbls(label("a", false, time.Hour))},
			want:  map[tally.Key]oc{v5: {Pred: 1, Flag: 1, FP: 1}, v6: {Pred: 1, TN: 1}},
		},
		{
			name:  "a duplicate prediction changes nothing, even with another score",
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9)), preds(pred("a", "v5", 0.1)), lbls(label("a", true, time.Hour))},
			want:  map[tally.Key]oc{v5: {Pred: 1, Flag: 1, TP: 1}},
		},
		{
			name:  "a duplicate label changes nothing",
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9)), lbls(label("a", true, time.Hour)), lbls(label("a", true, time.Hour))},
			want:  map[tally.Key]oc{v5: {Pred: 1, Flag: 1, TP: 1}},
		},
		{
			name:  "a newer label corrects the outcome",
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9)), lbls(label("a", false, time.Hour)), lbls(label("a", true, 2*time.Hour))},
			want:  map[tally.Key]oc{v5: {Pred: 1, Flag: 1, TP: 1}},
		},
		{
			name:  "an older label arriving late is ignored",
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9)), lbls(label("a", true, 2*time.Hour)), lbls(label("a", false, time.Hour))},
			want:  map[tally.Key]oc{v5: {Pred: 1, Flag: 1, TP: 1}},
		},
		{
			name:  "labels with the same time: the one received last wins",
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9)), lbls(label("a", true, time.Hour)), lbls(label("a", false, time.Hour))},
			want:  map[tally.Key]oc{v5: {Pred: 1, Flag: 1, FP: 1}},
		},
		{
			name:  "events for one id within one batch apply in order",
			steps: []ingest.Batch{{Predictions: []ingest.Prediction{pred("a", "v5", 0.9)}, Labels: []ingest.Label{label("a", false, time.Hour), label("a", true, 2*time.Hour)}}},
			want:  map[tally.Key]oc{v5: {Pred: 1, Flag: 1, TP: 1}},
		},
		{
			name: "segments partition the variant; a missing attribute is its own segment",
			cfg:  labels.Config{SegmentKeys: []string{"merchant_category"}},
			steps: []ingest.Batch{
				preds(pred("a", "v5", 0.9, "merchant_category", "grocery"), pred("b", "v5", 0.9, "merchant_category", "travel#1"), pred("c", "v5", 0.1)),
				lbls(label("a", true, time.Hour), label("b", false, time.Hour), label("c", true, time.Hour)),
			},
			want: map[tally.Key]oc{
				v5: {Pred: 3, Flag: 2, TP: 1, FP: 1, FN: 1},
				{Variant: "v5", SegmentKey: "merchant_category", Segment: "grocery"}:             {Pred: 1, Flag: 1, TP: 1},
				{Variant: "v5", SegmentKey: "merchant_category", Segment: "travel#1"}:            {Pred: 1, Flag: 1, FP: 1},
				{Variant: "v5", SegmentKey: "merchant_category", Segment: labels.MissingSegment}: {Pred: 1, FN: 1},
			},
		},
		{
			name: "segment values beyond the cap count as other",
			cfg:  labels.Config{SegmentKeys: []string{"mcc"}, MaxSegmentValues: 2},
			steps: []ingest.Batch{
				preds(pred("a", "v5", 0.9, "mcc", "1"), pred("b", "v5", 0.9, "mcc", "2"), pred("c", "v5", 0.9, "mcc", "3"), pred("d", "v5", 0.9, "mcc", "4")),
			},
			want: map[tally.Key]oc{
				v5: {Pred: 4, Flag: 4},
				{Variant: "v5", SegmentKey: "mcc", Segment: "1"}:                 {Pred: 1, Flag: 1},
				{Variant: "v5", SegmentKey: "mcc", Segment: "2"}:                 {Pred: 1, Flag: 1},
				{Variant: "v5", SegmentKey: "mcc", Segment: labels.OtherSegment}: {Pred: 2, Flag: 2},
			},
		},
		{
			name: "an errored prediction counts as an error and is never resolved",
			steps: []ingest.Batch{
				preds(ingest.Prediction{InferenceID: "a", Variant: "v5", Time: t0, Error: "ModelError", Threshold: 0.5}),
				lbls(label("a", true, time.Hour)),
			},
			want: map[tally.Key]oc{v5: {Err: 1}},
		},
	}
	db := emulatortest.DynamoDBClient(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t, db, emulatortest.TableName(t, db, "join"), "writer-a")
			j, err := labels.Open(ctx, st, tc.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range tc.steps {
				if _, err := j.Apply(ctx, b); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			tl := readTallies(t, st, 0)
			got := tl.outcomes()
			if len(got) != len(tc.want) {
				t.Errorf("series: got %v, want %v", got, tc.want)
			}
			for k, w := range tc.want {
				if got[k] != w {
					t.Errorf("%+v: got %+v, want %+v", k, got[k], w)
				}
			}
			tl.checkBucketsSumToAllTime(t)
			if n, err := st.Unmatched(ctx); err != nil || n != tc.unmatched {
				t.Errorf("unmatched labels: got %d (%v), want %d", n, err, tc.unmatched)
			}
		})
	}
}

func TestMaturityAndRestartOnDynamoDB(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)
	table := emulatortest.TableName(t, db, "join")
	cfg := labels.Config{Maturity: 24 * time.Hour, SegmentKeys: []string{"mcc"}}
	st := newStore(t, db, table, "writer-a")
	j, err := labels.Open(ctx, st, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := func(p ingest.Prediction, d time.Duration) ingest.Prediction { p.Time = t0.Add(d); return p }
	// d is the oldest, then b, a, c; e has only a shadow prediction, older than all.
	if _, err := j.Apply(ctx, preds(
		at(pred("a", "v5", 0.9, "mcc", "1"), 3*time.Minute),
		at(pred("b", "v5", 0.1, "mcc", "2"), 2*time.Minute),
		at(pred("c", "v5", 0.9), 4*time.Minute),
		at(pred("d", "v5", 0.9), time.Minute),
		at(pred("d", "v6", 0.2), 5*time.Minute),
		at(pred("e", "v6", 0.7), -time.Hour),
	)); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Apply(ctx, lbls(label("c", true, time.Hour))); err != nil {
		t.Fatal(err)
	}

	// A new store on the same table (a restarted or another process) sees the pending
	// predictions oldest first, the labelled one gone, and can stop at a limit.
	st2 := newStore(t, db, table, "writer-b")
	due, err := st2.Due(ctx, t0.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []labels.DueRef{
		{ID: "e", Variant: "v6", Time: t0.Add(-time.Hour).UnixNano()},
		{ID: "d", Variant: "v5", Time: t0.Add(time.Minute).UnixNano()},
		{ID: "b", Variant: "v5", Time: t0.Add(2 * time.Minute).UnixNano()},
		{ID: "a", Variant: "v5", Time: t0.Add(3 * time.Minute).UnixNano()},
		{ID: "d", Variant: "v6", Time: t0.Add(5 * time.Minute).UnixNano()},
	}
	if fmt.Sprint(due) != fmt.Sprint(want) {
		t.Fatalf("due:\n got %v\nwant %v", due, want)
	}
	if due, err := st2.Due(ctx, t0.Add(2*time.Minute), 100); err != nil || fmt.Sprint(due) != fmt.Sprint(want[:2]) {
		t.Fatalf("due before t0+2m: got %v (%v), want %v", due, err, want[:2])
	}
	if due, err := st2.Due(ctx, t0.Add(time.Hour), 3); err != nil || fmt.Sprint(due) != fmt.Sprint(want[:3]) {
		t.Fatalf("due, limit 3: got %v (%v), want %v", due, err, want[:3])
	}

	// The restarted join restores what the first one counted.
	tl := readTallies(t, st, 0)
	restored := map[tally.Key]tally.Counts{}
	obs := observerFunc(func(d tally.Delta, allTime bool) {
		if allTime {
			restored[d.Key] = d.Counts
		}
	})
	j2, err := labels.Open(ctx, st2, cfg, obs)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(restored) != fmt.Sprint(tl.allTime) || len(restored) == 0 {
		t.Fatalf("restored %v, stored %v", restored, tl.allTime)
	}

	// Maturity through the second store resolves a, b, d (both) and e as negatives.
	if n, err := j2.Mature(ctx, t0.Add(25*time.Hour), 100); err != nil || n != 5 {
		t.Fatalf("matured %d (err %v), want 5", n, err)
	}
	waitDue(t, st2, t0.Add(48*time.Hour), 0)
	if n, err := j2.Mature(ctx, t0.Add(48*time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("second sweep matured %d (err %v), want 0", n, err)
	}
	// A late label is a correction, applied by the first writer.
	if _, err := j.Apply(ctx, lbls(label("a", true, 30*time.Hour))); err != nil {
		t.Fatal(err)
	}
	tl = readTallies(t, st2, 0)
	if got, want := ocOf(tl.allTime[tally.Key{Variant: "v5"}]), (oc{Pred: 4, Flag: 3, TP: 2, FP: 1, TN: 1, Matured: 2}); got != want {
		t.Errorf("v5: got %+v, want %+v", got, want)
	}
	if got, want := ocOf(tl.allTime[tally.Key{Variant: "v6"}]), (oc{Pred: 2, Flag: 1, FP: 1, TN: 1, Matured: 2}); got != want {
		t.Errorf("v6: got %+v, want %+v", got, want)
	}
	tl.checkBucketsSumToAllTime(t)
	// Both writers' shards hold counts; the reader summed them.
	if st.Shard() == st2.Shard() {
		t.Logf("writers share shard %d: the sum-on-read path is not exercised", st.Shard())
	}
}

// waitDue waits until the (eventually consistent) due index lists n predictions.
func waitDue(t *testing.T, st *Store, before time.Time, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		due, err := st.Due(context.Background(), before, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("due index lists %v, want %d entries", due, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type observerFunc func(d tally.Delta, allTime bool)

func (f observerFunc) Restore(d tally.Delta, allTime bool) { f(d, allTime) }
func (f observerFunc) Observe([]tally.Delta)               {}

func TestStaleRecordIsAConflictAndTheRestCommits(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)
	table := emulatortest.TableName(t, db, "join")
	a, b := newStore(t, db, table, "writer-a"), newStore(t, db, table, "writer-b")
	ja, err := labels.Open(ctx, a, labels.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ja.Apply(ctx, preds(pred("x", "v5", 0.9), pred("y", "v5", 0.9))); err != nil {
		t.Fatal(err)
	}
	recs, err := b.Records(ctx, []string{"x", "y", "z"})
	if err != nil {
		t.Fatal(err)
	}
	if recs[0] == nil || recs[0].Version != 1 || recs[1] == nil || recs[2] != nil {
		t.Fatalf("records: %+v", recs)
	}
	// Writer a labels x; writer b then commits its stale copy of x with y and z.
	if _, err := ja.Apply(ctx, lbls(label("x", true, time.Hour))); err != nil {
		t.Fatal(err)
	}
	delta := func(id string) labels.RecordChange {
		r := &labels.Record{ID: id, Label: &labels.LabelState{Positive: false, Time: 1}}
		for _, old := range recs {
			if old != nil && old.ID == id {
				r.Preds, r.Version = old.Preds, old.Version
			}
		}
		return labels.RecordChange{ID: id, Record: r, Deltas: []tally.Delta{{Key: tally.Key{Variant: "v5"}, Counts: tally.Counts{TN: 1}}}}
	}
	err = b.Commit(ctx, &labels.Change{Records: []labels.RecordChange{delta("x"), delta("y"), delta("z")}})
	if !errors.Is(err, labels.ErrConflict) {
		t.Fatalf("commit with a stale record: err = %v, want ErrConflict", err)
	}
	if s := b.Stats(); s.Conflicts != 1 || s.Transactions != 1 {
		t.Errorf("stats %+v, want 1 conflict and 1 transaction", s)
	}
	got, err := b.Records(ctx, []string{"x", "y", "z"})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Version != 2 || got[0].Label == nil || !got[0].Label.Positive {
		t.Errorf("x: %+v, want writer a's label at version 2", got[0])
	}
	if got[1].Version != 2 || got[2] == nil || got[2].Version != 1 {
		t.Errorf("y, z: %+v %+v, want them committed", got[1], got[2])
	}
	if tn := readTallies(t, b, 0).allTime[tally.Key{Variant: "v5"}].TN; tn != 2 {
		t.Errorf("TN %d, want 2 (y and z, not the stale x)", tn)
	}
}

// stream is a random mix of predictions (v5 and v6, some redelivered) and labels (none,
// one, or one and a correction at a later time) for ids.
type stream struct {
	preds  []ingest.Prediction
	labels []ingest.Label
}

func randomStream(seed uint64, ids int) stream {
	rng := rand.New(rand.NewPCG(seed, 1))
	var s stream
	cats := []string{"grocery", "travel", "electronics"}
	for i := range ids {
		id := fmt.Sprintf("txn-%d", i)
		attrs := []string{"merchant_category", cats[rng.IntN(len(cats))]}
		for _, v := range []string{"v5", "v6"} {
			if rng.IntN(10) == 0 {
				continue
			}
			p := pred(id, v, rng.Float64(), attrs...)
			p.Time = t0.Add(time.Duration(rng.IntN(7200)) * time.Second)
			s.preds = append(s.preds, p)
			if rng.IntN(5) == 0 {
				s.preds = append(s.preds, p)
			}
		}
		// Label times differ per id, so the final label does not depend on which
		// writer received what last.
		perm := rng.Perm(4)
		for k := range rng.IntN(3) {
			s.labels = append(s.labels, label(id, rng.IntN(3) == 0, time.Duration(perm[k])*time.Hour))
		}
	}
	return s
}

// recount is the plain computation the writers must agree with: the first prediction
// per (id, variant) counts, the label with the latest time is in force.
func recount(s stream) (map[tally.Key]oc, int64) {
	type pk struct{ id, variant string }
	first := map[pk]ingest.Prediction{}
	predicted := map[string]bool{}
	for _, p := range s.preds {
		k := pk{p.InferenceID, p.Variant}
		if _, ok := first[k]; !ok {
			first[k] = p
		}
		predicted[p.InferenceID] = true
	}
	final := map[string]ingest.Label{}
	for _, l := range s.labels {
		if cur, ok := final[l.InferenceID]; !ok || l.Time.After(cur.Time) {
			final[l.InferenceID] = l
		}
	}
	var unmatched int64
	for id := range final {
		if !predicted[id] {
			unmatched++
		}
	}
	out := map[tally.Key]oc{}
	for _, p := range first {
		for _, key := range []tally.Key{{Variant: p.Variant}, {Variant: p.Variant, SegmentKey: "merchant_category", Segment: p.Attributes["merchant_category"]}} {
			c := out[key]
			c.Pred++
			flagged := p.Score >= p.Threshold
			if flagged {
				c.Flag++
			}
			if l, ok := final[p.InferenceID]; ok {
				switch {
				case flagged && l.Positive:
					c.TP++
				case flagged:
					c.FP++
				case l.Positive:
					c.FN++
				default:
					c.TN++
				}
			}
			out[key] = c
		}
	}
	return out, unmatched
}

func TestConcurrentWritersCountExactly(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)
	table := emulatortest.TableName(t, db, "join")
	s := randomStream(7, 150)
	cfg := labels.Config{SegmentKeys: []string{"merchant_category"}}

	// Pick writer ids on three different shards, so the sum on read is exercised.
	var stores []*Store
	shards := map[int]bool{}
	for i := 0; len(stores) < 3; i++ {
		st := newStore(t, db, table, "verdict-"+strconv.Itoa(i))
		if !shards[st.Shard()] {
			shards[st.Shard()] = true
			stores = append(stores, st)
		}
	}

	// Every event goes to two or three writers, each in its own shuffled order, in
	// small batches: writers read and write the same records at the same time.
	type event struct {
		p *ingest.Prediction
		l *ingest.Label
	}
	parts := make([][]event, len(stores))
	rng := rand.New(rand.NewPCG(7, 2))
	add := func(e event) {
		skip := rng.IntN(len(stores) + 1) // == len(stores): everyone gets it
		for w := range stores {
			if w != skip {
				parts[w] = append(parts[w], e)
			}
		}
	}
	for i := range s.preds {
		add(event{p: &s.preds[i]})
	}
	for i := range s.labels {
		add(event{l: &s.labels[i]})
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(stores))
	for w, st := range stores {
		part := parts[w]
		rng := rand.New(rand.NewPCG(uint64(w), 3))
		rng.Shuffle(len(part), func(i, j int) { part[i], part[j] = part[j], part[i] })
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, err := labels.Open(ctx, st, cfg, nil)
			if err != nil {
				errs <- err
				return
			}
			for len(part) > 0 {
				n := min(len(part), 1+rng.IntN(12))
				var b ingest.Batch
				for _, e := range part[:n] {
					if e.p != nil {
						b.Predictions = append(b.Predictions, *e.p)
					} else {
						b.Labels = append(b.Labels, *e.l)
					}
				}
				part = part[n:]
				for {
					_, err := j.Apply(ctx, b)
					if errors.Is(err, labels.ErrConflict) {
						continue // the join gave up rereading; the batch is idempotent
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var conflicts int64
	for _, st := range stores {
		conflicts += st.Stats().Conflicts
	}
	t.Logf("conflicts: %d, stats %+v %+v %+v", conflicts, stores[0].Stats(), stores[1].Stats(), stores[2].Stats())
	if conflicts == 0 {
		t.Fatal("no writer saw a conflict: the test did not exercise concurrent commits")
	}

	reader := newStore(t, db, table, "reader")
	tl := readTallies(t, reader, 0)
	want, unmatched := recount(s)
	tl.checkPairs(t, s)
	got := tl.outcomes()
	if len(got) != len(want) {
		t.Errorf("series: got %d, recount %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%+v: got %+v, recount %+v", k, got[k], w)
		}
	}
	tl.checkBucketsSumToAllTime(t)
	if n, err := reader.Unmatched(ctx); err != nil || n != unmatched {
		t.Errorf("unmatched: got %d (%v), recount %d", n, err, unmatched)
	}
}

func TestEnsureTables(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)

	t.Run("creates the table with the due index and TTL, and accepts it again", func(t *testing.T) {
		table := emulatortest.TableName(t, db, "join")
		st := newStore(t, db, table, "w")
		if err := st.EnsureTables(ctx); err != nil {
			t.Fatalf("second EnsureTables: %v", err)
		}
		out, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		if d := out.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != attrExpiresAt || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
			t.Fatalf("TTL: %+v", out.TimeToLiveDescription)
		}
	})

	t.Run("several processes ensure the same new table at once", func(t *testing.T) {
		table := emulatortest.TableName(t, db, "join")
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			st, err := New(db, Config{Table: table, WriterID: fmt.Sprint("w", i)})
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = st.EnsureTables(ctx)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("process %d: %v", i, err)
			}
		}
	})

	t.Run("rejects a table with another key schema", func(t *testing.T) {
		table := emulatortest.TableName(t, db, "other")
		_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(table),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		})
		if err != nil {
			t.Fatal(err)
		}
		st, err := New(db, Config{Table: table, WriterID: "w"})
		if err != nil {
			t.Fatal(err)
		}
		err = st.EnsureTables(ctx)
		if err == nil {
			t.Fatal("EnsureTables accepted a table keyed by id only")
		}
		t.Logf("error: %v", err)
	})
}

func TestResolvedRecordsExpire(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)
	st := newStore(t, db, emulatortest.TableName(t, db, "join"), "w")
	j, err := labels.Open(ctx, st, labels.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if _, err := j.Apply(ctx, ingest.Batch{
		Predictions: []ingest.Prediction{pred("done", "v5", 0.9), pred("open", "v5", 0.9)},
		Labels:      []ingest.Label{label("done", true, time.Hour), label("waiting", true, time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	expires := func(id string) (int64, bool) {
		out, err := db.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(st.table),
			ConsistentRead:            aws.Bool(true),
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: recordPK(id)}},
		})
		if err != nil || len(out.Items) != 1 {
			t.Fatalf("read %q: %d items, %v", id, len(out.Items), err)
		}
		n, ok := out.Items[0][attrExpiresAt].(*types.AttributeValueMemberN)
		if !ok {
			return 0, false
		}
		v, _ := strconv.ParseInt(n.Value, 10, 64)
		return v, true
	}
	at, ok := expires("done")
	lo, hi := before.Add(DefaultRetention).Unix(), time.Now().Add(DefaultRetention).Unix()
	if !ok || at < lo || at > hi {
		t.Errorf("resolved record expires at %d (set %v), want within [%d, %d]", at, ok, lo, hi)
	}
	if _, ok := expires("open"); ok {
		t.Error("a record with a pending prediction expires")
	}
	if _, ok := expires("waiting"); ok {
		t.Error("a label waiting for its prediction expires")
	}
}

// faultyAPI is kumo with the faults kumo never produces: unprocessed keys from
// BatchGetItem, and transactions cancelled by contention on a counter or throttling.
type faultyAPI struct {
	*dynamodb.Client
	mu          sync.Mutex
	unprocessed int // BatchGetItem calls that leave half their keys unprocessed
	contended   int // TransactWriteItems calls cancelled: TransactionConflict on a counter
	throttled   int // TransactWriteItems calls cancelled: ThrottlingError
}

func (f *faultyAPI) take(n *int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *n > 0 {
		*n--
		return true
	}
	return false
}

func (f *faultyAPI) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	for table, ka := range in.RequestItems {
		if len(ka.Keys) < 2 || !f.take(&f.unprocessed) {
			break
		}
		half := len(ka.Keys) / 2
		rest := ka
		rest.Keys = ka.Keys[half:]
		ka.Keys = ka.Keys[:half]
		out, err := f.Client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: ka}}, opts...)
		if err != nil {
			return nil, err
		}
		out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: rest}
		return out, nil
	}
	return f.Client.BatchGetItem(ctx, in, opts...)
}

func (f *faultyAPI) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	code := ""
	switch {
	case f.take(&f.contended):
		code = "TransactionConflict"
	case f.take(&f.throttled):
		code = "ThrottlingError"
	default:
		return f.Client.TransactWriteItems(ctx, in, opts...)
	}
	reasons := make([]types.CancellationReason, len(in.TransactItems))
	hit := false
	for i, it := range in.TransactItems {
		reasons[i].Code = aws.String("None")
		pk := it.Update.Key[attrPK].(*types.AttributeValueMemberS).Value
		if !hit && pk[:2] != prefixRecord {
			reasons[i].Code = aws.String(code)
			hit = true
		}
	}
	return nil, &types.TransactionCanceledException{Message: aws.String("injected"), CancellationReasons: reasons}
}

func TestLargeBatchesWithUnprocessedKeysContentionAndThrottling(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)
	api := &faultyAPI{Client: db, unprocessed: 3, contended: 2, throttled: 2}
	st, err := New(api, Config{Table: emulatortest.TableName(t, db, "join"), WriterID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureTables(ctx); err != nil {
		t.Fatal(err)
	}
	s := randomStream(11, 400)
	j, err := labels.Open(ctx, st, labels.Config{SegmentKeys: []string{"merchant_category"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Hundreds of records per commit: several BatchGetItem calls and transactions.
	if _, err := j.Apply(ctx, ingest.Batch{Predictions: s.preds}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Apply(ctx, ingest.Batch{Labels: s.labels}); err != nil {
		t.Fatal(err)
	}
	// A replay of everything changes nothing.
	if _, err := j.Apply(ctx, ingest.Batch{Predictions: s.preds, Labels: s.labels}); err != nil {
		t.Fatal(err)
	}
	stats := st.Stats()
	if stats.Retries < 7 || api.unprocessed+api.contended+api.throttled != 0 {
		t.Errorf("stats %+v, faults left %+v: the faults were not all retried", stats, api)
	}
	if stats.Transactions < 8 {
		t.Errorf("%d transactions: batches were not split", stats.Transactions)
	}
	want, unmatched := recount(s)
	tl := readTallies(t, st, 0)
	tl.checkPairs(t, s)
	got := tl.outcomes()
	if len(got) != len(want) {
		t.Errorf("series: got %d, recount %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%+v: got %+v, recount %+v", k, got[k], w)
		}
	}
	tl.checkBucketsSumToAllTime(t)
	if n, err := st.Unmatched(ctx); err != nil || n != unmatched {
		t.Errorf("unmatched: got %d (%v), recount %d", n, err, unmatched)
	}
}

// TestCensoredDeclinedInferencesOnDynamoDB: with VERDICT_DECLINED=censored, a declined
// inference's predictions leave the shared maturity index and count as censored; a
// review label resolves them, a dispute does not.
func TestCensoredDeclinedInferencesOnDynamoDB(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)
	table := emulatortest.TableName(t, db, "join")
	cfg := labels.Config{Maturity: time.Hour, Declined: labels.DeclinedCensored, ReviewSources: []string{"review"}}
	st := newStore(t, db, table, "writer-a")
	j, err := labels.Open(ctx, st, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	review := label("reviewed", true, time.Hour)
	review.Source = "review"
	dispute := label("declined", false, time.Hour)
	dispute.Source = "dispute"
	if _, err := j.Apply(ctx, ingest.Batch{
		Predictions: []ingest.Prediction{pred("declined", "v5", 0.9), pred("declined", "v6", 0.3),
			pred("reviewed", "v5", 0.7), pred("approved", "v5", 0.2), pred("approved", "v6", 0.8)},
		Labels: []ingest.Label{dispute},
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := j.Mature(ctx, t0.Add(2*time.Hour), 100); err != nil || n != 2 {
		t.Fatalf("matured %d (%v), want 2 (the approved inference)", n, err)
	}
	if due, err := st.Due(ctx, t0.Add(1000*time.Hour), 100); err != nil || len(due) != 0 {
		t.Fatalf("maturity index: %v (%v), want empty: censored predictions never mature", due, err)
	}
	if _, err := j.Apply(ctx, lbls(review)); err != nil {
		t.Fatal(err)
	}
	tl := readTallies(t, newStore(t, db, table, "writer-b"), 0)
	tl.checkBucketsSumToAllTime(t)
	v5, v6 := tl.allTime[tally.Key{Variant: "v5"}], tl.allTime[tally.Key{Variant: "v6"}]
	if got, want := [4]int64{v5.TP, v5.TN, v5.Censored, v5.CensoredFlagged}, [4]int64{1, 1, 1, 1}; got != want {
		t.Errorf("v5 tp, tn, censored, censored flagged = %v, want %v (%+v)", got, want, v5)
	}
	if got, want := [4]int64{v6.FP, v6.Matured, v6.Censored, v6.CensoredFlagged}, [4]int64{1, 1, 1, 0}; got != want {
		t.Errorf("v6 fp, matured, censored, censored flagged = %v, want %v (%+v)", got, want, v6)
	}
}
