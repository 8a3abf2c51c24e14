package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// datasetOptions describe a recorded dataset made by the demo's traffic generator.
type datasetOptions struct {
	dir          string
	start        time.Time
	duration     time.Duration
	rate         float64 // inferences per simulated second
	labelDelay   time.Duration
	regress      string
	regressAfter time.Duration
	seed         uint64
}

// datasetSummary is what writeDataset wrote.
type datasetSummary struct {
	predictions, labels int
	regressionStart     time.Time // zero without regression
	end                 time.Time
}

func runDataset(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dataset", flag.ContinueOnError)
	fs.SetOutput(out)
	dir := fs.String("dir", "", "directory to write predictions.ndjson and labels.ndjson into (created if missing)")
	start := fs.String("start", "2026-01-05T00:00:00Z", "event time of the first inference (RFC 3339)")
	hours := fs.Float64("hours", 6, "simulated hours of traffic")
	rate := fs.Float64("rate", 2, "inferences per simulated second (each is scored by v5 and by shadow v6)")
	delay := fs.Duration("label-delay", 10*time.Minute, "mean delay before a label becomes known (0.5x to 1.5x)")
	regress := fs.String("regress", "electronics", `merchant category on which v6 loses recall ("" for a dataset without regression)`)
	regressAfter := fs.Duration("regress-after", 0, "simulated time after --start from which v6 regresses")
	seed := fs.Uint64("seed", 1, "random seed of the synthetic traffic")
	fs.Usage = func() {
		fmt.Fprint(out, `usage: verdict dataset --dir DIR [flags]

Writes a recorded dataset from the demo's traffic generator, without a server and
without sleeping: DIR/predictions.ndjson (production v5 and shadow v6 score every
inference, in verdict JSON) and DIR/labels.ndjson (fraud disputes, known after a
delay, a few corrected), with event times spread over --hours of simulated time.
v6 regresses on one merchant category from --regress-after on. A few duplicated
and malformed lines are included on purpose, as in the demo.

The files feed 'verdict rehearse', 'verdict backtest' and 'verdict replay'
(set VERDICT_SEGMENT_KEYS=merchant_category to see the segments).

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		fs.Usage()
		return fmt.Errorf("--dir is required")
	}
	t0, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return fmt.Errorf("--start %q: want an RFC 3339 time such as 2026-01-05T00:00:00Z", *start)
	}
	switch {
	case !(*hours > 0 && *hours <= 24*31):
		return fmt.Errorf("--hours %v: want more than 0 and at most 744 (a month)", *hours)
	case !(*rate > 0 && *rate <= 1000):
		return fmt.Errorf("--rate %v: want more than 0 and at most 1000 inferences per second", *rate)
	case *delay < 0:
		return fmt.Errorf("--label-delay %s must not be negative", *delay)
	case *regressAfter < 0:
		return fmt.Errorf("--regress-after %s must not be negative", *regressAfter)
	}
	sum, err := writeDataset(ctx, datasetOptions{
		dir: *dir, start: t0.UTC(), duration: time.Duration(*hours * float64(time.Hour)), rate: *rate,
		labelDelay: *delay, regress: *regress, regressAfter: *regressAfter, seed: *seed,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s: %d prediction lines, %s: %d label lines; events from %s to %s\n",
		filepath.Join(*dir, "predictions.ndjson"), sum.predictions, filepath.Join(*dir, "labels.ndjson"), sum.labels,
		t0.UTC().Format(time.RFC3339), sum.end.Format(time.RFC3339))
	if sum.regressionStart.IsZero() {
		_, err = fmt.Fprintln(out, "no regression: v6 scores like v5")
	} else {
		_, err = fmt.Fprintf(out, "v6 regresses on merchant_category=%s from %s (--regression-start for backtest)\n",
			*regress, sum.regressionStart.Format(time.RFC3339))
	}
	return err
}

// writeDataset runs the demo generator on simulated time, one tick per second.
func writeDataset(ctx context.Context, o datasetOptions) (datasetSummary, error) {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return datasetSummary{}, fmt.Errorf("dataset: create %s: %w", o.dir, err)
	}
	pf, err := os.Create(filepath.Join(o.dir, "predictions.ndjson"))
	if err != nil {
		return datasetSummary{}, fmt.Errorf("dataset: %w", err)
	}
	defer pf.Close()
	lf, err := os.Create(filepath.Join(o.dir, "labels.ndjson"))
	if err != nil {
		return datasetSummary{}, fmt.Errorf("dataset: %w", err)
	}
	defer lf.Close()
	pw, lw := bufio.NewWriter(pf), bufio.NewWriter(lf)

	var sum datasetSummary
	traffic := newDemoTraffic(o.seed, "", o.labelDelay)
	if o.regress != "" {
		sum.regressionStart = o.start.Add(o.regressAfter)
	}
	write := func(w *bufio.Writer, lines [][]byte) error {
		for _, l := range lines {
			if _, err := w.Write(l); err != nil {
				return err
			}
			if err := w.WriteByte('\n'); err != nil {
				return err
			}
		}
		return nil
	}
	carry := 0.0
	end := o.start.Add(o.duration)
	for now := o.start; now.Before(end); now = now.Add(time.Second) {
		if err := ctx.Err(); err != nil {
			return sum, fmt.Errorf("dataset: stopped at %s: %w", now.Format(time.RFC3339), err)
		}
		if o.regress != "" && !now.Before(sum.regressionStart) {
			traffic.regress = o.regress
		}
		carry += o.rate
		n := int(carry)
		carry -= float64(n)
		preds := traffic.tick(now, n)
		lbls := traffic.dueLabels(now)
		if err := write(pw, preds); err != nil {
			return sum, fmt.Errorf("dataset: write predictions: %w", err)
		}
		if err := write(lw, lbls); err != nil {
			return sum, fmt.Errorf("dataset: write labels: %w", err)
		}
		sum.predictions += len(preds)
		sum.labels += len(lbls)
		sum.end = now
	}
	// Disputes still open at the end become known later; they are recorded too.
	rest := traffic.dueLabels(end.Add(100 * time.Duration(max(o.labelDelay, time.Second))))
	if err := write(lw, rest); err != nil {
		return sum, fmt.Errorf("dataset: write labels: %w", err)
	}
	sum.labels += len(rest)
	if err := pw.Flush(); err != nil {
		return sum, fmt.Errorf("dataset: write predictions: %w", err)
	}
	if err := lw.Flush(); err != nil {
		return sum, fmt.Errorf("dataset: write labels: %w", err)
	}
	if err := pf.Close(); err != nil {
		return sum, fmt.Errorf("dataset: close predictions: %w", err)
	}
	if err := lf.Close(); err != nil {
		return sum, fmt.Errorf("dataset: close labels: %w", err)
	}
	return sum, nil
}
