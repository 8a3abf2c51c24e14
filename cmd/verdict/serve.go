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
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/verdictml/verdict/alarms/watch"
	"github.com/verdictml/verdict/api"
	"github.com/verdictml/verdict/dashboard"
	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/ingest/httpingest"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/publish/prom"
	"github.com/verdictml/verdict/window"
)

func runServe(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, `usage: verdict serve

Runs verdict on the embedded default: a join store on local disk (VERDICT_DATA_DIR),
HTTP ingest (POST /v1/predictions, POST /v1/labels, NDJSON), the query API
(GET /v1/metrics, /v1/series, /v1/judge, /v1/compare, ...), the dashboard (GET /),
Prometheus metrics (GET /metrics) and health (GET /healthz).
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

// service is verdict assembled from its settings: store, join, windows, sources,
// sinks and the HTTP surface.
type service struct {
	cfg     settings
	log     *slog.Logger
	store   labels.Store
	windows *window.Windows
	join    *labels.Join
	reg     *prometheus.Registry
	handler http.Handler
	// gate serves only the judge, without the token, on VERDICT_GATE_ADDR.
	gate http.Handler
	// ready is nil while the service can commit what it receives, else why not
	// (/readyz, verdict_ready).
	ready func() error
	// panics counts handler panics (recoverPanics).
	panics prometheus.Counter
	// closers run in reverse order after everything else stopped.
	closers []func() error
	// background runs until the context ends: stream consumers, the CloudWatch
	// publisher, leases, window refresh, maturity and pruning loops.
	background []func(context.Context) error
}

func openService(ctx context.Context, cfg settings, log *slog.Logger) (svc *service, err error) {
	spans, err := cfg.spans()
	if err != nil {
		return nil, err
	}
	s := &service{cfg: cfg, log: log, windows: cfg.newWindows(), reg: prometheus.NewRegistry(),
		ready: func() error { return nil }}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	start := time.Now()
	awsConfig := &awsOnce{} // loaded by the first client that needs it
	spec := cfg.joinSpec(log, s.windows)
	spec.awsConfig = awsConfig
	jn, err := openJoin(ctx, spec)
	if err != nil {
		return nil, err
	}
	s.store, s.join, s.ready = jn.store, jn.join, jn.ready
	s.closers = append(s.closers, jn.close)
	s.background = append(s.background, jn.upkeep)
	var leader cloudwatch.Leader
	if jn.shared != nil {
		lease := jn.shared.Lease("cloudwatch-publisher", cfg.workerID(), 15*time.Second)
		s.background = append(s.background, lease.Run)
		leader = lease
		log.Info("join store open", "store", "dynamodb", "table", cfg.DynamoTable, "writer", cfg.workerID(), "restore", time.Since(start).Round(time.Millisecond))
	} else {
		s.reg.MustRegister(jn.local.Collector())
		log.Info("join store open", "store", "embedded", "dir", cfg.DataDir, "restore", time.Since(start).Round(time.Millisecond))
	}
	s.background = append(s.background, s.matureLoop)

	dec, err := cfg.liveDecoder()
	if err != nil {
		return nil, err
	}
	// Variants the store already counts keep their place under VERDICT_MAX_VARIANTS.
	dec.KnowVariants(countedVariants(s.windows)...)
	reg := s.reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.panics = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "verdict_http_panics_total",
		Help: "HTTP handlers that panicked (a bug; the request got 500 and the panic is logged with its stack).",
	})
	reg.MustRegister(s.panics)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "verdict_ready",
		Help: "1 while verdict can commit what it receives (/readyz answers 200), 0 while the join store cannot (disk full, store failed).",
	}, func() float64 {
		if s.ready() != nil {
			return 0
		}
		return 1
	}))
	reg.MustRegister(prom.NewCollector(s.windows, spans, s.store.Unmatched, log))
	policy := cfg.labelPolicy()
	reg.MustRegister(prom.NewCohortCollector(s.windows, policy.Maturity, log))
	im, err := ingest.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	jcfg, err := cfg.judgeConfig()
	if err != nil {
		return nil, err
	}
	judgeMetrics, err := judge.NewCollector(s.windows, cfg.judgePairs(), jcfg, log)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	reg.MustRegister(judgeMetrics)
	judgeAPI, err := api.NewJudgeHandler(s.windows, jcfg, log)
	if err != nil {
		return nil, err
	}
	compareAPI, err := api.NewCompareHandler(s.windows, jcfg, log)
	if err != nil {
		return nil, err
	}
	if cfg.source("kinesis") {
		runs, err := kinesisSources(ctx, cfg, awsConfig, log, reg, dec, s.join, im)
		if err != nil {
			return nil, err
		}
		s.background = append(s.background, runs...)
	}
	if cfg.source("s3") {
		src, err := objectSource(ctx, cfg, awsConfig, log, reg, dec, s.join, im)
		if err != nil {
			return nil, err
		}
		s.background = append(s.background, src.Run)
	}
	if cfg.sink("cloudwatch") {
		pub, err := cloudWatchPublisher(ctx, cfg, awsConfig, log, reg, s.windows, jcfg, leader)
		if err != nil {
			return nil, err
		}
		s.background = append(s.background, pub.Run)
	}

	var alarmsAPI http.Handler = watch.Unconfigured()
	if cfg.AlarmSpec != "" {
		wt, err := alarmWatch(cfg, s.windows, jcfg, log)
		if err != nil {
			return nil, err
		}
		s.background = append(s.background, wt.Run)
		alarmsAPI = wt
	}

	v1 := http.NewServeMux()
	if cfg.source("http") {
		hcfg := httpingest.Config{MaxBodyBytes: cfg.MaxBodyBytes, Metrics: im, Logger: log,
			Limit: httpingest.NewLimit(cfg.MaxIngest), BodyTimeout: cfg.BodyTimeout}
		v1.Handle("/v1/predictions", httpingest.Predictions(dec, s.join, hcfg))
		v1.Handle("/v1/labels", httpingest.Labels(dec, s.join, hcfg))
	}
	v1.Handle("/v1/metrics", api.NewMetricsHandler(s.windows, s.store.Unmatched, log, api.WithPolicy(policy)))
	v1.Handle("/v1/coverage", api.NewCoverageHandler(s.windows, log, api.WithPolicy(policy)))
	v1.Handle("/v1/series", api.NewSeriesHandler(s.windows, log, api.WithPolicy(policy)))
	v1.Handle("/v1/judge", judgeAPI)
	v1.Handle("/v1/compare", compareAPI)
	v1.Handle("/v1/alarms", alarmsAPI)
	ingestHealth := dashboard.NewIngestHealth(reg, log)
	s.background = append(s.background, ingestHealth.Run)
	v1.Handle("/v1/ingest", ingestHealth)
	v1.Handle("/v1/dashboard", dashboard.SettingsHandler(cfg.dashboardSettings()))

	mux := http.NewServeMux()
	mux.Handle("/v1/", requireToken(cfg.APIToken, wellFormedQuery(v1)))
	// A metric that cannot be read (the unmatched count of a failed store) must not
	// take the rest of /metrics, verdict_ready included, down with it.
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	// The dashboard's page and assets hold no data: it reads /v1/ with the token.
	mux.Handle("/", dashboard.Page())
	s.handler = s.recoverPanics(s.probes(mux))
	gate := http.NewServeMux()
	gate.Handle("/v1/judge", wellFormedQuery(judgeAPI))
	s.gate = s.recoverPanics(s.probes(gate))
	return s, nil
}

// run serves on ln until ctx is done, then drains in-flight requests and closes the
// store. Background loops (maturity, bucket pruning) stop with it.
func (s *service) run(ctx context.Context, ln net.Listener) error {
	servers := []listener{{s.httpServer(s.handler), ln}}
	if s.cfg.GateAddr != "" {
		gln, err := net.Listen("tcp", s.cfg.GateAddr)
		if err != nil {
			ln.Close()
			s.close()
			return fmt.Errorf("listen on %s (VERDICT_GATE_ADDR): %w", s.cfg.GateAddr, err)
		}
		s.log.Info("rollout gate serving /v1/judge without token", "addr", gln.Addr().String())
		servers = append(servers, listener{s.httpServer(s.gate), gln})
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, sv := range servers {
		g.Go(func() error {
			if err := sv.srv.Serve(sv.ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http server on %s: %w", sv.ln.Addr(), err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		s.log.Info("shutting down: draining requests", "timeout", s.cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		var errs []error
		for _, sv := range servers {
			if err := sv.srv.Shutdown(sctx); err != nil {
				errs = append(errs, fmt.Errorf("drain http requests on %s: %w", sv.ln.Addr(), err))
			}
		}
		return errors.Join(errs...)
	})
	for _, run := range s.background {
		g.Go(func() error { return run(gctx) })
	}
	err := g.Wait()
	if cerr := s.close(); err == nil {
		err = cerr
	}
	s.log.Info("stopped")
	return err
}

func (s *service) close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}

// listener is one HTTP server and where it listens.
type listener struct {
	srv *http.Server
	ln  net.Listener
}

func (s *service) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// Ingest sets its own, shorter body deadline (VERDICT_BODY_READ_TIMEOUT).
		ReadTimeout: 2 * time.Minute,
		// A client that does not read its answer cannot hold a connection forever.
		WriteTimeout: 3 * time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// probes answers liveness (/healthz) and readiness (/readyz) on every listener,
// and hands every other request to next.
func (s *service) probes(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", healthz)
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/", next)
	return mux
}

// healthz is liveness: the process serves requests. It stays 200 while the store
// cannot commit (a restart would not free the disk); /readyz says that.
func healthz(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is readiness: 200 while verdict can commit what it receives, 503 with the
// reason while it cannot (disk below the reserve, store failed and not yet reopened).
func (s *service) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.ready(); err != nil {
		w.Header().Set("Retry-After", "5")
		api.WriteJSON(w, r, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
		return
	}
	api.WriteJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
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

// requireToken guards next with a bearer token when token is set. The scheme is
// case-insensitive (RFC 7235: "bearer" is "Bearer").
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, isBearer := bearerToken(r.Header.Get("Authorization"))
		if !isBearer || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="verdict"`)
			reason := "missing bearer token (Authorization: Bearer <VERDICT_API_TOKEN>)"
			if isBearer {
				reason = "wrong bearer token"
			}
			api.WriteJSON(w, r, http.StatusUnauthorized, api.ErrorBody{Error: reason})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerToken reads "Bearer <token>" with the scheme in any case and any run of
// spaces after it.
func bearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(tok, " "), true
}

// wellFormedQuery refuses, for every /v1/ endpoint, a query string that does not
// parse or gives a parameter twice (api.ReadQuery).
func wellFormedQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := api.ReadQuery(w, r); ok {
			next.ServeHTTP(w, r)
		}
	})
}

// recoverPanics turns a handler's panic into a 500 with the panic logged and
// counted, instead of net/http's dropped connection with nothing on /metrics.
func (s *service) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler { //nolint:errorlint // net/http's sentinel, compared as net/http does
				panic(p)
			}
			s.panics.Inc()
			s.log.ErrorContext(r.Context(), "http handler panicked (a bug); answered 500", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			api.WriteJSON(w, r, http.StatusInternalServerError, api.ErrorBody{Error: "internal error (logged with its stack); retrying is safe, ingest is idempotent"})
		}()
		next.ServeHTTP(w, r)
	})
}

// countedVariants are the variants the windows hold (all time).
func countedVariants(w *window.Windows) []string {
	var out []string
	for _, r := range w.Snapshot(window.AllTime).Overall() {
		out = append(out, r.Key.Variant)
	}
	return out
}
