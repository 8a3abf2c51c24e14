// Package kinesis consumes a Kinesis data stream with several cooperating instances,
// written on aws-sdk-go-v2 (there is no Kinesis Client Library for Go).
//
// Instances share the stream's shards through leases held in a DynamoDB table: each
// instance takes free leases, renews the ones it holds, takes over leases whose owner
// stopped renewing, and steals at most one lease per round from the busiest instance
// until the shards are spread evenly. Each lease item also holds the shard's
// checkpoint, the sequence number of the last record the Handler accepted; it advances
// only after Handle returned nil and only while the lease is still held, so delivery is
// at-least-once, and exactly-once in effect for an idempotent handler. A shard's
// children (after a split or merge) are read only once its parents were read to their
// end, so per-key order survives resharding.
package kinesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	kds "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/ingest/lease"
)

// Handler receives each shard's records in order. Handle must return nil only once the
// records are durably applied (the checkpoint advances past them right after); on an
// error the same records are delivered again after a backoff. Records may be delivered
// more than once (after a crash or lease hand-over), so Handle must be idempotent.
// Handle is called concurrently for different shards, never for the same shard.
type Handler interface {
	Handle(ctx context.Context, shardID string, records []types.Record) error
}

// Record is a Kinesis record as GetRecords returns it.
type Record = types.Record

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, shardID string, records []types.Record) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, shardID string, records []types.Record) error {
	return f(ctx, shardID, records)
}

// StreamAPI is what the consumer needs from Kinesis; *kinesis.Client implements it.
type StreamAPI interface {
	ListShards(ctx context.Context, in *kds.ListShardsInput, opts ...func(*kds.Options)) (*kds.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kds.GetShardIteratorInput, opts ...func(*kds.Options)) (*kds.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kds.GetRecordsInput, opts ...func(*kds.Options)) (*kds.GetRecordsOutput, error)
}

// InitialPosition is where a shard with no checkpoint starts.
type InitialPosition string

// Initial positions. Child shards of a reshard always start at their trim horizon.
const (
	TrimHorizon InitialPosition = CheckpointTrimHorizon
	Latest      InitialPosition = CheckpointLatest
)

// Config configures a Consumer. Stream and LeaseTable are required; zero values of the
// rest take the defaults documented on each field.
type Config struct {
	// Stream is the Kinesis data stream's name.
	Stream string
	// LeaseTable is the DynamoDB table holding leases and checkpoints; created
	// (on-demand capacity) if missing. One table per consuming application: two
	// applications reading the same stream need two tables.
	LeaseTable string
	// WorkerID names this instance in the lease table; unique per live instance.
	// Default: hostname-pid.
	WorkerID string
	// InitialPosition is where shards without a checkpoint start. Default TrimHorizon.
	InitialPosition InitialPosition
	// LeaseDuration is how long a lease survives without renewal before other workers
	// may take it, and how long this worker keeps processing a shard while renewals
	// fail. Default 10 s.
	LeaseDuration time.Duration
	// RenewInterval is how often held leases are renewed. Default LeaseDuration/3.
	RenewInterval time.Duration
	// BalanceInterval is how often the lease table is read to take free, expired or
	// stolen leases. Default LeaseDuration/2.
	BalanceInterval time.Duration
	// ShardSyncInterval is how often the stream's shards are listed to create leases for
	// new ones (a finished shard also triggers a listing). Default 1 min.
	ShardSyncInterval time.Duration
	// GetRecordsLimit is the maximum number of records per GetRecords call (and so per
	// Handle call), 1..10000. Default 1000.
	GetRecordsLimit int32
	// IdlePollInterval is the pause between GetRecords calls on a shard that is caught
	// up. Kinesis allows 5 GetRecords calls per second per shard. Default 1 s.
	IdlePollInterval time.Duration
	// MaxBackoff caps the exponential backoff after throttling, handler and API errors.
	// Default 10 s.
	MaxBackoff time.Duration
	// ShutdownTimeout bounds how long a cancelled Run waits for in-flight Handle calls,
	// their checkpoints and the release of leases. Default 10 s.
	ShutdownTimeout time.Duration
	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer, when set, receives the consumer's metrics (lag, leases, records).
	Registerer prometheus.Registerer
}

func (c Config) withDefaults() (Config, error) {
	if c.Stream == "" {
		return c, errors.New("kinesis consumer: config: Stream is required")
	}
	if c.LeaseTable == "" {
		return c, fmt.Errorf("kinesis consumer for stream %q: config: LeaseTable is required", c.Stream)
	}
	if c.WorkerID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "verdict"
		}
		c.WorkerID = host + "-" + strconv.Itoa(os.Getpid())
	}
	switch c.InitialPosition {
	case "":
		c.InitialPosition = TrimHorizon
	case TrimHorizon, Latest:
	default:
		return c, fmt.Errorf("kinesis consumer for stream %q: config: InitialPosition %q is not %q or %q", c.Stream, c.InitialPosition, TrimHorizon, Latest)
	}
	if c.LeaseDuration <= 0 {
		c.LeaseDuration = 10 * time.Second
	}
	if c.RenewInterval <= 0 {
		c.RenewInterval = c.LeaseDuration / 3
	}
	if c.RenewInterval >= c.LeaseDuration {
		return c, fmt.Errorf("kinesis consumer for stream %q: config: RenewInterval %v must be shorter than LeaseDuration %v", c.Stream, c.RenewInterval, c.LeaseDuration)
	}
	if c.BalanceInterval <= 0 {
		c.BalanceInterval = c.LeaseDuration / 2
	}
	if c.ShardSyncInterval <= 0 {
		c.ShardSyncInterval = time.Minute
	}
	if c.GetRecordsLimit == 0 {
		c.GetRecordsLimit = 1000
	}
	if c.GetRecordsLimit < 1 || c.GetRecordsLimit > 10000 {
		return c, fmt.Errorf("kinesis consumer for stream %q: config: GetRecordsLimit %d is outside 1..10000", c.Stream, c.GetRecordsLimit)
	}
	if c.IdlePollInterval <= 0 {
		c.IdlePollInterval = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Consumer reads one stream for one application, sharing its shards with the other
// Consumers (in this or other processes) that use the same lease table. The leases are
// a lease.Group whose keys are the stream's shards: the consumer adds what is Kinesis's
// own, the shard listing (parents, initial positions, shards aged out), the rule that a
// child waits for its parents, and the reading of each shard.
type Consumer struct {
	cfg     Config
	stream  StreamAPI
	leases  *lease.Table
	group   *lease.Group
	handler Handler
	log     *slog.Logger

	mu     sync.Mutex
	shards map[*lease.Claim]*shardStats // the shards being read, by lease

	finished, handlerErrors atomic.Uint64
}

// shardStats is what the goroutine reading a shard reports about it.
type shardStats struct {
	records            atomic.Uint64
	millisBehindLatest atomic.Int64
	lastBatch          atomic.Int64 // unix nanoseconds
}

// New returns a Consumer of cfg.Stream that hands records to h. The clients are
// typically *kinesis.Client and *dynamodb.Client.
func New(stream StreamAPI, leaseDB LeaseTableAPI, h Handler, cfg Config) (*Consumer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if stream == nil || leaseDB == nil || h == nil {
		return nil, fmt.Errorf("kinesis consumer for stream %q: a Kinesis client, a DynamoDB client and a Handler are required", cfg.Stream)
	}
	leases := lease.NewTable(leaseDB, cfg.LeaseTable, cfg.Stream)
	group, err := lease.NewGroup(leases, lease.GroupConfig{
		WorkerID:        cfg.WorkerID,
		LeaseDuration:   cfg.LeaseDuration,
		RenewInterval:   cfg.RenewInterval,
		BalanceInterval: cfg.BalanceInterval,
		SyncInterval:    cfg.ShardSyncInterval,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Logger:          cfg.Logger,
		Ready:           parentsReady,
		// Handle calls in flight at shutdown finish and checkpoint.
		Drain: true,
	})
	if err != nil {
		return nil, fmt.Errorf("kinesis consumer for stream %q: %w", cfg.Stream, err)
	}
	c := &Consumer{
		cfg:     cfg,
		stream:  stream,
		leases:  leases,
		group:   group,
		handler: h,
		log:     cfg.Logger.With("stream", cfg.Stream, "worker", cfg.WorkerID),
		shards:  map[*lease.Claim]*shardStats{},
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(newCollector(c)); err != nil {
			return nil, fmt.Errorf("kinesis consumer for stream %q: register metrics: %w", cfg.Stream, err)
		}
	}
	return c, nil
}

// Run consumes the stream until ctx is cancelled, then hands off: it stops fetching,
// lets in-flight Handle calls finish and checkpoint (within ShutdownTimeout), and
// releases its leases so other workers take them at once. It creates the lease table
// if missing. Errors from AWS after start are logged and retried, not returned: an
// outage must not stop the service, only pause it.
func (c *Consumer) Run(ctx context.Context) error {
	if err := c.group.RunWith(ctx, c.syncShards, c.consume); err != nil {
		return fmt.Errorf("kinesis consumer for stream %q: %w", c.cfg.Stream, err)
	}
	return nil
}

func (c *Consumer) logErr(ctx context.Context, what string, err error) {
	if err != nil && ctx.Err() == nil {
		c.log.WarnContext(ctx, "kinesis consumer: "+what+" failed", "err", err)
	}
}

// syncShards lists the stream's shards, creates leases for new ones and deletes
// finished leases of shards that aged out of the stream.
func (c *Consumer) syncShards(ctx context.Context) error {
	shards, err := listShards(ctx, c.stream, c.cfg.Stream)
	if err != nil {
		return err
	}
	leases, err := c.leases.List(ctx)
	if err != nil {
		return err
	}
	leased := make(map[string]bool, len(leases))
	for _, l := range leases {
		leased[l.Key] = true
	}
	listed := make(map[string]bool, len(shards))
	for _, s := range shards {
		listed[aws.ToString(s.ShardId)] = true
	}
	for _, s := range shards {
		id := aws.ToString(s.ShardId)
		if leased[id] {
			continue
		}
		parents := shardParents(s)
		start := string(c.cfg.InitialPosition)
		for _, p := range parents {
			if leased[p] || listed[p] {
				start = CheckpointTrimHorizon // a child starts where its parents ended
			}
		}
		if err := c.leases.Create(ctx, id, parents, start); err != nil {
			return err
		}
	}
	for _, l := range leases {
		if l.Finished() && !listed[l.Key] {
			if err := c.leases.Remove(ctx, l.Key); err != nil {
				return err
			}
		}
	}
	return nil
}

func shardParents(s types.Shard) []string {
	var parents []string
	for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
		if aws.ToString(p) != "" {
			parents = append(parents, *p)
		}
	}
	return parents
}

// listShards returns every shard of the stream, open and closed (within retention).
func listShards(ctx context.Context, api StreamAPI, stream string) ([]types.Shard, error) {
	var (
		shards []types.Shard
		next   *string
	)
	for {
		in := &kds.ListShardsInput{StreamName: aws.String(stream)}
		if next != nil {
			in = &kds.ListShardsInput{NextToken: next} // NextToken excludes StreamName
		}
		out, err := api.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards of stream %q: %w", stream, err)
		}
		shards = append(shards, out.Shards...)
		if aws.ToString(out.NextToken) == "" {
			return shards, nil
		}
		next = out.NextToken
	}
}

// consume is the work of a shard's lease: it reads the shard while the lease is held.
func (c *Consumer) consume(ctx context.Context, claim *lease.Claim) {
	st := &shardStats{}
	c.mu.Lock()
	c.shards[claim] = st
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.shards, claim)
		c.mu.Unlock()
	}()
	c.consumeShard(ctx, claim.Context(), claim, st)
}

// consumeShard reads one shard from its checkpoint until the shard ends, the lease is
// lost or fetchCtx ends. Handle calls run under handleCtx (the claim's context), which
// outlives fetchCtx at shutdown so the last batch can finish and be checkpointed.
func (c *Consumer) consumeShard(fetchCtx, handleCtx context.Context, claim *lease.Claim, st *shardStats) {
	shardID := claim.Key()
	log := c.log.With("shard", shardID)
	checkpoint := claim.Checkpoint()

	var (
		iterator *string
		backoff  time.Duration
	)
	pause := func() bool {
		backoff = min(max(2*backoff, 100*time.Millisecond), c.cfg.MaxBackoff)
		// Full jitter keeps workers from retrying in lockstep.
		return lease.Sleep(fetchCtx, time.Duration(rand.Int64N(int64(backoff))+1)) == nil
	}
	for fetchCtx.Err() == nil {
		if iterator == nil {
			it, err := c.iterator(fetchCtx, shardID, checkpoint)
			if err != nil {
				c.logErr(fetchCtx, "get shard iterator", err)
				if !pause() {
					return
				}
				continue
			}
			iterator = it
		}
		out, err := c.stream.GetRecords(fetchCtx, &kds.GetRecordsInput{ShardIterator: iterator, Limit: aws.Int32(c.cfg.GetRecordsLimit)})
		if err != nil {
			var (
				expired   *types.ExpiredIteratorException
				throttled *types.ProvisionedThroughputExceededException
			)
			switch {
			case errors.As(err, &expired):
				iterator = nil // re-obtain after the checkpoint; nothing was lost
				continue
			case errors.As(err, &throttled):
			default:
				c.logErr(fetchCtx, "get records", fmt.Errorf("stream %q shard %q: %w", c.cfg.Stream, shardID, err))
				iterator = nil
			}
			if !pause() {
				return
			}
			continue
		}
		st.millisBehindLatest.Store(aws.ToInt64(out.MillisBehindLatest))

		if len(out.Records) > 0 {
			if err := c.handler.Handle(handleCtx, shardID, out.Records); err != nil {
				c.handlerErrors.Add(1)
				if handleCtx.Err() == nil {
					log.WarnContext(handleCtx, "kinesis consumer: handler failed; records will be delivered again", "records", len(out.Records), "err", err)
				}
				iterator = nil // deliver the same records again
				if !pause() {
					return
				}
				continue
			}
			st.records.Add(uint64(len(out.Records)))
			st.lastBatch.Store(time.Now().UnixNano())
			seq := aws.ToString(out.Records[len(out.Records)-1].SequenceNumber)
			switch err := claim.Save(handleCtx, seq); {
			case errors.Is(err, lease.ErrLost):
				return
			case err != nil:
				// Handled but not recorded: carry on; a new owner would redeliver them.
				c.logErr(handleCtx, "checkpoint", err)
			default:
				checkpoint = seq
			}
		}
		backoff = 0

		if out.NextShardIterator == nil { // read to the end of a closed shard
			for {
				err := claim.Finish(handleCtx)
				if err == nil {
					break
				}
				if errors.Is(err, lease.ErrLost) {
					return
				}
				c.logErr(handleCtx, "finish shard", err)
				if !pause() {
					return
				}
			}
			c.finished.Add(1)
			log.InfoContext(handleCtx, "kinesis consumer: shard finished; its children may start")
			c.group.SyncSoon()
			return
		}
		iterator = out.NextShardIterator
		// Caught up: an empty or short batch with no lag (a short batch alone may be a
		// response-size cut while far behind).
		if len(out.Records) == 0 || (aws.ToInt64(out.MillisBehindLatest) == 0 && int32(len(out.Records)) < c.cfg.GetRecordsLimit) {
			if lease.Sleep(fetchCtx, c.cfg.IdlePollInterval) != nil {
				return
			}
		}
	}
}

// iterator returns a shard iterator positioned just after checkpoint.
func (c *Consumer) iterator(ctx context.Context, shardID, checkpoint string) (*string, error) {
	in := &kds.GetShardIteratorInput{StreamName: aws.String(c.cfg.Stream), ShardId: aws.String(shardID)}
	switch checkpoint {
	case CheckpointTrimHorizon, "":
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case CheckpointLatest:
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	default:
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(checkpoint)
	}
	out, err := c.stream.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("stream %q shard %q from %s: %w", c.cfg.Stream, shardID, checkpoint, err)
	}
	return out.ShardIterator, nil
}

// ShardStats describes one shard this worker holds.
type ShardStats struct {
	ShardID string
	// Checkpoint is the last checkpoint written (a sequence number, TRIM_HORIZON,
	// LATEST or SHARD_END).
	Checkpoint string
	// MillisBehindLatest is how far the last GetRecords response was behind the tip.
	MillisBehindLatest int64
	// Records is the number of records handled successfully since the lease was taken.
	Records uint64
	// LastBatch is when records were last handled successfully (zero if never).
	LastBatch time.Time
}

// Stats is a snapshot of the consumer's state.
type Stats struct {
	Stream   string
	WorkerID string
	// Shards are the shards this worker holds, by shard ID.
	Shards []ShardStats
	// Lease events since start.
	LeasesTaken, LeasesStolen, LeasesLost, LeasesReleased, ShardsFinished uint64
	// HandlerErrors counts Handle calls that returned an error.
	HandlerErrors uint64
}

// Stats returns the consumer's current state.
func (c *Consumer) Stats() Stats {
	g := c.group.Stats()
	s := Stats{
		Stream:         c.cfg.Stream,
		WorkerID:       c.cfg.WorkerID,
		LeasesTaken:    g.Taken,
		LeasesStolen:   g.Stolen,
		LeasesLost:     g.Lost,
		LeasesReleased: g.Released,
		ShardsFinished: c.finished.Load(),
		HandlerErrors:  c.handlerErrors.Load(),
	}
	for _, claim := range c.group.Claims() {
		ss := ShardStats{ShardID: claim.Key(), Checkpoint: claim.Checkpoint()}
		c.mu.Lock()
		st := c.shards[claim]
		c.mu.Unlock()
		if st != nil {
			ss.MillisBehindLatest = st.millisBehindLatest.Load()
			ss.Records = st.records.Load()
			if ns := st.lastBatch.Load(); ns != 0 {
				ss.LastBatch = time.Unix(0, ns)
			}
		}
		s.Shards = append(s.Shards, ss)
	}
	sort.Slice(s.Shards, func(i, j int) bool { return s.Shards[i].ShardID < s.Shards[j].ShardID })
	return s
}
