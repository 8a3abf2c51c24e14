package judge

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// benchSnapshot is one period with 200 segments (VERDICT_MAX_SEGMENT_VALUES' default)
// of labeled traffic for v5 and v6, paired (shadow) or not.
func benchSnapshot(paired bool) window.Snapshot {
	rng := rand.New(rand.NewPCG(1, 2))
	var snap window.Snapshot
	var all [2]tally.Counts
	var allPair tally.PairCounts
	for s := range 200 {
		seg := fmt.Sprintf("mcc-%03d", s)
		var c [2]tally.Counts
		var p tally.PairCounts
		for v := range 2 {
			n := int64(200 + rng.IntN(2000))
			pos := n / 10
			c[v] = tally.Counts{Predictions: n, Flagged: pos, TP: pos * 9 / 10, FN: pos / 10, FP: pos / 10, TN: n - pos - pos/10}
			c[v].Bins[1], c[v].Bins[9] = n-pos, pos
			all[v].Add(c[v])
		}
		p[tally.ClassPositive] = [tally.Agreements]int64{5, 6, 4, 85}
		p[tally.ClassNegative][tally.Neither] = 900
		for i := range p {
			for j := range p[i] {
				allPair[i][j] += p[i][j]
			}
		}
		for v, name := range []string{"v5", "v6"} {
			snap.Rows = append(snap.Rows, window.Row{Key: tally.Key{Variant: name, SegmentKey: "mcc", Segment: seg}, Counts: c[v]})
		}
		if paired {
			snap.Pairs = append(snap.Pairs, window.PairRow{Key: tally.Key{Variant: "v5", Versus: "v6", SegmentKey: "mcc", Segment: seg}, Counts: p})
		}
	}
	for v, name := range []string{"v5", "v6"} {
		snap.Rows = append(snap.Rows, window.Row{Key: tally.Key{Variant: name}, Counts: all[v]})
	}
	if paired {
		snap.Pairs = append(snap.Pairs, window.PairRow{Key: tally.Key{Variant: "v5", Versus: "v6"}, Counts: allPair})
	}
	return snap
}

// BenchmarkJudge200Segments is the cost of one judgement at scrape time (the
// Prometheus collector and the CloudWatch publisher judge on every scrape or flush).
func BenchmarkJudge200Segments(b *testing.B) {
	for _, paired := range []bool{false, true} {
		name := map[bool]string{false: "unpaired", true: "paired"}[paired]
		snap := benchSnapshot(paired)
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Judge(snap, "v5", "v6", Config{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
