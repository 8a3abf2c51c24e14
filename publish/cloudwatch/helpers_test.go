package cloudwatch

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/internal/cborwire"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// counts is a series' counts: every prediction resolved, the flagged ones are
// TP + FP, scores near the extremes.
func counts(tp, fp, fn, tn int64) tally.Counts {
	c := tally.Counts{TP: tp, FP: fp, FN: fn, TN: tn, Predictions: tp + fp + fn + tn, Flagged: tp + fp}
	c.Bins[tally.ScoreBins-1] = tp + fp
	c.Bins[0] = fn + tn
	c.ScoreSum = 0.95*float64(tp+fp) + 0.05*float64(fn+tn)
	return c
}

// series is one window series' counts for a test.
type series struct {
	variant, segmentKey, segment string
	counts                       tally.Counts
}

// windowsOf builds real windows through their exported Observe API: each series
// as one delta in the current 5-minute bucket.
func windowsOf(ss ...series) *window.Windows {
	w := window.New(5*time.Minute, 24*time.Hour)
	bucket := time.Now().Unix() / 300 * 300
	var deltas []tally.Delta
	for _, s := range ss {
		deltas = append(deltas, tally.Delta{
			Key:    tally.Key{Variant: s.variant, SegmentKey: s.segmentKey, Segment: s.segment},
			Bucket: bucket, Counts: s.counts,
		})
	}
	w.Observe(deltas)
	return w
}

// endAt serves real snapshots with a fixed end time, for golden files.
type endAt struct {
	snaps Snapshots
	end   time.Time
}

func (e endAt) Snapshot(span window.Span) window.Snapshot {
	s := e.snaps.Snapshot(span)
	s.End = e.end
	return s
}

func (e endAt) Period(start time.Time) (window.Snapshot, error) {
	s, err := e.snaps.Period(start)
	s.End = e.end
	return s, err
}

func (e endAt) FirstSeen(variant string) (time.Time, bool) { return e.snaps.FirstSeen(variant) }

// oneSnapshot serves one snapshot whatever is asked.
type oneSnapshot struct{ snap window.Snapshot }

func (o oneSnapshot) Snapshot(window.Span) window.Snapshot      { return o.snap }
func (o oneSnapshot) Period(time.Time) (window.Snapshot, error) { return o.snap, nil }
func (o oneSnapshot) FirstSeen(string) (time.Time, bool)        { return time.Time{}, false }

// dims turns "Name=Value" pairs into a map.
func dims(kv ...string) map[string]string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

func dimMap(ds []types.Dimension) map[string]string {
	m := map[string]string{}
	for _, d := range ds {
		m[aws.ToString(d.Name)] = aws.ToString(d.Value)
	}
	return m
}

func sameDims(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// find returns the datum of metric with exactly the given dimensions.
func find(ds []types.MetricDatum, metric string, want map[string]string) (types.MetricDatum, bool) {
	for _, d := range ds {
		if aws.ToString(d.MetricName) == metric && sameDims(dimMap(d.Dimensions), want) {
			return d, true
		}
	}
	return types.MetricDatum{}, false
}

func approxEqual(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// recorder is an API that records every request and answers with err.
type recorder struct {
	mu  sync.Mutex
	ins []*cloudwatch.PutMetricDataInput
	err error
}

func (r *recorder) PutMetricData(_ context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ins = append(r.ins, in)
	return &cloudwatch.PutMetricDataOutput{}, r.err
}

func (r *recorder) datums() []types.MetricDatum {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []types.MetricDatum
	for _, in := range r.ins {
		out = append(out, in.MetricData...)
	}
	return out
}

// deliverQueued delivers the flush p has queued (no Run needed) and returns every
// datum rec has received.
func deliverQueued(t *testing.T, p *Publisher, rec *recorder) []types.MetricDatum {
	t.Helper()
	f, ok := p.queue.pop(t.Context())
	if !ok {
		t.Fatal("nothing queued")
	}
	p.deliver(t.Context(), f)
	return rec.datums()
}

// sentDatums is what one flush of a new publisher of cfg over snaps sends.
func sentDatums(t *testing.T, cfg Config, snaps Snapshots) []types.MetricDatum {
	t.Helper()
	rec := &recorder{}
	p, err := New(cfg, Deps{Client: rec, Snapshots: snaps})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	return deliverQueued(t, p, rec)
}

// value reads one sample of a gathered metric; labels are name, value pairs.
func value(t *testing.T, reg *prometheus.Registry, name string, lv ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(lv); i += 2 {
				if got[lv[i]] != lv[i+1] {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("metric %s%v not gathered", name, lv)
	return 0
}

// waitFor polls cond every few milliseconds for up to 10 s: a bound on a hang, not
// a performance assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wireRecorder is an httptest CloudWatch endpoint speaking Smithy RPCv2 CBOR (the
// approach of alarms/alarm_test.go): it records each request, decoded, and answers
// with an empty CBOR map.
type wireRecorder struct {
	mu       sync.Mutex
	requests []wireRequest
}

type wireRequest struct {
	Path    string
	Headers map[string]string
	Size    int // of the CBOR body, uncompressed
	Body    any
}

func (r *wireRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	size, body, err := cborwire.Body(req) // the SDK gzips PutMetricData
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.requests = append(r.requests, wireRequest{
		Path: req.URL.Path,
		Headers: map[string]string{
			"Content-Encoding": req.Header.Get("Content-Encoding"),
			"Content-Type":     req.Header.Get("Content-Type"),
			"Smithy-Protocol":  req.Header.Get("Smithy-Protocol"),
		},
		Size: size,
		Body: body,
	})
	r.mu.Unlock()
	cborwire.Reply(w)
}

func (r *wireRecorder) all() []wireRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// testLog is a logger that writes to the test's log.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}
