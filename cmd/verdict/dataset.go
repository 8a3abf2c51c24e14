package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/verdictml/verdict/rehearsal"
)

// datasetOptions describe a recorded dataset made by the demo's traffic generator.
type datasetOptions struct {
	dir      string
	start    time.Time
	duration time.Duration
	// shadow is the shadow stage at the start of the recording; the shift starts
	// after it.
	shadow       time.Duration
	rate         float64 // inferences per simulated second
	labels       labelProcess
	regress      string
	regressAfter time.Duration
	seed         uint64
	// generator is the command line recorded in recording.json.
	generator string
	// progress, when set, sees the simulated time now and then.
	progress func(now time.Time)
}

// datasetSummary is what writeDataset wrote.
type datasetSummary struct {
	predictions, labels int
	regressionStart     time.Time // zero without regression
	shiftStart          time.Time
	end                 time.Time // the last prediction
	lastLabel           time.Time
	// fates counts inferences by what became of their labels and by truth.
	fates map[fateKey]int
	// positivesBy counts the positive labels known at the shift start and at the
	// end of traffic.
	positivesByShift, positivesByEnd int
}

func runDataset(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dataset", flag.ContinueOnError)
	fs.SetOutput(out)
	dir := fs.String("dir", "", "directory to write predictions.ndjson, labels.ndjson and recording.json into (created if missing)")
	start := fs.String("start", "2026-01-05T00:00:00Z", "event time of the first inference: the shadow stage begins (RFC 3339)")
	hours := fs.Float64("hours", 6, "simulated hours of traffic, the shadow stage included")
	shadow := fs.Duration("shadow", time.Hour, "length of the shadow stage at the start of the recording; the shift starts after it (recording.json's shift_start, the default --start of 'verdict rehearse')")
	rate := fs.Float64("rate", 2, "inferences per simulated second (each is scored by v5 and by shadow v6)")
	regress := fs.String("regress", "electronics", `merchant category on which v6 loses recall ("" for a dataset without regression)`)
	regressAfter := fs.Duration("regress-after", 0, "simulated time after --start from which v6 regresses (0: from the first inference, so the shadow stage shows it too)")
	seed := fs.Uint64("seed", 1, "random seed of the synthetic traffic and its labels")
	process := fs.String("label-process", "realistic", "how labels arrive: realistic (fraud's real delays and declines; the flags marked realistic) or fast (the demo's: every label within 1.5 x --label-delay)")
	delay := fs.Duration("label-delay", 10*time.Minute, "fast process: mean delay before a label becomes known (0.5x to 1.5x)")
	rl := defaultRealisticLabels()
	fs.Float64Var(&rl.declineShare, "decline", rl.declineShare, "realistic: share of the requests production v5 flags (score >= 0.5) that are declined and so never labeled (0: flags only send to review)")
	fs.Float64Var(&rl.alertShare, "alert-share", rl.alertShare, "realistic: share of the fraud that went through confirmed fast by issuer alerts")
	fs.DurationVar(&rl.alertMin, "alert-delay-min", rl.alertMin, "realistic: shortest issuer-alert delay (delays are log-uniform between min and max)")
	fs.DurationVar(&rl.alertMax, "alert-delay-max", rl.alertMax, "realistic: longest issuer-alert delay")
	fs.Var(dayDuration{&rl.disputeMedian}, "dispute-median", "realistic: median delay, in `days` (15d) or as a duration (360h), until the dispute of the other fraud settles (log-normal)")
	fs.Float64Var(&rl.disputeSigma, "dispute-sigma", rl.disputeSigma, "realistic: standard deviation of the log of the dispute delay")
	fs.Var(dayDuration{&rl.disputeMin}, "dispute-min", "realistic: shortest dispute delay in `days` (the log-normal is truncated to [min, max])")
	fs.Var(dayDuration{&rl.disputeMax}, "dispute-max", "realistic: longest dispute delay in `days`")
	fs.Float64Var(&rl.legitConfirmed, "legit-confirmed", rl.legitConfirmed, "realistic: share of legitimate transactions confirmed when their chargeback window closes; the rest are never labeled (left to maturity)")
	fs.Var(dayDuration{&rl.chargebackWindow}, "chargeback-window", "realistic: `days` after a transaction until its chargeback window closes (a legitimate confirmation follows within a day)")
	fs.Usage = func() {
		fmt.Fprint(out, `usage: verdict dataset --dir DIR [flags]

Writes a recorded dataset from the demo's traffic generator, without a server and
without sleeping: DIR/predictions.ndjson (production v5 and shadow v6 score every
inference, in verdict JSON), DIR/labels.ndjson (labels, at the time they become
known) and DIR/recording.json (where the shadow stage ends and the shift starts,
the regression, the label process). v6 regresses on one merchant category from
--regress-after on. A few duplicated and malformed lines are included on purpose,
as in the demo.

Labels (--label-process):
  realistic  (default) as fraud labels really arrive: a request v5 flags is
             declined and never labeled; of the fraud that went through, 5% is
             confirmed by issuer alerts within minutes to hours, the rest is
             disputed 3 to 60 days later (log-normal, median 15 days); half of the
             legitimate transactions are confirmed when their 45-day chargeback
             window closes, the others never. Labels run up to two months past the
             traffic, and during a shift of a few hours almost none exist.
  fast       the demo's: 90% of inferences labeled after ~--label-delay, a few
             corrected. Rollouts rehearsed on it see labels they would never have.

The recording is shadow data throughout (both models score every request;
v5's decisions decide the declines), so 'verdict rehearse' can simulate any
traffic split on it from the shift start on.

The files feed 'verdict rehearse', 'verdict backtest' (both with --recording DIR)
and 'verdict replay' (set VERDICT_SEGMENT_KEYS=merchant_category to see the
segments).

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		fs.Usage()
		return errors.New("--dir is required")
	}
	t0, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return fmt.Errorf("--start %q: want an RFC 3339 time such as 2026-01-05T00:00:00Z", *start)
	}
	duration := time.Duration(*hours * float64(time.Hour))
	switch {
	case !(*hours > 0 && *hours <= 24*31):
		return fmt.Errorf("--hours %v: want more than 0 and at most 744 (a month)", *hours)
	case !(*rate > 0 && *rate <= 1000):
		return fmt.Errorf("--rate %v: want more than 0 and at most 1000 inferences per second", *rate)
	case *delay < 0:
		return fmt.Errorf("--label-delay %s must not be negative", *delay)
	case *regressAfter < 0:
		return fmt.Errorf("--regress-after %s must not be negative", *regressAfter)
	case *shadow < 0 || *shadow >= duration:
		return fmt.Errorf("--shadow %s: want at least 0 and less than --hours %v (the shift starts after the shadow stage)", *shadow, *hours)
	}
	var labels labelProcess
	switch *process {
	case "realistic":
		if err := rl.validate(); err != nil {
			return err
		}
		if set := setFlags(fs, "label-delay"); len(set) > 0 {
			return fmt.Errorf("--label-delay applies to --label-process fast, not realistic")
		}
		labels = rl
	case "fast":
		if set := setFlags(fs, "decline", "alert-share", "alert-delay-min", "alert-delay-max", "dispute-median", "dispute-sigma",
			"dispute-min", "dispute-max", "legit-confirmed", "chargeback-window"); len(set) > 0 {
			return fmt.Errorf("--%s applies to --label-process realistic, not fast", set[0])
		}
		labels = fastLabels{delay: *delay}
	default:
		return fmt.Errorf("--label-process %q: want realistic or fast", *process)
	}
	gen := []string{"verdict", "dataset"}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "dir" {
			gen = append(gen, "--"+f.Name+"="+f.Value.String())
		}
	})
	o := datasetOptions{
		dir: *dir, start: t0.UTC(), duration: duration, shadow: *shadow, rate: *rate,
		labels: labels, regress: *regress, regressAfter: *regressAfter, seed: *seed, generator: strings.Join(gen, " "),
	}
	lastReport := time.Now()
	o.progress = func(now time.Time) {
		if time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			fmt.Fprintf(os.Stderr, "dataset: simulated %s (%.0f%%)\n", now.Format(time.RFC3339), 100*float64(now.Sub(o.start))/float64(duration))
		}
	}
	sum, err := writeDataset(ctx, o)
	if err != nil {
		return err
	}
	printDatasetSummary(out, o, sum)
	return nil
}

// setFlags lists which of names were set on the command line.
func setFlags(fs *flag.FlagSet, names ...string) []string {
	var set []string
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(names, f.Name) {
			set = append(set, f.Name)
		}
	})
	return set
}

func printDatasetSummary(out io.Writer, o datasetOptions, sum datasetSummary) {
	fmt.Fprintf(out, "wrote %s: %d prediction lines, %s: %d label lines, %s\n",
		filepath.Join(o.dir, rehearsal.PredictionsFile), sum.predictions, filepath.Join(o.dir, rehearsal.LabelsFile), sum.labels,
		filepath.Join(o.dir, rehearsal.MetadataFile))
	fmt.Fprintf(out, "traffic from %s to %s: shadow stage until %s, then the shift (rehearse --start default); labels until %s\n",
		o.start.Format(time.RFC3339), sum.end.Format(time.RFC3339), sum.shiftStart.Format(time.RFC3339), sum.lastLabel.Format(time.RFC3339))
	fmt.Fprintf(out, "labels: %s\n", o.labels.describe())
	for _, truth := range []struct {
		name  string
		fraud bool
	}{{"fraud", true}, {"legitimate", false}} {
		var parts []string
		total := 0
		for _, f := range []string{fateDeclined, sourceIssuerAlert, sourceDispute, sourceChargebackClose, fateUnlabeled} {
			if n := sum.fates[fateKey{f, truth.fraud}]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", fateNames[f], n))
				total += n
			}
		}
		fmt.Fprintf(out, "  %s inferences: %d (%s)\n", truth.name, total, strings.Join(parts, ", "))
	}
	fmt.Fprintf(out, "  positive labels known by the shift start: %d; by the end of traffic: %d\n", sum.positivesByShift, sum.positivesByEnd)
	if sum.regressionStart.IsZero() {
		fmt.Fprintln(out, "no regression: v6 scores like v5")
	} else {
		fmt.Fprintf(out, "v6 regresses on merchant_category=%s from %s (the backtest's --regression-start with --recording)\n",
			o.regress, sum.regressionStart.Format(time.RFC3339))
	}
}

var fateNames = map[string]string{
	fateDeclined:          "declined by v5, never labeled",
	sourceIssuerAlert:     "issuer alerts",
	sourceDispute:         "disputes",
	sourceChargebackClose: "confirmed at the chargeback window's close",
	fateUnlabeled:         "never labeled",
}

// writeDataset runs the demo generator on simulated time, one tick per second.
func writeDataset(ctx context.Context, o datasetOptions) (datasetSummary, error) {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return datasetSummary{}, fmt.Errorf("dataset: create %s: %w", o.dir, err)
	}
	pf, err := os.Create(filepath.Join(o.dir, rehearsal.PredictionsFile))
	if err != nil {
		return datasetSummary{}, fmt.Errorf("dataset: %w", err)
	}
	defer pf.Close()
	lf, err := os.Create(filepath.Join(o.dir, rehearsal.LabelsFile))
	if err != nil {
		return datasetSummary{}, fmt.Errorf("dataset: %w", err)
	}
	defer lf.Close()
	pw, lw := bufio.NewWriter(pf), bufio.NewWriter(lf)

	sum := datasetSummary{shiftStart: o.start.Add(o.shadow)}
	traffic := newDemoTraffic(o.seed, "", o.labels)
	traffic.fates = map[fateKey]int{}
	if o.regress != "" {
		sum.regressionStart = o.start.Add(o.regressAfter)
	}
	writePreds := func(lines [][]byte) error {
		for _, l := range lines {
			if _, err := pw.Write(l); err != nil {
				return fmt.Errorf("dataset: write predictions: %w", err)
			}
			if err := pw.WriteByte('\n'); err != nil {
				return fmt.Errorf("dataset: write predictions: %w", err)
			}
		}
		sum.predictions += len(lines)
		return nil
	}
	writeLabels := func(due []plannedLabel) error {
		for _, l := range due {
			if _, err := lw.Write(l.line()); err != nil {
				return fmt.Errorf("dataset: write labels: %w", err)
			}
			if err := lw.WriteByte('\n'); err != nil {
				return fmt.Errorf("dataset: write labels: %w", err)
			}
			if l.positive && !l.due.After(sum.shiftStart) {
				sum.positivesByShift++
			}
			if l.positive && !l.due.After(sum.end) {
				sum.positivesByEnd++
			}
			sum.lastLabel = l.due
		}
		sum.labels += len(due)
		return nil
	}
	carry := 0.0
	end := o.start.Add(o.duration)
	for now := o.start; now.Before(end); now = now.Add(time.Second) {
		if now.Sub(o.start)%time.Minute == 0 {
			if err := ctx.Err(); err != nil {
				return sum, fmt.Errorf("dataset: stopped at %s: %w", now.Format(time.RFC3339), err)
			}
			if o.progress != nil {
				o.progress(now)
			}
		}
		if o.regress != "" && !now.Before(sum.regressionStart) {
			traffic.regress = o.regress
		}
		carry += o.rate
		n := int(carry)
		carry -= float64(n)
		if err := writePreds(traffic.tick(now, n)); err != nil {
			return sum, err
		}
		sum.end = now
		if err := writeLabels(traffic.dueLabels(now)); err != nil {
			return sum, err
		}
	}
	// Labels still pending when traffic stops become known later; they are
	// recorded too, up to the last one (two months on, for disputes).
	if err := writeLabels(traffic.pending.popDue(end.Add(100 * 365 * 24 * time.Hour))); err != nil {
		return sum, err
	}
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
	sum.fates = traffic.fates
	meta := rehearsal.Metadata{
		Generator: o.generator, Start: o.start, End: sum.end, ShiftStart: sum.shiftStart,
		Baseline: "v5", Candidate: "v6", SegmentKeys: []string{"merchant_category"},
		LabelProcess: o.labels.describe(), LastLabel: sum.lastLabel,
	}
	if !sum.regressionStart.IsZero() {
		meta.Regression = &rehearsal.Regression{SegmentKey: "merchant_category", Segment: o.regress, Start: sum.regressionStart,
			What: "v6 scores fraud in this category low (mean 0.38 instead of 0.78): it misses most of it"}
	}
	if err := rehearsal.WriteMetadata(o.dir, meta); err != nil {
		return sum, fmt.Errorf("dataset: %w", err)
	}
	return sum, nil
}
