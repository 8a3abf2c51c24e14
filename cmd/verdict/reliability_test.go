package main

// Reliability tests: faults a hostile but fair environment produces (a full disk, a
// damaged store) against the service running in this process, so the test can hand
// it a filesystem that fails on command. Counts are checked against a recount of
// what the server acknowledged.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/verdictml/verdict/internal/faultfs"
)

// lockedLog is the in-process server's log, shared with server.log().
type lockedLog struct{ s *server }

func (l lockedLog) Write(p []byte) (int, error) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.s.logs.Write(p)
}

// startInProcess runs `verdict serve` in this process with the given VERDICT_*
// settings and the embedded store on fs (nil: the real filesystem).
func startInProcess(t *testing.T, fs vfs.FS, env ...string) *server {
	t.Helper()
	env = append([]string{"VERDICT_DATA_DIR=" + t.TempDir(), "VERDICT_SEGMENT_KEYS=merchant_category"}, env...)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.storeFS = fs
	s := &server{t: t, logs: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	log := slog.New(slog.NewJSONHandler(lockedLog{s}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := openService(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s.base = "http://" + ln.Addr().String()
	go func() {
		if err := svc.run(ctx, ln); err != nil {
			t.Errorf("serve: %v", err)
		}
		close(s.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

// postBody posts lines and returns the status and the error text of the answer.
// The client waits generously: a hang is a failure, a slow machine is not.
func postBody(t *testing.T, s *server, path string, lines []string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Post(s.base+path, "application/x-ndjson", strings.NewReader(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatalf("POST %s: %v (want an answer, not a dropped connection)", path, err)
	}
	defer resp.Body.Close()
	var r struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("POST %s: %d with an undecodable body: %v", path, resp.StatusCode, err)
	}
	return resp.StatusCode, r.Error
}

// predictionBody is n predictions of variant v5 with ids prefix-0 .. prefix-(n-1).
func predictionBody(prefix string, n int) []string {
	var lines []string
	now := time.Now().UTC().Add(-10 * time.Minute)
	for i := range n {
		lines = append(lines, tPred{ID: fmt.Sprintf("%s-%d", prefix, i), Variant: "v5", Role: "production", Cat: "fuel", Score: 0.9, Time: now}.line())
	}
	return lines
}

func readiness(t *testing.T, s *server) (int, string) {
	t.Helper()
	code, body := s.get("/readyz", "")
	var r struct{ Status, Reason string }
	json.Unmarshal(body, &r)
	return code, r.Reason
}

func metricValue(t *testing.T, s *server, name string) (float64, bool) {
	t.Helper()
	_, body := s.get("/metrics", "")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f, true
		}
	}
	return 0, false
}

func TestFullDiskAnswers503AndIngestResumesLosingNothingAcknowledged(t *testing.T) {
	fs := faultfs.New()
	// No reserve: the disk fills under pebble's own write-ahead log, the worst case.
	s := startInProcess(t, fs, "VERDICT_STORE_MIN_FREE_MB=0")

	const writers, bodies, perBody = 4, 12, 10
	var mu sync.Mutex
	acked, failed := map[string][]string{}, map[string][]string{}
	var reasons []string
	var wg sync.WaitGroup
	sent := make(chan struct{}, writers*bodies)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range bodies {
				name := fmt.Sprintf("w%d-b%d", w, b)
				lines := predictionBody(name, perBody)
				code, why := postBody(t, s, "/v1/predictions", lines)
				mu.Lock()
				switch code {
				case http.StatusOK:
					acked[name] = lines
				case http.StatusServiceUnavailable:
					failed[name] = lines
					reasons = append(reasons, why)
				default:
					t.Errorf("POST %s: %d %s", name, code, why)
				}
				mu.Unlock()
				sent <- struct{}{}
			}
		}()
	}
	// The disk fills after a quarter of the bodies.
	for range writers * bodies / 4 {
		<-sent
	}
	fs.Fill(1 << 30)
	wg.Wait()
	if len(failed) == 0 || len(acked) == 0 {
		t.Fatalf("acknowledged %d bodies, refused %d; want both", len(acked), len(failed))
	}
	if !strings.Contains(reasons[0], "no space left on device") {
		t.Errorf("503 does not name the cause: %q", reasons[0])
	}

	// While writes fail: not ready (and says why), still alive.
	code, reason := readiness(t, s)
	if code != http.StatusServiceUnavailable || !strings.Contains(reason, "no space left on device") {
		t.Errorf("/readyz on a full disk: %d %q, want 503 naming the cause", code, reason)
	}
	if v, ok := metricValue(t, s, "verdict_ready"); !ok || v != 0 {
		t.Errorf("verdict_ready = %v (present %v) on a full disk, want 0", v, ok)
	}
	if v, _ := metricValue(t, s, "verdict_store_failures_total"); v != 1 {
		t.Errorf("verdict_store_failures_total = %v, want 1", v)
	}
	if code, _ := s.get("/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz = %d; liveness should stay 200", code)
	}
	if code, _ := postBody(t, s, "/v1/predictions", predictionBody("during", 3)); code != http.StatusServiceUnavailable {
		t.Errorf("POST on a full disk: %d, want 503", code)
	}

	// Space returns: the service recovers by itself.
	fs.Free()
	waitFor(t, 30*time.Second, func() bool { code, _ := readiness(t, s); return code == http.StatusOK })
	if v, _ := metricValue(t, s, "verdict_ready"); v != 1 {
		t.Errorf("verdict_ready = %v after recovery, want 1", v)
	}
	count := func() int64 {
		got, _ := metricsAPI(t, s, "")
		return got["v5"].Pred
	}
	// Everything acknowledged is there; of the refused bodies, some may have reached
	// the disk before the failure (they were not acknowledged, the client resends).
	lo, hi := int64(len(acked)*perBody), int64((len(acked)+len(failed))*perBody)
	if n := count(); n < lo || n > hi {
		t.Fatalf("after recovery %d predictions; acknowledged %d, sent %d", n, lo, hi)
	}
	// The client resends what was refused: every body is then acknowledged once.
	for name, lines := range failed {
		if code, why := postBody(t, s, "/v1/predictions", lines); code != http.StatusOK {
			t.Fatalf("resend %s: %d %s", name, code, why)
		}
	}
	if n := count(); n != hi {
		t.Fatalf("after resending the refused bodies: %d predictions, want the recount %d", n, hi)
	}
	pc, _ := prometheusCounts(t, s)
	if pc["v5"].Pred != hi {
		t.Fatalf("/metrics after recovery: %d predictions, want %d", pc["v5"].Pred, hi)
	}
}

func TestDiskBelowTheReserveAnswers503NamingItAndResumesWithoutRestart(t *testing.T) {
	fs := faultfs.New()
	s := startInProcess(t, fs, "VERDICT_STORE_MIN_FREE_MB=64")
	if code, why := postBody(t, s, "/v1/predictions", predictionBody("a", 5)); code != http.StatusOK {
		t.Fatalf("POST: %d %s", code, why)
	}
	fs.SetFree(8 << 20)
	code, why := postBody(t, s, "/v1/predictions", predictionBody("b", 5))
	if code != http.StatusServiceUnavailable || !strings.Contains(why, "VERDICT_STORE_MIN_FREE_MB") || !strings.Contains(why, "8.0 MiB free") {
		t.Fatalf("POST below the reserve: %d %q, want 503 naming the free space and VERDICT_STORE_MIN_FREE_MB", code, why)
	}
	if code, reason := readiness(t, s); code != http.StatusServiceUnavailable || !strings.Contains(reason, "disk full") {
		t.Errorf("/readyz below the reserve: %d %q", code, reason)
	}
	if fs.Failed() != 0 {
		t.Errorf("%d writes reached the full disk; the reserve should refuse first", fs.Failed())
	}
	fs.Free()
	if code, why := postBody(t, s, "/v1/predictions", predictionBody("b", 5)); code != http.StatusOK {
		t.Fatalf("POST once space returned: %d %s", code, why)
	}
	if code, _ := readiness(t, s); code != http.StatusOK {
		t.Errorf("/readyz once space returned: %d", code)
	}
	got, _ := metricsAPI(t, s, "")
	if got["v5"].Pred != 10 {
		t.Fatalf("predictions: %d, want 10", got["v5"].Pred)
	}
}

func TestCorruptWriteAheadLogStopsTheBinaryUntilTheOperatorSalvages(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	for i := range 200 {
		if code, _, err := s.post("/v1/predictions", predictionBody(fmt.Sprintf("c%d", i), 2), ""); err != nil || code != http.StatusOK {
			t.Fatalf("post %d: %d %v", i, code, err)
		}
	}
	s.kill()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	slices.Sort(logs)
	wal := logs[len(logs)-1]
	info, err := os.Stat(wal)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(wal, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(bytes.Repeat([]byte{0xAB}, 64), info.Size()/2)
	f.Close()

	cmd := exec.Command(verdictBinary(t), "serve")
	cmd.Env = append(os.Environ(), "VERDICT_ADDR=127.0.0.1:0", "VERDICT_DATA_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), filepath.Base(wal)) || !strings.Contains(string(out), "VERDICT_STORE_RECOVERY=salvage") {
		t.Fatalf("serve on a store with a corrupt log: %v\n%s\nwant a failure naming %s and the recovery setting", err, out, filepath.Base(wal))
	}

	s = startServer(t, dir, "VERDICT_STORE_RECOVERY=salvage")
	defer s.stop()
	if v, _ := metricValue(t, s, "verdict_store_salvaged"); v != 1 {
		t.Errorf("verdict_store_salvaged = %v after a salvage, want 1", v)
	}
	got, _ := metricsAPI(t, s, "")
	if n := got["v5"].Pred; n == 0 || n >= 400 {
		t.Errorf("salvaged store counts %d predictions; want those before the corruption (fewer than the 400 sent)", n)
	}
	if !strings.Contains(s.log(), "salvaged") {
		t.Errorf("the salvage is not logged:\n%s", s.log())
	}
}
