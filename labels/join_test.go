package labels

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/tally"
)

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

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

// outcome counts of one series, the fields these tests check.
type oc struct{ Pred, Flag, Err, TP, FP, FN, TN, Matured int64 }

func ocOf(c tally.Counts) oc {
	return oc{c.Predictions, c.Flagged, c.Errors, c.TP, c.FP, c.FN, c.TN, c.Matured}
}

func TestJoinSemantics(t *testing.T) {
	v5 := tally.Key{Variant: "v5"}
	v6 := tally.Key{Variant: "v6"}
	tests := []struct {
		name      string
		cfg       Config
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
			name:      "label before prediction waits in the store and resolves on arrival",
			steps:     []ingest.Batch{lbls(label("a", true, time.Hour)), preds(pred("a", "v5", 0.2))},
			want:      map[tally.Key]oc{v5: {Pred: 1, FN: 1}},
			unmatched: 0,
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
			cfg:  Config{SegmentKeys: []string{"merchant_category"}},
			steps: []ingest.Batch{
				preds(pred("a", "v5", 0.9, "merchant_category", "grocery"), pred("b", "v5", 0.9, "merchant_category", "travel"), pred("c", "v5", 0.1)),
				lbls(label("a", true, time.Hour), label("b", false, time.Hour), label("c", true, time.Hour)),
			},
			want: map[tally.Key]oc{
				v5: {Pred: 3, Flag: 2, TP: 1, FP: 1, FN: 1},
				{Variant: "v5", SegmentKey: "merchant_category", Segment: "grocery"}:      {Pred: 1, Flag: 1, TP: 1},
				{Variant: "v5", SegmentKey: "merchant_category", Segment: "travel"}:       {Pred: 1, Flag: 1, FP: 1},
				{Variant: "v5", SegmentKey: "merchant_category", Segment: MissingSegment}: {Pred: 1, FN: 1},
			},
		},
		{
			name: "segment values beyond the cap count as other",
			cfg:  Config{SegmentKeys: []string{"mcc"}, MaxSegmentValues: 2},
			steps: []ingest.Batch{
				preds(pred("a", "v5", 0.9, "mcc", "1"), pred("b", "v5", 0.9, "mcc", "2"), pred("c", "v5", 0.9, "mcc", "3"), pred("d", "v5", 0.9, "mcc", "4")),
			},
			want: map[tally.Key]oc{
				v5: {Pred: 4, Flag: 4},
				{Variant: "v5", SegmentKey: "mcc", Segment: "1"}:          {Pred: 1, Flag: 1},
				{Variant: "v5", SegmentKey: "mcc", Segment: "2"}:          {Pred: 1, Flag: 1},
				{Variant: "v5", SegmentKey: "mcc", Segment: OtherSegment}: {Pred: 2, Flag: 2},
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
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := newMemStore()
			j, err := Open(ctx, st, tc.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range tc.steps {
				if _, err := j.Apply(ctx, b); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			got := map[tally.Key]oc{}
			for k, c := range st.allTime {
				if !c.IsZero() && !k.Paired() { // pair series: TestPairedCells
					got[k] = ocOf(c)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("series: got %v, want %v", got, tc.want)
			}
			for k, w := range tc.want {
				if got[k] != w {
					t.Errorf("%+v: got %+v, want %+v", k, got[k], w)
				}
			}
			if st.unmatched != tc.unmatched {
				t.Errorf("unmatched labels: got %d, want %d", st.unmatched, tc.unmatched)
			}
		})
	}
}

func TestApplyReportsAppliedAndDuplicates(t *testing.T) {
	ctx := context.Background()
	j, err := Open(ctx, newMemStore(), Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := ingest.Batch{
		Predictions: []ingest.Prediction{pred("a", "v5", 0.9), pred("a", "v5", 0.9), pred("b", "v5", 0.1)},
		Labels:      []ingest.Label{label("a", true, time.Hour), label("a", true, time.Hour), label("a", false, 0)},
	}
	res, err := j.Apply(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ingest.Result{Applied: 3, Duplicates: 3}); res != want {
		t.Errorf("got %+v, want %+v", res, want)
	}
}

func TestMaturity(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	j, err := Open(ctx, st, Config{Maturity: 24 * time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Apply(ctx, preds(pred("a", "v5", 0.9), pred("b", "v5", 0.1), pred("c", "v5", 0.9))); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Apply(ctx, lbls(label("c", true, time.Hour))); err != nil {
		t.Fatal(err)
	}
	// Not yet mature.
	if n, err := j.Mature(ctx, t0.Add(23*time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("before maturity: resolved %d (err %v), want 0", n, err)
	}
	n, err := j.Mature(ctx, t0.Add(25*time.Hour), 100)
	if err != nil || n != 2 {
		t.Fatalf("after maturity: resolved %d (err %v), want 2 (a and b; c has a label)", n, err)
	}
	want := oc{Pred: 3, Flag: 2, TP: 1, FP: 1, TN: 1, Matured: 2}
	if got := ocOf(st.allTime[tally.Key{Variant: "v5"}]); got != want {
		t.Fatalf("after maturity: got %+v, want %+v", got, want)
	}
	// Maturing again finds nothing; a late label is a correction.
	if n, err := j.Mature(ctx, t0.Add(48*time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("second sweep: resolved %d (err %v), want 0", n, err)
	}
	if _, err := j.Apply(ctx, lbls(label("a", true, 30*time.Hour))); err != nil {
		t.Fatal(err)
	}
	want = oc{Pred: 3, Flag: 2, TP: 2, TN: 1, Matured: 1}
	if got := ocOf(st.allTime[tally.Key{Variant: "v5"}]); got != want {
		t.Fatalf("after late label: got %+v, want %+v", got, want)
	}
	if len(st.due) != 0 {
		t.Errorf("maturity index still holds %v", st.due)
	}
}

func TestMaturityDisabledLeavesPredictionsPending(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	j, err := Open(ctx, st, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Apply(ctx, preds(pred("a", "v5", 0.9))); err != nil {
		t.Fatal(err)
	}
	if n, err := j.Mature(ctx, t0.Add(1000*time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("resolved %d (err %v), want 0", n, err)
	}
	if len(st.due) != 0 {
		t.Errorf("maturity index written with maturity disabled: %v", st.due)
	}
}

type recordingObserver struct {
	mu       sync.Mutex
	restored map[tally.Key]tally.Counts
	observed map[tally.Key]tally.Counts
}

func (o *recordingObserver) Restore(d tally.Delta, allTime bool) {
	if allTime {
		c := o.restored[d.Key]
		c.Add(d.Counts)
		o.restored[d.Key] = c
	}
}

func (o *recordingObserver) Observe(ds []tally.Delta) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range ds {
		c := o.observed[d.Key]
		c.Add(d.Counts)
		o.observed[d.Key] = c
	}
}

func TestFailedCommitChangesNothing(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	obs := &recordingObserver{restored: map[tally.Key]tally.Counts{}, observed: map[tally.Key]tally.Counts{}}
	j, err := Open(ctx, st, Config{}, obs)
	if err != nil {
		t.Fatal(err)
	}
	diskFull := errors.New("disk full")
	st.failNext = diskFull
	b := ingest.Batch{Predictions: []ingest.Prediction{pred("a", "v5", 0.9)}, Labels: []ingest.Label{label("a", true, time.Hour)}}
	if _, err := j.Apply(ctx, b); !errors.Is(err, diskFull) {
		t.Fatalf("Apply with failing store: err = %v, want an error", err)
	}
	if len(obs.observed) != 0 || len(st.records) != 0 {
		t.Fatalf("failed commit leaked: observed %v, records %d", obs.observed, len(st.records))
	}
	// The retry applies everything once.
	if _, err := j.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, want := ocOf(obs.observed[tally.Key{Variant: "v5"}]), (oc{Pred: 1, Flag: 1, TP: 1}); got != want {
		t.Fatalf("after retry: got %+v, want %+v", got, want)
	}
	// A reopened join restores the same tallies.
	obs2 := &recordingObserver{restored: map[tally.Key]tally.Counts{}, observed: map[tally.Key]tally.Counts{}}
	if _, err := Open(ctx, st, Config{}, obs2); err != nil {
		t.Fatal(err)
	}
	if obs2.restored[tally.Key{Variant: "v5"}] != obs.observed[tally.Key{Variant: "v5"}] {
		t.Fatalf("restored %+v, observed %+v", obs2.restored, obs.observed)
	}
}

// stream is a random but reproducible mix of predictions and labels with duplicates,
// corrections, early labels and labels that tie on time.
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
				continue // this variant never saw it
			}
			p := pred(id, v, rng.Float64(), attrs...)
			p.Time = t0.Add(time.Duration(rng.IntN(7200)) * time.Second)
			s.preds = append(s.preds, p)
			if rng.IntN(5) == 0 {
				s.preds = append(s.preds, p) // redelivery
			}
		}
		for range rng.IntN(3) { // 0, 1 or 2 labels: none, one, or one and a correction
			s.labels = append(s.labels, label(id, rng.IntN(3) == 0, time.Duration(rng.IntN(4))*time.Hour))
		}
	}
	return s
}

// recount is the plain computation the join must agree with: the first prediction
// per (id, variant) counts; the label in force is the one with the latest time,
// ties going to the one received last; received means position in arrival order.
func recount(preds []ingest.Prediction, arrivals []ingest.Label) map[tally.Key]oc {
	type pk struct{ id, variant string }
	first := map[pk]ingest.Prediction{}
	var order []pk
	for _, p := range preds {
		k := pk{p.InferenceID, p.Variant}
		if _, ok := first[k]; !ok {
			first[k] = p
			order = append(order, k)
		}
	}
	final := map[string]ingest.Label{}
	for _, l := range arrivals {
		cur, ok := final[l.InferenceID]
		if !ok || !l.Time.Before(cur.Time) {
			final[l.InferenceID] = l
		}
	}
	out := map[tally.Key]oc{}
	for _, k := range order {
		p := first[k]
		keys := []tally.Key{{Variant: p.Variant}, {Variant: p.Variant, SegmentKey: "merchant_category", Segment: p.Attributes["merchant_category"]}}
		for _, key := range keys {
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
	return out
}

func TestJoinMatchesRecountWhateverTheBatching(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(8) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			s := randomStream(seed, 300)
			rng := rand.New(rand.NewPCG(seed, 2))
			// Interleave predictions and labels in random batches; labels keep their
			// relative order (ties are decided by arrival), predictions are shuffled.
			ps := append([]ingest.Prediction(nil), s.preds...)
			rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
			st := newMemStore()
			j, err := Open(ctx, st, Config{SegmentKeys: []string{"merchant_category"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			pi, li := 0, 0
			for pi < len(ps) || li < len(s.labels) {
				var b ingest.Batch
				n := 1 + rng.IntN(40)
				for range n {
					if li < len(s.labels) && (pi == len(ps) || rng.IntN(3) == 0) {
						b.Labels = append(b.Labels, s.labels[li])
						li++
					} else if pi < len(ps) {
						b.Predictions = append(b.Predictions, ps[pi])
						pi++
					}
				}
				if _, err := j.Apply(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			// Replaying everything again changes nothing.
			if _, err := j.Apply(ctx, ingest.Batch{Predictions: s.preds, Labels: s.labels}); err != nil {
				t.Fatal(err)
			}
			want := recount(s.preds, s.labels)
			for k, w := range want {
				if got := ocOf(st.allTime[k]); got != w {
					t.Errorf("%+v: got %+v, recount %+v", k, got, w)
				}
			}
			wantPairs := recountPairs(s.preds, s.labels)
			for k, w := range wantPairs {
				if got := st.allTime[k].Pair; got != w {
					t.Errorf("pair %+v: got %v, recount %v", k, got, w)
				}
			}
			for k, c := range st.allTime {
				if _, ok := wantPairs[k]; k.Paired() && !ok && c.Pair != (tally.PairCounts{}) {
					t.Errorf("pair %+v: got %v, recount has none", k, c.Pair)
				}
			}
		})
	}
}

// recountPairs is the plain computation of the pair tallies for v5 and v6 without
// maturity: every id both variants predicted (first prediction each) counts once, by
// its final label and by which of the two flagged it, overall and in v5's segment.
func recountPairs(preds []ingest.Prediction, arrivals []ingest.Label) map[tally.Key]tally.PairCounts {
	first := map[string]map[string]ingest.Prediction{}
	for _, p := range preds {
		if first[p.InferenceID] == nil {
			first[p.InferenceID] = map[string]ingest.Prediction{}
		}
		if _, ok := first[p.InferenceID][p.Variant]; !ok {
			first[p.InferenceID][p.Variant] = p
		}
	}
	final := map[string]ingest.Label{}
	for _, l := range arrivals {
		if cur, ok := final[l.InferenceID]; !ok || !l.Time.Before(cur.Time) {
			final[l.InferenceID] = l
		}
	}
	out := map[tally.Key]tally.PairCounts{}
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
		agree := tally.Neither
		if a.Score >= a.Threshold {
			agree += tally.OnlyFirst
		}
		if b.Score >= b.Threshold {
			agree += tally.OnlySecond
		}
		for _, k := range []tally.Key{
			{Variant: "v5", Versus: "v6"},
			{Variant: "v5", Versus: "v6", SegmentKey: "merchant_category", Segment: a.Attributes["merchant_category"]},
		} {
			c := out[k]
			c[class][agree]++
			out[k] = c
		}
	}
	return out
}

func TestPairedCells(t *testing.T) {
	pair := tally.Key{Variant: "v5", Versus: "v6"}
	seg := func(v string) tally.Key {
		return tally.Key{Variant: "v5", Versus: "v6", SegmentKey: "merchant_category", Segment: v}
	}
	cell := func(c tally.LabelClass, a tally.Agreement) tally.PairCounts {
		var p tally.PairCounts
		p[c][a] = 1
		return p
	}
	errored := ingest.Prediction{InferenceID: "a", Variant: "v6", Role: ingest.RoleShadow, Time: t0, Error: "ModelError", Threshold: 0.5}
	tests := []struct {
		name  string
		cfg   Config
		steps []ingest.Batch
		now   time.Time // for a maturity pass after the steps
		after []ingest.Batch
		want  map[tally.Key]tally.PairCounts
	}{
		{
			name:  "a lone prediction is not paired",
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9))},
			want:  map[tally.Key]tally.PairCounts{},
		},
		{
			name:  "production and shadow of one request pair up, pending until labeled",
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9), pred("a", "v6", 0.2))},
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassPending, tally.OnlyFirst)},
		},
		{
			name:  "the pair is keyed by variant name whichever arrives first",
			steps: []ingest.Batch{preds(pred("a", "v6", 0.9)), preds(pred("a", "v5", 0.2))},
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassPending, tally.OnlySecond)},
		},
		{
			name:  "a label moves the pair to its class",
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9), pred("a", "v6", 0.7)), lbls(label("a", true, time.Hour))},
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassPositive, tally.Both)},
		},
		{
			name:  "a label waiting for the second prediction counts the pair on arrival",
			steps: []ingest.Batch{lbls(label("a", false, time.Hour)), preds(pred("a", "v5", 0.1)), preds(pred("a", "v6", 0.1))},
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassNegative, tally.Neither)},
		},
		{
			name: "a correction moves the pair once",
			steps: []ingest.Batch{
				preds(pred("a", "v5", 0.9), pred("a", "v6", 0.2)),
				lbls(label("a", true, time.Hour)), lbls(label("a", false, 2*time.Hour)),
			},
			want: map[tally.Key]tally.PairCounts{pair: cell(tally.ClassNegative, tally.OnlyFirst)},
		},
		{
			name: "duplicates change nothing",
			steps: []ingest.Batch{
				preds(pred("a", "v5", 0.9), pred("a", "v6", 0.9)), preds(pred("a", "v6", 0.1)),
				lbls(label("a", true, time.Hour)), lbls(label("a", true, time.Hour)),
			},
			want: map[tally.Key]tally.PairCounts{pair: cell(tally.ClassPositive, tally.Both)},
		},
		{
			name:  "an errored prediction does not pair",
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9)), preds(errored), lbls(label("a", true, time.Hour))},
			want:  map[tally.Key]tally.PairCounts{},
		},
		{
			name:  "segments of the pair are its first variant's",
			cfg:   Config{SegmentKeys: []string{"merchant_category"}},
			steps: []ingest.Batch{preds(pred("a", "v6", 0.9, "merchant_category", "travel"), pred("a", "v5", 0.9, "merchant_category", "grocery"))},
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassPending, tally.Both), seg("grocery"): cell(tally.ClassPending, tally.Both)},
		},
		{
			name:  "both predictions matured: the pair is matured",
			cfg:   Config{Maturity: 24 * time.Hour},
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9), pred("a", "v6", 0.2))},
			now:   t0.Add(25 * time.Hour),
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassMatured, tally.OnlyFirst)},
		},
		{
			name:  "a label after maturity is a correction of the pair too",
			cfg:   Config{Maturity: 24 * time.Hour},
			steps: []ingest.Batch{preds(pred("a", "v5", 0.9), pred("a", "v6", 0.2))},
			now:   t0.Add(25 * time.Hour),
			after: []ingest.Batch{lbls(label("a", true, 40*time.Hour))},
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassPositive, tally.OnlyFirst)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := newMemStore()
			j, err := Open(ctx, st, tc.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range tc.steps {
				if _, err := j.Apply(ctx, b); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if !tc.now.IsZero() {
				if _, err := j.Mature(ctx, tc.now, 100); err != nil {
					t.Fatal(err)
				}
			}
			for i, b := range tc.after {
				if _, err := j.Apply(ctx, b); err != nil {
					t.Fatalf("after step %d: %v", i, err)
				}
			}
			got := map[tally.Key]tally.PairCounts{}
			for k, c := range st.allTime {
				if k.Paired() && c.Pair != (tally.PairCounts{}) {
					got[k] = c.Pair
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("pair series: got %v, want %v", got, tc.want)
			}
			for k, w := range tc.want {
				if got[k] != w {
					t.Errorf("%+v: got %v, want %v", k, got[k], w)
				}
			}
			// Bucket tallies sum to the all-time ones.
			for k, w := range got {
				var sum tally.PairCounts
				for dk, c := range st.buckets {
					if dk.key == k {
						for ci := range c.Pair {
							for ai := range c.Pair[ci] {
								sum[ci][ai] += c.Pair[ci][ai]
							}
						}
					}
				}
				if sum != w {
					t.Errorf("%+v: buckets sum to %v, all time %v", k, sum, w)
				}
			}
		})
	}
}

func TestConcurrentCallersShareCommits(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	j, err := Open(ctx, st, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var all []ingest.Prediction
	for w := range 8 {
		var mine []ingest.Prediction
		for i := range 200 {
			mine = append(mine, pred(fmt.Sprintf("w%d-%d", w, i), "v5", 0.9))
		}
		all = append(all, mine...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range mine {
				if _, err := j.Apply(ctx, preds(p)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := st.allTime[tally.Key{Variant: "v5"}].Predictions; got != int64(len(all)) {
		t.Fatalf("predictions: got %d, want %d", got, len(all))
	}
}

func TestConflictRereadsAndCountsOnce(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	st.partialConflicts = 3
	j, err := Open(ctx, st, Config{SegmentKeys: []string{"merchant_category"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := randomStream(42, 50)
	if _, err := j.Apply(ctx, ingest.Batch{Predictions: s.preds}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Apply(ctx, ingest.Batch{Labels: s.labels}); err != nil {
		t.Fatal(err)
	}
	if st.partialConflicts != 0 {
		t.Fatalf("conflicts left %d: the test did not exercise the retries", st.partialConflicts)
	}
	for k, w := range recount(s.preds, s.labels) {
		if got := ocOf(st.allTime[k]); got != w {
			t.Errorf("%+v: got %+v, recount %+v", k, got, w)
		}
	}
}
