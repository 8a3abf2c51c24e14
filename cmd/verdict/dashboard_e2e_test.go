package main

// The dashboard in a real browser: the binary serves it, Debian's headless Chromium
// (driven over the DevTools protocol by chromedp) loads it, and what the page shows
// is compared with what the API answers.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/verdictml/verdict/api"
	"github.com/verdictml/verdict/internal/emulatortest"
)

// chromium finds the browser: VERDICT_CHROMIUM, else chromium on PATH. Without one
// the test skips, or fails when scripts/test.sh requires everything
// (VERDICT_REQUIRE_EMULATORS=1; .ci/run installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VERDICT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(emulatortest.EnvRequire) == "1" {
		t.Fatalf("no chromium on PATH (nor VERDICT_CHROMIUM) but %s=1: install Debian's chromium (apt-get install chromium), as .ci/run does", emulatortest.EnvRequire)
	}
	t.Skip("no chromium on PATH: install Debian's chromium to run the dashboard's browser test")
	return ""
}

// artifactDir is where tests leave files for people to look at (VERDICT_ARTIFACTS;
// scripts/test.sh sets it to .artifacts in the checkout).
func artifactDir(t *testing.T) string {
	dir := os.Getenv("VERDICT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "verdict-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

const dashboardToken = "dashboard-test-token"

// feedRegressingTraffic sends the demo's traffic for the half hour before now —
// v5 and shadow v6 scoring every request, v6 losing recall on electronics — and
// every label due by now. Nothing matures (VERDICT_MATURITY stays 30 days) and no
// more events come, so the counts stay put while the test reads them.
func feedRegressingTraffic(t *testing.T, s *server) {
	t.Helper()
	d := newDemoTraffic(7, "electronics", fastLabels{delay: 20 * time.Second})
	now := time.Now()
	start := now.Add(-32 * time.Minute)
	var preds []string
	for at := start; at.Before(now.Add(-2 * time.Minute)); at = at.Add(time.Second) {
		for _, p := range d.tick(at, 6) {
			preds = append(preds, string(p))
		}
	}
	var lbls []string
	for _, l := range d.dueLabels(now) {
		lbls = append(lbls, string(l.line()))
	}
	for _, batch := range []struct {
		path  string
		lines []string
	}{{"/v1/predictions", preds}, {"/v1/labels", lbls}} {
		for i := 0; i < len(batch.lines); i += 2000 {
			code, _, err := s.post(batch.path, batch.lines[i:min(i+2000, len(batch.lines))], dashboardToken)
			if err != nil || (code != 200 && code != 400) {
				t.Fatalf("POST %s: %d %v", batch.path, code, err)
			}
		}
	}
	t.Logf("sent %d prediction lines and %d labels", len(preds), len(lbls))
}

// page is what the dashboard shows, read from its DOM.
type page struct {
	Variants []struct{ Variant, Field, Text string }
	Segments []struct {
		Segment, Decision string
		Regressed         bool
		Cells             map[string]string
	}
	Reasons map[string]string
	Judge   []struct{ Candidate, Decision string }
	Alarms  []struct{ Alarm, State string }
	Charts  []struct {
		Metric      string
		Points      map[string]int
		Lines       int
		Bands       int
		NotEstimate int
	}
	Status string
}

const readPage = `(() => {
  const q = (s, r) => Array.from((r || document).querySelectorAll(s));
  return {
    Variants: q('#variants-body td[data-variant]').map(td => ({Variant: td.dataset.variant, Field: td.dataset.field, Text: td.textContent})),
    Segments: q('#segments-body tbody tr[data-segment]').map(tr => ({
      Segment: tr.dataset.segment, Decision: tr.dataset.decision, Regressed: tr.classList.contains('regressed'),
      Cells: Object.fromEntries(q('td[data-field]', tr).map(td => [td.dataset.field, td.textContent]))})),
    Reasons: Object.fromEntries(q('#segments-body td[data-field="reason"]').map(td => [td.dataset.segment, td.textContent])),
    Judge: q('#judge-body [data-decision]').map(e => ({Candidate: e.dataset.candidate, Decision: e.dataset.decision})),
    Alarms: q('#alarms-body td[data-field="state"]').map(td => ({Alarm: td.dataset.alarm, State: td.textContent})),
    Charts: q('#charts-body svg[data-metric]').map(svg => {
      const points = {};
      q('circle.point', svg).forEach(c => { points[c.dataset.variant] = (points[c.dataset.variant] || 0) + 1; });
      return {Metric: svg.dataset.metric, Points: points, Lines: q('path.line', svg).filter(p => p.getAttribute('d')).length,
        Bands: q('polygon.band', svg).length, NotEstimate: q('rect.not-estimable', svg).length};
    }),
    Status: document.getElementById('status').textContent,
  };
})()`

func TestDashboardInBrowser(t *testing.T) {
	browser := chromium(t)
	dir := t.TempDir()
	spec := filepath.Join(dir, "alarms.yaml")
	if err := os.WriteFile(spec, []byte(demoAlarmSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, filepath.Join(dir, "data"),
		"VERDICT_API_TOKEN="+dashboardToken,
		"VERDICT_BASELINE=v5", "VERDICT_CANDIDATES=v6", "VERDICT_ROLES=v5:production,v6:shadow",
		"VERDICT_JUDGE_LABELS_MISSING_AT_RANDOM=true", "VERDICT_BUCKET=1m",
		"VERDICT_ALARM_SPEC="+spec, "VERDICT_CLOUDWATCH_INTERVAL=1s")
	feedRegressingTraffic(t, s)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.UserDataDir(filepath.Join(dir, "chromium")),
		chromedp.WindowSize(1440, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	// Every console error, uncaught exception and browser log error of the page
	// (a failed request included) fails the test.
	var mu sync.Mutex
	var consoleErrors []string
	// The browser lives as long as the context of the first call: bctx's.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	consoleCtx, stopConsole := context.WithCancel(bctx)
	messages := chromedp.Console(consoleCtx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				mu.Lock()
				consoleErrors = append(consoleErrors, m.String())
				mu.Unlock()
			}
		}
	}()
	// The token rides in the fragment (never sent to the server); the page moves it
	// to session storage. Then auto-refresh is paused from the keyboard, so the
	// numbers hold still while they are read.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(s.base+"/#token="+dashboardToken),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="true"]`)),
		chromedp.Focus(chromedp.ID("pause")), chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS(`#pause[aria-pressed="true"]`)),
	); err != nil {
		t.Fatalf("load the dashboard: %v\nverdict log:\n%s", err, s.log())
	}

	// The page and the API are read one after the other; an alarm can change state
	// at a period boundary in between, so a mismatch is read again after a refresh.
	var problems []string
	for attempt := range 3 {
		if attempt > 0 {
			if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("refresh")),
				chromedp.Poll[chromedp.Void](`document.getElementById('status').textContent.startsWith('updated')`)); err != nil {
				t.Fatal(err)
			}
		}
		shown, err := chromedp.Run(bctx, chromedp.Evaluate[page](readPage))
		if err != nil {
			t.Fatal(err)
		}
		if problems = compareWithAPI(t, s, shown); len(problems) == 0 {
			break
		}
		t.Logf("attempt %d: the page differs from the API:\n  %s", attempt+1, strings.Join(problems, "\n  "))
	}
	if len(problems) > 0 {
		t.Errorf("the dashboard does not show what the API answers:\n  %s", strings.Join(problems, "\n  "))
	}

	// Sorting from the keyboard: the recall column's header button.
	if err := chromedp.Do(bctx, chromedp.Focus(chromedp.CSS(`#segments-body th[data-key="recall"] button`)), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	sorted, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(`#segments-body th[data-key="recall"]`), "aria-sort"))
	if err != nil {
		t.Fatal(err)
	}
	if sorted.Value != "descending" {
		t.Errorf("after Enter on the recall heading, aria-sort is %q", sorted.Value)
	}

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifactDir(t), "dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)

	stopConsole()
	<-consoleDone
	mu.Lock()
	if len(consoleErrors) > 0 {
		t.Errorf("the page logged errors:\n  %s", strings.Join(consoleErrors, "\n  "))
	}
	mu.Unlock()

	// Without the token the page asks for it and shows no data (a new tab: the
	// token lives in the first tab's session storage).
	tctx, cancelTab := chromedp.NewContext(bctx)
	defer cancelTab()
	if err := chromedp.Do(tctx, chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll('#variants-body td').length`))
	if err != nil || rows != 0 {
		t.Errorf("without a token: %d data cells (%v); want none", rows, err)
	}
}

// compareWithAPI lists every difference between the page and the API's answers.
func compareWithAPI(t *testing.T, s *server, shown page) []string {
	t.Helper()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	getJSON := func(path string, v any) {
		code, body := s.get(path, dashboardToken)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}

	var m api.MetricsResponse
	getJSON("/v1/metrics?window=1h", &m)
	cells := map[[2]string]string{}
	for _, c := range shown.Variants {
		cells[[2]string{c.Variant, c.Field}] = c.Text
	}
	if len(m.Variants) != 2 {
		bad("the API has %d variants, want v5 and v6", len(m.Variants))
	}
	for _, v := range m.Variants {
		cell := func(f string) string {
			text, ok := cells[[2]string{v.Variant, f}]
			if !ok {
				bad("variant %s: no %s cell on the page", v.Variant, f)
			}
			return text
		}
		if got := strings.ReplaceAll(cell("predictions"), ",", ""); got != strconv.FormatInt(v.Predictions, 10) {
			bad("variant %s predictions: page %q, API %d", v.Variant, got, v.Predictions)
		}
		samePct(bad, v.Variant+" flag rate", cell("flag_rate"), v.FlagRate)
		samePct(bad, v.Variant+" label coverage", cell("label_coverage"), v.LabelCoverage)
		samePct(bad, v.Variant+" recall", cell("recall"), v.Recall)
		if v.Precision == nil {
			if !strings.Contains(cell("precision"), "not yet estimable") {
				bad("variant %s precision is not estimable, the page shows %q", v.Variant, cell("precision"))
			}
		} else {
			samePct(bad, v.Variant+" precision", cell("precision"), v.Precision)
		}
	}

	var rep struct {
		Overall  compareRow   `json:"overall"`
		Segments []compareRow `json:"segments"`
	}
	getJSON("/v1/compare?baseline=v5&candidate=v6&sort=divergence", &rep)
	want := append([]compareRow{rep.Overall}, rep.Segments...)
	if len(shown.Segments) != len(want) {
		bad("segment table: %d rows, API %d", len(shown.Segments), len(want))
	}
	regressed := 0
	for i, w := range want {
		if i >= len(shown.Segments) {
			break
		}
		got, scope := shown.Segments[i], w.scope()
		if got.Segment != scope {
			bad("segment row %d: page %s, API (sorted by divergence) %s", i, got.Segment, scope)
			continue
		}
		if got.Decision != w.Decision || got.Regressed != (w.Decision == "fail") {
			bad("segment %s: page decision %s (highlighted %v), API %s", scope, got.Decision, got.Regressed, w.Decision)
		}
		if w.Decision == "fail" {
			regressed++
		}
		if !strings.Contains(shown.Reasons[scope], w.Reason) {
			bad("segment %s: reason on the page %q, API %q", scope, shown.Reasons[scope], w.Reason)
		}
		if w.PSI != nil && got.Cells["psi"] != strconv.FormatFloat(*w.PSI, 'f', 3, 64) && !strings.HasPrefix(got.Cells["psi"], strconv.FormatFloat(*w.PSI, 'f', 3, 64)) {
			bad("segment %s PSI: page %q, API %.3f", scope, got.Cells["psi"], *w.PSI)
		}
		if pair := strings.SplitN(got.Cells["recall"], "→", 2); len(pair) == 2 {
			samePct(bad, scope+" baseline recall", pair[0], w.Baseline.Recall)
			samePct(bad, scope+" candidate recall", strings.SplitN(pair[1], "Δ", 2)[0], w.Candidate.Recall)
		} else {
			bad("segment %s recall cell %q", scope, got.Cells["recall"])
		}
	}
	if !slices.ContainsFunc(shown.Segments, func(r struct {
		Segment, Decision string
		Regressed         bool
		Cells             map[string]string
	}) bool {
		return r.Segment == "merchant_category=electronics" && r.Regressed
	}) {
		bad("the regressed segment merchant_category=electronics is not highlighted")
	}
	if regressed == 0 {
		bad("the API shows no regressed segment: the traffic did not regress")
	}

	var j struct{ Decision, Candidate string }
	getJSON("/v1/judge?baseline=v5&candidate=v6", &j)
	if len(shown.Judge) != 1 || shown.Judge[0].Decision != j.Decision || shown.Judge[0].Candidate != "v6" {
		bad("judge: page %+v, API %s", shown.Judge, j.Decision)
	}

	var al struct {
		Alarms []struct{ Name, State string }
	}
	getJSON("/v1/alarms", &al)
	if len(shown.Alarms) != len(al.Alarms) || len(al.Alarms) == 0 {
		bad("alarms: page shows %d, API %d", len(shown.Alarms), len(al.Alarms))
	}
	for i, a := range al.Alarms {
		if i < len(shown.Alarms) && (shown.Alarms[i].Alarm != a.Name || shown.Alarms[i].State != strings.ReplaceAll(a.State, "_", " ")) {
			bad("alarm %s: page %s %q, API %s", a.Name, shown.Alarms[i].Alarm, shown.Alarms[i].State, a.State)
		}
	}

	var ser api.SeriesResponse
	getJSON("/v1/series?window=1h&metric=precision,recall,flag_rate,label_coverage", &ser)
	if len(shown.Charts) != 4 {
		bad("%d charts, want precision, recall, flag rate and label coverage", len(shown.Charts))
	}
	for _, c := range shown.Charts {
		for _, tl := range ser.Series {
			n := 0
			for _, p := range tl.Points {
				if p.Statistics[c.Metric].Value != nil {
					n++
				}
			}
			if c.Points[tl.Variant] != n {
				bad("%s chart: %d points of %s drawn, the API has %d values", c.Metric, c.Points[tl.Variant], tl.Variant, n)
			}
		}
		if c.Metric != "precision" && (c.Lines != 2 || c.Bands == 0 && c.Metric != "label_coverage") {
			bad("%s chart: %d lines, %d bands", c.Metric, c.Lines, c.Bands)
		}
		if c.Metric == "precision" && c.NotEstimate == 0 {
			bad("precision chart: no step marked not yet estimable, though the API's precision is not estimable")
		}
	}
	return problems
}

type compareRow struct {
	SegmentKey string   `json:"segment_key"`
	Segment    string   `json:"segment"`
	Decision   string   `json:"decision"`
	Reason     string   `json:"reason"`
	PSI        *float64 `json:"psi"`
	Baseline   struct {
		Recall *float64 `json:"recall"`
	} `json:"baseline"`
	Candidate struct {
		Recall *float64 `json:"recall"`
	} `json:"candidate"`
}

func (r compareRow) scope() string {
	if r.SegmentKey == "" {
		return "overall"
	}
	return r.SegmentKey + "=" + r.Segment
}

var percentRE = regexp.MustCompile(`-?[0-9]+(\.[0-9]+)?%`)

// samePct checks that the first percentage in text is v, to the 0.1 percentage
// point the page shows (half a unit either way: rounding), and "—" when v is null.
func samePct(bad func(string, ...any), what, text string, v *float64) {
	if v == nil {
		if !strings.Contains(text, "—") && !strings.Contains(text, "not yet estimable") && !strings.Contains(text, "undefined") {
			bad("%s: API null, page %q", what, text)
		}
		return
	}
	m := percentRE.FindString(text)
	if m == "" {
		bad("%s: API %.4f, page shows no percentage: %q", what, *v, text)
		return
	}
	got, _ := strconv.ParseFloat(strings.TrimSuffix(m, "%"), 64)
	if math.Abs(got-*v*100) > 0.05+1e-9 {
		bad("%s: page %s, API %.3f%%", what, m, *v*100)
	}
}
