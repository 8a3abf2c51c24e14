package judge

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/verdictml/verdict/internal/shadowsim"
	"github.com/verdictml/verdict/window"
)

// gather scrapes c through a pedantic registry (which checks every metric against
// its description) and returns "name{label=value,...} value" lines.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[series(mf.GetName(), m)] = m.GetGauge().GetValue()
		}
	}
	return out
}

func series(name string, m *dto.Metric) string {
	var lv []string
	for _, l := range m.GetLabel() {
		lv = append(lv, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(lv)
	return name + "{" + strings.Join(lv, ",") + "}"
}

func TestCollectorPublishesTheJudgementAtScrapeTime(t *testing.T) {
	snaps := shadowsim.Regressed()
	c, err := NewCollector(snaps, []Pair{
		{Baseline: "v5", Candidate: "v6", Range: Sliding(window.Span(24 * time.Hour))},
		{Baseline: "v5", Candidate: "v6", Range: Sliding(window.AllTime)},
	}, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := gather(t, c)
	want := map[string]float64{
		"verdict_segment_regressions{baseline=v5,candidate=v6,window=24h}":             1,
		"verdict_judgement{baseline=v5,candidate=v6,decision=fail,window=24h}":         1,
		"verdict_judgement{baseline=v5,candidate=v6,decision=pass,window=24h}":         0,
		"verdict_judgement{baseline=v5,candidate=v6,decision=inconclusive,window=24h}": 0,
		"verdict_segment_regressions{baseline=v5,candidate=v6,window=all}":             1,
		"verdict_judgement{baseline=v5,candidate=v6,decision=fail,window=all}":         1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	j, err := Judge(snaps.Snapshot(window.Span(24*time.Hour)), "v5", "v6", Config{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]float64{
		"verdict_worst_segment_recall_delta{baseline=v5,candidate=v6,window=24h}":                                     *j.WorstSegmentRecallDelta,
		"verdict_recall_delta{baseline=v5,candidate=v6,segment=,segment_key=,window=24h}":                             *j.Overall.Recall.Delta,
		"verdict_precision_delta{baseline=v5,candidate=v6,segment=,segment_key=,window=24h}":                          *j.Overall.Precision.Delta,
		"verdict_recall_delta{baseline=v5,candidate=v6,segment=electronics,segment_key=merchant_category,window=24h}": *j.Segments[0].Recall.Delta,
		"verdict_score_psi{baseline=v5,candidate=v6,segment=electronics,segment_key=merchant_category,window=24h}":    *j.Segments[0].Score.PSI,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	snaps.Asked = snaps.Asked[:2] // the Judge call above asked one more
	if len(snaps.Asked) != 2 || snaps.Asked[0] != window.Span(24*time.Hour) || snaps.Asked[1] != window.AllTime {
		t.Errorf("one scrape asked %v, want one snapshot per window", snaps.Asked)
	}
	// A second scrape reads the windows again: no cached copy.
	gather(t, c)
	if len(snaps.Asked) != 4 {
		t.Errorf("second scrape did not read the snapshots again (%d asks)", len(snaps.Asked))
	}
}

func TestCollectorOmitsDeltasWithoutLabels(t *testing.T) {
	unlabeled := shadowsim.Row("v6", "", 0, 0, 0, 0)
	unlabeled.Counts.Predictions, unlabeled.Counts.Flagged = 60, 11
	snaps := &shadowsim.Fixed{Snap: shadowsim.SnapshotOf(shadowsim.Row("v5", "", 800, 200, 200, 8800), unlabeled)}
	c, err := NewCollector(snaps, []Pair{{Baseline: "v5", Candidate: "v6", Range: Sliding(window.Span(24 * time.Hour))}}, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := gather(t, c)
	for k := range got {
		for _, absent := range []string{"verdict_recall_delta", "verdict_precision_delta", "verdict_worst_segment_recall_delta", "verdict_score_psi"} {
			if strings.HasPrefix(k, absent+"{") {
				t.Errorf("%s present while the candidate has no labels", k)
			}
		}
	}
	if got["verdict_judgement{baseline=v5,candidate=v6,decision=inconclusive,window=24h}"] != 1 ||
		got["verdict_segment_regressions{baseline=v5,candidate=v6,window=24h}"] != 0 {
		t.Errorf("want inconclusive and 0 regressions, got %v", got)
	}
}

func TestRegressionsSummarizesEachPair(t *testing.T) {
	rs, err := Regressions(shadowsim.Regressed(), []Pair{{Baseline: "v5", Candidate: "v6", Range: Sliding(window.AllTime)}}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.Decision != Fail || r.Segments != 1 || r.WorstSegment.Segment != "electronics" || r.RecallDelta == nil || *r.WorstRecallDelta > -0.1 {
		t.Errorf("summary %+v", r)
	}
	if _, err := Regressions(shadowsim.Regressed(), []Pair{{Baseline: "v5", Candidate: "v5"}}, Config{}); err == nil {
		t.Error("want an error for a pair of one variant")
	}
}

func TestNewCollectorRejectsAPairOfOneVariant(t *testing.T) {
	if _, err := NewCollector(shadowsim.Healthy(), []Pair{{Baseline: "v5", Candidate: "v5"}}, Config{}, nil); err == nil {
		t.Error("pair of one variant accepted")
	}
}
