// Package cloudwatch publishes verdict's window statistics as CloudWatch custom
// metrics, the data source of the rollback alarms that package alarms generates.
//
// Every flush interval the Publisher reads one window snapshot (and judges each
// configured baseline/candidate pair over its comparison period with package judge),
// builds the datums of the metric contract in docs/alarms.md — one timestamp for
// the whole flush, ratios omitted when undefined, their n's always present —
// splits them into PutMetricData requests within CloudWatch's limits and hands them
// to a sender through a bounded queue. The sender retries with the SDK's standard
// retryer; when CloudWatch is slow or down the queue drops its oldest flush, so
// neither the flush loop nor anything upstream ever waits for CloudWatch.
package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/judge"
)

// API is the one CloudWatch call the publisher makes; *cloudwatch.Client has it.
type API interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// Snapshots is what the publisher needs from the windows: the window it publishes,
// and what the judge reads for the baseline comparisons.
type Snapshots interface {
	judge.Snapshots
}

// Leader tells whether this instance is the one that publishes, when several
// instances share a join store (and so publish the same numbers).
type Leader interface {
	IsLeader() bool
}

// Deps are the publisher's collaborators.
type Deps struct {
	// Client sends the requests. Required.
	Client API
	// Snapshots are the windows to publish. Required.
	Snapshots Snapshots
	// Reference is the reference period of the shift signals; required when
	// Config.Shift is set.
	Reference Reference
	// Leader, if set, is asked before every flush; a flush is skipped when this
	// instance is not the leader. Nil: always publish.
	Leader Leader
	// Registerer receives the publisher's health metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// Log receives warnings about failed requests and dropped flushes. Nil: discard.
	Log *slog.Logger
}

// Error reasons on verdict_cloudwatch_errors_total.
const (
	ReasonThrottled        = "throttled"         // CloudWatch throttled the request after all retries
	ReasonRejected         = "rejected"          // a 4xx other than throttling: the request is invalid
	ReasonServer           = "server"            // a 5xx after all retries
	ReasonTimeout          = "timeout"           // SendTimeout elapsed
	ReasonNetwork          = "network"           // connection refused, reset, DNS, ...
	ReasonRetryQuota       = "retry_quota"       // the retryer's token bucket is empty: failing fast
	ReasonCanceled         = "canceled"          // shutdown while sending
	ReasonJudge            = "judge"             // the judge failed; baseline metrics left out
	ReasonInvalidDimension = "invalid_dimension" // a series with a name CloudWatch rejects, left out
	ReasonReference        = "reference"         // the reference period could not be read; shift signals left out
	ReasonOther            = "other"
)

// Publisher publishes window snapshots to CloudWatch. Create it with New, run it
// with Run.
type Publisher struct {
	cfg     Config
	client  API
	snaps   Snapshots
	ref     Reference
	leader  Leader
	log     *slog.Logger
	retryer aws.Retryer
	queue   *queue
	now     func() time.Time

	started       time.Time
	lastDelivered atomic.Int64 // unix nanoseconds of the newest delivered flush's timestamp

	requests, datums, dropped prometheus.Counter
	errors, flushes           *prometheus.CounterVec
	lastSuccess               prometheus.Gauge
}

// New returns a publisher with cfg's defaults filled in, its health metrics
// registered on deps.Registerer.
func New(cfg Config, deps Deps) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	switch {
	case deps.Client == nil:
		return nil, errors.New("cloudwatch publisher: nil Client")
	case deps.Snapshots == nil:
		return nil, errors.New("cloudwatch publisher: nil Snapshots")
	case cfg.Shift != nil && deps.Reference == nil:
		return nil, errors.New("cloudwatch publisher: Shift configured but no Reference")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{
		cfg: cfg, client: deps.Client, snaps: deps.Snapshots, ref: deps.Reference, leader: deps.Leader,
		log:   log.With("sink", "cloudwatch", "namespace", cfg.Namespace),
		queue: newQueue(cfg.QueueSize),
		now:   time.Now,
		retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = cfg.MaxAttempts
			o.MaxBackoff = cfg.MaxBackoff
		}),
	}
	p.started = p.now()
	if err := p.registerHealth(deps.Registerer); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Publisher) registerHealth(reg prometheus.Registerer) error {
	p.requests = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "verdict_cloudwatch_requests_total",
		Help: "PutMetricData requests CloudWatch accepted.",
	})
	p.datums = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "verdict_cloudwatch_datums_total",
		Help: "Metric datums in PutMetricData requests CloudWatch accepted.",
	})
	p.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "verdict_cloudwatch_errors_total",
		Help: "Failed PutMetricData requests (after the SDK's retries) and series left out of flushes, by reason.",
	}, []string{"reason"})
	p.flushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "verdict_cloudwatch_flushes_total",
		Help: "Flushes by result: delivered (every request accepted), failed, skipped_not_leader.",
	}, []string{"result"})
	p.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "verdict_cloudwatch_flushes_dropped_total",
		Help: "Built flushes dropped unsent because the send queue was full (CloudWatch slow or down).",
	})
	p.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "verdict_cloudwatch_last_success_timestamp_seconds",
		Help: "Unix time at which the last flush was completely delivered.",
	})
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "verdict_cloudwatch_queue_flushes",
		Help: "Built flushes waiting for the sender.",
	}, func() float64 { return float64(p.queue.len()) })
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "verdict_cloudwatch_lag_seconds",
		Help: "Age of the newest datapoint delivered to CloudWatch (since start when none was).",
	}, func() float64 { return p.lag().Seconds() })
	for _, r := range []string{ReasonThrottled, ReasonRejected, ReasonServer, ReasonTimeout, ReasonNetwork,
		ReasonRetryQuota, ReasonCanceled, ReasonJudge, ReasonInvalidDimension, ReasonReference, ReasonOther} {
		p.errors.WithLabelValues(r)
	}
	for _, r := range []string{"delivered", "failed", "skipped_not_leader"} {
		p.flushes.WithLabelValues(r)
	}
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{p.requests, p.datums, p.errors, p.flushes, p.dropped, p.lastSuccess, queued, lag} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("cloudwatch publisher: register health metrics: %w", err)
		}
	}
	return nil
}

// lag is how old the newest delivered datapoint is.
func (p *Publisher) lag() time.Duration {
	last := p.started
	if ns := p.lastDelivered.Load(); ns != 0 {
		last = time.Unix(0, ns)
	}
	return p.now().Sub(last)
}

// Run flushes every interval and sends the flushes until ctx is done; then it
// returns nil, and flushes still queued are discarded. Call it once.
func (p *Publisher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { p.sendLoop(ctx) })
	defer wg.Wait()
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := p.Flush(ctx); err != nil {
				p.log.Error("flush", "err", err)
			}
		}
	}
}

// Flush builds the datums of the current snapshot and queues them for the sender.
// It never waits for CloudWatch: when the queue is full the oldest queued flush is
// dropped. It does nothing when a Leader is set and this instance is not it. A
// judge failure, or a reference that cannot be read, is returned after the
// per-variant metrics were queued without the baseline metrics or the shift
// signals (which CloudWatch then sees as missing).
func (p *Publisher) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.leader != nil && !p.leader.IsLeader() {
		p.flushes.WithLabelValues("skipped_not_leader").Inc()
		return nil
	}
	snap := p.snaps.Snapshot(p.cfg.Window)
	at := snap.End
	if at.IsZero() {
		at = p.now()
	}
	at = at.Truncate(time.Millisecond)
	var flushErr error
	regs, err := regressions(p.cfg, p.snaps)
	if err != nil {
		p.errors.WithLabelValues(ReasonJudge).Inc()
		flushErr = fmt.Errorf("cloudwatch publisher: %w", err)
	}
	sh, err := shifts(p.cfg, snap, p.snaps, p.ref)
	switch {
	case errors.Is(err, ErrReferencePending):
	case err != nil:
		p.errors.WithLabelValues(ReasonReference).Inc()
		flushErr = errors.Join(flushErr, fmt.Errorf("cloudwatch publisher: shift signals against the reference: %w", err))
	}
	datums, skips := build(p.cfg, snap, regs, sh, at)
	if len(skips) > 0 {
		p.errors.WithLabelValues(ReasonInvalidDimension).Add(float64(len(skips)))
		p.log.Warn("series left out of the flush: CloudWatch would reject their dimensions",
			"count", len(skips), "variant", skips[0].Key.Variant, "segment_key", skips[0].Key.SegmentKey,
			"segment", skips[0].Key.Segment, "err", skips[0].Err)
	}
	if len(datums) > 0 {
		f := flush{at: at, requests: split(p.cfg.Namespace, datums, maxDatums, maxBytes), datums: len(datums)}
		if n := p.queue.push(f); n > 0 {
			p.dropped.Add(float64(n))
			p.log.Warn("send queue full: dropped the oldest flushes", "dropped", n, "queue_size", p.cfg.QueueSize)
		}
	}
	return flushErr
}

func (p *Publisher) sendLoop(ctx context.Context) {
	for {
		f, ok := p.queue.pop(ctx)
		if !ok {
			return
		}
		p.deliver(ctx, f)
	}
}

// deliver sends one flush's requests in order. A rejected request (invalid input)
// does not stop the others; any other failure abandons the rest of the flush, as
// the next request would most likely fail the same way.
func (p *Publisher) deliver(ctx context.Context, f flush) {
	failed := false
	for i, in := range f.requests {
		err := p.put(ctx, in)
		if err == nil {
			p.requests.Inc()
			p.datums.Add(float64(len(in.MetricData)))
			continue
		}
		failed = true
		reason := classify(err)
		p.errors.WithLabelValues(reason).Inc()
		p.log.Warn("PutMetricData failed", "flush_time", f.at, "request", i+1, "requests", len(f.requests),
			"reason", reason, "err", err)
		if reason != ReasonRejected {
			break
		}
	}
	if failed {
		p.flushes.WithLabelValues("failed").Inc()
		return
	}
	p.flushes.WithLabelValues("delivered").Inc()
	p.lastSuccess.Set(float64(p.now().UnixNano()) / 1e9)
	if ns := f.at.UnixNano(); ns > p.lastDelivered.Load() {
		p.lastDelivered.Store(ns)
	}
}

func (p *Publisher) put(ctx context.Context, in *cloudwatch.PutMetricDataInput) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.SendTimeout)
	defer cancel()
	_, err := p.client.PutMetricData(ctx, in, func(o *cloudwatch.Options) {
		o.Retryer = p.retryer
		o.RetryMaxAttempts = 0 // the retryer above decides
	})
	if err != nil {
		return fmt.Errorf("cloudwatch: PutMetricData of %d datums to %s: %w", len(in.MetricData), p.cfg.Namespace, err)
	}
	return nil
}

// classify names why a request failed, for the errors counter.
func classify(err error) string {
	var quota *ratelimit.QuotaExceededError
	var resp *smithyhttp.ResponseError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, context.Canceled):
		return ReasonCanceled
	case errors.As(err, &quota):
		return ReasonRetryQuota
	case retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary:
		return ReasonThrottled
	case errors.As(err, &resp) && resp.HTTPStatusCode() >= 500:
		return ReasonServer
	case errors.As(err, &resp) && resp.HTTPStatusCode() >= 400:
		return ReasonRejected
	case errors.As(err, &netErr):
		return ReasonNetwork
	}
	return ReasonOther
}
