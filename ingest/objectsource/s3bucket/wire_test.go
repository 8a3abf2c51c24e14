package s3bucket_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/verdictml/verdict/ingest/objectsource"
	"github.com/verdictml/verdict/ingest/objectsource/s3bucket"
	"github.com/verdictml/verdict/internal/emulatortest"
	"github.com/verdictml/verdict/internal/golden"
)

// recorder is an http.Client transport that writes down each request the SDK sends
// and answers from a script, so the test sees the exact wire requests of the
// production configuration (virtual-hosted S3 addressing, AWS's endpoints) without
// any network.
type recorder struct {
	mu      sync.Mutex
	log     []string
	answers []string // response bodies, in order
}

// volatile headers change on every request (signatures, times, SDK versions).
var volatile = []string{"Authorization", "X-Amz-Date", "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request", "User-Agent", "X-Amz-User-Agent", "Content-Length", "Accept-Encoding"}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
	}
	q := req.URL.Query()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%s https://%s%s\n", req.Method, req.URL.Host, req.URL.EscapedPath())
	for _, k := range keys {
		fmt.Fprintf(&b, "  ?%s=%s\n", k, url.QueryEscape(q.Get(k)))
	}
	var hs []string
	for k := range req.Header {
		if !slices.Contains(volatile, http.CanonicalHeaderKey(k)) {
			hs = append(hs, k)
		}
	}
	slices.Sort(hs)
	for _, k := range hs {
		fmt.Fprintf(&b, "  %s: %s\n", k, req.Header.Get(k))
	}
	if len(body) > 0 {
		fmt.Fprintf(&b, "  body: %s\n", body)
	}
	r.mu.Lock()
	r.log = append(r.log, b.String())
	answer := "{}"
	if len(r.answers) > 0 {
		answer, r.answers = r.answers[0], r.answers[1:]
	}
	r.mu.Unlock()
	ct := "application/xml"
	if strings.HasPrefix(answer, "{") {
		ct = "application/x-amz-json-1.0"
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {ct}}, Body: io.NopCloser(strings.NewReader(answer)), Request: req}, nil
}

func listPage(keys []string, next string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>captures</Name>`)
	for _, k := range keys {
		fmt.Fprintf(&b, `<Contents><Key>%s</Key><LastModified>2026-03-01T10:05:00.000Z</LastModified><ETag>"e"</ETag><Size>10</Size></Contents>`, k)
	}
	if next != "" {
		fmt.Fprintf(&b, `<IsTruncated>true</IsTruncated><NextContinuationToken>%s</NextContinuationToken>`, next)
	} else {
		b.WriteString(`<IsTruncated>false</IsTruncated>`)
	}
	b.WriteString(`</ListBucketResult>`)
	return b.String()
}

// TestWireRequestsMatchGolden records what the bucket and the queue send for a folder
// discovery, a listing from an hour folder over two pages, a read, and a notification
// round (receive, delete, hand back), against testdata/golden/wire_requests.txt.
func TestWireRequestsMatchGolden(t *testing.T) {
	rec := &recorder{answers: []string{
		`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>captures</Name><Prefix>dc/fraud-ep/</Prefix><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>` +
			`<CommonPrefixes><Prefix>dc/fraud-ep/AllTraffic/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>dc/fraud-ep/Shadow/</Prefix></CommonPrefixes></ListBucketResult>`,
		listPage([]string{"dc/fraud-ep/AllTraffic/2026/03/01/08/00-01-000-a b.jsonl"}, "token-1"),
		listPage([]string{"dc/fraud-ep/AllTraffic/2026/03/01/09/00-02-000-c.jsonl.gz"}, ""),
		"line\n",
	}}
	cfg := emulatortest.Config()
	cfg.HTTPClient = rec
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	ctx := context.Background()
	b := s3bucket.New(s3.NewFromConfig(cfg), "captures")
	folders, err := b.Folders(ctx, "dc/fraud-ep/")
	if err != nil || len(folders) != 2 {
		t.Fatalf("folders %v, %v", folders, err)
	}
	var keys []string
	err = b.List(ctx, "dc/fraud-ep/AllTraffic/", "dc/fraud-ep/AllTraffic/2026/03/01/08/", func(objs []objectsource.Object) error {
		for _, o := range objs {
			keys = append(keys, o.Key+" "+o.ETag+" "+o.LastModified.Format(time.RFC3339))
		}
		return nil
	})
	if err != nil || len(keys) != 2 || keys[0] != "dc/fraud-ep/AllTraffic/2026/03/01/08/00-01-000-a b.jsonl e 2026-03-01T10:05:00Z" {
		t.Fatalf("listed %q, %v", keys, err)
	}
	body, err := b.Open(ctx, "dc/fraud-ep/AllTraffic/2026/03/01/08/00-01-000-a b.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(body); !bytes.Equal(got, []byte("line\n")) {
		t.Errorf("read %q", got)
	}
	body.Close()

	event := `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventTime":"2026-03-01T10:05:01.123Z","eventName":"ObjectCreated:Put",` +
		`"s3":{"bucket":{"name":"captures"},"object":{"key":"dc/fraud-ep/AllTraffic/2026/03/01/08/00-01-000-a+b.jsonl","size":10,"eTag":"e"}}}]}`
	rec.answers = []string{
		fmt.Sprintf(`{"Messages":[{"MessageId":"m1","ReceiptHandle":"r1","Body":%q},{"MessageId":"m2","ReceiptHandle":"r2","Body":%q}]}`, event, event),
		`{}`, `{}`,
	}
	q, err := s3bucket.NewQueue(sqs.NewFromConfig(cfg), s3bucket.QueueConfig{URL: "https://sqs.us-east-1.amazonaws.com/123456789012/verdict-captures"})
	if err != nil {
		t.Fatal(err)
	}
	notices, err := q.Receive(ctx)
	if err != nil || len(notices) != 2 || notices[0].URL != "s3://captures/dc/fraud-ep/AllTraffic/2026/03/01/08/00-01-000-a b.jsonl" {
		t.Fatalf("notices %+v, %v", notices, err)
	}
	if err := notices[0].Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := notices[1].Retry(ctx); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "wire_requests.txt", []byte(strings.Join(rec.log, "\n")))
}
