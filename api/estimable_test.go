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

const day = 24 * time.Hour

// agedWindows holds v5's predictions of three cohorts, at a fixed clock:
//   - 2h old: 100 predictions, 10 flagged; only 2 fraud labels so far (positives
//     come first);
//   - 10 days old: 100, 10 flagged; 6 positives labeled, the rest pending;
//   - 40 days old (matured): 100, 10 flagged; 7 TP and 3 FP, 5 FN and 85 TN, of
//     which 80 resolved by maturity.
func agedWindows(now time.Time) *window.Windows {
	w := window.New(5*time.Minute, 7*day, window.Cohorts(45*day), window.Clock(func() time.Time { return now }))
	at := func(age time.Duration) int64 { return now.Add(-age).Unix() / 300 * 300 }
	v5 := tally.Key{Variant: "v5"}
	w.Observe([]tally.Delta{
		{Key: v5, Bucket: at(2 * time.Hour), Counts: tally.Counts{Predictions: 100, Flagged: 10, TP: 2}},
		{Key: v5, Bucket: at(10 * day), Counts: tally.Counts{Predictions: 100, Flagged: 10, TP: 5, FN: 1}},
		{Key: v5, Bucket: at(40 * day), Counts: tally.Counts{Predictions: 100, Flagged: 10, TP: 7, FP: 3, FN: 5, TN: 85, Matured: 80}},
	})
	return w
}

func getJSON(t *testing.T, h http.Handler, url string, v any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("%s: %v\n%s", url, err, rec.Body)
		}
	} else if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("%s: error body %s", url, rec.Body)
	}
	return rec.Code
}

func TestMetricsMarkWhatIsNotEstimable(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	h := NewMetricsHandler(agedWindows(now), nil, nil, WithPolicy(LabelPolicy{Maturity: 30 * day, Declined: "negative", Coverage: 0.95}))
	tests := []struct {
		name, query string
		// want: predictions, tp, fp; precision estimable (then equal to tp/(tp+fp));
		// recall early.
		pred, tp, fp int64
		precision    bool
		early        bool
		minAge       string
	}{
		{"all time mixes cohorts: precision not estimable", "window=all", 300, 14, 3, false, true, ""},
		{"the last 24h: positive-only labels", "window=24h", 100, 2, 0, false, true, ""},
		{"matured cohorts only: precision estimable and a plain ratio", "window=all&min_age=matured", 100, 7, 3, true, false, "30d"},
		{"a 7d window of predictions at least 35d old", "window=7d&min_age=35d", 100, 7, 3, true, false, "35d"},
		{"a 7d window at least 5d old holds the 10-day cohort", "window=7d&min_age=5d", 100, 5, 0, false, true, "5d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r MetricsResponse
			if code := getJSON(t, h, "/v1/metrics?"+tc.query, &r); code != http.StatusOK {
				t.Fatalf("status %d: %+v", code, r)
			}
			v := r.Variants[0]
			if v.Predictions != tc.pred || v.TP != tc.tp || v.FP != tc.fp {
				t.Fatalf("predictions %d tp %d fp %d, want %d %d %d", v.Predictions, v.TP, v.FP, tc.pred, tc.tp, tc.fp)
			}
			if r.MinAge != tc.minAge || r.Labels == nil || r.Labels.Maturity == nil || *r.Labels.Maturity != "30d" {
				t.Errorf("min_age %q, labels %+v; want min_age %q and maturity 30d", r.MinAge, r.Labels, tc.minAge)
			}
			e := v.Estimable
			if e.Precision.Estimable != tc.precision || (v.Precision != nil) != tc.precision || (v.PrecisionCI != nil) != tc.precision {
				t.Fatalf("precision %v estimable %+v, want estimable %v", v.Precision, e.Precision, tc.precision)
			}
			if tc.precision && *v.Precision != float64(tc.tp)/float64(tc.tp+tc.fp) {
				t.Errorf("precision %v, recount %v", *v.Precision, float64(tc.tp)/float64(tc.tp+tc.fp))
			}
			if !tc.precision && (e.Precision.Reason == "" || v.F1 != nil || e.F1.Estimable) {
				t.Errorf("precision not estimable needs a reason and no F1: %+v, f1 %v", e, v.F1)
			}
			// Bounds: tp / flagged and 1 - fp / flagged (nothing censored here).
			flagged := float64(v.PredictedPositives)
			if b := v.PrecisionBounds; b == nil || b.Lower != float64(tc.tp)/flagged || b.Upper != 1-float64(tc.fp)/flagged {
				t.Errorf("precision bounds %+v, want [%v, %v]", b, float64(tc.tp)/flagged, 1-float64(tc.fp)/flagged)
			}
			if early := strings.HasPrefix(e.Recall.Note, "early:"); !e.Recall.Estimable || early != tc.early {
				t.Errorf("recall %+v, want estimable and early %v", e.Recall, tc.early)
			}
			if v.Pending != v.Predictions-v.Resolved {
				t.Errorf("pending %d, want predictions - resolved = %d", v.Pending, v.Predictions-v.Resolved)
			}
		})
	}
	t.Run("the JSON says so in words", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/metrics?window=24h", nil))
		for _, want := range []string{`"precision": null`, `"estimable": false`, `"reason": "2 of 10 flagged predictions resolved (20 %, estimable from 95 %)`, `"note": "early: from the 2 positives labeled so far`, `"precision_bounds": {`} {
			if !strings.Contains(rec.Body.String(), want) {
				t.Errorf("response lacks %s:\n%s", want, rec.Body)
			}
		}
	})
}

func TestMinAgeParameter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	withMaturity := NewMetricsHandler(agedWindows(now), nil, nil, WithPolicy(LabelPolicy{Maturity: 30 * day}))
	noMaturity := NewMetricsHandler(agedWindows(now), nil, nil)
	tests := []struct {
		name  string
		h     http.Handler
		query string
		ok    bool
	}{
		{"matured reads VERDICT_MATURITY", withMaturity, "min_age=matured", true},
		{"an age in days", withMaturity, "window=24h&min_age=44d", true},
		{"reaching past the horizon is refused", withMaturity, "window=24h&min_age=45d", false},
		{"everything older than the horizon is refused", withMaturity, "min_age=46d", false},
		{"not a duration", withMaturity, "min_age=old", false},
		{"matured without maturity is refused", noMaturity, "min_age=matured", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e ErrorBody
			code := getJSON(t, tc.h, "/v1/metrics?"+tc.query, &e)
			if (code == http.StatusOK) != tc.ok {
				t.Fatalf("status %d (%+v), want ok %v", code, e, tc.ok)
			}
			if !tc.ok && (code != http.StatusBadRequest || e.Parameter != "min_age" || e.Error == "") {
				t.Errorf("status %d, error %+v; want 400 naming min_age", code, e)
			}
		})
	}
}

func TestCoverageByCohortAge(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	w := agedWindows(now)
	w.Observe([]tally.Delta{{Key: tally.Key{Variant: "v5", SegmentKey: "mcc", Segment: "5411"}, Bucket: now.Unix() / 300 * 300, Counts: tally.Counts{Predictions: 1}}})
	h := NewCoverageHandler(w, nil, WithPolicy(LabelPolicy{Maturity: 30 * day, Declined: "censored"}))
	var r CoverageResponse
	if code := getJSON(t, h, "/v1/coverage", &r); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if got := strings.Join(r.Ages, " "); got != "<1h 1h-24h 24h-7d 7d-30d >=30d" {
		t.Errorf("ages %q", got)
	}
	if len(r.Variants) != 1 || len(r.Segments) != 0 || r.Labels.Declined != "censored" {
		t.Fatalf("variants %d, segments %d, labels %+v; want one variant, no segments, declined censored", len(r.Variants), len(r.Segments), r.Labels)
	}
	type want struct {
		pred, pos, neg, mat, pend int64
		matured, precision        bool
	}
	wants := []want{
		{0, 0, 0, 0, 0, false, false},
		{100, 2, 0, 0, 98, false, false},
		{0, 0, 0, 0, 0, false, false},
		{100, 6, 0, 0, 94, false, false},
		{100, 12, 8, 80, 0, true, true},
	}
	for i, cl := range r.Variants[0].Classes {
		w := wants[i]
		got := want{cl.Predictions, cl.LabeledPositives, cl.LabeledNegatives, cl.MaturedNegatives, cl.Pending, cl.Matured, cl.Estimable.Precision.Estimable}
		if got != w {
			t.Errorf("class %s: %+v, want %+v", cl.Age, got, w)
		}
		if cl.Predictions > 0 && (cl.LabelCoverage == nil || *cl.LabelCoverage != float64(w.pos+w.neg+w.mat)/float64(w.pred)) {
			t.Errorf("class %s: coverage %v", cl.Age, cl.LabelCoverage)
		}
	}
	if last := r.Variants[0].Classes[4]; last.MaxAge != nil || last.MinAge != "30d" {
		t.Errorf("oldest class bounds [%s, %v), want [30d, none)", last.MinAge, last.MaxAge)
	}
	if code := getJSON(t, h, "/v1/coverage?by=segment&variant=v5", &r); code != http.StatusOK || len(r.Segments) != 1 || r.Segments[0].Classes[0].Predictions != 1 {
		t.Errorf("by=segment: status %d, segments %+v", code, r.Segments)
	}
	var e ErrorBody
	if code := getJSON(t, h, "/v1/coverage?by=merchant", &e); code != http.StatusBadRequest || e.Parameter != "by" {
		t.Errorf("by=merchant: %d %+v, want 400 naming by", code, e)
	}
}
