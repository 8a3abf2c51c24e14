package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/verdictml/verdict/internal/shadowsim"
)

// handlers are every /v1 handler of the package, with a valid query each.
func handlers(t *testing.T) map[string]http.Handler {
	t.Helper()
	jh := testJudgeHandler(t, shadowsim.Healthy())
	ch := testCompareHandler(t, shadowsim.Healthy())
	w := testWindows()
	return map[string]http.Handler{
		"/v1/metrics?window=1h":                NewMetricsHandler(w, nil, nil),
		"/v1/coverage?by=segment":              NewCoverageHandler(w, nil),
		"/v1/series?window=1h":                 NewSeriesHandler(w, nil),
		"/v1/judge?baseline=v5&candidate=v6":   jh,
		"/v1/compare?baseline=v5&candidate=v6": ch,
	}
}

// Every endpoint answers alike: JSON not to be cached, HEAD as GET without the
// body, 405 naming the methods, and a strict query string.
func TestEveryEndpointSharesTheEnvelope(t *testing.T) {
	for target, h := range handlers(t) {
		path, query, _ := strings.Cut(target, "?")
		get := serve(t, h, http.MethodGet, target, "")
		head := serve(t, h, http.MethodHead, target, "")
		if get.Code != http.StatusOK || head.Code != http.StatusOK || head.Body.Len() != 0 {
			t.Errorf("%s: GET %d, HEAD %d with %d bytes; want 200 and 200 without a body", target, get.Code, head.Code, head.Body.Len())
		}
		for _, rec := range []*httptest.ResponseRecorder{get, head} {
			if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("%s: headers %v", target, rec.Header())
			}
		}
		if rec := serve(t, h, http.MethodDelete, target, ""); rec.Code != http.StatusMethodNotAllowed ||
			!strings.HasPrefix(rec.Header().Get("Allow"), "GET, HEAD") || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: DELETE %d, Allow %q", target, rec.Code, rec.Header().Get("Allow"))
		}
		for bad, param := range map[string]string{
			query + "&zz=1&aa=2": "aa",
			"zz=1;" + query:      "zz",
			query + "&" + query:  strings.Split(query, "=")[0],
		} {
			rec := serve(t, h, http.MethodGet, path+"?"+bad, "")
			var e ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != http.StatusBadRequest || e.Parameter != param {
				t.Errorf("%s?%s: %d %s, want 400 naming %s", path, bad, rec.Code, rec.Body, param)
			}
		}
	}
}
