package labels

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/tally"
)

// cc is oc with the censored counts.
type cc struct {
	oc
	Censored, CensoredFlagged int64
}

func ccOf(c tally.Counts) cc { return cc{ocOf(c), c.Censored, c.CensoredFlagged} }

func sourced(l ingest.Label, source string) ingest.Label { l.Source = source; return l }

// step is a batch to apply, or (mature true) a maturity sweep long after everything.
type step struct {
	b      ingest.Batch
	mature bool
}

func apply(b ingest.Batch) step { return step{b: b} }

var matureAll = step{mature: true}

func TestDeclinedInferences(t *testing.T) {
	v5, v6 := tally.Key{Variant: "v5"}, tally.Key{Variant: "v6"}
	maturity := 24 * time.Hour
	negative := Config{Maturity: maturity}
	censored := Config{Maturity: maturity, Declined: DeclinedCensored}
	reviewed := Config{Maturity: maturity, Declined: DeclinedCensored, ReviewSources: []string{"review"}}
	// v5 is the serving (production) variant, v6 the shadow.
	declinedPair := preds(pred("a", "v5", 0.9), pred("a", "v6", 0.2))
	tests := []struct {
		name  string
		cfg   Config
		steps []step
		want  map[tally.Key]cc
	}{
		{
			name:  "negative: a declined inference matures as the serving model's false positive",
			cfg:   negative,
			steps: []step{apply(declinedPair), matureAll},
			want:  map[tally.Key]cc{v5: {oc: oc{Pred: 1, Flag: 1, FP: 1, Matured: 1}}, v6: {oc: oc{Pred: 1, TN: 1, Matured: 1}}},
		},
		{
			name:  "censored: a declined inference never matures, production and shadow alike",
			cfg:   censored,
			steps: []step{apply(declinedPair), matureAll},
			want:  map[tally.Key]cc{v5: {oc: oc{Pred: 1, Flag: 1}, Censored: 1, CensoredFlagged: 1}, v6: {oc: oc{Pred: 1}, Censored: 1}},
		},
		{
			name:  "censored: an inference the serving variant approved matures as usual",
			cfg:   censored,
			steps: []step{apply(preds(pred("a", "v5", 0.2), pred("a", "v6", 0.9))), matureAll},
			want:  map[tally.Key]cc{v5: {oc: oc{Pred: 1, TN: 1, Matured: 1}}, v6: {oc: oc{Pred: 1, Flag: 1, FP: 1, Matured: 1}}},
		},
		{
			name:  "censored without review sources: any label resolves a declined inference",
			cfg:   censored,
			steps: []step{apply(declinedPair), matureAll, apply(lbls(sourced(label("a", true, time.Hour), "dispute")))},
			want:  map[tally.Key]cc{v5: {oc: oc{Pred: 1, Flag: 1, TP: 1}}, v6: {oc: oc{Pred: 1, FN: 1}}},
		},
		{
			name:  "censored with review sources: a dispute leaves a declined inference censored",
			cfg:   reviewed,
			steps: []step{apply(declinedPair), apply(lbls(sourced(label("a", false, time.Hour), "chargeback_window"))), matureAll},
			want:  map[tally.Key]cc{v5: {oc: oc{Pred: 1, Flag: 1}, Censored: 1, CensoredFlagged: 1}, v6: {oc: oc{Pred: 1}, Censored: 1}},
		},
		{
			name: "censored with review sources: a review label resolves it, and a newer dispute does not undo that",
			cfg:  reviewed,
			steps: []step{apply(declinedPair), apply(lbls(sourced(label("a", true, time.Hour), "review"))),
				apply(lbls(sourced(label("a", false, 40*24*time.Hour), "chargeback_window"))), matureAll},
			want: map[tally.Key]cc{v5: {oc: oc{Pred: 1, Flag: 1, TP: 1}}, v6: {oc: oc{Pred: 1, FN: 1}}},
		},
		{
			name: "censored with review sources: an older review label arriving after a newer dispute still resolves",
			cfg:  reviewed,
			steps: []step{apply(declinedPair), apply(lbls(sourced(label("a", false, 40*24*time.Hour), "chargeback_window"))),
				apply(lbls(sourced(label("a", true, time.Hour), "review")))},
			want: map[tally.Key]cc{v5: {oc: oc{Pred: 1, Flag: 1, TP: 1}}, v6: {oc: oc{Pred: 1, FN: 1}}},
		},
		{
			name: "censored with review sources: on an approved inference the latest label wins, review or not",
			cfg:  reviewed,
			steps: []step{apply(preds(pred("a", "v5", 0.2))), apply(lbls(sourced(label("a", false, time.Hour), "review"))),
				apply(lbls(sourced(label("a", true, 2*time.Hour), "dispute")))},
			want: map[tally.Key]cc{v5: {oc: oc{Pred: 1, FN: 1}}},
		},
		{
			name:  "censored: a serving prediction arriving after the shadow matured censors the shadow again",
			cfg:   censored,
			steps: []step{apply(preds(pred("a", "v6", 0.9))), matureAll, apply(preds(pred("a", "v5", 0.8))), matureAll},
			want:  map[tally.Key]cc{v5: {oc: oc{Pred: 1, Flag: 1}, Censored: 1, CensoredFlagged: 1}, v6: {oc: oc{Pred: 1, Flag: 1}, Censored: 1, CensoredFlagged: 1}},
		},
		{
			name: "censored with review sources: a serving prediction arriving after a dispute label takes the resolution back",
			cfg:  reviewed,
			steps: []step{apply(preds(pred("a", "v6", 0.9))), apply(lbls(sourced(label("a", false, time.Hour), "dispute"))),
				apply(preds(pred("a", "v5", 0.8)))},
			want: map[tally.Key]cc{v5: {oc: oc{Pred: 1, Flag: 1}, Censored: 1, CensoredFlagged: 1}, v6: {oc: oc{Pred: 1, Flag: 1}, Censored: 1, CensoredFlagged: 1}},
		},
		{
			name:  "censored: a label before the predictions resolves a declined inference on arrival",
			cfg:   censored,
			steps: []step{apply(lbls(label("a", true, time.Hour))), apply(declinedPair), matureAll},
			want:  map[tally.Key]cc{v5: {oc: oc{Pred: 1, Flag: 1, TP: 1}}, v6: {oc: oc{Pred: 1, FN: 1}}},
		},
		{
			name: "censored: an errored serving prediction declines nothing",
			cfg:  censored,
			steps: []step{apply(preds(ingest.Prediction{InferenceID: "a", Variant: "v5", Role: ingest.RoleProduction, Time: t0, Error: "ModelError", Threshold: 0.5},
				pred("a", "v6", 0.9))), matureAll},
			want: map[tally.Key]cc{v5: {oc: oc{Err: 1}}, v6: {oc: oc{Pred: 1, Flag: 1, FP: 1, Matured: 1}}},
		},
		{
			name:  "censored: a flagged shadow alone declines nothing",
			cfg:   censored,
			steps: []step{apply(preds(pred("a", "v6", 0.9))), matureAll},
			want:  map[tally.Key]cc{v6: {oc: oc{Pred: 1, Flag: 1, FP: 1, Matured: 1}}},
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
			for i, s := range tc.steps {
				if s.mature {
					_, err = j.Mature(ctx, t0.Add(1000*time.Hour), 1000)
				} else {
					_, err = j.Apply(ctx, s.b)
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			got := map[tally.Key]cc{}
			for k, c := range st.allTime {
				if !c.IsZero() && !k.Paired() {
					got[k] = ccOf(c)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("series: got %+v, want %+v", got, tc.want)
			}
			for k, w := range tc.want {
				if got[k] != w {
					t.Errorf("%+v: got %+v, want %+v", k, got[k], w)
				}
			}
			// Bucket tallies add up to the all-time ones.
			sums := map[tally.Key]tally.Counts{}
			for k, c := range st.buckets {
				s := sums[k.key]
				s.Add(c)
				sums[k.key] = s
			}
			for k, c := range st.allTime {
				if sums[k] != c {
					t.Errorf("%+v: buckets sum to %+v, all-time %+v", k, sums[k], c)
				}
			}
			// Nothing open is left after the last sweep, and nothing censored stays
			// in the maturity index.
			if len(st.due) != 0 && tc.steps[len(tc.steps)-1].mature {
				t.Errorf("maturity index still holds %v", st.due)
			}
		})
	}
}

// recountCensored is the plain computation for censored declined inferences, after a
// last maturity sweep: an inference is declined when its first production prediction
// is flagged; it is resolved by its latest label (ties: received last), or, with
// review sources, a declined one by its latest review label only; an unresolved
// declined inference is censored; any other unlabeled prediction matured negative.
//
// It also recounts the pair cells of (v5, v6) overall: by the resolving label's class,
// else matured when both predictions matured, else pending.
func recountCensored(preds []ingest.Prediction, arrivals []ingest.Label, review []string) (map[tally.Key]cc, tally.PairCounts) {
	type pk struct{ id, variant string }
	first := map[pk]ingest.Prediction{}
	var order []pk
	declined := map[string]bool{}
	for _, p := range preds {
		k := pk{p.InferenceID, p.Variant}
		if _, ok := first[k]; ok {
			continue
		}
		first[k] = p
		order = append(order, k)
		if p.Role == ingest.RoleProduction && p.Score >= p.Threshold {
			declined[p.InferenceID] = true
		}
	}
	final, finalReview := map[string]ingest.Label{}, map[string]ingest.Label{}
	for _, l := range arrivals {
		if cur, ok := final[l.InferenceID]; !ok || !l.Time.Before(cur.Time) {
			final[l.InferenceID] = l
		}
		if slices.Contains(review, l.Source) {
			if cur, ok := finalReview[l.InferenceID]; !ok || !l.Time.Before(cur.Time) {
				finalReview[l.InferenceID] = l
			}
		}
	}
	out := map[tally.Key]cc{}
	var pairs tally.PairCounts
	for _, k := range order {
		p := first[k]
		l, labeled := final[p.InferenceID]
		if declined[p.InferenceID] && len(review) > 0 {
			l, labeled = finalReview[p.InferenceID]
		}
		if v6, ok := first[pk{p.InferenceID, "v6"}]; ok && p.Variant == "v5" {
			class := tally.ClassPending
			switch {
			case labeled && l.Positive:
				class = tally.ClassPositive
			case labeled:
				class = tally.ClassNegative
			case !declined[p.InferenceID]:
				class = tally.ClassMatured
			}
			pairs[class][tally.AgreementOf(p.Score >= p.Threshold, v6.Score >= v6.Threshold)]++
		}
		flagged := p.Score >= p.Threshold
		for _, key := range []tally.Key{{Variant: p.Variant}, {Variant: p.Variant, SegmentKey: "merchant_category", Segment: p.Attributes["merchant_category"]}} {
			c := out[key]
			c.Pred++
			if flagged {
				c.Flag++
			}
			switch {
			case labeled && flagged && l.Positive:
				c.TP++
			case labeled && flagged:
				c.FP++
			case labeled && l.Positive:
				c.FN++
			case labeled:
				c.TN++
			case declined[p.InferenceID]:
				c.Censored++
				if flagged {
					c.CensoredFlagged++
				}
			case flagged:
				c.FP++
				c.Matured++
			default:
				c.TN++
				c.Matured++
			}
			out[key] = c
		}
	}
	return out, pairs
}

func TestCensoringMatchesRecountWhateverTheOrder(t *testing.T) {
	ctx := context.Background()
	for _, review := range [][]string{nil, {"review"}} {
		for seed := range uint64(6) {
			t.Run(fmt.Sprintf("review %v seed %d", review, seed), func(t *testing.T) {
				s := randomStream(seed, 300)
				rng := rand.New(rand.NewPCG(seed, 3))
				for i := range s.labels {
					s.labels[i].Source = []string{"dispute", "review", "issuer_alert"}[rng.IntN(3)]
				}
				ps := append([]ingest.Prediction(nil), s.preds...)
				rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
				st := newMemStore()
				cfg := Config{SegmentKeys: []string{"merchant_category"}, Maturity: time.Hour, Declined: DeclinedCensored, ReviewSources: review}
				j, err := Open(ctx, st, cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				// Predictions, labels and maturity sweeps (long after every prediction)
				// interleave at random; labels keep their relative order.
				pi, li := 0, 0
				for pi < len(ps) || li < len(s.labels) {
					if rng.IntN(5) == 0 {
						if _, err := j.Mature(ctx, t0.Add(1000*time.Hour), 1+rng.IntN(50)); err != nil {
							t.Fatal(err)
						}
					}
					var b ingest.Batch
					for range 1 + rng.IntN(40) {
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
				if _, err := j.Apply(ctx, ingest.Batch{Predictions: s.preds, Labels: s.labels}); err != nil {
					t.Fatal(err)
				}
				for {
					n, err := j.Mature(ctx, t0.Add(1000*time.Hour), 1000)
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						break
					}
				}
				want, pairs := recountCensored(s.preds, s.labels, review)
				for k, w := range want {
					if got := ccOf(st.allTime[k]); got != w {
						t.Errorf("%+v: got %+v, recount %+v", k, got, w)
					}
				}
				if got := st.allTime[tally.Key{Variant: "v5", Versus: "v6"}].Pair; got != pairs {
					t.Errorf("pair cells (v5, v6): got %v, recount %v", got, pairs)
				}
				if len(st.due) != 0 {
					t.Errorf("%d entries left in the maturity index after the last sweep", len(st.due))
				}
			})
		}
	}
}
