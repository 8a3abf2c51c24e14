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
	"github.com/verdictml/verdict/ingest/objectsource"
	"github.com/verdictml/verdict/ingest/objectsource/dirbucket"
	"github.com/verdictml/verdict/labels/embedded"
	"github.com/verdictml/verdict/window"
)

func runReplay(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(out)
	predFile := fs.String("predictions", "", "NDJSON file of predictions (verdict JSON or SageMaker Data Capture); - for stdin")
	labelFile := fs.String("labels", "", "NDJSON file of labels; - for stdin")
	captureDir := fs.String("captures", "", "directory of SageMaker Data Capture files with S3's layout ({endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl[.gz], e.g. from aws s3 sync); the variant is the folder's (VERDICT_S3_VARIANTS maps it)")
	labelDir := fs.String("label-dir", "", "directory of label files: *.csv (VERDICT_LABEL_CSV_COLUMNS, VERDICT_LABEL_VALUES) and verdict JSON lines, gzip'd or not")
	deadFile := fs.String("dead-letters", "", "write rejected lines here as NDJSON with the reason (default: count only)")
	batch := fs.Int("batch", filesource.DefaultBatchSize, "events per atomic commit")
	quiet := fs.Bool("quiet", false, "no progress line")
	fs.Usage = func() {
		fmt.Fprint(out, `usage: verdict replay [--predictions FILE | --captures DIR] [--labels FILE | --label-dir DIR] [flags]

Replays recorded predictions and labels into the embedded join store in
VERDICT_DATA_DIR (predictions first, then labels; the join does not depend on the
order). Directories are read file by file, as the S3 source reads a bucket: Data
Capture files take the variant of their folder, gzip'd files are read as such, and a
damaged file is reported and skipped. Replaying a file twice changes nothing. Bad lines are rejected with their
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
	if *predFile == "" && *labelFile == "" && *captureDir == "" && *labelDir == "" {
		fs.Usage()
		return errors.New("nothing to replay: give --predictions or --captures, and/or --labels or --label-dir")
	}
	if *predFile == "-" && *labelFile == "-" {
		return errors.New("only one of --predictions and --labels can read stdin")
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log := cfg.logger(os.Stderr)
	dec, err := cfg.liveDecoder()
	if err != nil {
		return err
	}
	spec := cfg.joinSpec(log, window.New(cfg.Bucket, cfg.longest()))
	spec.store = storeEmbedded // whatever VERDICT_STORE says
	jn, err := openJoin(ctx, spec)
	var openErr *storeOpenError
	if errors.As(err, &openErr) && !errors.Is(err, embedded.ErrCorrupt) {
		return fmt.Errorf("%w (is 'verdict serve' running on %s?)", err, cfg.DataDir)
	}
	if err != nil {
		return err
	}
	defer jn.close()
	join, windows := jn.join, jn.windows
	dec.KnowVariants(countedVariants(windows)...)

	var dead io.Writer
	if *deadFile != "" {
		f, err := os.Create(*deadFile)
		if err != nil {
			return fmt.Errorf("dead letters: %w", err)
		}
		defer f.Close()
		dead = f
	}
	if *captureDir != "" || *labelDir != "" {
		if err := replayDirs(ctx, out, cfg, dec, join, dead, *captureDir, *labelDir, *batch, *quiet); err != nil {
			return err
		}
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

// replayDirs reads capture and label directories once, file by file, with the S3
// source's reading rules (no checkpoints: replaying again changes nothing).
func replayDirs(ctx context.Context, out io.Writer, cfg settings, dec *ingest.Decoder, sink ingest.Sink, dead io.Writer,
	captureDir, labelDir string, batch int, quiet bool) error {
	for _, step := range []struct {
		kind ingest.Kind
		dir  string
	}{{ingest.KindPrediction, captureDir}, {ingest.KindLabel, labelDir}} {
		if step.dir == "" {
			continue
		}
		b, err := dirbucket.New(step.dir)
		if err != nil {
			return err
		}
		srcCfg := objectsource.Config{
			Prefixes: []objectsource.Prefix{{Bucket: b, Kind: step.kind}},
			Decoder:  dec, Sink: sink, Claims: noClaims{}, Variant: variantOfFolder(cfg.S3Variants),
			BatchSize: batch, Source: ingest.SourceFile, Logger: cfg.logger(os.Stderr),
		}
		if dead != nil {
			srcCfg.DeadLetters = objectsource.NewWriterDeadLetters(dead)
		}
		src, err := objectsource.New(srcCfg)
		if err != nil {
			return err
		}
		t, err := src.Drain(ctx, time.Second, func(t objectsource.Totals) {
			if !quiet {
				fmt.Fprintf(os.Stderr, "\r%s", dirProgressLine(step.kind, t))
			}
		})
		if !quiet {
			fmt.Fprint(os.Stderr, "\r\033[K")
		}
		fmt.Fprintf(out, "%s: %s\n", step.dir, dirProgressLine(step.kind, t))
		if err != nil {
			return fmt.Errorf("replay %s: %w", step.dir, err)
		}
	}
	return nil
}

// noClaims is for Drain, which claims nothing.
type noClaims struct{}

func (noClaims) Run(context.Context, func(context.Context) ([]string, error), func(context.Context, objectsource.Claim)) error {
	return nil
}

func dirProgressLine(kind ingest.Kind, t objectsource.Totals) string {
	pct := ""
	if total := t.Objects + t.ObjectsBehind; total > 0 {
		pct = fmt.Sprintf(" of %d (%.0f%%)", total, 100*float64(t.Objects)/float64(total))
	}
	return fmt.Sprintf("%s files: %d read%s, %d MiB, %d accepted (%d duplicates), %d rejected, %d unreadable files",
		kind, t.Objects, pct, t.Bytes>>20, t.Accepted, t.Duplicates, t.Rejected, t.DeadObjects)
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
