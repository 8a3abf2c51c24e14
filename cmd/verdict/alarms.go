package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/verdictml/verdict/alarms"
)

const alarmsUsage = `usage: verdict alarms <plan|apply|export|status> -spec FILE [flags]

Turns a reviewed alarm spec (YAML, see docs/alarms.md) into the CloudWatch
alarms a SageMaker rollout rolls back on.

  plan     show what apply would create, update or delete (DescribeAlarms)
  apply    make CloudWatch match the spec; idempotent, touches only alarms
           tagged as this spec's alarm set
  export   print the alarms as CloudFormation (YAML) or PutMetricAlarm JSON
  status   read each alarm's state, reason and timestamp from CloudWatch
           (DescribeAlarms; only this set's verdict-tagged alarms), or with
           -metrics evaluate the alarms locally, with CloudWatch's semantics,
           over a recorded metric history (JSON lines) and say why

Run "verdict alarms <command> -help" for a command's flags.
`

func runAlarms(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(out, alarmsUsage)
		if len(args) == 0 {
			return errors.New("missing alarms command")
		}
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("alarms "+sub, flag.ContinueOnError)
	fs.SetOutput(out)
	specPath := fs.String("spec", "", "alarm spec file (YAML); required")
	endpointURL := fs.String("endpoint-url", "", "CloudWatch endpoint URL (e.g. a local emulator); default from the AWS environment")
	var (
		format  *string
		metrics *string
		at      *string
	)
	switch sub {
	case "plan", "apply":
	case "export":
		format = fs.String("format", alarms.FormatCloudFormation, "output format: cloudformation (YAML template) or json (PutMetricAlarm inputs)")
	case "status":
		metrics = fs.String("metrics", "", "evaluate locally over this metric history, JSON lines of {time, namespace, metric, dimensions, value}; default: read the states from CloudWatch")
		at = fs.String("at", "", "evaluate at this RFC 3339 time; default: the last sample's period end, else now")
	default:
		fmt.Fprint(out, alarmsUsage)
		return fmt.Errorf("unknown alarms command %q", sub)
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: verdict alarms %s -spec FILE [flags]\n\nflags:\n", sub)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *specPath == "" {
		fs.Usage()
		return errors.New("-spec is required")
	}
	spec, err := alarms.LoadSpec(*specPath)
	if err != nil {
		return err
	}
	switch sub {
	case "export":
		defs, err := alarms.Build(spec)
		if err != nil {
			return err
		}
		return alarms.Export(out, spec, defs, *format)
	case "status":
		if *metrics != "" {
			return alarmsStatus(ctx, out, spec, *metrics, *at)
		}
		if *at != "" {
			return errors.New("-at needs -metrics: CloudWatch reports the states as they are now")
		}
	}
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return err
	}
	cw := cloudWatchClient(awsCfg, *endpointURL)
	if sub == "status" {
		states, err := alarms.LiveStatus(ctx, cw, spec)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "alarm set %s (prefix %q) in CloudWatch:\n\n", spec.Name, spec.AlarmNamePrefix)
		return alarms.WriteLiveStatus(out, states)
	}
	plan, err := alarms.MakePlan(ctx, cw, spec)
	if err != nil {
		return err
	}
	if err := plan.Write(out); err != nil {
		return err
	}
	if sub == "plan" {
		return nil
	}
	if !plan.HasChanges() && plan.Count(alarms.ActionConflict) == 0 {
		fmt.Fprintln(out, "\nnothing to do")
		return nil
	}
	if err := alarms.Apply(ctx, cw, plan); err != nil {
		return err
	}
	slog.InfoContext(ctx, "alarms applied", "set", spec.Name,
		"created", plan.Count(alarms.ActionCreate), "updated", plan.Count(alarms.ActionUpdate), "deleted", plan.Count(alarms.ActionDelete))
	fmt.Fprintln(out, "\napplied")
	return nil
}

func alarmsStatus(ctx context.Context, out io.Writer, spec *alarms.Spec, metricsPath, atFlag string) error {
	if metricsPath == "" {
		return errors.New("-metrics is required")
	}
	f, err := os.Open(metricsPath)
	if err != nil {
		return fmt.Errorf("open metric history: %w", err)
	}
	defer f.Close()
	history, err := alarms.ReadSamples(f)
	if err != nil {
		return err
	}
	last := history.Last()
	at := time.Now()
	switch {
	case atFlag != "":
		if at, err = time.Parse(time.RFC3339, atFlag); err != nil {
			return fmt.Errorf("-at %q: %w", atFlag, err)
		}
	case !last.IsZero():
		at = last.Truncate(spec.Evaluation.Period).Add(spec.Evaluation.Period)
	}
	defs, err := alarms.Build(spec)
	if err != nil {
		return err
	}
	ev := &alarms.Evaluator{Source: history}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "evaluated at %s\n\nALARM\tSTATE\tDATAPOINTS (oldest first)\tWHY\n", at.UTC().Format(time.RFC3339))
	for _, a := range defs {
		// Without a recorded previous state, assume the alarm was OK.
		j, err := ev.Evaluate(ctx, a, at, alarms.StateOK)
		if err != nil {
			return err
		}
		var pts []string
		for _, p := range j.Points {
			switch {
			case !p.Present:
				pts = append(pts, "-")
			case p.Breaching:
				pts = append(pts, fmt.Sprintf("%.4g!", p.Value))
			default:
				pts = append(pts, fmt.Sprintf("%.4g", p.Value))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.AlarmName, j.State, strings.Join(pts, " "), j.Reason)
	}
	fmt.Fprintln(tw, "\n(! = breaching, - = missing: no data, or the minimum-n guard withheld judgement)")
	return tw.Flush()
}
