package labels

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/verdictml/verdict/tally"
)

// memStore is an in-memory Store for the join's unit tests. It copies records in
// and out through the real encoding, so tests see what a durable store would return.
type memStore struct {
	mu        sync.Mutex
	records   map[string][]byte
	due       map[DueRef]bool
	allTime   map[tally.Key]tally.Counts
	buckets   map[deltaKey]tally.Counts
	unmatched int64
	failNext  error
	// partialConflicts makes that many commits write only their first record (with
	// its tallies) and then report ErrConflict, like a shared store whose other
	// records changed under it.
	partialConflicts int
}

func newMemStore() *memStore {
	return &memStore{records: map[string][]byte{}, due: map[DueRef]bool{}, allTime: map[tally.Key]tally.Counts{}, buckets: map[deltaKey]tally.Counts{}}
}

func (m *memStore) Records(_ context.Context, ids []string) ([]*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Record, len(ids))
	for i, id := range ids {
		if b, ok := m.records[id]; ok {
			r, err := UnmarshalRecord(id, b)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
	}
	return out, nil
}

func (m *memStore) Commit(_ context.Context, c *Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failNext; err != nil {
		m.failNext = nil
		return err
	}
	if m.partialConflicts > 0 && len(c.Records) > 1 {
		m.partialConflicts--
		m.apply(&Change{Records: c.Records[:1]})
		return ErrConflict
	}
	m.apply(c)
	return nil
}

func (m *memStore) apply(c *Change) {
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
		b := m.buckets[deltaKey{d.Key, d.Bucket}]
		b.Add(d.Counts)
		m.buckets[deltaKey{d.Key, d.Bucket}] = b
	}
	m.unmatched += c.Unmatched()
}

func (m *memStore) Due(_ context.Context, before time.Time, limit int) ([]DueRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []DueRef
	for d := range m.due {
		if d.Time < before.UnixNano() {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b DueRef) int { return int(a.Time - b.Time) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *memStore) Tallies(_ context.Context, since int64, fn func(tally.Delta, bool) error) error {
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

func (m *memStore) Unmatched(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unmatched, nil
}
