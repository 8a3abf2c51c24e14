package s3bucket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/verdictml/verdict/ingest/objectsource"
)

// QueueAPI is what Queue needs from SQS; *sqs.Client implements it.
type QueueAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// QueueConfig configures a Queue.
type QueueConfig struct {
	// URL is the queue's URL.
	URL string
	// Wait is the long-poll time of ReceiveMessage, at most 20 s. Default 20 s.
	Wait time.Duration
	// Visibility is how long a received message stays hidden while its object is read;
	// make it longer than reading the largest object takes. Default 5 min.
	Visibility time.Duration
	// RetryAfter is how soon a message handed back (its partition is read by another
	// instance, or its read failed) is visible again. Default 5 s.
	RetryAfter time.Duration
	// Logger receives logs about messages that are not S3 events. Default slog.Default().
	Logger *slog.Logger
}

// Queue receives S3 event notifications from SQS: straight from S3, or wrapped by SNS
// (raw message delivery off). Test events and events other than ObjectCreated are
// deleted.
type Queue struct {
	api QueueAPI
	cfg QueueConfig
}

// NewQueue returns the notifications of the queue at cfg.URL.
func NewQueue(api QueueAPI, cfg QueueConfig) (*Queue, error) {
	if cfg.URL == "" {
		return nil, errors.New("s3bucket: queue URL is required")
	}
	if cfg.Wait <= 0 || cfg.Wait > 20*time.Second {
		cfg.Wait = 20 * time.Second
	}
	if cfg.Visibility <= 0 {
		cfg.Visibility = 5 * time.Minute
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Queue{api: api, cfg: cfg}, nil
}

// Receive implements objectsource.Notifications.
func (q *Queue) Receive(ctx context.Context) ([]objectsource.Notice, error) {
	out, err := q.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(q.cfg.URL),
		MaxNumberOfMessages: 10,
		WaitTimeSeconds:     int32(q.cfg.Wait / time.Second),
		VisibilityTimeout:   int32(q.cfg.Visibility / time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", q.cfg.URL, err)
	}
	var notices []objectsource.Notice
	for _, m := range out.Messages {
		handle := aws.ToString(m.ReceiptHandle)
		events, err := ParseEvent(aws.ToString(m.Body))
		if err != nil {
			q.cfg.Logger.WarnContext(ctx, "s3bucket: deleting a queue message that is not an S3 event notification", "queue", q.cfg.URL, "message_id", aws.ToString(m.MessageId), "err", err)
		}
		if len(events) == 0 {
			q.delete(ctx, handle)
			continue
		}
		msg := &message{q: q, handle: handle, pending: len(events)}
		for _, e := range events {
			notices = append(notices, objectsource.Notice{
				URL: "s3://" + e.Bucket + "/" + e.Key, Key: e.Key, Size: e.Size, ETag: e.ETag, Time: e.Time,
				Ack: msg.ack, Retry: msg.retry,
			})
		}
	}
	return notices, nil
}

func (q *Queue) delete(ctx context.Context, handle string) error {
	_, err := q.api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.cfg.URL), ReceiptHandle: aws.String(handle)})
	if err != nil {
		return fmt.Errorf("delete message from %s: %w", q.cfg.URL, err)
	}
	return nil
}

// message is one received message; it is deleted once every notice in it is acked,
// and made visible again soon when any is handed back.
type message struct {
	q       *Queue
	handle  string
	mu      sync.Mutex
	pending int
	retried bool
}

func (m *message) ack(ctx context.Context) error {
	m.mu.Lock()
	m.pending--
	done := m.pending == 0 && !m.retried
	m.mu.Unlock()
	if !done {
		return nil
	}
	return m.q.delete(ctx, m.handle)
}

func (m *message) retry(ctx context.Context) error {
	m.mu.Lock()
	first := !m.retried
	m.retried = true
	m.pending--
	m.mu.Unlock()
	if !first {
		return nil
	}
	_, err := m.q.api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(m.q.cfg.URL), ReceiptHandle: aws.String(m.handle),
		VisibilityTimeout: int32(m.q.cfg.RetryAfter / time.Second),
	})
	if err != nil {
		return fmt.Errorf("hand back message to %s: %w", m.q.cfg.URL, err)
	}
	return nil
}

// Event is one object-created record of an S3 event notification.
type Event struct {
	Bucket, Key string
	Size        int64
	ETag        string
	Time        time.Time
}

type s3Record struct {
	EventName string `json:"eventName"`
	EventTime string `json:"eventTime"`
	S3        struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key  string `json:"key"`
			Size int64  `json:"size"`
			ETag string `json:"eTag"`
		} `json:"object"`
	} `json:"s3"`
}

// ParseEvent reads the object-created records of an SQS message body: an S3 event
// notification ({"Records": [...]}), or one wrapped in an SNS notification. A test
// event, and records of other events, yield nothing. Keys are URL-decoded as S3
// encodes them (a space is "+").
func ParseEvent(body string) ([]Event, error) {
	var doc struct {
		Records []s3Record `json:"Records"`
		Event   string     `json:"Event"`
		Type    string     `json:"Type"`
		Message string     `json:"Message"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return nil, fmt.Errorf("message body is not JSON: %w", err)
	}
	if doc.Type == "Notification" && doc.Message != "" {
		return ParseEvent(doc.Message)
	}
	if doc.Event == "s3:TestEvent" {
		return nil, nil
	}
	if doc.Records == nil {
		return nil, errors.New("message has no Records")
	}
	var out []Event
	for _, r := range doc.Records {
		if !strings.Contains(r.EventName, "ObjectCreated:") {
			continue
		}
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			return nil, fmt.Errorf("object key %q: %w", r.S3.Object.Key, err)
		}
		e := Event{Bucket: r.S3.Bucket.Name, Key: key, Size: r.S3.Object.Size, ETag: r.S3.Object.ETag}
		if t, err := time.Parse(time.RFC3339Nano, r.EventTime); err == nil {
			e.Time = t.UTC()
		}
		if e.Bucket == "" || e.Key == "" {
			return nil, errors.New("record names no bucket or key")
		}
		out = append(out, e)
	}
	return out, nil
}
