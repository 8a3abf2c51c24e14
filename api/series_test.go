package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

func TestSeriesEndpoint(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 2, 0, 0, time.UTC)
	w := window.New(5*time.Minute, 24*time.Hour, window.Clock(func() time.Time { return now }))
	at := func(hh, mm int) int64 { return time.Date(2026, 11, 25, hh, mm, 0, 0, time.UTC).Unix() }
	seg := func(v string) tally.Key {
		return tally.Key{Variant: v, SegmentKey: "merchant_category", Segment: "electronics"}
	}
	w.Observe([]tally.Delta{
		// An old, fully resolved cohort and a recent one whose negatives are not in.
		{Key: tally.Key{Variant: "v5"}, Bucket: at(11, 0), Counts: tally.Counts{Predictions: 100, Flagged: 20, TP: 15, FP: 5, FN: 3, TN: 77}},
		{Key: tally.Key{Variant: "v5"}, Bucket: at(12, 0), Counts: tally.Counts{Predictions: 100, Flagged: 20, TP: 10, FN: 1}},
		{Key: tally.Key{Variant: "v6"}, Bucket: at(11, 0), Counts: tally.Counts{Predictions: 100, Flagged: 10, TP: 8, FP: 2, FN: 10, TN: 80}},
		{Key: seg("v6"), Bucket: at(11, 0), Counts: tally.Counts{Predictions: 10, Flagged: 1, TP: 1, FN: 4, TN: 5}},
		{Key: seg("v5"), Bucket: at(11, 0), Counts: tally.Counts{Predictions: 10, Flagged: 5, TP: 5, TN: 5}},
	})
	h := NewSeriesHandler(w, nil)
	get := func(t *testing.T, q string) (int, SeriesResponse, ErrorBody) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/series?"+q, nil))
		var r SeriesResponse
		var e ErrorBody
		if rec.Code == 200 {
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
		} else if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		return rec.Code, r, e
	}

	t.Run("per variant, each step with counts, intervals and estimability", func(t *testing.T) {
		code, r, e := get(t, "window=2h&step=1h")
		if code != 200 {
			t.Fatalf("status %d: %s", code, e.Error)
		}
		if r.Step != "1h" || r.Window != "2h" || len(r.Series) != 2 || r.Series[0].Variant != "v5" || r.Series[1].Variant != "v6" {
			t.Fatalf("got step %s window %s series %+v", r.Step, r.Window, r.Series)
		}
		pts := r.Series[0].Points
		if len(pts) != 3 || !pts[2].Partial || pts[1].Partial {
			t.Fatalf("points %+v: want 10:00, 11:00, 12:00 (partial)", pts)
		}
		old, recent := pts[1], pts[2]
		if old.Predictions != 100 || old.TP != 15 || old.Resolved != 100 {
			t.Errorf("11:00 counts %+v", old.Counts)
		}
		p := old.Statistics["precision"]
		if !p.Estimable || p.Value == nil || *p.Value != 0.75 || p.CI == nil {
			t.Errorf("resolved step precision %+v, want 0.75 with a CI", p)
		}
		p = recent.Statistics["precision"]
		if p.Estimable || p.Value != nil || p.Bounds == nil || p.Reason == "" {
			t.Errorf("recent step precision %+v, want null, not estimable, with bounds and a reason", p)
		}
		if rc := recent.Statistics["recall"]; !rc.Estimable || rc.Note == "" {
			t.Errorf("recent step recall %+v, want estimable and marked early", rc)
		}
		if fr := old.Statistics["flag_rate"]; fr.Value == nil || *fr.Value != 0.2 || fr.CI == nil {
			t.Errorf("flag rate %+v, want 0.2 with a Wilson interval", fr)
		}
		if empty := pts[0].Statistics["label_coverage"]; empty.Value != nil || empty.Estimable || empty.Reason == "" {
			t.Errorf("empty step label coverage %+v, want null with a reason", empty)
		}
	})
	t.Run("one segment of one variant, chosen statistics", func(t *testing.T) {
		code, r, e := get(t, "window=1h&step=30m&variant=v6&segment=merchant_category%3Delectronics&metric=recall,flag_rate")
		if code != 200 {
			t.Fatalf("status %d: %s", code, e.Error)
		}
		if len(r.Series) != 1 || r.Series[0].Segment != "electronics" || r.Series[0].Variant != "v6" {
			t.Fatalf("series %+v", r.Series)
		}
		for _, p := range r.Series[0].Points {
			if len(p.Statistics) != 2 {
				t.Errorf("statistics %v, want recall and flag_rate only", p.Statistics)
			}
		}
		if len(r.Metrics) != 2 || r.Metrics[0] != "recall" {
			t.Errorf("metrics %v", r.Metrics)
		}
	})
	t.Run("the default step keeps a day to at most 120 points", func(t *testing.T) {
		_, r, _ := get(t, "")
		if r.Window != "24h" || r.Step != "15m" {
			t.Errorf("window %s step %s, want 24h in 15m steps", r.Window, r.Step)
		}
	})
	for _, tc := range []struct{ name, query, param string }{
		{"all time has no steps", "window=all", "window"},
		{"longer than kept", "window=7d", "window"},
		{"a step that is not whole buckets", "step=7m", "step"},
		{"a day of five-minute steps is fine", "window=24h&step=5m&metric=precision", ""},
		{"an unknown statistic", "metric=auc", "metric"},
		{"a segment without its key", "segment=electronics", "segment"},
		{"an unknown parameter", "by=segment", "by"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, e := get(t, tc.query)
			if tc.param == "" {
				if code != 200 {
					t.Errorf("status %d: %s", code, e.Error)
				}
				return
			}
			if code != 400 || e.Parameter != tc.param {
				t.Errorf("status %d parameter %q (%s), want 400 naming %s", code, e.Parameter, e.Error, tc.param)
			}
		})
	}
}
