package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/embedded"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

func runBench(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	inferences := fs.Int("inferences", 1_000_000, "inferences in the throughput run (each gets a production and a shadow prediction and one label)")
	batch := fs.Int("batch", 1000, "events per commit in the throughput run")
	pending := fs.Int("pending", 3_000_000, "unlabeled predictions to accumulate in the memory run")
	samples := fs.Int("latency-samples", 300, "labels timed in the label-to-visible run")
	dir := fs.String("dir", "", "directory for the stores (default: a temporary directory, removed after)")
	only := fs.String("only", "throughput,http,latency,memory", "which runs, comma separated")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the runs to this file")
	lgRates := fs.String("loadtest-rates", "1000,2000,5000,10000,15000,20000,30000", "rates (requests/s) of the loadtest run, tried in order until two in a row are not sustained")
	lgFor := fs.Duration("loadtest-duration", 5*time.Second, "length of each rate in the loadtest run")
	scalePoints := fs.String("scale-points", "10000000,100000000", "pending predictions at which the scale run measures, ascending (one store grows through them)")
	scaleLabels := fs.Int("scale-labels", 200000, "labels timed at each point of the scale run")
	scaleCold := fs.Bool("scale-cold", true, "at each scale point, also time labels with the store's files evicted from the page cache")
	scaleJSON := fs.String("scale-json", "", "write the scale run's points to this JSON file (after each point)")
	scaleSVG := fs.String("scale-svg", "", "draw the scale curve to this SVG file (after each point; with --plot, from that JSON)")
	sqlInferences := fs.Int("sql-inferences", 1_000_000, "inferences in the side-by-side run (production + shadow prediction each, labels for half, then 1 % more)")
	pgConn := fs.String("pg", "", "PostgreSQL connection string for the side-by-side run (scripts/bench-sql.sh starts a server and sets it); empty: skip PostgreSQL")
	duckdbCmd := fs.String("duckdb", "", "command that runs SQL from stdin in DuckDB for the side-by-side run (scripts/bench-sql.sh sets it); empty: skip DuckDB")
	dynamoEndpoint := fs.String("dynamo-endpoint", "", "DynamoDB endpoint (kumo: scripts/emulators.sh) for the dynamo run")
	dynamoInferences := fs.Int("dynamo-inferences", 20000, "inferences per batch size in the dynamo run")
	dynamoBatches := fs.String("dynamo-batches", "10,100,1000", "events per commit in the dynamo run, one run each")
	plot := fs.String("plot", "", "only redraw --scale-svg from this scale-run JSON file, measuring nothing")
	cacheList := fs.String("cache-mb", "512", "join store block cache in MiB (as VERDICT_STORE_CACHE_MB); a comma-separated list runs the throughput run once per size, to compare them in one run")
	fs.Usage = func() {
		fmt.Fprint(out, `usage: verdict bench [flags]

Measures the embedded path on this machine and prints Markdown for BENCHMARKS.md:
  throughput  predictions (production + shadow) then labels in random order, applied in
              batches through the real join and pebble store (fsync per commit)
  http        the same events as NDJSON over HTTP (decode + validate + join), 2 clients
  latency     label-to-visible over HTTP: POST one label, poll GET /v1/metrics until the
              count moves, while background traffic runs
  memory      Go heap and RSS as unlabeled (pending) predictions accumulate on disk
  sql         (only with --only; run scripts/bench-sql.sh) the same events through
              verdict, its store's raw write path, PostgreSQL and DuckDB: time to the
              first per-variant/per-segment precision/recall answer and to the answer
              after 1 % more labels; the systems' counts must agree
  dynamo      (only with --only; needs --dynamo-endpoint) capacity units per prediction,
              label and maturity on the DynamoDB store, metered by the documented
              rules, and what they cost per month at the team's traffic
  scale       (only with --only) one store grown to --scale-points pending predictions
              (UUID ids, maturity 30 d): predictions/s, labels/s for random pending
              inferences (page cache warm, and with the store evicted from it), RSS, disk
              bytes per prediction, restart time; --scale-json, --scale-svg
  loadtest    (only with --only) verdict loadtest's generator against a no-op container on
              loopback: the highest rate it sustains and its own latency overhead

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *plot != "" {
		if *scaleSVG == "" {
			return fmt.Errorf("--plot needs --scale-svg")
		}
		return replotScale(*plot, *scaleSVG)
	}
	base := *dir
	if base == "" {
		tmp, err := os.MkdirTemp("", "verdict-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		base = tmp
	}
	runs := strings.Split(*only, ",")
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(out, "## verdict bench (%s, %d CPUs, %s)\n\n", runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
	var caches []int64
	for _, f := range strings.Split(*cacheList, ",") {
		mb, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || mb < 8 {
			return fmt.Errorf("--cache-mb %q: want sizes in MiB, at least 8", f)
		}
		caches = append(caches, mb)
	}
	cacheMB := &caches[len(caches)-1]
	if slices.Contains(runs, "throughput") {
		for _, mb := range caches {
			if err := benchThroughput(ctx, out, fmt.Sprintf("%s/throughput-%d", base, mb), *inferences, *batch, mb); err != nil {
				return err
			}
		}
	}
	if slices.Contains(runs, "http") {
		if err := benchHTTP(ctx, out, base+"/http", *inferences/4, *batch); err != nil {
			return err
		}
	}
	if slices.Contains(runs, "latency") {
		if err := benchLatency(ctx, out, base+"/latency", *samples); err != nil {
			return err
		}
	}
	if slices.Contains(runs, "loadtest") {
		var rates []float64
		for _, f := range strings.Split(*lgRates, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || r <= 0 {
				return fmt.Errorf("--loadtest-rates %q: want requests per second", f)
			}
			rates = append(rates, r)
		}
		if err := benchLoadtest(ctx, out, rates, *lgFor); err != nil {
			return err
		}
	}
	if slices.Contains(runs, "sql") {
		if err := benchSQL(ctx, out, base+"/sql", *sqlInferences, *batch, *pgConn, *duckdbCmd); err != nil {
			return err
		}
	}
	if slices.Contains(runs, "dynamo") {
		if *dynamoEndpoint == "" {
			return fmt.Errorf("the dynamo run needs --dynamo-endpoint (start kumo with scripts/emulators.sh)")
		}
		var batches []int
		for _, f := range strings.Split(*dynamoBatches, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return fmt.Errorf("--dynamo-batches %q: want events per commit", *dynamoBatches)
			}
			batches = append(batches, n)
		}
		if err := benchDynamo(ctx, out, *dynamoEndpoint, *dynamoInferences, batches); err != nil {
			return err
		}
	}
	if slices.Contains(runs, "scale") {
		var points []int64
		for _, f := range strings.Split(*scalePoints, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil || n < 2 || (len(points) > 0 && n <= points[len(points)-1]) {
				return fmt.Errorf("--scale-points %q: want ascending counts of predictions", *scalePoints)
			}
			points = append(points, n)
		}
		if err := benchScale(ctx, out, base+"/scale", points, *scaleLabels, *batch, *cacheMB, *scaleCold, *scaleJSON, *scaleSVG); err != nil {
			return err
		}
	}
	if slices.Contains(runs, "memory") {
		if err := benchMemory(ctx, out, base+"/memory", *pending, *batch, *cacheMB); err != nil {
			return err
		}
	}
	return nil
}

func benchPrediction(i int, variant string, rng *rand.Rand, at time.Time) ingest.Prediction {
	role := ingest.RoleProduction
	if variant == "v6" {
		role = ingest.RoleShadow
	}
	return ingest.Prediction{
		InferenceID: "txn-" + strconv.Itoa(i), Variant: variant, Role: role, Score: rng.Float64(), Threshold: 0.5,
		Time: at, Attributes: map[string]string{"merchant_category": demoCategories[i%len(demoCategories)].name},
	}
}

// openBenchJoin opens a fresh embedded store in dir with the benchmarks' join
// (merchant_category segments unless jc says otherwise) and windows (5-minute
// buckets, 7 days).
func openBenchJoin(ctx context.Context, dir string, o embedded.Options, jc labels.Config) (*joined, error) {
	if jc.SegmentKeys == nil {
		jc.SegmentKeys = []string{"merchant_category"}
	}
	return openJoin(ctx, joinSpec{dir: dir, embedded: o, join: jc, windows: window.New(5*time.Minute, 7*24*time.Hour)})
}

// progress prints a carriage-return progress line to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "\r"+format+"   ", args...)
}

func benchThroughput(ctx context.Context, out io.Writer, dir string, n, batch int, cacheMB int64) error {
	jn, err := openBenchJoin(ctx, dir, embedded.Options{CacheBytes: cacheMB << 20}, labels.Config{})
	if err != nil {
		return err
	}
	defer jn.close()
	j, w := jn.join, jn.windows
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	// feed times add(b, k) for k in [0, n), applying b to the join each time it holds
	// batch events and once more at the end.
	feed := func(add func(b *ingest.Batch, k int), progressFormat string) (time.Duration, error) {
		start := time.Now()
		var b ingest.Batch
		for k := range n {
			add(&b, k)
			if b.Len() >= batch {
				if _, err := j.Apply(ctx, b); err != nil {
					return 0, err
				}
				b.Predictions, b.Labels = b.Predictions[:0], b.Labels[:0]
				if k%50000 == 0 {
					progress(progressFormat, k, n)
				}
			}
		}
		_, err := j.Apply(ctx, b)
		return time.Since(start), err
	}
	predDur, err := feed(func(b *ingest.Batch, i int) {
		b.Predictions = append(b.Predictions, benchPrediction(i, "v5", rng, now), benchPrediction(i, "v6", rng, now))
	}, "throughput: %d/%d inferences predicted")
	if err != nil {
		return err
	}
	order := rng.Perm(n)
	labelDur, err := feed(func(b *ingest.Batch, k int) {
		b.Labels = append(b.Labels, ingest.Label{InferenceID: "txn-" + strconv.Itoa(order[k]), Positive: rng.IntN(20) == 0, Time: now.Add(time.Hour)})
	}, "throughput: %d/%d labels")
	if err != nil {
		return err
	}
	fmt.Fprint(os.Stderr, "\r\033[K")
	row, _ := w.Snapshot(window.AllTime).Row(tally.Key{Variant: "v5"})
	if row.Counts.Resolved() != int64(n) {
		return fmt.Errorf("bench: %d resolved after labeling %d inferences", row.Counts.Resolved(), n)
	}
	preds, lbls := 2*n, n
	fmt.Fprintf(out, "### Throughput: embedded join store (fsync per commit, batches of %d, %d MiB block cache)\n\n", batch, cacheMB)
	fmt.Fprintln(out, "| phase | events | seconds | events/s |")
	fmt.Fprintln(out, "|---|---:|---:|---:|")
	fmt.Fprintf(out, "| predictions (v5 + shadow v6, new ids) | %d | %.2f | %.0f |\n", preds, predDur.Seconds(), float64(preds)/predDur.Seconds())
	fmt.Fprintf(out, "| labels (random order, each resolves 2 predictions) | %d | %.2f | %.0f |\n", lbls, labelDur.Seconds(), float64(lbls)/labelDur.Seconds())
	total := predDur + labelDur
	fmt.Fprintf(out, "| **mixed: all prediction + label events** | %d | %.2f | **%.0f** |\n\n", preds+lbls, total.Seconds(), float64(preds+lbls)/total.Seconds())
	return nil
}

func benchLatency(ctx context.Context, out io.Writer, dir string, samples int) error {
	base, _, stop, err := startBenchServer(ctx, dir)
	if err != nil {
		return err
	}
	defer stop()
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(path string, lines []string) error {
		return benchPost(client, base, path, strings.NewReader(strings.Join(lines, "\n")))
	}
	tp := func() (int64, error) {
		resp, err := client.Get(base + "/v1/metrics?window=all&variant=v5")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var r struct{ Variants []struct{ TP int64 } }
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return 0, err
		}
		if len(r.Variants) == 0 {
			return 0, nil
		}
		return r.Variants[0].TP, nil
	}
	now := time.Now().UTC()
	predLine := func(id, variant string, score float64) string {
		b, _ := json.Marshal(map[string]any{"inference_id": id, "variant": variant, "score": score, "time": now.Format(time.RFC3339Nano), "attributes": map[string]string{"merchant_category": "travel"}})
		return string(b)
	}
	// The inferences whose labels are timed, predicted up front.
	var lines []string
	for i := range samples {
		lines = append(lines, predLine(fmt.Sprintf("timed-%d", i), "v5", 0.99))
	}
	if err := post("/v1/predictions", lines); err != nil {
		return err
	}
	// Background traffic: ~4,000 events/s of other predictions and labels.
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for k := 0; bg.Err() == nil; k++ {
			<-t.C
			var ps, ls []string
			for i := range 20 {
				id := fmt.Sprintf("bg-%d-%d", k, i)
				ps = append(ps, predLine(id, "v5", 0.2), predLine(id, "v6", 0.3))
				ls = append(ls, fmt.Sprintf(`{"inference_id":"bg-%d-%d","label":false,"time":%q}`, k, i, now.Format(time.RFC3339Nano)))
			}
			post("/v1/predictions", ps)
			post("/v1/labels", ls)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	var lat []time.Duration
	for i := range samples {
		before, err := tp()
		if err != nil {
			return err
		}
		start := time.Now()
		if err := post("/v1/labels", []string{fmt.Sprintf(`{"inference_id":"timed-%d","label":true,"time":%q}`, i, now.Format(time.RFC3339Nano))}); err != nil {
			return err
		}
		for {
			n, err := tp()
			if err != nil {
				return err
			}
			if n > before {
				break
			}
			if time.Since(start) > 5*time.Second {
				return fmt.Errorf("label timed-%d not visible after 5s", i)
			}
		}
		lat = append(lat, time.Since(start))
		if i%50 == 0 {
			progress("latency: %d/%d labels timed", i, samples)
		}
	}
	fmt.Fprint(os.Stderr, "\r\033[K")
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Fprintf(out, "### Label-to-visible latency over HTTP (%d labels, background ~4,000 events/s)\n\n", samples)
	fmt.Fprintln(out, "From sending `POST /v1/labels` to `GET /v1/metrics` showing the new TP (fsync per commit).")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| p50 | p90 | p99 | max |")
	fmt.Fprintln(out, "|---:|---:|---:|---:|")
	fmt.Fprintf(out, "| %s | %s | %s | %s |\n\n", ms(q(0.5)), ms(q(0.9)), ms(q(0.99)), ms(lat[len(lat)-1]))
	return nil
}

// benchPost posts an NDJSON body to the service at base and wants 200 OK.
func benchPost(client *http.Client, base, path string, body io.Reader) error {
	resp, err := client.Post(base+path, "application/x-ndjson", body)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", path, resp.Status)
	}
	return nil
}

// startBenchServer runs the real service on a loopback port until the returned stop
// function is called; it returns the base URL and the service's join.
func startBenchServer(ctx context.Context, dir string) (string, *labels.Join, func(), error) {
	cfg, err := loadConfig()
	if err != nil {
		return "", nil, nil, err
	}
	cfg.DataDir = dir
	cfg.Addr = "127.0.0.1:0"
	cfg.SegmentKeys = []string{"merchant_category"}
	svc, err := openService(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return "", nil, nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		svc.close()
		return "", nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.run(ctx, ln) }()
	return "http://" + ln.Addr().String(), svc.join, func() { cancel(); <-done }, nil
}

// benchHTTP measures ingest over HTTP against the store's own rate on the same
// events: the NDJSON bodies are built first, then (1) decoded alone, (2) applied,
// decoded, straight to the join of one fresh service, as 2 writers (the store's
// raw rate, the ceiling), (3) posted to another fresh service by 2 clients. Labels
// are in id order.
func benchHTTP(ctx context.Context, out io.Writer, dir string, n, batch int) error {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	cats := len(demoCategories)
	body := func(lo, hi int, labels bool) []byte {
		var b bytes.Buffer
		for i := lo; i < hi; i++ {
			if labels {
				fmt.Fprintf(&b, `{"inference_id":"h%d","label":%t,"time":%q}`+"\n", i, i%20 == 0, now)
				continue
			}
			for _, v := range []string{"v5", "v6"} {
				fmt.Fprintf(&b, `{"inference_id":"h%d","variant":%q,"score":%.3f,"time":%q,"attributes":{"merchant_category":%q}}`+"\n",
					i, v, float64(i%1000)/1000, now, demoCategories[i%cats].name)
			}
		}
		return b.Bytes()
	}
	per := max(batch/2, 1) // inferences per prediction body: batch lines
	type phaseBodies struct {
		path   string
		bodies [2][][]byte       // per client
		events [2][]ingest.Batch // the same, decoded
		count  int
		bytes  int
	}
	dec, err := ingest.NewDecoder(ingest.DecoderConfig{})
	if err != nil {
		return err
	}
	build := func(path string, labels bool) (*phaseBodies, error) {
		ph := &phaseBodies{path: path}
		for w := range 2 {
			for lo := w * per; lo < n; lo += 2 * per {
				b := body(lo, min(lo+per, n), labels)
				var batch ingest.Batch
				var err error
				if labels {
					err = dec.DecodeLabels(bytes.NewReader(b), 0, func(d ingest.Decoded[ingest.Label]) error {
						batch.Labels = append(batch.Labels, d.Events...)
						return nil
					})
				} else {
					err = dec.DecodePredictions(bytes.NewReader(b), 0, func(d ingest.Decoded[ingest.Prediction]) error {
						batch.Predictions = append(batch.Predictions, d.Events...)
						return nil
					})
				}
				if err != nil {
					return nil, err
				}
				ph.bodies[w] = append(ph.bodies[w], b)
				ph.events[w] = append(ph.events[w], batch)
				ph.count += batch.Len()
				ph.bytes += len(b)
			}
		}
		return ph, nil
	}
	preds, err := build("/v1/predictions", false)
	if err != nil {
		return err
	}
	lbls, err := build("/v1/labels", true)
	if err != nil {
		return err
	}
	// (1) Decoding alone, one goroutine.
	decodeRate := func(ph *phaseBodies) (float64, error) {
		start := time.Now()
		for w := range 2 {
			for _, b := range ph.bodies[w] {
				var err error
				if ph == lbls {
					err = dec.DecodeLabels(bytes.NewReader(b), 0, func(ingest.Decoded[ingest.Label]) error { return nil })
				} else {
					err = dec.DecodePredictions(bytes.NewReader(b), 0, func(ingest.Decoded[ingest.Prediction]) error { return nil })
				}
				if err != nil {
					return 0, err
				}
			}
		}
		return float64(ph.count) / time.Since(start).Seconds(), nil
	}
	// (2) The store's raw rate: the decoded events straight into a fresh service's join.
	_, join, stop, err := startBenchServer(ctx, dir+"/direct")
	if err != nil {
		return err
	}
	direct := func(ph *phaseBodies) (float64, error) {
		start := time.Now()
		var g errgroup.Group
		for w := range 2 {
			g.Go(func() error {
				for _, b := range ph.events[w] {
					if _, err := join.Apply(ctx, b); err != nil {
						return err
					}
				}
				return nil
			})
		}
		err := g.Wait()
		return float64(ph.count) / time.Since(start).Seconds(), err
	}
	var rDirect, rHTTP, rDecode [2]float64
	var cDirect, cHTTP, cDecode [2]time.Duration // process CPU time (user + system)
	for k, ph := range []*phaseBodies{preds, lbls} {
		c := cpuTime()
		if rDirect[k], err = direct(ph); err != nil {
			stop()
			return err
		}
		cDirect[k] = cpuTime() - c
	}
	stop()
	// (3) Over HTTP into another fresh service.
	base, _, stop, err := startBenchServer(ctx, dir+"/http")
	if err != nil {
		return err
	}
	defer stop()
	client := &http.Client{Timeout: time.Minute}
	post := func(path string, b []byte) error {
		return benchPost(client, base, path, bytes.NewReader(b))
	}
	overHTTP := func(ph *phaseBodies) (float64, error) {
		start := time.Now()
		var g errgroup.Group
		for w := range 2 {
			g.Go(func() error {
				for _, b := range ph.bodies[w] {
					if err := post(ph.path, b); err != nil {
						return err
					}
				}
				return nil
			})
		}
		err := g.Wait()
		return float64(ph.count) / time.Since(start).Seconds(), err
	}
	for k, ph := range []*phaseBodies{preds, lbls} {
		c := cpuTime()
		if rHTTP[k], err = overHTTP(ph); err != nil {
			return err
		}
		cHTTP[k] = cpuTime() - c
		c = cpuTime()
		if rDecode[k], err = decodeRate(ph); err != nil {
			return err
		}
		cDecode[k] = cpuTime() - c
	}
	fmt.Fprintf(out, "### Throughput over HTTP against the store's own rate, same events (2 writers / 2 clients, bodies of ~%d lines, load average %.1f)\n\n", batch, loadAverage())
	fmt.Fprintln(out, "Wall-clock rates, and this process's CPU time (user + system) per event, which other processes' load disturbs less; HTTP's CPU includes the in-process client.")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| phase | events | decode only (1 goroutine) events/s | store raw (decoded events to the join) events/s | over HTTP events/s | HTTP / store raw | CPU µs/event: decode, store raw, HTTP | HTTP CPU / store raw CPU |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|")
	us := func(c time.Duration, n int) float64 { return float64(c.Microseconds()) / float64(n) }
	for k, ph := range []*phaseBodies{preds, lbls} {
		name := "predictions (v5 + shadow v6)"
		if k == 1 {
			name = "labels (in id order)"
		}
		fmt.Fprintf(out, "| %s | %d | %.0f | %.0f | %.0f | **%.2f** | %.1f, %.1f, %.1f | **%.2f** |\n", name, ph.count, rDecode[k], rDirect[k], rHTTP[k], rHTTP[k]/rDirect[k],
			us(cDecode[k], ph.count), us(cDirect[k], ph.count), us(cHTTP[k], ph.count), float64(cHTTP[k])/float64(cDirect[k]))
	}
	mixed := func(r [2]float64) float64 {
		return float64(preds.count+lbls.count) / (float64(preds.count)/r[0] + float64(lbls.count)/r[1])
	}
	all := preds.count + lbls.count
	fmt.Fprintf(out, "| **mixed** | %d | %.0f | %.0f | %.0f | **%.2f** | %.1f, %.1f, %.1f | **%.2f** |\n\n", all, mixed(rDecode), mixed(rDirect), mixed(rHTTP), mixed(rHTTP)/mixed(rDirect),
		us(cDecode[0]+cDecode[1], all), us(cDirect[0]+cDirect[1], all), us(cHTTP[0]+cHTTP[1], all), float64(cHTTP[0]+cHTTP[1])/float64(cDirect[0]+cDirect[1]))
	return nil
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func benchMemory(ctx context.Context, out io.Writer, dir string, pending, batch int, cacheMB int64) error {
	jn, err := openBenchJoin(ctx, dir, embedded.Options{NoSync: true, CacheBytes: cacheMB << 20}, labels.Config{})
	if err != nil {
		return err
	}
	defer jn.close()
	j := jn.join
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Now()
	fmt.Fprintf(out, "### Memory as pending (unlabeled) predictions accumulate\n\n")
	fmt.Fprintln(out, "Go heap in use after a GC, and the process's resident set; the store's block cache is as --cache-mb and its memtable up to 64 MiB, both bounded.")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| pending predictions | Go heap in use | RSS | store on disk |")
	fmt.Fprintln(out, "|---:|---:|---:|---:|")
	step := max(pending/6, batch)
	var b ingest.Batch
	for i := 0; i < pending; {
		for k := 0; k < batch && i < pending; k++ {
			b.Predictions = append(b.Predictions, benchPrediction(i, "v5", rng, now))
			i++
		}
		if _, err := j.Apply(ctx, b); err != nil {
			return err
		}
		b.Predictions = b.Predictions[:0]
		if i%step == 0 || i == pending {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Fprintf(out, "| %d | %s | %s | %s |\n", i, mib(int64(m.HeapInuse)), mib(rss()), mib(treeSize(dir)))
			progress("memory: %d/%d pending", i, pending)
		}
	}
	fmt.Fprint(os.Stderr, "\r\033[K")
	fmt.Fprintln(out)
	return nil
}

func mib(b int64) string {
	if b < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// rss reads the resident set size from /proc (Linux); -1 elsewhere.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if f := strings.Fields(string(line)); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}
