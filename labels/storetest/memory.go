package storetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/tally"
)

// Memory is an in-memory labels.Store for tests. It copies records in and out through
// the real encoding, so tests see what a durable store would return.
type Memory struct {
	mu        sync.Mutex
	records   map[string][]byte
	due       map[labels.DueRef]bool
	allTime   map[tally.Key]tally.Counts
	buckets   map[bucketKey]tally.Counts
	unmatched int64
}

type bucketKey struct {
	key    tally.Key
	bucket int64
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		records: map[string][]byte{}, due: map[labels.DueRef]bool{},
		allTime: map[tally.Key]tally.Counts{}, buckets: map[bucketKey]tally.Counts{},
	}
}

// OpenMemory opens an in-memory store for Run. A reopen returns the same store: its
// data lives as long as the test.
func OpenMemory(*testing.T) (labels.Store, func(*testing.T) labels.Store) {
	st := NewMemory()
	return st, func(*testing.T) labels.Store { return st }
}

// Records implements labels.Store.
func (m *Memory) Records(_ context.Context, ids []string) ([]*labels.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*labels.Record, len(ids))
	for i, id := range ids {
		if b, ok := m.records[id]; ok {
			r, err := labels.UnmarshalRecord(id, b)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
	}
	return out, nil
}

// Commit implements labels.Store.
func (m *Memory) Commit(_ context.Context, c *labels.Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rc := range c.Records {
		if rc.Record != nil {
			m.records[rc.ID] = rc.Record.Marshal()
		}
		for _, d := range rc.Due {
			m.due[d] = true
		}
		for _, d := range rc.Undue {
			delete(m.due, d)
		}
	}
	for _, d := range c.Deltas() {
		a := m.allTime[d.Key]
		a.Add(d.Counts)
		m.allTime[d.Key] = a
		k := bucketKey{d.Key, d.Bucket}
		b := m.buckets[k]
		b.Add(d.Counts)
		m.buckets[k] = b
	}
	m.unmatched += c.Unmatched()
	return nil
}

// Due implements labels.Store.
func (m *Memory) Due(_ context.Context, before time.Time, limit int) ([]labels.DueRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []labels.DueRef
	for d := range m.due {
		if d.Time < before.UnixNano() {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b labels.DueRef) int { return int(a.Time - b.Time) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Tallies implements labels.Store.
func (m *Memory) Tallies(_ context.Context, since int64, fn func(tally.Delta, bool) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, c := range m.allTime {
		if err := fn(tally.Delta{Key: k, Counts: c}, true); err != nil {
			return err
		}
	}
	for k, c := range m.buckets {
		if k.bucket >= since {
			if err := fn(tally.Delta{Key: k.key, Bucket: k.bucket, Counts: c}, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// Unmatched implements labels.Store.
func (m *Memory) Unmatched(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unmatched, nil
}

var _ labels.Store = (*Memory)(nil)
