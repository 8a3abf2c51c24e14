package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/verdictml/verdict/api"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/report"
)

const reportUsage = `usage: verdict report shadow --baseline VARIANT --candidate VARIANT [flags]

Reports how a candidate (e.g. the shadow variant) compares with the baseline
(production) on a running verdict: per segment, the predictions and labels of
each variant, mean score, score divergence (PSI), flag rates, precision and
recall with 95 % Wilson intervals, the Holm-adjusted significance of each drop,
and the judge's decision, sorted by how far the candidate diverges.

It reads GET /v1/compare; see docs/decisions.md for how decisions are made.
`

func runReport(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(out, reportUsage)
		fmt.Fprintln(out, "\nRun \"verdict report shadow --help\" for its flags.")
		if len(args) == 0 {
			return errors.New("missing report name (shadow)")
		}
		return flag.ErrHelp
	}
	if args[0] != "shadow" {
		return fmt.Errorf("unknown report %q: want shadow", args[0])
	}
	return runShadowReport(ctx, args[1:], out)
}

func runShadowReport(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("report shadow", flag.ContinueOnError)
	fs.SetOutput(out)
	server := fs.String("server", "http://127.0.0.1:8080", "base URL of the running verdict")
	token := fs.String("token", "", "API bearer token (default $VERDICT_API_TOKEN)")
	baseline := fs.String("baseline", "", "baseline variant, e.g. the production model v5; required")
	candidate := fs.String("candidate", "", "candidate variant, e.g. the shadow model v6; required")
	window := fs.String("window", "period", "period (the comparison period since the candidate's first prediction, as the judge's gates read it), or a sliding window of prediction time: 1h, 24h, 7d, ... or all")
	since := fs.String("since", "", "start of the comparison period, RFC 3339 (e.g. the shadow stage's start); replaces --window")
	sortBy := fs.String("sort", judge.SortDivergence, "segment order: "+strings.Join(judge.SortOrders(), ", "))
	format := fs.String("format", report.FormatTable, "output: "+strings.Join(report.Formats(), ", ")+" (html is one self-contained page with charts)")
	outPath := fs.String("out", "", "write the report to this file instead of standard output")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on the server after this long")
	fs.Usage = func() {
		fmt.Fprint(out, reportUsage)
		fmt.Fprintln(out, "\nexamples:\n  verdict report shadow --baseline v5 --candidate v6\n  verdict report shadow --baseline v5 --candidate v6 --window 24h --format html --out shadow.html")
		fmt.Fprintln(out, "\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	case *baseline == "":
		return errors.New("--baseline is required")
	case *candidate == "":
		return errors.New("--candidate is required")
	case !slices.Contains(report.Formats(), *format):
		return fmt.Errorf("--format %q: want one of %s", *format, strings.Join(report.Formats(), ", "))
	case *since != "" && *window != "period":
		return errors.New("--since starts a comparison period; it cannot be combined with a sliding --window")
	case !slices.Contains(judge.SortOrders(), *sortBy):
		return fmt.Errorf("--sort %q: want one of %s", *sortBy, strings.Join(judge.SortOrders(), ", "))
	}
	if *token == "" {
		*token = os.Getenv("VERDICT_API_TOKEN")
	}
	if *since != "" {
		*window = ""
	}
	rep, raw, err := api.FetchReport(ctx, &http.Client{Timeout: *timeout}, api.CompareRequest{
		Server: *server, Token: *token, Baseline: *baseline, Candidate: *candidate, Window: *window, Sort: *sortBy, Since: *since,
	})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if *format == report.FormatJSON {
		// The server's JSON as sent, so fields newer than this binary survive.
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return fmt.Errorf("server's report: %w", err)
		}
		buf.WriteByte('\n')
	} else if err := report.Write(&buf, rep, *format); err != nil {
		return err
	}
	if *outPath == "" {
		_, err = out.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(*outPath, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	_, err = fmt.Fprintf(out, "wrote %s report (%s vs %s, window %s, decision %s) to %s\n", *format, rep.Candidate, rep.Baseline, rep.Window, rep.Decision, *outPath)
	return err
}
