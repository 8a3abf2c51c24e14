package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/rehearsal"
)

func runBacktest(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("backtest", flag.ContinueOnError)
	fs.SetOutput(out)
	rf := addReplayFlags(fs)
	baseline := fs.String("baseline", "", "verdict variant id of the baseline (production) model (default with --recording: its baseline)")
	candidate := fs.String("candidate", "", "verdict variant id of the candidate (shadow) model (default with --recording: its candidate)")
	every := fs.Duration("every", 5*time.Minute, "time between the judge's looks (a rollout gate's query interval)")
	failures := fs.Int("failures", 1, "failed looks that abort a rollout (Argo Rollouts failureLimit + 1, Flagger threshold); 1: the judge's fail is anytime-valid")
	regression := fs.String("regression-start", "", "when the candidate became worse in the recording: an RFC 3339 time or a duration after the first prediction, or none (default: the recording's regression with --recording, else none: every alarm is false)")
	alarmsFile := fs.String("alarms", "", "alarm spec (YAML): also evaluate its alarms on what the CloudWatch publisher would have sent")
	format := fs.String("format", "table", "output: table or json")
	fs.Usage = func() {
		fmt.Fprint(out, `usage: verdict backtest (--recording DIR | --predictions FILE --labels FILE --baseline V --candidate V) [flags]

Replays recorded shadow data (baseline and candidate scored every request) on
simulated event time and reports how the rollback gates would have done:

  judge    the decision of /v1/judge over its comparison period (since the
           candidate's first prediction, or VERDICT_JUDGE_SINCE; VERDICT_JUDGE_WINDOW
           for a sliding window), looked at every --every; the gate aborts after
           --failures failed looks; passes after --regression-start are false passes
  alarms   with --alarms, each alarm of the spec, evaluated with CloudWatch's
           semantics on the values the CloudWatch publisher would have sent

For each: when it first fired, the time to detect the regression that started at
--regression-start, and false alarms (before that start, or anywhere in a
recording without regression). The judge's thresholds come from VERDICT_JUDGE_*.

The replay moves from look to look (every publish interval with --alarms) over
the events of --from to --to, skips stretches in which the windows the gates
read are empty once every gate has settled on them, and stops once none is left
to fill them: labels that arrive weeks after a prediction has left the window
change nothing a gate reads. The report says where it stopped, how many labels
the gates could have seen, and what each look's window held. Progress goes to
stderr.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := rf.files(); err != nil {
		fs.Usage()
		return err
	}
	switch {
	case *format != "table" && *format != "json":
		return fmt.Errorf("--format %q: want table or json", *format)
	case *every <= 0:
		return fmt.Errorf("--every %s must be positive", *every)
	case *failures < 1:
		return fmt.Errorf("--failures %d must be at least 1", *failures)
	}
	env, err := loadReplayEnv(rf)
	if err != nil {
		return err
	}
	var (
		spec  *alarms.Spec
		built []alarms.Alarm
	)
	if *alarmsFile != "" {
		if spec, err = alarms.LoadSpec(*alarmsFile); err != nil {
			return err
		}
		if built, err = alarms.Build(spec); err != nil {
			return err
		}
	}
	rec, err := readRecording(env, rf)
	if err != nil {
		return err
	}
	if m := rec.meta; m != nil {
		if *baseline == "" {
			*baseline = m.Baseline
		}
		if *candidate == "" {
			*candidate = m.Candidate
		}
		if *regression == "" && m.Regression != nil {
			*regression = m.Regression.Start.Format(time.RFC3339)
			if !rf.quiet {
				fmt.Fprintf(os.Stderr, "regression start %s (%s=%s, recording.json)\n", *regression, m.Regression.SegmentKey, m.Regression.Segment)
			}
		}
	}
	if *baseline == "" || *candidate == "" {
		fs.Usage()
		return errors.New("--baseline and --candidate are required (a --recording's recording.json names them)")
	}
	if err := checkVariants(rec.Recording, *baseline, *candidate); err != nil {
		return err
	}
	bt := &rehearsal.Backtest{
		Baseline: *baseline, Candidate: *candidate, Window: rf.window, Every: *every,
		Judge:    judge.BacktestOptions{Config: env.judge, FailuresToAlarm: *failures},
		Interval: rf.interval, Join: env.join, Longest: env.longest, Rule: env.rule, From: rec.from, To: rec.to,
		ReplayProgress: replayProgress(rf.quiet, "backtest"),
	}
	if spec != nil {
		bt.Alarms = built
		bt.Publisher = rehearsal.PublisherFor(spec, *baseline, *candidate, rf.window)
		bt.Publisher.Judge = env.judge
	}
	if *regression != "" && *regression != "none" {
		if bt.Judge.RegressionStart, err = parseStart(*regression, rec.FirstPrediction()); err != nil {
			return fmt.Errorf("--regression-start: %w", err)
		}
	}
	began := time.Now()
	rep, err := bt.Run(ctx, rec.Recording)
	if err != nil {
		return err
	}
	if !rf.quiet {
		fmt.Fprintf(os.Stderr, "replayed to %s in %s (%d of %d ticks computed)\n", rep.To.Format(time.RFC3339),
			time.Since(began).Round(time.Millisecond), rep.Computed, rep.Ticks)
	}
	if *format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printBacktest(out, rep, *candidate, *baseline)
}

func printBacktest(out io.Writer, rep rehearsal.BacktestReport, candidate, baseline string) error {
	reg := "none (every alarm is false)"
	if rep.RegressionStart != nil {
		reg = rep.RegressionStart.Format(time.RFC3339)
	}
	fmt.Fprintf(out, "backtest of %s against %s, %s to %s; regression start: %s\n\n",
		candidate, baseline, rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339), reg)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "gate\tfirst fired\tdetected\ttime to detect\tfalse alarms\t")
	at := func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return t.Format(time.RFC3339)
	}
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	j := rep.Judge
	ttd := "-"
	if j.TimeToDetect != nil {
		ttd = j.TimeToDetect.String()
	}
	falses := 0
	if j.FalseAlarm {
		falses = 1
	}
	fmt.Fprintf(tw, "judge (%s, look every %s, abort after %d fails)\t%s\t%s\t%s\t%d (%d failed looks before the regression)\t\n",
		rep.JudgeRange, time.Duration(rep.Every), rep.FailuresToAlarm, at(j.AlarmAt), yes(j.Detected), ttd, falses, j.FalseFails)
	for _, a := range rep.Alarms {
		ttd := "-"
		if a.TimeToDetect != nil {
			ttd = time.Duration(*a.TimeToDetect).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t\n", a.Alarm, at(a.FirstAlarm), yes(a.Detected), ttd, a.FalseAlarms)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	first := "no look was decided"
	if j.FirstDecisionLook > 0 {
		first = fmt.Sprintf("look %d of %d was the first decided one", j.FirstDecisionLook, len(j.Looks))
	}
	fmt.Fprintf(out, "\njudge passes: first at %s; %d passing look(s) at or after the regression start (false passes); %s\n",
		at(j.FirstPassAt), j.FalsePasses, first)
	fmt.Fprintf(out, "judge error rates over looks: false fails %d of %d looks before the regression; false passes %d of %d looks from its start\n",
		j.FalseFails, j.LooksBefore, j.FalsePasses, j.LooksAfter)
	printEvidence(out, rep, candidate, baseline)
	return nil
}

// printEvidence says how much the replay computed and what the judge had to go
// on as time passed: the labeled positives in its range after an hour, a
// SageMaker shift's longest run (8h), a day, a week, and at the end.
func printEvidence(out io.Writer, rep rehearsal.BacktestReport, candidate, baseline string) {
	fmt.Fprintf(out, "\ncomputed %d of %d ticks: at the others nothing the gates read had changed (the last change at %s)\n",
		rep.Computed, rep.Ticks, rep.LastChange.Format(time.RFC3339))
	if len(rep.Seen) == 0 {
		return
	}
	type mark struct {
		name string
		at   time.Time
	}
	var marks []mark
	for _, m := range []struct {
		name string
		d    time.Duration
	}{{"1h", time.Hour}, {"8h", 8 * time.Hour}, {"1d", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}} {
		if at := rep.From.Add(m.d); at.Before(rep.To) {
			marks = append(marks, mark{"after " + m.name, at})
		}
	}
	marks = append(marks, mark{"at the end", rep.To})
	fmt.Fprintf(out, "labeled positives in the judge's range (%s):", rep.JudgeRange)
	for i, v := range []struct {
		name string
		of   func(rehearsal.Seen) rehearsal.WindowView
	}{
		{candidate, func(s rehearsal.Seen) rehearsal.WindowView { return s.Candidate }},
		{baseline, func(s rehearsal.Seen) rehearsal.WindowView { return s.Baseline }},
	} {
		var parts []string
		for _, m := range marks {
			// The last computed look at or before the mark: the looks after it
			// held the same.
			j := sort.Search(len(rep.Seen), func(k int) bool { return rep.Seen[k].At.After(m.at) }) - 1
			n := int64(0)
			if j >= 0 {
				n = v.of(rep.Seen[j]).LabeledPositives
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, m.name))
		}
		sep := ";"
		if i == 1 {
			sep = ""
		}
		fmt.Fprintf(out, " %s %s%s", v.name, strings.Join(parts, ", "), sep)
	}
	fmt.Fprintln(out)
}
