package httpingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/internal/promtest"
)

// fakeSink records every batch and reports events it has seen before as duplicates.
type fakeSink struct {
	mu      sync.Mutex
	batches []ingest.Batch
	seen    map[string]bool
	err     error
}

func (s *fakeSink) Apply(_ context.Context, b ingest.Batch) (ingest.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return ingest.Result{}, s.err
	}
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.batches = append(s.batches, b)
	var res ingest.Result
	for _, p := range b.Predictions {
		key := p.InferenceID + "\x00" + p.Variant
		if s.seen[key] {
			res.Duplicates++
		} else {
			res.Applied++
		}
		s.seen[key] = true
	}
	for _, l := range b.Labels {
		key := "label\x00" + l.InferenceID
		if s.seen[key] {
			res.Duplicates++
		} else {
			res.Applied++
		}
		s.seen[key] = true
	}
	return res, nil
}

func (s *fakeSink) predictionIDs() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]string
	for _, b := range s.batches {
		var ids []string
		for _, p := range b.Predictions {
			ids = append(ids, p.InferenceID)
		}
		out = append(out, ids)
	}
	return out
}

type fixture struct {
	sink *fakeSink
	reg  *prometheus.Registry
	h    *Handler
}

func newFixture(t *testing.T, kind ingest.Kind, cfg Config) *fixture {
	t.Helper()
	dec, err := ingest.NewDecoder(ingest.DecoderConfig{Variants: []string{"v1", "v2"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	m, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = m
	f := &fixture{sink: &fakeSink{}, reg: reg}
	if kind == ingest.KindLabel {
		f.h = Labels(dec, f.sink, cfg)
	} else {
		f.h = Predictions(dec, f.sink, cfg)
	}
	return f
}

func (f *fixture) post(t *testing.T, body, contentType string) (int, Response, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/predictions", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return f.do(t, req)
}

func (f *fixture) do(t *testing.T, req *http.Request) (int, Response, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("response Content-Type %q", ct)
	}
	var resp Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, rec.Body)
	}
	if resp.Rejected == nil {
		t.Errorf("response has \"rejected\": null, want a list: %s", rec.Body)
	}
	return rec.Code, resp, rec.Header()
}

func pred(id, variant string, score float64) string {
	return fmt.Sprintf(`{"inference_id":%q,"variant":%q,"score":%v,"time":"2026-03-01T12:00:00Z"}`, id, variant, score)
}

func TestMixedBodyCommitsTheGoodLinesAndListsTheBadOnes(t *testing.T) {
	f := newFixture(t, ingest.KindPrediction, Config{})
	body := strings.Join([]string{
		pred("a", "v1", 0.9),
		`{"inference_id":"b","variant":"v1","score":1.7,"time":"2026-03-01T12:00:00Z"}`,
		"",
		pred("c", "v2", 0.1),
		`{"inference_id":"d",`,
		pred("e", "v9", 0.5),
		pred("f", "v1", 0.5),
	}, "\n")
	code, resp, _ := f.post(t, body, "application/x-ndjson")

	if code != http.StatusBadRequest {
		t.Errorf("status %d, want 400", code)
	}
	if got := fmt.Sprint(f.sink.predictionIDs()); got != "[[a c f]]" {
		t.Errorf("sink got batches %s, want one batch [a c f]", got)
	}
	if resp.Accepted != 3 || resp.Duplicates != 0 || resp.RejectedCount != 3 {
		t.Errorf("accepted %d duplicates %d rejected %d, want 3 0 3", resp.Accepted, resp.Duplicates, resp.RejectedCount)
	}
	want := []struct {
		line  int
		class ingest.RejectClass
		field string
	}{{2, ingest.ClassInvalidField, "score"}, {5, ingest.ClassMalformedJSON, ""}, {6, ingest.ClassUnknownVariant, "variant"}}
	if len(resp.Rejected) != len(want) {
		t.Fatalf("rejected %+v, want %d entries", resp.Rejected, len(want))
	}
	for i, w := range want {
		r := resp.Rejected[i]
		if r.Line != w.line || r.Class != w.class || r.Field != w.field || r.Reason == "" {
			t.Errorf("rejected[%d] = %+v, want line %d class %s field %q", i, r, w.line, w.class, w.field)
		}
	}
	if !strings.Contains(resp.Rejected[0].Reason, "score: 1.7 is outside [0, 1]") {
		t.Errorf("reason %q", resp.Rejected[0].Reason)
	}
	if !strings.Contains(resp.Message, "the other 3 valid event(s) were committed") {
		t.Errorf("message %q does not say the good lines were committed", resp.Message)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"verdict_ingest_events_accepted_total", map[string]string{"kind": "prediction", "source": "http"}, 3},
		{"verdict_ingest_events_rejected_total", map[string]string{"kind": "prediction", "source": "http", "class": "invalid_field"}, 1},
		{"verdict_ingest_events_rejected_total", map[string]string{"kind": "prediction", "source": "http", "class": "malformed_json"}, 1},
		{"verdict_ingest_events_rejected_total", map[string]string{"kind": "prediction", "source": "http", "class": "unknown_variant"}, 1},
	} {
		if got := promtest.Counter(t, f.reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestCleanBodyIsCommittedOnceAndResendsCountAsDuplicates(t *testing.T) {
	f := newFixture(t, ingest.KindPrediction, Config{})
	body := pred("a", "v1", 0.9) + "\r\n" + pred("a", "v2", 0.2) + "\r\n"
	code, resp, _ := f.post(t, body, "application/json")
	if code != http.StatusOK || resp.Accepted != 2 || resp.Duplicates != 0 || resp.RejectedCount != 0 || resp.Message != "" {
		t.Errorf("first post: %d %+v, want 200 with 2 accepted", code, resp)
	}
	code, resp, _ = f.post(t, body, "application/x-ndjson; charset=utf-8")
	if code != http.StatusOK || resp.Accepted != 2 || resp.Duplicates != 2 {
		t.Errorf("resend: %d %+v, want 200 with 2 accepted, 2 duplicates", code, resp)
	}
	if got := promtest.Counter(t, f.reg, "verdict_ingest_events_duplicates_total", map[string]string{"kind": "prediction", "source": "http"}); got != 2 {
		t.Errorf("duplicates counter %v, want 2", got)
	}
	p := f.sink.batches[0].Predictions[1]
	if p.Variant != "v2" || p.Score != 0.2 || p.Threshold != 0.5 || p.Role != ingest.RoleProduction {
		t.Errorf("sink got %+v", p)
	}
}

func TestOversizeBodyIsRefusedWithNothingCommitted(t *testing.T) {
	body := strings.Repeat(pred("a", "v1", 0.5)+"\n", 20)
	for _, tt := range []struct {
		name          string
		contentLength int64
	}{
		{"declared length over the limit", int64(len(body))},
		{"chunked body over the limit", -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, ingest.KindPrediction, Config{MaxBodyBytes: 500})
			req := httptest.NewRequest(http.MethodPost, "/v1/predictions", io.NopCloser(strings.NewReader(body)))
			req.ContentLength = tt.contentLength
			code, resp, _ := f.do(t, req)
			if code != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413", code)
			}
			if !strings.Contains(resp.Error, "500-byte limit") || !strings.Contains(resp.Error, "nothing was committed") {
				t.Errorf("error %q", resp.Error)
			}
			if len(f.sink.batches) != 0 {
				t.Errorf("sink got %d batches, want none", len(f.sink.batches))
			}
		})
	}
}

func TestSinkFailureIs503(t *testing.T) {
	f := newFixture(t, ingest.KindPrediction, Config{})
	f.sink.err = errors.New("pebble: disk full")
	code, resp, hdr := f.post(t, pred("a", "v1", 0.5)+"\n"+pred("b", "v1", 0.5), "application/x-ndjson")
	if code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", code)
	}
	if !strings.Contains(resp.Error, "pebble: disk full") || resp.Accepted != 0 {
		t.Errorf("response %+v, want the sink error and nothing accepted", resp)
	}
	if hdr.Get("Retry-After") == "" {
		t.Error("no Retry-After header")
	}
	if got := promtest.Counter(t, f.reg, "verdict_ingest_sink_errors_total", map[string]string{"kind": "prediction", "source": "http"}); got != 1 {
		t.Errorf("sink errors counter %v, want 1", got)
	}
	if got := promtest.Counter(t, f.reg, "verdict_ingest_events_accepted_total", map[string]string{"kind": "prediction", "source": "http"}); got != 0 {
		t.Errorf("accepted counter %v, want 0", got)
	}
}

func TestRequestsThatCannotBeRead(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		status  int
		error   string
	}{
		{"GET", http.MethodGet, nil, http.StatusMethodNotAllowed, "GET is not allowed; use POST"},
		{"form content type", http.MethodPost, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType, "application/x-ndjson"},
		{"unparsable content type", http.MethodPost, map[string]string{"Content-Type": "application/json; ;"}, http.StatusUnsupportedMediaType, "cannot be parsed"},
		{"gzip body", http.MethodPost, map[string]string{"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}, http.StatusUnsupportedMediaType, `Content-Encoding "gzip"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, ingest.KindPrediction, Config{})
			req := httptest.NewRequest(tt.method, "/v1/predictions", strings.NewReader(pred("a", "v1", 0.5)))
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			code, resp, hdr := f.do(t, req)
			if code != tt.status || !strings.Contains(resp.Error, tt.error) {
				t.Errorf("%d %q, want %d with %q", code, resp.Error, tt.status, tt.error)
			}
			if code == http.StatusMethodNotAllowed && hdr.Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q, want POST", hdr.Get("Allow"))
			}
			if len(f.sink.batches) != 0 {
				t.Error("sink was called")
			}
		})
	}
}

func TestJSONArrayBody(t *testing.T) {
	f := newFixture(t, ingest.KindPrediction, Config{})
	body := "[\n  " + pred("a", "v1", 0.5) + ",\n  {\"inference_id\":\"b\"},\n  " + pred("c", "v2", 0.5) + "\n]"
	code, resp, _ := f.post(t, body, "application/json")
	if code != http.StatusBadRequest || resp.Accepted != 2 {
		t.Errorf("%d %+v, want 400 with 2 accepted", code, resp)
	}
	if len(resp.Rejected) != 1 || resp.Rejected[0].Line != 2 || resp.Rejected[0].Field != "variant" {
		t.Errorf("rejected %+v, want element 2, field variant", resp.Rejected)
	}
	if got := fmt.Sprint(f.sink.predictionIDs()); got != "[[a c]]" {
		t.Errorf("sink got %s", got)
	}
}

func TestBrokenJSONArrayCommitsNothing(t *testing.T) {
	f := newFixture(t, ingest.KindPrediction, Config{})
	code, resp, _ := f.post(t, "["+pred("a", "v1", 0.5)+",", "application/json")
	if code != http.StatusBadRequest || resp.Accepted != 0 || len(resp.Rejected) != 1 ||
		resp.Rejected[0].Line != 0 || !strings.Contains(resp.Rejected[0].Reason, "not a valid JSON array") {
		t.Errorf("%d %+v, want 400 with one body-level rejection", code, resp)
	}
	if len(f.sink.batches) != 0 {
		t.Error("sink was called")
	}
}

func TestLargeBodyIsCommittedInOrderedBatches(t *testing.T) {
	f := newFixture(t, ingest.KindPrediction, Config{MaxBatch: 3})
	var lines []string
	for i := range 8 {
		lines = append(lines, pred(fmt.Sprint(i), "v1", 0.5))
		if i == 4 {
			lines = append(lines, "bad")
		}
	}
	code, resp, _ := f.post(t, strings.Join(lines, "\n"), "")
	if code != http.StatusBadRequest || resp.Accepted != 8 || resp.RejectedCount != 1 || resp.Rejected[0].Line != 6 {
		t.Errorf("%d %+v", code, resp)
	}
	if got := fmt.Sprint(f.sink.predictionIDs()); got != "[[0 1 2] [3 4 5] [6 7]]" {
		t.Errorf("batches %s, want [[0 1 2] [3 4 5] [6 7]]", got)
	}
}

func TestEmptyBodyAcceptsNothing(t *testing.T) {
	f := newFixture(t, ingest.KindPrediction, Config{})
	code, resp, _ := f.post(t, "\n\n", "application/x-ndjson")
	if code != http.StatusOK || resp.Accepted != 0 || len(f.sink.batches) != 0 {
		t.Errorf("%d %+v, %d batches", code, resp, len(f.sink.batches))
	}
}

func TestRejectionListIsCapped(t *testing.T) {
	f := newFixture(t, ingest.KindPrediction, Config{})
	code, resp, _ := f.post(t, strings.Repeat("x\n", 1500), "application/x-ndjson")
	if code != http.StatusBadRequest || resp.RejectedCount != 1500 || len(resp.Rejected) != 1000 || resp.Rejected[999].Line != 1000 {
		t.Errorf("%d: count %d, listed %d", code, resp.RejectedCount, len(resp.Rejected))
	}
	if got := promtest.Counter(t, f.reg, "verdict_ingest_events_rejected_total", map[string]string{"kind": "prediction", "source": "http", "class": "malformed_json"}); got != 1500 {
		t.Errorf("rejected counter %v, want 1500", got)
	}
}

func TestLabelsEndpoint(t *testing.T) {
	f := newFixture(t, ingest.KindLabel, Config{Source: "http-labels"})
	body := `{"inference_id":"a","label":true,"time":"2026-03-02T00:00:00Z","source":"dispute"}` + "\n" +
		`{"inference_id":"b","label":"yes","time":"2026-03-02T00:00:00Z"}` + "\n" +
		`{"inference_id":"c","label":false,"time":1772409600}`
	code, resp, _ := f.post(t, body, "application/x-ndjson")
	if code != http.StatusBadRequest || resp.Accepted != 2 || len(resp.Rejected) != 1 || resp.Rejected[0].Field != "label" {
		t.Errorf("%d %+v", code, resp)
	}
	if len(f.sink.batches) != 1 || len(f.sink.batches[0].Predictions) != 0 {
		t.Fatalf("batches %+v, want one label batch", f.sink.batches)
	}
	ls := f.sink.batches[0].Labels
	if len(ls) != 2 || ls[0].InferenceID != "a" || !ls[0].Positive || ls[0].Source != "dispute" || ls[1].InferenceID != "c" || ls[1].Positive {
		t.Errorf("labels %+v", ls)
	}
	if got := promtest.Counter(t, f.reg, "verdict_ingest_events_accepted_total", map[string]string{"kind": "label", "source": "http-labels"}); got != 2 {
		t.Errorf("accepted labels counter %v, want 2", got)
	}
}

// A store that refuses every commit (a full disk) gets every request answered 503 and
// counted, but logged once per failureLogEvery, the next line saying how many it left
// out, so the log does not flood the disk that is already full.
func TestCommitFailuresAreLoggedOncePerInterval(t *testing.T) {
	var logs logRecorder
	f := newFixture(t, ingest.KindPrediction, Config{Logger: slog.New(&logs)})
	f.sink.err = errors.New("pebble: disk full")
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	f.h.failures.Now = func() time.Time { return now }
	post := func(n int) {
		for i := range n {
			if code, _, _ := f.post(t, pred(fmt.Sprint("p", i), "v1", 0.5), "application/x-ndjson"); code != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", code)
			}
		}
	}
	post(50)
	now = now.Add(failureLogEvery - time.Millisecond)
	post(10)
	if got := logs.errors(); len(got) != 1 || got[0]["suppressed"] != nil {
		t.Fatalf("after 60 failures within one interval: error lines %v, want one without a suppressed count", got)
	}
	now = now.Add(time.Millisecond)
	post(1)
	got := logs.errors()
	if len(got) != 2 || got[1]["suppressed"] != int64(59) || got[1]["since"] != "2026-12-04T10:00:00Z" {
		t.Fatalf("error lines %v, want a second one saying 59 were suppressed since 10:00:00", got)
	}
	if n := promtest.Counter(t, f.reg, "verdict_ingest_sink_errors_total", map[string]string{"kind": "prediction", "source": "http"}); n != 61 {
		t.Errorf("sink errors counter %v, want every one of the 61 failures", n)
	}
}

// logRecorder keeps the attributes of every ERROR record.
type logRecorder struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return nil
	}
	m := map[string]any{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	l.mu.Lock()
	l.recs = append(l.recs, m)
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) errors() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]any(nil), l.recs...)
}
