package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeSageMaker answers DescribeEndpoint with a fixed endpoint and records
// every other call's target and decoded body.
type fakeSageMaker struct {
	describe string
	mu       sync.Mutex
	calls    []string
	bodies   []map[string]any
}

func (f *fakeSageMaker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "SageMaker.")
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	f.mu.Lock()
	f.calls = append(f.calls, target)
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if target == "DescribeEndpoint" {
		_, _ = io.WriteString(w, f.describe)
		return
	}
	_, _ = io.WriteString(w, "{}")
}

func (f *fakeSageMaker) sent(target string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for i, c := range f.calls {
		if c == target {
			out = append(out, f.bodies[i])
		}
	}
	return out
}

func fakeAWSEnv(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
}

const abEndpoint = `{"EndpointName":"fraud-ab","EndpointStatus":"InService","EndpointConfigName":"fraud-ab-v4-v5",
 "ProductionVariants":[{"VariantName":"v4","CurrentWeight":0.9},{"VariantName":"v5","CurrentWeight":0.1}]}`

func TestDeployWeights(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		describe   string
		wantErr    string
		wantOut    []string
		wantUpdate bool
	}{
		{
			name:       "moves the split named by the spec and prints before and after",
			args:       []string{"-spec", "../../deploy/testdata/split.yaml", "-set", "v4=0.5,v5=0.5"},
			describe:   abEndpoint,
			wantOut:    []string{"split of fraud-ab (before -> after)", "v4                   weight 0.9       90%  ->  weight 0.5       50%", "v5                   weight 0.1       10%  ->  weight 0.5       50%"},
			wantUpdate: true,
		},
		{
			name:       "an endpoint without a spec is checked against its live variants",
			args:       []string{"-endpoint", "fraud-ab", "-set", "v5=0.3"},
			describe:   abEndpoint,
			wantOut:    []string{"v5                   weight 0.1       10%  ->  weight 0.3       25%"},
			wantUpdate: true,
		},
		{
			name:     "a variant the split spec lacks is refused before anything is sent",
			args:     []string{"-spec", "../../deploy/testdata/split.yaml", "-set", "AllTraffic=1"},
			describe: abEndpoint,
			wantErr:  `variant "AllTraffic" is not in split spec fraud-ab-v4-v5 (variants v4, v5)`,
		},
		{
			name:     "a variant the endpoint lacks is refused",
			args:     []string{"-endpoint", "fraud-ab", "-set", "v6=1"},
			describe: abEndpoint,
			wantErr:  `variant "v6" is not in endpoint fraud-ab`,
		},
		{
			name:     "an endpoint not yet on the split's config is refused",
			args:     []string{"-spec", "../../deploy/testdata/split.yaml", "-set", "v4=0.5"},
			describe: `{"EndpointName":"fraud-ab","EndpointStatus":"InService","EndpointConfigName":"fraud-ab-v4","ProductionVariants":[{"VariantName":"v4","CurrentWeight":1}]}`,
			wantErr:  "endpoint fraud-ab is on fraud-ab-v4, not the split spec's fraud-ab-v4-v5",
		},
		{
			name:     "draining every variant is refused",
			args:     []string{"-endpoint", "fraud-ab", "-set", "v4=0,v5=0"},
			describe: abEndpoint,
			wantErr:  "at least one variant must have a positive weight",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fakeAWSEnv(t)
			fake := &fakeSageMaker{describe: tc.describe}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			var out bytes.Buffer
			args := append([]string{"weights", "-endpoint-url", srv.URL}, tc.args...)
			err := runDeploy(context.Background(), args, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("err = %v\n%s", err, out.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			updates := fake.sent("UpdateEndpointWeightsAndCapacities")
			if got := len(updates) > 0; got != tc.wantUpdate {
				t.Fatalf("UpdateEndpointWeightsAndCapacities sent = %v, want %v (calls %v)", got, tc.wantUpdate, fake.calls)
			}
		})
	}
}

func TestDeployApplySplitSendsTheWeightedConfig(t *testing.T) {
	fakeAWSEnv(t)
	fake := &fakeSageMaker{describe: abEndpoint}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var out bytes.Buffer
	err := runDeploy(context.Background(), []string{"apply", "-endpoint-url", srv.URL, "-spec", "../../deploy/testdata/split.yaml", "-watch", "-interval", "1ms"}, &out)
	if err != nil {
		t.Fatalf("err = %v\n%s", err, out.String())
	}
	cfgs := fake.sent("CreateEndpointConfig")
	if len(cfgs) != 1 || len(cfgs[0]["ProductionVariants"].([]any)) != 2 {
		t.Fatalf("CreateEndpointConfig = %v", cfgs)
	}
	if ups := fake.sent("UpdateEndpoint"); len(ups) != 1 || ups[0]["EndpointConfigName"] != "fraud-ab-v4-v5" || ups[0]["DeploymentConfig"] != nil {
		t.Fatalf("UpdateEndpoint = %v", ups)
	}
	if !strings.Contains(out.String(), "updated: fraud-ab is InService on fraud-ab-v4-v5") {
		t.Errorf("output:\n%s", out.String())
	}
}

// deploy plan and apply print the rollout's warnings: a rollout that does not say how
// verdict tells the fleets of the shift apart, and a step that rounds to whole
// instances. apply sends the requests all the same (a warning is not an error).
func TestDeployWarnsWhenTheAlarmsCannotTellTheFleetsApart(t *testing.T) {
	dir := t.TempDir()
	spec := strings.NewReplacer(
		"fleet_identity: model-output", "",
		"step: {instance_count: 1}", "step: {capacity_percent: 30}",
	).Replace(string(must(os.ReadFile("../../deploy/testdata/rollout.yaml"))))
	if err := os.WriteFile(filepath.Join(dir, "rollout.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alarms.yaml"), must(os.ReadFile("../../deploy/testdata/alarms.yaml")), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runDeploy(context.Background(), []string{"plan", "-spec", filepath.Join(dir, "rollout.yaml"), "-start", "09:00"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"warning: fleet_identity: not set, and verdict-fraud-v5-precision-floor",
		"warning: traffic.step: 30% of 4 instances is 1.2 instances",
		"09:00  step 1: 1 of 4 instances, 25% of traffic on the new fleet",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan output lacks %q:\n%s", want, out.String())
		}
	}
	fake := &fakeSageMaker{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	fakeAWSEnv(t)
	out.Reset()
	if err := runDeploy(context.Background(), []string{"apply", "-spec", filepath.Join(dir, "rollout.yaml"), "-stage", "shadow", "-endpoint-url", srv.URL}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "warning: fleet_identity: not set") || len(fake.sent("UpdateEndpoint")) != 1 {
		t.Errorf("apply: output %q, %d UpdateEndpoint calls; want the warning and the update", out.String(), len(fake.sent("UpdateEndpoint")))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
