package objectsource

import (
	"context"
	"strings"
	"time"
)

// Notice announces a new object (an S3 event notification).
type Notice struct {
	// URL is the object's URL (s3://bucket/key), matched against the partitions.
	URL  string
	Key  string
	Size int64
	ETag string
	// Time is when the object was created.
	Time time.Time
	// Ack is called once the object is read and recorded (or is none of this
	// source's business); Retry when it was not read, so the notice comes back later
	// (to this or another instance).
	Ack, Retry func(context.Context) error
}

// Notifications delivers notices of new objects.
type Notifications interface {
	// Receive waits for notices (a long poll) and returns them; it returns early when
	// ctx ends.
	Receive(ctx context.Context) ([]Notice, error)
}

// notifications hands announced objects to the partition that reads them.
func (s *Source) notifications(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		notices, err := s.cfg.Notifications.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.WarnContext(ctx, "objectsource: receive notifications failed; listings still find new objects", "err", err)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
		for _, n := range notices {
			s.route(ctx, n)
		}
	}
}

// route gives a notice to the follower of its partition. A notice for a partition
// another instance reads (or one not found yet) comes back later; one outside every
// followed prefix is acknowledged and forgotten.
func (s *Source) route(ctx context.Context, n Notice) {
	s.mu.Lock()
	var f *follower
	for id, fl := range s.following {
		if strings.HasPrefix(n.URL, id) {
			f = fl
		}
	}
	ours := f != nil
	if !ours {
		for _, pre := range s.cfg.Prefixes {
			if strings.HasPrefix(n.URL, pre.Bucket.URL(pre.Prefix)) {
				ours = true
			}
		}
	}
	s.notices++
	s.mu.Unlock()
	switch {
	case f != nil:
		select {
		case f.notices <- n:
		default:
			s.retry(ctx, n) // the follower is far behind; its listing will find it
		}
	case ours:
		s.retry(ctx, n)
	default:
		s.ack(ctx, n)
	}
}

func (s *Source) ack(ctx context.Context, n Notice) {
	if n.Ack != nil {
		if err := n.Ack(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "objectsource: acknowledge notification failed; it comes back and changes nothing", "object", n.URL, "err", err)
		}
	}
}

func (s *Source) retry(ctx context.Context, n Notice) {
	if n.Retry != nil {
		if err := n.Retry(context.WithoutCancel(ctx)); err != nil && ctx.Err() == nil {
			s.log.DebugContext(ctx, "objectsource: hand back notification failed; it comes back after its visibility timeout", "object", n.URL, "err", err)
		}
	}
}
