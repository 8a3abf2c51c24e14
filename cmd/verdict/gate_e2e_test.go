package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestGatePollingTheBinary is what an Argo Rollouts AnalysisRun does: it asks the real
// binary's /v1/judge again and again while a shadow candidate's predictions and their
// labels stream in. The candidate misses most fraud in one of eight merchant
// categories from the start. No look may say pass; the gate fails, naming that
// category; the judgement's paired counts equal a plain recount of what was sent; and
// /metrics carries the same decision.
func TestGatePollingTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	s := startServer(t, t.TempDir(), "VERDICT_BASELINE=v5", "VERDICT_CANDIDATES=v6", "VERDICT_MATURITY=0")
	cats := []string{"grocery", "travel", "electronics", "gaming", "fuel", "jewelry", "pharmacy", "digital_goods"}
	rng := rand.New(rand.NewPCG(42, 1))
	start := time.Now().UTC().Add(-50 * time.Minute).Truncate(time.Minute)
	since := url.QueryEscape(start.Format(time.RFC3339))

	// Recount of the labeled positives of electronics, paired: only v5 flagged (b),
	// only v6 flagged (c).
	var b, c int
	type ev struct {
		id, cat string
		fraud   bool
		s5, s6  float64
		at      time.Time
	}
	const chunks, perChunk = 10, 400
	var pending []ev // labels sent one chunk after their predictions
	sawFail := false
	for k := range chunks {
		var lines []string
		var evs []ev
		for i := range perChunk {
			e := ev{id: fmt.Sprintf("gate-%d-%d", k, i), cat: cats[rng.IntN(len(cats))], fraud: rng.Float64() < 0.15,
				at: start.Add(time.Duration(k*perChunk+i) * 600 * time.Millisecond)}
			hit5, hit6 := rng.Float64() < 0.9, rng.Float64() < 0.9
			if e.cat == "electronics" {
				hit6 = rng.Float64() < 0.3 // the regression: v6 misses most fraud here
			}
			if !e.fraud {
				hit5, hit6 = rng.Float64() < 0.03, rng.Float64() < 0.03
			}
			score := func(hit bool) float64 {
				if hit {
					return 0.6 + 0.4*rng.Float64()
				}
				return 0.4 * rng.Float64()
			}
			e.s5, e.s6 = score(hit5), score(hit6)
			evs = append(evs, e)
			for _, v := range []struct {
				variant, role string
				score         float64
			}{{"v5", "production", e.s5}, {"v6", "shadow", e.s6}} {
				lines = append(lines, tPred{ID: e.id, Variant: v.variant, Role: v.role, Cat: e.cat, Score: v.score, Time: e.at}.line())
			}
		}
		if code, r, err := s.post("/v1/predictions", lines, ""); err != nil || code != http.StatusOK {
			t.Fatalf("chunk %d predictions: %d %+v %v", k, code, r, err)
		}
		lines = lines[:0]
		for _, e := range pending {
			lines = append(lines, tLabel{ID: e.id, Fraud: e.fraud, Time: e.at.Add(time.Second)}.line())
			if e.fraud && e.cat == "electronics" {
				switch f5, f6 := e.s5 >= 0.5, e.s6 >= 0.5; {
				case f5 && !f6:
					b++
				case f6 && !f5:
					c++
				}
			}
		}
		if len(lines) > 0 {
			if code, r, err := s.post("/v1/labels", lines, ""); err != nil || code != http.StatusOK {
				t.Fatalf("chunk %d labels: %d %+v %v", k, code, r, err)
			}
		}
		pending = evs

		code, body := s.get("/v1/judge?baseline=v5&candidate=v6&since="+since, "")
		if code != http.StatusOK {
			t.Fatalf("look %d: %d %s", k, code, body)
		}
		var j struct {
			Decision, Reason, Design, Window string
			Segments                         []struct {
				Segment  string
				Decision string
				Recall   struct {
					OnlyBaseline  *int `json:"only_baseline"`
					OnlyCandidate *int `json:"only_candidate"`
				}
			}
		}
		if err := json.Unmarshal(body, &j); err != nil {
			t.Fatal(err)
		}
		t.Logf("look %d: %s (%d electronics positives only v5 caught, %d only v6)", k, j.Decision, b, c)
		if j.Decision == "pass" {
			t.Fatalf("look %d passed a regressed candidate: %s", k, j.Reason)
		}
		if j.Design != "paired" || j.Window != "period" {
			t.Errorf("look %d: design %q over %q, want paired over the period", k, j.Design, j.Window)
		}
		for _, sg := range j.Segments {
			if sg.Segment != "electronics" || k == 0 {
				continue
			}
			if sg.Recall.OnlyBaseline == nil || *sg.Recall.OnlyBaseline != b || *sg.Recall.OnlyCandidate != c {
				t.Errorf("look %d: electronics discordant positives %v/%v, recount %d/%d", k, sg.Recall.OnlyBaseline, sg.Recall.OnlyCandidate, b, c)
			}
		}
		if j.Decision == "fail" {
			sawFail = true
			if !strings.Contains(j.Reason, "merchant_category=electronics") {
				t.Errorf("look %d: fail without naming electronics: %s", k, j.Reason)
			}
		} else if sawFail {
			t.Errorf("look %d: %s after a fail on the same, growing data", k, j.Decision)
		}
	}
	if !sawFail {
		t.Fatal("the gate never failed the regressed candidate")
	}
	_, metrics := s.get("/metrics", "")
	if !strings.Contains(string(metrics), `verdict_judgement{baseline="v5",candidate="v6",decision="fail",window="period"} 1`) {
		t.Errorf("/metrics does not carry the fail:\n%s", grepLines(string(metrics), "verdict_judgement"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
