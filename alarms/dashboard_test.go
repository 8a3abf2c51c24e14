package alarms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/verdictml/verdict/internal/golden"
)

func dashboardOf(t *testing.T, path string) (*Spec, []Alarm, []byte) {
	t.Helper()
	s := mustSpec(t, path)
	built, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(DashboardBody(s, built)); err != nil {
		t.Fatal(err)
	}
	return s, built, b.Bytes()
}

func TestDashboardBodyGolden(t *testing.T) {
	for _, gs := range goldenSpecs {
		t.Run(gs.path, func(t *testing.T) {
			_, _, b := dashboardOf(t, gs.path)
			golden.Check(t, gs.prefix+"dashboard_body.json", b)
		})
	}
}

// decodedWidget is a widget as CloudWatch reads it back.
type decodedWidget struct {
	Type                string
	X, Y, Width, Height int
	Properties          struct {
		Title, Markdown, Region, View string
		Period                        int32
		Alarms                        []string
		Metrics                       [][]any
		Annotations                   struct {
			Horizontal []struct {
				Label string
				Value float64
			}
		}
	}
}

// TestDashboardBodyStructure checks the body against its documented structure
// (docs/alarms.md, "The CloudWatch dashboard").
func TestDashboardBodyStructure(t *testing.T) {
	for _, gs := range goldenSpecs {
		t.Run(gs.path, func(t *testing.T) { checkDashboardStructure(t, gs.path) })
	}
}

func checkDashboardStructure(t *testing.T, path string) {
	s, built, b := dashboardOf(t, path)
	var d struct{ Widgets []decodedWidget }
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	ws := d.Widgets
	if len(ws) < 2 || ws[0].Type != "text" || !strings.Contains(ws[0].Properties.Markdown, s.Candidate.Variant) {
		t.Fatalf("the first widget is not the header naming the candidate: %+v", ws[0])
	}
	status := ws[1]
	if status.Type != "alarm" || len(status.Properties.Alarms) != len(built) {
		t.Fatalf("the second widget is not the status of all %d alarms: %+v", len(built), status)
	}
	for i, a := range built {
		if want := "arn:aws:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:" + a.AlarmName; status.Properties.Alarms[i] != want {
			t.Errorf("status widget alarm %d = %s, want %s", i, status.Properties.Alarms[i], want)
		}
	}

	// Every alarm has its graph: what it evaluates, its period, its threshold.
	for _, a := range built {
		var g *decodedWidget
		for i := range ws {
			if ws[i].Type == "metric" && strings.Contains(ws[i].Properties.Title, "("+a.AlarmName+")") {
				g = &ws[i]
			}
		}
		if g == nil {
			t.Errorf("no graph of alarm %s", a.AlarmName)
			continue
		}
		p := g.Properties
		if p.Region != "${AWS::Region}" || p.Period != int32(alarmPeriod(a)/time.Second) {
			t.Errorf("%s: region %s period %d", a.AlarmName, p.Region, p.Period)
		}
		if h := p.Annotations.Horizontal; len(h) != 1 || h[0].Value != a.Threshold {
			t.Errorf("%s: threshold line %+v, want %v", a.AlarmName, h, a.Threshold)
		}
		checkAlarmSeries(t, a, p.Metrics)
	}

	// Per variant and per top segment.
	find := func(title string) *decodedWidget {
		for i := range ws {
			if ws[i].Properties.Title == title {
				return &ws[i]
			}
		}
		t.Errorf("no widget %q", title)
		return nil
	}
	for _, title := range []string{"Recall by variant", "Precision by variant (absent while not estimable)", "Flag rate by variant (label-free)", "Label coverage by variant"} {
		if w := find(title); w != nil {
			var vs []string
			for _, row := range w.Properties.Metrics {
				vs = append(vs, fmt.Sprint(row[5]))
			}
			if !slices.Equal(vs, []string{s.Candidate.Variant, s.Baseline.Variant}) {
				t.Errorf("%s: variants %v", title, vs)
			}
		}
	}
	searchRE := regexp.MustCompile(`^SEARCH\('\{` + regexp.QuoteMeta(s.Namespace) + `,EndpointName,VariantName,SegmentKey,Segment\} MetricName="(\w+)" EndpointName="` +
		regexp.QuoteMeta(s.Endpoint) + `" VariantName="([\w-]+)"', 'Average', ` + fmt.Sprint(int(s.Evaluation.Period/time.Second)) + `\)$`)
	for _, title := range []string{"Recall of " + s.Candidate.Variant + " by top segment", "Recall of " + s.Baseline.Variant + " by top segment", "Flag rate of " + s.Candidate.Variant + " by top segment (label-free)"} {
		if w := find(title); w != nil {
			expr, _ := w.Properties.Metrics[0][0].(map[string]any)["expression"].(string)
			if !searchRE.MatchString(expr) {
				t.Errorf("%s: %q is not a SEARCH of the segment dimensions", title, expr)
			}
		}
	}

	// The grid: 24 columns, no overlaps.
	cells := map[[2]int]int{}
	for i, w := range ws {
		if w.X < 0 || w.Width < 1 || w.X+w.Width > 24 || w.Height < 1 {
			t.Errorf("widget %d (%s) at x %d width %d leaves the 24 columns", i, w.Properties.Title, w.X, w.Width)
		}
		for x := w.X; x < w.X+w.Width; x++ {
			for y := w.Y; y < w.Y+w.Height; y++ {
				if j, ok := cells[[2]int{x, y}]; ok {
					t.Errorf("widgets %d and %d overlap at (%d, %d)", j, i, x, y)
				}
				cells[[2]int{x, y}] = i
			}
		}
	}
}

// checkAlarmSeries: the graph draws the alarm's own metrics, with the alarm's
// statistic and dimensions, and its expressions over ids the graph defines; only
// what the alarm returns is visible.
func checkAlarmSeries(t *testing.T, a Alarm, rows [][]any) {
	t.Helper()
	opts := func(row []any) map[string]any { m, _ := row[len(row)-1].(map[string]any); return m }
	if a.MetricName != "" {
		if len(rows) != 1 || rows[0][0] != a.Namespace || rows[0][1] != a.MetricName || len(rows[0]) != 3+2*len(a.Dimensions) {
			t.Errorf("%s: graph %v, want %s %s", a.AlarmName, rows, a.Namespace, a.MetricName)
		}
		return
	}
	if len(rows) != len(a.Metrics) {
		t.Fatalf("%s: %d series, the alarm has %d queries", a.AlarmName, len(rows), len(a.Metrics))
	}
	ids := map[string]bool{}
	for i, q := range a.Metrics {
		o := opts(rows[i])
		if o["id"] != q.ID || o["visible"] != q.ReturnData {
			t.Errorf("%s: series %d id %v visible %v, want %s %v", a.AlarmName, i, o["id"], o["visible"], q.ID, q.ReturnData)
		}
		ids[q.ID] = true
		if q.MetricStat != nil {
			m := q.MetricStat.Metric
			want := []any{m.Namespace, m.MetricName}
			for _, d := range m.Dimensions {
				want = append(want, d.Name, d.Value)
			}
			if got := rows[i][:len(rows[i])-1]; fmt.Sprint(got) != fmt.Sprint(want) || o["stat"] != q.MetricStat.Stat {
				t.Errorf("%s: series %s = %v %v, want %v %s", a.AlarmName, q.ID, got, o["stat"], want, q.MetricStat.Stat)
			}
		}
	}
	for i, q := range a.Metrics {
		if q.Expression == "" {
			continue
		}
		if opts(rows[i])["expression"] != q.Expression {
			t.Errorf("%s: expression %v, want %s", a.AlarmName, opts(rows[i])["expression"], q.Expression)
		}
		x, err := parseExpr(q.Expression)
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range exprIDs(x) {
			if !ids[ref] {
				t.Errorf("%s: expression %s refers to %s, which the graph does not define", a.AlarmName, q.ID, ref)
			}
		}
	}
}

// TestExportedDashboardIsTheBodyForFnSub: the CloudFormation export carries the
// dashboard as Fn::Sub of the body, whose only substitutions are the region and
// the account.
func TestExportedDashboardIsTheBodyForFnSub(t *testing.T) {
	s := mustSpec(t, "testdata/spec.yaml")
	built, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Export(&out, s, built, FormatCloudFormation); err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				DashboardName string            `yaml:"DashboardName"`
				DashboardBody map[string]string `yaml:"DashboardBody"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(out.Bytes(), &tmpl); err != nil {
		t.Fatal(err)
	}
	r := tmpl.Resources["VerdictDashboard"]
	if r.Type != "AWS::CloudWatch::Dashboard" || r.Properties.DashboardName != "verdict-fraud-v5" {
		t.Fatalf("dashboard resource %+v", r)
	}
	sub := r.Properties.DashboardBody["Fn::Sub"]
	if rest := strings.NewReplacer("${AWS::Region}", "", "${AWS::AccountId}", "").Replace(sub); strings.Contains(rest, "${") && !strings.Contains(rest, "${!") {
		t.Errorf("the body substitutes more than the region and account: %s", rest)
	}
	resolved := strings.NewReplacer("${AWS::Region}", "eu-west-1", "${AWS::AccountId}", "123456789012").Replace(sub)
	var d Dashboard
	if err := json.Unmarshal([]byte(resolved), &d); err != nil {
		t.Fatalf("the resolved body is not JSON: %v", err)
	}
	if len(d.Widgets) != len(DashboardBody(s, built).Widgets) {
		t.Errorf("%d widgets exported, %d built", len(d.Widgets), len(DashboardBody(s, built).Widgets))
	}
}

func TestDashboardNameIsValid(t *testing.T) {
	s := &Spec{Name: "fraud.v5"}
	if got := s.DashboardName(); got != "verdict-fraud-v5" {
		t.Errorf("dashboard name %q", got)
	}
}
