package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/rehearsal"
)

func runBacktest(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("backtest", flag.ContinueOnError)
	fs.SetOutput(out)
	rf := addReplayFlags(fs)
	baseline := fs.String("baseline", "", "verdict variant id of the baseline (production) model")
	candidate := fs.String("candidate", "", "verdict variant id of the candidate (shadow) model")
	every := fs.Duration("every", 5*time.Minute, "time between the judge's looks (a rollout gate's query interval)")
	failures := fs.Int("failures", 1, "failed looks that abort a rollout (Argo Rollouts failureLimit + 1, Flagger threshold); 1: the judge's fail is anytime-valid")
	regression := fs.String("regression-start", "", "when the candidate became worse in the recording: an RFC 3339 time or a duration after the first prediction (empty: the recording has no regression, every alarm is false)")
	alarmsFile := fs.String("alarms", "", "alarm spec (YAML): also evaluate its alarms on what the CloudWatch publisher would have sent")
	format := fs.String("format", "table", "output: table or json")
	fs.Usage = func() {
		fmt.Fprint(out, `usage: verdict backtest --predictions FILE --labels FILE --baseline V --candidate V [flags]

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

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if rf.predictions == "" || rf.labels == "" || *baseline == "" || *candidate == "" {
		fs.Usage()
		return errors.New("--predictions, --labels, --baseline and --candidate are required")
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
	bt := &rehearsal.Backtest{
		Baseline: *baseline, Candidate: *candidate, Window: rf.window, Every: *every,
		Judge:    judge.BacktestOptions{Config: env.judge, FailuresToAlarm: *failures},
		Interval: rf.interval, Join: env.join, Longest: env.longest, Rule: env.rule,
	}
	if *alarmsFile != "" {
		spec, err := alarms.LoadSpec(*alarmsFile)
		if err != nil {
			return err
		}
		if bt.Alarms, err = alarms.Build(spec); err != nil {
			return err
		}
		bt.Publisher = rehearsal.PublisherFor(spec, *baseline, *candidate, rf.window)
		if bt.PublisherJudge, err = cloudwatch.NewJudge(env.judge); err != nil {
			return err
		}
	}
	rec, err := readRecording(env, rf, out)
	if err != nil {
		return err
	}
	if err := checkVariants(rec, *baseline, *candidate); err != nil {
		return err
	}
	if *regression != "" {
		if bt.Judge.RegressionStart, err = parseStart(*regression, rec.FirstPrediction()); err != nil {
			return fmt.Errorf("--regression-start: %w", err)
		}
	}
	if !rf.quiet {
		bt.Progress = func(at time.Time) {
			if at.Minute() == 0 && at.Second() == 0 {
				fmt.Fprintf(os.Stderr, "replayed to %s\n", at.Format(time.RFC3339))
			}
		}
	}
	rep, err := bt.Run(ctx, rec)
	if err != nil {
		return err
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
	_, err := fmt.Fprintf(out, "\njudge passes: first at %s; %d passing look(s) at or after the regression start (false passes); %s\n",
		at(j.FirstPassAt), j.FalsePasses, first)
	return err
}
