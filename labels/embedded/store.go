// Package embedded is verdict's default join store: a pebble LSM on local disk.
//
// Why pebble: it is CockroachDB's storage engine (well kept, crash-safe through its
// write-ahead log, atomic batches), it has a merge operator so tally deltas are
// written blind instead of read-modify-written, and bloom filters make the label
// path's random point lookups cheap. Records, the maturity index and the tallies live
// in one keyspace, so one batch commits an outcome transition with its counts.
//
// Keyspace:
//
//	r<id>                              → record (labels.Record, binary)
//	m<time:8><id>\x00<variant>         → maturity index of pending predictions
//	t<bucket:8><variant>\x00<key>\x00<value> → bucket tally (merge: sum)
//	a<variant>\x00<key>\x00<value>     → all-time tally (merge: sum)
//	g/unmatched                        → labels waiting for a prediction (merge: sum)
//	o<time:8><id>                      → age index: a record's newest event time (Expire)
//
// Integers in keys are big-endian with the sign bit flipped so they sort in order.
package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sync/errgroup"

	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/tally"
)

// Options tune the store. The zero value is a durable store with sane caches.
type Options struct {
	// CacheBytes is the block cache size. Zero means 128 MiB.
	CacheBytes int64
	// NoSync skips the fsync after each commit. Commits still survive a process
	// crash (kill -9), not a power loss. For benchmarks and tests only.
	NoSync bool
	// Logger receives pebble's errors and warnings, corruption reports and the
	// store's failures. Nil discards them.
	Logger *slog.Logger
	// MinFreeBytes is the free space the store leaves on its filesystem: a commit is
	// refused with ErrDiskFull while less is free, so the disk never fills under
	// pebble's own writes (write-ahead log, flushes, compactions, its MANIFEST).
	// Zero disables the check.
	MinFreeBytes int64
	// Salvage opens a store that is known to be damaged instead of refusing it: a
	// write-ahead log corrupt in its middle is backed up and cut at the corruption
	// (what followed is lost), a missing manifest marker is pointed at the newest
	// manifest. The store then serves numbers that may miss events; Salvaged says so.
	Salvage bool
	// FS is the filesystem the store lives on; nil means the operating system's.
	// Tests inject faults (a full disk) through it.
	FS vfs.FS
}

// Store is the embedded join store. It is safe for concurrent use.
//
// A failed write to pebble's write-ahead log (a full disk, an I/O error) is fatal to
// the pebble instance: the store then fails every call with ErrFailed until Reopen,
// which replays the log from disk. Nothing acknowledged is lost: a commit returns nil
// only once its batch is in the (synced) log.
type Store struct {
	dir    string
	opts   Options
	fs     vfs.FS
	write  *pebble.WriteOptions
	log    *slog.Logger
	events storeEvents

	mu sync.RWMutex // writers: Reopen and Close; readers: every other call
	db *pebble.DB   // nil once closed, or after a Reopen that failed
	// failed is why the store refuses calls until Reopen (nil while healthy).
	failed atomic.Pointer[error]
	// salvaged describes what Salvage cut away when the store was opened.
	salvaged string
}

const (
	prefixRecord   = 'r'
	prefixDue      = 'm'
	prefixBucket   = 't'
	prefixAllTime  = 'a'
	prefixGlobal   = 'g'
	prefixAge      = 'o'
	keyUnmatched   = "g/unmatched"
	tallyFloatWord = 8 // the score sum in tally.EncodeCounts
	mergerName     = "verdict.sum.v1"
)

// Open opens (creating if needed) the store in dir. Only one process may hold it.
//
// A store whose files are damaged is refused with an error wrapping ErrCorrupt that
// names the file (a write-ahead log corrupt before its end, store files without the
// manifest marker that lists them), unless Options.Salvage is set. A torn last
// record of the newest write-ahead log, left by a crash in the middle of a write, is
// not corruption: that batch was never acknowledged.
func Open(dir string, o Options) (*Store, error) {
	if o.CacheBytes == 0 {
		o.CacheBytes = 128 << 20
	}
	s := &Store{dir: dir, opts: o, fs: o.FS, write: pebble.Sync, log: o.Logger}
	s.events.backgroundLog.Every = 10 * time.Second
	if s.fs == nil {
		s.fs = vfs.Default
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.NoSync {
		s.write = pebble.NoSync
	}
	// Opening replays the write-ahead log into a new table and starts a new log
	// (preallocated to the memtable size): on a full disk pebble would retry that
	// forever. Refuse at once instead, saying why.
	if err := s.lowDisk(); err != nil {
		return nil, fmt.Errorf("embedded: open store: %w", err)
	}
	db, err := s.openDB()
	if err != nil {
		return nil, err
	}
	s.db = db
	return s, nil
}

// Close flushes nothing extra (every commit is already in the WAL) and releases the
// directory lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	db := s.db
	s.db = nil
	if err := closeDB(db); err != nil {
		if s.failure() != nil {
			// The instance failed; its close reports that failure again.
			return nil
		}
		return fmt.Errorf("embedded: close store: %w", err)
	}
	return nil
}

// readers is how many goroutines share one Records call: point lookups that miss
// the block cache wait on reads, so overlapping them keeps the CPUs busy.
const readers = 4

// Records implements labels.Store.
func (s *Store) Records(_ context.Context, ids []string) ([]*labels.Record, error) {
	out := make([]*labels.Record, len(ids))
	err := s.use("read records", func(db *pebble.DB) error {
		if len(ids) < 64 {
			return s.read(db, ids, out)
		}
		var g errgroup.Group
		chunk := (len(ids) + readers - 1) / readers
		for lo := 0; lo < len(ids); lo += chunk {
			hi := min(lo+chunk, len(ids))
			g.Go(func() error { return s.read(db, ids[lo:hi], out[lo:hi]) })
		}
		return g.Wait()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) read(db *pebble.DB, ids []string, out []*labels.Record) (err error) {
	defer s.recoverPanic("read records", &err)
	key := make([]byte, 0, 64)
	for i, id := range ids {
		key = append(append(key[:0], prefixRecord), id...)
		v, closer, err := db.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return s.readError(fmt.Sprintf("read record %q", id), err)
		}
		r, err := labels.UnmarshalRecord(id, v)
		closer.Close()
		if err != nil {
			return fmt.Errorf("embedded: %w", err)
		}
		out[i] = r
	}
	return nil
}

// Commit implements labels.Store: one pebble batch, synced. It is refused with
// ErrDiskFull while less than Options.MinFreeBytes is free, and with ErrFailed after
// a fatal write error until Reopen.
func (s *Store) Commit(_ context.Context, c *labels.Change) error {
	return s.use("commit", func(db *pebble.DB) error {
		if err := s.checkFree(); err != nil {
			return err
		}
		b := db.NewBatch()
		defer b.Close()
		for _, rc := range c.Records {
			if r := rc.Record; r != nil {
				if err := b.Set(recordKey(r.ID), r.Marshal(), nil); err != nil {
					return fmt.Errorf("embedded: stage record %q: %w", r.ID, err)
				}
				if err := b.Set(ageKey(newest(r), r.ID), nil, nil); err != nil {
					return fmt.Errorf("embedded: stage age entry %q: %w", r.ID, err)
				}
			}
			for _, d := range rc.Due {
				if err := b.Set(dueKey(d), nil, nil); err != nil {
					return fmt.Errorf("embedded: stage maturity entry %q: %w", d.ID, err)
				}
			}
			for _, d := range rc.Undue {
				if err := b.Delete(dueKey(d), nil); err != nil {
					return fmt.Errorf("embedded: stage maturity removal %q: %w", d.ID, err)
				}
			}
		}
		for _, d := range c.Deltas() {
			v := tally.EncodeCounts(d.Counts)
			series := seriesKey(d.Key)
			if err := b.Merge(append(bucketPrefix(d.Bucket), series...), v, nil); err != nil {
				return fmt.Errorf("embedded: stage tally %v: %w", d.Key, err)
			}
			if err := b.Merge(append([]byte{prefixAllTime}, series...), v, nil); err != nil {
				return fmt.Errorf("embedded: stage tally %v: %w", d.Key, err)
			}
		}
		if n := c.Unmatched(); n != 0 {
			if err := b.Merge([]byte(keyUnmatched), int64Bytes(n), nil); err != nil {
				return fmt.Errorf("embedded: stage unmatched count: %w", err)
			}
		}
		return s.commit(b, "commit")
	})
}

// Due implements labels.Store.
func (s *Store) Due(_ context.Context, before time.Time, limit int) (out []labels.DueRef, err error) {
	err = s.use("scan maturity index", func(db *pebble.DB) error {
		upper := append([]byte{prefixDue}, sortableInt64(before.UnixNano())...)
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixDue}, UpperBound: upper})
		if err != nil {
			return fmt.Errorf("embedded: scan maturity index: %w", err)
		}
		defer it.Close()
		for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
			k := it.Key()
			if len(k) < 10 {
				continue
			}
			id, variant, found := strings.Cut(string(k[9:]), "\x00")
			if !found {
				continue
			}
			out = append(out, labels.DueRef{ID: id, Variant: variant, Time: unsortableInt64(k[1:9])})
		}
		if err := it.Error(); err != nil {
			return s.readError("scan maturity index", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Tallies implements labels.Store.
func (s *Store) Tallies(ctx context.Context, since int64, fn func(tally.Delta, bool) error) error {
	return s.use("scan tallies", func(db *pebble.DB) error {
		if err := scanTallies(s, db, []byte{prefixAllTime}, []byte{prefixAllTime + 1}, 1, true, fn); err != nil {
			return err
		}
		lower := bucketPrefix(since)
		return scanTallies(s, db, lower, []byte{prefixBucket + 1}, 9, false, fn)
	})
}

func scanTallies(s *Store, db *pebble.DB, lower, upper []byte, seriesAt int, allTime bool, fn func(tally.Delta, bool) error) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("embedded: scan tallies: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		key, err := parseSeries(k[seriesAt:])
		if err != nil {
			return fmt.Errorf("embedded: tally key %q: %w", k, err)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return s.readError(fmt.Sprintf("read tally %v", key), err)
		}
		c, err := tally.DecodeCounts(v)
		if err != nil {
			return fmt.Errorf("embedded: tally %v: %w", key, err)
		}
		d := tally.Delta{Key: key, Counts: c}
		if !allTime {
			d.Bucket = unsortableInt64(k[1:9])
		}
		if err := fn(d, allTime); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return s.readError("scan tallies", err)
	}
	return nil
}

// Unmatched implements labels.Store.
func (s *Store) Unmatched(context.Context) (n int64, err error) {
	err = s.use("read unmatched count", func(db *pebble.DB) error {
		v, closer, err := db.Get([]byte(keyUnmatched))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		}
		if err != nil {
			return s.readError("read unmatched count", err)
		}
		defer closer.Close()
		if len(v) != 8 {
			return fmt.Errorf("embedded: unmatched count has %d bytes", len(v))
		}
		n = int64(binary.LittleEndian.Uint64(v))
		return nil
	})
	return n, err
}

// DropBucketsBefore deletes bucket tallies older than t (Unix seconds); all-time
// tallies keep their contribution. It bounds the store's tally keys to the longest
// window.
func (s *Store) DropBucketsBefore(t int64) error {
	return s.use("drop bucket tallies", func(db *pebble.DB) error {
		b := db.NewBatch()
		defer b.Close()
		if err := b.DeleteRange([]byte{prefixBucket}, bucketPrefix(t), nil); err != nil {
			return fmt.Errorf("embedded: stage drop of bucket tallies before %d: %w", t, err)
		}
		if err := s.commit(b, "drop bucket tallies"); err != nil {
			return fmt.Errorf("embedded: drop bucket tallies before %d: %w", t, err)
		}
		return nil
	})
}

// Expire deletes records whose every prediction is resolved (or censored) and whose
// newest event (prediction or label time) is older than before, at most limit of
// them; it returns how many it deleted. Tallies keep their contributions. Records
// with a pending prediction, and labels still waiting for their prediction, are kept.
// A review label for a censored prediction whose record expired waits as unmatched.
//
// Consequence: a prediction replayed after its record expired would count again, so
// sources must refuse events older than the retention (ingest.DecoderConfig.MaxAge);
// the retention must exceed the latest label correction expected.
// Expire may run while the join commits; a record it deletes just as a correction
// lands loses only the record, never a count.
func (s *Store) Expire(before time.Time, limit int) (deleted int, err error) {
	err = s.use("expire records", func(db *pebble.DB) error {
		deleted, err = s.expire(db, before, limit)
		return err
	})
	return deleted, err
}

func (s *Store) expire(db *pebble.DB, before time.Time, limit int) (int, error) {
	upper := append([]byte{prefixAge}, sortableInt64(before.UnixNano())...)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixAge}, UpperBound: upper})
	if err != nil {
		return 0, fmt.Errorf("embedded: scan age index: %w", err)
	}
	defer it.Close()
	b := db.NewBatch()
	defer b.Close()
	deleted, seen := 0, 0
	done := map[string]bool{} // a record has one age entry per write time
	for ok := it.First(); ok && deleted < limit && seen < 10*limit; ok = it.Next() {
		seen++
		k := it.Key()
		if len(k) < 10 {
			continue
		}
		id := string(k[9:])
		ageEntry := append([]byte(nil), k...)
		if err := b.Delete(ageEntry, nil); err != nil {
			return deleted, fmt.Errorf("embedded: stage age removal %q: %w", id, err)
		}
		if done[id] {
			continue
		}
		done[id] = true
		v, closer, err := db.Get(recordKey(id))
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return deleted, s.readError(fmt.Sprintf("read record %q", id), err)
		}
		r, err := labels.UnmarshalRecord(id, v)
		closer.Close()
		if err != nil {
			return deleted, fmt.Errorf("embedded: %w", err)
		}
		// A newer write left a newer age entry; that one decides.
		if newest(r) >= before.UnixNano() || !expirable(r) {
			continue
		}
		if err := b.Delete(recordKey(id), nil); err != nil {
			return deleted, fmt.Errorf("embedded: stage record removal %q: %w", id, err)
		}
		deleted++
	}
	if err := it.Error(); err != nil {
		return deleted, s.readError("scan age index", err)
	}
	if b.Empty() {
		return 0, nil
	}
	if err := s.commit(b, "expire records"); err != nil {
		return 0, fmt.Errorf("embedded: commit expiry: %w", err)
	}
	return deleted, nil
}

// newest is the record's latest event time (Unix nanoseconds).
func newest(r *labels.Record) int64 {
	var t int64 = math.MinInt64
	if r.Label != nil {
		t = r.Label.Time
	}
	for _, p := range r.Preds {
		t = max(t, p.Time)
	}
	return t
}

// expirable: no prediction still open (each is resolved, errored or censored), and
// at least one prediction.
func expirable(r *labels.Record) bool {
	if len(r.Preds) == 0 {
		return false
	}
	for _, p := range r.Preds {
		if p.Open() {
			return false
		}
	}
	return true
}

func ageKey(t int64, id string) []byte {
	k := make([]byte, 0, 9+len(id))
	k = append(k, prefixAge)
	k = append(k, sortableInt64(t)...)
	return append(k, id...)
}

func recordKey(id string) []byte {
	k := make([]byte, 0, 1+len(id))
	return append(append(k, prefixRecord), id...)
}

func dueKey(d labels.DueRef) []byte {
	k := make([]byte, 0, 10+len(d.ID)+len(d.Variant))
	k = append(k, prefixDue)
	k = append(k, sortableInt64(d.Time)...)
	k = append(k, d.ID...)
	k = append(k, 0)
	return append(k, d.Variant...)
}

func bucketPrefix(bucket int64) []byte {
	return append([]byte{prefixBucket}, sortableInt64(bucket)...)
}

// seriesKey is <variant>\x00<segment key>\x00<segment>, and \x00<versus> for a pair
// series.
func seriesKey(k tally.Key) []byte {
	b := make([]byte, 0, len(k.Variant)+len(k.SegmentKey)+len(k.Segment)+len(k.Versus)+3)
	b = append(b, k.Variant...)
	b = append(b, 0)
	b = append(b, k.SegmentKey...)
	b = append(b, 0)
	b = append(b, k.Segment...)
	if k.Versus != "" {
		b = append(b, 0)
		b = append(b, k.Versus...)
	}
	return b
}

func parseSeries(b []byte) (tally.Key, error) {
	parts := bytes.SplitN(b, []byte{0}, 4)
	if len(parts) < 3 {
		return tally.Key{}, errors.New("want variant, segment key and segment")
	}
	k := tally.Key{Variant: string(parts[0]), SegmentKey: string(parts[1]), Segment: string(parts[2])}
	if len(parts) == 4 {
		if len(parts[3]) == 0 {
			return tally.Key{}, errors.New("pair series without its second variant")
		}
		k.Versus = string(parts[3])
	}
	return k, nil
}

func sortableInt64(v int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(v)^(1<<63))
}

func unsortableInt64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

func int64Bytes(v int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(v)) }

// sum is the merge operator: operands are vectors of 8-byte little-endian words,
// added word by word (the tally's score sum as float64, everything else int64).
type sum struct {
	floatWord int // -1 when no word is a float
	acc       []byte
}

func newSum(key, value []byte) (pebble.ValueMerger, error) {
	s := &sum{floatWord: -1}
	if len(key) > 0 && (key[0] == prefixBucket || key[0] == prefixAllTime) {
		s.floatWord = tallyFloatWord
	}
	s.acc = append([]byte(nil), value...)
	return s, nil
}

// add sums v into the accumulator. Operands may differ in length when a tally
// written before tally.Counts gained fields meets a newer delta: fields are appended
// words, so the shorter operand counts as zero-padded.
func (s *sum) add(v []byte) error {
	if len(v)%8 != 0 || len(s.acc)%8 != 0 {
		return fmt.Errorf("embedded: merge operands of %d and %d bytes", len(s.acc), len(v))
	}
	// A tally written before the pair cells or the censored counts existed is
	// shorter: sum it zero-extended.
	if len(v) > len(s.acc) {
		s.acc = append(s.acc, make([]byte, len(v)-len(s.acc))...)
	}
	for i := 0; i < len(v); i += 8 {
		a, b := binary.LittleEndian.Uint64(s.acc[i:]), binary.LittleEndian.Uint64(v[i:])
		if i/8 == s.floatWord {
			binary.LittleEndian.PutUint64(s.acc[i:], math.Float64bits(math.Float64frombits(a)+math.Float64frombits(b)))
		} else {
			binary.LittleEndian.PutUint64(s.acc[i:], a+b)
		}
	}
	return nil
}

func (s *sum) MergeNewer(v []byte) error { return s.add(v) }
func (s *sum) MergeOlder(v []byte) error { return s.add(v) }
func (s *sum) Finish(bool) ([]byte, io.Closer, error) {
	return s.acc, nil, nil
}

var _ labels.Store = (*Store)(nil)
