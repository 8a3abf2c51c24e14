package cloudwatch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/internal/golden"
	"github.com/verdictml/verdict/judge"
)

func wireClient(url string) *cloudwatch.Client {
	return cloudwatch.New(cloudwatch.Options{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	}, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(url) })
}

// runPublisher runs p until the test ends.
func runPublisher(t *testing.T, p *Publisher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// flushOverWire runs a publisher of cfg and deps, sending to a wireRecorder and
// registering its health metrics in reg, flushes once and returns the one request
// the flush sent.
func flushOverWire(t *testing.T, reg *prometheus.Registry, cfg Config, deps Deps) wireRequest {
	t.Helper()
	rec := &wireRecorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	deps.Client, deps.Registerer = wireClient(srv.URL), reg
	p, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	runPublisher(t, p)
	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the flush to be delivered", func() bool {
		return value(t, reg, "verdict_cloudwatch_flushes_total", "result", "delivered") == 1
	})
	reqs := rec.all()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	return reqs[0]
}

// The exact PutMetricData request verdict sends, decoded from the wire (kumo cannot
// take timestamps, so this is where they are checked): namespace, metric names,
// dimensions in contract order, values, units, the flush timestamp, StorageResolution.
func TestPutMetricDataWireRequestMatchesGolden(t *testing.T) {
	flushAt := time.Date(2026, 3, 1, 9, 0, 0, 250e6, time.UTC)
	w := windowsOf(
		series{variant: "fraud-v4", counts: counts(800, 200, 200, 18800)},
		series{variant: "fraud-v5", counts: counts(700, 200, 300, 18800)},
		series{variant: "fraud-v4", segmentKey: "merchant_category", segment: "travel", counts: counts(400, 100, 100, 9400)},
		series{variant: "fraud-v5", segmentKey: "merchant_category", segment: "travel", counts: counts(300, 100, 200, 9400)},
		series{variant: "fraud-v4", segmentKey: "merchant_category", segment: "grocery", counts: counts(40, 10, 10, 940)},
		series{variant: "fraud-v5", segmentKey: "merchant_category", segment: "grocery", counts: counts(40, 10, 10, 940)},
	)
	reg := prometheus.NewRegistry()
	r := flushOverWire(t, reg, Config{
		EndpointName: "fraud-detector",
		Pairs:        []judge.Pair{{Baseline: "fraud-v4", Candidate: "fraud-v5"}},
		TopSegments:  map[string]int{"merchant_category": 1},
		Interval:     time.Hour, // flushes only when the test asks
	}, Deps{Snapshots: endAt{w, flushAt}})
	if r.Path != "/service/GraniteServiceVersion20100801/operation/PutMetricData" {
		t.Errorf("path %q", r.Path)
	}
	if r.Headers["Smithy-Protocol"] != "rpc-v2-cbor" || r.Headers["Content-Type"] != "application/cbor" {
		t.Errorf("headers %v, want rpc-v2-cbor / application/cbor", r.Headers)
	}
	body := r.Body.(map[string]any)
	for i, d := range body["MetricData"].([]any) {
		d := d.(map[string]any)
		if d["Timestamp"] != "2026-03-01T09:00:00.25Z" || d["StorageResolution"] != 60.0 {
			t.Errorf("datum %d: Timestamp %v StorageResolution %v, want the flush time and 60", i, d["Timestamp"], d["StorageResolution"])
		}
	}
	if got := value(t, reg, "verdict_cloudwatch_datums_total"); got != float64(len(body["MetricData"].([]any))) {
		t.Errorf("datums_total %v, wire has %d", got, len(body["MetricData"].([]any)))
	}
	golden.Check(t, "put_metric_data_wire.json", datumLines(t, body))
}

// datumLines renders a decoded request body as JSON with one datum per line, so a
// golden diff shows which datum changed.
func datumLines(t *testing.T, body map[string]any) []byte {
	t.Helper()
	var b bytes.Buffer
	rest := maps.Clone(body)
	delete(rest, "MetricData")
	head, err := json.Marshal(rest)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "{%s,\n\"MetricData\": [\n", bytes.Trim(head, "{}"))
	ds := body["MetricData"].([]any)
	for i, d := range ds {
		line, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		if i < len(ds)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]}\n")
	return b.Bytes()
}
