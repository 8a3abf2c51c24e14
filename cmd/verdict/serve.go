package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/ingest/httpingest"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/embedded"
	"github.com/verdictml/verdict/publish/prom"
	"github.com/verdictml/verdict/query"
	"github.com/verdictml/verdict/window"
)

func runServe(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, `usage: verdict serve

Runs verdict on the embedded default: a join store on local disk (VERDICT_DATA_DIR),
HTTP ingest (POST /v1/predictions, POST /v1/labels, NDJSON), the query API
(GET /v1/metrics), Prometheus metrics (GET /metrics) and health (GET /healthz).
Listens on VERDICT_ADDR (default 127.0.0.1:8080). SIGTERM drains in-flight requests
and closes the store cleanly. All settings come from VERDICT_* environment
variables; run 'verdict config' for the table.
`)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (serve takes its settings from the environment)", fs.Args())
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log := cfg.logger(os.Stderr)
	svc, err := openService(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		svc.close()
		return fmt.Errorf("listen on %s (VERDICT_ADDR): %w", cfg.Addr, err)
	}
	log.Info("verdict serving", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "version", version)
	return svc.run(ctx, ln)
}

// service is the embedded-default verdict: store, join, windows, HTTP.
type service struct {
	cfg     settings
	log     *slog.Logger
	store   *embedded.Store
	windows *window.Windows
	join    *labels.Join
	reg     *prometheus.Registry
	handler http.Handler
	// sources are stream consumers (Kinesis) that run until the context ends.
	sources []func(context.Context) error
}

func openService(ctx context.Context, cfg settings, log *slog.Logger) (*service, error) {
	spans, err := cfg.spans()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory (VERDICT_DATA_DIR): %w", err)
	}
	start := time.Now()
	store, err := embedded.Open(cfg.DataDir, embedded.Options{
		CacheBytes: cfg.StoreCacheMB << 20,
		NoSync:     !cfg.StoreSync,
		Logger:     log,
	})
	if err != nil {
		return nil, err
	}
	windows := window.New(cfg.Bucket, cfg.longest())
	join, err := labels.Open(ctx, store, cfg.joinConfig(), windows)
	if err != nil {
		store.Close()
		return nil, err
	}
	log.Info("join store open", "dir", cfg.DataDir, "restore", time.Since(start).Round(time.Millisecond))
	dec, err := ingest.NewDecoder(cfg.decoderConfig())
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("configuration: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prom.NewCollector(windows, spans, store.Unmatched, log))
	im, err := ingest.NewMetrics(reg)
	if err != nil {
		store.Close()
		return nil, err
	}

	jcfg, err := cfg.judgeConfig()
	if err != nil {
		store.Close()
		return nil, err
	}
	judgeMetrics, err := judge.NewCollector(windows, cfg.judgePairs(), jcfg, log)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("configuration: %w", err)
	}
	reg.MustRegister(judgeMetrics)
	judgeAPI, err := judge.NewJudgeHandler(windows, jcfg, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	compareAPI, err := judge.NewCompareHandler(windows, jcfg, log)
	if err != nil {
		store.Close()
		return nil, err
	}

	var sources []func(context.Context) error
	if cfg.source("kinesis") {
		if sources, err = kinesisSources(ctx, cfg, log, reg, dec, join, im); err != nil {
			store.Close()
			return nil, err
		}
	}

	api := http.NewServeMux()
	if cfg.source("http") {
		hcfg := httpingest.Config{MaxBodyBytes: cfg.MaxBodyBytes, Metrics: im, Logger: log}
		api.Handle("/v1/predictions", httpingest.Predictions(dec, join, hcfg))
		api.Handle("/v1/labels", httpingest.Labels(dec, join, hcfg))
	}
	api.Handle("/v1/metrics", query.NewMetrics(windows, store.Unmatched, log))
	api.Handle("/v1/judge", judgeAPI)
	api.Handle("/v1/compare", compareAPI)

	mux := http.NewServeMux()
	mux.Handle("/v1/", requireToken(cfg.APIToken, api))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		query.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return &service{cfg: cfg, log: log, store: store, windows: windows, join: join, reg: reg, handler: mux, sources: sources}, nil
}

// run serves on ln until ctx is done, then drains in-flight requests and closes the
// store. Background loops (maturity, bucket pruning) stop with it.
func (s *service) run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		s.log.Info("shutting down: draining requests", "timeout", s.cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("drain http requests: %w", err)
		}
		return nil
	})
	for _, src := range s.sources {
		g.Go(func() error { return src(gctx) })
	}
	g.Go(func() error { return s.matureLoop(gctx) })
	g.Go(func() error { return s.pruneLoop(gctx) })
	err := g.Wait()
	if cerr := s.close(); err == nil {
		err = cerr
	}
	s.log.Info("stopped")
	return err
}

func (s *service) close() error {
	s.join.Close()
	return s.store.Close()
}

// matureLoop resolves predictions that reached label maturity unlabeled.
func (s *service) matureLoop(ctx context.Context) error {
	if s.cfg.MaturityMode != "negative" || s.cfg.Maturity <= 0 {
		return nil
	}
	t := time.NewTicker(s.cfg.MatureEvery)
	defer t.Stop()
	const limit = 5000
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for {
			n, err := s.join.Mature(ctx, time.Now(), limit)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.log.Error("resolve matured predictions", "err", err)
				break
			}
			if n > 0 {
				s.log.Debug("matured predictions resolved as negative", "count", n)
			}
			if n < limit {
				break
			}
		}
	}
}

// pruneLoop drops bucket tallies older than the longest window from the store.
func (s *service) pruneLoop(ctx context.Context) error {
	keep := s.cfg.longest() + 2*s.cfg.Bucket
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := s.store.DropBucketsBefore(time.Now().Add(-keep).Unix()); err != nil {
			s.log.Error("drop old bucket tallies", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// requireToken guards next with a bearer token when token is set.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="verdict"`)
			reason := "missing bearer token (Authorization: Bearer <VERDICT_API_TOKEN>)"
			if strings.HasPrefix(string(got), "Bearer ") {
				reason = "wrong bearer token"
			}
			query.WriteJSON(w, http.StatusUnauthorized, query.ErrorBody{Error: reason})
			return
		}
		next.ServeHTTP(w, r)
	})
}
