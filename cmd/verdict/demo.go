package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/verdictml/verdict/api"
)

func runDemo(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(out)
	rate := fs.Int("rate", 200, "inferences per second (each is predicted by v5 and by shadow v6)")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	delay := fs.Duration("label-delay", 5*time.Second, "mean delay before a label arrives (compressed dispute time)")
	regress := fs.String("regress", "electronics", "merchant category on which shadow v6 loses recall (empty: no regression)")
	every := fs.Duration("report-every", 5*time.Second, "how often to print the comparison table")
	seed := fs.Uint64("seed", 1, "random seed of the synthetic traffic")
	dataDir := fs.String("data-dir", "", "join store directory (default: a fresh temporary directory, removed on exit)")
	fs.Usage = func() {
		fmt.Fprint(out, `usage: verdict demo [flags]

Starts the same service as 'verdict serve' and drives it over HTTP with synthetic
fraud-scoring traffic: production model v5 and shadow model v6 score every request,
labels (fraud disputes) arrive after a delay, a few are corrected, a few lines are
malformed, and v6 regresses on one merchant category. Every few seconds it prints
the per-variant and per-segment comparison, the same numbers /v1/metrics and
/metrics serve, and the judge's decision over the comparison period since v6's first
prediction, as a rollout gate would ask it (docs/decisions.md). The dashboard at
http://<VERDICT_ADDR>/ shows the same, with the demo's rollback alarms evaluated
locally (one-minute periods; VERDICT_ALARM_SPEC replaces them). Other VERDICT_*
settings apply as for serve.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate < 1 || *rate > 100000 {
		return fmt.Errorf("--rate %d: want 1..100000", *rate)
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	// The demo's own defaults, unless the environment says otherwise.
	if len(cfg.SegmentKeys) == 0 {
		cfg.SegmentKeys = []string{"merchant_category"}
	}
	if cfg.Baseline == "" {
		cfg.Baseline = "v5"
	}
	if len(cfg.Candidates) == 0 {
		cfg.Candidates = []string{"v6"}
	}
	if _, set := os.LookupEnv("VERDICT_JUDGE_LABELS_MISSING_AT_RANDOM"); !set {
		// The demo labels every transaction, declined or not.
		cfg.JudgeMAR = true
	}
	if len(cfg.Roles) == 0 {
		cfg.Roles = map[string]string{"v5": "production", "v6": "shadow"}
	}
	if _, set := os.LookupEnv("VERDICT_MATURITY"); !set {
		// Compressed time, like the label delay: one in ten inferences is never
		// labeled and resolves as negative at maturity. Until then precision is not
		// estimable (VERDICT_ESTIMABLE_COVERAGE) and the table shows its bounds.
		cfg.Maturity = 30 * time.Second
	}
	cfg.MatureEvery = time.Second
	if _, set := os.LookupEnv("VERDICT_BUCKET"); !set {
		// Compressed time: minute steps on the dashboard's charts.
		cfg.Bucket = time.Minute
	}
	if _, set := os.LookupEnv("VERDICT_CLOUDWATCH_INTERVAL"); !set {
		cfg.CWInterval = 5 * time.Second
	}
	if *dataDir == "" {
		tmp, err := os.MkdirTemp("", "verdict-demo-")
		if err != nil {
			return fmt.Errorf("create demo data directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		*dataDir = tmp
	}
	cfg.DataDir = *dataDir
	if _, set := os.LookupEnv("VERDICT_ALARM_SPEC"); !set {
		// The dashboard shows the demo's rollback alarms, evaluated locally.
		path := filepath.Join(cfg.DataDir, "demo-alarms.yaml")
		if err := os.WriteFile(path, []byte(demoAlarmSpec), 0o644); err != nil {
			return fmt.Errorf("write the demo's alarm spec: %w", err)
		}
		cfg.AlarmSpec = path
	}
	log := cfg.logger(os.Stderr)
	svc, err := openService(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		svc.close()
		return fmt.Errorf("listen on %s (VERDICT_ADDR; set another address if it is taken): %w", cfg.Addr, err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "verdict demo: serving on %s (data in %s)\n", base, cfg.DataDir)
	fmt.Fprintf(out, "  dashboard: %s/\n", base)
	fmt.Fprintf(out, "  try: curl -s '%s/v1/metrics?window=1h&by=segment'   or   curl -s %s/metrics | grep verdict_recall\n", base, base)
	fmt.Fprintf(out, "  traffic: %d inferences/s scored by v5 (production) and v6 (shadow); labels after ~%s, unlabeled ones mature after %s; v6 regresses on %q\n\n", *rate, *delay, cfg.Maturity, *regress)

	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.run(gctx, ln) })
	client := &demoClient{base: base, token: cfg.APIToken, http: &http.Client{Timeout: 10 * time.Second}}
	traffic := newDemoTraffic(*seed, *regress, fastLabels{delay: *delay})
	g.Go(func() error {
		err := traffic.run(gctx, client, *rate)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil
		}
		return err
	})
	g.Go(func() error {
		t := time.NewTicker(*every)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
			if err := printDemoReport(gctx, out, client, traffic); err != nil && gctx.Err() == nil {
				fmt.Fprintf(out, "report: %v\n", err)
			}
		}
	})
	err = g.Wait()
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	return err
}

// demoAlarmSpec is the demo's rollback alarm set (docs/alarms.md), in compressed
// time like its labels: one-minute periods, 2 of 3 breaching to alarm.
const demoAlarmSpec = `# verdict demo: rollback alarms for shadow v6 against production v5
name: demo-v6
endpoint: fraud-detector
candidate:
  variant: v6
baseline:
  variant: v5
evaluation:
  period: 1m
  evaluation_periods: 3
  datapoints_to_alarm: 2
min_n: 50
thresholds:
  precision_floor: 0.5
  recall_floor: 0.6
  max_precision_drop: 0.15
  max_recall_drop: 0.05
  max_segment_regressions: 0
`

// run posts the traffic to the demo's server, rate inferences per second, and each
// label once it is due, until ctx ends.
func (d *demoTraffic) run(ctx context.Context, c *demoClient, rate int) error {
	const ticks = 10 // per second
	t := time.NewTicker(time.Second / ticks)
	defer t.Stop()
	carry := 0.0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-t.C:
			carry += float64(rate) / ticks
			n := int(carry)
			carry -= float64(n)
			if preds := d.tick(now, n); len(preds) > 0 {
				rejected, err := c.post(ctx, "/v1/predictions", preds)
				if err != nil {
					return err
				}
				d.mu.Lock()
				d.stats.rejected += rejected
				d.stats.inferences += n // counted once sent, so reports match the server
				d.mu.Unlock()
			}
			if due := d.dueLabels(now); len(due) > 0 {
				lbls := make([][]byte, len(due))
				for i, l := range due {
					lbls[i] = l.line()
				}
				if _, err := c.post(ctx, "/v1/labels", lbls); err != nil {
					return err
				}
				d.mu.Lock()
				d.stats.labels += len(lbls)
				d.mu.Unlock()
			}
		}
	}
}

type demoClient struct {
	base, token string
	http        *http.Client
}

// post sends NDJSON lines and returns how many the server rejected; a 400 with
// rejected lines is expected (the demo sends a few bad ones on purpose).
func (c *demoClient) post(ctx context.Context, path string, lines [][]byte) (int, error) {
	body := bytes.Join(lines, []byte("\n"))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	var r struct {
		Rejected []json.RawMessage `json:"rejected"`
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("POST %s: decode response: %w", path, err)
	}
	return len(r.Rejected), nil
}

func (c *demoClient) metrics(ctx context.Context, window string) (api.MetricsResponse, error) {
	var r api.MetricsResponse
	err := c.getJSON(ctx, "/v1/metrics?by=segment&segment_key=merchant_category&window="+window, &r)
	return r, err
}

func printDemoReport(ctx context.Context, out io.Writer, c *demoClient, d *demoTraffic) error {
	r, err := c.metrics(ctx, "1h")
	if err != nil {
		return err
	}
	d.mu.Lock()
	st := d.stats
	d.mu.Unlock()
	fmt.Fprintf(out, "%s  window 1h  inferences %d, labels sent %d (corrections %d), duplicates %d, bad lines rejected %d, labels waiting %s\n",
		time.Now().Format("15:04:05"), st.inferences, st.labels, st.corrections, st.duplicates, st.rejected, fmtInt(r.LabelsUnmatched))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tsegment\tpredictions\tresolved\tflag rate\tprecision\trecall\trecall 95% CI\t")
	marked := false
	row := func(s api.Series, seg string) {
		ci := "-"
		if s.RecallCI != nil {
			ci = fmt.Sprintf("[%.2f, %.2f]", s.RecallCI.Lower, s.RecallCI.Upper)
		}
		precision := fmtPct(s.Precision)
		if !s.Estimable.Precision.Estimable && s.PrecisionBounds != nil {
			precision = fmt.Sprintf("n/e [%.2f, %.2f]", s.PrecisionBounds.Lower, s.PrecisionBounds.Upper)
			marked = true
		}
		recall := fmtPct(s.Recall)
		if strings.HasPrefix(s.Estimable.Recall.Note, "early") {
			recall += "*"
			marked = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t\n", s.Variant, seg, s.Predictions, s.Resolved,
			fmtPct(s.FlagRate), precision, recall, ci)
	}
	for _, s := range r.Variants {
		row(s, "(all)")
	}
	segs := append([]api.Series(nil), r.Segments...)
	sort.SliceStable(segs, func(i, j int) bool {
		if segs[i].Segment != segs[j].Segment {
			return segs[i].Segment < segs[j].Segment
		}
		return segs[i].Variant < segs[j].Variant
	})
	for _, s := range segs {
		row(s, s.Segment)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if marked {
		fmt.Fprintln(out, "  n/e: precision not estimable yet (too few flagged predictions resolved), the bounds it lies in; *: early recall, from the positives labeled so far")
	}
	var j struct{ Decision, Reason string }
	if err := c.getJSON(ctx, "/v1/judge?baseline=v5&candidate=v6&window=period", &j); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "judge v6 vs v5 (period since v6's first prediction): %s: %s\n\n", strings.ToUpper(j.Decision), j.Reason)
	return err
}

func (c *demoClient) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func fmtPct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *v*100)
}

func fmtInt(v *int64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(*v)
}
