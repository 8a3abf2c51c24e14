package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/embedded"
)

// ScalePoint is one point of the scale curve: the store holding Pending unlabeled
// predictions, and what each path costs there.
type ScalePoint struct {
	Pending int64 `json:"pending_predictions"`
	// PredictionsPerSec is the insert rate over the growth to this point (from the
	// previous one); LastPredictionsPerSec over its last tenth.
	PredictionsPerSec     float64 `json:"predictions_per_sec"`
	LastPredictionsPerSec float64 `json:"last_predictions_per_sec"`
	// LabelsPerSec: labels for random pending inferences (each resolves the
	// production and the shadow prediction), page cache as the OS keeps it.
	LabelsPerSec float64 `json:"labels_per_sec"`
	// ColdLabelsPerSec: the same with the store's files evicted from the page cache
	// before and during the run (every read that misses the block cache goes to the
	// device), as when the store is far larger than the machine's memory. 0: not run.
	ColdLabelsPerSec float64 `json:"cold_labels_per_sec,omitempty"`
	Labels           int     `json:"labels"`
	RSSBytes         int64   `json:"rss_bytes"`
	HeapBytes        int64   `json:"heap_bytes"`
	DiskBytes        int64   `json:"disk_bytes"`
	BytesPerPred     float64 `json:"disk_bytes_per_prediction"`
	// RestartSeconds: close, then open the store and restore the tallies into the
	// windows (what `serve` does before it answers).
	RestartSeconds float64 `json:"restart_seconds"`
	// FirstLabelsPerSec: the first batches of labels after the restart (cold block
	// cache).
	FirstLabelsPerSec float64 `json:"first_labels_per_sec"`
	Load1             float64 `json:"load_average_1m"`
	Elapsed           float64 `json:"elapsed_seconds"`
}

// ScaleRun is the JSON the scale run writes (and `verdict bench plot` reads).
type ScaleRun struct {
	Date    string       `json:"date"`
	CPUs    int          `json:"cpus"`
	CacheMB int64        `json:"cache_mb"`
	Batch   int          `json:"batch"`
	Rate    float64      `json:"simulated_inferences_per_sec"`
	Points  []ScalePoint `json:"points"`
}

// scaleID is inference i's id: a UUID-shaped string (SageMaker's inference ids are
// UUIDs), deterministic so labels can name it, random so inserts land all over the
// keyspace as real ids do.
func scaleID(i int) string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], splitmix(uint64(i)))
	binary.LittleEndian.PutUint64(b[8:], splitmix(uint64(i)^0x9e3779b97f4a7c15))
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// benchScale grows one store through the points (pending predictions, production +
// shadow per inference) and measures each path there. Inferences arrive at rate per
// second of prediction time, ending now, with maturity at 30 days (so the maturity
// index is written as in production) and nothing due.
func benchScale(ctx context.Context, out io.Writer, dir string, points []int64, nLabels, batch int, cacheMB int64, cold bool, jsonPath, svgPath string) error {
	const rate = 800.0
	run := ScaleRun{Date: time.Now().UTC().Format("2006-01-02"), CPUs: runtime.NumCPU(), CacheMB: cacheMB, Batch: batch, Rate: rate}
	last := points[len(points)-1]
	now := time.Now()
	t0 := now.Add(-time.Duration(float64(last/2) / rate * float64(time.Second)))
	open := func() (*joined, *labels.Join, error) {
		jn, err := openBenchJoin(ctx, dir, embedded.Options{CacheBytes: cacheMB << 20}, labels.Config{Maturity: 30 * 24 * time.Hour})
		if err != nil {
			return nil, nil, err
		}
		return jn, jn.join, nil
	}
	jn, j, err := open()
	if err != nil {
		return err
	}
	defer func() { jn.close() }()
	rng := rand.New(rand.NewPCG(5, 6))
	pred := func(i int, variant string) ingest.Prediction {
		p := benchPrediction(i, variant, rng, t0.Add(time.Duration(float64(i)/rate*float64(time.Second))))
		p.InferenceID = scaleID(i)
		return p
	}
	var b ingest.Batch
	apply := func() error {
		if b.Len() == 0 {
			return nil
		}
		_, err := j.Apply(ctx, b)
		b.Predictions, b.Labels = b.Predictions[:0], b.Labels[:0]
		return err
	}
	// labelRun applies n labels for random inferences below inferences, in random
	// order, and returns labels/s. Labeled inferences are remembered so each label
	// resolves pending predictions (a dispute for a pending transaction).
	labeled := map[int]bool{}
	labelRun := func(inferences, n int, what string) (float64, error) {
		start := time.Now()
		for k := 0; k < n; k++ {
			i := rng.IntN(inferences)
			for labeled[i] {
				i = rng.IntN(inferences)
			}
			labeled[i] = true
			b.Labels = append(b.Labels, ingest.Label{InferenceID: scaleID(i), Positive: rng.IntN(20) == 0, Time: now})
			if len(b.Labels) >= batch {
				if err := apply(); err != nil {
					return 0, err
				}
				if k%(20*batch) == 0 {
					progress("scale: %s: %d/%d labels", what, k, n)
				}
			}
		}
		if err := apply(); err != nil {
			return 0, err
		}
		return float64(n) / time.Since(start).Seconds(), nil
	}
	begin := time.Now()
	done := 0 // inferences predicted
	for _, point := range points {
		target := int(point / 2)
		start := time.Now()
		tenth := done + (target-done)*9/10
		var tenthStart time.Time
		for i := done; i < target; i++ {
			if i == tenth {
				tenthStart = time.Now()
			}
			b.Predictions = append(b.Predictions, pred(i, "v5"), pred(i, "v6"))
			if len(b.Predictions) >= batch {
				if err := apply(); err != nil {
					return err
				}
				if i%(50*batch) == 0 {
					progress("scale: %d/%d predictions", 2*i, last)
				}
			}
		}
		if err := apply(); err != nil {
			return err
		}
		p := ScalePoint{Pending: int64(target) * 2, Labels: nLabels}
		p.PredictionsPerSec = float64(2*(target-done)) / time.Since(start).Seconds()
		p.LastPredictionsPerSec = float64(2*(target-tenth)) / time.Since(tenthStart).Seconds()
		done = target
		if p.LabelsPerSec, err = labelRun(target, nLabels, "warm"); err != nil {
			return err
		}
		if cold {
			stop := evictLoop(dir)
			p.ColdLabelsPerSec, err = labelRun(target, nLabels, "cold")
			stop()
			if err != nil {
				return err
			}
		}
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		p.RSSBytes, p.HeapBytes = rss(), int64(m.HeapInuse)
		p.DiskBytes = treeSize(dir)
		p.BytesPerPred = float64(p.DiskBytes) / float64(p.Pending)
		// Restart: what serve does before it answers.
		if err := jn.close(); err != nil {
			return err
		}
		rs := time.Now()
		if jn, j, err = open(); err != nil {
			return err
		}
		p.RestartSeconds = time.Since(rs).Seconds()
		if p.FirstLabelsPerSec, err = labelRun(target, 10*batch, "after restart"); err != nil {
			return err
		}
		p.Load1 = loadAverage()
		p.Elapsed = time.Since(begin).Seconds()
		fmt.Fprint(os.Stderr, "\r\033[K")
		run.Points = append(run.Points, p)
		if jsonPath != "" {
			if err := writeJSON(jsonPath, run); err != nil {
				return err
			}
		}
		if svgPath != "" {
			if err := writeScaleSVG(svgPath, run); err != nil {
				return err
			}
		}
	}
	writeScaleTable(out, run, cold)
	return nil
}

func writeScaleTable(out io.Writer, run ScaleRun, cold bool) {
	fmt.Fprintf(out, "### Scale curve: embedded store (fsync per commit, batches of %d, %d MiB block cache, UUID ids, maturity 30 d)\n\n", run.Batch, run.CacheMB)
	head := "| pending predictions | predictions/s (growth) | predictions/s (last tenth) | labels/s |"
	sep := "|---:|---:|---:|---:|"
	if cold {
		head += " labels/s, page cache evicted |"
		sep += "---:|"
	}
	fmt.Fprintln(out, head+" RSS | Go heap | disk | bytes/prediction | restart | labels/s after restart | load avg |")
	fmt.Fprintln(out, sep+"---:|---:|---:|---:|---:|---:|---:|")
	for _, p := range run.Points {
		row := fmt.Sprintf("| %s | %.0f | %.0f | %.0f |", count(p.Pending), p.PredictionsPerSec, p.LastPredictionsPerSec, p.LabelsPerSec)
		if cold {
			row += fmt.Sprintf(" %.0f |", p.ColdLabelsPerSec)
		}
		fmt.Fprintf(out, "%s %s | %s | %s | %.1f | %.2f s | %.0f | %.1f |\n", row, mib(p.RSSBytes), mib(p.HeapBytes),
			gib(p.DiskBytes), p.BytesPerPred, p.RestartSeconds, p.FirstLabelsPerSec, p.Load1)
	}
	fmt.Fprintln(out)
}

func count(n int64) string {
	switch {
	case n >= 1e9 && n%1e8 == 0:
		return fmt.Sprintf("%.1f × 10⁹", float64(n)/1e9)
	case n >= 1e6 && n%1e6 == 0:
		return fmt.Sprintf("%d M", n/1e6)
	}
	return fmt.Sprint(n)
}

func gib(b int64) string { return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30)) }

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// treeSize is the bytes of the regular files under dir.
func treeSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// evictLoop drops the store's files from the OS page cache now and every 100 ms
// until stop is called: reads that miss the block cache then go to the device. Only
// this store's own files are touched (POSIX_FADV_DONTNEED), not the machine's cache.
func evictLoop(dir string) (stop func()) {
	evict := func() {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() || !strings.HasSuffix(path, ".sst") {
				return nil
			}
			if f, err := os.Open(path); err == nil {
				_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
				f.Close()
			}
			return nil
		})
	}
	evict()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				evict()
			}
		}
	}()
	return func() { close(quit); <-done }
}

// loadAverage is the 1-minute load average (Linux); 0 elsewhere.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}
