// Package containertest is a local model server that follows the SageMaker
// inference-container contract (GET /ping, POST /invocations), with injected latency,
// a stall and scripted errors, for load-test tests. It listens on loopback only.
package containertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Behavior configures the server.
type Behavior struct {
	// Latency is added to every invocation.
	Latency time.Duration
	// StallAfter and StallFor pause the whole server: from StallAfter after Start,
	// for StallFor, no invocation answers; those due or in flight then answer when
	// the stall ends. Zero StallFor: no stall.
	StallAfter, StallFor time.Duration
	// Score answers a successful invocation; default "0.5".
	Score func(body []byte) string
}

// Server is a running container.
type Server struct {
	URL         string
	b           Behavior
	start       time.Time
	invocations atomic.Int64
}

// Start runs a server until the test ends.
//
// The request body scripts errors: "status=N" answers HTTP N, "close" closes the
// connection without answering, "sleep=D" answers after D more (unless the client
// gives up first); anything else is a normal invocation.
func Start(t testing.TB, b Behavior) *Server {
	t.Helper()
	s := &Server{b: b}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /invocations", s.invoke)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	s.start = time.Now()
	return s
}

// Invocations counts the POST /invocations requests received.
func (s *Server) Invocations() int64 { return s.invocations.Load() }

func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	s.invocations.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !sleep(r, s.b.Latency) {
		return
	}
	if s.b.StallFor > 0 {
		stallStart := s.start.Add(s.b.StallAfter)
		stallEnd := stallStart.Add(s.b.StallFor)
		if now := time.Now(); !now.Before(stallStart) && now.Before(stallEnd) {
			if !sleep(r, stallEnd.Sub(now)) {
				return
			}
		}
	}
	cmd := strings.TrimSpace(string(body))
	switch {
	case strings.HasPrefix(cmd, "status="):
		code, _ := strconv.Atoi(strings.TrimPrefix(cmd, "status="))
		http.Error(w, "scripted error", code)
		return
	case cmd == "close":
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
			}
		}
		return
	case strings.HasPrefix(cmd, "sleep="):
		d, _ := time.ParseDuration(strings.TrimPrefix(cmd, "sleep="))
		if !sleep(r, d) {
			return
		}
	}
	score := "0.5"
	if s.b.Score != nil {
		score = s.b.Score(body)
	}
	w.Header().Set("Content-Type", "text/csv")
	_, _ = io.WriteString(w, score)
}

// sleep waits d unless the client gives up; it reports whether to answer.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
