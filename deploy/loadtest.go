package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// SLO is the candidate's service level under load, checked before the shift by
// `verdict loadtest` and, for teams that prefer the managed job, by an Inference
// Recommender load test (RecommendationJob).
type SLO struct {
	// P99MS bounds the 99th percentile latency in milliseconds, measured from each
	// request's intended send time.
	P99MS float64 `yaml:"p99_ms"`
	// Rate is the inferences per second the whole endpoint must sustain.
	Rate float64 `yaml:"rate"`
	// MaxErrorRate is the largest share of failed requests allowed; default 0.
	MaxErrorRate float64 `yaml:"max_error_rate"`
}

// maxInvocationMS is InvokeEndpoint's timeout for real-time endpoints (60 s): a p99
// bound above it cannot be observed.
const maxInvocationMS = 60_000

// validate reports what makes the SLO unusable, each problem naming its field.
func (s *SLO) validate() []error {
	if s == nil {
		return nil
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("slo.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if math.IsNaN(s.P99MS) || s.P99MS <= 0 || s.P99MS > maxInvocationMS {
		bad("p99_ms", "%v must be in (0, %d] (InvokeEndpoint times out after 60 s)", s.P99MS, maxInvocationMS)
	}
	if math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) || s.Rate <= 0 {
		bad("rate", "%v must be a positive number of inferences per second", s.Rate)
	}
	if math.IsNaN(s.MaxErrorRate) || s.MaxErrorRate < 0 || s.MaxErrorRate >= 1 {
		bad("max_error_rate", "%v must be in [0, 1)", s.MaxErrorRate)
	}
	return errs
}

// P99 is the latency bound as a duration.
func (s SLO) P99() time.Duration { return time.Duration(s.P99MS * float64(time.Millisecond)) }

// RecommendationJob says what the Inference Recommender load test needs besides the
// rollout spec.
type RecommendationJob struct {
	// JobName defaults to the candidate's endpoint config name with "-load-test".
	JobName string
	// RoleArn is the IAM role Inference Recommender runs as. Required.
	RoleArn string
	// ModelPackageArn, when set, is tested instead of the candidate model by name.
	ModelPackageArn string
	// SamplePayloadURL is an S3 .tar.gz of sample payloads; required when testing
	// the model by name (a model package carries its own). ContentType is theirs.
	SamplePayloadURL string
	ContentType      string
	// JobDuration bounds the job; default the ramp phase plus 30 minutes for the
	// endpoint to come up.
	JobDuration time.Duration
}

// Limits of CreateInferenceRecommendationsJob (SageMaker API reference and service
// model: RecommendationJobName, RoleArn, RecommendationJobInputConfig, Phase,
// RecommendationJobStoppingConditions, ModelLatencyThreshold; and the developer guide's
// custom load test page).
const (
	maxJobDuration   = 18000 * time.Second // JobDurationInSeconds: "The maximum value is 18,000 seconds"
	minPhaseDuration = 120 * time.Second   // Phase.DurationInSeconds: 120-3600 for custom load tests
	maxPhaseDuration = 3600 * time.Second
	maxInitialUsers  = 3 // Phase.InitialNumberOfUsers: 1-3
	maxSpawnRate     = 3 // Phase.SpawnRate: new users per minute, 0-3 (developer guide)
	maxJobNameLength = 64
	// ModelLatencyThreshold.Percentile: P95 or P99, and "for custom load tests,
	// specify the value as P95".
	advancedJobPercentile = "P95"
)

var (
	recommendationJobNameRE = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,63}$`)
	roleArnRE               = regexp.MustCompile(`^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$`)
	modelPackageArnRE       = regexp.MustCompile(`^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]{9,16}:[0-9]{12}:model-package/\S+$`) // and at most 2048 characters in all
	s3URIRE                 = regexp.MustCompile(`^(https|s3)://([^/]+)/?(.*)$`)
)

// RecommendationJobRequest builds the CreateInferenceRecommendationsJob request of an
// Advanced (load test) job for the candidate from the rollout spec: its model (or
// model package) on one instance of its instance type, a traffic phase that ramps to
// the users the SLO needs, stopping at the SLO's rate per instance or when latency
// crosses the bound. Errors name the spec field or option at fault and the limit.
//
// Inference Recommender drives closed-loop "users" (each sends its next request when
// the previous answers) on a single instance, not a rate: by Little's law a rate R at
// latency L needs R×L concurrent users, so the phase ramps to
// ceil(rate / candidate.instance_count × p99) users, the most the SLO's rate needs at
// its latency bound; MaxInvocations (per minute, per instance) stops the job once
// that rate is reached. Its latency stop takes P95 only, set to the p99 bound: a p95
// over the bound proves the p99 SLO failed, but a job that stays under it shows
// nothing about p99 — verdict loadtest judges p99.
func (r *Rollout) RecommendationJobRequest(j RecommendationJob) (*sagemaker.CreateInferenceRecommendationsJobInput, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if r.SLO == nil {
		return nil, errors.New("slo: the rollout spec has no slo section (p99_ms, rate): nothing to load-test against")
	}
	name := j.JobName
	if name == "" {
		name = r.Candidate.EndpointConfig + "-load-test"
	}
	if len(name) > maxJobNameLength || !recommendationJobNameRE.MatchString(name) {
		bad("job name", "%q must be 1-%d letters, digits and hyphens, starting and ending with a letter or digit", name, maxJobNameLength)
	}
	if len(j.RoleArn) < 20 || len(j.RoleArn) > 2048 || !roleArnRE.MatchString(j.RoleArn) {
		bad("role ARN", "%q must be an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", j.RoleArn)
	}
	input := &types.RecommendationJobInputConfig{}
	if j.ModelPackageArn != "" {
		if len(j.ModelPackageArn) > 2048 || !modelPackageArnRE.MatchString(j.ModelPackageArn) {
			bad("model package ARN", "%q must be a versioned model package ARN (arn:aws:sagemaker:REGION:ACCOUNT:model-package/NAME/VERSION)", j.ModelPackageArn)
		}
		input.ModelPackageVersionArn = aws.String(j.ModelPackageArn)
	} else {
		input.ModelName = aws.String(r.Candidate.Model)
		if j.SamplePayloadURL == "" {
			bad("sample payload URL", "required when testing candidate.model %q by name: an S3 .tar.gz of sample payloads", r.Candidate.Model)
		}
	}
	if j.SamplePayloadURL != "" {
		if !s3URIRE.MatchString(j.SamplePayloadURL) || len(j.SamplePayloadURL) > 1024 || !strings.HasSuffix(j.SamplePayloadURL, ".tar.gz") {
			bad("sample payload URL", "%q must be an s3:// URI of one gzip-compressed tar archive (.tar.gz), at most 1024 characters", j.SamplePayloadURL)
		}
		pc := &types.RecommendationJobPayloadConfig{SamplePayloadUrl: aws.String(j.SamplePayloadURL)}
		if j.ContentType != "" {
			pc.SupportedContentTypes = []string{j.ContentType}
		}
		input.ContainerConfig = &types.RecommendationJobContainerConfig{PayloadConfig: pc}
	}
	instanceType := types.ProductionVariantInstanceType(r.Candidate.InstanceType)
	if !slices.Contains(instanceType.Values(), instanceType) {
		bad("candidate.instance_type", "%q is not an instance type Inference Recommender endpoints take", r.Candidate.InstanceType)
	}

	// The load per instance and the users it takes at the latency bound.
	perInstance := r.SLO.Rate / float64(r.Candidate.InstanceCount)
	users := int(math.Ceil(perInstance * r.SLO.P99MS / 1000))
	initial := min(max(users, 1), maxInitialUsers)
	rampMinutes := int(math.Ceil(float64(users-initial) / maxSpawnRate))
	phase := time.Duration(max(rampMinutes, 1)) * time.Minute
	phase = max(phase, minPhaseDuration)
	spawn := 0
	if users > initial {
		spawn = int(math.Ceil(float64(users-initial) / phase.Minutes()))
	}
	if phase > maxPhaseDuration {
		bad("slo.rate", "%v/s on %d instance(s) at p99 %v ms needs %d concurrent users per instance; one Inference Recommender phase reaches at most %d (%d initial + %d a minute for %s)",
			r.SLO.Rate, r.Candidate.InstanceCount, r.SLO.P99MS, users, maxInitialUsers+maxSpawnRate*int(maxPhaseDuration.Minutes()), maxInitialUsers, maxSpawnRate, maxPhaseDuration)
	}
	duration := j.JobDuration
	if duration == 0 {
		duration = phase + 30*time.Minute
	}
	switch {
	case duration%time.Second != 0 || duration < phase || duration > maxJobDuration:
		bad("job duration", "%s must be whole seconds, at least the traffic phase (%s) and at most %s (JobDurationInSeconds <= 18000)", duration, phase, maxJobDuration)
	}
	maxInvocations := int(math.Ceil(perInstance * 60))
	if maxInvocations > math.MaxInt32 || r.SLO.P99MS > math.MaxInt32 {
		bad("slo", "rate and p99_ms must fit the API's 32-bit integers")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	input.JobDurationInSeconds = aws.Int32(int32(duration / time.Second))
	input.EndpointConfigurations = []types.EndpointInputConfiguration{{InstanceType: instanceType}}
	input.ResourceLimit = &types.RecommendationJobResourceLimit{MaxNumberOfTests: aws.Int32(1), MaxParallelOfTests: aws.Int32(1)}
	input.TrafficPattern = &types.TrafficPattern{
		TrafficType: types.TrafficTypePhases,
		Phases: []types.Phase{{
			InitialNumberOfUsers: aws.Int32(int32(initial)),
			SpawnRate:            aws.Int32(int32(spawn)),
			DurationInSeconds:    aws.Int32(int32(phase / time.Second)),
		}},
	}
	in := &sagemaker.CreateInferenceRecommendationsJobInput{
		JobName:        aws.String(name),
		JobType:        types.RecommendationJobTypeAdvanced,
		RoleArn:        aws.String(j.RoleArn),
		JobDescription: aws.String(clip(fmt.Sprintf("verdict: %s on %s, p99 <= %v ms at %v/s", r.Candidate.Model, r.Endpoint, r.SLO.P99MS, r.SLO.Rate), 128)),
		InputConfig:    input,
		StoppingConditions: &types.RecommendationJobStoppingConditions{
			MaxInvocations: aws.Int32(int32(maxInvocations)),
			ModelLatencyThresholds: []types.ModelLatencyThreshold{{
				Percentile:          aws.String(advancedJobPercentile),
				ValueInMilliseconds: aws.Int32(int32(math.Ceil(r.SLO.P99MS))),
			}},
		},
		Tags: r.tags(),
	}
	return in, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// WireRequest returns the JSON body the SageMaker SDK sends for in, after the SDK's
// own validation of required members: the request runs through a real client whose
// HTTP client keeps the body and sends nothing. The body is what
// `aws sagemaker create-inference-recommendations-job --cli-input-json` takes.
func WireRequest(ctx context.Context, in *sagemaker.CreateInferenceRecommendationsJobInput) ([]byte, error) {
	keep := &keepBody{}
	client := sagemaker.New(sagemaker.Options{
		Region:      "us-east-1", // any region: nothing is sent
		Credentials: aws.AnonymousCredentials{},
		HTTPClient:  keep,
		Retryer:     aws.NopRetryer{},
	})
	if _, err := client.CreateInferenceRecommendationsJob(ctx, in); err != nil && keep.body == nil {
		return nil, fmt.Errorf("CreateInferenceRecommendationsJob: %w", err)
	}
	var v any
	if err := json.Unmarshal(keep.body, &v); err != nil {
		return nil, fmt.Errorf("CreateInferenceRecommendationsJob: the SDK's body is not JSON: %w", err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// keepBody is an HTTP client that keeps the request body and answers 200 {}.
type keepBody struct{ body []byte }

func (k *keepBody) Do(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	k.body = b
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body: io.NopCloser(bytes.NewReader([]byte(`{"JobArn":"arn:aws:sagemaker:us-east-1:000000000000:inference-recommendations-job/x"}`))), Request: req,
	}, nil
}
