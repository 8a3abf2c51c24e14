package main

// End-to-end tests: they build the real binary, start `verdict serve` as a child
// process and talk to it over HTTP only. Counts are checked against a plain recount
// of the events the test sent, written here without any of verdict's code.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	kds "github.com/aws/aws-sdk-go-v2/service/kinesis"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/verdictml/verdict/internal/emulatortest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// verdictBinary builds cmd/verdict once per test run.
func verdictBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "verdict-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "verdict")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// server is a running verdict child process.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	gate chan string // the rollout gate's address, when VERDICT_GATE_ADDR is set
	logs *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

func startServer(t *testing.T, dataDir string, env ...string) *server {
	t.Helper()
	cmd := exec.Command(verdictBinary(t), "serve")
	cmd.Env = append(os.Environ(),
		"VERDICT_ADDR=127.0.0.1:0",
		"VERDICT_DATA_DIR="+dataDir,
		"VERDICT_LOG_FORMAT=json",
		"VERDICT_SEGMENT_KEYS=merchant_category",
	)
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, logs: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{}), gate: make(chan string, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil {
				switch rec.Msg {
				case "verdict serving":
					addr <- rec.Addr
				case "rollout gate serving /v1/judge without token":
					s.gate <- rec.Addr
				}
			}
		}
		cmd.Wait()
		close(s.done)
	}()
	select {
	case a := <-addr:
		s.base = "http://" + a
	case <-s.done:
		t.Fatalf("verdict exited before serving:\n%s", s.log())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("verdict did not start in 30s:\n%s", s.log())
	}
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.t.Fatalf("verdict did not stop on SIGTERM:\n%s", s.log())
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Fatalf("verdict exited with %d after SIGTERM:\n%s", code, s.log())
	}
}

type ingestResponse struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   []struct {
		Line   int    `json:"line"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"rejected"`
}

func (s *server) post(path string, lines []string, token string) (int, ingestResponse, error) {
	req, err := http.NewRequest(http.MethodPost, s.base+path, strings.NewReader(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		return 0, ingestResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, ingestResponse{}, err
	}
	defer resp.Body.Close()
	var r ingestResponse
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &r); err != nil {
		return resp.StatusCode, r, fmt.Errorf("decode %s response %q: %w", path, body, err)
	}
	return resp.StatusCode, r, nil
}

func (s *server) get(path, token string) (int, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// metricFamilies reads and parses /metrics.
func (s *server) metricFamilies(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := s.get("/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// labelValues are a sample's labels, by name.
func labelValues(m *dto.Metric) map[string]string {
	lv := map[string]string{}
	for _, l := range m.GetLabel() {
		lv[l.GetName()] = l.GetValue()
	}
	return lv
}

// ---- the scenario and its recount ----

type tPred struct {
	ID, Variant, Role, Cat string
	Score                  float64
	Time                   time.Time
}

type tLabel struct {
	ID    string
	Fraud bool
	Time  time.Time
}

func (p tPred) line() string {
	b, _ := json.Marshal(map[string]any{"inference_id": p.ID, "variant": p.Variant, "role": p.Role, "score": p.Score,
		"time": p.Time.Format(time.RFC3339Nano), "attributes": map[string]string{"merchant_category": p.Cat}})
	return string(b)
}

func (l tLabel) line() string {
	b, _ := json.Marshal(map[string]any{"inference_id": l.ID, "label": l.Fraud, "time": l.Time.Format(time.RFC3339Nano)})
	return string(b)
}

// scenario is a stream with duplicates, early labels, corrections and ties.
type scenario struct {
	preds  []tPred  // in send order, duplicates included
	labels []tLabel // in send order
}

func newScenario(seed uint64, n int) scenario {
	rng := rand.New(rand.NewPCG(seed, 7))
	// Predictions fall in the 30 minutes before the last 10; labels become known after
	// their prediction and before now (verdict refuses event times ahead of its clock).
	now := time.Now().UTC().Add(-40 * time.Minute)
	cats := []string{"grocery", "travel", "electronics", "fuel"}
	var s scenario
	for i := range n {
		id := fmt.Sprintf("e2e-%d-%d", seed, i)
		cat := cats[rng.IntN(len(cats))]
		pt := now.Add(time.Duration(rng.IntN(1800)) * time.Second)
		for _, v := range []struct{ name, role string }{{"v5", "production"}, {"v6", "shadow"}} {
			if rng.IntN(8) == 0 {
				continue
			}
			p := tPred{ID: id, Variant: v.name, Role: v.role, Cat: cat, Score: math.Round(rng.Float64()*1000) / 1000, Time: pt}
			s.preds = append(s.preds, p)
			if rng.IntN(6) == 0 {
				s.preds = append(s.preds, p) // redelivered
			}
		}
		if rng.IntN(5) == 0 {
			continue // unlabeled
		}
		lt := pt.Add(time.Duration(1+rng.IntN(300)) * time.Second)
		s.labels = append(s.labels, tLabel{ID: id, Fraud: rng.IntN(4) == 0, Time: lt})
		switch rng.IntN(10) {
		case 0: // a later correction
			s.labels = append(s.labels, tLabel{ID: id, Fraud: rng.IntN(2) == 0, Time: lt.Add(4 * time.Minute)})
		case 1: // a stale label arriving after the newer one
			s.labels = append(s.labels, tLabel{ID: id, Fraud: rng.IntN(2) == 0, Time: lt.Add(-time.Minute)})
		case 2: // a tie on time: the one received last wins
			s.labels = append(s.labels, tLabel{ID: id, Fraud: rng.IntN(2) == 0, Time: lt})
		}
	}
	return s
}

type cell struct{ Pred, Flag, TP, FP, FN, TN int64 }

// recount computes the expected counts: first prediction per (id, variant); the label
// in force per id is the one with the latest time, ties to the later-sent one.
func (s scenario) recount(threshold float64) map[string]cell {
	type pk struct{ id, variant string }
	seen := map[pk]bool{}
	final := map[string]tLabel{}
	for _, l := range s.labels {
		if cur, ok := final[l.ID]; !ok || !l.Time.Before(cur.Time) {
			final[l.ID] = l
		}
	}
	out := map[string]cell{}
	for _, p := range s.preds {
		if seen[pk{p.ID, p.Variant}] {
			continue
		}
		seen[pk{p.ID, p.Variant}] = true
		for _, key := range []string{p.Variant, p.Variant + "/" + p.Cat} {
			c := out[key]
			c.Pred++
			flag := p.Score >= threshold
			if flag {
				c.Flag++
			}
			if l, ok := final[p.ID]; ok {
				switch {
				case flag && l.Fraud:
					c.TP++
				case flag:
					c.FP++
				case l.Fraud:
					c.FN++
				default:
					c.TN++
				}
			}
			out[key] = c
		}
	}
	return out
}

// metricsAPI reads /v1/metrics?window=all&by=segment into the same shape.
func metricsAPI(t *testing.T, s *server, token string) (map[string]cell, map[string][2]*float64) {
	t.Helper()
	return metricsAPIWindow(t, s, token, "all")
}

// metricsAPIWindow reads /v1/metrics?window=<w>&by=segment.
func metricsAPIWindow(t *testing.T, s *server, token, w string) (map[string]cell, map[string][2]*float64) {
	t.Helper()
	code, body := s.get("/v1/metrics?by=segment&window="+w, token)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/metrics: %d %s", code, body)
	}
	var r struct {
		Variants, Segments []struct {
			Variant, Segment   string
			Predictions        int64 `json:"predictions"`
			PredictedPositives int64 `json:"predicted_positives"`
			TP, FP, FN, TN     int64
			Precision, Recall  *float64
		}
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decode /v1/metrics: %v\n%s", err, body)
	}
	counts, stats := map[string]cell{}, map[string][2]*float64{}
	for _, group := range [][]struct {
		Variant, Segment   string
		Predictions        int64 `json:"predictions"`
		PredictedPositives int64 `json:"predicted_positives"`
		TP, FP, FN, TN     int64
		Precision, Recall  *float64
	}{r.Variants, r.Segments} {
		for _, row := range group {
			key := row.Variant
			if row.Segment != "" {
				key += "/" + row.Segment
			}
			counts[key] = cell{row.Predictions, row.PredictedPositives, row.TP, row.FP, row.FN, row.TN}
			stats[key] = [2]*float64{row.Precision, row.Recall}
		}
	}
	return counts, stats
}

// prometheusCounts reads verdict_* gauges for window="all" from /metrics.
func prometheusCounts(t *testing.T, s *server) (map[string]cell, map[string]float64) {
	t.Helper()
	out := map[string]cell{}
	other := map[string]float64{}
	for name, f := range s.metricFamilies(t) {
		for _, m := range f.GetMetric() {
			lv := labelValues(m)
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			if !strings.HasPrefix(name, "verdict_") || lv["window"] != "all" {
				key := name
				for _, k := range []string{"kind"} {
					if lv[k] != "" {
						key += "/" + lv[k]
					}
				}
				other[key] += v
				continue
			}
			key := lv["variant"]
			if lv["segment"] != "" {
				key += "/" + lv["segment"]
			}
			c := out[key]
			switch name {
			case "verdict_predictions":
				c.Pred = int64(v)
			case "verdict_predicted_positives":
				c.Flag = int64(v)
			case "verdict_outcomes":
				switch lv["outcome"] {
				case "tp":
					c.TP = int64(v)
				case "fp":
					c.FP = int64(v)
				case "fn":
					c.FN = int64(v)
				case "tn":
					c.TN = int64(v)
				}
			default:
				continue
			}
			out[key] = c
		}
	}
	return out, other
}

func compareCounts(t *testing.T, where string, got, want map[string]cell) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s %s: got %+v, recount %+v", where, k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && g != (cell{}) {
			t.Errorf("%s %s: unexpected series %+v", where, k, g)
		}
	}
}

func send(t *testing.T, s *server, sc scenario, chunk int, token string) {
	t.Helper()
	// Early labels: half of the labels go first, then predictions, then the rest, so
	// some labels wait in the store for their prediction.
	half := len(sc.labels) / 2
	post := func(path string, lines []string) {
		for i := 0; i < len(lines); i += chunk {
			end := min(i+chunk, len(lines))
			code, r, err := s.post(path, lines[i:end], token)
			if err != nil || code != http.StatusOK {
				t.Fatalf("POST %s: %d %+v %v", path, code, r, err)
			}
		}
	}
	var ll, pl []string
	for _, l := range sc.labels[:half] {
		ll = append(ll, l.line())
	}
	post("/v1/labels", ll)
	for _, p := range sc.preds {
		pl = append(pl, p.line())
	}
	post("/v1/predictions", pl)
	ll = ll[:0]
	for _, l := range sc.labels[half:] {
		ll = append(ll, l.line())
	}
	post("/v1/labels", ll)
}

func TestEndToEndCountsMatchRecount(t *testing.T) {
	const token = "s3cret"
	s := startServer(t, t.TempDir(), "VERDICT_API_TOKEN="+token, "VERDICT_GATE_ADDR=127.0.0.1:0")
	sc := newScenario(1, 600)
	send(t, s, sc, 97, token)

	// Bad lines are rejected with their line number and reason; good lines on the
	// same request still count.
	extra := tPred{ID: "e2e-extra", Variant: "v5", Role: "production", Cat: "fuel", Score: 0.9, Time: time.Now().UTC()}
	bad := []string{
		`{"inference_id": "x1", "variant": "v5", "score": 0.5`, // malformed JSON
		extra.line(),
		`{"inference_id": "x2", "variant": "v5", "score": 1.7, "time": "2026-11-25T10:00:00Z"}`,
		`{"variant": "v5", "score": 0.3, "time": "2026-11-25T10:00:00Z"}`,
	}
	code, r, err := s.post("/v1/predictions", bad, token)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusBadRequest || r.Accepted != 1 || len(r.Rejected) != 3 {
		t.Fatalf("mixed body: status %d, %+v; want 400 with 1 accepted and 3 rejected", code, r)
	}
	for i, want := range []struct {
		line  int
		field string
	}{{1, ""}, {3, "score"}, {4, "inference_id"}} {
		if r.Rejected[i].Line != want.line || (want.field != "" && r.Rejected[i].Field != want.field) || r.Rejected[i].Reason == "" {
			t.Errorf("rejection %d: %+v, want line %d field %q with a reason", i, r.Rejected[i], want.line, want.field)
		}
	}
	sc.preds = append(sc.preds, extra)
	want := sc.recount(0.5)

	// The token guards the API.
	if code, _ := s.get("/v1/metrics?window=all", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/metrics without token: %d, want 401", code)
	}
	if code, _, _ := s.post("/v1/labels", []string{sc.labels[0].line()}, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("POST /v1/labels with wrong token: %d, want 401", code)
	}
	// The rollout gate listener serves the judge without the token, and nothing else.
	judge := "/v1/judge?baseline=v5&candidate=v6&window=all"
	if code, _ := s.get(judge, ""); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/judge on the API listener without token: %d, want 401", code)
	}
	var gate string
	select {
	case gate = <-s.gate:
	case <-time.After(10 * time.Second):
		t.Fatal("no rollout gate listener logged")
	}
	for path, want := range map[string]int{judge: http.StatusOK, "/v1/metrics?window=all": http.StatusNotFound, "/v1/predictions": http.StatusNotFound} {
		resp, err := http.Get("http://" + gate + path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Decision string }
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusOK && body.Decision == "") {
			t.Errorf("gate %s: %d (decision %q), want %d", path, resp.StatusCode, body.Decision, want)
		}
	}
	// Both listeners answer the probes (without the token).
	for _, base := range []string{s.base, "http://" + gate} {
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s%s: %d, want 200", base, path, resp.StatusCode)
			}
		}
	}

	got, stats := metricsAPI(t, s, token)
	compareCounts(t, "/v1/metrics", got, want)
	// Every prediction of the scenario was made in the last hour: the sliding windows
	// hold all of it, and none of it is older.
	for _, w := range []string{"1h", "24h", "7d"} {
		inWindow, _ := metricsAPIWindow(t, s, token, w)
		compareCounts(t, "/v1/metrics?window="+w, inWindow, want)
	}
	if code, _ := s.get("/v1/metrics?window=30d", token); code != http.StatusBadRequest {
		t.Errorf("window=30d beyond the 7d kept: %d, want 400", code)
	}
	rows := metricsRows(t, s, token, "by=segment&window=all")
	for k, c := range want {
		p, rc := stats[k][0], stats[k][1]
		// A fifth of the inferences is never labeled: precision is estimable only
		// where at least 95 % of the flagged predictions are resolved; otherwise it
		// is null and lies in [TP/flagged, 1 - FP/flagged].
		estimable := c.TP+c.FP > 0 && float64(c.TP+c.FP) >= 0.95*float64(c.Flag)
		switch {
		case estimable && (p == nil || math.Abs(*p-float64(c.TP)/float64(c.TP+c.FP)) > 1e-9):
			t.Errorf("%s precision %v, recount %v", k, p, float64(c.TP)/float64(c.TP+c.FP))
		case !estimable && p != nil:
			t.Errorf("%s precision %v from %d of %d flagged resolved, want null (not estimable)", k, *p, c.TP+c.FP, c.Flag)
		}
		if b := rows[k].PrecisionBounds; c.Flag > 0 && (b == nil || math.Abs(b.Lower-float64(c.TP)/float64(c.Flag)) > 1e-9 ||
			math.Abs(b.Upper-(1-float64(c.FP)/float64(c.Flag))) > 1e-9) {
			t.Errorf("%s precision bounds %+v, recount [%v, %v]", k, b, float64(c.TP)/float64(c.Flag), 1-float64(c.FP)/float64(c.Flag))
		}
		if c.TP+c.FN > 0 && (rc == nil || math.Abs(*rc-float64(c.TP)/float64(c.TP+c.FN)) > 1e-9) {
			t.Errorf("%s recall %v, recount %v", k, rc, float64(c.TP)/float64(c.TP+c.FN))
		}
	}
	pc, other := prometheusCounts(t, s)
	compareCounts(t, "/metrics", pc, want)
	if n := other["verdict_ingest_events_rejected_total/prediction"]; n < 3 {
		t.Errorf("verdict_ingest_events_rejected_total for predictions = %v, want >= 3; have %v", n, other)
	}
	s.stop()
}

func TestCrashAnywhereThenResendGivesTheRecount(t *testing.T) {
	dir := t.TempDir()
	sc := newScenario(2, 1500)
	want := sc.recount(0.5)
	var lines []struct{ path, line string }
	half := len(sc.labels) / 2
	for _, l := range sc.labels[:half] {
		lines = append(lines, struct{ path, line string }{"/v1/labels", l.line()})
	}
	for _, p := range sc.preds {
		lines = append(lines, struct{ path, line string }{"/v1/predictions", p.line()})
	}
	for _, l := range sc.labels[half:] {
		lines = append(lines, struct{ path, line string }{"/v1/labels", l.line()})
	}
	// sendAll posts everything in small requests from the start, in 4 concurrent
	// streams, until done or the server dies.
	sendAll := func(s *server, sent *atomic.Int64) {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w * 25; i < len(lines); i += 100 {
					end := min(i+25, len(lines))
					// Split by path, keeping order.
					var ps, ls []string
					for _, l := range lines[i:end] {
						if l.path == "/v1/labels" {
							ls = append(ls, l.line)
						} else {
							ps = append(ps, l.line)
						}
					}
					for _, b := range []struct {
						path  string
						lines []string
					}{{"/v1/labels", ls}, {"/v1/predictions", ps}} {
						if len(b.lines) == 0 {
							continue
						}
						if _, _, err := s.post(b.path, b.lines, ""); err != nil {
							return // the server was killed
						}
						sent.Add(1)
					}
				}
			}()
		}
		wg.Wait()
	}
	total := want["v5"].Pred + want["v6"].Pred
	var partial []int64 // predictions found in the store at each restart
	// Kill after a number of acknowledged requests (of about 200), while 4 streams
	// keep sending: commits are in flight at the moment of the kill.
	for _, killAfter := range []int64{5, 40, 110} {
		s := startServer(t, dir)
		got, _ := metricsAPI(t, s, "")
		partial = append(partial, got["v5"].Pred+got["v6"].Pred)
		var sent atomic.Int64
		go sendAll(s, &sent)
		for deadline := time.Now().Add(20 * time.Second); sent.Load() < killAfter && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		s.kill()
	}
	// Resend everything from the start, sequentially (the order decides label ties).
	s := startServer(t, dir)
	got, _ := metricsAPI(t, s, "")
	partial = append(partial, got["v5"].Pred+got["v6"].Pred)
	midway := false
	for _, n := range partial[1:] {
		midway = midway || (n > 0 && n < total)
	}
	if !midway {
		t.Errorf("no kill landed mid-ingest (predictions at each restart %v of %d): the test proves nothing", partial, total)
	}
	t.Logf("predictions durable at each restart: %v of %d", partial, total)
	send(t, s, sc, 200, "")
	got, _ = metricsAPI(t, s, "")
	compareCounts(t, "after crashes and resend", got, want)
	// And once more after a clean restart: windows are rebuilt from the store.
	s.stop()
	s = startServer(t, dir)
	got, _ = metricsAPI(t, s, "")
	compareCounts(t, "after restart", got, want)
	pc, _ := prometheusCounts(t, s)
	compareCounts(t, "/metrics after restart", pc, want)
}

func TestReplayFilesTwiceThenServeGivesTheRecount(t *testing.T) {
	dir := t.TempDir()
	sc := newScenario(3, 800)
	var pl, ll []string
	for _, p := range sc.preds {
		pl = append(pl, p.line())
	}
	pl = append(pl, `{"inference_id": "broken", "score": 2}`, strings.Repeat("x", 70000))
	for _, l := range sc.labels {
		ll = append(ll, l.line())
	}
	pf, lf, dead := filepath.Join(dir, "p.ndjson"), filepath.Join(dir, "l.ndjson"), filepath.Join(dir, "dead.ndjson")
	if err := os.WriteFile(pf, []byte(strings.Join(pl, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lf, []byte(strings.Join(ll, "\r\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "store")
	for run := range 2 {
		cmd := exec.Command(verdictBinary(t), "replay", "--predictions", pf, "--labels", lf, "--dead-letters", dead, "--quiet")
		cmd.Env = append(os.Environ(), "VERDICT_DATA_DIR="+data, "VERDICT_SEGMENT_KEYS=merchant_category")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("replay run %d: %v\n%s", run, err, out)
		}
		if want := fmt.Sprintf("%d rejected", 2); !strings.Contains(string(out), want) {
			t.Errorf("replay run %d output lacks %q:\n%s", run, want, out)
		}
		if run == 1 && !strings.Contains(string(out), fmt.Sprintf("%d accepted (%d duplicates)", len(sc.preds), len(sc.preds))) {
			t.Errorf("second replay should find every prediction a duplicate:\n%s", out)
		}
	}
	deadLines, err := os.ReadFile(dead)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(deadLines), "\n"); n != 2 || !strings.Contains(string(deadLines), "oversize_line") {
		t.Errorf("dead letters of the last run: %d lines, want 2 incl. oversize_line:\n%.400s", n, deadLines)
	}
	s := startServer(t, data)
	got, _ := metricsAPI(t, s, "")
	compareCounts(t, "after replaying twice", got, sc.recount(0.5))
}

// TestKinesisSourceCountsMatchRecount runs the binary with Kinesis sources on
// kinesalite (streams) and kumo (lease and dead-letter tables), kills it mid-stream,
// restarts it, and checks the counts against the recount: checkpoints advance only
// after commits, so redelivered records change nothing.
func TestKinesisSourceCountsMatchRecount(t *testing.T) {
	kinesisURL := emulatortest.KinesisEndpoint(t)
	kumoURL := emulatortest.KumoEndpoint(t)
	kc := emulatortest.KinesisClient(t)
	preds := emulatortest.CreateStream(t, kc, 2)
	lbls := emulatortest.CreateStream(t, kc, 2)
	dc := emulatortest.DynamoDBClient(t)
	leases := emulatortest.TableName(t, dc, "leases")
	dead := emulatortest.TableName(t, dc, "dead")

	sc := newScenario(4, 400)
	put := func(stream string, lines []string) {
		for i := 0; i < len(lines); i += 10 {
			data := strings.Join(lines[i:min(i+10, len(lines))], "\n")
			_, err := kc.PutRecord(context.Background(), &kds.PutRecordInput{
				StreamName: aws.String(stream), PartitionKey: aws.String(fmt.Sprint(i)), Data: []byte(data)})
			if err != nil {
				t.Fatalf("put record on %s: %v", stream, err)
			}
		}
	}
	var pl, ll []string
	for _, p := range sc.preds {
		pl = append(pl, p.line())
	}
	pl = append(pl, `{"inference_id": "bad", "variant": "v5", "score": -1, "time": "2026-11-25T10:00:00Z"}`)
	for _, l := range sc.labels {
		ll = append(ll, l.line())
	}
	env := []string{
		"VERDICT_SOURCES=http,kinesis",
		"VERDICT_KINESIS_PREDICTIONS_STREAM=" + preds,
		"VERDICT_KINESIS_LABELS_STREAM=" + lbls,
		"VERDICT_KINESIS_LEASE_TABLE=" + leases,
		"VERDICT_DEAD_LETTER_TABLE=" + dead,
		"AWS_ENDPOINT_URL_KINESIS=" + kinesisURL,
		"AWS_ENDPOINT_URL_DYNAMODB=" + kumoURL,
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
	}
	dir := t.TempDir()
	s := startServer(t, dir, env...)
	put(preds, pl[:len(pl)/2])
	put(lbls, ll[:len(ll)/2])
	// Wait until some of it is counted, then crash mid-stream.
	waitFor(t, 30*time.Second, func() bool {
		got, _ := metricsAPI(t, s, "")
		return got["v5"].Pred > 0
	})
	s.kill()
	put(preds, pl[len(pl)/2:])
	put(lbls, ll[len(ll)/2:])
	s = startServer(t, dir, env...)
	want := sc.recount(0.5)
	var got map[string]cell
	waitFor(t, 60*time.Second, func() bool {
		got, _ = metricsAPI(t, s, "")
		return got["v5"] == want["v5"] && got["v6"] == want["v6"] && got["v5"].TP+got["v5"].FP+got["v5"].FN+got["v5"].TN == want["v5"].TP+want["v5"].FP+want["v5"].FN+want["v5"].TN
	})
	compareCounts(t, "kinesis after crash and restart", got, want)
	_, other := prometheusCounts(t, s)
	if n := other["verdict_ingest_events_rejected_total/prediction"]; n != 1 {
		t.Errorf("rejected predictions counted %v, want 1 (the bad line)", n)
	}
	out, err := dc.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(dead)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 1 {
		t.Errorf("dead-letter table holds %d items, want 1", len(out.Items))
	}
	s.stop()
}

func waitFor(t *testing.T, limit time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !ok(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached within %s", limit)
		}
	}
}

// TestThreeInstancesShareStreamsAndStoreExactly is the production shape: three
// verdict processes consume 2-shard prediction and label streams (kinesalite) into
// one DynamoDB join store (kumo). Mid-stream one process is SIGKILLed and a shard is
// split; the survivors take over the dead one's leases and the child shards, and the
// global per-variant and per-segment counts equal the recount.
func TestThreeInstancesShareStreamsAndStoreExactly(t *testing.T) {
	kinesisURL := emulatortest.KinesisEndpoint(t)
	kumoURL := emulatortest.KumoEndpoint(t)
	ctx := context.Background()
	kc := emulatortest.KinesisClient(t)
	preds := emulatortest.CreateStream(t, kc, 2)
	lbls := emulatortest.CreateStream(t, kc, 2)
	dc := emulatortest.DynamoDBClient(t)
	join := emulatortest.TableName(t, dc, "join")
	leases := emulatortest.TableName(t, dc, "leases")
	dead := emulatortest.TableName(t, dc, "dead")

	sc := newScenario(5, 500)
	var pl, ll []string
	for _, p := range sc.preds {
		pl = append(pl, p.line())
	}
	for _, l := range sc.labels {
		ll = append(ll, l.line())
	}
	put := func(stream string, lines []string) {
		for i := 0; i < len(lines); i += 5 {
			_, err := kc.PutRecord(ctx, &kds.PutRecordInput{StreamName: aws.String(stream),
				PartitionKey: aws.String(fmt.Sprintf("pk-%d", i)), Data: []byte(strings.Join(lines[i:min(i+5, len(lines))], "\n"))})
			if err != nil {
				t.Fatalf("put record on %s: %v", stream, err)
			}
		}
	}
	envFor := func(worker string) []string {
		return []string{
			"VERDICT_STORE=dynamodb", "VERDICT_DYNAMODB_TABLE=" + join, "VERDICT_WORKER_ID=" + worker,
			"VERDICT_REFRESH_EVERY=300ms", "VERDICT_SOURCES=kinesis",
			"VERDICT_KINESIS_PREDICTIONS_STREAM=" + preds, "VERDICT_KINESIS_LABELS_STREAM=" + lbls,
			"VERDICT_KINESIS_LEASE_TABLE=" + leases, "VERDICT_DEAD_LETTER_TABLE=" + dead,
			"VERDICT_KINESIS_LEASE_DURATION=3s",
			"AWS_ENDPOINT_URL_KINESIS=" + kinesisURL, "AWS_ENDPOINT_URL_DYNAMODB=" + kumoURL,
			"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
		}
	}
	var servers []*server
	for _, w := range []string{"w1", "w2", "w3"} {
		servers = append(servers, startServer(t, t.TempDir(), envFor(w)...))
	}
	put(preds, pl[:len(pl)/2])
	put(lbls, ll[:len(ll)/2])
	waitFor(t, 60*time.Second, func() bool {
		got, _ := metricsAPI(t, servers[0], "")
		return got["v5"].Pred > 0
	})
	servers[1].kill()

	// Split the predictions stream's first shard mid-stream.
	shards, err := kc.ListShards(ctx, &kds.ListShardsInput{StreamName: aws.String(preds)})
	if err != nil {
		t.Fatal(err)
	}
	first := shards.Shards[0]
	lo, _ := new(big.Int).SetString(*first.HashKeyRange.StartingHashKey, 10)
	hi, _ := new(big.Int).SetString(*first.HashKeyRange.EndingHashKey, 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	if _, err := kc.SplitShard(ctx, &kds.SplitShardInput{StreamName: aws.String(preds), ShardToSplit: first.ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatalf("split shard: %v", err)
	}
	emulatortest.WaitStreamActive(t, kc, preds)
	put(preds, pl[len(pl)/2:])
	put(lbls, ll[len(ll)/2:])

	want := sc.recount(0.5)
	for _, s := range []*server{servers[0], servers[2]} {
		var got map[string]cell
		done := func() bool {
			got, _ = metricsAPI(t, s, "")
			for k, w := range want {
				if got[k] != w {
					return false
				}
			}
			return true
		}
		deadline := time.Now().Add(90 * time.Second)
		for !done() && time.Now().Before(deadline) {
			time.Sleep(300 * time.Millisecond)
		}
		compareCounts(t, "three instances, one killed, one shard split", got, want)
	}
	for _, s := range []*server{servers[0], servers[2]} {
		s.stop()
	}
}

// TestCloudWatchSinkPublishesToTheEmulator runs the binary with the CloudWatch sink
// pointed at kumo and reads the metrics back with ListMetrics. kumo cannot decode
// timestamps or gzip bodies, so this run turns both off (emulators only; the package
// tests check the exact production request on the wire). A reference period over
// the first part of the traffic turns the shift signals on.
func TestCloudWatchSinkPublishesToTheEmulator(t *testing.T) {
	kumoURL := emulatortest.KumoEndpoint(t)
	cwc := emulatortest.CloudWatchClient(t)
	namespace := emulatortest.UniqueName(t, "Verdict")
	refSince, refUntil := time.Now().UTC().Add(-40*time.Minute), time.Now().UTC().Add(-15*time.Minute)
	s := startServer(t, t.TempDir(),
		"VERDICT_REFERENCE_SINCE="+refSince.Format(time.RFC3339), "VERDICT_REFERENCE_UNTIL="+refUntil.Format(time.RFC3339),
		"VERDICT_SINKS=prometheus,cloudwatch", "VERDICT_CLOUDWATCH_NAMESPACE="+namespace,
		"VERDICT_CLOUDWATCH_ENDPOINT_NAME=fraud-detector", "VERDICT_CLOUDWATCH_INTERVAL=1s",
		"VERDICT_CLOUDWATCH_VARIANT_NAMES=v6:v6-AllTraffic", "VERDICT_CLOUDWATCH_TOP_SEGMENTS=merchant_category:2",
		"VERDICT_BASELINE=v5", "VERDICT_CANDIDATES=v6", "VERDICT_CLOUDWATCH_OMIT_TIMESTAMP=true",
		// A fifth of the scenario is never labeled: accept precision from 75 % of the
		// flagged predictions resolved, so it is published.
		"VERDICT_ESTIMABLE_COVERAGE=0.75",
		"AWS_ENDPOINT_URL_CLOUDWATCH="+kumoURL, "AWS_DISABLE_REQUEST_COMPRESSION=true",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
	)
	send(t, s, newScenario(6, 300), 100, "")
	listed := map[string]bool{}
	waitFor(t, 30*time.Second, func() bool {
		out, err := cwc.ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{Namespace: aws.String(namespace)})
		if err != nil {
			t.Fatalf("ListMetrics: %v", err)
		}
		for _, m := range out.Metrics {
			dims := map[string]string{}
			for _, d := range m.Dimensions {
				dims[aws.ToString(d.Name)] = aws.ToString(d.Value)
			}
			listed[fmt.Sprintf("%s/%s/%s/%s", aws.ToString(m.MetricName), dims["VariantName"], dims["SegmentKey"], dims["BaselineVariant"])] = true
		}
		return listed["Recall/v6-AllTraffic//"] && listed["SegmentRegressions/v6-AllTraffic//v5"] && listed["FlagRateShiftVsBaseline/v6-AllTraffic//v5"]
	})
	for _, want := range []string{"Precision/v5//", "Recall/v6-AllTraffic//", "LabeledPositives/v5//", "PredictionCount/v6-AllTraffic/merchant_category/", "SegmentRegressions/v6-AllTraffic//v5",
		"ShiftPredictionCount/v6-AllTraffic//", "ShiftPredictionCount/v5/merchant_category/", "FlagRateShiftRatio/v5//", "ScoreShiftPSI/v6-AllTraffic//", "FlagRateShiftVsBaseline/v6-AllTraffic//v5"} {
		if !listed[want] {
			t.Errorf("ListMetrics lacks %s; has %v", want, listed)
		}
	}
	_, other := prometheusCounts(t, s)
	if other["verdict_cloudwatch_flushes_total"] < 1 {
		t.Errorf("no CloudWatch flush counted on /metrics: %v", other)
	}
	s.stop()
}

// TestMaturityAndRetentionInTheBinary: unlabeled predictions past VERDICT_MATURITY
// resolve as negative (a late label corrects them); on restart, the retention sweep
// deletes old fully resolved records while every count stays, and a resend of those
// old events is refused as too old instead of counting again.
func TestMaturityAndRetentionInTheBinary(t *testing.T) {
	dir := t.TempDir()
	// The first run keeps everything (retention 0), so it accepts 3-hour-old events;
	// the second run has a 2h retention.
	env := []string{"VERDICT_WINDOWS=1h", "VERDICT_MATURITY=1h", "VERDICT_MATURE_EVERY=200ms", "VERDICT_RETENTION=0"}
	s := startServer(t, dir, env...)
	old := time.Now().UTC().Add(-3 * time.Hour)
	var preds []string
	for i, score := range []float64{0.9, 0.9, 0.1, 0.1, 0.7} {
		preds = append(preds, tPred{ID: fmt.Sprintf("m%d", i), Variant: "v5", Role: "production", Cat: "fuel", Score: score, Time: old}.line())
	}
	fresh := tPred{ID: "fresh", Variant: "v5", Role: "production", Cat: "fuel", Score: 0.9, Time: time.Now().UTC()}
	preds = append(preds, fresh.line())
	if code, r, err := s.post("/v1/predictions", preds, ""); err != nil || code != http.StatusOK {
		t.Fatalf("post: %d %+v %v", code, r, err)
	}
	// m4 is labeled positive: TP; m0, m1 flagged and unlabeled: FP by maturity; m2, m3: TN.
	if code, _, err := s.post("/v1/labels", []string{tLabel{ID: "m4", Fraud: true, Time: old.Add(time.Minute)}.line()}, ""); err != nil || code != http.StatusOK {
		t.Fatalf("post label: %d %v", code, err)
	}
	want := cell{Pred: 6, Flag: 4, TP: 1, FP: 2, TN: 2}
	var got map[string]cell
	waitFor(t, 20*time.Second, func() bool { got, _ = metricsAPI(t, s, ""); return got["v5"] == want })
	code, body := s.get("/v1/metrics?window=all", "")
	if code != http.StatusOK || !strings.Contains(string(body), `"matured": 4`) {
		t.Errorf("want 4 matured predictions:\n%s", body)
	}
	// A late label is a correction: m0 becomes a TP, no longer matured.
	if code, _, err := s.post("/v1/labels", []string{tLabel{ID: "m0", Fraud: true, Time: time.Now().UTC()}.line()}, ""); err != nil || code != http.StatusOK {
		t.Fatalf("post late label: %d %v", code, err)
	}
	want = cell{Pred: 6, Flag: 4, TP: 2, FP: 1, TN: 2}
	if got, _ = metricsAPI(t, s, ""); got["v5"] != want {
		t.Errorf("after late label: %+v, want %+v", got["v5"], want)
	}
	s.stop()

	// Restart: the retention sweep deletes the old resolved records (m1..m4; m0 has a
	// fresh label, "fresh" is pending) and every count stays.
	env[len(env)-1] = "VERDICT_RETENTION=2h"
	s = startServer(t, dir, env...)
	waitFor(t, 20*time.Second, func() bool { return strings.Contains(s.log(), `"msg":"expired join records"`) })
	if !strings.Contains(s.log(), `"count":4`) {
		t.Errorf("want 4 expired records in the log:\n%s", s.log())
	}
	if got, _ = metricsAPI(t, s, ""); got["v5"] != want {
		t.Errorf("after expiry: %+v, want %+v (tallies keep their counts)", got["v5"], want)
	}
	// Resending the expired predictions is safe: they are older than the retention.
	code, r, err := s.post("/v1/predictions", preds, "")
	if err != nil || code != http.StatusBadRequest || len(r.Rejected) != 5 || !strings.Contains(r.Rejected[0].Reason, "VERDICT_RETENTION") {
		t.Errorf("resend of expired predictions: %d %+v %v, want the 5 old lines rejected as too old", code, r, err)
	}
	if got, _ = metricsAPI(t, s, ""); got["v5"] != want {
		t.Errorf("after resending expired predictions: %+v, want %+v (no double count)", got["v5"], want)
	}
	s.stop()
}
