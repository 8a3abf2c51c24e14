package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// hangingEndpoint accepts connections, reads what is sent and never answers. Each
// connection that delivers request bytes signals arrived.
func hangingEndpoint(t *testing.T) (url string, arrived <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 64)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				var b [1]byte
				if _, err := c.Read(b[:]); err == nil {
					select {
					case ch <- struct{}{}:
					default:
					}
				}
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + ln.Addr().String(), ch
}

func oneVariant() *window.Windows {
	return windowsOf(series{variant: "fraud-v5", counts: counts(80, 20, 20, 880)})
}

// A CloudWatch that accepts the connection and never answers holds the sender, not
// the caller: every later Flush returns at once, ingest keeps observing, and the
// queue keeps only the newest flushes, counting the ones it dropped.
func TestHangingCloudWatchDoesNotBlockFlushOrIngest(t *testing.T) {
	url, arrived := hangingEndpoint(t)
	w := oneVariant()
	reg := prometheus.NewRegistry()
	p, err := New(Config{
		EndpointName: "fraud-detector", QueueSize: 2,
		Interval: time.Hour, SendTimeout: time.Hour, // the sender stays stuck until shutdown
	}, Deps{Client: wireClient(url), Snapshots: w, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	runPublisher(t, p)

	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived: // the sender is inside PutMetricData now
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the endpoint")
	}

	const flushes, observations = 5, 1000
	bucket := time.Now().Unix() / 300 * 300
	for i := range flushes * observations {
		w.Observe([]tally.Delta{{Key: tally.Key{Variant: "fraud-v5"}, Bucket: bucket, Counts: counts(0, 0, 0, 1)}})
		if i%observations == 0 {
			if err := p.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Everything above returned while the first request is still unanswered.
	if got := value(t, reg, "verdict_cloudwatch_flushes_total", "result", "failed") +
		value(t, reg, "verdict_cloudwatch_flushes_total", "result", "delivered"); got != 0 {
		t.Fatalf("the sender finished %v flushes; the test needs it stuck", got)
	}
	if got := value(t, reg, "verdict_cloudwatch_queue_flushes"); got != 2 {
		t.Errorf("queue holds %v flushes, want its size 2", got)
	}
	if got := value(t, reg, "verdict_cloudwatch_flushes_dropped_total"); got != flushes-2 {
		t.Errorf("dropped %v flushes, want %d (5 queued behind a stuck one, room for 2)", got, flushes-2)
	}
	if got := w.Snapshot(window.AllTime).Overall()[0].Counts.Predictions; got != 1000+flushes*observations {
		t.Errorf("windows hold %d predictions, want %d: ingest did not keep up", got, 1000+flushes*observations)
	}
	if got := value(t, reg, "verdict_cloudwatch_requests_total"); got != 0 {
		t.Errorf("requests_total %v with nothing answered", got)
	}
}

// A closed port fails fast (connection refused, then the retry quota): each flush
// is accounted for as failed or dropped, never delivered, and Flush never waits.
func TestClosedPortFailsFlushesAndCountsThem(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	_ = ln.Close()
	reg := prometheus.NewRegistry()
	p, err := New(Config{
		EndpointName: "fraud-detector", QueueSize: 3, Interval: time.Hour,
		MaxAttempts: 3, MaxBackoff: 5 * time.Millisecond,
	}, Deps{Client: wireClient(url), Snapshots: oneVariant(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	runPublisher(t, p)
	const flushes = 20
	for range flushes {
		if err := p.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	failed := func() float64 { return value(t, reg, "verdict_cloudwatch_flushes_total", "result", "failed") }
	dropped := func() float64 { return value(t, reg, "verdict_cloudwatch_flushes_dropped_total") }
	waitFor(t, "every flush to fail or be dropped", func() bool { return failed()+dropped() == flushes })
	if got := value(t, reg, "verdict_cloudwatch_flushes_total", "result", "delivered"); got != 0 {
		t.Errorf("%v flushes delivered to a closed port", got)
	}
	network := value(t, reg, "verdict_cloudwatch_errors_total", "reason", ReasonNetwork)
	quota := value(t, reg, "verdict_cloudwatch_errors_total", "reason", ReasonRetryQuota)
	if network == 0 || network+quota != failed() {
		t.Errorf("errors network=%v retry_quota=%v, want them to sum to %v failed flushes, network first", network, quota, failed())
	}
	if lag := value(t, reg, "verdict_cloudwatch_lag_seconds"); lag < 0 {
		t.Errorf("lag %v", lag)
	}
	if got := value(t, reg, "verdict_cloudwatch_last_success_timestamp_seconds"); got != 0 {
		t.Errorf("last success %v without any", got)
	}
}

type leader struct{ yes atomic.Bool }

func (l *leader) IsLeader() bool { return l.yes.Load() }

func TestOnlyTheLeaderPublishes(t *testing.T) {
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	l := &leader{}
	p, err := New(Config{EndpointName: "fraud-detector", Interval: time.Hour},
		Deps{Client: rec, Snapshots: oneVariant(), Leader: l, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	runPublisher(t, p)
	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := value(t, reg, "verdict_cloudwatch_flushes_total", "result", "skipped_not_leader"); got != 1 {
		t.Errorf("skipped_not_leader = %v, want 1", got)
	}
	l.yes.Store(true)
	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the leader's flush", func() bool {
		return value(t, reg, "verdict_cloudwatch_flushes_total", "result", "delivered") == 1
	})
	if got := value(t, reg, "verdict_cloudwatch_requests_total"); got != 1 {
		t.Errorf("requests_total = %v, want 1: the follower's flush must not be sent", got)
	}
	if ts := value(t, reg, "verdict_cloudwatch_last_success_timestamp_seconds"); ts == 0 {
		t.Error("last success timestamp not set")
	}
}

// failingPeriods are windows whose comparison periods cannot be read, so judging
// a pair over its period fails.
type failingPeriods struct {
	*window.Windows
	err error
}

func (f failingPeriods) FirstSeen(string) (time.Time, bool)        { return time.Unix(0, 0), true }
func (f failingPeriods) Period(time.Time) (window.Snapshot, error) { return window.Snapshot{}, f.err }

func TestJudgeFailureStillPublishesTheVariants(t *testing.T) {
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	boom := errors.New("boom")
	p, err := New(Config{EndpointName: "fraud-detector", Interval: time.Hour,
		Pairs: []judge.Pair{{Baseline: "fraud-v4", Candidate: "fraud-v5"}}},
		Deps{Client: rec, Snapshots: failingPeriods{oneVariant(), boom}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("Flush = %v, want the judge's error", err)
	}
	ds := deliverQueued(t, p, rec)
	if _, ok := find(ds, cwmetric.Recall, dims("EndpointName=fraud-detector", "VariantName=fraud-v5")); !ok {
		t.Error("per-variant Recall not published")
	}
	if _, ok := find(ds, cwmetric.SegmentRegressions, dims("EndpointName=fraud-detector", "VariantName=fraud-v5", "BaselineVariant=fraud-v4")); ok {
		t.Error("SegmentRegressions published without a judgement")
	}
	if got := value(t, reg, "verdict_cloudwatch_errors_total", "reason", ReasonJudge); got != 1 {
		t.Errorf("judge errors = %v, want 1", got)
	}
}

func TestNewRejectsMissingDependencies(t *testing.T) {
	cfg := Config{EndpointName: "fraud-detector"}
	for name, deps := range map[string]Deps{
		"no client":    {Snapshots: oneVariant()},
		"no snapshots": {Client: &recorder{}},
	} {
		if _, err := New(cfg, deps); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestQueueDropsTheOldestFlush(t *testing.T) {
	tests := []struct {
		name        string
		size        int
		pushes      int
		wantDropped int
		wantFirst   int // index of the first flush popped
	}{
		{"below capacity keeps all", 3, 2, 0, 0},
		{"at capacity keeps all", 3, 3, 0, 0},
		{"over capacity drops the oldest", 3, 5, 2, 2},
		{"size one keeps the newest", 1, 4, 3, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue(tc.size)
			base := time.Unix(0, 0)
			dropped := 0
			for i := range tc.pushes {
				dropped += q.push(flush{at: base.Add(time.Duration(i) * time.Second)})
			}
			if dropped != tc.wantDropped {
				t.Errorf("dropped %d, want %d", dropped, tc.wantDropped)
			}
			for i := tc.wantFirst; i < tc.pushes; i++ {
				f, ok := q.pop(t.Context())
				if !ok || !f.at.Equal(base.Add(time.Duration(i)*time.Second)) {
					t.Fatalf("pop = %v %v, want flush %d", f.at, ok, i)
				}
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if _, ok := q.pop(ctx); ok {
				t.Error("pop on an empty queue with a done context returned a flush")
			}
		})
	}
}

func TestClassifyFailures(t *testing.T) {
	resp := func(status int, code string) error {
		return &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      &smithy.GenericAPIError{Code: code, Message: "x"},
		}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"send timeout", fmt.Errorf("put: %w", context.DeadlineExceeded), ReasonTimeout},
		{"shutdown", fmt.Errorf("put: %w", context.Canceled), ReasonCanceled},
		{"throttling", resp(400, "Throttling"), ReasonThrottled},
		{"invalid parameter", resp(400, "InvalidParameterValue"), ReasonRejected},
		{"service fault", resp(500, "InternalServiceFault"), ReasonServer},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, ReasonNetwork},
		{"retry quota", fmt.Errorf("retry: %w", &ratelimit.QuotaExceededError{Available: 0, Requested: 5}), ReasonRetryQuota},
		{"anything else", errors.New("?"), ReasonOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Errorf("classify(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
