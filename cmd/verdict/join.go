package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/dynamo"
	"github.com/verdictml/verdict/labels/embedded"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// Join stores (VERDICT_STORE).
const (
	storeEmbedded = "embedded"
	storeDynamo   = "dynamodb"
)

// joinSpec is what openJoin opens: a join store, the join's rules and the windows
// the join feeds.
type joinSpec struct {
	// store is storeDynamo for the shared DynamoDB table, else the embedded store
	// in dir.
	store    string
	dir      string
	embedded embedded.Options
	// retention deletes the embedded store's resolved records older than it (0:
	// keep them); the DynamoDB store's TTL is dynamo.Retention.
	retention time.Duration
	dynamo    dynamo.Config
	// dynamoAPI is the DynamoDB client; nil means one from awsConfig.
	dynamoAPI dynamo.API
	// awsConfig is the service's AWS configuration, loaded once for all its clients
	// (nil: loaded for the DynamoDB client alone).
	awsConfig *awsOnce
	// refreshEvery is how often the windows reload a shared store's tallies.
	refreshEvery time.Duration
	join         labels.Config
	windows      *window.Windows
	log          *slog.Logger
}

// joined is an open join: its store, the windows it feeds, and what keeps them
// while it serves (joined.upkeep).
type joined struct {
	spec    joinSpec
	store   labels.Store
	join    *labels.Join
	windows *window.Windows
	// local is the embedded store, shared the DynamoDB one; the other is nil.
	local  *embedded.Store
	shared *dynamo.Store
	// stale is set while a reopened embedded store's windows are being rebuilt.
	stale atomic.Bool
}

// storeOpenError is a failure to open the store itself (not the join on it).
type storeOpenError struct{ err error }

func (e *storeOpenError) Error() string { return e.err.Error() }
func (e *storeOpenError) Unwrap() error { return e.err }

// openJoin opens the store spec names and the join on it, restoring the windows
// from the store's tallies. The embedded store's commits feed the windows; the
// shared store's are made by other instances too, so the windows reload its
// tallies instead (now, and every refreshEvery while upkeep runs). Close it when
// done.
func openJoin(ctx context.Context, spec joinSpec) (_ *joined, err error) {
	if spec.log == nil {
		spec.log = slog.New(slog.DiscardHandler)
	}
	j := &joined{spec: spec, windows: spec.windows}
	defer func() {
		if err != nil {
			j.close()
		}
	}()
	if spec.store == storeDynamo {
		api := spec.dynamoAPI
		if api == nil {
			awsCfg, err := spec.awsConfig.load(ctx)
			if err != nil {
				return nil, err
			}
			api = dynamodb.NewFromConfig(awsCfg)
		}
		ds, err := dynamo.New(api, spec.dynamo)
		if err != nil {
			return nil, fmt.Errorf("configuration: %w", err)
		}
		if err := ds.EnsureTables(ctx); err != nil {
			return nil, fmt.Errorf("DynamoDB join table (VERDICT_DYNAMODB_TABLE): %w", err)
		}
		j.store, j.shared = ds, ds
		if err := j.reload(ctx, true); err != nil {
			return nil, err
		}
		spec.join.MaxGroup = ds.MaxGroup()
		if j.join, err = labels.Open(ctx, ds, spec.join, nil); err != nil {
			return nil, err
		}
		return j, nil
	}
	if err := os.MkdirAll(spec.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory (VERDICT_DATA_DIR): %w", err)
	}
	es, err := embedded.Open(spec.dir, spec.embedded)
	if err != nil {
		return nil, &storeOpenError{err}
	}
	j.store, j.local = es, es
	if j.join, err = labels.Open(ctx, es, spec.join, spec.windows); err != nil {
		return nil, err
	}
	return j, nil
}

// close closes the join, then the store.
func (j *joined) close() error {
	if j.join != nil {
		j.join.Close()
	}
	if j.local != nil {
		return j.local.Close()
	}
	return nil
}

// ready is nil while the join can commit what it receives, else why not.
func (j *joined) ready() error {
	if j.local == nil {
		return nil
	}
	if j.stale.Load() {
		return errors.New("the join store was reopened and the windows are being rebuilt from it")
	}
	return j.local.Health()
}

// upkeep runs until ctx ends what the store needs while the join serves: the
// embedded store's pruning and recovery, or the windows' refresh from the shared
// store.
func (j *joined) upkeep(ctx context.Context) error {
	if j.shared != nil {
		return j.refreshLoop(ctx)
	}
	return embedded.Upkeep{
		Store: j.local,
		// The tally horizon (the join restores no further back) and two buckets.
		KeepBuckets: j.spec.join.Longest + 2*j.spec.join.Bucket,
		Retention:   j.spec.retention,
		Reopen:      j.reopen,
	}.Run(ctx)
}

// reopen brings a failed embedded store back once its cause is gone (space freed):
// between commits it reopens the store, which replays the write-ahead log, and
// rebuilds the windows from the store's tallies, so a batch whose commit failed but
// reached the disk anyway counts exactly as the store does.
func (j *joined) reopen(ctx context.Context) error {
	err := j.join.Exclusive(ctx, func(ctx context.Context) error {
		if err := j.local.Reopen(); err != nil {
			return err
		}
		j.stale.Store(true)
		if err := j.reload(ctx, true); err != nil {
			return err
		}
		j.stale.Store(false)
		return nil
	})
	if err == nil {
		j.spec.log.Info("join store recovered: windows rebuilt from its tallies; ingest resumed")
	}
	return err
}

// reload replaces the windows with the store's tallies: the recent buckets, or all of
// them (back to the tally horizon, the join's Longest).
func (j *joined) reload(ctx context.Context, full bool) error {
	since := time.Now().Add(-j.spec.join.Longest).Unix()
	if !full {
		since = time.Now().Add(-recentReload).Unix()
	}
	err := j.windows.Reload(since, func(fn func(tally.Delta, bool) error) error { return j.store.Tallies(ctx, since, fn) })
	if err != nil {
		return fmt.Errorf("reload windows from the store's tallies: %w", err)
	}
	return nil
}

// recentReload is how far back each periodic reload reads buckets; a full reload every
// hour picks up corrections to older buckets (all-time counts always reload).
const recentReload = 2 * time.Hour

func (j *joined) refreshLoop(ctx context.Context) error {
	t := time.NewTicker(j.spec.refreshEvery)
	defer t.Stop()
	lastFull := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		full := time.Since(lastFull) > time.Hour
		if err := j.reload(ctx, full); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			j.spec.log.Warn("windows not refreshed", "err", err)
			continue
		}
		if full {
			lastFull = time.Now()
		}
	}
}
