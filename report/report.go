// Package report renders a shadow comparison (judge.Report, what GET /v1/compare
// answers) for people: a terminal table, JSON, CSV, or one self-contained HTML page
// with inline SVG charts. verdict report shadow prints it.
package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/verdictml/verdict/internal/numfmt"
	"github.com/verdictml/verdict/judge"
)

// Output formats.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatCSV   = "csv"
	FormatHTML  = "html"
)

// Formats lists the accepted formats.
func Formats() []string { return []string{FormatTable, FormatJSON, FormatCSV, FormatHTML} }

// Write renders rep to w as a terminal table, JSON, CSV or a self-contained HTML
// page with inline SVG charts (no external assets or scripts).
func Write(w io.Writer, rep judge.Report, format string) error {
	var err error
	switch format {
	case FormatTable:
		err = writeTable(w, rep)
	case FormatJSON:
		var b []byte
		if b, err = json.MarshalIndent(rep, "", "  "); err == nil {
			_, err = w.Write(append(b, '\n'))
		}
	case FormatCSV:
		err = writeCSV(w, rep)
	case FormatHTML:
		err = writeHTML(w, rep)
	default:
		return fmt.Errorf("format %q: want one of %s", format, strings.Join(Formats(), ", "))
	}
	if err != nil {
		return fmt.Errorf("write %s report: %w", format, err)
	}
	return nil
}

// rows are the report's overall row, then its segments.
func rows(r judge.Report) []judge.ReportRow {
	return append([]judge.ReportRow{r.Overall}, r.Segments...)
}

// notEstimable reports whether any row shows a precision that is not estimable.
func notEstimable(r judge.Report) bool {
	for _, x := range rows(r) {
		for _, v := range []judge.VariantSummary{x.Baseline, x.Candidate} {
			if v.Precision == nil && v.PrecisionBounds != nil {
				return true
			}
		}
	}
	return false
}

// precisionOf is a variant's precision, or "n/e" while it is not estimable from the
// labels so far (too few flagged predictions resolved).
func precisionOf(v judge.VariantSummary) string {
	if v.Precision == nil && v.PrecisionBounds != nil {
		return "n/e"
	}
	return numfmt.Num(v.Precision, 3)
}

func precisionPair(b, c judge.VariantSummary) string {
	return precisionOf(b) + " → " + precisionOf(c)
}

// disagreement is a paired scope's discordance: the rate and how many only each
// model flagged.
func disagreement(d *judge.Discordance) string {
	if d == nil || d.Rate == nil {
		return "—"
	}
	s := fmt.Sprintf("%.1f%% (%d / %d)", 100**d.Rate, d.OnlyBaseline, d.OnlyCandidate)
	if d.Level == judge.LevelWarn {
		s += " warn"
	}
	return s
}

func heading(r judge.Report) string {
	span := r.Window
	if r.WindowStart != nil {
		span += fmt.Sprintf(", %s to %s", r.WindowStart.UTC().Format(time.RFC3339), r.WindowEnd.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("shadow comparison: candidate %s against baseline %s, window %s, sorted by %s", r.Candidate, r.Baseline, span, r.Sort)
}

func writeTable(w io.Writer, r judge.Report) error {
	fmt.Fprintln(w, heading(r))
	fmt.Fprintf(w, "decision: %s: %s\n\n", strings.ToUpper(string(r.Decision)), r.Reason)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEGMENT\tPREDICTIONS\tLABELED\tMEAN SCORE\tPSI\tFLAG RATE\tDISAGREE (ONLY B / ONLY C)\tPRECISION\tRECALL\tΔ RECALL (p)\tΔ PRECISION (p)\tDECISION")
	for _, x := range rows(r) {
		psi := numfmt.Num(x.PSI, 3)
		if x.PSILevel == judge.LevelWarn || x.PSILevel == judge.LevelAlert {
			psi += " " + string(x.PSILevel)
		}
		fmt.Fprintf(tw, "%s\t%d / %d\t%d / %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s (%s)\t%s (%s)\t%s\n",
			x.Scope, x.Baseline.Predictions, x.Candidate.Predictions, x.Baseline.Resolved, x.Candidate.Resolved,
			numfmt.Pair(x.Baseline.MeanScore, x.Candidate.MeanScore, 3), psi,
			numfmt.Pair(x.Baseline.FlagRate, x.Candidate.FlagRate, 4), disagreement(x.Discordance),
			precisionPair(x.Baseline, x.Candidate), numfmt.Pair(x.Baseline.Recall, x.Candidate.Recall, 3),
			numfmt.Signed(x.RecallDelta), numfmt.PValue(x.RecallPValue), numfmt.Signed(x.PrecisionDelta), numfmt.PValue(x.PrecisionPValue), x.Decision)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if notEstimable(r) {
		fmt.Fprintln(w, "\nn/e: precision not estimable yet: too few of the flagged predictions are labeled or matured, and the early labels are mostly positives (/v1/metrics gives its bounds)")
	}
	fmt.Fprintf(w, "\nvalues are baseline → candidate; p: always-valid p-value that the candidate is worse, over its share of α %g; pass: shown within tolerance %g recall / %g precision overall, %g / %g in segments (β %g)\n",
		r.Method.Alpha, r.Method.RecallTolerance, r.Method.PrecisionTolerance, r.Method.SegmentRecallTolerance, r.Method.SegmentPrecisionTolerance, r.Method.Beta)
	for _, warn := range r.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	return nil
}

var csvHeader = []string{"scope", "segment_key", "segment",
	"baseline_predictions", "candidate_predictions", "baseline_resolved", "candidate_resolved",
	"baseline_mean_score", "candidate_mean_score", "mean_score_delta", "psi", "psi_level",
	"baseline_flag_rate", "candidate_flag_rate", "flag_rate_delta", "flag_rate_p_value",
	"baseline_precision", "candidate_precision", "precision_delta", "precision_p_value",
	"baseline_recall", "candidate_recall", "recall_delta", "recall_p_value", "decision", "reason"}

func writeCSV(w io.Writer, r judge.Report) error {
	f := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, x := range rows(r) {
		rec := []string{x.Scope.String(), x.SegmentKey, x.Segment,
			i(x.Baseline.Predictions), i(x.Candidate.Predictions), i(x.Baseline.Resolved), i(x.Candidate.Resolved),
			f(x.Baseline.MeanScore), f(x.Candidate.MeanScore), f(x.MeanScoreDelta), f(x.PSI), string(x.PSILevel),
			f(x.Baseline.FlagRate), f(x.Candidate.FlagRate), f(x.FlagRateDelta), f(x.FlagRatePValue),
			f(x.Baseline.Precision), f(x.Candidate.Precision), f(x.PrecisionDelta), f(x.PrecisionPValue),
			f(x.Baseline.Recall), f(x.Candidate.Recall), f(x.RecallDelta), f(x.RecallPValue), string(x.Decision), x.Reason}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Chart geometry, computed here so the template only places shapes.
const (
	chartWidth = 760.0
	labelWidth = 210.0
	plotWidth  = chartWidth - labelWidth - 20
	rowHeight  = 26.0
	chartTop   = 24.0
)

type mark struct {
	Has       bool
	X, X1, X2 float64
	Title     string
}

type dotRow struct {
	Label      string
	Y          float64
	Base, Cand mark
	Fail       bool
}

type tick struct {
	X     float64
	Label string
}

type dotChart struct {
	Title  string
	Height float64
	Rows   []dotRow
	Ticks  []tick
}

type barRow struct {
	Label string
	Y     float64
	Width float64
	Value string
	Level judge.Level
}

type psiChart struct {
	Height      float64
	Rows        []barRow
	Warn, Alert tick
	Ticks       []tick
}

type histBar struct{ X, Y, H, W float64 }

type histogram struct {
	Label      string
	Base, Cand []histBar
	PSI        string
}

type htmlPage struct {
	Title, Heading string
	Report         judge.Report
	Generated      string
	Rows           []judge.ReportRow
	Recall         dotChart
	Precision      dotChart
	PSI            psiChart
	Histograms     []histogram
}

func xOf(v, max float64) float64 { return labelWidth + plotWidth*math.Min(math.Max(v/max, 0), 1) }

func unitTicks() []tick {
	var t []tick
	for v := 0.0; v <= 1.0001; v += 0.25 {
		t = append(t, tick{X: xOf(v, 1), Label: strconv.FormatFloat(v, 'f', 2, 64)})
	}
	return t
}

func dotChartOf(title string, rows []judge.ReportRow, pick func(judge.VariantSummary) (*float64, judge.Interval), failed func(judge.ReportRow) bool) dotChart {
	c := dotChart{Title: title, Ticks: unitTicks(), Height: chartTop + rowHeight*float64(len(rows)) + 24}
	for i, x := range rows {
		r := dotRow{Label: x.Scope.String(), Y: chartTop + rowHeight*float64(i) + rowHeight/2, Fail: failed(x)}
		for _, side := range []struct {
			m    *mark
			v    judge.VariantSummary
			name string
		}{{&r.Base, x.Baseline, "baseline"}, {&r.Cand, x.Candidate, "candidate"}} {
			if p, ci := pick(side.v); p != nil {
				*side.m = mark{Has: true, X: xOf(*p, 1), X1: xOf(ci.Lower, 1), X2: xOf(ci.Upper, 1),
					Title: fmt.Sprintf("%s %s %.3f (95%% CI %.3f–%.3f)", side.name, title, *p, ci.Lower, ci.Upper)}
			}
		}
		c.Rows = append(c.Rows, r)
	}
	return c
}

func psiChartOf(rows []judge.ReportRow, m judge.Method) psiChart {
	top := math.Max(m.PSIAlert*1.2, 0.3)
	for _, x := range rows {
		if x.PSI != nil {
			top = math.Max(top, *x.PSI*1.05)
		}
	}
	top = math.Ceil(top*10) / 10
	var ticks []tick
	step := math.Max(0.1, math.Ceil(top/5*10)/10)
	for v := 0.0; v <= top+1e-9; v += step {
		ticks = append(ticks, tick{X: xOf(v, top), Label: strconv.FormatFloat(v, 'f', 1, 64)})
	}
	c := psiChart{Height: chartTop + rowHeight*float64(len(rows)) + 24, Ticks: ticks,
		Warn:  tick{X: xOf(m.PSIWarn, top), Label: fmt.Sprintf("warn %g", m.PSIWarn)},
		Alert: tick{X: xOf(m.PSIAlert, top), Label: fmt.Sprintf("alert %g", m.PSIAlert)}}
	for i, x := range rows {
		b := barRow{Label: x.Scope.String(), Y: chartTop + rowHeight*float64(i) + 5, Value: numfmt.Num(x.PSI, 3), Level: x.PSILevel}
		if x.PSI != nil {
			b.Width = xOf(*x.PSI, top) - labelWidth
		}
		c.Rows = append(c.Rows, b)
	}
	return c
}

func histogramOf(x judge.ReportRow) histogram {
	const w, h, gap = 200.0, 80.0, 2.0
	top := 0.0
	for i := range x.Baseline.ScoreHistogram {
		top = math.Max(top, math.Max(x.Baseline.ScoreHistogram[i], x.Candidate.ScoreHistogram[i]))
	}
	if top == 0 {
		top = 1
	}
	hg := histogram{Label: x.Scope.String(), PSI: numfmt.Num(x.PSI, 3)}
	bin := w / float64(len(x.Baseline.ScoreHistogram))
	for i := range x.Baseline.ScoreHistogram {
		for _, side := range []struct {
			bars  *[]histBar
			share float64
			off   float64
		}{{&hg.Base, x.Baseline.ScoreHistogram[i], 0}, {&hg.Cand, x.Candidate.ScoreHistogram[i], bin / 2}} {
			bh := h * side.share / top
			*side.bars = append(*side.bars, histBar{X: float64(i)*bin + side.off + gap/2, Y: h - bh, H: bh, W: bin/2 - gap})
		}
	}
	return hg
}

func writeHTML(w io.Writer, r judge.Report) error {
	rs := rows(r)
	page := htmlPage{
		Title:   fmt.Sprintf("verdict shadow report: %s vs %s (%s)", r.Candidate, r.Baseline, r.Window),
		Heading: heading(r), Report: r, Rows: rs, Generated: r.WindowEnd.UTC().Format(time.RFC3339),
		Recall: dotChartOf("recall", rs, func(v judge.VariantSummary) (*float64, judge.Interval) { return v.Recall, v.RecallCI },
			func(x judge.ReportRow) bool {
				return x.Decision == judge.Fail && x.RecallDelta != nil && strings.Contains(x.Reason, "recall")
			}),
		Precision: dotChartOf("precision", rs, func(v judge.VariantSummary) (*float64, judge.Interval) { return v.Precision, v.PrecisionCI },
			func(x judge.ReportRow) bool {
				return x.Decision == judge.Fail && x.PrecisionDelta != nil && strings.Contains(x.Reason, "precision")
			}),
		PSI: psiChartOf(rs, r.Method),
	}
	for _, x := range rs {
		page.Histograms = append(page.Histograms, histogramOf(x))
	}
	t, err := template.New("report").Funcs(template.FuncMap{
		"num": numfmt.Num, "pval": numfmt.PValue, "signed": numfmt.Signed, "pair": numfmt.Pair, "upper": strings.ToUpper, "precisionPair": precisionPair,
		"disagreement": disagreement,
	}).Parse(reportHTML)
	if err != nil {
		return err
	}
	return t.Execute(w, page)
}

const reportHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111827;background:#fff;margin:2rem auto;max-width:1180px;padding:0 1rem}
h1{font-size:1.35rem;margin:0 0 .3rem}h2{font-size:1.05rem;margin:2rem 0 .5rem}
.meta{color:#374151}.decision{display:inline-block;padding:.15rem .55rem;border-radius:4px;font-weight:600;color:#fff}
.decision.pass{background:#15803d}.decision.fail{background:#b91c1c}.decision.inconclusive{background:#92400e}
.table-scroll{overflow-x:auto;max-width:100%;border:1px solid #e5e7eb;border-radius:4px}
.table-scroll:focus{outline:2px solid #1d4ed8;outline-offset:2px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums;font-size:13px}
th,td{padding:.3rem .45rem;border-bottom:1px solid #e5e7eb;text-align:right;vertical-align:top}
td.num{white-space:nowrap}th{white-space:normal;background:#f9fafb;color:#111827;font-weight:600}
th:first-child,td:first-child{text-align:left;position:sticky;left:0}td:first-child{background:inherit}
tbody tr{background:#fff}tbody tr.row-fail{background:#fef2f2}tbody tr.row-inconclusive{background:#fffbeb}tbody tr.row-pass{background:#f0fdf4}
td.reason{text-align:left;color:#1f2937;font-size:12px;white-space:normal;overflow-wrap:anywhere;border-bottom:2px solid #d1d5db}
td.decision-cell{font-weight:600}tr.row-fail td.decision-cell{color:#991b1b}tr.row-inconclusive td.decision-cell{color:#78350f}tr.row-pass td.decision-cell{color:#166534}
svg{max-width:100%;height:auto}svg text{font:12px system-ui,sans-serif;fill:#374151}.legend span{margin-right:1.2rem}.sw{display:inline-block;width:10px;height:10px;margin-right:4px}
.hists{display:flex;flex-wrap:wrap;gap:1rem}.hists figure{margin:0}.hists figcaption{font-size:12px;color:#374151}
ul.warnings{color:#78350f}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
</style>
</head>
<body>
<h1>{{.Heading}}</h1>
<p><span class="decision {{.Report.Decision}}">{{upper (print .Report.Decision)}}</span> {{.Report.Reason}}</p>
<p class="meta">Window end {{.Generated}}. Values are baseline → candidate. p-values are always-valid (they stay valid however often the report is refreshed) for "the candidate is worse", adjusted for each test's share of α {{.Report.Method.Alpha}}; a metric fails when the candidate is shown worse, and passes once it is shown worse by less than {{.Report.Method.RecallTolerance}} (recall) / {{.Report.Method.PrecisionTolerance}} (precision) overall, {{.Report.Method.SegmentRecallTolerance}} / {{.Report.Method.SegmentPrecisionTolerance}} in segments (β {{.Report.Method.Beta}}).</p>
{{with .Report.Warnings}}<ul class="warnings">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p class="legend"><span><i class="sw" style="background:#6b7280"></i>baseline {{.Report.Baseline}}</span><span><i class="sw" style="background:#2563eb"></i>candidate {{.Report.Candidate}}</span><span><i class="sw" style="background:#dc2626"></i>candidate, failing</span></p>

{{define "dots"}}<svg role="img" aria-label="{{.Title}} by segment with 95% Wilson intervals" width="760" height="{{printf "%.0f" .Height}}" viewBox="0 0 760 {{printf "%.0f" .Height}}">
{{range .Ticks}}<line x1="{{printf "%.1f" .X}}" x2="{{printf "%.1f" .X}}" y1="16" y2="{{printf "%.0f" $.Height}}" stroke="#e5e7eb"/><text x="{{printf "%.1f" .X}}" y="12" text-anchor="middle">{{.Label}}</text>
{{end}}{{range .Rows}}<text x="4" y="{{printf "%.1f" .Y}}" dy="4">{{.Label}}</text>
{{if .Base.Has}}<g><title>{{.Base.Title}}</title><line x1="{{printf "%.1f" .Base.X1}}" x2="{{printf "%.1f" .Base.X2}}" y1="{{printf "%.1f" .Y}}" y2="{{printf "%.1f" .Y}}" stroke="#9ca3af" stroke-width="2" transform="translate(0,-4)"/><circle cx="{{printf "%.1f" .Base.X}}" cy="{{printf "%.1f" .Y}}" r="4" fill="#6b7280" transform="translate(0,-4)"/></g>{{end}}
{{if .Cand.Has}}<g><title>{{.Cand.Title}}</title><line x1="{{printf "%.1f" .Cand.X1}}" x2="{{printf "%.1f" .Cand.X2}}" y1="{{printf "%.1f" .Y}}" y2="{{printf "%.1f" .Y}}" stroke="{{if .Fail}}#dc2626{{else}}#93c5fd{{end}}" stroke-width="2" transform="translate(0,4)"/><circle cx="{{printf "%.1f" .Cand.X}}" cy="{{printf "%.1f" .Y}}" r="4" fill="{{if .Fail}}#dc2626{{else}}#2563eb{{end}}" transform="translate(0,4)"/></g>{{end}}
{{end}}</svg>{{end}}

<h2>Recall by segment (95 % Wilson intervals)</h2>
{{template "dots" .Recall}}
<h2>Precision by segment (95 % Wilson intervals)</h2>
{{template "dots" .Precision}}

<h2>Score divergence (PSI of the candidate's score histogram against the baseline's)</h2>
<svg role="img" aria-label="PSI by segment" width="760" height="{{printf "%.0f" .PSI.Height}}" viewBox="0 0 760 {{printf "%.0f" .PSI.Height}}">
{{range .PSI.Ticks}}<line x1="{{printf "%.1f" .X}}" x2="{{printf "%.1f" .X}}" y1="16" y2="{{printf "%.0f" $.PSI.Height}}" stroke="#f3f4f6"/><text x="{{printf "%.1f" .X}}" y="12" text-anchor="middle">{{.Label}}</text>
{{end}}{{range .PSI.Rows}}<text x="4" y="{{printf "%.1f" .Y}}" dy="12">{{.Label}}</text><rect x="210" y="{{printf "%.1f" .Y}}" width="{{printf "%.1f" .Width}}" height="16" fill="{{if eq (print .Level) "alert"}}#dc2626{{else if eq (print .Level) "warn"}}#f59e0b{{else}}#60a5fa{{end}}"><title>PSI {{.Value}} ({{.Level}})</title></rect><text x="{{printf "%.1f" .Width}}" dx="216" y="{{printf "%.1f" .Y}}" dy="12">{{.Value}}</text>
{{end}}<line x1="{{printf "%.1f" .PSI.Warn.X}}" x2="{{printf "%.1f" .PSI.Warn.X}}" y1="16" y2="{{printf "%.0f" .PSI.Height}}" stroke="#f59e0b" stroke-dasharray="4 3"/><text x="{{printf "%.1f" .PSI.Warn.X}}" y="{{printf "%.0f" .PSI.Height}}" dy="-4" dx="3">{{.PSI.Warn.Label}}</text>
<line x1="{{printf "%.1f" .PSI.Alert.X}}" x2="{{printf "%.1f" .PSI.Alert.X}}" y1="16" y2="{{printf "%.0f" .PSI.Height}}" stroke="#dc2626" stroke-dasharray="4 3"/><text x="{{printf "%.1f" .PSI.Alert.X}}" y="{{printf "%.0f" .PSI.Height}}" dy="-4" dx="3">{{.PSI.Alert.Label}}</text>
</svg>

<h2>Score distributions (share of predictions per 0.1 score bin)</h2>
<div class="hists">
{{range .Histograms}}<figure><svg role="img" aria-label="score histogram {{.Label}}" width="200" height="92" viewBox="0 0 200 92"><line x1="0" x2="200" y1="80" y2="80" stroke="#9ca3af"/>{{range .Base}}<rect x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" width="{{printf "%.1f" .W}}" height="{{printf "%.1f" .H}}" fill="#9ca3af"/>{{end}}{{range .Cand}}<rect x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" width="{{printf "%.1f" .W}}" height="{{printf "%.1f" .H}}" fill="#2563eb"/>{{end}}<text x="0" y="91">0</text><text x="200" y="91" text-anchor="end">1</text></svg><figcaption>{{.Label}} · PSI {{.PSI}}</figcaption></figure>
{{end}}</div>

<h2 id="per-segment">Per segment</h2>
<div class="table-scroll" role="region" aria-labelledby="per-segment" tabindex="0">
<table>
<thead><tr><th scope="col">segment</th><th scope="col">predictions</th><th scope="col">labeled</th><th scope="col">mean score</th><th scope="col">PSI</th><th scope="col">flag rate</th><th scope="col">disagree (only B / only C)</th><th scope="col">precision</th><th scope="col">recall</th><th scope="col">Δ recall (p)</th><th scope="col">Δ precision (p)</th><th scope="col">decision</th></tr></thead>
<tbody>
{{range .Rows}}<tr class="row-{{.Decision}}"><td>{{.Scope}}</td><td class="num">{{.Baseline.Predictions}} / {{.Candidate.Predictions}}</td><td class="num">{{.Baseline.Resolved}} / {{.Candidate.Resolved}}</td><td class="num">{{pair .Baseline.MeanScore .Candidate.MeanScore 3}}</td><td class="num">{{num .PSI 3}} {{if ne (print .PSILevel) "ok"}}{{.PSILevel}}{{end}}</td><td class="num">{{pair .Baseline.FlagRate .Candidate.FlagRate 4}}</td><td class="num">{{disagreement .Discordance}}</td><td class="num">{{precisionPair .Baseline .Candidate}}</td><td class="num">{{pair .Baseline.Recall .Candidate.Recall 3}}</td><td class="num">{{signed .RecallDelta}} ({{pval .RecallPValue}})</td><td class="num">{{signed .PrecisionDelta}} ({{pval .PrecisionPValue}})</td><td class="decision-cell">{{.Decision}}</td></tr>
<tr class="row-{{.Decision}}"><td><span class="sr-only">reason</span></td><td class="reason" colspan="11">{{.Reason}}</td></tr>
{{end}}</tbody>
</table>
</div>
<p class="meta">Generated by verdict report shadow. Self-contained: no scripts, no external assets.</p>
</body>
</html>
`
