package judge

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// segmentSim describes one merchant category of synthetic traffic: how many
// predictions each variant sees, the fraud prevalence, and the mean score of
// positives and negatives (scores are normal with sd 0.18, clamped to [0, 1]).
type segmentSim struct {
	name        string
	predictions int
	prevalence  float64
	posMean     float64
	negMean     float64
}

// categories is the demo's shape: several merchant categories of different size
// and difficulty.
func categories() []segmentSim {
	return []segmentSim{
		{"grocery", 5000, 0.12, 0.72, 0.30},
		{"electronics", 4000, 0.18, 0.74, 0.30},
		{"travel", 3500, 0.15, 0.70, 0.32},
		{"gaming", 3000, 0.20, 0.75, 0.28},
		{"fuel", 3000, 0.10, 0.70, 0.30},
		{"jewelry", 2500, 0.22, 0.76, 0.31},
	}
}

// regress lowers the positives' mean score of one category: the candidate misses
// more fraud there (recall drops), as the V4 release did.
func regress(segs []segmentSim, name string, posMean float64) []segmentSim {
	out := append([]segmentSim(nil), segs...)
	for i := range out {
		if out[i].name == name {
			out[i].posMean = posMean
		}
	}
	return out
}

const simThreshold = 0.5

// simCorrelation is how alike the two models score one request: the candidate's
// score noise is this correlated with the baseline's (a retrained model of the same
// family).
const simCorrelation = 0.9

// simulate scores synthetic traffic and feeds the outcome counts to w through the
// windows' Observe, as the join does after each commit: every inference labeled.
// Paired (a shadow): both variants score every inference and the pair cells are
// counted too; otherwise (a canary) each inference goes to one of them, half each.
func simulate(w *window.Windows, rng *rand.Rand, base, cand []segmentSim, paired bool) {
	bucket := time.Now().Unix()
	type acc struct{ b, c tally.Counts }
	var all acc
	var allPair tally.PairCounts
	var deltas []tally.Delta
	for i, s := range base {
		var seg acc
		var segPair tally.PairCounts
		n := s.predictions
		if !paired {
			n *= 2
		}
		for range n {
			positive := rng.Float64() < s.prevalence
			mb, mc := s.negMean, cand[i].negMean
			if positive {
				mb, mc = s.posMean, cand[i].posMean
			}
			z1, z2 := rng.NormFloat64(), rng.NormFloat64()
			sb := math.Min(1, math.Max(0, mb+0.18*z1))
			sc := math.Min(1, math.Max(0, mc+0.18*(simCorrelation*z1+math.Sqrt(1-simCorrelation*simCorrelation)*z2)))
			toBase := paired || rng.IntN(2) == 0
			if toBase {
				count(&seg.b, sb, positive)
			}
			if paired || !toBase {
				count(&seg.c, sc, positive)
			}
			if paired {
				class := tally.ClassNegative
				if positive {
					class = tally.ClassPositive
				}
				segPair[class][tally.AgreementOf(sb >= simThreshold, sc >= simThreshold)]++
			}
		}
		key := func(v string) tally.Key {
			return tally.Key{Variant: v, SegmentKey: "merchant_category", Segment: s.name}
		}
		deltas = append(deltas,
			tally.Delta{Key: key("v5"), Bucket: bucket, Counts: seg.b},
			tally.Delta{Key: key("v6"), Bucket: bucket, Counts: seg.c})
		all.b.Add(seg.b)
		all.c.Add(seg.c)
		if paired {
			k := key("v5")
			k.Versus = "v6"
			deltas = append(deltas, tally.Delta{Key: k, Bucket: bucket, Counts: tally.Counts{Pair: segPair}})
			allPair = addPairs(allPair, segPair)
		}
	}
	deltas = append(deltas,
		tally.Delta{Key: tally.Key{Variant: "v5"}, Bucket: bucket, Counts: all.b},
		tally.Delta{Key: tally.Key{Variant: "v6"}, Bucket: bucket, Counts: all.c})
	if paired {
		deltas = append(deltas, tally.Delta{Key: tally.Key{Variant: "v5", Versus: "v6"}, Bucket: bucket, Counts: tally.Counts{Pair: allPair}})
	}
	w.Observe(deltas)
}

func addPairs(a, b tally.PairCounts) tally.PairCounts {
	for i := range a {
		for j := range a[i] {
			a[i][j] += b[i][j]
		}
	}
	return a
}

// count adds one labeled prediction to c.
func count(c *tally.Counts, score float64, positive bool) {
	flagged := score >= simThreshold
	c.Predictions++
	c.ScoreSum += score
	c.Bins[min(int(score*tally.ScoreBins), tally.ScoreBins-1)]++
	switch {
	case flagged && positive:
		c.Flagged++
		c.TP++
	case flagged:
		c.Flagged++
		c.FP++
	case positive:
		c.FN++
	default:
		c.TN++
	}
}

// simSnapshot is all-time shadow data: baseline v5 and candidate v6 scoring the same
// traffic, drawn from a deterministic seed.
func simSnapshot(seed uint64, base, cand []segmentSim) window.Snapshot {
	return simSnapshotDesign(seed, base, cand, true)
}

// simSnapshotDesign is simSnapshot, paired (shadow) or split (canary).
func simSnapshotDesign(seed uint64, base, cand []segmentSim, paired bool) window.Snapshot {
	w := window.New(5*time.Minute, 24*time.Hour)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	simulate(w, rng, base, cand, paired)
	return w.Snapshot(window.AllTime)
}
