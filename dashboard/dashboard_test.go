package dashboard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestPageServesOnlyItsOwnAssets(t *testing.T) {
	h := Page()
	for _, tc := range []struct {
		path, method string
		status       int
		contentType  string
	}{
		{"/", http.MethodGet, 200, "text/html"},
		{"/assets/app.js", http.MethodGet, 200, "text/javascript"},
		{"/assets/app.css", http.MethodGet, 200, "text/css"},
		{"/assets/missing.js", http.MethodGet, 404, ""},
		{"/assets/../dashboard.go", http.MethodGet, 404, ""},
		{"/index.html", http.MethodGet, 404, ""},
		{"/v2/anything", http.MethodGet, 404, ""},
		{"/", http.MethodPost, 405, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), tc.contentType) {
				t.Errorf("status %d content type %q, want %d %q", rec.Code, rec.Header().Get("Content-Type"), tc.status, tc.contentType)
			}
			if csp := rec.Header().Get("Content-Security-Policy"); tc.status == 200 && !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP %q", csp)
			}
		})
	}
}

// TestPageLoadsNothingFromElsewhere: no URL in the page or its assets leaves this
// server (no CDN, works offline), and no inline script or style needs the CSP relaxed.
func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	h := Page()
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["'](https?:)?//`)
	for _, path := range []string{"/", "/assets/app.js", "/assets/app.css"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		body, _ := io.ReadAll(rec.Body)
		if m := external.Find(body); m != nil {
			t.Errorf("%s loads from elsewhere: %q", path, m)
		}
		if path == "/" && (regexp.MustCompile(`<script>|<style|style="`).Match(body)) {
			t.Errorf("the page has inline script or style, which its CSP refuses")
		}
	}
}

func TestSettingsHandler(t *testing.T) {
	h := SettingsHandler(Settings{Baseline: "v5", Windows: []string{"1h"}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/dashboard", nil))
	var s Settings
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil || s.Baseline != "v5" || s.Candidates == nil || s.RefreshSeconds != 10 {
		t.Errorf("settings %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/dashboard?x=1", nil))
	if rec.Code != 400 {
		t.Errorf("unknown parameter: %d", rec.Code)
	}
}

func TestIngestHealthReadsTheRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	accepted := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricAccepted}, []string{"kind", "source"})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRejected}, []string{"kind", "source", "class"})
	newest := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricNewest}, []string{"kind"})
	ready := prometheus.NewGauge(prometheus.GaugeOpts{Name: metricReady})
	reg.MustRegister(accepted, rejected, newest, ready)
	ready.Set(1)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	newest.WithLabelValues("prediction").Set(float64(now.Add(-3 * time.Second).Unix()))
	accepted.WithLabelValues("prediction", "http").Add(100)
	accepted.WithLabelValues("prediction", "kinesis").Add(50)
	rejected.WithLabelValues("prediction", "http", "invalid_field").Add(4)

	h := NewIngestHealth(reg, nil)
	h.now = func() time.Time { return now }
	if _, err := h.sample(); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Second)
	accepted.WithLabelValues("prediction", "http").Add(200)
	rejected.WithLabelValues("prediction", "http", "invalid_field").Add(10)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/ingest", nil))
	var in Ingest
	if err := json.Unmarshal(rec.Body.Bytes(), &in); err != nil {
		t.Fatal(err)
	}
	if !in.Ready || len(in.Kinds) != 1 {
		t.Fatalf("health %s", rec.Body)
	}
	k := in.Kinds[0]
	if k.Accepted != 350 || k.Rejected != 14 {
		t.Errorf("totals: %v accepted, %v rejected; want the sum over sources, 350 and 14", k.Accepted, k.Rejected)
	}
	if k.AcceptedPerSecond == nil || *k.AcceptedPerSecond != 20 || *k.RejectedPerSecond != 1 {
		t.Errorf("rates %v %v, want 20/s and 1/s over the 10 s between readings", k.AcceptedPerSecond, k.RejectedPerSecond)
	}
	if k.LagSeconds == nil || *k.LagSeconds != 13 {
		t.Errorf("lag %v, want 13 s", k.LagSeconds)
	}
	if len(in.Rejections) != 1 || in.Rejections[0].Class != "invalid_field" || in.Rejections[0].Count != 14 {
		t.Errorf("rejections %+v", in.Rejections)
	}
}

func TestIngestHealthHasNoRateBeforeTwoReadings(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricAccepted}, []string{"kind", "source"})
	reg.MustRegister(c)
	c.WithLabelValues("label", "http").Add(5)
	in, err := NewIngestHealth(reg, nil).sample()
	if err != nil {
		t.Fatal(err)
	}
	if in.Kinds[0].AcceptedPerSecond != nil {
		t.Errorf("a rate from one reading: %v", *in.Kinds[0].AcceptedPerSecond)
	}
}
