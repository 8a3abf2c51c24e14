package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/verdictml/verdict/internal/shadowsim"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

func regressedReport(t *testing.T) judge.Report {
	t.Helper()
	rep, err := judge.Compare(shadowsim.Regressed().Snap, "v5", "v6", "", judge.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestWriteReportFormats(t *testing.T) {
	rep := regressedReport(t)
	for _, tc := range []struct {
		format string
		check  func(t *testing.T, out string)
	}{
		{FormatTable, func(t *testing.T, out string) {
			for _, want := range []string{"candidate v6 against baseline v5", "decision: FAIL", "merchant_category=electronics", "overall", "Δ RECALL"} {
				if !strings.Contains(out, want) {
					t.Errorf("table lacks %q:\n%s", want, out)
				}
			}
			lines := strings.Split(out, "\n")
			if !strings.HasPrefix(lines[5], "merchant_category=electronics") {
				t.Errorf("most divergent segment not first after overall: %q", lines[5])
			}
		}},
		{FormatJSON, func(t *testing.T, out string) {
			var back judge.Report
			if err := json.Unmarshal([]byte(out), &back); err != nil || back.Decision != judge.Fail || len(back.Segments) != 6 {
				t.Errorf("JSON does not round-trip: %v", err)
			}
		}},
		{FormatCSV, func(t *testing.T, out string) {
			recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 8 || len(recs[0]) != len(csvHeader) || recs[1][0] != "overall" || recs[2][2] != "electronics" {
				t.Errorf("csv shape: %d rows, first %v", len(recs), recs[:2])
			}
		}},
		{FormatHTML, func(t *testing.T, out string) {
			for _, want := range []string{"<!DOCTYPE html>", "<svg", "Recall by segment", "electronics", `class="decision fail"`} {
				if !strings.Contains(out, want) {
					t.Errorf("html lacks %q", want)
				}
			}
			for _, banned := range []string{"<script", "src=", "href=", "http://", "https://", "@import"} {
				if strings.Contains(out, banned) {
					t.Errorf("html is not self-contained: contains %q", banned)
				}
			}
		}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, rep, tc.format); err != nil {
				t.Fatal(err)
			}
			tc.check(t, b.String())
		})
	}
	if err := Write(&bytes.Buffer{}, rep, "pdf"); err == nil || !strings.Contains(err.Error(), `format "pdf"`) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestHTMLReportEscapesSegmentNames(t *testing.T) {
	var c tally.Counts
	c.Predictions, c.TP, c.FN, c.Flagged = 10, 5, 5, 5
	c.Bins[5] = 10
	k := func(v string) tally.Key {
		return tally.Key{Variant: v, SegmentKey: "merchant_category", Segment: `<script>alert("x")</script>`}
	}
	snap := window.Snapshot{Rows: []window.Row{{Key: k("v5"), Counts: c}, {Key: k("v6"), Counts: c}}}
	rep, err := judge.Compare(snap, "v5", "v6", "", judge.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Write(&b, rep, FormatHTML); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script") {
		t.Error("segment name rendered unescaped")
	}
}

func TestReportMarksPrecisionThatIsNotEstimable(t *testing.T) {
	// v5: every flagged prediction resolved; v6: positive-only early labels, 20 of
	// 100 flagged predictions resolved.
	v6 := shadowsim.Row("v6", "", 20, 0, 5, 0)
	v6.Counts.Flagged, v6.Counts.Predictions = 100, 1000
	rep, err := judge.Compare(shadowsim.SnapshotOf(shadowsim.Row("v5", "", 80, 20, 20, 880), v6), "v5", "v6", "", judge.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Overall.Candidate; c.Precision != nil || c.Estimable.Precision.Estimable || c.PrecisionBounds == nil || c.PrecisionBounds.Lower != 0.2 {
		t.Fatalf("candidate summary: precision %v, estimable %+v, bounds %+v; want null, not estimable, bounds from 0.2", c.Precision, c.Estimable.Precision, c.PrecisionBounds)
	}
	for _, format := range []string{FormatTable, FormatHTML} {
		var b bytes.Buffer
		if err := Write(&b, rep, format); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "0.800 → n/e") {
			t.Errorf("%s: precision not shown as 0.800 → n/e:\n%s", format, b.String())
		}
	}
	var b bytes.Buffer
	if err := Write(&b, regressedReport(t), FormatTable); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "n/e") {
		t.Errorf("n/e shown although every precision is estimable:\n%s", b.String())
	}
}

// TestHTMLReportRowsAreReadable: the per-segment table scrolls inside its own
// region instead of overflowing the page, and every row's text (reasons included)
// has at least 7:1 contrast (WCAG AAA) on its row's background — the decision
// badges' dark colours are never a row's.
func TestHTMLReportRowsAreReadable(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, regressedReport(t), FormatHTML); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, `<div class="table-scroll" role="region" aria-labelledby="per-segment" tabindex="0">`) {
		t.Error("the per-segment table is not in a scrollable, labelled region")
	}
	rule := func(selector, property string) string {
		t.Helper()
		m := regexp.MustCompile(regexp.QuoteMeta(selector) + `\{[^}]*?` + property + `:(#[0-9a-f]{6})`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %s for %s in the report's CSS", property, selector)
		}
		return m[1]
	}
	reason := rule("td.reason", "color")
	for _, d := range judge.Decisions() {
		bg := rule("tbody tr.row-"+string(d), "background")
		if c := contrast(reason, bg); c < 7 {
			t.Errorf("%s rows: reason text %s on %s has contrast %.1f, want >= 7", d, reason, bg, c)
		}
		if !strings.Contains(out, `<tr class="row-`+string(d)+`">`) && d != judge.Pass {
			t.Errorf("no %s row in a report that has one", d)
		}
	}
	if regexp.MustCompile(`(^|[;}\s])\.(pass|fail|inconclusive)\{`).MatchString(out) {
		t.Error("a bare decision class is styled: it would colour table rows too")
	}
}

// contrast is the WCAG 2 contrast ratio of two #rrggbb colours.
func contrast(a, b string) float64 {
	lum := func(hex string) float64 {
		var rgb [3]float64
		for i := range rgb {
			v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
			c := float64(v) / 255
			if c <= 0.03928 {
				rgb[i] = c / 12.92
			} else {
				rgb[i] = math.Pow((c+0.055)/1.055, 2.4)
			}
		}
		return 0.2126*rgb[0] + 0.7152*rgb[1] + 0.0722*rgb[2]
	}
	la, lb := lum(a), lum(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}
