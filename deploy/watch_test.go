package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/verdictml/verdict/internal/golden"
)

// describeEndpointServer plays a recorded sequence of DescribeEndpoint
// responses, one per call, repeating the last.
type describeEndpointServer struct {
	mu        sync.Mutex
	responses []json.RawMessage
	calls     int
}

func (s *describeEndpointServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if got := r.Header.Get("X-Amz-Target"); got != "SageMaker.DescribeEndpoint" {
		http.Error(w, "unexpected operation "+got, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	i := min(s.calls, len(s.responses)-1)
	s.calls++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_, _ = w.Write(s.responses[i])
}

// alarmsInState is a CloudWatch that reports the given alarms in ALARM.
type alarmsInState struct{ alarm []string }

func (a alarmsInState) DescribeAlarms(_ context.Context, in *cloudwatch.DescribeAlarmsInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	out := &cloudwatch.DescribeAlarmsOutput{}
	for _, n := range in.AlarmNames {
		if slices.Contains(a.alarm, n) && in.StateValue == cwtypes.StateValueAlarm {
			out.MetricAlarms = append(out.MetricAlarms, cwtypes.MetricAlarm{AlarmName: aws.String(n), StateValue: cwtypes.StateValueAlarm})
		}
	}
	return out, nil
}

// describing is a SageMaker whose DescribeEndpoint answers responses, one per call,
// repeating the last.
func describing(t *testing.T, responses ...json.RawMessage) EndpointDescriber {
	t.Helper()
	srv := httptest.NewServer(&describeEndpointServer{responses: responses})
	t.Cleanup(srv.Close)
	return testSageMakerClient(srv.URL)
}

// endpointIn is fraud-detector in status on fraud-detector-v4, with no
// deployment in progress.
func endpointIn(status string) json.RawMessage {
	return json.RawMessage(`{"EndpointName":"fraud-detector","EndpointStatus":"` + status + `","EndpointConfigName":"fraud-detector-v4"}`)
}

// replaying is a Watcher of the DescribeEndpoint responses recorded in
// testdata/watch/<recording>.json, printing to out on a clock that starts at start
// and moves a minute a line.
func replaying(t *testing.T, recording string, start time.Time, out io.Writer) *Watcher {
	t.Helper()
	b, err := os.ReadFile("testdata/watch/" + recording + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var responses []json.RawMessage
	if err := json.Unmarshal(b, &responses); err != nil {
		t.Fatal(err)
	}
	clock := start
	return &Watcher{
		SageMaker: describing(t, responses...),
		Interval:  time.Millisecond,
		Out:       out,
		Now:       func() time.Time { clock = clock.Add(time.Minute); return clock },
	}
}

// checkTrace checks a watch's printed trace: it holds want, and it is the golden
// watch_<recording>.txt.
func checkTrace(t *testing.T, recording string, out *bytes.Buffer, want string) {
	t.Helper()
	if !strings.Contains(out.String(), want) {
		t.Errorf("trace lacks %q:\n%s", want, out.String())
	}
	golden.Check(t, "watch_"+recording+".txt", out.Bytes())
}

func TestWatchPlaysRecordedDeployments(t *testing.T) {
	cases := []struct {
		recording   string
		want        Outcome
		wantConfig  string
		wantAlarms  []string
		wantInTrace string
	}{
		{"rolled_forward", RolledForward, "fraud-detector-v5", nil, "AllTraffic weight 0.5; new fleet fraud-detector-v5: AllTraffic weight 0.5 [Baking]"},
		{"rolled_back", RolledBack, "fraud-detector-v4", []string{"verdict-fraud-v5-recall-floor"}, "RollingBack on fraud-detector-v4"},
		{"failed", Failed, "fraud-detector-v4", nil, "UpdateRollbackFailed"},
		// A rolling update: batches of one instance; instance counts move with the weights.
		{"rolling_rolled_back", RolledBack, "fraud-detector-v4", []string{"verdict-fraud-v5-recall-floor"},
			"AllTraffic weight 0.5 (3 instances); new fleet fraud-detector-v5: AllTraffic weight 0.5 (2 instances) [Baking]"},
	}
	for _, tc := range cases {
		t.Run(tc.recording, func(t *testing.T) {
			var out bytes.Buffer
			w := replaying(t, tc.recording, time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC), &out)
			w.CloudWatch = alarmsInState{alarm: []string{"verdict-fraud-v5-recall-floor"}}
			w.AlarmNames = []string{"verdict-fraud-v5-precision-floor", "verdict-fraud-v5-recall-floor"}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := w.Watch(ctx, "fraud-detector", "fraud-detector-v5")
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.want || res.Config != tc.wantConfig || !slices.Equal(res.FiredAlarms, tc.wantAlarms) {
				t.Errorf("result = %+v, want %s on %s with alarms %v", res, tc.want, tc.wantConfig, tc.wantAlarms)
			}
			checkTrace(t, tc.recording, &out, tc.wantInTrace)
		})
	}
}

func TestWatchRefusesAnEndpointWithNoDeployment(t *testing.T) {
	w := &Watcher{SageMaker: describing(t, endpointIn("InService")), Interval: time.Millisecond, Out: &bytes.Buffer{}}
	if _, err := w.Watch(context.Background(), "fraud-detector", "fraud-detector-v5"); err == nil || !strings.Contains(err.Error(), "no deployment in progress") {
		t.Fatalf("err = %v, want no deployment in progress", err)
	}
}

func TestWatchStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	w := &Watcher{SageMaker: describing(t, endpointIn("Updating")), Interval: 5 * time.Millisecond, Out: &bytes.Buffer{}}
	if _, err := w.Watch(ctx, "fraud-detector", "fraud-detector-v5"); err == nil {
		t.Fatal("watch of an endless update returned without error")
	}
}

func TestWatchUpdateFollowsTheShadowStage(t *testing.T) {
	cases := []struct {
		name        string
		recording   string
		want        Outcome
		wantConfig  string
		wantReason  string
		wantInTrace string
	}{
		{"InService on the shadow config is done", "shadow_updated", Updated, "fraud-detector-v5-shadow", "",
			"new fleet fraud-detector-v5-shadow: AllTraffic weight 0 [ActivatingTraffic] shadow shadow-v5 weight 0 [ActivatingTraffic]"},
		{"Failed carries SageMaker's reason", "shadow_failed", Failed, "fraud-detector-v4",
			"The primary container for production variant shadow-v5 did not pass the ping health check.", "failed: fraud-detector is Failed"},
		{"back InService on the old config is a failed update, not a rollback", "shadow_abandoned", Failed, "fraud-detector-v4",
			"Failed to download model data for shadow variant shadow-v5: Access Denied", "did not complete"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w := replaying(t, tc.recording, time.Date(2025, 2, 24, 9, 0, 0, 0, time.UTC), &out)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := w.WatchUpdate(ctx, "fraud-detector", "fraud-detector-v5-shadow")
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.want || res.Config != tc.wantConfig || res.Reason != tc.wantReason || res.FiredAlarms != nil {
				t.Errorf("result = %+v, want %s on %s with reason %q", res, tc.want, tc.wantConfig, tc.wantReason)
			}
			checkTrace(t, tc.recording, &out, tc.wantInTrace)
		})
	}
}

func TestWatchUpdateRefusesAnEndpointWithNoUpdate(t *testing.T) {
	w := &Watcher{SageMaker: describing(t, endpointIn("InService")), Interval: time.Millisecond, Out: &bytes.Buffer{}}
	if _, err := w.WatchUpdate(context.Background(), "fraud-detector", "fraud-detector-v5-shadow"); err == nil || !strings.Contains(err.Error(), "no deployment in progress") {
		t.Fatalf("err = %v, want no deployment in progress", err)
	}
}
