// Command verdict turns delayed ground truth into rollback signals for ML model
// rollouts. Run `verdict help` for the subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand. run parses its own flags from args and writes
// human-facing output to out; logs go to stderr through slog.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, out io.Writer) error
}

// commands is the whole CLI surface. Each entry lives in its own file.
func commands() map[string]command {
	return map[string]command{
		"version":  {"print the version", runVersion},
		"serve":    {"run verdict on the embedded default (HTTP ingest, query API, /metrics)", runServe},
		"demo":     {"run verdict with synthetic production + shadow traffic (start here)", runDemo},
		"config":   {"print the configuration reference (VERDICT_* variables)", runConfig},
		"replay":   {"replay recorded predictions and labels (files or stdin) into the embedded store", runReplay},
		"bench":    {"measure throughput, label-to-visible latency and memory of the embedded path", runBench},
		"alarms":   {"plan, apply, export and evaluate rollback alarms", runAlarms},
		"report":   {"shadow comparison report (table, JSON, CSV, HTML) from a running verdict", runReport},
		"deploy":   {"plan, apply and watch SageMaker shadow and blue/green rollouts", runDeploy},
		"rehearse": {"rehearse a rollout: replay recorded events through a simulated traffic shift with the rollback alarms", runRehearse},
		"backtest": {"replay recorded shadow data through the judge and the alarms: time to detect, false alarms", runBacktest},
		"dataset":  {"write a recorded dataset (predictions, labels) from the demo's generator on simulated time", runDataset},
		"loadtest": {"replay captured requests against the candidate at a scheduled rate (open loop): latency, errors, SLO verdict", runLoadtest},
	}
}

// subcommand is one command of a group such as `verdict alarms` or `verdict
// deploy`: like a command, it parses its own flags (and answers -help) and runs.
type subcommand struct {
	name    string
	summary string // its line(s) in the group's usage
	run     func(ctx context.Context, args []string, out io.Writer) error
}

// commandGroup is a command made of subcommands, listed in its usage in order.
type commandGroup struct {
	name string
	// intro is the usage above the list of subcommands, outro below it.
	intro, outro string
	// column is where the summaries start in the list.
	column int
	subs   []subcommand
}

// usage writes the group's usage: intro, one entry a subcommand, outro.
func (g commandGroup) usage(out io.Writer) {
	fmt.Fprint(out, g.intro)
	for _, c := range g.subs {
		lines := strings.Split(c.summary, "\n")
		fmt.Fprintf(out, "  %-*s%s\n", g.column-2, c.name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(out, "%*s%s\n", g.column, "", l)
		}
	}
	fmt.Fprint(out, g.outro)
}

// run runs the subcommand args[0] names with the rest of args.
func (g commandGroup) run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		g.usage(out)
		if len(args) == 0 {
			return fmt.Errorf("missing %s command", g.name)
		}
		return flag.ErrHelp
	}
	for _, c := range g.subs {
		if c.name == args[0] {
			return c.run(ctx, args[1:], out)
		}
	}
	g.usage(out)
	return fmt.Errorf("unknown %s command %q", g.name, args[0])
}

var version = "dev"

func runVersion(_ context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { fmt.Fprintln(out, "usage: verdict version\n\nPrints the version of this binary.") }
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, err := fmt.Fprintln(out, "verdict", version)
	return err
}

func runConfig(_ context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(out)
	check := fs.Bool("check", false, "validate the current environment's settings instead of printing the table")
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: verdict config [--check]\n\nPrints every VERDICT_* variable with its default and meaning, as a Markdown table.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *check {
		if _, err := loadConfig(); err != nil {
			return err
		}
		_, err := fmt.Fprintln(out, "configuration ok")
		return err
	}
	return printConfigTable(out)
}

func usage(out io.Writer) {
	fmt.Fprintln(out, "verdict turns delayed ground truth into rollback signals for ML model rollouts.")
	fmt.Fprintln(out, "\nusage: verdict <command> [flags]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(out, "  %-16s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(out, "\nRun `verdict <command> --help` for a command's flags. Configuration comes from")
	fmt.Fprintln(out, "VERDICT_* environment variables; see README.md.")
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "verdict: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, args[1:], stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "verdict %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
