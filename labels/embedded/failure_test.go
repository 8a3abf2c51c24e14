package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/internal/faultfs"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/storetest"
	"github.com/verdictml/verdict/tally"
)

func predictions(from, n int) ingest.Batch {
	var b ingest.Batch
	for i := from; i < from+n; i++ {
		b.Predictions = append(b.Predictions, ingest.Prediction{
			InferenceID: fmt.Sprintf("id-%05d", i), Variant: "v5", Score: 0.9, Threshold: 0.5,
			Time: t0.Add(time.Duration(i) * time.Second), Attributes: map[string]string{"note": strings.Repeat("x", 80)},
		})
	}
	return b
}

// storedIDs reads which of ids have a record.
func storedIDs(t *testing.T, st *Store, ids []string) int {
	t.Helper()
	recs, err := st.Records(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r != nil {
			n++
		}
	}
	return n
}

func idRange(from, n int) []string {
	var ids []string
	for i := from; i < from+n; i++ {
		ids = append(ids, fmt.Sprintf("id-%05d", i))
	}
	return ids
}

func metric(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestCommitBelowTheReserveIsRefusedAndResumesWhenSpaceReturns(t *testing.T) {
	fs := faultfs.New()
	st, j := openJoined(t, t.TempDir(), Options{FS: fs, MinFreeBytes: 64 << 20})
	defer st.Close()
	if _, err := j.Apply(context.Background(), predictions(0, 10)); err != nil {
		t.Fatal(err)
	}
	fs.SetFree(10 << 20)
	_, err := j.Apply(context.Background(), predictions(10, 10))
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "10.0 MiB free") || !strings.Contains(err.Error(), "VERDICT_STORE_MIN_FREE_MB") {
		t.Fatalf("commit with 10 MiB free and a 64 MiB reserve: err = %v, want ErrDiskFull naming the free space and the reserve", err)
	}
	if !errors.Is(st.Health(), ErrDiskFull) {
		t.Errorf("Health() = %v, want ErrDiskFull", st.Health())
	}
	if v := metric(t, st.Collector(), "verdict_store_writable"); v != 0 {
		t.Errorf("verdict_store_writable = %v while below the reserve, want 0", v)
	}
	if v := metric(t, st.Collector(), "verdict_store_commits_refused_total"); v != 1 {
		t.Errorf("verdict_store_commits_refused_total = %v, want 1", v)
	}
	if fs.Failed() != 0 {
		t.Errorf("%d writes hit the full disk; the reserve should refuse before pebble writes", fs.Failed())
	}
	fs.Free()
	if err := st.Health(); err != nil {
		t.Fatalf("Health() after space returned: %v", err)
	}
	if _, err := j.Apply(context.Background(), predictions(10, 10)); err != nil {
		t.Fatalf("commit after space returned: %v", err)
	}
	if n := storedIDs(t, st, idRange(0, 20)); n != 20 {
		t.Fatalf("%d of 20 records stored", n)
	}
}

func TestFailedLogWriteFailsTheStoreUntilReopenAndLosesNothingAcknowledged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs := faultfs.New()
	var logs bytes.Buffer
	st, err := Open(dir, Options{FS: fs, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close() }()
	j, err := labels.Open(ctx, st, labels.Config{}, storetest.NewRecorder())
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	if _, err := j.Apply(ctx, predictions(0, 50)); err != nil {
		t.Fatal(err)
	}
	acked += 50

	// The disk fills without the reserve noticing (another process took the space).
	fs.Fill(1 << 30)
	_, err = j.Apply(ctx, predictions(50, 50))
	if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("commit on a full disk: err = %v, want ErrFailed caused by ENOSPC", err)
	}
	if !strings.Contains(logs.String(), "join store failed") {
		t.Errorf("the failure is not logged:\n%s", logs.String())
	}
	// Every call fails fast until Reopen: no read sees the batch that never reached
	// the disk.
	if _, err := st.Records(ctx, idRange(50, 1)); !errors.Is(err, ErrFailed) {
		t.Errorf("Records on a failed store: err = %v, want ErrFailed", err)
	}
	if _, err := j.Apply(ctx, predictions(100, 5)); !errors.Is(err, ErrFailed) {
		t.Errorf("Apply on a failed store: err = %v, want ErrFailed", err)
	}
	if err := st.Reopen(); err == nil {
		t.Fatal("Reopen succeeded while the disk is still full")
	}
	if v := metric(t, st.Collector(), "verdict_store_writable"); v != 0 {
		t.Errorf("verdict_store_writable = %v on a failed store, want 0", v)
	}

	fs.Free()
	if err := st.Reopen(); err != nil {
		t.Fatalf("Reopen after space returned: %v", err)
	}
	if err := st.Health(); err != nil {
		t.Fatalf("Health() after Reopen: %v", err)
	}
	if n := storedIDs(t, st, idRange(0, 50)); n != acked {
		t.Fatalf("after reopen %d of the %d acknowledged records are stored", n, acked)
	}
	if _, err := j.Apply(ctx, predictions(50, 50)); err != nil {
		t.Fatalf("resend after reopen: %v", err)
	}
	acked += 50
	var all int64
	if err := st.Tallies(ctx, 0, func(d tally.Delta, allTime bool) error {
		if allTime && d.Key.Overall() {
			all += d.Counts.Predictions
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if all != int64(acked) {
		t.Fatalf("all-time predictions in the store: %d, want the %d acknowledged", all, acked)
	}
	if v := metric(t, st.Collector(), "verdict_store_reopens_total"); v != 1 {
		t.Errorf("verdict_store_reopens_total = %v, want 1", v)
	}

	// And the directory opens cleanly afterwards with the same content.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := storedIDs(t, st, idRange(0, 100)); n != acked {
		t.Fatalf("after restart %d of %d records", n, acked)
	}
}

// openJoined opens the store in dir with o and a join over it.
func openJoined(t *testing.T, dir string, o Options) (*Store, *labels.Join) {
	t.Helper()
	st, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	j, err := labels.Open(context.Background(), st, labels.Config{}, nil)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return st, j
}

// writeStore commits n predictions, one synced commit each, and closes the store.
func writeStore(t *testing.T, dir string, n int) {
	t.Helper()
	st, j := openJoined(t, dir, Options{})
	for i := range n {
		if _, err := j.Apply(context.Background(), predictions(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func filesWithSuffix(t *testing.T, dir, suffix string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			if info, err := e.Info(); err == nil && info.Size() > 0 {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	slices.Sort(out)
	return out
}

func overwrite(t *testing.T, file string, at int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func TestWALCorruptInTheMiddleIsRefusedNamingTheFileAndSalvagedOnRequest(t *testing.T) {
	dir := t.TempDir()
	writeStore(t, dir, 400)
	logs := filesWithSuffix(t, dir, ".log")
	if len(logs) == 0 {
		t.Fatal("no write-ahead log written")
	}
	wal := logs[len(logs)-1]
	info, err := os.Stat(wal)
	if err != nil {
		t.Fatal(err)
	}
	overwrite(t, wal, info.Size()/2, bytes.Repeat([]byte{0xAB}, 64))

	_, err = Open(dir, Options{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), filepath.Base(wal)) || !strings.Contains(err.Error(), "VERDICT_STORE_RECOVERY") {
		t.Fatalf("open with a WAL corrupt in its middle: err = %v, want ErrCorrupt naming %s and the recovery setting", err, filepath.Base(wal))
	}

	st, err := Open(dir, Options{Salvage: true})
	if err != nil {
		t.Fatalf("salvage: %v", err)
	}
	defer st.Close()
	if !strings.Contains(st.Salvaged(), filepath.Base(wal)) {
		t.Errorf("Salvaged() = %q, want it to name %s", st.Salvaged(), filepath.Base(wal))
	}
	if _, err := os.Stat(wal + ".corrupt"); err != nil {
		t.Errorf("the corrupt log was not kept aside: %v", err)
	}
	n := storedIDs(t, st, idRange(0, 400))
	if n == 0 || n >= 400 {
		t.Fatalf("salvaged store holds %d of 400 records; want those before the corruption", n)
	}
	// What survived is a prefix of the commits: nothing after the cut is replayed.
	if got := storedIDs(t, st, idRange(0, n)); got != n {
		t.Fatalf("salvaged records are not the first %d commits (%d of them)", n, got)
	}
	if v := metric(t, st.Collector(), "verdict_store_salvaged"); v != 1 {
		t.Errorf("verdict_store_salvaged = %v, want 1", v)
	}
}

func TestTornLastWriteIsNotCorruption(t *testing.T) {
	dir := t.TempDir()
	writeStore(t, dir, 50)
	logs := filesWithSuffix(t, dir, ".log")
	wal := logs[len(logs)-1]
	info, err := os.Stat(wal)
	if err != nil {
		t.Fatal(err)
	}
	// A crash mid-write leaves the last record cut short.
	if err := os.Truncate(wal, info.Size()-10); err != nil {
		t.Fatal(err)
	}
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("open after a torn last write: %v", err)
	}
	defer st.Close()
	if st.Salvaged() != "" {
		t.Errorf("Salvaged() = %q for a torn tail", st.Salvaged())
	}
	if n := storedIDs(t, st, idRange(0, 50)); n < 49 {
		t.Fatalf("%d of 50 records after a torn last write; at most the last may be missing", n)
	}
}

func TestMissingManifestMarkerIsRefusedNotAnEmptyStore(t *testing.T) {
	dir := t.TempDir()
	writeStore(t, dir, 30)
	markers, _ := filepath.Glob(filepath.Join(dir, "marker.manifest.*"))
	if len(markers) != 1 {
		t.Fatalf("manifest markers: %v", markers)
	}
	if err := os.Remove(markers[0]); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "manifest marker") {
		t.Fatalf("open without the manifest marker: err = %v, want ErrCorrupt explaining the missing marker", err)
	}
	st, err := Open(dir, Options{Salvage: true})
	if err != nil {
		t.Fatalf("salvage: %v", err)
	}
	defer st.Close()
	if n := storedIDs(t, st, idRange(0, 30)); n != 30 {
		t.Fatalf("salvaged store holds %d of 30 records", n)
	}
}

func TestCorruptTableBlockFailsTheReadNotTheProcess(t *testing.T) {
	dir := t.TempDir()
	st, j := openJoined(t, dir, Options{})
	for i := 0; i < 4000; i += 500 {
		if _, err := j.Apply(context.Background(), predictions(i, 500)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	tables := filesWithSuffix(t, dir, ".sst")
	if len(tables) != 1 {
		t.Fatalf("tables: %v", tables)
	}
	info, err := os.Stat(tables[0])
	if err != nil {
		t.Fatal(err)
	}
	overwrite(t, tables[0], info.Size()*2/3, bytes.Repeat([]byte{0x5A}, 32))

	var logs bytes.Buffer
	st, err = Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		// Damage found at open is reported with the file, which is fine too.
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("open: %v", err)
		}
		return
	}
	defer st.Close()
	failed, ok := 0, 0
	for _, id := range idRange(0, 4000) {
		_, err := st.Records(context.Background(), []string{id})
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrCorrupt):
			failed++
		default:
			t.Fatalf("read %s: %v, want nil or ErrCorrupt", id, err)
		}
	}
	if failed == 0 || ok == 0 {
		t.Fatalf("reads: %d ok, %d corrupt; want the damaged block's keys to fail and the others to read", ok, failed)
	}
	if !strings.Contains(logs.String(), filepath.Base(tables[0])) {
		t.Errorf("the corruption is not logged with its file:\n%s", logs.String())
	}
	if v := metric(t, st.Collector(), "verdict_store_corruptions_total"); v == 0 {
		t.Error("verdict_store_corruptions_total did not count the corruption")
	}
	if err := st.Health(); err != nil {
		t.Errorf("a corrupt block made the store unwritable: %v", err)
	}
}

func TestOpenBelowTheReserveFailsAtOnceSayingWhy(t *testing.T) {
	fs := faultfs.New()
	fs.SetFree(1 << 20)
	_, err := Open(t.TempDir(), Options{FS: fs, MinFreeBytes: 256 << 20})
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "1.0 MiB free") {
		t.Fatalf("open with 1 MiB free and a 256 MiB reserve: %v, want ErrDiskFull naming the free space", err)
	}
}
