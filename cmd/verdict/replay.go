package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/ingest/filesource"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/embedded"
	"github.com/verdictml/verdict/window"
)

func runReplay(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(out)
	predFile := fs.String("predictions", "", "NDJSON file of predictions (verdict JSON or SageMaker Data Capture); - for stdin")
	labelFile := fs.String("labels", "", "NDJSON file of labels; - for stdin")
	deadFile := fs.String("dead-letters", "", "write rejected lines here as NDJSON with the reason (default: count only)")
	batch := fs.Int("batch", filesource.DefaultBatchSize, "events per atomic commit")
	quiet := fs.Bool("quiet", false, "no progress line")
	fs.Usage = func() {
		fmt.Fprint(out, `usage: verdict replay --predictions FILE [--labels FILE] [flags]

Replays recorded predictions and labels into the embedded join store in
VERDICT_DATA_DIR (predictions first, then labels; the join does not depend on the
order). Replaying a file twice changes nothing. Bad lines are rejected with their
line number and reason and never stop the replay. The store is opened directly, so
'verdict serve' must not be running on the same directory; to feed a running
server, POST the files to /v1/predictions and /v1/labels instead.

Prints a progress line while it runs and the all-time per-variant counts at the end.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *predFile == "" && *labelFile == "" {
		fs.Usage()
		return errors.New("nothing to replay: give --predictions and/or --labels")
	}
	if *predFile == "-" && *labelFile == "-" {
		return errors.New("only one of --predictions and --labels can read stdin")
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log := cfg.logger(os.Stderr)
	dec, err := ingest.NewDecoder(cfg.liveDecoderConfig())
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data directory (VERDICT_DATA_DIR): %w", err)
	}
	store, err := embedded.Open(cfg.DataDir, cfg.storeOptions(log))
	if err != nil {
		if errors.Is(err, embedded.ErrCorrupt) {
			return err
		}
		return fmt.Errorf("%w (is 'verdict serve' running on %s?)", err, cfg.DataDir)
	}
	defer store.Close()
	windows := window.New(cfg.Bucket, cfg.longest())
	join, err := labels.Open(ctx, store, cfg.joinConfig(), windows)
	if err != nil {
		return err
	}
	dec.KnowVariants(countedVariants(windows)...)
	defer join.Close()

	var dead io.Writer
	if *deadFile != "" {
		f, err := os.Create(*deadFile)
		if err != nil {
			return fmt.Errorf("dead letters: %w", err)
		}
		defer f.Close()
		dead = f
	}
	for _, step := range []struct {
		kind ingest.Kind
		path string
	}{{ingest.KindPrediction, *predFile}, {ingest.KindLabel, *labelFile}} {
		if step.path == "" {
			continue
		}
		in, size, closeIn, err := openInput(step.path)
		if err != nil {
			return err
		}
		rp := filesource.New(dec, join, filesource.Config{
			BatchSize:   *batch,
			DeadLetters: dead,
			Progress: func(p filesource.Progress) {
				if !*quiet {
					fmt.Fprintf(os.Stderr, "\r%s", progressLine(step.kind, p))
				}
			},
		})
		p, err := rp.Replay(ctx, step.kind, in, size)
		closeIn()
		if !*quiet {
			fmt.Fprint(os.Stderr, "\r\033[K")
		}
		fmt.Fprintf(out, "%s: %s\n", step.path, progressLine(step.kind, p))
		if err != nil {
			return fmt.Errorf("replay %s: %w", step.path, err)
		}
	}
	// Predictions already past maturity resolve now, as they would in serve.
	if jc := cfg.joinConfig(); jc.Maturity > 0 {
		for {
			n, err := join.Mature(ctx, time.Now(), 10000)
			if err != nil {
				return err
			}
			if n < 10000 {
				break
			}
		}
	}
	return printTotals(out, windows.Snapshot(window.AllTime))
}

func openInput(path string) (io.Reader, int64, func(), error) {
	if path == "-" {
		return os.Stdin, 0, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("open input: %w", err)
	}
	var size int64
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, func() { f.Close() }, nil
}

func progressLine(kind ingest.Kind, p filesource.Progress) string {
	pct := ""
	if p.TotalBytes > 0 {
		pct = fmt.Sprintf(" (%.0f%%)", 100*float64(p.Bytes)/float64(p.TotalBytes))
	}
	return fmt.Sprintf("%ss: %d lines%s, %d accepted (%d duplicates), %d rejected, %.0f lines/s",
		kind, p.Lines, pct, p.Accepted, p.Duplicates, p.Rejected, p.LinesPerSecond)
}

func printTotals(out io.Writer, snap window.Snapshot) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(out, "\nall-time counts in the store:")
	fmt.Fprintln(tw, "variant\tpredictions\ttp\tfp\tfn\ttn\tprecision\trecall\t")
	for _, r := range snap.Overall() {
		c := r.Counts
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", r.Key.Variant, c.Predictions, c.TP, c.FP, c.FN, c.TN,
			fmtPct(r.Stats.Precision), fmtPct(r.Stats.Recall))
	}
	return tw.Flush()
}
