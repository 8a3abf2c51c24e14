package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/deploy"
	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/rehearsal"
	"github.com/verdictml/verdict/window"
)

// errRolledBack and errGateBlocked make `verdict rehearse` exit non-zero when the
// rehearsed rollout would have rolled back or never started, so a pipeline can gate
// `deploy apply` on it.
var (
	errRolledBack  = errors.New("the rollout would have rolled back")
	errGateBlocked = errors.New("the shadow gate would have refused the promotion")
)

func runRehearse(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("rehearse", flag.ContinueOnError)
	fs.SetOutput(out)
	rolloutFile := fs.String("rollout", "", "rollout spec (YAML, as for 'verdict deploy'); its traffic section is simulated")
	alarmsFile := fs.String("alarms", "", "alarm spec (YAML); default: the rollout's alarms.from_spec")
	rf := addReplayFlags(fs)
	baseline := fs.String("baseline", "", "verdict variant id of the production model in the recording (default: the alarm spec's baseline.variant)")
	candidate := fs.String("candidate", "", "verdict variant id of the new model in the recording (default: the alarm spec's candidate.variant)")
	start := fs.String("start", "", "when the shift starts: an RFC 3339 time, or a duration after the first recorded prediction (default: the recording's shift_start with --recording, else 1h; the baseline warms up its windows before it)")
	format := fs.String("format", "text", "output: text (a line per alarm period) or json (the whole outcome at the end)")
	override := fs.String("override-shadow-gate", "", "rehearse the shift although the shadow gate blocks (as 'deploy promote-shadow -override-shadow-gate'); the value is the reason")
	fs.Usage = func() {
		fmt.Fprint(out, `usage: verdict rehearse --rollout ROLLOUT.yaml (--recording DIR | --predictions FILE --labels FILE) [flags]

Rehearses a rollout on recorded shadow data (both variants scored every request),
on simulated event time: no AWS, no waiting. First the shadow-stage gate: when the
rollout has a shadow stage, the recording before the shift start is its shadow
stage, and the judge's judgement of it (the labels known by then) goes through the
rollout's shadow.gate as 'deploy promote-shadow' would send it; a blocked gate
stops the rollout there. Then the traffic shift.

The rollout spec's traffic section (LINEAR, CANARY or ALL_AT_ONCE, wait interval,
termination wait) sets the candidate's share over time; a request counts for the
candidate with that probability (a hash of its inference id, so reruns agree) and
for the baseline otherwise. Every publish interval verdict's CloudWatch values
(the same metrics and dimensions the publisher sends) are recorded; every alarm
period the rollback alarms of the alarm spec are evaluated with CloudWatch's
semantics (M of N, TreatMissingData, minimum-n guards). An alarm in ALARM from
the first step to the end of the termination wait rolls the rollout back.

Alarms on SageMaker's own metrics (latency-p99, error-rate) see no data in a
replay and stay within their missing-data treatment.

The simulated clock starts just before the shift (the events before it are
applied at once) and stops when the rollout ends or rolls back; --from and
--to select the events replayed. Progress goes to stderr.

Exit status: 0 when the rollout completes, 1 when the shadow gate blocks it or it
would have rolled back (or on error).

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rolloutFile == "" {
		fs.Usage()
		return errors.New("--rollout is required")
	}
	if err := rf.files(); err != nil {
		fs.Usage()
		return err
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("--format %q: want text or json", *format)
	}
	rollout, err := deploy.LoadRollout(*rolloutFile)
	if err != nil {
		return err
	}
	if *alarmsFile == "" {
		if rollout.Alarms.FromSpec == "" {
			return fmt.Errorf("--alarms is required: rollout %s names its alarms without alarms.from_spec", *rolloutFile)
		}
		*alarmsFile = rollout.Alarms.FromSpec
		if !filepath.IsAbs(*alarmsFile) {
			*alarmsFile = filepath.Join(filepath.Dir(*rolloutFile), *alarmsFile)
		}
	}
	spec, err := alarms.LoadSpec(*alarmsFile)
	if err != nil {
		return err
	}
	built, err := alarms.Build(spec)
	if err != nil {
		return err
	}
	var watched []alarms.Alarm
	for _, a := range built {
		if slices.Contains(rollout.Alarms.Names, a.AlarmName) {
			watched = append(watched, a)
		}
	}
	if len(watched) == 0 {
		return fmt.Errorf("rollout %s: alarms.names (%s) names none of the alarms of %s", *rolloutFile,
			strings.Join(rollout.Alarms.Names, ", "), *alarmsFile)
	}
	if *baseline == "" {
		*baseline = spec.Baseline.Variant
	}
	if *candidate == "" {
		*candidate = spec.Candidate.Variant
	}
	env, err := loadReplayEnv(rf)
	if err != nil {
		return err
	}
	rec, err := readRecording(env, rf)
	if err != nil {
		return err
	}
	if err := checkVariants(rec.Recording, *baseline, *candidate); err != nil {
		return err
	}
	if *start == "" {
		*start = "1h"
		if rec.meta != nil {
			*start = rec.meta.ShiftStart.Format(time.RFC3339)
			if !rf.quiet {
				fmt.Fprintf(os.Stderr, "shift starts at %s, where the recording's shadow stage ends (recording.json)\n", *start)
			}
		}
	}
	shiftStart, err := parseStart(*start, rec.FirstPrediction())
	if err != nil {
		return fmt.Errorf("--start: %w", err)
	}
	if !rec.from.IsZero() && rec.from.After(shiftStart) {
		return fmt.Errorf("--from %s is after the shift starts (--start %s): the rehearsal needs the traffic before the shift",
			rec.from.Format(time.RFC3339), shiftStart.Format(time.RFC3339))
	}
	sched := rehearsal.NewSchedule(rollout, shiftStart)
	pcfg := rehearsal.PublisherFor(spec, *baseline, *candidate, rf.window)
	pcfg.Judge = env.judge
	// The recording before the shift is the shadow stage: the reference period of
	// the shift signals, as VERDICT_REFERENCE_SINCE/UNTIL would name it.
	pcfg.Shift = &env.shift
	r := &rehearsal.Rehearsal{
		Schedule: sched, Baseline: *baseline, Candidate: *candidate, Alarms: watched,
		Publisher: pcfg, Override: *override, ShadowStart: rec.from,
		Interval: rf.interval, Join: env.join, Longest: env.longest, Rule: env.rule,
		From: rec.from, ReplayProgress: replayProgress(rf.quiet, "rehearse"),
	}
	if g := rollout.ShadowGate(); g != nil {
		// The gate compares the recording's variants (--baseline, --candidate).
		gate := *g
		gate.Baseline, gate.Candidate = *baseline, *candidate
		r.Gate = &gate
	}
	if *format == "text" {
		if r.Gate != nil {
			shadowStart := rec.from
			if shadowStart.IsZero() {
				shadowStart = rec.FirstPrediction()
			}
			fmt.Fprintf(out, "rehearsing the %s on the shadow stage from %s to %s\n", r.Gate.Describe(),
				shadowStart.Format(time.RFC3339), sched.Start.Format(time.RFC3339))
		} else {
			fmt.Fprintf(out, "rollout %s has no shadow stage: no shadow gate to rehearse\n", *rolloutFile)
		}
		fmt.Fprintf(out, "then the %s shift of %s (candidate %s, baseline %s) from %s to %s (termination wait ends), %d alarms:\n",
			rollout.Traffic.Type, rollout.Endpoint, *candidate, *baseline, sched.Start.Format(time.RFC3339), sched.End().Format(time.RFC3339), len(watched))
		for _, a := range watched {
			note := ""
			if a.Namespace == cwmetric.SageMakerNamespace || usesNamespace(a, cwmetric.SageMakerNamespace) {
				note = " (SageMaker metric: no data in a replay)"
			}
			fmt.Fprintf(out, "  %s%s\n", a.AlarmName, note)
		}
		for _, n := range rollout.Alarms.Names {
			if !slices.ContainsFunc(watched, func(a alarms.Alarm) bool { return a.AlarmName == n }) {
				fmt.Fprintf(out, "  %s: not in %s, not rehearsed\n", n, *alarmsFile)
			}
		}
		fmt.Fprintln(out)
		r.Progress = func(s rehearsal.Step) { printStep(out, s) }
		// The gate's answer comes before the shift's first step.
		r.GateProgress = func(res deploy.GateResult) {
			if err := res.Write(out); err == nil && (res.Open || res.Overridden != "") {
				fmt.Fprintln(out)
			}
		}
	}
	began := time.Now()
	outcome, err := r.Run(ctx, rec.Recording)
	if err != nil {
		return err
	}
	if !rf.quiet {
		fmt.Fprintf(os.Stderr, "rehearsed in %s\n", time.Since(began).Round(time.Millisecond))
	}
	if *format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(outcome); err != nil {
			return err
		}
	} else {
		printOutcome(out, outcome)
	}
	switch outcome.Result {
	case rehearsal.RolledBack:
		if outcome.Segment != "" {
			return fmt.Errorf("%w at %s: alarm %s, %s", errRolledBack, outcome.At.Format(time.RFC3339), outcome.Alarm, outcome.Segment)
		}
		return fmt.Errorf("%w at %s: alarm %s", errRolledBack, outcome.At.Format(time.RFC3339), outcome.Alarm)
	case rehearsal.Blocked:
		return fmt.Errorf("%w: %s", errGateBlocked, outcome.Reason)
	}
	return nil
}

func usesNamespace(a alarms.Alarm, ns string) bool {
	return slices.ContainsFunc(a.Metrics, func(q alarms.Query) bool { return q.MetricStat != nil && q.MetricStat.Metric.Namespace == ns })
}

func printStep(out io.Writer, s rehearsal.Step) {
	var states []string
	for _, a := range s.Alarms {
		states = append(states, shortAlarm(a.Alarm)+"="+string(a.State))
	}
	fmt.Fprintf(out, "%s  %-17s share %5.1f%%  candidate n=%d labeled+=%d  %s\n", s.At.Format("15:04"), s.Phase, 100*s.Share,
		s.CandidatePredictions, s.CandidateLabeledPositives, strings.Join(states, " "))
	for _, a := range s.Alarms {
		if a.State != alarms.StateAlarm {
			continue
		}
		fmt.Fprintf(out, "         %s: %s\n", a.Alarm, a.Reason)
		switch sh := s.Shift; {
		case sh == nil:
		case strings.HasSuffix(a.Alarm, string(alarms.KindSegmentFlagRate)) && sh.FlagRateSegment != "":
			fmt.Fprintf(out, "           worst segment: %s\n", sh.FlagRateSegment)
		case strings.HasSuffix(a.Alarm, string(alarms.KindSegmentScoreShift)) && sh.ScoreSegment != "":
			fmt.Fprintf(out, "           worst segment: %s\n", sh.ScoreSegment)
		}
	}
}

// shortAlarm drops an alarm name's set prefix for the step lines (the kind stays).
func shortAlarm(name string) string {
	short := name
	for _, k := range alarms.Kinds() {
		// The longest matching kind: segment-flag-rate-shift, not flag-rate-shift.
		if strings.HasSuffix(name, string(k)) && (short == name || len(k) > len(short)) {
			short = string(k)
		}
	}
	return short
}

func printOutcome(out io.Writer, o rehearsal.Outcome) {
	fmt.Fprintln(out)
	switch o.Result {
	case rehearsal.Blocked:
		fmt.Fprintf(out, "STOPPED AT THE SHADOW GATE: the shift would not have started at %s\n  %s\n", o.At.Format(time.RFC3339), o.Reason)
		return
	case rehearsal.RolledBack:
		fmt.Fprintf(out, "ROLLED BACK at %s (%s into the shift) by alarm %s\n  %s\n", o.At.Format(time.RFC3339), o.At.Sub(o.Start), o.Alarm, o.Reason)
		if o.Segment != "" {
			fmt.Fprintf(out, "  in %s\n", o.Segment)
		}
	default:
		fmt.Fprintf(out, "COMPLETED at %s: no rollback alarm fired during the shift and the termination wait\n", o.At.Format(time.RFC3339))
	}
	if g := o.ShadowGate; g != nil && g.Overridden != "" {
		fmt.Fprintf(out, "note: the shadow gate blocked (%s) and was overridden: %s\n", g.Summary(), g.Overridden)
	}
	if !o.DataEnd.IsZero() && o.DataEnd.Before(o.At) {
		fmt.Fprintf(out, "note: the recording ends at %s; after that the rehearsal saw no new traffic\n", o.DataEnd.Format(time.RFC3339))
	}
}

// replayFlags are the flags rehearse and backtest share.
type replayFlags struct {
	recording           string
	predictions, labels string
	from, to            string
	segmentKeys         string
	window              window.Span
	windowSet           bool
	interval            time.Duration
	quiet               bool
}

func addReplayFlags(fs *flag.FlagSet) *replayFlags {
	rf := &replayFlags{window: window.Span(time.Hour), interval: cloudwatch.DefaultInterval}
	fs.StringVar(&rf.recording, "recording", "", "a recording directory as 'verdict dataset' writes it: predictions.ndjson, labels.ndjson and recording.json (shift start, regression, variants); instead of --predictions and --labels")
	fs.StringVar(&rf.predictions, "predictions", "", "recorded predictions, NDJSON (verdict JSON or SageMaker Data Capture)")
	fs.StringVar(&rf.labels, "labels", "", "recorded labels, NDJSON")
	fs.StringVar(&rf.from, "from", "", "replay only events at or after this time: an RFC 3339 time or a duration after the first recorded prediction (default: from the first event)")
	fs.StringVar(&rf.to, "to", "", "replay only events at or before this time: an RFC 3339 time or a duration after the first recorded prediction (default: up to the last event); backtest looks no later")
	fs.StringVar(&rf.segmentKeys, "segment-keys", "", "prediction attributes counted as segments, comma separated (default: VERDICT_SEGMENT_KEYS)")
	fs.Func("window", "window the published values and judgements are computed over (default: VERDICT_CLOUDWATCH_WINDOW, 1h)", func(s string) error {
		sp, err := window.ParseSpan(s)
		if err != nil {
			return err
		}
		if sp == window.AllTime {
			return errors.New("want a sliding window such as 1h, not all time")
		}
		rf.window, rf.windowSet = sp, true
		return nil
	})
	fs.DurationVar(&rf.interval, "interval", 0, "publish interval on simulated time (default: VERDICT_CLOUDWATCH_INTERVAL, 60s)")
	fs.BoolVar(&rf.quiet, "quiet", false, "no progress on stderr (reading the files, replaying)")
	return rf
}

// files checks that the recording is named one way and fills in its file names.
func (rf *replayFlags) files() error {
	switch {
	case rf.recording != "" && (rf.predictions != "" || rf.labels != ""):
		return errors.New("--recording names the files: give it or --predictions and --labels, not both")
	case rf.recording != "":
		rf.predictions = filepath.Join(rf.recording, rehearsal.PredictionsFile)
		rf.labels = filepath.Join(rf.recording, rehearsal.LabelsFile)
	case rf.predictions == "" || rf.labels == "":
		return errors.New("--recording, or --predictions and --labels, are required")
	}
	return nil
}

// replayEnv is what a replay takes from the VERDICT_* settings.
type replayEnv struct {
	decoder *ingest.Decoder
	join    labels.Config
	judge   judge.Config
	shift   judge.ShiftConfig
	longest time.Duration
	rule    window.Rule
	log     *slog.Logger
}

// loadReplayEnv reads the settings and fills the flags' defaults from them.
func loadReplayEnv(rf *replayFlags) (replayEnv, error) {
	cfg, err := loadConfig()
	if err != nil {
		return replayEnv{}, err
	}
	if rf.segmentKeys != "" {
		cfg.SegmentKeys = nil
		for _, k := range strings.Split(rf.segmentKeys, ",") {
			if k = strings.TrimSpace(k); k != "" {
				cfg.SegmentKeys = append(cfg.SegmentKeys, k)
			}
		}
	}
	if len(cfg.SegmentKeys) == 0 && rf.recording != "" {
		// A recording knows where its segments live; without them the shadow gate
		// and the segment alarms would see the overall scope only.
		if m, err := rehearsal.ReadMetadata(filepath.Join(rf.recording, rehearsal.MetadataFile)); err == nil && len(m.SegmentKeys) > 0 {
			cfg.SegmentKeys = m.SegmentKeys
			if !rf.quiet {
				fmt.Fprintf(os.Stderr, "segment keys %s (recording.json)\n", strings.Join(m.SegmentKeys, ","))
			}
		}
	}
	if len(cfg.SegmentKeys) == 0 {
		fmt.Fprintln(os.Stderr, "warning: no segment keys (--segment-keys or VERDICT_SEGMENT_KEYS): the judge, the shadow gate and the segment alarms see only the overall scope, so a regression in one category can go unseen")
	}
	if !rf.windowSet {
		if sp, err := window.ParseSpan(cfg.CWWindow); err == nil && sp != window.AllTime {
			rf.window = sp
		}
	}
	if rf.interval == 0 {
		rf.interval = cfg.CWInterval
	}
	if rf.interval < time.Second {
		return replayEnv{}, fmt.Errorf("--interval %s must be at least 1s", rf.interval)
	}
	dec, err := ingest.NewDecoder(cfg.decoderConfig())
	if err != nil {
		return replayEnv{}, fmt.Errorf("configuration: %w", err)
	}
	jc, err := cfg.judgeConfig()
	if err != nil {
		return replayEnv{}, err
	}
	return replayEnv{decoder: dec, join: cfg.joinConfig(), judge: jc, shift: cfg.shiftConfig(), longest: max(cfg.longest(), time.Duration(rf.window)), rule: cfg.rule(), log: cfg.logger(os.Stderr)}, nil
}

// recording is what readRecording read: the events of [from, to], and the
// recording's metadata (nil without --recording or recording.json).
type recording struct {
	*rehearsal.Recording
	meta     *rehearsal.Metadata
	from, to time.Time // zero: open
}

// readRecording reads both files (logging each rejected line) and the metadata,
// and keeps the events between --from and --to.
func readRecording(env replayEnv, rf *replayFlags) (recording, error) {
	var out recording
	if rf.recording != "" {
		path := filepath.Join(rf.recording, rehearsal.MetadataFile)
		m, err := rehearsal.ReadMetadata(path)
		switch {
		case err == nil:
			out.meta = &m
		case !errors.Is(err, os.ErrNotExist):
			return out, fmt.Errorf("--recording: %w", err)
		}
	}
	pf, err := os.Open(rf.predictions)
	if err != nil {
		return out, fmt.Errorf("--predictions: %w", err)
	}
	defer pf.Close()
	lf, err := os.Open(rf.labels)
	if err != nil {
		return out, fmt.Errorf("--labels: %w", err)
	}
	defer lf.Close()
	var pr, lr io.Reader = pf, lf
	began := time.Now()
	if !rf.quiet {
		fmt.Fprintf(os.Stderr, "reading %s and %s ...\n", rf.predictions, rf.labels)
		pr, lr = readingProgress(pf, rf.predictions), readingProgress(lf, rf.labels)
	}
	rec, err := rehearsal.Read(env.decoder, pr, lr, rehearsal.ReadOptions{Rejected: func(kind ingest.Kind, r ingest.Rejection) {
		file := rf.predictions
		if kind == ingest.KindLabel {
			file = rf.labels
		}
		env.log.Debug("line rejected", "file", file, "line", r.Line, "reason", r.Reason)
	}})
	if err != nil {
		return out, err
	}
	first, last := rec.Span()
	if !rf.quiet {
		fmt.Fprintf(os.Stderr, "read %d predictions and %d labels from %s to %s (%d lines rejected) in %s\n",
			len(rec.Predictions), len(rec.Labels), first.Format(time.RFC3339), last.Format(time.RFC3339), rec.Rejected,
			time.Since(began).Round(time.Millisecond))
	}
	for _, b := range []struct {
		flag, value string
		at          *time.Time
	}{{"--from", rf.from, &out.from}, {"--to", rf.to, &out.to}} {
		if b.value == "" {
			continue
		}
		if *b.at, err = parseStart(b.value, rec.FirstPrediction()); err != nil {
			return out, fmt.Errorf("%s: %w", b.flag, err)
		}
	}
	if !out.from.IsZero() && !out.to.IsZero() && out.to.Before(out.from) {
		return out, fmt.Errorf("--to %s is before --from %s", out.to.Format(time.RFC3339), out.from.Format(time.RFC3339))
	}
	out.Recording = rec.Between(out.from, out.to)
	if len(out.Predictions) == 0 {
		return out, fmt.Errorf("no predictions between --from and --to (the recording's events run from %s to %s)",
			first.Format(time.RFC3339), last.Format(time.RFC3339))
	}
	return out, nil
}

// readingProgress reports on stderr, at most once a second, how much of a file
// has been read.
func readingProgress(f *os.File, name string) io.Reader {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
		return f
	}
	return &progressReader{r: f, name: name, size: st.Size()}
}

type progressReader struct {
	r    io.Reader
	name string
	size int64
	read int64
	last time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += int64(n)
	if p.last.IsZero() {
		p.last = time.Now()
	}
	if time.Since(p.last) >= time.Second {
		p.last = time.Now()
		fmt.Fprintf(os.Stderr, "reading %s: %.0f%%\n", p.name, 100*float64(p.read)/float64(p.size))
	}
	return n, err
}

// replayProgress prints, at most once a second, how far a replay has got.
func replayProgress(quiet bool, what string) func(rehearsal.Progress) {
	if quiet {
		return nil
	}
	last := time.Now()
	return func(p rehearsal.Progress) {
		if time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		fmt.Fprintf(os.Stderr, "%s: %d of %d events replayed (%.0f%%), simulated time %s (%s of %s)\n", what, p.Applied, p.Total,
			100*float64(p.Applied)/float64(max(p.Total, 1)), p.Now.Format(time.RFC3339), fmtSpan(p.Now.Sub(p.From)), fmtSpan(p.To.Sub(p.From)))
	}
}

func checkVariants(rec *rehearsal.Recording, baseline, candidate string) error {
	vs := rec.Variants()
	switch {
	case candidate == "" || baseline == "":
		return errors.New("--baseline and --candidate are required when the alarm spec names no baseline")
	case baseline == candidate:
		return fmt.Errorf("--baseline and --candidate are both %q", baseline)
	case !slices.Contains(vs, candidate):
		return fmt.Errorf("--candidate %q has no predictions in the recording (variants: %s)", candidate, strings.Join(vs, ", "))
	case !slices.Contains(vs, baseline):
		return fmt.Errorf("--baseline %q has no predictions in the recording (variants: %s)", baseline, strings.Join(vs, ", "))
	}
	return nil
}

// parseStart reads an RFC 3339 time or a duration after first.
func parseStart(s string, first time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time or a duration after the first prediction such as 1h", s)
	}
	return first.Add(d), nil
}

// fmtSpan prints a span of simulated time to the minute, with days: 56d9h46m.
func fmtSpan(d time.Duration) string {
	d = d.Round(time.Minute)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	s := strings.TrimSuffix(d.String(), "0s")
	switch {
	case days > 0 && d == 0:
		return fmt.Sprintf("%dd", days)
	case days > 0:
		return fmt.Sprintf("%dd%s", days, s)
	case d == 0:
		return "0m"
	}
	return s
}
