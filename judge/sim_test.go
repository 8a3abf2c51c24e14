package judge

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/verdictml/verdict/labels"
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

// simulate scores synthetic traffic for one variant and feeds its outcome counts to
// w through the windows' Observe, as the join does after each commit.
func simulate(w *window.Windows, rng *rand.Rand, variant string, segs []segmentSim) {
	bucket := time.Now().Unix()
	overall := labels.Delta{Key: labels.Key{Variant: variant}, Bucket: bucket}
	var deltas []labels.Delta
	for _, s := range segs {
		d := labels.Delta{Key: labels.Key{Variant: variant, SegmentKey: "merchant_category", Segment: s.name}, Bucket: bucket}
		for range s.predictions {
			positive := rng.Float64() < s.prevalence
			mean := s.negMean
			if positive {
				mean = s.posMean
			}
			score := math.Min(1, math.Max(0, mean+0.18*rng.NormFloat64()))
			flagged := score >= simThreshold
			c := &d.Counts
			c.Predictions++
			c.ScoreSum += score
			c.Bins[min(int(score*labels.ScoreBins), labels.ScoreBins-1)]++
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
		overall.Counts.Add(d.Counts)
		deltas = append(deltas, d)
	}
	w.Observe(append(deltas, overall))
}

// simSnapshot is one window over baseline v5 and candidate v6 traffic, drawn from
// a deterministic seed.
func simSnapshot(seed uint64, base, cand []segmentSim) window.Snapshot {
	w := window.New(5*time.Minute, 24*time.Hour)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	simulate(w, rng, "v5", base)
	simulate(w, rng, "v6", cand)
	return w.Snapshot(window.AllTime)
}
