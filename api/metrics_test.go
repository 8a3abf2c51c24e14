package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

func testWindows() *window.Windows {
	w := window.New(5*time.Minute, 24*time.Hour)
	b := time.Now().Unix() / 300 * 300
	w.Observe([]tally.Delta{
		{Key: tally.Key{Variant: "v5"}, Bucket: b, Counts: tally.Counts{Predictions: 10, Flagged: 4, TP: 3, FP: 1, FN: 1, TN: 5}},
		{Key: tally.Key{Variant: "v5", SegmentKey: "mcc", Segment: "5411"}, Bucket: b, Counts: tally.Counts{Predictions: 10, Flagged: 4, TP: 3, FP: 1, FN: 1, TN: 5}},
		{Key: tally.Key{Variant: "v6"}, Bucket: b, Counts: tally.Counts{Predictions: 2, TN: 2}},
		{Key: tally.Key{Variant: "v6", SegmentKey: "mcc", Segment: "5411"}, Bucket: b, Counts: tally.Counts{Predictions: 2, TN: 2}},
	})
	return w
}

func TestMetricsEndpoint(t *testing.T) {
	h := NewMetricsHandler(testWindows(), nil, nil)
	tests := []struct {
		name, query  string
		status       int
		variants     int
		segments     int
		errParameter string
	}{
		{"per variant by default", "window=1h", 200, 2, 0, ""},
		{"segments on request", "window=24h&by=segment", 200, 2, 2, ""},
		{"one variant", "window=all&by=segment&variant=v6", 200, 1, 1, ""},
		{"unknown segment key filters everything out", "by=segment&segment_key=country", 200, 2, 0, ""},
		{"a window longer than kept is refused", "window=7d", 400, 0, 0, "window"},
		{"a malformed window is refused", "window=week", 400, 0, 0, "window"},
		{"an unknown grouping is refused", "by=merchant", 400, 0, 0, "by"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/metrics?"+tc.query, nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status != 200 {
				var e ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Parameter != tc.errParameter || e.Error == "" {
					t.Fatalf("error body %s, want parameter %q", rec.Body, tc.errParameter)
				}
				return
			}
			var r MetricsResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			if len(r.Variants) != tc.variants || len(r.Segments) != tc.segments {
				t.Fatalf("got %d variants and %d segments, want %d and %d", len(r.Variants), len(r.Segments), tc.variants, tc.segments)
			}
		})
	}
}

func TestMetricsUndefinedStatisticsAreNull(t *testing.T) {
	rec := httptest.NewRecorder()
	NewMetricsHandler(testWindows(), nil, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/metrics?variant=v6", nil))
	body := rec.Body.String()
	for _, want := range []string{`"precision": null`, `"recall": null`, `"recall_ci": null`, `"flag_rate": 0`, `"start": null`} {
		if !strings.Contains(body, want) {
			t.Errorf("response lacks %s:\n%s", want, body)
		}
	}
	rec = httptest.NewRecorder()
	NewMetricsHandler(testWindows(), nil, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/metrics?variant=v5", nil))
	var r MetricsResponse
	json.Unmarshal(rec.Body.Bytes(), &r)
	if v := r.Variants[0]; v.Precision == nil || *v.Precision != 0.75 || v.Recall == nil || *v.Recall != 0.75 || v.Resolved != 10 {
		t.Errorf("v5: %+v, want precision 0.75, recall 0.75, resolved 10", v)
	}
}
