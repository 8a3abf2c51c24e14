package loadtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/verdictml/verdict/internal/golden"
)

const (
	testAccessKey = "AKIDTEST"
	testSecretKey = "secret"
	testRegion    = "us-east-1"
)

// testSageMakerTarget is NewSageMakerTarget pointed at a local server, with static
// credentials: the same client configuration verdict loadtest uses.
func testSageMakerTarget(url, variant string) *SageMakerTarget {
	cfg := aws.Config{
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
		BaseEndpoint: aws.String(url),
	}
	return NewSageMakerTarget(cfg, "fraud-detector", variant, 8)
}

// invokeRecorder is a SageMaker runtime endpoint on loopback: it verifies each
// request's SigV4 signature with the test secret and records the request.
type invokeRecorder struct {
	mu       sync.Mutex
	requests []string
	reply    func(w http.ResponseWriter)
	badSig   []string
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$`)

func (s *invokeRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	auth := r.Header.Get("Authorization")
	sigOK, why := verifySigV4(r, body)
	normalized := authRE.ReplaceAllString(auth, "AWS4-HMAC-SHA256 Credential=$1/<date>/$3/$4/aws4_request, SignedHeaders=$5, Signature=<signature>")

	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL.RequestURI())
	fmt.Fprintf(&b, "Host: <test server>\n")
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.Header {
			if !yield(k) {
				return
			}
		}
	}) {
		v := strings.Join(r.Header[k], ", ")
		switch k {
		case "Authorization":
			v = normalized
		case "X-Amz-Date":
			v = "<date>"
		case "Amz-Sdk-Invocation-Id":
			v = "<uuid>"
		case "User-Agent":
			v = "<sdk user agent>"
		}
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	fmt.Fprintf(&b, "\n%s\n", body)
	s.mu.Lock()
	s.requests = append(s.requests, b.String())
	if !sigOK {
		s.badSig = append(s.badSig, why)
	}
	s.mu.Unlock()
	if s.reply != nil {
		s.reply(w)
		return
	}
	w.Header().Set("Content-Type", "text/csv")
	_, _ = io.WriteString(w, "0.42")
}

// recorded returns the requests so far and the signature problems.
func (s *invokeRecorder) recorded() (requests, badSig []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests), slices.Clone(s.badSig)
}

// verifySigV4 signs the received request again, with the signed headers only, the
// request's own X-Amz-Date and the test secret, and compares signatures.
func verifySigV4(r *http.Request, body []byte) (bool, string) {
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return false, "Authorization is not a SigV4 header: " + r.Header.Get("Authorization")
	}
	if m[1] != testAccessKey || m[3] != testRegion || m[4] != "sagemaker" {
		return false, "credential scope " + m[0]
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return false, "X-Amz-Date: " + err.Error()
	}
	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return false, err.Error()
	}
	for _, h := range strings.Split(m[5], ";") {
		if h == "host" || h == "content-length" {
			continue
		}
		req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "sagemaker", testRegion, at); err != nil {
		return false, err.Error()
	}
	again := authRE.FindStringSubmatch(req.Header.Get("Authorization"))
	if again == nil || again[6] != m[6] || again[5] != m[5] {
		return false, fmt.Sprintf("signature does not verify: sent %s, recomputed %s", m[0], req.Header.Get("Authorization"))
	}
	return true, ""
}

func TestInvokeEndpointWireRequestIsSignedAndMatchesGolden(t *testing.T) {
	rec := &invokeRecorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	target := testSageMakerTarget(srv.URL, "AllTraffic")
	body, err := target.Invoke(t.Context(), Payload{Body: []byte("12.5,electronics"), ContentType: "text/csv", Accept: "text/csv"})
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "0.42" {
		t.Errorf("response body %q", body)
	}
	requests, badSig := rec.recorded()
	if len(requests) != 1 {
		t.Fatalf("%d requests, want 1", len(requests))
	}
	if len(badSig) > 0 {
		t.Errorf("SigV4: %s", badSig[0])
	}
	golden.Check(t, "invoke_endpoint_wire.txt", []byte(requests[0]))
}

func TestInvokeEndpointErrorsAreClassified(t *testing.T) {
	sagemakerError := func(status int, errType, msg string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Amzn-Errortype", errType)
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"message":%q}`, msg)
		}
	}
	cases := []struct {
		name  string
		reply func(w http.ResponseWriter)
		want  Class
	}{
		{"the model's container answered 500", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Amzn-Errortype", "ModelError")
			w.WriteHeader(424)
			_, _ = io.WriteString(w, `{"message":"Received server error (500) from primary","OriginalStatusCode":500}`)
		}, ModelError},
		{"throttled by SageMaker", sagemakerError(400, "ThrottlingException", "Rate exceeded"), Throttling},
		{"throttled with 429 and no type", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTooManyRequests) }, Throttling},
		{"model not ready", sagemakerError(429, "ModelNotReadyException", "not ready"), ModelNotReady},
		{"validation error", sagemakerError(400, "ValidationError", "Endpoint fraud-detector not found"), Validation},
		{"service unavailable", sagemakerError(503, "ServiceUnavailable", "busy"), Unavailable},
		{"internal failure", sagemakerError(500, "InternalFailure", "oops"), InternalFailure},
		{"stall past the timeout", func(w http.ResponseWriter) { time.Sleep(300 * time.Millisecond) }, Timeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &invokeRecorder{reply: tc.reply}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			_, err := testSageMakerTarget(srv.URL, "").Invoke(ctx, Payload{Body: []byte("1")})
			if got := Classify(ctx, err); got != tc.want {
				t.Errorf("class %s, want %s (err %v)", got, tc.want, err)
			}
			srv.Close() // waits for the handler, so every attempt is recorded
			if requests, _ := rec.recorded(); len(requests) != 1 {
				t.Errorf("%d attempts, want exactly 1 (no retries)", len(requests))
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := testSageMakerTarget(url, "").Invoke(t.Context(), Payload{Body: []byte("1")})
		if got := Classify(t.Context(), err); got != Connection {
			t.Errorf("class %s, want %s (err %v)", got, Connection, err)
		}
	})
}
