package cloudwatch

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
)

// flush is one flush's requests, all datums stamped with at.
type flush struct {
	at       time.Time
	requests []*cloudwatch.PutMetricDataInput
	datums   int
}

// queue is a bounded FIFO of flushes between the flush loop and the sender. push
// never blocks: when the queue is full the oldest flush is dropped, since a newer
// flush carries the same series over a more recent window.
type queue struct {
	mu    sync.Mutex
	items []flush
	max   int
	ready chan struct{} // has a token when items may be non-empty
}

func newQueue(max int) *queue {
	return &queue{max: max, ready: make(chan struct{}, 1)}
}

// push appends f and returns how many flushes it dropped to make room.
func (q *queue) push(f flush) (dropped int) {
	q.mu.Lock()
	for len(q.items) >= q.max {
		q.items[0] = flush{}
		q.items = q.items[1:]
		dropped++
	}
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return dropped
}

// pop waits for the oldest flush, or returns false when ctx is done.
func (q *queue) pop(ctx context.Context) (flush, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			f := q.items[0]
			q.items[0] = flush{}
			q.items = q.items[1:]
			more := len(q.items) > 0
			q.mu.Unlock()
			if more {
				select {
				case q.ready <- struct{}{}:
				default:
				}
			}
			return f, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return flush{}, false
		case <-q.ready:
		}
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
