package objectsource

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/ingest/filesource"
)

// DeadLetter is a rejected line of an object, or (Rejection.Line 0, class
// unreadable_object) a whole object that could not be read.
type DeadLetter struct {
	// Object is the object's URL (s3://bucket/key, or a file path).
	Object       string
	ETag         string
	LastModified time.Time
	Kind         ingest.Kind
	Rejection    ingest.Rejection
}

// DeadLetters stores dead letters. An object's letters come in line order, over
// one or more Put calls, then one Flush; reading an object again (after a crash before
// its checkpoint) yields the same letters again, which must replace, not add to, the
// first ones. Flush must make them durable: the object's checkpoint follows it.
type DeadLetters interface {
	Put(ctx context.Context, letters []DeadLetter) error
	Flush(ctx context.Context, object string) error
}

// DirDeadLetters writes each object's dead letters as one NDJSON file under a
// directory, at the object's URL as a path (dir/s3/bucket/key.ndjson): readable with
// any tool, replaced whole when the object is read again.
type DirDeadLetters struct {
	dir  string
	mu   sync.Mutex
	open map[string]*deadFile
}

type deadFile struct {
	tmp      *os.File
	w        *bufio.Writer
	enc      *json.Encoder
	lastLine int
}

// NewDirDeadLetters returns dead letters kept under dir (created if missing).
func NewDirDeadLetters(dir string) (*DirDeadLetters, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("objectsource: dead-letter directory: %w", err)
	}
	return &DirDeadLetters{dir: dir, open: map[string]*deadFile{}}, nil
}

// fileLetter is one line of a dead-letter file.
type fileLetter struct {
	Object       string    `json:"object"`
	ETag         string    `json:"etag,omitempty"`
	LastModified time.Time `json:"last_modified,omitzero"`
	filesource.DeadLetter
}

// Path is the file that holds (or will hold) object's dead letters.
func (d *DirDeadLetters) Path(object string) string {
	scheme, rest, ok := strings.Cut(object, "://")
	if !ok {
		scheme, rest = "file", object
	}
	segs := []string{d.dir, url.PathEscape(scheme)}
	for _, seg := range strings.Split(rest, "/") {
		if seg == "" {
			continue
		}
		if seg == "." || seg == ".." {
			seg = strings.ReplaceAll(seg, ".", "%2E")
		}
		segs = append(segs, url.PathEscape(seg))
	}
	return filepath.Join(segs...) + ".dead.ndjson"
}

// Put implements DeadLetters. Letters go to a temporary file that Flush renames.
func (d *DirDeadLetters) Put(_ context.Context, letters []DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range letters {
		f, ok := d.open[l.Object]
		if ok && l.Rejection.Line > 0 && l.Rejection.Line <= f.lastLine {
			// The object is being read again after a failed read: start over.
			f.tmp.Close()
			os.Remove(f.tmp.Name())
			delete(d.open, l.Object)
			ok = false
		}
		if !ok {
			path := d.Path(l.Object)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return fmt.Errorf("dead letters of %s: %w", l.Object, err)
			}
			tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
			if err != nil {
				return fmt.Errorf("dead letters of %s: %w", l.Object, err)
			}
			f = &deadFile{tmp: tmp, w: bufio.NewWriter(tmp)}
			f.enc = json.NewEncoder(f.w)
			d.open[l.Object] = f
		}
		rec := fileLetter{Object: l.Object, ETag: l.ETag, LastModified: l.LastModified, DeadLetter: filesource.NewDeadLetter(l.Kind, l.Rejection)}
		if err := f.enc.Encode(rec); err != nil {
			return fmt.Errorf("dead letters of %s: %w", l.Object, err)
		}
		f.lastLine = max(f.lastLine, l.Rejection.Line)
	}
	return nil
}

// Flush implements DeadLetters: the object's letters replace its earlier file, if any.
// An object without letters keeps no file.
func (d *DirDeadLetters) Flush(_ context.Context, object string) error {
	d.mu.Lock()
	f, ok := d.open[object]
	delete(d.open, object)
	d.mu.Unlock()
	if !ok {
		return nil
	}
	defer os.Remove(f.tmp.Name())
	err := f.w.Flush()
	if err == nil {
		err = f.tmp.Sync()
	}
	if cerr := f.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		path := d.Path(object)
		if err = os.Rename(f.tmp.Name(), path); err == nil {
			err = syncDir(filepath.Dir(path))
		}
	}
	if err != nil {
		return fmt.Errorf("dead letters of %s: %w", object, err)
	}
	return nil
}

// WriterDeadLetters appends every dead letter to one NDJSON stream (verdict replay's
// --dead-letters file). An object read again adds its letters again.
type WriterDeadLetters struct {
	mu  sync.Mutex
	w   *bufio.Writer
	enc *json.Encoder
}

// NewWriterDeadLetters writes dead letters to w.
func NewWriterDeadLetters(w io.Writer) *WriterDeadLetters {
	bw := bufio.NewWriter(w)
	return &WriterDeadLetters{w: bw, enc: json.NewEncoder(bw)}
}

// Put implements DeadLetters.
func (d *WriterDeadLetters) Put(_ context.Context, letters []DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range letters {
		rec := fileLetter{Object: l.Object, ETag: l.ETag, LastModified: l.LastModified, DeadLetter: filesource.NewDeadLetter(l.Kind, l.Rejection)}
		if err := d.enc.Encode(rec); err != nil {
			return fmt.Errorf("dead letters of %s: %w", l.Object, err)
		}
	}
	return nil
}

// Flush implements DeadLetters.
func (d *WriterDeadLetters) Flush(context.Context, string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.w.Flush(); err != nil {
		return fmt.Errorf("write dead letters: %w", err)
	}
	return nil
}
