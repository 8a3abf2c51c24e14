package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/verdictml/verdict/loadtest"
)

// benchLoadtest runs verdict loadtest's generator at rising rates against a no-op
// container on loopback (in this process: the server shares the cores), and prints
// what it achieved. A rate is sustained when nothing is dropped or fails and the
// achieved rate is within 1 % of the intended one.
func benchLoadtest(ctx context.Context, out io.Writer, rates []float64, each time.Duration) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("POST /invocations", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "0.5")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String()

	const maxInFlight = 1024
	target := loadtest.NewHTTPTarget(url, maxInFlight)
	if err := target.Ping(ctx); err != nil {
		return err
	}
	payloads := []loadtest.Payload{{Body: []byte("12.5,electronics,1,0,3"), ContentType: "text/csv"}}
	fmt.Fprintf(out, "### loadtest generator vs a no-op container (loopback, same process, %s per rate, at most %d in flight)\n\n", each, maxInFlight)
	fmt.Fprintln(out, "| intended/s | achieved/s | dropped | errors | latency p50 | p99 | p99.9 | max | service p50 | send lag p99 | send lag max | sustained |")
	fmt.Fprintln(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
	misses := 0
	for _, rate := range rates {
		progress("loadtest: %.0f/s for %s", rate, each)
		rep, err := loadtest.Run(ctx, target, payloads, loadtest.Config{
			Phases: []loadtest.Phase{{From: rate, To: rate, Duration: each}}, MaxInFlight: maxInFlight, Timeout: 5 * time.Second,
		})
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			return fmt.Errorf("loadtest at %.0f/s: %w", rate, err)
		}
		t := rep.Total
		sustained := t.Dropped == 0 && t.ErrorCount() == 0 && t.AchievedRate >= 0.99*rate
		mark := "yes"
		if !sustained {
			mark = "no"
			misses++
		} else {
			misses = 0
		}
		fmt.Fprintf(out, "| %.0f | %.0f | %d | %d | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %s |\n",
			rate, t.AchievedRate, t.Dropped, t.ErrorCount(), t.Latency.P50MS, t.Latency.P99MS, t.Latency.P999MS, t.Latency.MaxMS,
			t.ServiceTime.P50MS, t.SendLag.P99MS, t.SendLag.MaxMS, mark)
		if misses == 2 {
			break
		}
	}
	fmt.Fprint(os.Stderr, "\r\033[K")
	fmt.Fprintln(out)
	return nil
}
