package s3bucket_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/ingest/objectsource"
	"github.com/verdictml/verdict/ingest/objectsource/s3bucket"
	"github.com/verdictml/verdict/internal/emulatortest"
)

// countingJoin is an idempotent stand-in for the join that counts every application.
type countingJoin struct {
	mu      sync.Mutex
	seen    map[string]bool
	applied int
}

func (j *countingJoin) Apply(_ context.Context, b ingest.Batch) (ingest.Result, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var r ingest.Result
	for _, p := range b.Predictions {
		j.applied++
		if k := "p/" + p.InferenceID + "/" + p.Variant; j.seen[k] {
			r.Duplicates++
		} else {
			j.seen[k] = true
		}
	}
	for _, l := range b.Labels {
		j.applied++
		if k := "l/" + l.InferenceID; j.seen[k] {
			r.Duplicates++
		} else {
			j.seen[k] = true
		}
	}
	return r, nil
}

func (j *countingJoin) counts() (distinct, applied int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.seen), j.applied
}

type world struct {
	t      *testing.T
	s3     *s3.Client
	bucket string
	hour   time.Time
	join   *countingJoin
	state  string
	lines  int // events uploaded
}

func newWorld(t *testing.T) *world {
	c := emulatortest.S3Client(t)
	return &world{t: t, s3: c, bucket: emulatortest.CreateBucket(t, c), hour: time.Now().UTC().Truncate(time.Hour).Add(-4 * time.Hour),
		join: &countingJoin{seen: map[string]bool{}}, state: t.TempDir()}
}

func capture(id string, at time.Time) string {
	return fmt.Sprintf(`{"captureData":{"endpointOutput":{"observedContentType":"text/csv","mode":"OUTPUT","data":"0.7","encoding":"CSV"}},`+
		`"eventMetadata":{"eventId":"%s","inferenceTime":"%s"},"eventVersion":"0"}`, id, at.Format(time.RFC3339))
}

// put uploads a capture file of n records for variant at hour offset h.
func (w *world) put(variant string, h int, file string, n int) string {
	w.t.Helper()
	at := w.hour.Add(time.Duration(h) * time.Hour)
	key := fmt.Sprintf("datacapture/fraud-ep/%s/%s/%s", variant, at.Format("2006/01/02/15"), file)
	var lines []string
	for i := range n {
		lines = append(lines, capture(fmt.Sprintf("%s-%d", file, i), at.Add(time.Minute)))
	}
	body := []byte(strings.Join(lines, "\n") + "\n")
	if strings.HasSuffix(file, ".gz") {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		zw.Close()
		body = buf.Bytes()
	}
	if _, err := w.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		w.t.Fatalf("put %s: %v", key, err)
	}
	w.lines += n
	return key
}

func (w *world) source(notes objectsource.Notifications, poll time.Duration) *objectsource.Source {
	w.t.Helper()
	dec, err := ingest.NewDecoder(ingest.DecoderConfig{})
	if err != nil {
		w.t.Fatal(err)
	}
	claims, err := objectsource.NewDirClaims(w.state, 100*time.Millisecond, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	s, err := objectsource.New(objectsource.Config{
		Prefixes: []objectsource.Prefix{{Bucket: s3bucket.New(w.s3, w.bucket), Prefix: "datacapture/", Kind: ingest.KindPrediction}},
		Decoder:  dec, Sink: w.join, Claims: claims, Notifications: notes,
		Lookback: 2 * time.Hour, PollInterval: poll,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// runUntil runs s until it has read want objects, and a little longer.
func runUntil(t *testing.T, s *objectsource.Source, want int) objectsource.Totals {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for deadline := time.Now().Add(30 * time.Second); s.Totals().Objects < want; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("read %d objects within 30s, want %d", s.Totals().Objects, want)
		}
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return s.Totals()
}

// TestSourceReadsCaptureFilesFromKumo follows a Data Capture prefix on kumo's S3: two
// variants' files, gzip'd and not, a restart, then files uploaded late and out of key
// order. Every capture is applied exactly once.
func TestSourceReadsCaptureFilesFromKumo(t *testing.T) {
	w := newWorld(t)
	w.put("AllTraffic", 0, "05-00-000-a.jsonl", 30)
	w.put("AllTraffic", 1, "05-00-000-b.jsonl.gz", 40)
	w.put("Shadow", 0, "05-00-001-a.jsonl", 30)
	w.put("Shadow", 1, "05-00-001-b.jsonl.gz", 40)
	tot := runUntil(t, w.source(nil, 50*time.Millisecond), 4)
	if distinct, applied := w.join.counts(); distinct != w.lines || applied != w.lines || tot.Objects != 4 {
		t.Fatalf("first run: %d distinct, %d applied, %d objects; want %d, %d, 4", distinct, applied, tot.Objects, w.lines, w.lines)
	}
	// Late and out of order: hour 0 gets a file whose key sorts before the one read;
	// hour 2 is new.
	w.put("AllTraffic", 2, "00-00-000-c.jsonl", 25)
	w.put("AllTraffic", 0, "00-00-000-late.jsonl", 15)
	w.put("Shadow", 1, "00-00-000-late.jsonl.gz", 15)
	tot = runUntil(t, w.source(nil, 50*time.Millisecond), 3)
	if distinct, applied := w.join.counts(); distinct != w.lines || applied != w.lines || tot.Objects != 3 || tot.Duplicates != 0 {
		t.Errorf("after restart: %d distinct, %d applied, %d objects, %d duplicates; want %d, %d, 3, 0", distinct, applied, tot.Objects, tot.Duplicates, w.lines, w.lines)
	}
}

// TestNotificationsReadObjectsBetweenListings has kumo's S3 send object-created events
// to an SQS queue; the source lists once at start and then only every hour, so the
// objects uploaded after the first listing are read through the notifications,
// including one whose hour is below the lookback floor.
func TestNotificationsReadObjectsBetweenListings(t *testing.T) {
	w := newWorld(t)
	sqsc := emulatortest.SQSClient(t)
	queueURL, queueARN := emulatortest.CreateQueue(t, sqsc)
	_, err := w.s3.PutBucketNotificationConfiguration(context.Background(), &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String(w.bucket),
		NotificationConfiguration: &s3types.NotificationConfiguration{QueueConfigurations: []s3types.QueueConfiguration{{
			QueueArn: aws.String(queueARN), Events: []s3types.Event{"s3:ObjectCreated:*"},
			Filter: &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{FilterRules: []s3types.FilterRule{
				{Name: s3types.FilterRuleNamePrefix, Value: aws.String("datacapture/")}}}},
		}}},
	})
	if err != nil {
		t.Fatalf("put bucket notification configuration: %v", err)
	}
	w.put("AllTraffic", 3, "00-00-000-a.jsonl", 10)
	w.put("AllTraffic", 2, "00-00-000-earlier.jsonl", 10) // within the lookback: its notification finds it read
	q, err := s3bucket.NewQueue(sqsc, s3bucket.QueueConfig{URL: queueURL, Wait: time.Second, RetryAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s := w.source(q, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitObjects := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); s.Totals().Objects < n; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("read %d objects within 30s, want %d", s.Totals().Objects, n)
			}
		}
	}
	waitObjects(2)
	w.put("AllTraffic", 3, "10-00-000-b.jsonl", 10)
	w.put("AllTraffic", 0, "30-00-000-below-the-floor.jsonl", 10) // hour 0 < floor (hour 1)
	waitObjects(4)
	if distinct, applied := w.join.counts(); distinct != w.lines || applied != w.lines {
		t.Errorf("%d distinct, %d applied; want %d each", distinct, applied, w.lines)
	}
}
