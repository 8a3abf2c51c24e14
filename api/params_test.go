package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestUnknownAndMalformedParametersAreRefused(t *testing.T) {
	h := NewMetricsHandler(testWindows(), nil, nil)
	tests := []struct {
		name, query, parameter, reason string
	}{
		{"a semicolon hides a second parameter", "window=1h;by=segment", "window", "separate parameters with '&'"},
		{"an unknown parameter", "window=1h&segment=5411", "segment", "unknown parameter"},
		{"a misspelt parameter", "windw=1h", "windw", "unknown parameter"},
		{"a parameter given twice", "window=1h&window=24h", "window", "given 2 times"},
		{"segment_key without by=segment", "segment_key=mcc", "segment_key", "only applies with by=segment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/metrics?"+tc.query, nil))
			var e ErrorBody
			json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != http.StatusBadRequest || e.Parameter != tc.parameter || !strings.Contains(e.Error, tc.reason) {
				t.Fatalf("%s: %d %s, want 400 with parameter %q and %q", tc.query, rec.Code, rec.Body, tc.parameter, tc.reason)
			}
		})
	}
}

func TestCoverageRefusesUnknownParameters(t *testing.T) {
	h := NewCoverageHandler(testWindows(), nil)
	for _, q := range []string{"windw=1h", "by=segment;variant=v5"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/coverage?"+q, nil))
		var e ErrorBody
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusBadRequest || e.Parameter == "" {
			t.Errorf("%s: %d %s, want 400 naming the parameter", q, rec.Code, rec.Body)
		}
	}
}
