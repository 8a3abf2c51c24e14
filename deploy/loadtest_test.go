package deploy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/verdictml/verdict/internal/golden"
	"github.com/verdictml/verdict/internal/wirejson"
)

// withSLO loads testdata/rollout.yaml with an slo section appended.
func withSLO(t *testing.T, slo string) (*Rollout, error) {
	t.Helper()
	b, err := os.ReadFile("testdata/rollout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"alarms.yaml"} {
		a, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), a, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "rollout.yaml")
	if err := os.WriteFile(path, append(b, []byte("\n"+slo+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	return LoadRollout(path)
}

func TestSLOIsReadAndValidated(t *testing.T) {
	r, err := withSLO(t, "slo: {p99_ms: 40, rate: 800, max_error_rate: 0.001}")
	if err != nil {
		t.Fatal(err)
	}
	if r.SLO == nil || r.SLO.P99() != 40*time.Millisecond || r.SLO.Rate != 800 || r.SLO.MaxErrorRate != 0.001 {
		t.Fatalf("slo = %+v", r.SLO)
	}
	cases := []struct{ slo, want string }{
		{"slo: {p99_ms: 0, rate: 800}", "slo.p99_ms: 0 must be in (0, 60000]"},
		{"slo: {p99_ms: 61000, rate: 800}", "slo.p99_ms: 61000 must be in (0, 60000] (InvokeEndpoint times out after 60 s)"},
		{"slo: {p99_ms: 40}", "slo.rate: 0 must be a positive number"},
		{"slo: {p99_ms: 40, rate: -1}", "slo.rate: -1"},
		{"slo: {p99_ms: 40, rate: 800, max_error_rate: 1}", "slo.max_error_rate: 1 must be in [0, 1)"},
		{"slo: {p99: 40, rate: 800}", "field p99 not found"},
	}
	for _, tc := range cases {
		if _, err := withSLO(t, tc.slo); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to contain %q", tc.slo, err, tc.want)
		}
	}
}

func fraudJob() RecommendationJob {
	return RecommendationJob{
		RoleArn:          "arn:aws:iam::123456789012:role/verdict-inference-recommender",
		SamplePayloadURL: "s3://fraud-ml-capture/load-test/payloads.tar.gz",
		ContentType:      "text/csv",
	}
}

// The team's SLO: 800/s at p99 < 40 ms on 4 instances is 200/s per instance, which
// takes 8 closed-loop users at 40 ms: 3 to start, 3 more a minute over the 2-minute
// minimum phase; MaxInvocations 200 × 60 = 12000 a minute.
func TestRecommendationJobRequestGoldenWire(t *testing.T) {
	r, err := withSLO(t, "slo: {p99_ms: 40, rate: 800}")
	if err != nil {
		t.Fatal(err)
	}
	in, err := r.RecommendationJobRequest(fraudJob())
	if err != nil {
		t.Fatal(err)
	}
	wire, err := WireRequest(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "recommendation_job.json", wire)
	// The wire body is the input, unset members left out.
	var got any
	if err := json.Unmarshal(wire, &got); err != nil {
		t.Fatal(err)
	}
	if want := wirejson.Of(in); !reflect.DeepEqual(got, want) {
		t.Errorf("wire body %v\nwant %v", got, want)
	}
	p := in.InputConfig.TrafficPattern.Phases[0]
	if *p.InitialNumberOfUsers != 3 || *p.SpawnRate != 3 || *p.DurationInSeconds != 120 || *in.StoppingConditions.MaxInvocations != 12000 {
		t.Errorf("phase %+v, MaxInvocations %d", p, *in.StoppingConditions.MaxInvocations)
	}
}

func TestRecommendationJobRequestEnforcesTheAPILimits(t *testing.T) {
	cases := []struct {
		name string
		slo  string
		edit func(r *Rollout, j *RecommendationJob)
		want string
	}{
		{"the example is valid", "", nil, ""},
		{"a model package needs no payload URL", "", func(_ *Rollout, j *RecommendationJob) {
			j.SamplePayloadURL, j.ModelPackageArn = "", "arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud/5"
		}, ""},
		{"no slo", "-", nil, "slo: the rollout spec has no slo section"},
		{"a rate beyond one phase's users", "slo: {p99_ms: 40, rate: 80000}", nil,
			"slo.rate: 80000/s on 4 instance(s) at p99 40 ms needs 800 concurrent users per instance; one Inference Recommender phase reaches at most 183"},
		{"job name too long", "", func(_ *Rollout, j *RecommendationJob) { j.JobName = strings.Repeat("a", 65) }, "job name"},
		{"job name with underscores", "", func(_ *Rollout, j *RecommendationJob) { j.JobName = "fraud_v5" }, `job name: "fraud_v5"`},
		{"role that is not a role ARN", "", func(_ *Rollout, j *RecommendationJob) { j.RoleArn = "verdict" }, `role ARN: "verdict" must be an IAM role ARN`},
		{"job over 18000 s", "", func(_ *Rollout, j *RecommendationJob) { j.JobDuration = 5*time.Hour + time.Second }, "JobDurationInSeconds <= 18000"},
		{"job shorter than its phase", "", func(_ *Rollout, j *RecommendationJob) { j.JobDuration = time.Minute }, "at least the traffic phase (2m0s)"},
		{"model by name without payloads", "", func(_ *Rollout, j *RecommendationJob) { j.SamplePayloadURL = "" }, "sample payload URL: required"},
		{"payloads not a tar.gz", "", func(_ *Rollout, j *RecommendationJob) { j.SamplePayloadURL = "s3://b/p.jsonl" }, "gzip-compressed tar archive"},
		{"bad model package ARN", "", func(_ *Rollout, j *RecommendationJob) { j.ModelPackageArn = "fraud-v5" }, "model package ARN"},
		{"instance type Inference Recommender does not take", "", func(r *Rollout, _ *RecommendationJob) { r.Candidate.InstanceType = "ml.c99.huge" }, `candidate.instance_type: "ml.c99.huge"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			slo := tc.slo
			if slo == "" {
				slo = "slo: {p99_ms: 40, rate: 800}"
			}
			if slo == "-" {
				slo = ""
			}
			r, err := withSLO(t, slo)
			if err != nil {
				t.Fatal(err)
			}
			j := fraudJob()
			if tc.edit != nil {
				tc.edit(r, &j)
			}
			in, err := r.RecommendationJobRequest(j)
			if err == nil {
				_, err = WireRequest(context.Background(), in) // the SDK's validation
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestWireRequestRunsTheSDKValidation(t *testing.T) {
	_, err := WireRequest(context.Background(), &sagemaker.CreateInferenceRecommendationsJobInput{})
	if err == nil || !strings.Contains(err.Error(), "RoleArn") || !strings.Contains(err.Error(), "InputConfig") {
		t.Fatalf("err = %v, want the SDK's missing-member errors", err)
	}
}
