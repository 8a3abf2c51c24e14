package embedded

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
)

// BenchmarkJoin measures the two paths of the join on a store preloaded with
// inferences (production + shadow prediction each), one op per event:
//
//	predict: new inference ids, 2 predictions each, batches of 1000
//	label:   labels for random preloaded ids (each rewrites a record and resolves 2
//	         predictions), batches of 1000
//
// Compare the sub-benchmarks of one run (ratios), not absolute numbers across
// machines: go test -bench Join -benchtime 200000x ./labels/embedded
func BenchmarkJoin(b *testing.B) {
	const preload = 300_000
	for _, cacheMB := range []int64{32, 512} {
		for _, path := range []string{"predict", "label"} {
			b.Run(fmt.Sprintf("%s/cache=%dMiB", path, cacheMB), func(b *testing.B) {
				ctx := context.Background()
				st, err := Open(b.TempDir(), Options{CacheBytes: cacheMB << 20})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				j, err := labels.Open(ctx, st, labels.Config{SegmentKeys: []string{"merchant_category"}}, nil)
				if err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				now := time.Now()
				pred := func(i int, v string) ingest.Prediction {
					return ingest.Prediction{InferenceID: "txn-" + strconv.Itoa(i), Variant: v, Score: rng.Float64(), Threshold: 0.5,
						Time: now, Attributes: map[string]string{"merchant_category": strconv.Itoa(i % 12)}}
				}
				var batch ingest.Batch
				flush := func() {
					if _, err := j.Apply(ctx, batch); err != nil {
						b.Fatal(err)
					}
					batch = ingest.Batch{}
				}
				for i := range preload {
					batch.Predictions = append(batch.Predictions, pred(i, "v5"), pred(i, "v6"))
					if len(batch.Predictions) >= 1000 {
						flush()
					}
				}
				flush()
				b.ResetTimer()
				for n := 0; n < b.N; {
					if path == "predict" {
						batch.Predictions = append(batch.Predictions, pred(preload+n, "v5"), pred(preload+n, "v6"))
						n += 2
					} else {
						batch.Labels = append(batch.Labels, ingest.Label{InferenceID: "txn-" + strconv.Itoa(rng.IntN(preload)),
							Positive: rng.IntN(2) == 0, Time: now.Add(time.Duration(n) * time.Millisecond)})
						n++
					}
					if batch.Len() >= 1000 {
						flush()
					}
				}
				flush()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
