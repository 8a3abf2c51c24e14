package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGrafanaDashboardQueriesWhatMetricsExposes: every metric the Grafana dashboard
// (grafana/verdict.json) queries is on a running verdict's /metrics, with every
// label its selectors match on.
func TestGrafanaDashboardQueriesWhatMetricsExposes(t *testing.T) {
	raw, err := os.ReadFile("../../grafana/verdict.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			GridPos *struct {
				W, H int
			} `json:"gridPos"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana/verdict.json: %v", err)
	}
	if dash.UID == "" {
		t.Error("the dashboard has no uid: provisioning would duplicate it")
	}
	var exprs []string
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] || p.GridPos == nil || p.GridPos.W == 0 {
			t.Errorf("panel %q: id %d repeated or no grid position", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			exprs = append(exprs, v.Definition)
		}
	}

	// A verdict with a baseline pair, segments, labels, a rejected line and a label
	// still waiting for its prediction: every family the dashboard reads is there.
	s := startServer(t, t.TempDir(), "VERDICT_BASELINE=v5", "VERDICT_CANDIDATES=v6")
	now := time.Now().UTC()
	var preds, lbls []string
	for i := range 2400 { // 1200 per segment: the judge's PSI needs 1000
		id := fmt.Sprintf("g-%d", i)
		cat := []string{"grocery", "electronics"}[i%2]
		fraud := i%5 == 0
		for _, v := range []string{"v5", "v6"} {
			score := 0.1
			if fraud && (v == "v5" || cat == "grocery") {
				score = 0.9
			}
			preds = append(preds, fmt.Sprintf(`{"inference_id":%q,"variant":%q,"score":%g,"time":%q,"attributes":{"merchant_category":%q}}`,
				id, v, score, now.Add(-10*time.Minute).Format(time.RFC3339), cat))
		}
		lbls = append(lbls, fmt.Sprintf(`{"inference_id":%q,"label":%t,"time":%q}`, id, fraud, now.Add(-time.Minute).Format(time.RFC3339)))
	}
	preds = append(preds, `{"inference_id":"bad","variant":"v5","score":1.7,"time":"`+now.Format(time.RFC3339)+`"}`)
	lbls = append(lbls, `{"inference_id":"not-yet","label":true,"time":"`+now.Format(time.RFC3339)+`"}`)
	for path, lines := range map[string][]string{"/v1/predictions": preds, "/v1/labels": lbls} {
		if code, _, err := s.post(path, lines, ""); err != nil || (code != 200 && code != 400) {
			t.Fatalf("POST %s: %d %v", path, code, err)
		}
	}
	labelsOf := map[string]map[string]bool{}
	for name, f := range s.metricFamilies(t) {
		labelsOf[name] = map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labelsOf[name][l.GetName()] = true
			}
		}
	}

	metricRE := regexp.MustCompile(`\bverdict_[a-z0-9_]+`)
	selectorRE := regexp.MustCompile(`\b(verdict_[a-z0-9_]+)\{([^}]*)\}`)
	matcherRE := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	byRE := regexp.MustCompile(`\bby \(([^)]*)\)`)
	seen := map[string]bool{}
	for _, e := range exprs {
		names := metricRE.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("query %q names no verdict metric", e)
		}
		for _, n := range names {
			seen[n] = true
			if labelsOf[n] == nil {
				t.Errorf("query %q reads %s, which /metrics does not expose", e, n)
			}
		}
		for _, sel := range selectorRE.FindAllStringSubmatch(e, -1) {
			for _, m := range matcherRE.FindAllStringSubmatch(sel[2], -1) {
				if labelsOf[sel[1]] != nil && !labelsOf[sel[1]][m[1]] {
					t.Errorf("query %q matches label %s, which %s does not carry", e, m[1], sel[1])
				}
			}
		}
		for _, by := range byRE.FindAllStringSubmatch(e, -1) {
			for _, l := range strings.Split(by[1], ",") {
				l = strings.TrimSpace(l)
				if !slices.ContainsFunc(names, func(n string) bool { return labelsOf[n] != nil && labelsOf[n][l] }) {
					t.Errorf("query %q groups by %s, which none of its metrics carry", e, l)
				}
			}
		}
	}
	for _, want := range []string{"verdict_recall", "verdict_precision", "verdict_flag_rate", "verdict_label_coverage", "verdict_judgement", "verdict_ingest_events_accepted_total"} {
		if !seen[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}
