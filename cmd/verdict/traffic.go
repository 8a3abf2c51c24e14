package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// demoCategories are the merchant categories the traffic generator draws from, each
// with its share of transactions and its fraud rate; the benchmarks use them too.
var demoCategories = []struct {
	name      string
	weight    float64
	fraudRate float64
}{
	{"grocery", 0.36, 0.02},
	{"restaurants", 0.20, 0.03},
	{"fuel", 0.15, 0.04},
	{"travel", 0.15, 0.08},
	{"electronics", 0.06, 0.12},
	{"digital_goods", 0.08, 0.15},
}

// demoTraffic is the demo's traffic generator: synthetic card transactions scored by
// production v5 and shadow v6 (v6 regressed on one merchant category if asked),
// whose labels a label process (labelprocess.go) schedules. The demo posts it live
// (demoTraffic.run), dataset writes it on simulated time.
type demoTraffic struct {
	rng     *rand.Rand
	regress string
	labels  labelProcess
	next    int

	mu      sync.Mutex
	pending labelQueue // labels not yet due
	// fates, when set, counts what became of each inference, by truth.
	fates map[fateKey]int
	stats struct{ inferences, labels, corrections, duplicates, badLines, rejected int }
}

// fateKey is a label fate (a label source, fateUnlabeled or fateDeclined) and
// whether the inference was fraud.
type fateKey struct {
	fate  string
	fraud bool
}

func newDemoTraffic(seed uint64, regress string, labels labelProcess) *demoTraffic {
	return &demoTraffic{rng: rand.New(rand.NewPCG(seed, 0x5eed)), regress: regress, labels: labels}
}

func (d *demoTraffic) category() (string, float64) {
	x := d.rng.Float64()
	for _, c := range demoCategories {
		if x < c.weight {
			return c.name, c.fraudRate
		}
		x -= c.weight
	}
	last := demoCategories[len(demoCategories)-1]
	return last.name, last.fraudRate
}

// score draws a model score: fraud scores high, legitimate ones low; a regressed
// model scores fraud in its weak category much lower, so recall there drops.
func (d *demoTraffic) score(fraud, weak bool) float64 {
	mean := 0.18
	if fraud {
		mean = 0.78
		if weak {
			mean = 0.38
		}
	}
	return math.Min(1, math.Max(0, mean+0.14*d.rng.NormFloat64()))
}

// productionThreshold is the production model's decision threshold in the demo's
// traffic (VERDICT_DEFAULT_THRESHOLD's default): v5 flags, and under the realistic
// label process declines, a request scoring at least this.
const productionThreshold = 0.5

func (d *demoTraffic) tick(now time.Time, n int) (preds [][]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for range n {
		d.next++
		id := fmt.Sprintf("demo-%d-%d", now.Unix(), d.next)
		cat, fraudRate := d.category()
		fraud := d.rng.Float64() < fraudRate
		attrs := map[string]string{"merchant_category": cat, "country": []string{"DE", "FR", "US"}[d.rng.IntN(3)]}
		flagged := false // by production v5
		for _, v := range []struct {
			name, role string
			weak       bool
		}{{"v5", "production", false}, {"v6", "shadow", cat == d.regress}} {
			score := d.score(fraud, v.weak)
			if v.name == "v5" {
				flagged = score >= productionThreshold
			}
			line, _ := json.Marshal(map[string]any{
				"inference_id": id, "variant": v.name, "role": v.role, "score": score,
				"time": now.UTC().Format(time.RFC3339Nano), "attributes": attrs, "latency_ms": 8 + d.rng.IntN(20),
			})
			preds = append(preds, line)
		}
		if d.rng.IntN(100) == 0 { // a redelivered prediction
			preds = append(preds, preds[len(preds)-1])
			d.stats.duplicates++
		}
		fate, corrections := d.labels.plan(d.rng, inference{id: id, at: now, fraud: fraud, flagged: flagged}, &d.pending)
		d.stats.corrections += corrections
		if d.fates != nil {
			d.fates[fateKey{fate, fraud}]++
		}
	}
	if d.rng.IntN(20) == 0 {
		preds = append(preds, []byte(`{"inference_id":"broken","variant":"v5","score":1.7,"time":"`+now.UTC().Format(time.RFC3339)+`"}`))
		d.stats.badLines++
	}
	return preds
}

// dueLabels removes and returns the labels known at or before now, in the order
// they became known (ties in the order they were planned).
func (d *demoTraffic) dueLabels(now time.Time) []plannedLabel {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending.popDue(now)
}
