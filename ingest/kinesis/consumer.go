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
// Consumers (in this or other processes) that use the same lease table.
type Consumer struct {
	cfg     Config
	stream  StreamAPI
	leases  *lease.Table
	handler Handler
	log     *slog.Logger

	mu      sync.Mutex
	held    map[string]*heldLease // by shard ID
	running bool

	// observed is the balancer's memory of other workers' leases: the counter last
	// seen and when it last changed, on this worker's clock. Only Run's goroutine
	// touches it.
	observed map[string]observation
	// syncNow asks Run for a shard listing (a shard finished: its children may start).
	syncNow chan struct{}

	taken, stolen, lost, released, finished, handlerErrors atomic.Uint64
}

type observation struct {
	counter int64
	since   time.Time
}

// heldLease is a lease this worker holds and the goroutine reading its shard.
type heldLease struct {
	// mu serialises writes to the lease item (renewals bump the counter that
	// checkpoints are conditional on).
	mu     sync.Mutex
	lease  lease.Lease
	cancel context.CancelFunc // stops the shard's goroutine and its Handle calls
	stop   context.CancelFunc // stops fetching; in-flight Handle finishes
	done   chan struct{}
	// renewed is when the last successful renewal was sent.
	renewed time.Time
	// lost is set once the lease is known gone; no write may follow.
	lost bool

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
	c := &Consumer{
		cfg:      cfg,
		stream:   stream,
		leases:   lease.NewTable(leaseDB, cfg.LeaseTable, cfg.Stream),
		handler:  h,
		log:      cfg.Logger.With("stream", cfg.Stream, "worker", cfg.WorkerID),
		held:     map[string]*heldLease{},
		observed: map[string]observation{},
		syncNow:  make(chan struct{}, 1),
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
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return fmt.Errorf("kinesis consumer for stream %q: Run called twice", c.cfg.Stream)
	}
	c.running = true
	c.mu.Unlock()

	if err := c.leases.Ensure(ctx); err != nil {
		return fmt.Errorf("kinesis consumer for stream %q: %w", c.cfg.Stream, err)
	}
	if err := c.syncShards(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("kinesis consumer for stream %q: %w", c.cfg.Stream, err)
	}
	c.balance(ctx)

	renew := time.NewTicker(c.cfg.RenewInterval)
	defer renew.Stop()
	lastBalance, lastSync := time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			c.shutdown(ctx)
			return nil
		case <-c.syncNow:
			c.logErr(ctx, "list shards", c.syncShards(ctx))
			lastSync = time.Now()
			c.balance(ctx)
			lastBalance = time.Now()
		case <-renew.C:
			c.renewAll(ctx)
			if time.Since(lastSync) >= c.cfg.ShardSyncInterval {
				c.logErr(ctx, "list shards", c.syncShards(ctx))
				lastSync = time.Now()
			}
			if time.Since(lastBalance) >= c.cfg.BalanceInterval {
				c.balance(ctx)
				lastBalance = time.Now()
			}
		}
	}
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

// balance reads the lease table and takes (or steals) leases as lease.PlanTakes decides.
func (c *Consumer) balance(ctx context.Context) {
	leases, err := c.leases.List(ctx)
	if err != nil {
		c.logErr(ctx, "read leases", err)
		return
	}
	now := time.Now()
	c.mu.Lock()
	heldNow := make(map[string]bool, len(c.held))
	for id := range c.held {
		heldNow[id] = true
	}
	c.mu.Unlock()

	finished := map[string]bool{}
	leased := map[string]bool{}
	byShard := map[string]lease.Lease{}
	seen := map[string]bool{}
	for _, l := range leases {
		leased[l.Key] = true
		finished[l.Key] = l.Finished()
		byShard[l.Key] = l
		seen[l.Key] = true
		if o, ok := c.observed[l.Key]; !ok || o.counter != l.Counter {
			c.observed[l.Key] = observation{counter: l.Counter, since: now}
		}
	}
	for id := range c.observed {
		if !seen[id] {
			delete(c.observed, id)
		}
	}
	views := make([]lease.View, 0, len(leases))
	for _, l := range leases {
		owner := l.Owner
		if heldNow[l.Key] {
			owner = c.cfg.WorkerID // ours; our own renewals may race this read
		}
		expired := owner != "" && now.Sub(c.observed[l.Key].since) > c.cfg.LeaseDuration
		switch {
		case heldNow[l.Key]:
			expired = false // renewAll decides about our own leases
		case owner == c.cfg.WorkerID:
			expired = true // a previous incarnation of this worker held it
		}
		views = append(views, lease.View{
			Key:      l.Key,
			Owner:    owner,
			Expired:  expired,
			Finished: l.Finished(),
			// Listed-ness is not needed here: leases exist for every listed shard after
			// a sync, so a parent without a lease has aged out.
			Ready: parentsFinished(l.Parents, finished, leased, nil),
		})
	}
	p := lease.PlanTakes(views, c.cfg.WorkerID)
	for _, id := range p.Take {
		c.acquire(ctx, byShard[id], false)
	}
	if p.Steal != "" {
		c.acquire(ctx, byShard[p.Steal], true)
	}
}

// acquire takes a lease at its observed counter and starts reading its shard.
func (c *Consumer) acquire(ctx context.Context, observed lease.Lease, steal bool) {
	renewed := time.Now()
	l, err := c.leases.Take(ctx, observed, c.cfg.WorkerID)
	if err != nil {
		if !errors.Is(err, lease.ErrLost) { // lost the race to another worker: fine
			c.logErr(ctx, "take lease", err)
		}
		return
	}
	if steal {
		c.stolen.Add(1)
		c.log.InfoContext(ctx, "kinesis consumer: stole lease", "shard", l.Key, "from", observed.Owner)
	} else {
		c.taken.Add(1)
		c.log.DebugContext(ctx, "kinesis consumer: took lease", "shard", l.Key, "previous_owner", observed.Owner)
	}
	c.observed[l.Key] = observation{counter: l.Counter, since: renewed}

	// Handle calls survive Run's cancellation (so shutdown can let them finish); they
	// end when the lease is lost or the shutdown timeout expires.
	leaseCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	fetchCtx, stop := context.WithCancel(leaseCtx)
	stopOnShutdown := context.AfterFunc(ctx, stop)
	h := &heldLease{lease: l, cancel: cancel, stop: stop, done: make(chan struct{}), renewed: renewed}
	c.mu.Lock()
	if old, ok := c.held[l.Key]; ok { // cannot happen: we took it, so we did not hold it
		old.cancel()
	}
	c.held[l.Key] = h
	c.mu.Unlock()
	go func() {
		defer close(h.done)
		defer stopOnShutdown()
		defer cancel()
		c.consumeShard(fetchCtx, leaseCtx, h)
		h.mu.Lock()
		gone := h.lost
		h.mu.Unlock()
		if !gone {
			return // stopped for shutdown, which releases the lease
		}
		c.mu.Lock()
		if c.held[l.Key] == h {
			delete(c.held, l.Key)
		}
		c.mu.Unlock()
	}()
}

// renewAll renews every held lease. A lease whose renewal fails its condition was taken
// by another worker: its shard stops at once. One that cannot be renewed for almost a
// lease duration is given up too, before any other worker may consider it expired.
func (c *Consumer) renewAll(ctx context.Context) {
	c.mu.Lock()
	held := make([]*heldLease, 0, len(c.held))
	for _, h := range c.held {
		held = append(held, h)
	}
	c.mu.Unlock()
	for _, h := range held {
		h.mu.Lock()
		if h.lost {
			h.mu.Unlock()
			continue
		}
		sent := time.Now()
		renewCtx, cancel := context.WithTimeout(ctx, c.cfg.RenewInterval)
		counter, err := c.leases.Renew(renewCtx, h.lease)
		cancel()
		switch {
		case err == nil:
			h.lease.Counter = counter
			h.renewed = sent
		case errors.Is(err, lease.ErrLost):
			c.loseLocked(ctx, h, err)
		case time.Since(h.renewed)+c.cfg.RenewInterval >= c.cfg.LeaseDuration:
			// Give up one renew interval before others may see the lease expired.
			c.loseLocked(ctx, h, fmt.Errorf("no successful renewal for %v: %w", time.Since(h.renewed).Round(time.Millisecond), err))
		default:
			c.logErr(ctx, "renew lease", err)
		}
		h.mu.Unlock()
	}
}

// loseLocked stops a shard whose lease is gone. h.mu must be held.
func (c *Consumer) loseLocked(ctx context.Context, h *heldLease, why error) {
	if h.lost {
		return
	}
	h.lost = true
	h.cancel()
	c.lost.Add(1)
	c.log.WarnContext(ctx, "kinesis consumer: lost lease; shard stopped", "shard", h.lease.Key, "err", why)
}

// shutdown hands off after Run's context ended: fetching has stopped already; wait for
// in-flight Handle calls and their checkpoints, then release the leases.
func (c *Consumer) shutdown(ctx context.Context) {
	c.mu.Lock()
	held := make([]*heldLease, 0, len(c.held))
	for _, h := range c.held {
		held = append(held, h)
	}
	c.mu.Unlock()
	deadline := time.NewTimer(c.cfg.ShutdownTimeout)
	defer deadline.Stop()
	for _, h := range held {
		select {
		case <-h.done:
		case <-deadline.C:
			for _, h := range held {
				h.cancel()
			}
			// Nothing more will be handled; goroutines end promptly.
		}
	}
	for _, h := range held {
		<-h.done
	}
	releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout)
	defer cancel()
	for _, h := range held {
		h.mu.Lock()
		if !h.lost && !h.lease.Finished() {
			if err := c.leases.Release(releaseCtx, h.lease, false); err != nil {
				c.log.WarnContext(releaseCtx, "kinesis consumer: release lease on shutdown failed; it will expire", "shard", h.lease.Key, "err", err)
			} else {
				c.released.Add(1)
			}
			h.lost = true
		}
		h.mu.Unlock()
	}
	c.mu.Lock()
	c.held = map[string]*heldLease{}
	c.mu.Unlock()
}

// consumeShard reads one shard from its checkpoint until the shard ends, the lease is
// lost or fetchCtx ends. Handle calls run under handleCtx, which outlives fetchCtx at
// shutdown so the last batch can finish and be checkpointed.
func (c *Consumer) consumeShard(fetchCtx, handleCtx context.Context, h *heldLease) {
	shardID := h.lease.Key
	log := c.log.With("shard", shardID)
	h.mu.Lock()
	checkpoint := h.lease.Checkpoint
	h.mu.Unlock()

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
		h.millisBehindLatest.Store(aws.ToInt64(out.MillisBehindLatest))

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
			h.records.Add(uint64(len(out.Records)))
			h.lastBatch.Store(time.Now().UnixNano())
			seq := aws.ToString(out.Records[len(out.Records)-1].SequenceNumber)
			switch err := c.checkpoint(handleCtx, h, seq, false); {
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
				err := c.checkpoint(handleCtx, h, CheckpointShardEnd, true)
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
			select {
			case c.syncNow <- struct{}{}:
			default:
			}
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

// checkpoint writes a checkpoint (or, when finish is set, SHARD_END and releases the
// lease) conditional on still holding the lease as last renewed.
func (c *Consumer) checkpoint(ctx context.Context, h *heldLease, checkpoint string, finish bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost {
		return fmt.Errorf("checkpoint stream %q shard %q: %w", c.cfg.Stream, h.lease.Key, lease.ErrLost)
	}
	// A write must not outlive the lease: when renewals fail (and so, likely, this
	// write), give up in time for the next owner.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.LeaseDuration)
	defer cancel()
	var err error
	if finish {
		err = c.leases.Release(ctx, h.lease, true)
	} else {
		err = c.leases.Checkpoint(ctx, h.lease, checkpoint)
	}
	switch {
	case errors.Is(err, lease.ErrLost):
		c.loseLocked(ctx, h, err)
		return err
	case err != nil:
		return err
	}
	h.lease.Checkpoint = checkpoint
	if finish {
		h.lost = true // released: no further writes
	}
	return nil
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
	s := Stats{
		Stream:         c.cfg.Stream,
		WorkerID:       c.cfg.WorkerID,
		LeasesTaken:    c.taken.Load(),
		LeasesStolen:   c.stolen.Load(),
		LeasesLost:     c.lost.Load(),
		LeasesReleased: c.released.Load(),
		ShardsFinished: c.finished.Load(),
		HandlerErrors:  c.handlerErrors.Load(),
	}
	c.mu.Lock()
	held := make([]*heldLease, 0, len(c.held))
	for _, h := range c.held {
		held = append(held, h)
	}
	c.mu.Unlock()
	for _, h := range held {
		h.mu.Lock()
		if h.lost {
			h.mu.Unlock()
			continue
		}
		ss := ShardStats{ShardID: h.lease.Key, Checkpoint: h.lease.Checkpoint}
		h.mu.Unlock()
		ss.MillisBehindLatest = h.millisBehindLatest.Load()
		ss.Records = h.records.Load()
		if ns := h.lastBatch.Load(); ns != 0 {
			ss.LastBatch = time.Unix(0, ns)
		}
		s.Shards = append(s.Shards, ss)
	}
	sort.Slice(s.Shards, func(i, j int) bool { return s.Shards[i].ShardID < s.Shards[j].ShardID })
	return s
}
