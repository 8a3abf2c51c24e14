package main

// End-to-end tests of label reality in the binary: precision that is not estimable
// from early, positive-only labels, and censored declined inferences. Expected values
// come from plain recounts written here.

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// apiRow is one /v1/metrics row with the fields these tests read.
type apiRow struct {
	Variant, Segment   string
	Predictions        int64 `json:"predictions"`
	PredictedPositives int64 `json:"predicted_positives"`
	TP, FP, FN, TN     int64
	Matured, Pending   int64
	Censored           int64
	Precision, Recall  *float64
	PrecisionBounds    *struct{ Lower, Upper float64 } `json:"precision_bounds"`
	Estimable          struct {
		Precision, Recall, F1 struct {
			Estimable    bool
			Reason, Note string
		}
	}
}

// metricsRows reads GET /v1/metrics?<query> into rows by variant ("v5") and segment
// ("v5/grocery").
func metricsRows(t *testing.T, s *server, token, query string) map[string]apiRow {
	t.Helper()
	code, body := s.get("/v1/metrics?"+query, token)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/metrics?%s: %d %s", query, code, body)
	}
	var r struct{ Variants, Segments []apiRow }
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decode /v1/metrics: %v\n%s", err, body)
	}
	out := map[string]apiRow{}
	for _, row := range append(r.Variants, r.Segments...) {
		key := row.Variant
		if row.Segment != "" {
			key += "/" + row.Segment
		}
		out[key] = row
	}
	return out
}

// promSamples reads /metrics: every verdict_* sample of window="all" as
// "name{label=value,...}" with the series labels variant, statistic, bound, age.
func promSamples(t *testing.T, s *server) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for name, f := range s.metricFamilies(t) {
		if !strings.HasPrefix(name, "verdict_") {
			continue
		}
		for _, m := range f.GetMetric() {
			lv := labelValues(m)
			if w, ok := lv["window"]; (ok && w != "all") || lv["segment"] != "" {
				continue
			}
			var parts []string
			for _, k := range []string{"variant", "statistic", "bound", "age", "label"} {
				if v := lv[k]; v != "" {
					parts = append(parts, k+"="+v)
				}
			}
			out[name+"{"+strings.Join(parts, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestPrecisionIsNotEstimableUntilCohortsMature: predictions made two hours ago with
// only early, positive labels (issuer alerts confirm a few frauds; nothing confirms a
// legitimate transaction yet). While maturity is 10h away, /v1/metrics reports
// precision null, not estimable, with the bounds the recount gives, and recall early;
// /metrics has no verdict_precision sample and verdict_statistic_estimable 0. After a
// restart with VERDICT_MATURITY=1h the unlabeled predictions mature as negatives and
// precision appears, equal to the plain recount, on the API, on /metrics and in the
// window of matured cohorts.
func TestPrecisionIsNotEstimableUntilCohortsMature(t *testing.T) {
	dir := t.TempDir()
	env := []string{"VERDICT_WINDOWS=1h", "VERDICT_MATURE_EVERY=200ms", "VERDICT_COHORT_HORIZON=48h"}
	s := startServer(t, dir, append(env, "VERDICT_MATURITY=10h")...)
	rng := rand.New(rand.NewPCG(13, 1))
	made := time.Now().UTC().Add(-2 * time.Hour)
	type inference struct {
		id           string
		fraud        bool
		scores       [2]float64 // v5, v6
		alertedEarly bool
	}
	var infs []inference
	var preds, labels []string
	cats := []string{"grocery", "travel"}
	for i := range 400 {
		inf := inference{id: fmt.Sprintf("early-%d", i), fraud: rng.IntN(10) == 0}
		for v := range 2 {
			mean := 0.2
			if inf.fraud {
				mean = 0.75
			}
			inf.scores[v] = math.Round(math.Min(1, math.Max(0, mean+0.2*rng.NormFloat64()))*1000) / 1000
		}
		cat := cats[i%2]
		preds = append(preds,
			tPred{ID: inf.id, Variant: "v5", Role: "production", Cat: cat, Score: inf.scores[0], Time: made}.line(),
			tPred{ID: inf.id, Variant: "v6", Role: "shadow", Cat: cat, Score: inf.scores[1], Time: made}.line())
		if inf.fraud && rng.IntN(2) == 0 { // half the fraud is confirmed early
			inf.alertedEarly = true
			labels = append(labels, tLabel{ID: inf.id, Fraud: true, Time: made.Add(time.Hour)}.line())
		}
		infs = append(infs, inf)
	}
	if code, r, err := s.post("/v1/predictions", preds, ""); err != nil || code != http.StatusOK {
		t.Fatalf("post predictions: %d %+v %v", code, r, err)
	}
	if code, r, err := s.post("/v1/labels", labels, ""); err != nil || code != http.StatusOK {
		t.Fatalf("post labels: %d %+v %v", code, r, err)
	}

	// The plain recount, early (labeled positives only) and after maturity (every
	// unlabeled prediction negative).
	type tally struct{ flag, tp, fp, fn, tn int64 }
	recount := func(matured bool) [2]tally {
		var out [2]tally
		for _, inf := range infs {
			for v, score := range inf.scores {
				flagged := score >= 0.5
				c := &out[v]
				if flagged {
					c.flag++
				}
				switch {
				case inf.alertedEarly && flagged:
					c.tp++
				case inf.alertedEarly:
					c.fn++
				case matured && flagged:
					c.fp++
				case matured:
					c.tn++
				}
			}
		}
		return out
	}
	early := recount(false)
	rows := metricsRows(t, s, "", "window=all")
	prom := promSamples(t, s)
	for v, name := range []string{"v5", "v6"} {
		row, want := rows[name], early[v]
		if row.TP != want.tp || row.FN != want.fn || row.FP != 0 || row.TN != 0 || row.PredictedPositives != want.flag {
			t.Fatalf("%s early: tp %d fn %d fp %d tn %d flagged %d; recount %+v", name, row.TP, row.FN, row.FP, row.TN, row.PredictedPositives, want)
		}
		if row.Precision != nil || row.Estimable.Precision.Estimable || row.Estimable.Precision.Reason == "" {
			t.Errorf("%s early: precision %v, estimable %+v; want null, not estimable, with a reason", name, *row.Precision, row.Estimable.Precision)
		}
		// Bounds: every open flagged prediction a TP, or none.
		lower, upper := float64(want.tp)/float64(want.flag), 1.0
		if b := row.PrecisionBounds; b == nil || math.Abs(b.Lower-lower) > 1e-9 || b.Upper != upper {
			t.Errorf("%s early: precision bounds %+v, recount [%v, %v]", name, row.PrecisionBounds, lower, upper)
		}
		if r := row.Recall; r == nil || math.Abs(*r-float64(want.tp)/float64(want.tp+want.fn)) > 1e-9 ||
			!row.Estimable.Recall.Estimable || !strings.HasPrefix(row.Estimable.Recall.Note, "early:") {
			t.Errorf("%s early: recall %v %+v, want the recount %v, estimable and early", name, row.Recall, row.Estimable.Recall, float64(want.tp)/float64(want.tp+want.fn))
		}
		if row.Pending != 400-want.tp-want.fn {
			t.Errorf("%s early: pending %d, want %d", name, row.Pending, 400-want.tp-want.fn)
		}
		if v, ok := prom["verdict_precision{variant="+name+"}"]; ok {
			t.Errorf("/metrics: verdict_precision for %s = %v while not estimable, want no sample", name, v)
		}
		if v, ok := prom["verdict_statistic_estimable{variant="+name+",statistic=precision}"]; !ok || v != 0 {
			t.Errorf("/metrics: precision estimable for %s = %v (present %v), want 0", name, v, ok)
		}
		if v, ok := prom["verdict_statistic_estimable{variant="+name+",statistic=recall}"]; !ok || v != 1 {
			t.Errorf("/metrics: recall estimable for %s = %v (present %v), want 1", name, v, ok)
		}
		// Age classes: 1h, the 10h maturity, 24h (within the 48h horizon).
		if v := prom["verdict_cohort_predictions{variant="+name+",age=1h-10h}"]; v != 400 {
			t.Errorf("/metrics: %s predictions 1h-10h old = %v, want 400", name, v)
		}
	}
	// The coverage endpoint: all of it in the 1h-10h class, positives only.
	code, body := s.get("/v1/coverage?variant=v5", "")
	var cov struct {
		Variants []struct {
			Classes []struct {
				Age              string
				Predictions      int64
				LabeledPositives int64 `json:"labeled_positives"`
				LabeledNegatives int64 `json:"labeled_negatives"`
				MaturedNegatives int64 `json:"matured_negatives"`
				Pending          int64
			}
		}
	}
	if err := json.Unmarshal(body, &cov); code != http.StatusOK || err != nil || len(cov.Variants) != 1 {
		t.Fatalf("GET /v1/coverage: %d %v\n%s", code, err, body)
	}
	for _, cl := range cov.Variants[0].Classes {
		want := [4]int64{}
		if cl.Age == "1h-10h" {
			want = [4]int64{400, early[0].tp + early[0].fn, 0, 400 - early[0].tp - early[0].fn}
		}
		if got := [4]int64{cl.Predictions, cl.LabeledPositives, cl.LabeledNegatives + cl.MaturedNegatives, cl.Pending}; got != want {
			t.Errorf("coverage %s: predictions, positives, negatives, pending = %v, want %v", cl.Age, got, want)
		}
	}
	s.stop()

	// Maturity: the unlabeled predictions are past 1h and resolve as negative.
	s = startServer(t, dir, append(env, "VERDICT_MATURITY=1h")...)
	final := recount(true)
	waitFor(t, 20*time.Second, func() bool {
		rows = metricsRows(t, s, "", "window=all")
		return rows["v5"].TN+rows["v5"].FP == final[0].tn+final[0].fp && rows["v6"].TN+rows["v6"].FP == final[1].tn+final[1].fp
	})
	prom = promSamples(t, s)
	matured := metricsRows(t, s, "", "window=all&min_age=matured")
	for v, name := range []string{"v5", "v6"} {
		want := final[v]
		precision := float64(want.tp) / float64(want.tp+want.fp)
		for where, row := range map[string]apiRow{"all": rows[name], "matured": matured[name]} {
			if row.TP != want.tp || row.FP != want.fp || row.FN != want.fn || row.TN != want.tn {
				t.Errorf("%s %s after maturity: %d/%d/%d/%d, recount %+v", name, where, row.TP, row.FP, row.FN, row.TN, want)
			}
			if row.Precision == nil || math.Abs(*row.Precision-precision) > 1e-9 || !row.Estimable.Precision.Estimable {
				t.Errorf("%s %s after maturity: precision %v %+v, recount %v", name, where, row.Precision, row.Estimable.Precision, precision)
			}
			if strings.HasPrefix(row.Estimable.Recall.Note, "early") {
				t.Errorf("%s %s after maturity: recall still early: %q", name, where, row.Estimable.Recall.Note)
			}
		}
		if v, ok := prom["verdict_precision{variant="+name+"}"]; !ok || math.Abs(v-precision) > 1e-9 {
			t.Errorf("/metrics after maturity: verdict_precision for %s = %v (present %v), recount %v", name, v, ok, precision)
		}
		if v := prom["verdict_statistic_estimable{variant="+name+",statistic=precision}"]; v != 1 {
			t.Errorf("/metrics after maturity: precision estimable for %s = %v, want 1", name, v)
		}
		if v := prom["verdict_cohort_resolved{variant="+name+",age=1h-24h,label=matured}"]; v != float64(want.tn+want.fp) {
			t.Errorf("/metrics after maturity: %s matured 1h-24h = %v, want %d", name, v, want.tn+want.fp)
		}
	}
	// Nothing is an hour younger than maturity: a 1h window of matured cohorts ending
	// 3h ago is empty, and refused beyond the cohort horizon.
	if empty := metricsRows(t, s, "", "window=1h&min_age=3h"); empty["v5"].Predictions != 0 {
		t.Errorf("window 1h at least 3h old: %d predictions, want 0", empty["v5"].Predictions)
	}
	if code, body := s.get("/v1/metrics?window=1h&min_age=30d", ""); code != http.StatusBadRequest || !strings.Contains(string(body), `"min_age"`) {
		t.Errorf("min_age beyond the cohort horizon: %d %s, want 400 naming min_age", code, body)
	}
	s.stop()
}

// TestCensoredDeclinedInferencesInTheBinary runs VERDICT_DECLINED=censored with review
// labels: inferences the production model v5 flagged never mature; a review label
// resolves them, a chargeback-window label does not; everything else matures as
// usual. Counts, censored included, equal a plain recount.
func TestCensoredDeclinedInferencesInTheBinary(t *testing.T) {
	s := startServer(t, t.TempDir(), "VERDICT_WINDOWS=1h", "VERDICT_MATURITY=1h", "VERDICT_MATURE_EVERY=200ms",
		"VERDICT_DECLINED=censored", "VERDICT_REVIEW_SOURCES=review")
	rng := rand.New(rand.NewPCG(14, 1))
	made := time.Now().UTC().Add(-2 * time.Hour)
	label := func(id string, fraud bool, at time.Time, source string) string {
		b, _ := json.Marshal(map[string]any{"inference_id": id, "label": fraud, "time": at.Format(time.RFC3339Nano), "source": source})
		return string(b)
	}
	type cnt struct{ tp, fp, fn, tn, censored, censoredFlagged int64 }
	var want [2]cnt
	var preds, labels []string
	for i := range 300 {
		id := fmt.Sprintf("sel-%d", i)
		fraud := rng.IntN(8) == 0
		scores := [2]float64{math.Round(rng.Float64()*1000) / 1000, math.Round(rng.Float64()*1000) / 1000}
		preds = append(preds,
			tPred{ID: id, Variant: "v5", Role: "production", Cat: "travel", Score: scores[0], Time: made}.line(),
			tPred{ID: id, Variant: "v6", Role: "shadow", Cat: "travel", Score: scores[1], Time: made}.line())
		declined := scores[0] >= 0.5
		// Who labels what: approved fraud is disputed; a third of the declined
		// inferences is reviewed; the team's chargeback-window job labels some
		// declined ones legitimate (which must not resolve them).
		var resolvedBy *bool
		switch {
		case !declined && fraud:
			labels = append(labels, label(id, true, made.Add(20*time.Minute), "dispute"))
			resolvedBy = &fraud
		case declined && rng.IntN(3) == 0:
			labels = append(labels, label(id, fraud, made.Add(10*time.Minute), "review"))
			resolvedBy = &fraud
		case declined && rng.IntN(2) == 0:
			labels = append(labels, label(id, false, made.Add(30*time.Minute), "chargeback_window"))
		}
		for v, score := range scores {
			flagged, c := score >= 0.5, &want[v]
			switch {
			case resolvedBy != nil && flagged && *resolvedBy:
				c.tp++
			case resolvedBy != nil && flagged:
				c.fp++
			case resolvedBy != nil && *resolvedBy:
				c.fn++
			case resolvedBy != nil:
				c.tn++
			case declined:
				c.censored++
				if flagged {
					c.censoredFlagged++
				}
			case flagged: // approved, unlabeled: matured negative
				c.fp++
			default:
				c.tn++
			}
		}
	}
	if code, r, err := s.post("/v1/predictions", preds, ""); err != nil || code != http.StatusOK {
		t.Fatalf("post predictions: %d %+v %v", code, r, err)
	}
	if code, r, err := s.post("/v1/labels", labels, ""); err != nil || code != http.StatusOK {
		t.Fatalf("post labels: %d %+v %v", code, r, err)
	}
	var rows map[string]apiRow
	waitFor(t, 20*time.Second, func() bool {
		rows = metricsRows(t, s, "", "window=all")
		return rows["v5"].Pending == want[0].censored && rows["v6"].Pending == want[1].censored
	})
	for v, name := range []string{"v5", "v6"} {
		row, w := rows[name], want[v]
		if got := (cnt{row.TP, row.FP, row.FN, row.TN, row.Censored, 0}); got != (cnt{w.tp, w.fp, w.fn, w.tn, w.censored, 0}) {
			t.Errorf("%s: tp/fp/fn/tn/censored %+v, recount %+v", name, got, w)
		}
		// Precision leaves the censored flagged predictions out: every other
		// flagged one is resolved, so it is estimable and a plain ratio.
		if row.Precision == nil || math.Abs(*row.Precision-float64(w.tp)/float64(w.tp+w.fp)) > 1e-9 {
			t.Errorf("%s: precision %v %+v, recount %v", name, row.Precision, row.Estimable.Precision, float64(w.tp)/float64(w.tp+w.fp))
		}
		if w.censoredFlagged > 0 && !strings.Contains(row.Estimable.Precision.Note, fmt.Sprintf("leaves out %d censored", w.censoredFlagged)) {
			t.Errorf("%s: precision note %q, want it to name %d censored flagged predictions", name, row.Estimable.Precision.Note, w.censoredFlagged)
		}
	}
	code, body := s.get("/v1/metrics?window=all", "")
	if code != http.StatusOK || !strings.Contains(string(body), `"declined": "censored"`) || !strings.Contains(string(body), `"review"`) {
		t.Errorf("the response does not report the label policy:\n%s", body)
	}
	s.stop()
}
