package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// GroupConfig configures a Group. Zero durations take the defaults on each field.
type GroupConfig struct {
	// WorkerID names this instance in the lease table; unique per live instance.
	WorkerID string
	// LeaseDuration is how long a lease survives without renewal before other workers
	// may take it. Default 10 s.
	LeaseDuration time.Duration
	// RenewInterval is how often held leases are renewed. Default LeaseDuration/3.
	RenewInterval time.Duration
	// BalanceInterval is how often the lease table is read to take free, expired or
	// stolen leases. Default LeaseDuration/2.
	BalanceInterval time.Duration
	// SyncInterval is how often the keys are asked for, to create leases for new ones.
	// Default 1 min.
	SyncInterval time.Duration
	// ShutdownTimeout bounds how long a cancelled Run waits for work to return before
	// it releases the leases anyway. Default 10 s.
	ShutdownTimeout time.Duration
	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
	// Ready, when set, is asked on each balance round, with every lease of the group,
	// for a function that says whether a lease may be taken now (a Kinesis shard: once
	// its parents are finished). Default: every lease is ready.
	Ready func(leases []Lease) func(Lease) bool
	// Drain lets work in flight finish when Run ends: the work's context ends, but the
	// Claim's Context lives on until the work returns or ShutdownTimeout passes (then
	// it ends too), and Run waits for every work to return before it releases the
	// leases. Without Drain, Run releases the leases after ShutdownTimeout whether the
	// work has returned or not.
	Drain bool
}

// initialCheckpoint is the checkpoint of a new lease; it must not be empty (DynamoDB
// conditions cannot compare a missing attribute).
const initialCheckpoint = "{}"

// Group runs one worker's share of a set of leases: it creates leases for the keys it
// is given, takes free and expired ones and steals toward an even spread (PlanTakes),
// renews the ones it holds, and runs the work of each held lease until the lease is
// lost or Run ends. The work's checkpoint lives in the lease item; Claim.Save writes it
// only while the lease is still held, so a worker that lost a lease can never move a
// checkpoint its new owner relies on.
type Group struct {
	table *Table
	cfg   GroupConfig
	log   *slog.Logger

	mu      sync.Mutex
	held    map[string]*Claim
	running bool
	// observed is the balancer's memory of other workers' leases: the counter last
	// seen and when it last changed, on this worker's clock. Only Run's goroutine
	// touches it.
	observed map[string]observation
	// syncSoon asks Run for a sync and a balance round now (SyncSoon).
	syncSoon chan struct{}

	taken, stolen, lost, released atomic.Uint64
}

type observation struct {
	counter int64
	since   time.Time
}

// NewGroup returns a Group over table's leases.
func NewGroup(table *Table, cfg GroupConfig) (*Group, error) {
	if cfg.WorkerID == "" {
		return nil, errors.New("lease group: WorkerID is required")
	}
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = 10 * time.Second
	}
	if cfg.RenewInterval <= 0 {
		cfg.RenewInterval = cfg.LeaseDuration / 3
	}
	if cfg.RenewInterval >= cfg.LeaseDuration {
		return nil, fmt.Errorf("lease group: RenewInterval %v must be shorter than LeaseDuration %v", cfg.RenewInterval, cfg.LeaseDuration)
	}
	if cfg.BalanceInterval <= 0 {
		cfg.BalanceInterval = cfg.LeaseDuration / 2
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Minute
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Group{
		table: table, cfg: cfg, log: cfg.Logger.With("lease_group", table.group, "worker", cfg.WorkerID),
		held: map[string]*Claim{}, observed: map[string]observation{}, syncSoon: make(chan struct{}, 1),
	}, nil
}

// Claim is a lease this worker holds.
type Claim struct {
	g *Group
	// mu serialises writes to the lease item: renewals bump the counter that
	// checkpoints are conditional on.
	mu    sync.Mutex
	lease Lease
	// renewed is when the last successful renewal was sent.
	renewed time.Time
	// lost is set once the lease is known gone (or released); no write may follow.
	lost bool
	// ctx ends when the lease is lost, released or its work has returned (Context).
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// Key is the lease's key.
func (c *Claim) Key() string { return c.lease.Key }

// Checkpoint is the checkpoint last written (when the lease was taken, or by Save).
func (c *Claim) Checkpoint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lease.Checkpoint
}

// Context ends when the lease is lost or its work has returned; with Drain it
// outlives the work's context at Run's end until the work returns or ShutdownTimeout
// passes. Without Drain it ends with Run's context too.
func (c *Claim) Context() context.Context { return c.ctx }

// Save writes the checkpoint if this worker still holds the lease as last renewed. It
// returns an error wrapping ErrLost, and stops the lease's work, if it does not.
func (c *Claim) Save(ctx context.Context, checkpoint string) error {
	return c.write(ctx, checkpoint, false)
}

// Finish marks the lease's work done for good (checkpoint Finished) and releases it,
// if this worker still holds it as last renewed; nothing may be written after it. It
// returns an error wrapping ErrLost, and stops the lease's work, if the lease is gone.
func (c *Claim) Finish(ctx context.Context) error {
	return c.write(ctx, Finished, true)
}

func (c *Claim) write(ctx context.Context, checkpoint string, finish bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lost {
		return fmt.Errorf("checkpoint lease %q: %w", c.lease.Key, ErrLost)
	}
	// A write must not outlive the lease: when renewals fail (and so, likely, this
	// write), give up in time for the next owner.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.g.cfg.LeaseDuration)
	defer cancel()
	var err error
	if finish {
		err = c.g.table.Release(ctx, c.lease, true)
	} else {
		err = c.g.table.Checkpoint(ctx, c.lease, checkpoint)
	}
	if errors.Is(err, ErrLost) {
		c.g.loseLocked(ctx, c, err)
	}
	if err != nil {
		return err
	}
	c.lease.Checkpoint = checkpoint
	if finish {
		c.lost = true // released: no further writes
	}
	return nil
}

// Held returns the keys of the leases this worker holds now.
func (g *Group) Held() []string {
	claims := g.Claims()
	out := make([]string, len(claims))
	for i, c := range claims {
		out[i] = c.Key()
	}
	return out
}

// Claims returns the leases this worker holds now.
func (g *Group) Claims() []*Claim {
	var out []*Claim
	for _, c := range g.claims() {
		c.mu.Lock()
		if !c.lost {
			out = append(out, c)
		}
		c.mu.Unlock()
	}
	return out
}

// claims is every claim in held, lost ones included.
func (g *Group) claims() []*Claim {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Claim, 0, len(g.held))
	for _, c := range g.held {
		out = append(out, c)
	}
	return out
}

// GroupStats counts a worker's lease events since it started.
type GroupStats struct {
	// Taken and Stolen count leases taken (free or expired) and stolen toward an even
	// spread; Lost those taken by another worker or given up for failed renewals;
	// Released those released at shutdown.
	Taken, Stolen, Lost, Released uint64
}

// Stats returns the lease events so far.
func (g *Group) Stats() GroupStats {
	return GroupStats{Taken: g.taken.Load(), Stolen: g.stolen.Load(), Lost: g.lost.Load(), Released: g.released.Load()}
}

// SyncSoon asks Run for a sync and a balance round now instead of at their next
// interval (a Kinesis shard was read to its end: its children may start).
func (g *Group) SyncSoon() {
	select {
	case g.syncSoon <- struct{}{}:
	default:
	}
}

// Run keeps this worker's share of the leases of keys until ctx ends. For each lease
// it takes it calls work in a goroutine of its own, with a context that ends when the
// lease is lost or Run's context ends; work should return soon after. keys is asked
// at start and every SyncInterval; leases are created for new keys (a key that is no
// longer listed keeps its lease). Run creates the table if missing. Errors from
// DynamoDB after start are logged and retried, not returned.
func (g *Group) Run(ctx context.Context, keys func(context.Context) ([]string, error), work func(context.Context, *Claim)) error {
	sync := func(ctx context.Context) error { return g.sync(ctx, keys) }
	return g.run(ctx, "create leases", sync, false, work)
}

// RunWith is Run with sync, instead of keys, keeping the lease table up to date: it
// creates (and may remove) the group's leases itself, at start, every SyncInterval and
// after SyncSoon. An error of the first sync ends RunWith (a failure after start is
// logged and retried).
func (g *Group) RunWith(ctx context.Context, sync func(context.Context) error, work func(context.Context, *Claim)) error {
	return g.run(ctx, "sync leases", sync, true, work)
}

func (g *Group) run(ctx context.Context, what string, sync func(context.Context) error, firstSyncFails bool, work func(context.Context, *Claim)) error {
	g.mu.Lock()
	if g.running {
		g.mu.Unlock()
		return fmt.Errorf("lease group %q: Run called twice", g.table.group)
	}
	g.running = true
	g.mu.Unlock()

	if err := g.table.Ensure(ctx); err != nil {
		return fmt.Errorf("lease group %q: %w", g.table.group, err)
	}
	err := sync(ctx)
	switch {
	case err != nil && firstSyncFails && ctx.Err() != nil:
		return nil
	case err != nil && firstSyncFails:
		return fmt.Errorf("lease group %q: %w", g.table.group, err)
	}
	g.logErr(ctx, what, err)
	g.balance(ctx, work)

	renew := time.NewTicker(g.cfg.RenewInterval)
	defer renew.Stop()
	lastBalance, lastSync := time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			g.shutdown(ctx)
			return nil
		case <-g.syncSoon:
			g.logErr(ctx, what, sync(ctx))
			lastSync = time.Now()
			g.balance(ctx, work)
			lastBalance = time.Now()
			continue
		case <-renew.C:
		}
		g.renewAll(ctx)
		if time.Since(lastSync) >= g.cfg.SyncInterval {
			g.logErr(ctx, what, sync(ctx))
			lastSync = time.Now()
		}
		if time.Since(lastBalance) >= g.cfg.BalanceInterval {
			g.balance(ctx, work)
			lastBalance = time.Now()
		}
	}
}

func (g *Group) logErr(ctx context.Context, what string, err error) {
	if err != nil && ctx.Err() == nil {
		g.log.WarnContext(ctx, "lease group: "+what+" failed", "err", err)
	}
}

// sync creates leases for keys that have none.
func (g *Group) sync(ctx context.Context, keys func(context.Context) ([]string, error)) error {
	want, err := keys(ctx)
	if err != nil {
		return err
	}
	have, err := g.table.List(ctx)
	if err != nil {
		return err
	}
	leased := make(map[string]bool, len(have))
	for _, l := range have {
		leased[l.Key] = true
	}
	for _, k := range want {
		if leased[k] {
			continue
		}
		if err := g.table.Create(ctx, k, nil, initialCheckpoint); err != nil {
			return err
		}
	}
	return nil
}

// balance reads the lease table and takes (or steals) leases as PlanTakes decides.
func (g *Group) balance(ctx context.Context, work func(context.Context, *Claim)) {
	leases, err := g.table.List(ctx)
	if err != nil {
		g.logErr(ctx, "read leases", err)
		return
	}
	now := time.Now()
	heldNow := map[string]bool{}
	for _, k := range g.Held() {
		heldNow[k] = true
	}
	byKey := make(map[string]Lease, len(leases))
	for _, l := range leases {
		byKey[l.Key] = l
		if o, ok := g.observed[l.Key]; !ok || o.counter != l.Counter {
			g.observed[l.Key] = observation{counter: l.Counter, since: now}
		}
	}
	for k := range g.observed {
		if _, ok := byKey[k]; !ok {
			delete(g.observed, k)
		}
	}
	ready := func(Lease) bool { return true }
	if g.cfg.Ready != nil {
		ready = g.cfg.Ready(leases)
	}
	views := make([]View, 0, len(leases))
	for _, l := range leases {
		owner := l.Owner
		expired := owner != "" && now.Sub(g.observed[l.Key].since) > g.cfg.LeaseDuration
		switch {
		case heldNow[l.Key]:
			owner, expired = g.cfg.WorkerID, false // ours; renewAll decides about it
		case owner == g.cfg.WorkerID:
			expired = true // a previous incarnation of this worker held it
		}
		views = append(views, View{Key: l.Key, Owner: owner, Expired: expired, Finished: l.Finished(), Ready: ready(l)})
	}
	p := PlanTakes(views, g.cfg.WorkerID)
	for _, k := range p.Take {
		g.acquire(ctx, byKey[k], false, work)
	}
	if p.Steal != "" {
		g.acquire(ctx, byKey[p.Steal], true, work)
	}
}

// acquire takes a lease at its observed counter and starts its work.
func (g *Group) acquire(ctx context.Context, observed Lease, steal bool, work func(context.Context, *Claim)) {
	renewed := time.Now()
	l, err := g.table.Take(ctx, observed, g.cfg.WorkerID)
	if err != nil {
		if !errors.Is(err, ErrLost) { // lost the race to another worker: fine
			g.logErr(ctx, "take lease", err)
		}
		return
	}
	if steal {
		g.stolen.Add(1)
		g.log.InfoContext(ctx, "lease group: stole lease", "key", l.Key, "from", observed.Owner)
	} else {
		g.taken.Add(1)
		g.log.DebugContext(ctx, "lease group: took lease", "key", l.Key, "previous_owner", observed.Owner)
	}
	g.observed[l.Key] = observation{counter: l.Counter, since: renewed}
	// The claim's context ends when the lease is lost; with Drain it survives Run's
	// end (so shutdown can let work in flight finish), and only the work's context ends
	// with Run's.
	base := ctx
	if g.cfg.Drain {
		base = context.WithoutCancel(ctx)
	}
	claimCtx, cancel := context.WithCancel(base)
	workCtx, stop := context.WithCancel(claimCtx)
	stopOnEnd := context.AfterFunc(ctx, stop)
	c := &Claim{g: g, lease: l, renewed: renewed, ctx: claimCtx, cancel: cancel, done: make(chan struct{})}
	g.mu.Lock()
	g.held[l.Key] = c
	g.mu.Unlock()
	go func() {
		defer close(c.done)
		defer stopOnEnd()
		defer cancel()
		work(workCtx, c)
		c.mu.Lock()
		gone := c.lost
		c.mu.Unlock()
		if !gone {
			return // Run is ending; shutdown releases the lease
		}
		g.mu.Lock()
		if g.held[l.Key] == c {
			delete(g.held, l.Key)
		}
		g.mu.Unlock()
	}()
}

// renewAll renews every held lease. A lease whose renewal fails its condition was taken
// by another worker: its work stops at once. One that cannot be renewed for almost a
// lease duration is given up too, before any other worker may consider it expired.
func (g *Group) renewAll(ctx context.Context) {
	g.mu.Lock()
	held := make([]*Claim, 0, len(g.held))
	for _, c := range g.held {
		held = append(held, c)
	}
	g.mu.Unlock()
	for _, c := range held {
		c.mu.Lock()
		if c.lost {
			c.mu.Unlock()
			continue
		}
		sent := time.Now()
		renewCtx, cancel := context.WithTimeout(ctx, g.cfg.RenewInterval)
		counter, err := g.table.Renew(renewCtx, c.lease)
		cancel()
		switch {
		case err == nil:
			c.lease.Counter = counter
			c.renewed = sent
		case errors.Is(err, ErrLost):
			g.loseLocked(ctx, c, err)
		case time.Since(c.renewed)+g.cfg.RenewInterval >= g.cfg.LeaseDuration:
			g.loseLocked(ctx, c, fmt.Errorf("no successful renewal for %v: %w", time.Since(c.renewed).Round(time.Millisecond), err))
		default:
			g.logErr(ctx, "renew lease", err)
		}
		c.mu.Unlock()
	}
}

// loseLocked stops the work of a lease that is gone. c.mu must be held.
func (g *Group) loseLocked(ctx context.Context, c *Claim, why error) {
	if c.lost {
		return
	}
	c.lost = true
	c.cancel()
	g.lost.Add(1)
	g.log.WarnContext(ctx, "lease group: lost lease; its work stopped", "key", c.lease.Key, "err", why)
}

// shutdown ends every lease's work, waits for it (up to ShutdownTimeout; with Drain,
// then ends the claims' contexts and waits until it has returned), and releases the
// leases so other workers take them at once.
func (g *Group) shutdown(ctx context.Context) {
	held := g.claims()
	waitCtx, stopWaiting := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.ShutdownTimeout)
	defer stopWaiting()
	for _, c := range held {
		select {
		case <-c.done:
			continue
		case <-waitCtx.Done():
		}
		if !g.cfg.Drain {
			g.log.WarnContext(ctx, "lease group: work did not stop in time; releasing its lease anyway", "key", c.lease.Key)
			continue
		}
		c.cancel() // the work had its time: what it still runs ends now
		<-c.done
	}
	releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.ShutdownTimeout)
	defer cancel()
	for _, c := range held {
		c.mu.Lock()
		if !c.lost {
			if err := g.table.Release(releaseCtx, c.lease, false); err != nil {
				g.log.WarnContext(releaseCtx, "lease group: release lease on shutdown failed; it will expire", "key", c.lease.Key, "err", err)
			} else {
				g.released.Add(1)
			}
			c.lost = true
		}
		c.mu.Unlock()
	}
	g.mu.Lock()
	g.held = map[string]*Claim{}
	g.mu.Unlock()
}
