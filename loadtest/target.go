package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
	"github.com/aws/smithy-go"
)

// Target is what a load test sends requests to. Invoke returns the response body, or
// an error that Classify can sort into a Class.
type Target interface {
	Invoke(ctx context.Context, p Payload) ([]byte, error)
}

// Class is the outcome of one request.
type Class string

// Outcome classes. A request either completes (OK or one of the error classes) or is
// dropped at the concurrency cap before it is sent; drops are counted apart.
const (
	OK Class = "ok"
	// HTTP status classes of a container target (POST /invocations).
	HTTP4xx Class = "http_4xx"
	HTTP5xx Class = "http_5xx"
	// Timeout: no response within the per-request timeout.
	Timeout Class = "timeout"
	// Connection: the request could not be sent or its response not read (refused,
	// reset, closed connection, DNS).
	Connection Class = "connection"
	// Canceled: the run was interrupted while the request was in flight.
	Canceled Class = "canceled"
	// SageMaker InvokeEndpoint errors. ModelError is the model's container
	// answering with an error (SageMaker passes its status on); throttling is
	// SageMaker refusing the rate, before the model sees the request.
	ModelError      Class = "sagemaker_model_error"
	Throttling      Class = "sagemaker_throttling"
	ModelNotReady   Class = "sagemaker_model_not_ready"
	Validation      Class = "sagemaker_validation"
	Unavailable     Class = "sagemaker_service_unavailable"
	InternalFailure Class = "sagemaker_internal_failure"
	OtherSageMaker  Class = "sagemaker_other"
	OtherFailure    Class = "other"
)

// Classify sorts the outcome of one Invoke. ctx is the request's context: its
// deadline turns a failure into Timeout.
func Classify(ctx context.Context, err error) Class {
	if err == nil {
		return OK
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return Timeout
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return Canceled
	}
	var status *StatusError
	if errors.As(err, &status) {
		if status.Code >= 500 {
			return HTTP5xx
		}
		return HTTP4xx
	}
	var (
		modelErr    *types.ModelError
		notReady    *types.ModelNotReadyException
		validation  *types.ValidationError
		unavailable *types.ServiceUnavailable
		internal    *types.InternalFailure
		dependency  *types.InternalDependencyException
		api         smithy.APIError
	)
	switch {
	case errors.As(err, &modelErr):
		return ModelError
	case errors.As(err, &notReady):
		return ModelNotReady
	case errors.As(err, &validation):
		return Validation
	case errors.As(err, &unavailable):
		return Unavailable
	case errors.As(err, &internal), errors.As(err, &dependency):
		return InternalFailure
	case errors.As(err, &api):
		if c := api.ErrorCode(); strings.Contains(c, "Throttl") || c == "TooManyRequestsException" {
			return Throttling
		}
		var resp *awshttp.ResponseError
		if errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusTooManyRequests {
			return Throttling
		}
		return OtherSageMaker
	}
	var (
		netErr net.Error
		opErr  *net.OpError
	)
	switch {
	case errors.As(err, &netErr) && netErr.Timeout():
		return Timeout
	case errors.As(err, &opErr), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return Connection
	}
	return OtherFailure
}

// StatusError is a container's non-2xx answer to POST /invocations.
type StatusError struct {
	Code int
	Body string // the start of the response body
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("POST /invocations: HTTP %d: %s", e.Code, e.Body)
}

// HTTPTarget speaks the SageMaker inference-container contract: POST /invocations
// with the payload, GET /ping for health. URL is the container's base URL
// (http://host:8080).
type HTTPTarget struct {
	URL    string
	Client *http.Client
}

// NewHTTPTarget returns a target for the container at baseURL whose connection pool
// holds maxConns connections (the load test's concurrency cap), so connections are
// reused rather than opened per request.
func NewHTTPTarget(baseURL string, maxConns int) *HTTPTarget {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = maxConns
	tr.MaxIdleConnsPerHost = maxConns
	return &HTTPTarget{URL: strings.TrimSuffix(baseURL, "/"), Client: &http.Client{Transport: tr}}
}

// Ping checks GET /ping answers 200, as SageMaker does before routing traffic.
func (t *HTTPTarget) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+"/ping", nil)
	if err != nil {
		return fmt.Errorf("ping %s: %w", t.URL, err)
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return fmt.Errorf("ping %s: %w", t.URL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ping %s: GET /ping answered HTTP %d, want 200", t.URL, resp.StatusCode)
	}
	return nil
}

// Invoke posts the payload to /invocations.
func (t *HTTPTarget) Invoke(ctx context.Context, p Payload) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL+"/invocations", bytes.NewReader(p.Body))
	if err != nil {
		return nil, err
	}
	if p.ContentType != "" {
		req.Header.Set("Content-Type", p.ContentType)
	}
	if p.Accept != "" {
		req.Header.Set("Accept", p.Accept)
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, &StatusError{Code: resp.StatusCode, Body: string(body[:min(len(body), 200)])}
	}
	return body, nil
}

// InvokeAPI is the one call SageMakerTarget needs from the sagemakerruntime client.
type InvokeAPI interface {
	InvokeEndpoint(ctx context.Context, in *sagemakerruntime.InvokeEndpointInput, opts ...func(*sagemakerruntime.Options)) (*sagemakerruntime.InvokeEndpointOutput, error)
}

// SageMakerTarget invokes a SageMaker endpoint (InvokeEndpoint), optionally pinned
// to one production variant. Build its client without retries (RetryMaxAttempts 1):
// a retry would add load the schedule did not ask for and hide throttling.
type SageMakerTarget struct {
	Client        InvokeAPI
	Endpoint      string
	TargetVariant string
}

// NewSageMakerTarget returns a target for endpoint (and, when not empty, variant)
// with an InvokeEndpoint client built from cfg: no retries (a retry adds load the
// schedule did not ask for and hides throttling; each attempt is one request, its
// failure counted by class) and a connection pool of maxConns.
func NewSageMakerTarget(cfg aws.Config, endpoint, variant string, maxConns int) *SageMakerTarget {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = maxConns
		tr.MaxIdleConnsPerHost = maxConns
	})
	client := sagemakerruntime.NewFromConfig(cfg, func(o *sagemakerruntime.Options) {
		o.HTTPClient = httpClient
		o.Retryer = aws.NopRetryer{}
		o.RetryMaxAttempts = 1
	})
	return &SageMakerTarget{Client: client, Endpoint: endpoint, TargetVariant: variant}
}

// Invoke sends one InvokeEndpoint request.
func (t *SageMakerTarget) Invoke(ctx context.Context, p Payload) ([]byte, error) {
	in := InvokeInput(t.Endpoint, t.TargetVariant, p)
	out, err := t.Client.InvokeEndpoint(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}

// InvokeInput is the InvokeEndpoint request for one payload.
func InvokeInput(endpoint, variant string, p Payload) *sagemakerruntime.InvokeEndpointInput {
	in := &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String(endpoint), Body: p.Body}
	if p.ContentType != "" {
		in.ContentType = aws.String(p.ContentType)
	}
	if p.Accept != "" {
		in.Accept = aws.String(p.Accept)
	}
	if variant != "" {
		in.TargetVariant = aws.String(variant)
	}
	return in
}
