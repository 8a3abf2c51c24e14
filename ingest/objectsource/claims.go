package objectsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/verdictml/verdict/ingest/lease"
)

// Claim is a partition this instance reads, and its checkpoint.
type Claim interface {
	Key() string
	// Checkpoint is the checkpoint last saved ("" or "{}" for none).
	Checkpoint() string
	// Save stores the checkpoint durably. It fails (and the claim's work context
	// ends) when the partition is no longer this instance's.
	Save(ctx context.Context, checkpoint string) error
}

// Claims decides which partitions this instance reads.
type Claims interface {
	// Run asks keys for the partitions (at start and periodically) and calls work in a
	// goroutine of its own for each partition this instance claims, with a context that
	// ends when the claim ends. It returns when ctx ends and every work has returned,
	// or — Leased — once the lease group's ShutdownTimeout has passed: the leases are
	// then released while a stuck work may still run. Nothing counts twice if another
	// instance reads the same object meanwhile (the join is idempotent); its key is
	// recorded only by whoever commits it.
	Run(ctx context.Context, keys func(context.Context) ([]string, error), work func(context.Context, Claim)) error
}

// Leased shares partitions between instances through g's DynamoDB leases; the
// checkpoints live in the lease items.
func Leased(g *lease.Group) Claims { return leased{g} }

type leased struct{ g *lease.Group }

func (l leased) Run(ctx context.Context, keys func(context.Context) ([]string, error), work func(context.Context, Claim)) error {
	return l.g.Run(ctx, keys, func(ctx context.Context, c *lease.Claim) { work(ctx, c) })
}

// DirClaims claims every partition for this one instance and keeps each checkpoint in
// a file of dir (for the embedded store, whose directory one process owns at a time).
type DirClaims struct {
	dir          string
	syncInterval time.Duration
	log          *slog.Logger
}

// NewDirClaims returns claims whose checkpoints live in dir (created if missing). Keys
// are asked for again every syncInterval (default 1 min).
func NewDirClaims(dir string, syncInterval time.Duration, log *slog.Logger) (*DirClaims, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("objectsource: checkpoint directory: %w", err)
	}
	if syncInterval <= 0 {
		syncInterval = DefaultSyncInterval
	}
	if log == nil {
		log = slog.Default()
	}
	return &DirClaims{dir: dir, syncInterval: syncInterval, log: log}, nil
}

// checkpointFile is one partition's checkpoint file.
type checkpointFile struct {
	Key        string `json:"key"`
	Checkpoint string `json:"checkpoint"`
}

func (d *DirClaims) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(d.dir, hex.EncodeToString(sum[:12])+".json")
}

// Run implements Claims.
func (d *DirClaims) Run(ctx context.Context, keys func(context.Context) ([]string, error), work func(context.Context, Claim)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	started := map[string]bool{}
	t := time.NewTicker(d.syncInterval)
	defer t.Stop()
	for {
		ks, err := keys(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.WarnContext(ctx, "objectsource: finding partitions failed; retrying", "err", err)
		}
		for _, k := range ks {
			if started[k] {
				continue
			}
			c, err := d.load(k)
			if err != nil {
				return err
			}
			started[k] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				work(ctx, c)
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (d *DirClaims) load(key string) (*dirClaim, error) {
	c := &dirClaim{memClaim: memClaim{key: key}, path: d.path(key)}
	b, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("objectsource: read checkpoint of %s: %w", key, err)
	}
	var f checkpointFile
	if err := json.Unmarshal(b, &f); err != nil || f.Key != key {
		return nil, fmt.Errorf("objectsource: checkpoint file %s of %s is damaged (remove it to read the partition again from its start): %v", c.path, key, err)
	}
	c.checkpoint = f.Checkpoint
	return c, nil
}

// dirClaim is a memClaim whose Save also writes the checkpoint to its file.
type dirClaim struct {
	memClaim
	path string
}

// Save writes the checkpoint to a new file, syncs it and renames it over the old one,
// so a crash leaves either checkpoint whole.
func (c *dirClaim) Save(_ context.Context, checkpoint string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, _ := json.Marshal(checkpointFile{Key: c.key, Checkpoint: checkpoint})
	if err := writeFileAtomic(c.path, b); err != nil {
		return fmt.Errorf("objectsource: save checkpoint of %s: %w", c.key, err)
	}
	c.checkpoint = checkpoint
	return nil
}

// writeFileAtomic replaces path with data durably: temp file, fsync, rename, fsync of
// the directory.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// memClaim is a checkpoint kept in memory only (Drain).
type memClaim struct {
	key string
	mu  sync.Mutex
	// checkpoint is the last one saved.
	checkpoint string
}

func (c *memClaim) Key() string { return c.key }

func (c *memClaim) Checkpoint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkpoint
}

func (c *memClaim) Save(_ context.Context, checkpoint string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkpoint = checkpoint
	return nil
}
