package httpingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/internal/promtest"
)

// trickle is a body that delivers one byte, tells the test it is being read, and
// then waits until released: a client that declared a large body and sends slowly.
type trickle struct {
	started chan<- struct{}
	release <-chan struct{}
	sent    bool
}

func (b *trickle) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		b.started <- struct{}{}
		p[0] = '\n'
		return 1, nil
	}
	<-b.release
	return 0, io.EOF
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func TestMemoryGrowsWithWhatArrivesNotWithWhatIsDeclared(t *testing.T) {
	f := newFixture(t, ingest.KindPrediction, Config{})
	const conns = 32
	started, release := make(chan struct{}, conns), make(chan struct{})
	before := heapInUse()
	var wg sync.WaitGroup
	for range conns {
		req := httptest.NewRequest(http.MethodPost, "/v1/predictions", &trickle{started: started, release: release})
		req.ContentLength = 8 << 20 // declared, never sent
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.h.ServeHTTP(httptest.NewRecorder(), req)
		}()
	}
	for range conns {
		<-started // every request is reading its body
	}
	grown := int64(heapInUse()) - int64(before)
	close(release)
	wg.Wait()
	// Declared sizes would be 32 x 8 MiB = 256 MiB; one byte each has arrived.
	if grown > 32<<20 {
		t.Fatalf("heap grew by %d MiB for %d requests that sent one byte each; memory must follow what arrives", grown>>20, conns)
	}
}

// blockingSink holds every Apply until released or the request's context ends.
type blockingSink struct {
	entered chan struct{}
	release chan struct{}
}

func (s *blockingSink) Apply(ctx context.Context, b ingest.Batch) (ingest.Result, error) {
	s.entered <- struct{}{}
	select {
	case <-s.release:
		return ingest.Result{Applied: b.Len()}, nil
	case <-ctx.Done():
		return ingest.Result{}, fmt.Errorf("labels: waiting for commit: %w", ctx.Err())
	}
}

func TestRequestsBeyondTheCapGet503WithRetryAfter(t *testing.T) {
	f := newFixture(t, ingest.KindPrediction, Config{})
	sink := &blockingSink{entered: make(chan struct{}, 8), release: make(chan struct{})}
	dec, _ := ingest.NewDecoder(ingest.DecoderConfig{})
	lim := NewLimit(2)
	h := Predictions(dec, sink, Config{Limit: lim, Metrics: f.h.cfg.Metrics})
	labelsH := Labels(dec, sink, Config{Limit: lim, Metrics: f.h.cfg.Metrics})
	codes := make(chan int, 2)
	for i := range 2 {
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/predictions", strings.NewReader(pred(fmt.Sprint(i), "v1", 0.5))))
			codes <- rec.Code
		}()
	}
	<-sink.entered
	<-sink.entered
	// Both slots are held (the labels endpoint shares them).
	rec := httptest.NewRecorder()
	labelsH.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/labels", strings.NewReader(`{"inference_id":"a","label":true,"time":1772409600}`)))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "VERDICT_MAX_CONCURRENT_INGEST") {
		t.Fatalf("request beyond the cap: %d %s (Retry-After %q), want 503 naming the cap with Retry-After", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if got := promtest.Counter(t, f.reg, "verdict_ingest_requests_failed_total", map[string]string{"kind": "label", "source": "http", "reason": "busy"}); got != 1 {
		t.Errorf("busy requests counted %v, want 1", got)
	}
	close(sink.release)
	for range 2 {
		if c := <-codes; c != http.StatusOK {
			t.Errorf("request within the cap: %d", c)
		}
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/predictions", strings.NewReader(pred("c", "v1", 0.5))))
	if rec.Code != http.StatusOK {
		t.Fatalf("after the slots were freed: %d %s", rec.Code, rec.Body)
	}
}

func TestSlowBodyGets408AndNothingIsCommitted(t *testing.T) {
	f := newFixture(t, ingest.KindPrediction, Config{BodyTimeout: 300 * time.Millisecond})
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n%s", pred("a", "v1", 0.5)[:10])
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "VERDICT_BODY_READ_TIMEOUT") {
		t.Fatalf("stalled body: %d %s, want 408 naming VERDICT_BODY_READ_TIMEOUT", resp.StatusCode, body)
	}
	if len(f.sink.batches) != 0 {
		t.Error("a stalled body reached the sink")
	}
	if got := promtest.Counter(t, f.reg, "verdict_ingest_requests_failed_total", map[string]string{"kind": "prediction", "source": "http", "reason": "body_timeout"}); got != 1 {
		t.Errorf("body timeouts counted %v, want 1", got)
	}
}

// levels records the levels of log records.
type levels struct {
	mu  sync.Mutex
	got []slog.Level
	buf bytes.Buffer
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, r.Level)
	fmt.Fprintln(&l.buf, r.Level, r.Message)
	return nil
}
func (l *levels) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levels) WithGroup(string) slog.Handler      { return l }

func TestClientDisconnectIsNotASinkError(t *testing.T) {
	f := newFixture(t, ingest.KindPrediction, Config{})
	sink := &blockingSink{entered: make(chan struct{}, 1), release: make(chan struct{})}
	dec, _ := ingest.NewDecoder(ingest.DecoderConfig{})
	logs := &levels{}
	h := Predictions(dec, sink, Config{Metrics: f.h.cfg.Metrics, Logger: slog.New(logs)})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodPost, "/v1/predictions", strings.NewReader(pred("a", "v1", 0.5))).WithContext(ctx)
	done := make(chan struct{})
	go func() {
		h.ServeHTTP(httptest.NewRecorder(), req)
		close(done)
	}()
	<-sink.entered
	cancel() // the client hangs up while its batch commits
	<-done
	if got := promtest.Counter(t, f.reg, "verdict_ingest_sink_errors_total", map[string]string{"kind": "prediction", "source": "http"}); got != 0 {
		t.Errorf("a client disconnect counted as %v sink error(s)", got)
	}
	if got := promtest.Counter(t, f.reg, "verdict_ingest_requests_failed_total", map[string]string{"kind": "prediction", "source": "http", "reason": "client_gone"}); got != 1 {
		t.Errorf("client_gone counted %v, want 1", got)
	}
	for _, l := range logs.got {
		if l >= slog.LevelError {
			t.Errorf("a client disconnect logged at %s (ERROR means the store failed):\n%s", l, logs.buf.String())
		}
	}
}
