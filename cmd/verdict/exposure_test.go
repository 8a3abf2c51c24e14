package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// checkFails runs `config --check` and `serve` with env and wants both to fail
// naming want (serve with a cancelled context: it must fail on the settings, not
// start).
func checkFails(t *testing.T, want string, env ...string) {
	t.Helper()
	t.Setenv("VERDICT_DATA_DIR", t.TempDir())
	t.Setenv("VERDICT_ADDR", "127.0.0.1:0")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	if code := realMain([]string{"config", "--check"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), want) {
		t.Errorf("config --check with %v: exit %d, stderr %q; want exit 1 naming %s", env, code, errOut.String(), want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := runServe(ctx, nil, &out); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("serve with %v: %v; want an error naming %s", env, err, want)
	}
}

func TestEveryBadSettingNamesItsVariable(t *testing.T) {
	tests := []struct{ env, want string }{
		{"VERDICT_MAX_LINE_BYTES=-5", "VERDICT_MAX_LINE_BYTES"},
		{"VERDICT_DEFAULT_THRESHOLD=1.5", "VERDICT_DEFAULT_THRESHOLD"},
		{"VERDICT_THRESHOLDS=v5:2", `VERDICT_THRESHOLDS ["v5"]`},
		{"VERDICT_INPUT_FORMAT=xml", "VERDICT_INPUT_FORMAT"},
		{"VERDICT_CAPTURE_SCORE=bogus", "VERDICT_CAPTURE_SCORE"},
		{"VERDICT_MAX_CONCURRENT_INGEST=0", "VERDICT_MAX_CONCURRENT_INGEST"},
		{"VERDICT_BODY_READ_TIMEOUT=1ms", "VERDICT_BODY_READ_TIMEOUT"},
		{"VERDICT_MAX_VARIANTS=-1", "VERDICT_MAX_VARIANTS"},
		{"VERDICT_MAX_CLOCK_SKEW=-1m", "VERDICT_MAX_CLOCK_SKEW"},
		{"VERDICT_STORE_CACHE_MB=-1", "VERDICT_STORE_CACHE_MB"},
		{"VERDICT_STORE_MIN_FREE_MB=-1", "VERDICT_STORE_MIN_FREE_MB"},
		{"VERDICT_STORE_RECOVERY=maybe", "VERDICT_STORE_RECOVERY"},
		{"VERDICT_MATURE_EVERY=0s", "VERDICT_MATURE_EVERY"},
		{"VERDICT_JUDGE_ALPHA=2", "VERDICT_JUDGE_ALPHA"},
		{"VERDICT_ADDR=8080", "VERDICT_ADDR"},
		{"VERDICT_API_TOKEN=two words", "VERDICT_API_TOKEN"},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) { checkFails(t, tc.want, tc.env) })
	}
}

func TestListeningBeyondLoopbackNeedsATokenOrAnExplicitOptOut(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "10.1.2.3:8080", "[::]:8080"} {
		t.Run(addr, func(t *testing.T) {
			checkFails(t, "VERDICT_API_TOKEN", "VERDICT_ADDR="+addr)
		})
	}
	for _, env := range [][]string{
		{"VERDICT_ADDR=0.0.0.0:8080", "VERDICT_API_TOKEN=s3cret"},
		{"VERDICT_ADDR=0.0.0.0:8080", "VERDICT_ALLOW_UNAUTHENTICATED=true"},
		{"VERDICT_ADDR=localhost:8080"},
		{"VERDICT_ADDR=[::1]:8080"},
	} {
		t.Run(strings.Join(env, " "), func(t *testing.T) {
			for _, kv := range env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			if _, err := loadConfig(); err != nil {
				t.Errorf("%v: %v", env, err)
			}
		})
	}
}

func TestTokenFromASecretFileWithANewlineWorks(t *testing.T) {
	t.Setenv("VERDICT_API_TOKEN", "s3cret\n")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatalf("config with a trailing newline: %v", err)
	}
	h := requireToken(cfg.APIToken, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/v1/metrics", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("the token a client sends is refused: %d %s", rec.Code, rec.Body)
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	h := requireToken("s3cret", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	tests := []struct {
		header string
		status int
		reason string
	}{
		{"Bearer s3cret", 200, ""},
		{"bearer s3cret", 200, ""},
		{"BEARER s3cret", 200, ""},
		{"Bearer   s3cret", 200, ""},
		{"bearer wrong", 401, "wrong bearer token"},
		{"Basic czNjcmV0", 401, "missing bearer token"},
		{"", 401, "missing bearer token"},
		{"Bearer", 401, "missing bearer token"},
	}
	for _, tc := range tests {
		req := httptest.NewRequest(http.MethodGet, "/v1/metrics", nil)
		req.Header.Set("Authorization", tc.header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.reason) {
			t.Errorf("Authorization %q: %d %s, want %d %q", tc.header, rec.Code, rec.Body, tc.status, tc.reason)
		}
	}
}

func TestAPanickingHandlerAnswers500AndIsCounted(t *testing.T) {
	var logs bytes.Buffer
	s := &service{log: slog.New(slog.NewJSONHandler(&logs, nil)), panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "p"})}
	h := s.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("index out of range") }))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for range 2 {
		resp, err := http.Get(srv.URL + "/v1/metrics")
		if err != nil {
			t.Fatalf("a panicking handler dropped the connection: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("status %d, want 500", resp.StatusCode)
		}
	}
	var m dto.Metric
	s.panics.Write(&m)
	if v := m.GetCounter().GetValue(); v != 2 {
		t.Errorf("panics counted %v, want 2", v)
	}
	if !strings.Contains(logs.String(), "index out of range") || !strings.Contains(logs.String(), "stack") {
		t.Errorf("the panic is not logged with its stack:\n%s", logs.String())
	}
}

func TestMalformedQueryStringsAreRefusedOnEveryEndpoint(t *testing.T) {
	s := startInProcess(t, nil, "VERDICT_BASELINE=v5", "VERDICT_CANDIDATES=v6")
	for _, path := range []string{
		"/v1/metrics?window=1h;by=segment",
		"/v1/judge?baseline=v5;candidate=v6",
		"/v1/compare?baseline=v5&candidate=v6&window=1h&window=24h",
		"/v1/metrics?windw=1h",
	} {
		code, body := s.get(path, "")
		var e struct{ Error, Parameter string }
		json.Unmarshal(body, &e)
		if code != http.StatusBadRequest || e.Parameter == "" {
			t.Errorf("GET %s: %d %s, want 400 naming the parameter", path, code, body)
		}
	}
}

func TestEventTimesAndVariantsAtTheService(t *testing.T) {
	s := startInProcess(t, nil, "VERDICT_MAX_VARIANTS=3", "VERDICT_WINDOWS=1h,24h", "VERDICT_RETENTION=48h", "VERDICT_MATURITY=24h")
	now := time.Now().UTC()
	future := tPred{ID: "f", Variant: "v5", Role: "production", Cat: "fuel", Score: 0.9, Time: now.AddDate(1, 0, 0)}
	current := tPred{ID: "c", Variant: "v5", Role: "production", Cat: "fuel", Score: 0.9, Time: now.Add(-time.Minute)}
	old := tPred{ID: "o", Variant: "v5", Role: "production", Cat: "fuel", Score: 0.9, Time: now.Add(-72 * time.Hour)}
	code, r, err := s.post("/v1/predictions", []string{future.line(), current.line(), old.line()}, "")
	if err != nil || code != http.StatusBadRequest || len(r.Rejected) != 2 {
		t.Fatalf("post: %d %+v %v, want 2 rejected", code, r, err)
	}
	if !strings.Contains(r.Rejected[0].Reason, "VERDICT_MAX_CLOCK_SKEW") || !strings.Contains(r.Rejected[1].Reason, "VERDICT_RETENTION") {
		t.Errorf("reasons: %+v", r.Rejected)
	}
	// A label from 2099 would lock the outcome against the real one.
	code, r, _ = s.post("/v1/labels", []string{tLabel{ID: "c", Fraud: false, Time: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}.line()}, "")
	if code != http.StatusBadRequest {
		t.Errorf("label dated 2099: %d %+v", code, r)
	}
	if code, _, _ := s.post("/v1/labels", []string{tLabel{ID: "c", Fraud: true, Time: now}.line()}, ""); code != http.StatusOK {
		t.Errorf("the real label: %d", code)
	}
	got, _ := metricsAPIWindow(t, s, "", "1h")
	if got["v5"] != (cell{Pred: 1, Flag: 1, TP: 1}) {
		t.Errorf("1h window: %+v, want the current prediction only, labeled by the real label", got["v5"])
	}
	newest, _ := metricValue(t, s, `verdict_ingest_newest_event_timestamp_seconds{kind="prediction"}`)
	if newest > float64(time.Now().Add(time.Minute).Unix()) {
		t.Errorf("newest event timestamp %v is in the future", newest)
	}
	if n, _ := metricValue(t, s, `verdict_ingest_events_rejected_total{class="future_time",kind="prediction",source="http"}`); n != 1 {
		t.Errorf("future_time rejections counted %v, want 1", n)
	}

	// Variants beyond the cap are refused, with the reason, and counted.
	var lines []string
	for i := range 5 {
		lines = append(lines, tPred{ID: fmt.Sprintf("v%d", i), Variant: fmt.Sprintf("m%d", i), Role: "production", Cat: "fuel", Score: 0.5, Time: now}.line())
	}
	_, r, _ = s.post("/v1/predictions", lines, "")
	if r.Accepted != 2 || len(r.Rejected) != 3 || !strings.Contains(r.Rejected[0].Reason, "VERDICT_MAX_VARIANTS") {
		t.Errorf("5 new variants with v5 known and a cap of 3: %+v, want 2 accepted and 3 rejected", r)
	}
	if n, _ := metricValue(t, s, `verdict_ingest_events_rejected_total{class="limit_exceeded",kind="prediction",source="http"}`); n != 3 {
		t.Errorf("limit_exceeded rejections counted %v, want 3", n)
	}
}

func TestServerBoundsEveryPhaseOfAConnection(t *testing.T) {
	s := &service{log: slog.New(slog.DiscardHandler)}
	srv := s.httpServer(http.NotFoundHandler())
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
		"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout,
	} {
		if d <= 0 {
			t.Errorf("%s is not set: a client could hold a connection forever", name)
		}
	}
}
