// Package dirbucket serves a local directory as an objectsource.Bucket: a copy synced
// from S3 (aws s3 sync keeps the key layout as paths), or a directory where a dispute
// system drops label files. Keys are slash-separated paths relative to the root.
// Hidden files and directories (a name starting with "."), where sync tools write
// partial files, are not listed.
package dirbucket

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/verdictml/verdict/ingest/objectsource"
)

// Dir is a directory served as a bucket.
type Dir struct {
	root string
}

// New serves root (which must exist) as a bucket.
func New(root string) (*Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("dirbucket: %w", err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("dirbucket: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("dirbucket: %s is not a directory", abs)
	}
	return &Dir{root: abs}, nil
}

// URL implements objectsource.Bucket: the file's path.
func (d *Dir) URL(key string) string {
	return filepath.Join(d.root, filepath.FromSlash(key)) + trailing(key)
}

func trailing(key string) string {
	if strings.HasSuffix(key, "/") || key == "" {
		return string(filepath.Separator)
	}
	return ""
}

// dirOf is the directory holding the keys that start with prefix: the prefix itself
// when it ends in "/", else its parent.
func (d *Dir) dirOf(prefix string) string {
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		return filepath.Join(d.root, filepath.FromSlash(prefix[:i]))
	}
	return d.root
}

// List implements objectsource.Bucket. It walks the directory under prefix and
// returns one page, sorted as S3 sorts keys.
func (d *Dir) List(ctx context.Context, prefix, startAfter string, fn func([]objectsource.Object) error) error {
	var objs []objectsource.Object
	start := d.dirOf(prefix)
	err := filepath.WalkDir(start, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if path == start && os.IsNotExist(err) {
				return fs.SkipAll
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if strings.HasPrefix(e.Name(), ".") && path != start {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(d.root, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) || key <= startAfter {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed while walking
			}
			return err
		}
		objs = append(objs, objectsource.Object{Key: key, Size: info.Size(), LastModified: info.ModTime().UTC(),
			ETag: fmt.Sprintf("%x-%x", info.ModTime().UnixNano(), info.Size())})
		return nil
	})
	if err != nil {
		return fmt.Errorf("dirbucket: list %s: %w", start, err)
	}
	slices.SortFunc(objs, func(a, b objectsource.Object) int { return strings.Compare(a.Key, b.Key) })
	if len(objs) == 0 {
		return nil
	}
	return fn(objs)
}

// Folders implements objectsource.Bucket.
func (d *Dir) Folders(_ context.Context, prefix string) ([]string, error) {
	entries, err := os.ReadDir(d.dirOf(prefix))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dirbucket: %w", err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		key := e.Name() + "/"
		if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
			key = prefix[:i+1] + key
		}
		if strings.HasPrefix(key, prefix) {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Open implements objectsource.Bucket.
func (d *Dir) Open(_ context.Context, key string) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(d.root, filepath.FromSlash(key)))
	if err != nil {
		return nil, fmt.Errorf("dirbucket: %w", err) // os errors wrap fs.ErrNotExist
	}
	return f, nil
}
