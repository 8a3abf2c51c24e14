package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/verdictml/verdict/deploy"
	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/loadtest"
)

// errSLOFailed makes `verdict loadtest` exit 1 when the candidate misses its SLO.
var errSLOFailed = errors.New("the SLO failed")

const loadtestUsage = `usage: verdict loadtest (--url URL | --endpoint NAME) (--capture FILE | --payloads FILE) [flags]

Replays captured requests against the candidate before any traffic shift, open
loop: request k is sent at its scheduled time whatever the target does with the
earlier ones, and its latency is measured from that intended time, so a slow or
stalled target cannot hide its latency (no coordinated omission). A request due
while --max-in-flight requests are outstanding is not sent: it is counted as
"dropped: concurrency cap" and fails the SLO, never silently queued.

Target: --url, a server speaking the SageMaker inference-container contract
(POST /invocations, GET /ping, checked first), or --endpoint, a SageMaker
endpoint (InvokeEndpoint, signed with the AWS environment's credentials, no
retries), optionally pinned to one production variant with --target-variant.

Requests: --capture, SageMaker Data Capture JSONL (each record's endpointInput
with its content type; production's endpointOutput for --score), or --payloads,
one payload per line of --content-type. Payloads are replayed in order, cycling.

Schedule: --rate for --duration, or --phases, e.g. 200/1m,400/1m,800/2m (steps)
or 0-800/2m,800/3m (a ramp, then a hold). Default: the SLO's rate for --duration.

Report: latency p50/p90/p99/p99.9/max per phase (HDR histogram, 0.1 % resolution),
intended vs achieved rate, errors by class (http_4xx, http_5xx, timeout,
connection, sagemaker_model_error, sagemaker_throttling, ...), the generator's own
send lag, and with --score the candidate's score divergence from production's on
identical payloads, per --segment. Progress on stderr every second.

SLO: the rollout spec's slo section (--spec), or --p99 and --slo-rate. Phases up
to the SLO's rate are judged (p99, no drops, error rate); faster phases show
headroom. Exit status 1 when the SLO fails.

With --recommendation-job FILE, writes the CreateInferenceRecommendationsJob
request (Advanced load test) built from --spec instead of running a test.

flags:
`

func runLoadtest(ctx context.Context, args []string, out io.Writer) error {
	return loadtestCmd(ctx, args, out, os.Stderr)
}

type loadtestFlags struct {
	url, endpoint, variant, endpointURL        string
	capture, payloads, contentType, accept     string
	rate                                       float64
	duration                                   time.Duration
	phases                                     string
	maxInFlight                                int
	timeout                                    time.Duration
	spec                                       string
	p99                                        time.Duration
	sloRate, maxErrorRate                      float64
	score, segment                             string
	threshold                                  float64
	format                                     string
	quiet                                      bool
	jobFile, roleArn, modelPackage, payloadURL string
	jobName                                    string
	jobDuration                                time.Duration
}

func loadtestCmd(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(out)
	var f loadtestFlags
	fs.StringVar(&f.url, "url", "", "target: base URL of a server speaking the SageMaker container contract (POST /invocations, GET /ping)")
	fs.StringVar(&f.endpoint, "endpoint", "", "target: SageMaker endpoint name (InvokeEndpoint)")
	fs.StringVar(&f.variant, "target-variant", "", "with --endpoint: send every request to this production variant (TargetVariant)")
	fs.StringVar(&f.endpointURL, "endpoint-url", "", "with --endpoint: SageMaker runtime URL; default from the AWS environment")
	fs.StringVar(&f.capture, "capture", "", "requests: SageMaker Data Capture JSONL file ('-' for stdin)")
	fs.StringVar(&f.payloads, "payloads", "", "requests: file with one payload per line ('-' for stdin)")
	fs.StringVar(&f.contentType, "content-type", "text/csv", "with --payloads: the payloads' Content-Type")
	fs.StringVar(&f.accept, "accept", "", "Accept header of every request; default the captured response's content type (none for --payloads)")
	fs.Float64Var(&f.rate, "rate", 0, "requests per second for --duration (instead of --phases); default the SLO's rate")
	fs.DurationVar(&f.duration, "duration", time.Minute, "length of the --rate phase, and of --phases entries without /DURATION")
	fs.StringVar(&f.phases, "phases", "", "schedule: comma-separated RATE/DURATION (a step) or FROM-TO/DURATION (a ramp), e.g. 200/1m,400/1m,0-800/2m")
	fs.IntVar(&f.maxInFlight, "max-in-flight", 256, "concurrency cap: a request due while this many are outstanding is dropped and counted")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "per-request timeout from its send (a timeout is an error of class timeout)")
	fs.StringVar(&f.spec, "spec", "", "rollout spec (YAML): its slo section is the SLO; required for --recommendation-job")
	fs.DurationVar(&f.p99, "p99", 0, "SLO: p99 latency bound, e.g. 40ms (overrides the spec's slo.p99_ms)")
	fs.Float64Var(&f.sloRate, "slo-rate", 0, "SLO: requests per second the target must sustain (overrides slo.rate)")
	fs.Float64Var(&f.maxErrorRate, "max-error-rate", -1, "SLO: largest share of failed requests, in [0, 1) (overrides slo.max_error_rate; default 0)")
	fs.StringVar(&f.score, "score", "", "compare scores: selector of the score in a response (as VERDICT_CAPTURE_SCORE: csv:N or json:path); needs --capture with outputs")
	fs.StringVar(&f.segment, "segment", "", "with --score: segment the comparison by an attribute of the request, name=selector (e.g. merchant_category=csv:3)")
	fs.Float64Var(&f.threshold, "threshold", 0.5, "with --score: flag threshold for both models (flagged = score >= threshold)")
	fs.StringVar(&f.format, "format", "text", "output: text or json")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress on stderr")
	fs.StringVar(&f.jobFile, "recommendation-job", "", "write the Inference Recommender load test request (JSON for aws sagemaker create-inference-recommendations-job --cli-input-json) to this file and exit")
	fs.StringVar(&f.roleArn, "role-arn", "", "with --recommendation-job: IAM role ARN Inference Recommender runs as")
	fs.StringVar(&f.modelPackage, "model-package-arn", "", "with --recommendation-job: test this versioned model package instead of candidate.model")
	fs.StringVar(&f.payloadURL, "sample-payload-url", "", "with --recommendation-job: s3:// .tar.gz of sample payloads (required for candidate.model by name)")
	fs.StringVar(&f.jobName, "job-name", "", "with --recommendation-job: job name (default candidate.endpoint_config + -load-test)")
	fs.DurationVar(&f.jobDuration, "job-duration", 0, "with --recommendation-job: JobDurationInSeconds as a duration (default the ramp + 30m)")
	fs.Usage = func() {
		fmt.Fprint(out, loadtestUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	var rollout *deploy.Rollout
	if f.spec != "" {
		r, err := deploy.LoadRollout(f.spec)
		if err != nil {
			return fmt.Errorf("--spec: %w", err)
		}
		rollout = r
	}
	if f.jobFile != "" {
		return writeRecommendationJob(ctx, out, rollout, f)
	}
	slo, err := resolveSLO(rollout, f)
	if err != nil {
		return err
	}
	phases, err := resolvePhases(f, slo)
	if err != nil {
		return err
	}
	if f.format != "text" && f.format != "json" {
		return fmt.Errorf("--format %q: want text or json", f.format)
	}
	if f.maxInFlight < 1 {
		return fmt.Errorf("--max-in-flight %d: must be at least 1", f.maxInFlight)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout %s: must be positive", f.timeout)
	}
	dec, segKey, err := comparisonDecoder(f)
	if err != nil {
		return err
	}
	payloads, err := readLoadtestPayloads(f, dec, segKey)
	if err != nil {
		return err
	}
	target, name, err := loadtestTarget(ctx, f)
	if err != nil {
		return err
	}

	cfg := loadtest.Config{Phases: phases, MaxInFlight: f.maxInFlight, Timeout: f.timeout}
	if dec != nil {
		cfg.Compare = &loadtest.Comparison{Score: dec.CaptureScore, Threshold: f.threshold}
	}
	if !f.quiet {
		cfg.Progress = func(p loadtest.Progress) {
			fmt.Fprintf(errOut, "%6.1fs  phase %d/%d  %7.1f/s intended  sent %d  done %d  in flight %d  dropped %d  errors %d  last second: %.1f/s p99 %s\n",
				p.Elapsed.Seconds(), p.Phase, p.Phases, p.IntendedRate, p.Sent, p.Completed, p.InFlight, p.Dropped, p.Errors,
				p.RecentRate, p.RecentP99.Round(10*time.Microsecond))
		}
	}
	slog.InfoContext(ctx, "load test started", "target", name, "phases", len(phases), "payloads", len(payloads),
		"max_in_flight", f.maxInFlight)
	rep, runErr := loadtest.Run(ctx, target, payloads, cfg)
	if rep == nil {
		return runErr
	}
	var v *loadtest.Verdict
	if slo != nil {
		v = rep.Judge(*slo)
	}
	if err := writeLoadtestReport(out, rep, f.format); err != nil {
		return err
	}
	switch {
	case runErr != nil:
		return fmt.Errorf("load test of %s interrupted: %w", name, runErr)
	case v != nil && !v.Pass:
		return errSLOFailed
	}
	return nil
}

func writeLoadtestReport(out io.Writer, rep *loadtest.Report, format string) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if rep.Verdict == nil {
		defer fmt.Fprintln(out, "\nno SLO (--spec with an slo section, or --p99 and --slo-rate): nothing judged")
	}
	return rep.WriteText(out)
}

// resolveSLO takes the spec's slo and overrides it with the flags; nil when neither
// gives one.
func resolveSLO(r *deploy.Rollout, f loadtestFlags) (*loadtest.SLO, error) {
	var slo *loadtest.SLO
	if r != nil && r.SLO != nil {
		slo = &loadtest.SLO{P99: r.SLO.P99(), Rate: r.SLO.Rate, MaxErrorRate: r.SLO.MaxErrorRate}
	}
	if f.p99 == 0 && f.sloRate == 0 && f.maxErrorRate < 0 {
		return slo, nil
	}
	if slo == nil {
		slo = &loadtest.SLO{}
	}
	if f.p99 != 0 {
		slo.P99 = f.p99
	}
	if f.sloRate != 0 {
		slo.Rate = f.sloRate
	}
	if f.maxErrorRate >= 0 {
		slo.MaxErrorRate = f.maxErrorRate
	}
	var errs []error
	if slo.P99 <= 0 {
		errs = append(errs, fmt.Errorf("--p99 %s: an SLO needs a positive p99 bound (or a --spec with slo.p99_ms)", slo.P99))
	}
	if slo.Rate <= 0 {
		errs = append(errs, fmt.Errorf("--slo-rate %v: an SLO needs a positive rate (or a --spec with slo.rate)", slo.Rate))
	}
	if slo.MaxErrorRate >= 1 {
		errs = append(errs, fmt.Errorf("--max-error-rate %v: must be in [0, 1)", slo.MaxErrorRate))
	}
	return slo, errors.Join(errs...)
}

func resolvePhases(f loadtestFlags, slo *loadtest.SLO) ([]loadtest.Phase, error) {
	if f.duration <= 0 {
		return nil, fmt.Errorf("--duration %s: must be positive", f.duration)
	}
	switch {
	case f.phases != "" && f.rate != 0:
		return nil, errors.New("--rate and --phases: give one schedule")
	case f.phases != "":
		ps, err := loadtest.ParsePhases(f.phases, f.duration)
		if err != nil {
			return nil, fmt.Errorf("--phases: %w", err)
		}
		return ps, nil
	}
	rate := f.rate
	if rate == 0 && slo != nil {
		rate = slo.Rate
	}
	if rate == 0 {
		return nil, errors.New("--rate or --phases is required (or an SLO, whose rate is the default)")
	}
	ps, err := loadtest.ParsePhases(fmt.Sprintf("%v/%s", rate, f.duration), f.duration)
	if err != nil {
		return nil, fmt.Errorf("--rate %v: %w", rate, err)
	}
	return ps, nil
}

// comparisonDecoder builds the decoder that reads scores (and the segment) for
// --score; nil without --score.
func comparisonDecoder(f loadtestFlags) (*ingest.Decoder, string, error) {
	if f.score == "" {
		if f.segment != "" {
			return nil, "", errors.New("--segment: needs --score (the comparison it segments)")
		}
		return nil, "", nil
	}
	if f.capture == "" {
		return nil, "", errors.New("--score: needs --capture (production's recorded responses to compare with)")
	}
	dc := ingest.DataCaptureConfig{Score: f.score}
	var key string
	if f.segment != "" {
		k, sel, ok := strings.Cut(f.segment, "=")
		if !ok || k == "" || sel == "" {
			return nil, "", fmt.Errorf("--segment %q: want name=selector, e.g. merchant_category=csv:3", f.segment)
		}
		key = k
		dc.Attributes = map[string]string{k: sel}
	}
	dec, err := ingest.NewDecoder(ingest.DecoderConfig{DataCapture: dc})
	if err != nil {
		return nil, "", fmt.Errorf("--score/--segment: %w", err)
	}
	return dec, key, nil
}

func readLoadtestPayloads(f loadtestFlags, dec *ingest.Decoder, segKey string) ([]loadtest.Payload, error) {
	if (f.capture == "") == (f.payloads == "") {
		return nil, errors.New("give one of --capture (Data Capture JSONL) and --payloads (one payload per line)")
	}
	path, flagName := f.capture, "--capture"
	if f.payloads != "" {
		path, flagName = f.payloads, "--payloads"
	}
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	var ps []loadtest.Payload
	if f.capture != "" {
		ps, err = loadtest.ReadCapture(bytes.NewReader(b), loadtest.CaptureReading{Decoder: dec, SegmentKey: segKey, Accept: f.accept})
	} else {
		if loadtest.IsCapture(b) {
			return nil, fmt.Errorf("--payloads %s: holds Data Capture records; use --capture", path)
		}
		ps, err = loadtest.ReadPayloads(bytes.NewReader(b), f.contentType)
		for i := range ps {
			ps[i].Accept = f.accept
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flagName, path, err)
	}
	if dec != nil {
		scored := 0
		for _, p := range ps {
			if p.Production != nil {
				scored++
			}
		}
		if scored == 0 {
			return nil, fmt.Errorf("--score %s: no captured response in %s could be scored: check the selector and that the capture has outputs", f.score, path)
		}
	}
	return ps, nil
}

func loadtestTarget(ctx context.Context, f loadtestFlags) (loadtest.Target, string, error) {
	switch {
	case (f.url == "") == (f.endpoint == ""):
		return nil, "", errors.New("give one target: --url (a container) or --endpoint (a SageMaker endpoint)")
	case f.url != "":
		if f.variant != "" || f.endpointURL != "" {
			return nil, "", errors.New("--target-variant and --endpoint-url go with --endpoint, not --url")
		}
		t := loadtest.NewHTTPTarget(f.url, f.maxInFlight)
		if err := t.Ping(ctx); err != nil {
			return nil, "", fmt.Errorf("--url: %w", err)
		}
		return t, f.url, nil
	}
	cfg, err := loadAWS(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("--endpoint: %w", err)
	}
	if f.endpointURL != "" {
		cfg.BaseEndpoint = aws.String(f.endpointURL)
	}
	name := "endpoint " + f.endpoint
	if f.variant != "" {
		name += " variant " + f.variant
	}
	return loadtest.NewSageMakerTarget(cfg, f.endpoint, f.variant, f.maxInFlight), name, nil
}

func writeRecommendationJob(ctx context.Context, out io.Writer, r *deploy.Rollout, f loadtestFlags) error {
	if r == nil {
		return errors.New("--recommendation-job: needs --spec (the rollout spec with the candidate and its slo)")
	}
	in, err := r.RecommendationJobRequest(deploy.RecommendationJob{
		JobName: f.jobName, RoleArn: f.roleArn, ModelPackageArn: f.modelPackage,
		SamplePayloadURL: f.payloadURL, ContentType: f.contentType, JobDuration: f.jobDuration,
	})
	if err != nil {
		return fmt.Errorf("--recommendation-job: %w", err)
	}
	wire, err := deploy.WireRequest(ctx, in)
	if err != nil {
		return fmt.Errorf("--recommendation-job: %w", err)
	}
	if err := os.WriteFile(f.jobFile, wire, 0o644); err != nil {
		return fmt.Errorf("--recommendation-job: %w", err)
	}
	p := in.InputConfig.TrafficPattern.Phases[0]
	model := r.Candidate.Model
	if f.modelPackage != "" {
		model = f.modelPackage
	}
	fmt.Fprintf(out, "wrote %s: Advanced job %s, %s on one %s, %d users rising by %d a minute for %d s, stop at %d invocations/min or P95 > %d ms\n",
		f.jobFile, aws.ToString(in.JobName), model, r.Candidate.InstanceType, aws.ToInt32(p.InitialNumberOfUsers),
		aws.ToInt32(p.SpawnRate), aws.ToInt32(p.DurationInSeconds), aws.ToInt32(in.StoppingConditions.MaxInvocations),
		aws.ToInt32(in.StoppingConditions.ModelLatencyThresholds[0].ValueInMilliseconds))
	fmt.Fprintf(out, "start it with: aws sagemaker create-inference-recommendations-job --cli-input-json file://%s\n", f.jobFile)
	return nil
}
