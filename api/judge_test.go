package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/internal/shadowsim"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/window"
)

func serve(t *testing.T, h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestJudgeHandlerGates(t *testing.T) {
	few := &shadowsim.Fixed{Snap: shadowsim.SnapshotOf(shadowsim.Row("v5", "", 800, 200, 200, 8800), shadowsim.Row("v6", "", 10, 1, 2, 50))}
	for _, tc := range []struct {
		name       string
		snaps      *shadowsim.Fixed
		method     string
		target     string
		body       string
		wantStatus int
		wantDec    judge.Decision
	}{
		{"argo: a fail is still 200 with the decision in the body", shadowsim.Regressed(), "GET",
			"/v1/judge?baseline=v5&candidate=v6&window=24h", "", 200, judge.Fail},
		{"argo: pass", shadowsim.Healthy(), "GET", "/v1/judge?baseline=v5&candidate=v6", "", 200, judge.Pass},
		{"flagger: fail halts with 412", shadowsim.Regressed(), "GET",
			"/v1/judge?baseline=v5&candidate=v6&gate=flagger", "", 412, judge.Fail},
		{"flagger: pass proceeds with 200", shadowsim.Healthy(), "GET",
			"/v1/judge?baseline=v5&candidate=v6&gate=flagger", "", 200, judge.Pass},
		{"flagger: inconclusive proceeds by default", few, "GET",
			"/v1/judge?baseline=v5&candidate=v6&gate=flagger", "", 200, judge.Inconclusive},
		{"flagger: inconclusive halts when asked", few, "GET",
			"/v1/judge?baseline=v5&candidate=v6&gate=flagger&inconclusive=halt", "", 412, judge.Inconclusive},
		{"flagger: webhook POST takes the variants from metadata", shadowsim.Regressed(), "POST",
			"/v1/judge?gate=flagger",
			`{"name":"fraud","namespace":"prod","phase":"Progressing","checksum":"abc","metadata":{"baseline":"v5","candidate":"v6","window":"1h"}}`,
			412, judge.Fail},
		{"flagger: query parameters win over metadata", shadowsim.Healthy(), "POST",
			"/v1/judge?gate=flagger&baseline=v5&candidate=v6",
			`{"name":"fraud","metadata":{"baseline":"nope","candidate":"nope2"}}`, 200, judge.Pass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testJudgeHandler(t, tc.snaps)
			rec := serve(t, h, tc.method, tc.target, tc.body)
			if rec.Code != tc.wantStatus {
				t.Errorf("status %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body)
			}
			var j struct {
				Decision judge.Decision `json:"decision"`
				Reason   string         `json:"reason"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &j); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, rec.Body)
			}
			if j.Decision != tc.wantDec || rec.Header().Get(DecisionHeader) != string(tc.wantDec) {
				t.Errorf("decision %q (header %q), want %q: %s", j.Decision, rec.Header().Get(DecisionHeader), tc.wantDec, j.Reason)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
		})
	}
}

func TestJudgeHandlerAsksForTheRequestedWindow(t *testing.T) {
	snaps := shadowsim.Healthy()
	h, err := NewJudgeHandler(snaps, judge.Config{Range: judge.Sliding(window.Span(3600e9))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, h, "GET", "/v1/judge?baseline=v5&candidate=v6&window=7d", "")
	serve(t, h, "GET", "/v1/judge?baseline=v5&candidate=v6", "")
	if len(snaps.Asked) != 2 || snaps.Asked[0].String() != "7d" || snaps.Asked[1].String() != "1h" {
		t.Errorf("windows asked %v, want [7d 1h] (the default from Config.Range)", snaps.Asked)
	}
}

func TestJudgeHandlerReadsComparisonPeriods(t *testing.T) {
	first := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	snaps := shadowsim.Healthy()
	snaps.First = first
	h := testJudgeHandler(t, snaps)
	// Default (judge.Config{}): the period since the candidate's first prediction.
	rec := serve(t, h, "GET", "/v1/judge?baseline=v5&candidate=v6", "")
	var j judge.Judgement
	if err := json.Unmarshal(rec.Body.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	if j.Window != "period" || j.WindowStart == nil || !j.WindowStart.Equal(first) {
		t.Errorf("default judgement over %q from %v, want the period from %s", j.Window, j.WindowStart, first)
	}
	// since= starts the period where the gate says (the rollout's start).
	serve(t, h, "GET", "/v1/judge?baseline=v5&candidate=v6&since=2026-12-02T10:00:00Z", "")
	serve(t, h, "GET", "/v1/judge?baseline=v5&candidate=v6&window=period", "")
	want := []time.Time{first, time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), first}
	if len(snaps.Since) != 3 || !snaps.Since[0].Equal(want[0]) || !snaps.Since[1].Equal(want[1]) || !snaps.Since[2].Equal(want[2]) {
		t.Errorf("periods asked from %v, want %v", snaps.Since, want)
	}
	for _, bad := range []string{"since=yesterday", "since=2026-12-02T10:00:00Z&window=1h"} {
		if rec := serve(t, h, "GET", "/v1/judge?baseline=v5&candidate=v6&"+bad, ""); rec.Code != 400 || !strings.Contains(rec.Body.String(), `"parameter": "since"`) {
			t.Errorf("%s: status %d %s, want 400 naming since", bad, rec.Code, rec.Body)
		}
	}
}

// testJudgeHandler is the /v1/judge handler over snaps with the default config.
func testJudgeHandler(tb testing.TB, snaps judge.Snapshots) *JudgeHandler {
	tb.Helper()
	h, err := NewJudgeHandler(snaps, judge.Config{}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// testCompareHandler is the /v1/compare handler over snaps with the default config.
func testCompareHandler(tb testing.TB, snaps judge.Snapshots) *CompareHandler {
	tb.Helper()
	h, err := NewCompareHandler(snaps, judge.Config{}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func TestHandlersRejectBadParametersNamingThem(t *testing.T) {
	jh := testJudgeHandler(t, shadowsim.Healthy())
	ch := testCompareHandler(t, shadowsim.Healthy())
	for _, tc := range []struct {
		name, method, target, body string
		h                          http.Handler
		status                     int
		param                      string
	}{
		{"missing baseline", "GET", "/v1/judge?candidate=v6", "", jh, 400, "baseline"},
		{"missing candidate", "GET", "/v1/judge?baseline=v5", "", jh, 400, "candidate"},
		{"same variant twice", "GET", "/v1/judge?baseline=v5&candidate=v5", "", jh, 400, "candidate"},
		{"unparseable window", "GET", "/v1/judge?baseline=v5&candidate=v6&window=yesterday", "", jh, 400, "window"},
		{"negative window", "GET", "/v1/judge?baseline=v5&candidate=v6&window=-1h", "", jh, 400, "window"},
		{"unknown gate", "GET", "/v1/judge?baseline=v5&candidate=v6&gate=spinnaker", "", jh, 400, "gate"},
		{"inconclusive without flagger gate", "GET", "/v1/judge?baseline=v5&candidate=v6&inconclusive=halt", "", jh, 400, "inconclusive"},
		{"unknown inconclusive mode", "GET", "/v1/judge?baseline=v5&candidate=v6&gate=flagger&inconclusive=maybe", "", jh, 400, "inconclusive"},
		{"misspelt parameter", "GET", "/v1/judge?baseline=v5&candiate=v6", "", jh, 400, "candiate"},
		{"repeated parameter", "GET", "/v1/judge?baseline=v5&baseline=v4&candidate=v6", "", jh, 400, "baseline"},
		{"malformed webhook body", "POST", "/v1/judge?gate=flagger", "{not json", jh, 400, "body"},
		{"oversize webhook body", "POST", "/v1/judge?gate=flagger", `{"name":"` + strings.Repeat("x", maxWebhookBody) + `"}`, jh, 400, "body"},
		{"judge refuses DELETE", "DELETE", "/v1/judge?baseline=v5&candidate=v6", "", jh, 405, ""},
		{"compare: unknown sort", "GET", "/v1/compare?baseline=v5&candidate=v6&sort=vibes", "", ch, 400, "sort"},
		{"compare: missing candidate", "GET", "/v1/compare?baseline=v5", "", ch, 400, "candidate"},
		{"compare: gate is not a compare parameter", "GET", "/v1/compare?baseline=v5&candidate=v6&gate=flagger", "", ch, 400, "gate"},
		{"compare refuses POST", "POST", "/v1/compare?baseline=v5&candidate=v6", "", ch, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(t, tc.h, tc.method, tc.target, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			var e ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("want a JSON error body, got %s (%v)", rec.Body, err)
			}
			if e.Parameter != tc.param {
				t.Errorf("parameter %q, want %q (%s)", e.Parameter, tc.param, e.Error)
			}
		})
	}
}

func TestConstructorsRejectBadSetup(t *testing.T) {
	if _, err := NewJudgeHandler(nil, judge.Config{}, nil); err == nil {
		t.Error("nil snapshots accepted")
	}
	if _, err := NewCompareHandler(shadowsim.Healthy(), judge.Config{Alpha: 2}, nil); err == nil || !strings.Contains(err.Error(), "Alpha") {
		t.Errorf("bad alpha: %v", err)
	}
}

func TestCompareHandlerSortsByDivergence(t *testing.T) {
	// The candidate's electronics scores moved; that segment diverges most.
	h := testCompareHandler(t, shadowsim.Regressed())
	rec := serve(t, h, "GET", "/v1/compare?baseline=v5&candidate=v6&window=7d", "")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var rep judge.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Window != "7d" || rep.Sort != judge.SortDivergence || len(rep.Segments) != 6 {
		t.Fatalf("report window %s sort %s segments %d", rep.Window, rep.Sort, len(rep.Segments))
	}
	if rep.Segments[0].Segment != "electronics" {
		t.Errorf("first segment %s, want electronics", rep.Segments[0].Segment)
	}
	for i := 1; i < len(rep.Segments); i++ {
		if *rep.Segments[i].PSI > *rep.Segments[i-1].PSI {
			t.Errorf("segments not in PSI order at %d", i)
		}
	}
	first := rep.Segments[0]
	if first.Baseline.Predictions == 0 || first.Candidate.MeanScore == nil || first.RecallPValue == nil || first.Decision != judge.Fail {
		t.Errorf("row lacks numbers: %+v", first)
	}
}

// FuzzJudgeHandler: whatever the query and body, the handler answers JSON with a
// known status and never panics.
func FuzzJudgeHandler(f *testing.F) {
	f.Add("baseline=v5&candidate=v6&window=24h", "")
	f.Add("gate=flagger&inconclusive=halt", `{"metadata":{"baseline":"v5","candidate":"v6","window":"7d"}}`)
	f.Add("baseline=%ff&candidate=\x00&window=99999999999d", `{"metadata":null}`)
	h := testJudgeHandler(f, shadowsim.Healthy())
	f.Fuzz(func(t *testing.T, query, body string) {
		req := httptest.NewRequest("POST", "/v1/judge", strings.NewReader(body))
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 412:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, query, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %s", rec.Body)
		}
	})
}

func TestJudgeRefusesWindowsLongerThanKept(t *testing.T) {
	w := window.New(5*time.Minute, 24*time.Hour)
	h := testJudgeHandler(t, w)
	for q, want := range map[string]int{"window=7d": http.StatusBadRequest, "window=24h": http.StatusOK, "window=all": http.StatusOK} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/judge?baseline=v5&candidate=v6&"+q, nil))
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d: %s", q, rec.Code, want, rec.Body)
		}
	}
}
