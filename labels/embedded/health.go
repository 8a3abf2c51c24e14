package embedded

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/atomicfs"
	"github.com/cockroachdb/pebble/v2/wal"
	"github.com/verdictml/verdict/internal/logevery"
)

// Errors the store's calls wrap, for callers that react to them (errors.Is).
var (
	// ErrFailed: the store stopped after an error pebble cannot continue from (a
	// failed write to its write-ahead log, typically a full disk). Every call fails
	// with it until Reopen succeeds. Nothing acknowledged is lost.
	ErrFailed = errors.New("embedded: store failed")
	// ErrDiskFull: a commit was refused because less than Options.MinFreeBytes is
	// free. Nothing was written; the commit can be retried once space is freed.
	ErrDiskFull = errors.New("embedded: disk full")
	// ErrCorrupt: the store's files are damaged, found at open or by a read.
	ErrCorrupt = errors.New("embedded: store corrupt")
)

// storeEvents counts what went wrong, for the Collector.
type storeEvents struct {
	failures, refusals, corruptions, backgroundErrors, reopens atomic.Int64

	// backgroundLog logs failed background jobs at most every 10 s.
	backgroundLog logevery.Limiter
}

// use runs fn with the pebble instance unless the store failed. A panic inside pebble
// (its fatal errors are panics) fails the store instead of the process.
func (s *Store) use(what string, fn func(db *pebble.DB) error) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.failure(); err != nil {
		return err
	}
	if s.db == nil {
		return fmt.Errorf("embedded: %s: store is closed", what)
	}
	defer s.recoverPanic(what, &err)
	return fn(s.db)
}

// recoverPanic turns a panic into a failure of the store, in *err.
func (s *Store) recoverPanic(what string, err *error) {
	if p := recover(); p != nil {
		*err = s.fail(fmt.Errorf("%s: %w", what, panicError(p)))
	}
}

// commit applies b durably. pebble treats a failed write-ahead-log write or sync as
// fatal (its commit pipeline cannot continue, and the batch may be visible to reads
// though not on disk): the store fails until Reopen.
func (s *Store) commit(b *pebble.Batch, what string) (err error) {
	defer s.recoverPanic(what, &err)
	if err := b.Commit(s.write); err != nil {
		return fmt.Errorf("embedded: %s: %w", what, err)
	}
	return nil
}

// fail records why the store stopped (the first cause wins) and returns the error
// every call gets until Reopen.
func (s *Store) fail(cause error) error {
	err := fmt.Errorf("%w: %w; refusing reads and writes until it is reopened", ErrFailed, cause)
	if s.failed.CompareAndSwap(nil, &err) {
		s.events.failures.Add(1)
		s.log.Error("join store failed; ingest answers 503 until it is reopened (automatic once the cause is gone)",
			"dir", s.dir, "err", cause, "disk_full", errors.Is(cause, syscall.ENOSPC))
		return err
	}
	return *s.failed.Load()
}

func (s *Store) failure() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// readError wraps a read error, marking corruption.
func (s *Store) readError(what string, err error) error {
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, what, err)
	}
	return fmt.Errorf("embedded: %s: %w", what, err)
}

// FreeBytes is the space available to the store on its filesystem; ok is false when
// the filesystem cannot tell.
func (s *Store) FreeBytes() (free uint64, ok bool) {
	du, err := s.fs.GetDiskUsage(s.dir)
	if err != nil {
		return 0, false
	}
	return du.AvailBytes, true
}

// lowDisk says why the free space is below the reserve, or nil.
func (s *Store) lowDisk() error {
	if s.opts.MinFreeBytes <= 0 {
		return nil
	}
	free, ok := s.FreeBytes()
	return s.belowReserve(free, ok)
}

// belowReserve is lowDisk for a free space already read (ok false: unknown).
func (s *Store) belowReserve(free uint64, ok bool) error {
	if !ok || s.opts.MinFreeBytes <= 0 || free >= uint64(s.opts.MinFreeBytes) {
		return nil
	}
	return fmt.Errorf("%w: %s free in %s, below the reserve of %s (VERDICT_STORE_MIN_FREE_MB); free space or grow the volume and ingest resumes by itself",
		ErrDiskFull, mib(free), s.dir, mib(uint64(s.opts.MinFreeBytes)))
}

// checkFree refuses a commit while the disk is below the reserve.
func (s *Store) checkFree() error {
	err := s.lowDisk()
	if err != nil {
		s.events.refusals.Add(1)
	}
	return err
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Health is nil while the store accepts writes, else why it does not: ErrFailed
// (until Reopen) or ErrDiskFull (until space is freed).
func (s *Store) Health() error {
	if err := s.failure(); err != nil {
		return err
	}
	return s.lowDisk()
}

// Salvaged says what Options.Salvage cut away when the store was opened ("" when
// nothing): the store may miss events that were acknowledged.
func (s *Store) Salvaged() string { return s.salvaged }

// Reopen replaces a failed pebble instance with a fresh one opened from disk: the
// write-ahead log is replayed, so the store holds exactly what was durably
// committed (a batch whose write failed may or may not be among it). It does nothing
// on a healthy store and refuses while the disk is below the reserve.
//
// Nothing else may use the store meanwhile for what it derives from it to stay
// consistent: run Reopen inside labels.Join.Exclusive and rebuild the windows from
// the store's tallies before commits resume.
func (s *Store) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cause := s.failure()
	if cause == nil {
		return nil
	}
	if err := s.lowDisk(); err != nil {
		return fmt.Errorf("embedded: reopen: %w", err)
	}
	if s.db != nil {
		// The failed instance reports its failure again; its files are what counts.
		if err := closeDB(s.db); err != nil {
			s.log.Debug("closing the failed join store", "err", err)
		}
		s.db = nil
	}
	db, err := s.openDB()
	if err != nil {
		return fmt.Errorf("embedded: reopen: %w", err)
	}
	s.db = db
	s.failed.Store(nil)
	s.events.reopens.Add(1)
	s.log.Info("join store reopened; ingest resumes", "dir", s.dir, "after", cause)
	return nil
}

func closeDB(db *pebble.DB) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError(p)
		}
	}()
	return db.Close()
}

// pebbleOptions are the store's pebble settings. errorIfNotExists is set when the
// directory already holds store files, so a lost manifest marker is not mistaken for
// an empty directory.
func (s *Store) pebbleOptions(errorIfNotExists bool) (*pebble.Options, *pebble.Cache) {
	cache := pebble.NewCache(s.opts.CacheBytes)
	opts := &pebble.Options{
		FS:           s.fs,
		Cache:        cache,
		MemTableSize: 64 << 20,
		Merger:       &pebble.Merger{Name: mergerName, Merge: newSum},
		Logger:       pebbleLogger{s.log},
		// The newest format writes synced offsets into the write-ahead log, so a
		// corrupt record before the end of the log is told apart from a torn last
		// write (the default format cannot, and silently drops the rest), and checks
		// table footers. Opening an older store upgrades it.
		FormatMajorVersion: pebble.FormatNewest,
		ErrorIfNotExists:   errorIfNotExists,
		EventListener: &pebble.EventListener{
			DataCorruption:  s.onCorruption,
			BackgroundError: s.onBackgroundError,
		},
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return opts, cache
}

// openDB opens pebble in the store's directory, refusing (or, with Salvage,
// repairing) a damaged store.
func (s *Store) openDB() (*pebble.DB, error) {
	for attempt := 0; ; attempt++ {
		files, err := s.storeFiles()
		if err != nil {
			return nil, fmt.Errorf("embedded: open store in %s: %w", s.dir, err)
		}
		opts, cache := s.pebbleOptions(len(files) > 0)
		before := s.formatVersion()
		db, err := openRecovering(s.dir, opts)
		cache.Unref()
		if err == nil {
			if before < pebble.FormatWALSyncChunks {
				// The log pebble opened was created before the format was raised, so it
				// carries no synced offsets: start a new one that does.
				if err := db.Flush(); err != nil {
					closeDB(db)
					return nil, fmt.Errorf("embedded: open store in %s: start a new write-ahead log: %w", s.dir, err)
				}
			}
			return db, nil
		}
		if attempt > 0 || !(errors.Is(err, pebble.ErrDBDoesNotExist) || pebble.IsCorruptionError(err)) {
			return nil, s.openError(err)
		}
		var damage string
		if errors.Is(err, pebble.ErrDBDoesNotExist) {
			damage, err = s.missingMarker(files)
		} else {
			damage, err = s.corruptWAL(err)
		}
		if err != nil {
			return nil, err
		}
		s.salvaged = damage
		s.log.Error("join store salvaged (VERDICT_STORE_RECOVERY=salvage): it may miss acknowledged events; resend them from your source (ingest is idempotent)",
			"dir", s.dir, "damage", damage)
	}
}

// formatVersion is the store's format major version on disk (0 for a new store).
func (s *Store) formatVersion() pebble.FormatMajorVersion {
	v, err := atomicfs.ReadMarker(s.fs, s.dir, "format-version")
	if err != nil || v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0
	}
	return pebble.FormatMajorVersion(n)
}

func openRecovering(dir string, opts *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %w", pebble.ErrCorruption, panicError(p))
		}
	}()
	return pebble.Open(dir, opts)
}

func (s *Store) openError(err error) error {
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, s.dir, err)
	}
	return fmt.Errorf("embedded: open store in %s: %w", s.dir, err)
}

// storeFiles lists the files in the directory that only a pebble store writes.
func (s *Store) storeFiles() ([]string, error) {
	names, err := s.fs.List(s.dir)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, "MANIFEST-") || strings.HasPrefix(n, "OPTIONS-") ||
			strings.HasSuffix(n, ".sst") || strings.HasSuffix(n, ".log") || strings.HasSuffix(n, ".blob") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// missingMarker handles store files without the manifest marker: pebble would start
// an empty store beside them. Without Salvage it refuses; with it, the marker is
// pointed at the newest manifest.
func (s *Store) missingMarker(files []string) (string, error) {
	var manifests []string
	for _, f := range files {
		if strings.HasPrefix(f, "MANIFEST-") {
			manifests = append(manifests, f)
		}
	}
	shown := files[:min(len(files), 5)]
	if !s.opts.Salvage || len(manifests) == 0 {
		why := "refusing to start an empty store beside them"
		if s.opts.Salvage {
			why = "no MANIFEST file is left to salvage from"
		}
		return "", fmt.Errorf("%w: %s holds store files (%s) but no manifest marker (marker.manifest.*) saying which of them are live; %s. "+
			"Restore the directory from a backup, or start once with VERDICT_STORE_RECOVERY=salvage to use the newest manifest (docs/operations.md)",
			ErrCorrupt, s.dir, strings.Join(shown, ", "), why)
	}
	newest := manifests[len(manifests)-1] // zero-padded numbers sort in order
	m, _, err := atomicfs.LocateMarker(s.fs, s.dir, "manifest")
	if err != nil {
		return "", fmt.Errorf("embedded: salvage %s: locate manifest marker: %w", s.dir, err)
	}
	defer m.Close()
	if err := m.Move(newest); err != nil {
		return "", fmt.Errorf("embedded: salvage %s: point the manifest marker at %s: %w", s.dir, newest, err)
	}
	return fmt.Sprintf("manifest marker was missing; pointed at %s", newest), nil
}

// corruptWAL finds the write-ahead logs pebble refused as corrupt. Without Salvage
// it names them; with it, each is copied aside (name.corrupt) and cut at the first
// corrupt record, so everything before it is replayed and everything after is lost.
func (s *Store) corruptWAL(openErr error) (string, error) {
	logs, err := wal.Scan(wal.Dir{FS: s.fs, Dirname: s.dir})
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w (listing its write-ahead logs also failed: %v)", ErrCorrupt, s.dir, openErr, err)
	}
	type damage struct {
		file   string
		offset int64
		err    error
	}
	var found []damage
	for _, ll := range logs {
		r := ll.OpenForRead()
		for {
			_, off, err := r.NextRecord()
			if err == nil {
				continue
			}
			if errors.Is(err, record.ErrInvalidChunk) || errors.Is(err, record.ErrZeroedChunk) {
				found = append(found, damage{off.PhysicalFile, off.Physical, err})
			}
			break
		}
		r.Close()
	}
	if len(found) == 0 {
		return "", fmt.Errorf("%w: %s: %w", ErrCorrupt, s.dir, openErr)
	}
	var desc []string
	for _, d := range found {
		desc = append(desc, fmt.Sprintf("%s at byte %d (%v)", d.file, d.offset, d.err))
	}
	if !s.opts.Salvage {
		return "", fmt.Errorf("%w: write-ahead log corrupt before its end: %s. Records after that point were acknowledged and would be lost, "+
			"so the store refuses to start. Restore the directory from a backup, or start once with VERDICT_STORE_RECOVERY=salvage "+
			"to keep what precedes the corruption and resend the rest (docs/operations.md)",
			ErrCorrupt, strings.Join(desc, "; "))
	}
	for _, d := range found {
		if err := s.cutWAL(d.file, d.offset); err != nil {
			return "", err
		}
	}
	return "write-ahead log cut at its corruption: " + strings.Join(desc, "; "), nil
}

// cutWAL copies a corrupt log to file.corrupt and truncates it at offset.
func (s *Store) cutWAL(file string, offset int64) error {
	backup := file + ".corrupt"
	if err := vfs.CopyAcrossFS(s.fs, file, s.fs, backup); err != nil {
		return fmt.Errorf("embedded: salvage: back up %s: %w", file, err)
	}
	f, err := s.fs.OpenReadWrite(file, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("embedded: salvage: open %s: %w", file, err)
	}
	defer f.Close()
	t, ok := f.(interface{ Truncate(int64) error })
	if !ok {
		return fmt.Errorf("embedded: salvage: cannot truncate %s on this filesystem", file)
	}
	if err := t.Truncate(offset); err != nil {
		return fmt.Errorf("embedded: salvage: cut %s at byte %d: %w", file, offset, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("embedded: salvage: sync %s: %w", file, err)
	}
	return nil
}

// onCorruption is pebble's report of a damaged block found by a read or a
// compaction. The read fails with an error (ErrCorrupt); the process goes on. pebble's
// default handler would end the process.
func (s *Store) onCorruption(info pebble.DataCorruptionInfo) {
	s.events.corruptions.Add(1)
	s.log.Error("join store: on-disk corruption; reads of the damaged keys fail (restore from a backup, see docs/operations.md)",
		"file", info.Path, "err", info.Details)
}

// backgroundBackoff slows pebble's retries of failed flushes and compactions on a full
// disk: pebble retries them at once, which would spin a core and flood the log.
const backgroundBackoff = 250 * time.Millisecond

// onBackgroundError is pebble's report of a failed flush, compaction or table-stats
// job; pebble retries them. It is logged at most every 10 s with a count.
func (s *Store) onBackgroundError(err error) {
	s.events.backgroundErrors.Add(1)
	if ok, skipped, _ := s.events.backgroundLog.Allow(); ok {
		s.log.Error("join store background job failed (pebble retries it)", "err", err, "similar_since_last_report", skipped,
			"disk_full", errors.Is(err, syscall.ENOSPC))
	}
	if errors.Is(err, syscall.ENOSPC) {
		time.Sleep(backgroundBackoff)
	}
}

// fatalError is what pebbleLogger.Fatalf panics with: pebble's message and the error
// among its arguments, so errors.Is finds the cause (syscall.ENOSPC).
type fatalError struct {
	msg   string
	cause error
}

func (e *fatalError) Error() string { return e.msg }
func (e *fatalError) Unwrap() error { return e.cause }

func panicError(p any) error {
	if err, ok := p.(error); ok {
		return err
	}
	return fmt.Errorf("%v", p)
}

// pebbleLogger drops pebble's informational logs and passes its errors to slog.
type pebbleLogger struct{ l *slog.Logger }

func (pebbleLogger) Infof(string, ...any) {}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf is pebble's report of an error it cannot continue from; pebble's code after
// it assumes it does not return, so it panics. On the commit path the store recovers
// the panic and fails itself (Reopen starts afresh); in pebble's own background
// goroutines it ends the process, and the write-ahead log keeps every acknowledged
// commit.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	e := &fatalError{msg: fmt.Sprintf(format, args...)}
	if !strings.HasPrefix(e.msg, "pebble") {
		e.msg = "pebble: " + e.msg
	}
	for _, a := range args {
		if err, ok := a.(error); ok {
			e.cause = err
			break
		}
	}
	p.l.Error("pebble: fatal error", "err", e.msg)
	panic(e)
}

var _ io.Closer = (*Store)(nil)
