// Package storetest is the conformance suite of labels.Store: every join-semantics
// case of docs/architecture.md, run through a real labels.Join against each store (the
// in-memory Memory, the embedded pebble store, the DynamoDB store on kumo), in the shape
// of Thanos' ForeachStore. Expected counts are written by hand or by a plain recount of
// the events, never by another store.
//
// A store's own package runs the suite:
//
//	func TestStoreConformance(t *testing.T) { storetest.Run(t, openMyStore) }
//
// Store-specific behaviour (DynamoDB's transactions and concurrent writers, the
// embedded store's crash and fault handling) stays in the store's package.
package storetest

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/tally"
)

// Open returns an empty store for one test, closed when the test ends, and reopen,
// which returns a store on the same data as a restarted process would see it (or
// another process, for a shared store). reopen may close st first where only one
// process may hold the data; the returned store is closed when the test ends.
type Open func(t *testing.T) (st labels.Store, reopen func(t *testing.T) labels.Store)

// Run runs every case of the suite against stores from open, each case on a store of
// its own.
func Run(t *testing.T, open Open) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

type suiteCase struct {
	name string
	run  func(t *testing.T, open Open)
}

var cases = []suiteCase{
	{"join semantics", joinSemantics},
	{"apply reports applied and duplicates", applyReportsAppliedAndDuplicates},
	{"maturity", maturity},
	{"maturity disabled leaves predictions pending", maturityDisabled},
	{"maturity index and restart", maturityIndexAndRestart},
	{"reopen restores tallies, index and records", reopenRestores},
	{"declined inferences", declinedInferences},
	{"censored declined inferences", censoredDeclinedInferences},
	{"paired cells", pairedCells},
	{"failed commit changes nothing", failedCommitChangesNothing},
	{"conflict rereads and counts once", conflictRereadsAndCountsOnce},
	{"concurrent callers share commits", concurrentCallersShareCommits},
	{"join matches recount whatever the batching", joinMatchesRecount},
	{"censoring matches recount whatever the order", censoringMatchesRecount},
}

// T0 is the prediction time of the suite's events: recent, so that stores that expire
// bucket tallies (DynamoDB's TTL) still hold them, and hour-aligned.
var T0 = time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)

// Pred is a prediction at T0 with threshold 0.5; variant v6 is the shadow, any other
// the production variant. attrs are key, value pairs.
func Pred(id, variant string, score float64, attrs ...string) ingest.Prediction {
	p := ingest.Prediction{InferenceID: id, Variant: variant, Role: ingest.RoleProduction, Score: score, Threshold: 0.5, Time: T0, Attributes: map[string]string{}}
	if variant == "v6" {
		p.Role = ingest.RoleShadow
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		p.Attributes[attrs[i]] = attrs[i+1]
	}
	return p
}

// Label is a label at T0 + at.
func Label(id string, positive bool, at time.Duration) ingest.Label {
	return ingest.Label{InferenceID: id, Positive: positive, Time: T0.Add(at)}
}

// Preds and Labels make a batch.
func Preds(p ...ingest.Prediction) ingest.Batch { return ingest.Batch{Predictions: p} }

// Labels makes a batch of labels.
func Labels(l ...ingest.Label) ingest.Batch { return ingest.Batch{Labels: l} }

func sourced(l ingest.Label, source string) ingest.Label { l.Source = source; return l }

// OC is the outcome counts of one series, the fields the cases check.
type OC struct{ Pred, Flag, Err, TP, FP, FN, TN, Matured int64 }

// OCOf returns c's outcome counts.
func OCOf(c tally.Counts) OC {
	return OC{c.Predictions, c.Flagged, c.Errors, c.TP, c.FP, c.FN, c.TN, c.Matured}
}

// cc is OC with the censored counts.
type cc struct {
	OC
	Censored, CensoredFlagged int64
}

func ccOf(c tally.Counts) cc { return cc{OCOf(c), c.Censored, c.CensoredFlagged} }

// Tallies is what a store's Tallies reports: all-time per series, buckets per series.
type Tallies struct {
	AllTime map[tally.Key]tally.Counts
	Buckets map[tally.Key]map[int64]tally.Counts
}

// ReadTallies reads every tally of st, failing the test if a series (or a series'
// bucket) is reported twice: a store sums its parts (shards, merge operands) itself.
func ReadTallies(t *testing.T, st labels.Store) Tallies {
	t.Helper()
	tl := Tallies{AllTime: map[tally.Key]tally.Counts{}, Buckets: map[tally.Key]map[int64]tally.Counts{}}
	err := st.Tallies(context.Background(), 0, func(d tally.Delta, allTime bool) error {
		if allTime {
			if _, dup := tl.AllTime[d.Key]; dup {
				return fmt.Errorf("all-time %+v reported twice: parts not summed", d.Key)
			}
			tl.AllTime[d.Key] = d.Counts
			return nil
		}
		if tl.Buckets[d.Key] == nil {
			tl.Buckets[d.Key] = map[int64]tally.Counts{}
		}
		if _, dup := tl.Buckets[d.Key][d.Bucket]; dup {
			return fmt.Errorf("bucket %d of %+v reported twice: parts not summed", d.Bucket, d.Key)
		}
		tl.Buckets[d.Key][d.Bucket] = d.Counts
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

// outcomes are the non-zero series other than pair series.
func (tl Tallies) outcomes() map[tally.Key]OC {
	out := map[tally.Key]OC{}
	for k, c := range tl.AllTime {
		if !c.IsZero() && !k.Paired() {
			out[k] = OCOf(c)
		}
	}
	return out
}

// CheckBucketsSumToAllTime: every series' bucket tallies add up to its all-time tally
// (the score sum to within rounding: a store may keep it in decimal).
func (tl Tallies) CheckBucketsSumToAllTime(t *testing.T) {
	t.Helper()
	for k, all := range tl.AllTime {
		var sum tally.Counts
		for _, c := range tl.Buckets[k] {
			sum.Add(c)
		}
		if math.Abs(sum.ScoreSum-all.ScoreSum) < 1e-9 {
			sum.ScoreSum = all.ScoreSum
		}
		if sum != all {
			t.Errorf("%+v: buckets sum to %+v, all-time %+v", k, sum, all)
		}
	}
}

// checkSeries compares got with want, series by series.
func checkSeries[V comparable](t *testing.T, got, want map[tally.Key]V) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("series: got %+v, want %+v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%+v: got %+v, want %+v", k, got[k], w)
		}
	}
}

func openJoin(t *testing.T, st labels.Store, cfg labels.Config, obs labels.Observer) *labels.Join {
	t.Helper()
	j, err := labels.Open(context.Background(), st, cfg, obs)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func apply(t *testing.T, j *labels.Join, b ingest.Batch) ingest.Result {
	t.Helper()
	res, err := j.Apply(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// openApplied opens a store and a join with cfg on it, and applies batches.
func openApplied(t *testing.T, open Open, cfg labels.Config, batches []ingest.Batch) (labels.Store, *labels.Join) {
	t.Helper()
	st, _ := open(t)
	j := openJoin(t, st, cfg, nil)
	applyAll(t, j, "step", batches)
	return st, j
}

// applyAll applies batches in order; what names them in a failure.
func applyAll(t *testing.T, j *labels.Join, what string, batches []ingest.Batch) {
	t.Helper()
	for i, b := range batches {
		if _, err := j.Apply(context.Background(), b); err != nil {
			t.Fatalf("%s %d: %v", what, i, err)
		}
	}
}

// farFuture is a time after every prediction of the suite has matured.
var farFuture = T0.Add(1000 * time.Hour)

// due lists the maturity index (before a time), waiting up to 5 s for it to list n
// entries: a store's index may be eventually consistent (DynamoDB's is a global
// secondary index).
func due(t *testing.T, st labels.Store, before time.Time, n int) []labels.DueRef {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		refs, err := st.Due(context.Background(), before, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) == n || time.Now().After(deadline) {
			return refs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Recorder is a labels.Observer that sums, per series, what a join restores (all-time
// and per bucket) and what it observes. Read its maps once the join is idle.
type Recorder struct {
	mu              sync.Mutex
	Restored        map[tally.Key]tally.Counts
	RestoredBuckets map[tally.Key]map[int64]tally.Counts
	Observed        map[tally.Key]tally.Counts
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{Restored: map[tally.Key]tally.Counts{}, RestoredBuckets: map[tally.Key]map[int64]tally.Counts{}, Observed: map[tally.Key]tally.Counts{}}
}

// Restore implements labels.Observer.
func (o *Recorder) Restore(d tally.Delta, allTime bool) {
	if allTime {
		c := o.Restored[d.Key]
		c.Add(d.Counts)
		o.Restored[d.Key] = c
		return
	}
	if o.RestoredBuckets[d.Key] == nil {
		o.RestoredBuckets[d.Key] = map[int64]tally.Counts{}
	}
	c := o.RestoredBuckets[d.Key][d.Bucket]
	c.Add(d.Counts)
	o.RestoredBuckets[d.Key][d.Bucket] = c
}

// Observe implements labels.Observer.
func (o *Recorder) Observe(ds []tally.Delta) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range ds {
		c := o.Observed[d.Key]
		c.Add(d.Counts)
		o.Observed[d.Key] = c
	}
}

// faulty is a store with injected faults: the next commit fails with failNext; then
// partialConflicts commits of more than one record write only their first record (with
// its tallies) and report labels.ErrConflict, like a shared store whose other records
// changed under it.
type faulty struct {
	labels.Store
	mu               sync.Mutex
	failNext         error
	partialConflicts int
}

func (f *faulty) Commit(ctx context.Context, c *labels.Change) error {
	f.mu.Lock()
	fail := f.failNext
	f.failNext = nil
	partial := fail == nil && f.partialConflicts > 0 && len(c.Records) > 1
	if partial {
		f.partialConflicts--
	}
	f.mu.Unlock()
	switch {
	case fail != nil:
		return fail
	case partial:
		if err := f.Store.Commit(ctx, &labels.Change{Records: c.Records[:1]}); err != nil {
			return err
		}
		return labels.ErrConflict
	}
	return f.Store.Commit(ctx, c)
}
