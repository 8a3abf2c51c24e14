package alarms

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/internal/cborwire"
	"github.com/verdictml/verdict/internal/golden"
	"github.com/verdictml/verdict/internal/wirejson"
)

// goldenSpecs are the example specs whose alarms are checked against golden files,
// with the prefix of their golden files: every alarm kind is in one of them.
var goldenSpecs = []struct{ path, prefix string }{
	{"testdata/spec.yaml", ""},
	{"testdata/shift.yaml", "shift_"},
}

func TestBuildMatchesGoldenPutMetricAlarmInputs(t *testing.T) {
	for _, gs := range goldenSpecs {
		t.Run(gs.path, func(t *testing.T) {
			alarms, err := Build(mustSpec(t, gs.path))
			if err != nil {
				t.Fatal(err)
			}
			var inputs []any
			for _, a := range alarms {
				inputs = append(inputs, wirejson.Of(a.Input()))
			}
			golden.Check(t, gs.prefix+"put_metric_alarm_inputs.json", indentJSON(t, inputs))
		})
	}
}

func TestGoldenSpecsCoverEveryKind(t *testing.T) {
	seen := map[Kind]bool{}
	for _, gs := range goldenSpecs {
		for _, k := range mustSpec(t, gs.path).kinds() {
			seen[k] = true
		}
	}
	for _, k := range Kinds() {
		if !seen[k] {
			t.Errorf("alarm kind %s is in no golden spec", k)
		}
	}
}

func TestAlarmNamesAreStableAndPrefixed(t *testing.T) {
	s := mustSpec(t, "testdata/spec.yaml")
	want := []string{
		"verdict-fraud-v5-precision-floor", "verdict-fraud-v5-recall-floor",
		"verdict-fraud-v5-precision-drop", "verdict-fraud-v5-recall-drop",
		"verdict-fraud-v5-segment-regressions", "verdict-fraud-v5-latency-p99",
		"verdict-fraud-v5-error-rate",
	}
	if got := s.AlarmNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("AlarmNames() = %v, want %v", got, want)
	}
}

func TestLatencyThresholdIsInMicroseconds(t *testing.T) {
	s := mustSpec(t, "testdata/spec.yaml")
	alarms, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alarms {
		if a.MetricName == cwmetric.ModelLatency && a.Threshold != 40000 {
			t.Errorf("ModelLatency threshold = %v, want 40000 (40 ms in microseconds)", a.Threshold)
		}
	}
}

// cloudWatchRecorder is an httptest CloudWatch endpoint speaking Smithy RPCv2
// CBOR: it records each request, decoded, and answers with an empty CBOR map.
type cloudWatchRecorder struct {
	mu       sync.Mutex
	requests []wireRequest
}

type wireRequest struct {
	Path    string
	Headers map[string]string
	Body    any
}

func (r *cloudWatchRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, body, err := cborwire.Body(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.requests = append(r.requests, wireRequest{
		Path: req.URL.Path,
		Headers: map[string]string{
			"Content-Type":    req.Header.Get("Content-Type"),
			"Smithy-Protocol": req.Header.Get("Smithy-Protocol"),
		},
		Body: body,
	})
	r.mu.Unlock()
	cborwire.Reply(w)
}

func testCloudWatchClient(url string) *cloudwatch.Client {
	return cloudwatch.New(cloudwatch.Options{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		// Never retry in tests: a failure should show at once.
		RetryMaxAttempts: 1,
	}, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(url) })
}

func TestPutMetricAlarmWireRequestsMatchInputs(t *testing.T) {
	for _, gs := range goldenSpecs {
		t.Run(gs.path, func(t *testing.T) { checkWireRequests(t, gs.path, gs.prefix) })
	}
}

func checkWireRequests(t *testing.T, path, prefix string) {
	alarms, err := Build(mustSpec(t, path))
	if err != nil {
		t.Fatal(err)
	}
	rec := &cloudWatchRecorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	client := testCloudWatchClient(srv.URL)
	for _, a := range alarms {
		// The SDK validates the input before sending; an invalid one fails here.
		if _, err := client.PutMetricAlarm(context.Background(), a.Input()); err != nil {
			t.Fatalf("PutMetricAlarm(%s): %v", a.AlarmName, err)
		}
	}
	if len(rec.requests) != len(alarms) {
		t.Fatalf("server saw %d requests, want %d", len(rec.requests), len(alarms))
	}
	var bodies []any
	for i, r := range rec.requests {
		if r.Path != "/service/GraniteServiceVersion20100801/operation/PutMetricAlarm" {
			t.Errorf("request %d path = %q", i, r.Path)
		}
		if r.Headers["Smithy-Protocol"] != "rpc-v2-cbor" || r.Headers["Content-Type"] != "application/cbor" {
			t.Errorf("request %d headers = %v, want rpc-v2-cbor / application/cbor", i, r.Headers)
		}
		if want := wirejson.Of(alarms[i].Input()); !reflect.DeepEqual(r.Body, want) {
			t.Errorf("wire request for %s differs from its input:\n wire: %s\ninput: %s",
				alarms[i].AlarmName, indentJSON(t, r.Body), indentJSON(t, want))
		}
		bodies = append(bodies, r.Body)
	}
	golden.Check(t, prefix+"put_metric_alarm_wire.json", indentJSON(t, bodies))
}

func TestSDKValidationRejectsAlarmWithoutName(t *testing.T) {
	// Guards the test above: the SDK's validator does run before sending.
	srv := httptest.NewServer(&cloudWatchRecorder{})
	defer srv.Close()
	_, err := testCloudWatchClient(srv.URL).PutMetricAlarm(context.Background(), &cloudwatch.PutMetricAlarmInput{})
	if err == nil || !strings.Contains(err.Error(), "AlarmName") {
		t.Fatalf("err = %v, want a missing AlarmName validation error", err)
	}
}

func TestExportGolden(t *testing.T) {
	s := mustSpec(t, "testdata/spec.yaml")
	alarms, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ format, file string }{
		{FormatCloudFormation, "export_cloudformation.yaml"},
		{FormatJSON, "export.json"},
	} {
		var b bytes.Buffer
		if err := Export(&b, s, alarms, tc.format); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, tc.file, b.Bytes())
	}
}

func TestExportJSONRoundTripsToTheSameInputs(t *testing.T) {
	s := mustSpec(t, "testdata/spec.yaml")
	alarms, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Export(&b, s, alarms, FormatJSON); err != nil {
		t.Fatal(err)
	}
	// The JSON export is an array; each element uses PutMetricAlarm's member names
	// and nothing else, so it decodes strictly into the SDK's input type unchanged:
	// one `aws cloudwatch put-metric-alarm --cli-input-json` input per alarm.
	var elems []json.RawMessage
	if err := json.Unmarshal(b.Bytes(), &elems); err != nil {
		t.Fatal(err)
	}
	inputs := make([]cloudwatch.PutMetricAlarmInput, len(elems))
	for i, e := range elems {
		dec := json.NewDecoder(bytes.NewReader(e))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&inputs[i]); err != nil {
			t.Fatalf("element %d is not a PutMetricAlarm input: %v", i, err)
		}
	}
	if len(inputs) != len(alarms) {
		t.Fatalf("%d elements for %d alarms", len(inputs), len(alarms))
	}
	for i := range inputs {
		if got, want := wirejson.Of(&inputs[i]), wirejson.Of(alarms[i].Input()); !reflect.DeepEqual(got, want) {
			t.Errorf("alarm %d: exported JSON %v != input %v", i, got, want)
		}
	}
}

func TestExportRejectsUnknownFormat(t *testing.T) {
	s := mustSpec(t, "testdata/spec.yaml")
	if err := Export(io.Discard, s, nil, "terraform"); err == nil {
		t.Fatal("want error for unknown format")
	}
}
