package filesource

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/internal/promtest"
)

type fakeSink struct {
	mu      sync.Mutex
	batches []ingest.Batch
	seen    map[string]bool
	// failOn makes the n-th Apply (1-based) fail.
	failOn int
	calls  int
}

func (s *fakeSink) Apply(_ context.Context, b ingest.Batch) (ingest.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls == s.failOn {
		return ingest.Result{}, errors.New("store closed")
	}
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.batches = append(s.batches, b)
	var res ingest.Result
	for _, p := range b.Predictions {
		if s.seen[p.InferenceID+"/"+p.Variant] {
			res.Duplicates++
		} else {
			res.Applied++
		}
		s.seen[p.InferenceID+"/"+p.Variant] = true
	}
	res.Applied += len(b.Labels)
	return res, nil
}

func (s *fakeSink) predictions() []ingest.Prediction {
	var out []ingest.Prediction
	for _, b := range s.batches {
		out = append(out, b.Predictions...)
	}
	return out
}

func newDecoder(t *testing.T) *ingest.Decoder {
	t.Helper()
	d, err := ingest.NewDecoder(ingest.DecoderConfig{Variants: []string{"v1", "v2"}, MaxLineBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func openFixture(t *testing.T) (*os.File, int64) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "replay_predictions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, st.Size()
}

func readDeadLetters(t *testing.T, b *bytes.Buffer) []DeadLetter {
	t.Helper()
	var out []DeadLetter
	dec := json.NewDecoder(b)
	for dec.More() {
		var d DeadLetter
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("dead letters are not NDJSON: %v", err)
		}
		out = append(out, d)
	}
	return out
}

func TestReplayCommitsTheGoodLinesInOrderAndDeadLettersTheRest(t *testing.T) {
	f, size := openFixture(t)
	sink := &fakeSink{}
	var dead bytes.Buffer
	var reports []Progress
	reg := prometheus.NewPedanticRegistry()
	m, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	rp := New(newDecoder(t), sink, Config{
		BatchSize:        2,
		DeadLetters:      &dead,
		Progress:         func(p Progress) { reports = append(reports, p) },
		ProgressInterval: -1,
		Metrics:          m,
	})

	total, err := rp.Replay(context.Background(), ingest.KindPrediction, f, size)
	if err != nil {
		t.Fatal(err)
	}

	var ids []string
	for _, p := range sink.predictions() {
		ids = append(ids, p.InferenceID)
	}
	if got := strings.Join(ids, " "); got != "txn-1 txn-2 txn-5 txn-8 txn-9" {
		t.Errorf("sink got %s, want txn-1 txn-2 txn-5 txn-8 txn-9", got)
	}
	for _, b := range sink.batches {
		if len(b.Predictions) > 2 || len(b.Labels) != 0 {
			t.Errorf("batch of %d predictions and %d labels, want at most 2 predictions", len(b.Predictions), len(b.Labels))
		}
	}
	preds := sink.predictions()
	if p := preds[0]; p.Attributes["merchant_category"] != "5411" {
		t.Errorf("txn-1 attributes %v", p.Attributes)
	}
	if p := preds[3]; p.Error != "model timeout" || p.Score != 0 {
		t.Errorf("txn-8 = %+v, want a failed inference", p)
	}

	letters := readDeadLetters(t, &dead)
	want := []struct {
		line  int
		class ingest.RejectClass
		field string
	}{
		{3, ingest.ClassInvalidField, "score"},
		{5, ingest.ClassOversizeLine, ""},
		{7, ingest.ClassMalformedJSON, ""},
		{8, ingest.ClassMalformedJSON, ""},
		{9, ingest.ClassUnknownVariant, "variant"},
	}
	if len(letters) != len(want) {
		t.Fatalf("dead letters %+v, want %d", letters, len(want))
	}
	for i, w := range want {
		d := letters[i]
		if d.Line != w.line || d.Class != w.class || d.Field != w.field || d.Reason == "" || d.Kind != ingest.KindPrediction {
			t.Errorf("dead letter %d = %+v, want line %d class %s field %q", i, d, w.line, w.class, w.field)
		}
	}
	if d := letters[0]; d.Raw != `{"inference_id":"txn-3","variant":"v1","score":1.7,"time":"2026-03-01T12:00:00Z"}` || d.RawTruncated || d.Size != len(d.Raw) {
		t.Errorf("dead letter for line 3 keeps raw %q (size %d, truncated %v)", d.Raw, d.Size, d.RawTruncated)
	}
	if d := letters[1]; d.Size <= 256 || !strings.HasPrefix(d.Raw, `{"inference_id":"txn-4"`) || d.RawTruncated != (d.Size > ingest.RawKeepBytes) {
		t.Errorf("oversize dead letter: size %d, raw %q", d.Size, d.Raw)
	}
	if d := letters[3]; d.Raw != "" || d.RawBase64 == "" {
		t.Errorf("invalid UTF-8 line: raw %q, raw_base64 %q; want base64 only", d.Raw, d.RawBase64)
	} else if raw, _ := base64.StdEncoding.DecodeString(d.RawBase64); !bytes.Contains(raw, []byte("M\xfcnchen")) {
		t.Errorf("raw_base64 decodes to %q", raw)
	}

	wantTotal := Progress{Lines: 11, Bytes: size, TotalBytes: size, Accepted: 5, Rejected: 5}
	if total.Lines != wantTotal.Lines || total.Bytes != wantTotal.Bytes || total.TotalBytes != wantTotal.TotalBytes ||
		total.Accepted != wantTotal.Accepted || total.Rejected != wantTotal.Rejected || total.Duplicates != 0 {
		t.Errorf("totals %+v, want %+v", total, wantTotal)
	}
	if len(reports) < 3 {
		t.Fatalf("%d progress reports, want one per batch and a final one", len(reports))
	}
	for i := 1; i < len(reports); i++ {
		if reports[i].Lines < reports[i-1].Lines || reports[i].Bytes < reports[i-1].Bytes || reports[i].Accepted < reports[i-1].Accepted {
			t.Errorf("progress went backwards: %+v then %+v", reports[i-1], reports[i])
		}
	}
	if last := reports[len(reports)-1]; last != total {
		t.Errorf("final report %+v, want the totals %+v", last, total)
	}

	acc := promtest.Counter(t, reg, "verdict_ingest_events_accepted_total", map[string]string{"kind": "prediction", "source": "file"})
	rej := promtest.Counter(t, reg, "verdict_ingest_events_rejected_total", map[string]string{"kind": "prediction", "source": "file", "class": "malformed_json"})
	if acc != 5 || rej != 2 {
		t.Errorf("metrics: accepted %v, malformed %v; want 5 and 2", acc, rej)
	}
}

func TestReplayingAgainOnlyAddsDuplicates(t *testing.T) {
	sink := &fakeSink{}
	rp := New(newDecoder(t), sink, Config{})
	for run := 1; run <= 2; run++ {
		f, size := openFixture(t)
		total, err := rp.Replay(context.Background(), ingest.KindPrediction, f, size)
		if err != nil {
			t.Fatal(err)
		}
		wantDup := 0
		if run == 2 {
			wantDup = 5
		}
		if total.Accepted != 5 || total.Duplicates != wantDup {
			t.Errorf("run %d: accepted %d duplicates %d, want 5 and %d", run, total.Accepted, total.Duplicates, wantDup)
		}
	}
}

func TestReplayStopsAtTheFirstSinkFailure(t *testing.T) {
	var in strings.Builder
	for i := range 10 {
		fmt.Fprintf(&in, `{"inference_id":"t%d","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z"}`+"\n", i)
	}
	sink := &fakeSink{failOn: 3}
	rp := New(newDecoder(t), sink, Config{BatchSize: 2})
	total, err := rp.Replay(context.Background(), ingest.KindPrediction, strings.NewReader(in.String()), 0)
	if err == nil || !strings.Contains(err.Error(), "store closed") || !strings.Contains(err.Error(), "lines 5 to 6") {
		t.Errorf("error %v, want the sink error naming lines 5 to 6", err)
	}
	if total.Accepted != 4 || total.Lines != 4 {
		t.Errorf("totals %+v, want 4 lines committed", total)
	}
}

func TestReplayStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f, size := openFixture(t)
	sink := &fakeSink{}
	_, err := New(newDecoder(t), sink, Config{}).Replay(ctx, ingest.KindPrediction, f, size)
	if !errors.Is(err, context.Canceled) || len(sink.batches) != 0 {
		t.Errorf("error %v with %d batches, want context.Canceled and none", err, len(sink.batches))
	}
}

func TestReplayLabels(t *testing.T) {
	in := `{"inference_id":"a","label":true,"time":"2026-03-02T00:00:00Z"}` + "\n" +
		`{"inference_id":"b","label":"maybe","time":"2026-03-02T00:00:00Z"}` + "\n" +
		`{"inference_id":"c","label":false,"time":"2026-03-02T00:00:00Z"}` + "\n\n"
	sink := &fakeSink{}
	var dead bytes.Buffer
	total, err := New(newDecoder(t), sink, Config{DeadLetters: &dead}).Replay(context.Background(), ingest.KindLabel, strings.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	if len(sink.batches) != 1 || len(sink.batches[0].Labels) != 2 || sink.batches[0].Labels[1].InferenceID != "c" {
		t.Errorf("batches %+v", sink.batches)
	}
	if total.Accepted != 2 || total.Rejected != 1 || total.Bytes != int64(len(in)) {
		t.Errorf("totals %+v", total)
	}
	letters := readDeadLetters(t, &dead)
	if len(letters) != 1 || letters[0].Kind != ingest.KindLabel || letters[0].Line != 2 || letters[0].Field != "label" {
		t.Errorf("dead letters %+v", letters)
	}
}

func TestReplayRejectsUnknownKind(t *testing.T) {
	_, err := New(newDecoder(t), &fakeSink{}, Config{}).Replay(context.Background(), "outcome", strings.NewReader(""), 0)
	if err == nil || !strings.Contains(err.Error(), `kind "outcome"`) {
		t.Errorf("error %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestReplayFailsWhenDeadLettersCannotBeWritten(t *testing.T) {
	sink := &fakeSink{}
	_, err := New(newDecoder(t), sink, Config{DeadLetters: failingWriter{}}).
		Replay(context.Background(), ingest.KindPrediction, strings.NewReader("bad\n"), 0)
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "dead letter") {
		t.Errorf("error %v, want the dead-letter write failure", err)
	}
}

func TestDeadLetterKeepsTextWhenTruncationCutsACharacter(t *testing.T) {
	raw := []byte(strings.Repeat("a", ingest.RawKeepBytes-1) + "é")[:ingest.RawKeepBytes] // cut inside "é"
	got, ok := validText(raw, true)
	if !ok || got != strings.Repeat("a", ingest.RawKeepBytes-1) {
		t.Errorf("validText = %q, %v", got, ok)
	}
	if _, ok := validText([]byte("a\xffb"), false); ok {
		t.Error("invalid UTF-8 inside a complete line was accepted as text")
	}
}
