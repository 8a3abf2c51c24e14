package deploy

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
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/verdictml/verdict/internal/golden"
	"github.com/verdictml/verdict/internal/spectest"
	"github.com/verdictml/verdict/internal/wirejson"
)

// sageMakerRecorder is an httptest SageMaker endpoint (awsJson1_1): it records
// each request's target and JSON body and answers with an empty object.
type sageMakerRecorder struct {
	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	Target string
	Body   any
}

func (s *sageMakerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var body any
	if err := json.Unmarshal(b, &body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, recorded{Target: r.Header.Get("X-Amz-Target"), Body: body})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_, _ = io.WriteString(w, "{}")
}

func testSageMakerClient(url string) *sagemaker.Client {
	return sagemaker.New(sagemaker.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1,
	}, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(url) })
}

// recordingSageMaker is a SageMaker client whose requests the returned recorder
// records.
func recordingSageMaker(t *testing.T) (*sagemaker.Client, *sageMakerRecorder) {
	t.Helper()
	rec := &sageMakerRecorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return testSageMakerClient(srv.URL), rec
}

// checkRequests checks a stage's requests: printed, they are the golden file;
// applied through the SDK (which validates required members before sending), the
// wire bodies are the reviewed ones. It returns the requests on the wire.
func checkRequests(t *testing.T, file string, req *Requests) []recorded {
	t.Helper()
	var b bytes.Buffer
	if err := WriteRequests(&b, req); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, file, b.Bytes())

	sm, rec := recordingSageMaker(t)
	if err := Apply(context.Background(), sm, req); err != nil {
		t.Fatal(err)
	}
	want := []recorded{
		{"SageMaker.CreateEndpointConfig", wirejson.Of(req.CreateEndpointConfig)},
		{"SageMaker.UpdateEndpoint", wirejson.Of(req.UpdateEndpoint)},
	}
	if !reflect.DeepEqual(rec.requests, want) {
		t.Errorf("wire requests:\n%v\nwant\n%v", rec.requests, want)
	}
	return rec.requests
}

func mustWeights(t *testing.T, s string) []Weight {
	t.Helper()
	ws, err := ParseWeights(s)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// rollingRollout is the example rollout as a rolling update: batches of one
// instance, the old fleet back in halves on rollback.
func rollingRollout(t *testing.T) *Rollout {
	t.Helper()
	r := mustRollout(t)
	r.Traffic.Type, r.Traffic.Step, r.Traffic.TerminationWait = Rolling, nil, 0
	r.Traffic.Batch, r.Traffic.RollbackBatch = &Size{InstanceCount: 1}, &Size{CapacityPercent: 50}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStageRequestsGoldenAndOnTheWire(t *testing.T) {
	r := mustRollout(t)
	shadow, err := r.ShadowRequests()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		req  *Requests
	}{
		{"requests_shadow.json", shadow},
		{"requests_shift.json", r.ShiftRequests()},
		{"requests_rolling.json", rollingRollout(t).ShiftRequests()},
	} {
		t.Run(tc.file, func(t *testing.T) { checkRequests(t, tc.file, tc.req) })
	}
}

func TestShiftRequestKeepsTheProductionVariantName(t *testing.T) {
	req := mustRollout(t).ShiftRequests()
	if got := aws.ToString(req.CreateEndpointConfig.ProductionVariants[0].VariantName); got != "AllTraffic" {
		t.Errorf("new fleet variant = %q, want the production variant AllTraffic", got)
	}
	if n := len(req.UpdateEndpoint.DeploymentConfig.AutoRollbackConfiguration.Alarms); n != 7 {
		t.Errorf("rollback alarms = %d, want 7", n)
	}
}

func TestSDKValidationRejectsIncompleteUpdate(t *testing.T) {
	sm, _ := recordingSageMaker(t)
	_, err := sm.UpdateEndpoint(context.Background(), &sagemaker.UpdateEndpointInput{EndpointName: aws.String("e")})
	if err == nil || !strings.Contains(err.Error(), "EndpointConfigName") {
		t.Fatalf("err = %v, want a missing EndpointConfigName validation error", err)
	}
}

func TestTimelineGolden(t *testing.T) {
	start := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		edit func(r *Rollout)
	}{
		{"linear", func(*Rollout) {}},
		{"canary", func(r *Rollout) {
			r.Traffic.Type, r.Traffic.Step, r.Traffic.Canary = Canary, nil, &Size{InstanceCount: 1}
		}},
		{"all_at_once", func(r *Rollout) { r.Traffic.Type, r.Traffic.Step = AllAtOnce, nil }},
		{"rolling", func(r *Rollout) {
			r.Traffic.Type, r.Traffic.Step, r.Traffic.TerminationWait = Rolling, nil, 0
			r.Traffic.Batch, r.Traffic.RollbackBatch = &Size{InstanceCount: 1}, &Size{CapacityPercent: 50}
		}},
		{"linear_rounded", func(r *Rollout) { r.Traffic.Step = &Size{CapacityPercent: 30} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRollout(t)
			tc.edit(r)
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := r.WriteTimeline(&b, start); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "timeline_"+tc.name+".txt", b.Bytes())
		})
	}
}

func TestWeightsRequest(t *testing.T) {
	cases := []struct {
		name, weights, wantErr string
	}{
		{"moves an A/B split", "v4=0.8,v5=0.2", ""},
		{"zero weight drains a variant", "v4=1,v5=0", ""},
		{"negative weight", "v4=1,v5=-0.1", "v5=-0.1 must be 0 or more"},
		{"all zero", "v4=0,v5=0", "at least one variant must have a positive weight"},
		{"duplicate variant", "v4=0.5,v4=0.5", "variant \"v4\" given twice"},
		{"bad variant name", "v_4=1", "\"v_4\" is not a valid variant name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := WeightsRequest("fraud-detector", mustWeights(t, tc.weights))
			spectest.Err(t, err, tc.wantErr)
			if tc.wantErr != "" {
				return
			}
			sm, rec := recordingSageMaker(t)
			if _, err := sm.UpdateEndpointWeightsAndCapacities(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			if got := rec.requests[0].Target; got != "SageMaker.UpdateEndpointWeightsAndCapacities" {
				t.Errorf("target = %s", got)
			}
		})
	}
	if _, err := ParseWeights("v4:1"); err == nil {
		t.Error("ParseWeights accepted v4:1")
	}
}
