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

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/verdictml/verdict/alarms"
)

func runAlarms(ctx context.Context, args []string, out io.Writer) error {
	return alarmsCommands().run(ctx, args, out)
}

// alarmsCommands are the alarms subcommands, each with its own flags.
func alarmsCommands() commandGroup {
	return commandGroup{
		name: "alarms",
		intro: `usage: verdict alarms <plan|apply|export|status> -spec FILE [flags]

Turns a reviewed alarm spec (YAML, see docs/alarms.md) into the CloudWatch
alarms a SageMaker rollout rolls back on.

`,
		outro: `
Run "verdict alarms <command> -help" for a command's flags.
`,
		column: 11,
		subs: []subcommand{
			{"plan", "show what apply would create, update or delete (DescribeAlarms)", runAlarmsPlan},
			{"apply", "make CloudWatch match the spec; idempotent, touches only alarms\n" +
				"tagged as this spec's alarm set", runAlarmsApply},
			{"export", "print the alarms as CloudFormation (YAML) or PutMetricAlarm JSON", runAlarmsExport},
			{"status", "read each alarm's state, reason and timestamp from CloudWatch\n" +
				"(DescribeAlarms; only this set's verdict-tagged alarms), or with\n" +
				"-metrics evaluate the alarms locally, with CloudWatch's semantics,\n" +
				"over a recorded metric history (JSON lines) and say why", runAlarmsStatus},
		},
	}
}

// alarmsFlags are the flags of every alarms command: the spec and CloudWatch's
// endpoint.
type alarmsFlags struct {
	*flag.FlagSet
	spec, endpointURL string
}

func newAlarmsFlags(sub string, out io.Writer) *alarmsFlags {
	f := &alarmsFlags{FlagSet: flag.NewFlagSet("alarms "+sub, flag.ContinueOnError)}
	f.SetOutput(out)
	f.StringVar(&f.spec, "spec", "", "alarm spec file (YAML); required")
	f.StringVar(&f.endpointURL, "endpoint-url", "", "CloudWatch endpoint URL (e.g. a local emulator); default from the AWS environment")
	f.Usage = func() {
		fmt.Fprintf(out, "usage: verdict alarms %s -spec FILE [flags]\n\nflags:\n", sub)
		f.PrintDefaults()
	}
	return f
}

// load parses args and loads the spec.
func (f *alarmsFlags) load(args []string) (*alarms.Spec, error) {
	if err := f.Parse(args); err != nil {
		return nil, err
	}
	if f.spec == "" {
		f.Usage()
		return nil, errors.New("-spec is required")
	}
	return alarms.LoadSpec(f.spec)
}

// cloudWatch is the CloudWatch client, at -endpoint-url when it is set.
func (f *alarmsFlags) cloudWatch(ctx context.Context) (*cloudwatch.Client, error) {
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return nil, err
	}
	return cloudWatchClient(awsCfg, f.endpointURL), nil
}

func runAlarmsPlan(ctx context.Context, args []string, out io.Writer) error {
	_, _, _, err := alarmsPlan(ctx, newAlarmsFlags("plan", out), args, out)
	return err
}

// alarmsPlan loads the spec, compares it with CloudWatch and writes the plan.
func alarmsPlan(ctx context.Context, f *alarmsFlags, args []string, out io.Writer) (*alarms.Spec, *cloudwatch.Client, *alarms.Plan, error) {
	spec, err := f.load(args)
	if err != nil {
		return nil, nil, nil, err
	}
	cw, err := f.cloudWatch(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	plan, err := alarms.MakePlan(ctx, cw, spec)
	if err != nil {
		return nil, nil, nil, err
	}
	return spec, cw, plan, plan.Write(out)
}

func runAlarmsApply(ctx context.Context, args []string, out io.Writer) error {
	spec, cw, plan, err := alarmsPlan(ctx, newAlarmsFlags("apply", out), args, out)
	if err != nil {
		return err
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

func runAlarmsExport(_ context.Context, args []string, out io.Writer) error {
	f := newAlarmsFlags("export", out)
	format := f.String("format", alarms.FormatCloudFormation, "output format: cloudformation (YAML template) or json (PutMetricAlarm inputs)")
	spec, err := f.load(args)
	if err != nil {
		return err
	}
	defs, err := alarms.Build(spec)
	if err != nil {
		return err
	}
	return alarms.Export(out, spec, defs, *format)
}

func runAlarmsStatus(ctx context.Context, args []string, out io.Writer) error {
	f := newAlarmsFlags("status", out)
	metrics := f.String("metrics", "", "evaluate locally over this metric history, JSON lines of {time, namespace, metric, dimensions, value}; default: read the states from CloudWatch")
	at := f.String("at", "", "evaluate at this RFC 3339 time; default: the last sample's period end, else now")
	spec, err := f.load(args)
	if err != nil {
		return err
	}
	if *metrics != "" {
		return alarmsStatus(ctx, out, spec, *metrics, *at)
	}
	if *at != "" {
		return errors.New("-at needs -metrics: CloudWatch reports the states as they are now")
	}
	cw, err := f.cloudWatch(ctx)
	if err != nil {
		return err
	}
	states, err := alarms.LiveStatus(ctx, cw, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "alarm set %s (prefix %q) in CloudWatch:\n\n", spec.Name, spec.AlarmNamePrefix)
	return alarms.WriteLiveStatus(out, states)
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
