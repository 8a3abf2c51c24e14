package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/tally"
)

// Stream is a random but reproducible mix of predictions and labels with duplicates,
// corrections, early labels and (unless distinct) labels that tie on time.
type Stream struct {
	Preds  []ingest.Prediction
	Labels []ingest.Label
}

// RandomStream returns ids inference ids' events: predictions of v5 and v6 (a tenth of
// them missing, a fifth redelivered) within two hours of T0 with a merchant_category
// attribute, and none, one, or one and a correction of labels. With distinctLabelTimes
// an id's labels never tie on time, so the label in force does not depend on which
// of several writers received what last.
func RandomStream(seed uint64, ids int, distinctLabelTimes bool) Stream {
	rng := rand.New(rand.NewPCG(seed, 1))
	var s Stream
	cats := []string{"grocery", "travel", "electronics"}
	for i := range ids {
		id := fmt.Sprintf("txn-%d", i)
		attrs := []string{"merchant_category", cats[rng.IntN(len(cats))]}
		for _, v := range []string{"v5", "v6"} {
			if rng.IntN(10) == 0 {
				continue // this variant never saw it
			}
			p := Pred(id, v, rng.Float64(), attrs...)
			p.Time = T0.Add(time.Duration(rng.IntN(7200)) * time.Second)
			s.Preds = append(s.Preds, p)
			if rng.IntN(5) == 0 {
				s.Preds = append(s.Preds, p) // redelivery
			}
		}
		if distinctLabelTimes {
			perm := rng.Perm(4)
			for k := range rng.IntN(3) {
				s.Labels = append(s.Labels, Label(id, rng.IntN(3) == 0, time.Duration(perm[k])*time.Hour))
			}
			continue
		}
		for range rng.IntN(3) { // 0, 1 or 2 labels: none, one, or one and a correction
			s.Labels = append(s.Labels, Label(id, rng.IntN(3) == 0, time.Duration(rng.IntN(4))*time.Hour))
		}
	}
	return s
}

// finalLabels is the label in force per id: the latest label time, ties going to the
// one received last (position in arrivals).
func finalLabels(arrivals []ingest.Label, keep func(ingest.Label) bool) map[string]ingest.Label {
	final := map[string]ingest.Label{}
	for _, l := range arrivals {
		if cur, ok := final[l.InferenceID]; keep(l) && (!ok || !l.Time.Before(cur.Time)) {
			final[l.InferenceID] = l
		}
	}
	return final
}

func all(ingest.Label) bool { return true }

// firstPredictions is the first prediction per (id, variant), in arrival order.
func firstPredictions(preds []ingest.Prediction) []ingest.Prediction {
	type pk struct{ id, variant string }
	seen := map[pk]bool{}
	var out []ingest.Prediction
	for _, p := range preds {
		if k := (pk{p.InferenceID, p.Variant}); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// seriesOf are the series a stream prediction counts in.
func seriesOf(p ingest.Prediction) []tally.Key {
	return []tally.Key{{Variant: p.Variant}, {Variant: p.Variant, SegmentKey: "merchant_category", Segment: p.Attributes["merchant_category"]}}
}

// recount is the plain computation the join must agree with: the first prediction
// per (id, variant) counts; the label in force is the one with the latest time, ties
// going to the one received last; received means position in arrival order.
func recount(preds []ingest.Prediction, arrivals []ingest.Label) map[tally.Key]OC {
	final := finalLabels(arrivals, all)
	out := map[tally.Key]OC{}
	for _, p := range firstPredictions(preds) {
		for _, key := range seriesOf(p) {
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

// recountUnmatched is the number of ids with a label and no prediction.
func recountUnmatched(preds []ingest.Prediction, arrivals []ingest.Label) int64 {
	predicted := map[string]bool{}
	for _, p := range preds {
		predicted[p.InferenceID] = true
	}
	var n int64
	for id := range finalLabels(arrivals, all) {
		if !predicted[id] {
			n++
		}
	}
	return n
}

// recountPairs is the plain computation of the pair tallies for v5 and v6 without
// maturity: every id both variants predicted (first prediction each) counts once, by
// its final label and by which of the two flagged it, overall and in v5's segment.
func recountPairs(preds []ingest.Prediction, arrivals []ingest.Label) map[tally.Key]tally.PairCounts {
	first := map[string]map[string]ingest.Prediction{}
	for _, p := range firstPredictions(preds) {
		if first[p.InferenceID] == nil {
			first[p.InferenceID] = map[string]ingest.Prediction{}
		}
		first[p.InferenceID][p.Variant] = p
	}
	final := finalLabels(arrivals, all)
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
		agree := tally.AgreementOf(a.Score >= a.Threshold, b.Score >= b.Threshold)
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

// CheckRecount compares everything st holds after a stream (without maturity) with a
// plain recount of it: every series' outcomes, the pair series, the bucket tallies'
// sums and the unmatched labels.
func CheckRecount(t *testing.T, st labels.Store, s Stream) {
	t.Helper()
	tl := ReadTallies(t, st)
	want := recount(s.Preds, s.Labels)
	got := tl.outcomes()
	if len(got) != len(want) {
		t.Errorf("series: got %d, recount %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%+v: got %+v, recount %+v", k, got[k], w)
		}
	}
	wantPairs := recountPairs(s.Preds, s.Labels)
	for k, w := range wantPairs {
		if got := tl.AllTime[k].Pair; got != w {
			t.Errorf("pair %+v: got %v, recount %v", k, got, w)
		}
	}
	for k, c := range tl.AllTime {
		if _, ok := wantPairs[k]; k.Paired() && !ok && c.Pair != (tally.PairCounts{}) {
			t.Errorf("pair %+v: got %v, recount has none", k, c.Pair)
		}
	}
	tl.CheckBucketsSumToAllTime(t)
	if n, err := st.Unmatched(context.Background()); err != nil || n != recountUnmatched(s.Preds, s.Labels) {
		t.Errorf("unmatched: got %d (%v), recount %d", n, err, recountUnmatched(s.Preds, s.Labels))
	}
}

// interleave applies predictions (shuffled) and labels (in their order: ties are
// decided by arrival) in random batches of 1 to 40 events, calling between (if set)
// before each batch.
func interleave(t *testing.T, j *labels.Join, s Stream, rng *rand.Rand, between func()) {
	t.Helper()
	ps := append([]ingest.Prediction(nil), s.Preds...)
	rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	pi, li := 0, 0
	for pi < len(ps) || li < len(s.Labels) {
		if between != nil {
			between()
		}
		var b ingest.Batch
		for range 1 + rng.IntN(40) {
			if li < len(s.Labels) && (pi == len(ps) || rng.IntN(3) == 0) {
				b.Labels = append(b.Labels, s.Labels[li])
				li++
			} else if pi < len(ps) {
				b.Predictions = append(b.Predictions, ps[pi])
				pi++
			}
		}
		apply(t, j, b)
	}
	// Replaying everything again changes nothing.
	apply(t, j, ingest.Batch{Predictions: s.Preds, Labels: s.Labels})
}

func joinMatchesRecount(t *testing.T, open Open) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			s := RandomStream(seed, 300, false)
			st, _ := open(t)
			j := openJoin(t, st, labels.Config{SegmentKeys: []string{"merchant_category"}}, nil)
			interleave(t, j, s, rand.New(rand.NewPCG(seed, 2)), nil)
			CheckRecount(t, st, s)
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
	declined := map[string]bool{}
	firsts := firstPredictions(preds)
	for _, p := range firsts {
		first[pk{p.InferenceID, p.Variant}] = p
		if p.Role == ingest.RoleProduction && p.Score >= p.Threshold {
			declined[p.InferenceID] = true
		}
	}
	final := finalLabels(arrivals, all)
	finalReview := finalLabels(arrivals, func(l ingest.Label) bool { return slices.Contains(review, l.Source) })
	out := map[tally.Key]cc{}
	var pairs tally.PairCounts
	for _, p := range firsts {
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
		for _, key := range seriesOf(p) {
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

func censoringMatchesRecount(t *testing.T, open Open) {
	ctx := context.Background()
	for _, review := range [][]string{nil, {"review"}} {
		for seed := range uint64(6) {
			t.Run(fmt.Sprintf("review %v seed %d", review, seed), func(t *testing.T) {
				s := RandomStream(seed, 300, false)
				rng := rand.New(rand.NewPCG(seed, 3))
				for i := range s.Labels {
					s.Labels[i].Source = []string{"dispute", "review", "issuer_alert"}[rng.IntN(3)]
				}
				st, _ := open(t)
				cfg := labels.Config{SegmentKeys: []string{"merchant_category"}, Maturity: time.Hour, Declined: labels.DeclinedCensored, ReviewSources: review}
				j := openJoin(t, st, cfg, nil)
				// Predictions, labels and maturity sweeps (long after every prediction)
				// interleave at random; labels keep their relative order.
				interleave(t, j, s, rng, func() {
					if rng.IntN(5) == 0 {
						if _, err := j.Mature(ctx, farFuture, 1+rng.IntN(50)); err != nil {
							t.Fatal(err)
						}
					}
				})
				for {
					n, err := j.Mature(ctx, farFuture, 1000)
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						break
					}
				}
				want, pairs := recountCensored(s.Preds, s.Labels, review)
				tl := ReadTallies(t, st)
				for k, w := range want {
					if got := ccOf(tl.AllTime[k]); got != w {
						t.Errorf("%+v: got %+v, recount %+v", k, got, w)
					}
				}
				if got := tl.AllTime[tally.Key{Variant: "v5", Versus: "v6"}].Pair; got != pairs {
					t.Errorf("pair cells (v5, v6): got %v, recount %v", got, pairs)
				}
				if refs := due(t, st, farFuture, 0); len(refs) != 0 {
					t.Errorf("%d entries left in the maturity index after the last sweep", len(refs))
				}
			})
		}
	}
}
