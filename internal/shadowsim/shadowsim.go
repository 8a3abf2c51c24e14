// Package shadowsim draws synthetic shadow traffic for tests: a baseline and a
// candidate scoring the same (or split) requests in several merchant categories,
// counted into window snapshots from a deterministic seed; and snapshot rows built
// from confusion counts.
package shadowsim

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// Segment describes one merchant category of synthetic traffic: how many
// predictions each variant sees, the fraud prevalence, and the mean score of
// positives and negatives (scores are normal with sd 0.18, clamped to [0, 1]).
type Segment struct {
	Name        string
	Predictions int
	Prevalence  float64
	PosMean     float64
	NegMean     float64
}

// Categories is the demo's shape: several merchant categories of different size
// and difficulty.
func Categories() []Segment {
	return []Segment{
		{"grocery", 5000, 0.12, 0.72, 0.30},
		{"electronics", 4000, 0.18, 0.74, 0.30},
		{"travel", 3500, 0.15, 0.70, 0.32},
		{"gaming", 3000, 0.20, 0.75, 0.28},
		{"fuel", 3000, 0.10, 0.70, 0.30},
		{"jewelry", 2500, 0.22, 0.76, 0.31},
	}
}

// Regress lowers the positives' mean score of one category: the candidate misses
// more fraud there (recall drops), as the V4 release did.
func Regress(segs []Segment, name string, posMean float64) []Segment {
	out := append([]Segment(nil), segs...)
	for i := range out {
		if out[i].Name == name {
			out[i].PosMean = posMean
		}
	}
	return out
}

const simThreshold = 0.5

// simCorrelation is how alike the two models score one request: the candidate's
// score noise is this correlated with the baseline's (a retrained model of the same
// family).
const simCorrelation = 0.9

// Simulate scores synthetic shadow traffic and feeds the outcome counts to w through
// the windows' Observe, as the join does after each commit: every inference labeled,
// both variants scoring every inference, the pair cells counted too.
func Simulate(w *window.Windows, rng *rand.Rand, base, cand []Segment) {
	bucket := time.Now().Unix()
	type acc struct{ b, c tally.Counts }
	var all acc
	var allPair tally.Counts // pair cells only
	var deltas []tally.Delta
	for i, s := range base {
		var seg acc
		var segPair tally.PairCounts
		for range s.Predictions {
			positive := rng.Float64() < s.Prevalence
			mb, mc := s.NegMean, cand[i].NegMean
			if positive {
				mb, mc = s.PosMean, cand[i].PosMean
			}
			z1, z2 := rng.NormFloat64(), rng.NormFloat64()
			sb := math.Min(1, math.Max(0, mb+0.18*z1))
			sc := math.Min(1, math.Max(0, mc+0.18*(simCorrelation*z1+math.Sqrt(1-simCorrelation*simCorrelation)*z2)))
			count(&seg.b, sb, positive)
			count(&seg.c, sc, positive)
			class := tally.ClassNegative
			if positive {
				class = tally.ClassPositive
			}
			segPair[class][tally.AgreementOf(sb >= simThreshold, sc >= simThreshold)]++
		}
		key := func(v string) tally.Key {
			return tally.Key{Variant: v, SegmentKey: "merchant_category", Segment: s.Name}
		}
		deltas = append(deltas,
			tally.Delta{Key: key("v5"), Bucket: bucket, Counts: seg.b},
			tally.Delta{Key: key("v6"), Bucket: bucket, Counts: seg.c})
		all.b.Add(seg.b)
		all.c.Add(seg.c)
		k := key("v5")
		k.Versus = "v6"
		pair := tally.Counts{Pair: segPair}
		deltas = append(deltas, tally.Delta{Key: k, Bucket: bucket, Counts: pair})
		allPair.Add(pair)
	}
	deltas = append(deltas,
		tally.Delta{Key: tally.Key{Variant: "v5"}, Bucket: bucket, Counts: all.b},
		tally.Delta{Key: tally.Key{Variant: "v6"}, Bucket: bucket, Counts: all.c})
	deltas = append(deltas, tally.Delta{Key: tally.Key{Variant: "v5", Versus: "v6"}, Bucket: bucket, Counts: allPair})
	w.Observe(deltas)
}

// count adds one labeled prediction to c.
func count(c *tally.Counts, score float64, positive bool) {
	flagged := score >= simThreshold
	c.Predictions++
	c.ScoreSum += score
	c.Bins[tally.ScoreBin(score)]++
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

// Snapshot is all-time shadow data: baseline v5 and candidate v6 scoring the same
// traffic, drawn from a deterministic seed.
func Snapshot(seed uint64, base, cand []Segment) window.Snapshot {
	w := window.New(5*time.Minute, 24*time.Hour)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	Simulate(w, rng, base, cand)
	return w.Snapshot(window.AllTime)
}

// Shrink scales every category's traffic by f: one replay step is a slice of it.
func Shrink(segs []Segment, f float64) []Segment {
	out := append([]Segment(nil), segs...)
	for i := range out {
		out[i].Predictions = int(float64(out[i].Predictions) * f)
	}
	return out
}

// Row builds a snapshot row from confusion counts (segment "" is the variant's
// overall row; others are merchant categories).
func Row(variant, segment string, tp, fp, fn, tn int64) window.Row {
	k := tally.Key{Variant: variant}
	if segment != "" {
		k.SegmentKey, k.Segment = "merchant_category", segment
	}
	c := tally.Counts{TP: tp, FP: fp, FN: fn, TN: tn, Predictions: tp + fp + fn + tn, Flagged: tp + fp}
	c.ScoreSum = 0.9*float64(tp+fp) + 0.1*float64(fn+tn)
	c.Bins[9], c.Bins[1] = tp+fp, fn+tn
	return window.Row{Key: k, Counts: c, Stats: window.Derive(c)}
}

// SnapshotOf is a 24h snapshot of rows.
func SnapshotOf(rows ...window.Row) window.Snapshot {
	return window.Snapshot{Span: window.Span(24 * time.Hour), Rows: rows}
}

// Fixed serves one snapshot for any window or period and records what was asked:
// the windows (a period as -1) and the periods' starts. FirstSeen answers First
// (none when zero).
type Fixed struct {
	Snap  window.Snapshot
	Asked []window.Span
	Since []time.Time
	First time.Time
}

// Snapshot serves Snap as a window of span.
func (f *Fixed) Snapshot(span window.Span) window.Snapshot {
	f.Asked = append(f.Asked, span)
	s := f.Snap
	s.Span = span
	return s
}

// Period serves Snap as a period from start.
func (f *Fixed) Period(start time.Time) (window.Snapshot, error) {
	f.Asked = append(f.Asked, -1)
	f.Since = append(f.Since, start)
	s := f.Snap
	s.Start, s.Period = start, true
	return s, nil
}

// FirstSeen answers First.
func (f *Fixed) FirstSeen(string) (time.Time, bool) {
	if f.First.IsZero() {
		return time.Time{}, false
	}
	return f.First, true
}

// Regressed is shadow data in which the candidate's recall dropped in electronics.
func Regressed() *Fixed {
	return &Fixed{Snap: Snapshot(1, Categories(), Regress(Categories(), "electronics", 0.60))}
}

// Healthy is shadow data with enough labels to show the candidate is not worse,
// overall and in every category.
func Healthy() *Fixed {
	big := Shrink(Categories(), 4)
	return &Fixed{Snap: Snapshot(1, big, big)}
}
