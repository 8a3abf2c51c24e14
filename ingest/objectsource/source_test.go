package objectsource_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/ingest/objectsource"
	"github.com/verdictml/verdict/ingest/objectsource/dirbucket"
)

// join is an idempotent stand-in for the join: first prediction per (id, variant),
// labels by id; it counts how often each event was applied.
type join struct {
	mu      sync.Mutex
	preds   map[string]ingest.Prediction
	labels  map[string]ingest.Label
	applied int
	fail    func(ingest.Batch) error
}

func newJoin() *join {
	return &join{preds: map[string]ingest.Prediction{}, labels: map[string]ingest.Label{}}
}

func (j *join) Apply(_ context.Context, b ingest.Batch) (ingest.Result, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		if err := j.fail(b); err != nil {
			return ingest.Result{}, err
		}
	}
	var r ingest.Result
	for _, p := range b.Predictions {
		j.applied++
		k := p.InferenceID + "/" + p.Variant
		if _, ok := j.preds[k]; ok {
			r.Duplicates++
			continue
		}
		j.preds[k] = p
		r.Applied++
	}
	for _, l := range b.Labels {
		j.applied++
		if cur, ok := j.labels[l.InferenceID]; ok && cur == l {
			r.Duplicates++
			continue
		}
		j.labels[l.InferenceID] = l
		r.Applied++
	}
	return r, nil
}

func (j *join) counts() (preds, labels, applied int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.preds), len(j.labels), j.applied
}

// captureLine is a Data Capture record with a CSV score.
func captureLine(id string, score float64, at time.Time) string {
	return fmt.Sprintf(`{"captureData":{"endpointOutput":{"observedContentType":"text/csv","mode":"OUTPUT","data":"%g","encoding":"CSV"}},`+
		`"eventMetadata":{"eventId":"e-%s","inferenceId":"%s","inferenceTime":"%s"},"eventVersion":"0"}`, score, id, id, at.UTC().Format(time.RFC3339))
}

// writeObject writes a file under root at key, gzip'd when the key ends in .gz.
func writeObject(t *testing.T, root, key string, lines []string, mtime time.Time) {
	t.Helper()
	path := filepath.Join(root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Join(lines, "\n") + "\n")
	if strings.HasSuffix(key, ".gz") {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
		data = buf.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	root, state string
	bucket      *dirbucket.Dir
	join        *join
	hour        time.Time
	reg         prometheus.Registerer // nil: no metrics
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	b, err := dirbucket.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{root: root, state: t.TempDir(), bucket: b, join: newJoin(), hour: time.Now().UTC().Truncate(time.Hour).Add(-5 * time.Hour)}
}

// captures writes n captures of variant folder v at hour offset h, ids prefixed.
func (f *fixture) captures(t *testing.T, v string, h int, file string, ids ...string) {
	t.Helper()
	at := f.hour.Add(time.Duration(h) * time.Hour)
	var lines []string
	for _, id := range ids {
		lines = append(lines, captureLine(id, 0.5, at.Add(time.Minute)))
	}
	key := fmt.Sprintf("dc/fraud-ep/%s/%s/%s", v, at.Format("2006/01/02/15"), file)
	writeObject(t, f.root, key, lines, at.Add(10*time.Minute))
}

func (f *fixture) source(t *testing.T, dead objectsource.DeadLetters) *objectsource.Source {
	t.Helper()
	dec, err := ingest.NewDecoder(ingest.DecoderConfig{LabelCSV: ingest.LabelCSVConfig{Values: map[string]bool{"fraud": true, "legit": false}}})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := objectsource.NewDirClaims(f.state, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := objectsource.New(objectsource.Config{
		Prefixes: []objectsource.Prefix{
			{Bucket: f.bucket, Prefix: "dc/", Kind: ingest.KindPrediction},
			{Bucket: f.bucket, Prefix: "labels/", Kind: ingest.KindLabel},
		},
		Decoder: dec, Sink: f.join, Claims: claims, DeadLetters: dead,
		Variant:      func(_, folder string) string { return map[string]string{"AllTraffic": "v5"}[folder] + folder },
		Lookback:     2 * time.Hour,
		PollInterval: 20 * time.Millisecond, BatchSize: 3,
		Logger:     slog.New(slog.DiscardHandler),
		Registerer: f.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs a source until it has read want objects in total, then stops it.
func run(t *testing.T, s *objectsource.Source, want int) objectsource.Totals {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for s.Totals().Objects < want {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("read %d objects, want %d", s.Totals().Objects, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A few more listings: nothing else may be read.
	time.Sleep(150 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return s.Totals()
}

func TestEveryObjectIsReadOnceAcrossRestartsAndLateArrivals(t *testing.T) {
	f := newFixture(t)
	f.captures(t, "AllTraffic", 0, "00-01-000-a.jsonl", "t1", "t2")
	f.captures(t, "AllTraffic", 1, "10-00-000-b.jsonl.gz", "t3", "t4", "t5")
	f.captures(t, "Shadow", 0, "00-02-000-a.jsonl", "t1", "t2")
	f.captures(t, "Shadow", 1, "10-00-000-b.jsonl", "t3", "t4", "t5")
	writeObject(t, f.root, "labels/2026-01-01.csv", []string{"inference_id,label,time", "t1,fraud,2026-01-01T00:00:00Z", "t2,legit,2026-01-01T00:00:00Z"}, f.hour)

	tot := run(t, f.source(t, nil), 5)
	if p, l, applied := f.join.counts(); p != 10 || l != 2 || applied != 12 || tot.Duplicates != 0 {
		t.Fatalf("after the first run: %d predictions, %d labels, %d applications, %d duplicates; want 10, 2, 12, 0", p, l, applied, tot.Duplicates)
	}

	// Restart: nothing is read again. Then new objects: a later hour, and a late
	// object in an older hour within the lookback (sorting before the ones read).
	f.captures(t, "AllTraffic", 3, "00-00-000-c.jsonl", "t6")
	f.captures(t, "AllTraffic", 1, "00-00-000-late.jsonl", "t7")
	writeObject(t, f.root, "labels/2026-01-02.csv", []string{"inference_id,label,time", "t6,fraud,2026-01-02T00:00:00Z"}, f.hour.Add(3*time.Hour))
	s := f.source(t, nil)
	tot = run(t, s, 3)
	p, l, applied := f.join.counts()
	if p != 12 || l != 3 || applied != 15 || tot.Duplicates != 0 || tot.Objects != 3 {
		t.Errorf("after the restart: %d predictions, %d labels, %d applications, %d duplicates, %d objects; want 12, 3, 15, 0, 3", p, l, applied, tot.Duplicates, tot.Objects)
	}
	if got := f.join.preds["t7/v5AllTraffic"]; got.Variant != "v5AllTraffic" {
		t.Errorf("late object within the lookback: %+v", got)
	}

	// Now hour 3 is the newest read: hour 1 is still within the 2 h lookback, hour 0 is
	// not (the documented rule: such an object is only read when a notification
	// announces it).
	f.captures(t, "AllTraffic", 1, "59-00-000-late.jsonl", "t8")
	f.captures(t, "AllTraffic", 0, "59-00-000-too-late.jsonl", "t9")
	tot = run(t, f.source(t, nil), 1)
	if _, ok := f.join.preds["t9/v5AllTraffic"]; ok || tot.Objects != 1 {
		t.Errorf("read %d objects; an object older than the lookback behind the newest hour was read: %v", tot.Objects, ok)
	}
	if _, ok := f.join.preds["t8/v5AllTraffic"]; !ok {
		t.Errorf("late object within the lookback not read")
	}
}

func TestDamagedObjectsAndBadLinesBecomeDeadLetters(t *testing.T) {
	f := newFixture(t)
	f.captures(t, "AllTraffic", 0, "a.jsonl", "t1")
	at := f.hour.Add(time.Minute)
	writeObject(t, f.root, "dc/fraud-ep/AllTraffic/"+f.hour.Format("2006/01/02/15")+"/b.jsonl", []string{
		captureLine("t2", 0.5, at), `{"captureData":{}}`, captureLine("t3", 1.5, at), "not json",
	}, f.hour)
	// A gzip stream cut short: the lines before the cut count, the object is dead-lettered.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for i := range 200 {
		fmt.Fprintln(zw, captureLine(fmt.Sprintf("g%d", i), 0.5, at))
	}
	zw.Close()
	cut := filepath.Join(f.root, "dc/fraud-ep/AllTraffic", f.hour.Format("2006/01/02/15"), "c.jsonl.gz")
	if err := os.WriteFile(cut, buf.Bytes()[:buf.Len()/2], 0o644); err != nil {
		t.Fatal(err)
	}
	dead, err := objectsource.NewDirDeadLetters(filepath.Join(f.state, "dead"))
	if err != nil {
		t.Fatal(err)
	}
	tot := run(t, f.source(t, dead), 3)
	if tot.Rejected != 3 || tot.DeadObjects != 1 {
		t.Errorf("rejected %d lines and %d objects, want 3 and 1", tot.Rejected, tot.DeadObjects)
	}
	letters, err := os.ReadFile(dead.Path(f.bucket.URL("dc/fraud-ep/AllTraffic/" + f.hour.Format("2006/01/02/15") + "/b.jsonl")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"line":2`, `"line":3`, `"line":4`, "score 1.5 is outside [0, 1]", `"raw":"not json"`} {
		if !strings.Contains(string(letters), want) {
			t.Errorf("dead letters of b.jsonl lack %q:\n%s", want, letters)
		}
	}
	cutLetters, err := os.ReadFile(dead.Path(cut))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cutLetters), `"class":"unreadable_object"`) || !strings.Contains(string(cutLetters), "damaged after line") {
		t.Errorf("dead letter of the cut gzip object: %s", cutLetters)
	}
	if p, _, _ := f.join.counts(); p < 3 || p >= 203 {
		t.Errorf("%d predictions: want the good lines of a and b plus the readable start of c", p)
	}
}

func TestAFailedCommitReadsTheObjectAgainLater(t *testing.T) {
	f := newFixture(t)
	f.captures(t, "AllTraffic", 0, "a.jsonl", "t1", "t2", "t3", "t4")
	calls := 0
	f.join.fail = func(ingest.Batch) error {
		calls++
		if calls == 2 { // the second batch of the first read fails
			return fmt.Errorf("disk full")
		}
		return nil
	}
	tot := run(t, f.source(t, nil), 1)
	if p, _, applied := f.join.counts(); p != 4 || applied != 7 || tot.Duplicates != 3 {
		t.Errorf("%d predictions, %d applications, %d duplicates; want 4 (once each), 7 (3 before the failure, 4 again), 3", p, applied, tot.Duplicates)
	}
}

// gauges sums each verdict_objects gauge over the source's partitions.
func gauges(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if m.GetGauge() != nil {
				out[f.GetName()] += m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestObjectsBehindCountWhatTheRoundHasStillToRead(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	f.reg = reg
	keys := []string{"a.jsonl", "b.jsonl", "c.jsonl"}
	for h, k := range keys {
		f.captures(t, "AllTraffic", h, k, fmt.Sprintf("t%d", h))
	}
	// Independent recount: the files as written, oldest first.
	var sizes []int64
	var mtimes []time.Time
	for h, k := range keys {
		path := filepath.Join(f.root, "dc", "fraud-ep", "AllTraffic", filepath.FromSlash(f.hour.Add(time.Duration(h)*time.Hour).Format("2006/01/02/15")), k)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, fi.Size())
		mtimes = append(mtimes, fi.ModTime())
	}
	// Each object is one batch: at the i-th apply, objects i.. are still to read (the
	// one being read included).
	type seen struct {
		behind, bytes, age, oldestLo, oldestHi float64
	}
	var at []seen
	f.join.fail = func(ingest.Batch) error {
		i := len(at)
		lo := time.Since(mtimes[min(i, len(mtimes)-1)]).Seconds()
		g := gauges(t, reg)
		hi := time.Since(mtimes[min(i, len(mtimes)-1)]).Seconds()
		at = append(at, seen{g["verdict_objects_behind"], g["verdict_objects_behind_bytes"], g["verdict_objects_oldest_unread_age_seconds"], lo, hi})
		return nil
	}
	s := f.source(t, nil)
	run(t, s, len(keys))
	if len(at) != len(keys) {
		t.Fatalf("%d applies, want %d (one per object)", len(at), len(keys))
	}
	for i, got := range at {
		var bytes int64
		for _, n := range sizes[i:] {
			bytes += n
		}
		if got.behind != float64(len(keys)-i) || got.bytes != float64(bytes) {
			t.Errorf("reading object %d: %v behind, %v bytes; want %d, %d", i, got.behind, got.bytes, len(keys)-i, bytes)
		}
		if got.age < got.oldestLo-1 || got.age > got.oldestHi+1 {
			t.Errorf("reading object %d: oldest unread age %.1f s, want the age of %s (%.1f s)", i, got.age, keys[i], got.oldestHi)
		}
	}
	if g := gauges(t, reg); g["verdict_objects_behind"] != 0 || g["verdict_objects_behind_bytes"] != 0 || g["verdict_objects_oldest_unread_age_seconds"] != 0 {
		t.Errorf("after the round: %v; want nothing behind", g)
	}
}
