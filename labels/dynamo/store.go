// Package dynamo is verdict's shared join store on DynamoDB: several verdict
// processes commit to the same table concurrently and every one of them counts
// exactly.
//
// # One table
//
// Records, tallies and the maturity index live in one table (pk, sk: strings). A
// record's outcome transition and the counts it moves must commit in one
// TransactWriteItems; one table keeps that to one resource for IAM, one TTL setting,
// one thing to create, back up and watch, and lets the maturity index be a sparse
// index of the record items themselves. Items:
//
//	pk                          sk                      attributes
//	r#<id>                      r                       rec (B, labels.Record), ver (N),
//	                                                     due_shard, due_at, due (pending),
//	                                                     expires_at (TTL, resolved only)
//	t#<hour>#<shard>            <bucket>#<series>       n_pred, n_flag, ... bin9 (N),
//	                                                     expires_at = bucket + Retention
//	a#<shard>                   <series>                all-time counters, same fields
//	u#<shard>                   u                       n: labels waiting for a prediction
//	dir                         <tally partition key>   directory of tally partitions
//	                                                     (t# entries expire after their counters)
//
// <hour> and <bucket> are Unix seconds as 16 sortable hex digits; <series> is
// variant#segment key#segment with '%' and '#' escaped.
//
// # Concurrency
//
// Records carry a version; a record is written only if its version is still the one
// read (attribute_not_exists for a new record). When a transaction is cancelled
// because a record changed, the record is dropped from it, the rest is committed, and
// Commit returns an error wrapping labels.ErrConflict: the join rereads and
// reapplies, and records that did commit come back as their new state, so nothing
// counts twice. Throttling and conflicts on shared counters are retried with backoff.
//
// # Counters without hot items
//
// Each writer adds to its own counters: the writer id hashes onto one of Shards
// shards, which is part of every counter's partition key, so writers never contend on
// a counter item and a bucket's writes spread over as many partitions as there are
// writers. Tallies sums the shards on read. The first time a process writes a tally
// partition it records the partition's key in the "dir" partition (an idempotent put
// before the transaction), so readers query exactly the partitions that exist, even
// after the shard count changes, without scanning the table.
//
// # Maturity index
//
// A record with pending predictions carries due_shard (hash of the id onto 16 shards)
// and due_at (its oldest pending prediction time); the global secondary index "due"
// (due_shard, due_at) therefore holds exactly the records with pending predictions,
// ordered by time, and an entry disappears in the same write that resolves its last
// prediction. Due queries the 16 index partitions from the oldest entry forward. This
// replaces a time-bucketed index: no marker of the oldest non-empty bucket to keep
// consistent with concurrent writers, no hot partition for the current hour, and no
// separate items to write. The index is eventually consistent, so Due may briefly
// list a prediction that was just resolved; the join rereads the record and skips it.
//
// # Expiry
//
// A record whose every prediction has its outcome gets expires_at = now + Retention
// (refreshed on every later write, removed if a new prediction makes it pending), and
// the table's TTL deletes it after that. A prediction or label replayed after its
// record expired is new to the store and counts again, so Retention must exceed any
// replay horizon (stream retention, backfills). Labels still waiting for their first
// prediction never expire. Bucket tallies expire Retention after their bucket (the
// all-time tallies keep their contribution), so the table stays bounded by the traffic
// of one retention period.
package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/tally"
)

// API is what the store needs from DynamoDB; *dynamodb.Client implements it.
type API interface {
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// Config configures a Store.
type Config struct {
	// Table is the table's name. Empty means "verdict-join".
	Table string
	// WriterID names this writer (for example the instance or task id); it selects the
	// counter shard the writer adds to. Required.
	WriterID string
	// Shards is how many counter shards writer ids hash onto. Zero means 16. It may
	// change between deployments: readers find every shard ever written.
	Shards int
	// Retention is how long a fully resolved record is kept after its last write, and
	// bucket tallies after their bucket (DynamoDB TTL). It must exceed any replay
	// horizon and the longest window. Zero means 90 days.
	Retention time.Duration
	// ReadConcurrency bounds parallel BatchGetItem and Query calls. Zero means 4.
	ReadConcurrency int
	// Logger receives retries and conflicts. Nil discards them.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultTable     = "verdict-join"
	DefaultShards    = 16
	DefaultRetention = 90 * 24 * time.Hour
	// Forever is the Retention of a store that keeps its records: a TTL a century
	// ahead.
	Forever = 100 * 365 * 24 * time.Hour
)

// maxGroup bounds the events of one join commit on this store: a commit becomes
// transactions of at most maxTxnItems items each, retried one by one on conflicts.
const maxGroup = 1000

// Store is the DynamoDB join store. It is safe for concurrent use.
type Store struct {
	api    API
	table  string
	shard  int
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	txnMax int // items per transaction; maxTxnItems except in tests

	mu         sync.Mutex
	registered map[string]bool // tally partitions known to be in the directory

	transactions atomic.Int64
	conflicts    atomic.Int64
	retries      atomic.Int64
}

// New returns a store on cfg.Table. Call EnsureTables once before using it.
func New(api API, cfg Config) (*Store, error) {
	if api == nil {
		return nil, errors.New("dynamo: no DynamoDB client")
	}
	if cfg.WriterID == "" {
		return nil, errors.New("dynamo: config: WriterID is required (it selects this writer's counter shard)")
	}
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.Shards == 0 {
		cfg.Shards = DefaultShards
	}
	if cfg.Shards < 0 {
		return nil, fmt.Errorf("dynamo: config: Shards %d is negative", cfg.Shards)
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("dynamo: config: Retention %v is negative", cfg.Retention)
	}
	if cfg.ReadConcurrency <= 0 {
		cfg.ReadConcurrency = 4
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{
		api:        api,
		table:      cfg.Table,
		shard:      hashShard(cfg.WriterID, cfg.Shards),
		cfg:        cfg,
		log:        log.With("table", cfg.Table, "writer", cfg.WriterID),
		now:        time.Now,
		txnMax:     maxTxnItems,
		registered: map[string]bool{},
	}, nil
}

// Stats are the store's counts since it was created.
type Stats struct {
	// Transactions counts committed TransactWriteItems calls.
	Transactions int64
	// Conflicts counts records whose commit found them changed by another writer
	// (each one made Commit return labels.ErrConflict).
	Conflicts int64
	// Retries counts calls retried after throttling or a conflict on a shared item.
	Retries int64
}

// Stats returns the store's counts.
func (s *Store) Stats() Stats {
	return Stats{Transactions: s.transactions.Load(), Conflicts: s.conflicts.Load(), Retries: s.retries.Load()}
}

// MaxGroup is the most events the join should commit at once on this store
// (labels.Config.MaxGroup).
func (s *Store) MaxGroup() int { return maxGroup }

// Shard is the counter shard this store's writer adds to.
func (s *Store) Shard() int { return s.shard }

const batchGetMax = 100

// Records implements labels.Store with strongly consistent BatchGetItem calls.
func (s *Store) Records(ctx context.Context, ids []string) ([]*labels.Record, error) {
	out := make([]*labels.Record, len(ids))
	at := make(map[string][]int, len(ids))
	unique := make([]string, 0, len(ids))
	for i, id := range ids {
		if _, ok := at[id]; !ok {
			unique = append(unique, id)
		}
		at[id] = append(at[id], i)
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.ReadConcurrency)
	for chunk := range slices.Chunk(unique, batchGetMax) {
		g.Go(func() error {
			return s.batchGet(gctx, chunk, func(r *labels.Record) {
				mu.Lock()
				defer mu.Unlock()
				for _, i := range at[r.ID] {
					out[i] = r
				}
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// maxAttempts bounds retries of unprocessed keys, throttled transactions and
// conflicts on shared items.
const maxAttempts = 10

func (s *Store) batchGet(ctx context.Context, ids []string, found func(*labels.Record)) error {
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = key(recordPK(id), skRecord)
	}
	for attempt := 0; len(keys) > 0; attempt++ {
		if attempt > 0 {
			if attempt == maxAttempts {
				return fmt.Errorf("dynamo: read records from %s: %d keys still unprocessed after %d attempts (first %q)",
					s.table, len(keys), maxAttempts, ids[0])
			}
			s.retries.Add(1)
			if err := sleep(ctx, attempt); err != nil {
				return fmt.Errorf("dynamo: read records from %s: %w", s.table, err)
			}
		}
		out, err := s.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{s.table: {
				Keys:                     keys,
				ConsistentRead:           aws.Bool(true),
				ProjectionExpression:     aws.String("#pk, #rec, #ver"),
				ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#rec": attrRecord, "#ver": attrVersion},
			}},
		})
		if err != nil {
			return fmt.Errorf("dynamo: read %d records from %s (first %q): %w", len(keys), s.table, ids[0], err)
		}
		for _, item := range out.Responses[s.table] {
			r, err := recordOf(item)
			if err != nil {
				return fmt.Errorf("dynamo: table %s: %w", s.table, err)
			}
			found(r)
		}
		keys = out.UnprocessedKeys[s.table].Keys
	}
	return nil
}

func recordOf(item map[string]types.AttributeValue) (*labels.Record, error) {
	pk, _ := item[attrPK].(*types.AttributeValueMemberS)
	if pk == nil {
		return nil, errors.New("record item without a partition key")
	}
	id, ok := idOfRecordPK(pk.Value)
	if !ok {
		return nil, fmt.Errorf("record item %q: not a record key", pk.Value)
	}
	b, _ := item[attrRecord].(*types.AttributeValueMemberB)
	v, _ := item[attrVersion].(*types.AttributeValueMemberN)
	if b == nil || v == nil {
		return nil, fmt.Errorf("record %q: missing %s or %s", id, attrRecord, attrVersion)
	}
	r, err := labels.UnmarshalRecord(id, b.Value)
	if err != nil {
		return nil, err
	}
	ver, err := parseInt(v.Value)
	if err != nil || ver <= 0 {
		return nil, fmt.Errorf("record %q: bad version %q", id, v.Value)
	}
	r.Version = uint64(ver)
	return r, nil
}

// Commit implements labels.Store. Each RecordChange commits atomically with the
// counts it moves; several share a transaction. Records another writer changed since
// they were read are left out and reported as labels.ErrConflict after the rest is
// committed.
func (s *Store) Commit(ctx context.Context, c *labels.Change) error {
	idx := make([]int, len(c.Records))
	for i := range idx {
		idx[i] = i
	}
	txns, err := pack(c.Records, idx, s.shard, s.txnMax, maxTxnBytes)
	if err != nil {
		return fmt.Errorf("dynamo: commit to %s: %w", s.table, err)
	}
	var conflicted []string
	for _, t := range txns {
		if err := s.register(ctx, t.partitions(s.shard)); err != nil {
			return err
		}
		ids, err := s.commitTxn(ctx, c.Records, t)
		conflicted = append(conflicted, ids...)
		if err != nil {
			return err
		}
	}
	if len(conflicted) > 0 {
		s.conflicts.Add(int64(len(conflicted)))
		s.log.Debug("records changed concurrently", "records", len(conflicted), "first", conflicted[0])
		return fmt.Errorf("dynamo: commit to %s: %d records changed since read (first %q): %w",
			s.table, len(conflicted), conflicted[0], labels.ErrConflict)
	}
	return nil
}

// register records tally partitions in the directory before anything is written to
// them, so readers find them. Each process does it once per partition.
func (s *Store) register(ctx context.Context, partitions []string) error {
	for _, p := range partitions {
		s.mu.Lock()
		known := s.registered[p]
		s.mu.Unlock()
		if known {
			continue
		}
		item := key(pkDirectory, p)
		if hour, ok := partitionHour(p); ok {
			// The entry outlives the hour's bucket counters, which expire Retention
			// after their bucket.
			item[attrExpiresAt] = num(hour + hourSeconds + int64(s.cfg.Retention/time.Second))
		}
		_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item})
		if err != nil {
			return fmt.Errorf("dynamo: register tally partition %q in %s: %w", p, s.table, err)
		}
		s.mu.Lock()
		s.registered[p] = true
		s.mu.Unlock()
	}
	return nil
}

// commitTxn sends one transaction. Records whose condition failed are dropped and the
// rest is sent again; their ids are returned. Throttling and conflicts on shared
// counters are retried with backoff.
func (s *Store) commitTxn(ctx context.Context, rcs []labels.RecordChange, t *txn) (conflicted []string, err error) {
	for attempt := 0; ; attempt++ {
		items, owner := t.request(s.table, rcs, s.shard, s.now(), s.cfg.Retention)
		if len(items) == 0 {
			return conflicted, nil
		}
		_, err := s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			s.transactions.Add(1)
			return conflicted, nil
		}
		first := rcs[t.records[0]].ID
		var canceled *types.TransactionCanceledException
		var inProgress *types.TransactionInProgressException
		switch {
		case errors.As(err, &canceled):
			drop, retry, fatal := classify(canceled.CancellationReasons, owner)
			if fatal != "" {
				return conflicted, fmt.Errorf("dynamo: commit %d records to %s (first %q): %s: %w", len(t.records), s.table, first, fatal, err)
			}
			if len(drop) > 0 {
				keep := make([]int, 0, len(t.records))
				for _, i := range t.records {
					if !drop[i] {
						keep = append(keep, i)
					} else {
						conflicted = append(conflicted, rcs[i].ID)
					}
				}
				// The same records without the conflicting ones: fewer items, so one
				// transaction still holds them.
				next, err := pack(rcs, keep, s.shard, s.txnMax, maxTxnBytes)
				if err != nil {
					return conflicted, fmt.Errorf("dynamo: commit to %s: %w", s.table, err)
				}
				if len(next) > 1 {
					return conflicted, fmt.Errorf("dynamo: commit to %s: %d records no longer fit one transaction", s.table, len(keep))
				}
				if len(next) == 0 {
					return conflicted, nil
				}
				t = next[0]
				attempt = -1
				continue
			}
			if !retry {
				// Reasons that name no item: let the join reread everything.
				for _, i := range t.records {
					conflicted = append(conflicted, rcs[i].ID)
				}
				return conflicted, nil
			}
		case errors.As(err, &inProgress):
		default:
			return conflicted, fmt.Errorf("dynamo: commit %d records to %s (first %q): %w", len(t.records), s.table, first, err)
		}
		if attempt+1 == maxAttempts {
			// Contention on shared counters that outlasted the backoff: the join rereads
			// and tries again.
			for _, i := range t.records {
				conflicted = append(conflicted, rcs[i].ID)
			}
			s.log.Warn("transaction still contended after retries", "records", len(t.records), "first", first, "err", err)
			return conflicted, nil
		}
		s.retries.Add(1)
		s.log.Debug("retrying transaction", "attempt", attempt+1, "records", len(t.records), "err", err)
		if err := sleep(ctx, attempt+1); err != nil {
			return conflicted, fmt.Errorf("dynamo: commit to %s: %w", s.table, err)
		}
	}
}

// classify reads a cancelled transaction's reasons (one per action, in order; AWS says
// "None" for actions that were fine, kumo ""). drop holds the records whose condition
// failed or that another transaction was writing; retry is set when only shared
// counters were contended or throttled; fatal describes a reason retrying cannot fix.
func classify(reasons []types.CancellationReason, owner []int) (drop map[int]bool, retry bool, fatal string) {
	if len(reasons) != len(owner) {
		return nil, false, ""
	}
	for i, r := range reasons {
		code := aws.ToString(r.Code)
		switch code {
		case "", "None":
		case "ConditionalCheckFailed", "TransactionConflict":
			if owner[i] >= 0 {
				if drop == nil {
					drop = map[int]bool{}
				}
				drop[owner[i]] = true
			} else if code == "TransactionConflict" {
				retry = true
			} else {
				return nil, false, "condition failed on a counter item"
			}
		case "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
			retry = true
		default:
			return nil, false, fmt.Sprintf("action %d: %s: %s", i, code, aws.ToString(r.Message))
		}
	}
	return drop, retry, ""
}

// sleep waits a jittered exponential backoff: about 25 ms × 2^attempt, at most 2 s.
func sleep(ctx context.Context, attempt int) error {
	d := min(25*time.Millisecond<<min(attempt, 10), 2*time.Second)
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Due implements labels.Store: it queries each partition of the "due" index for
// records whose oldest pending prediction is before t. A partition's first limit
// records are enough: each holds at least one due prediction no later than any after
// it.
func (s *Store) Due(ctx context.Context, before time.Time, limit int) ([]labels.DueRef, error) {
	if limit <= 0 {
		return nil, nil
	}
	cutoff := before.UnixNano()
	var mu sync.Mutex
	var refs []labels.DueRef
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.ReadConcurrency)
	for shard := range dueShards {
		g.Go(func() error {
			var mine []labels.DueRef
			records := 0
			err := s.query(gctx, &dynamodb.QueryInput{
				TableName:                aws.String(s.table),
				IndexName:                aws.String(dueIndex),
				KeyConditionExpression:   aws.String("#dsh = :dsh AND #dat < :before"),
				ExpressionAttributeNames: map[string]string{"#dsh": attrDueShard, "#dat": attrDueAt},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":dsh": num(int64(shard)), ":before": num(cutoff),
				},
				Limit: aws.Int32(int32(min(limit, 1000))),
			}, func(item map[string]types.AttributeValue) (bool, error) {
				pk, _ := item[attrPK].(*types.AttributeValueMemberS)
				due, _ := item[attrDue].(*types.AttributeValueMemberSS)
				if pk == nil || due == nil {
					return true, nil
				}
				id, _ := idOfRecordPK(pk.Value)
				for _, e := range due.Value {
					ref, err := parseDueEntry(id, e)
					if err != nil {
						return false, err
					}
					if ref.Time < cutoff {
						mine = append(mine, ref)
					}
				}
				records++
				return records < limit, nil
			})
			if err != nil {
				return fmt.Errorf("dynamo: query maturity index of %s, partition %d: %w", s.table, shard, err)
			}
			mu.Lock()
			refs = append(refs, mine...)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(refs, func(a, b labels.DueRef) int {
		return cmp.Or(cmp.Compare(a.Time, b.Time), strings.Compare(a.ID, b.ID), strings.Compare(a.Variant, b.Variant))
	})
	if len(refs) > limit {
		refs = refs[:limit]
	}
	return refs, nil
}

// query calls fn with every item the query returns, page by page, until fn says stop.
func (s *Store) query(ctx context.Context, in *dynamodb.QueryInput, fn func(map[string]types.AttributeValue) (more bool, err error)) error {
	for {
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			more, err := fn(item)
			if err != nil || !more {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// partitions lists the directory's entries between lo and hi (inclusive).
func (s *Store) partitions(ctx context.Context, lo, hi string) ([]string, error) {
	var out []string
	err := s.query(ctx, &dynamodb.QueryInput{
		TableName:                aws.String(s.table),
		ConsistentRead:           aws.Bool(true),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: pkDirectory},
			":lo": &types.AttributeValueMemberS{Value: lo},
			":hi": &types.AttributeValueMemberS{Value: hi},
		},
	}, func(item map[string]types.AttributeValue) (bool, error) {
		if sk, ok := item[attrSK].(*types.AttributeValueMemberS); ok {
			out = append(out, sk.Value)
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("dynamo: list tally partitions %s..%s in %s: %w", lo, hi, s.table, err)
	}
	return out, nil
}

// Tallies implements labels.Store: it reads every shard's counters and calls fn with
// their sums, all-time tallies first, then bucket tallies hour by hour.
func (s *Store) Tallies(ctx context.Context, since int64, fn func(tally.Delta, bool) error) error {
	all, err := s.partitions(ctx, prefixAll, prefixAll+"~")
	if err != nil {
		return err
	}
	if err := s.sumPartitions(ctx, all, "", true, fn); err != nil {
		return err
	}
	buckets, err := s.partitions(ctx, prefixBucket+sortableHex(hourOf(since)), prefixBucket+"~")
	if err != nil {
		return err
	}
	// Partition keys sort by hour (sortable hex), then shard: group them by hour.
	slices.Sort(buckets)
	for len(buckets) > 0 {
		hour, _, _ := strings.Cut(strings.TrimPrefix(buckets[0], prefixBucket), "#")
		n := 1
		for n < len(buckets) && strings.HasPrefix(buckets[n], prefixBucket+hour+"#") {
			n++
		}
		if err := s.sumPartitions(ctx, buckets[:n], sortableHex(since), false, fn); err != nil {
			return err
		}
		buckets = buckets[n:]
	}
	return nil
}

// sumPartitions reads the counters of partitions (the shards of one kind of tally)
// with sort keys from skFrom on, sums them per series and bucket and calls fn in key
// order.
func (s *Store) sumPartitions(ctx context.Context, partitions []string, skFrom string, allTime bool, fn func(tally.Delta, bool) error) error {
	type sumKey struct {
		key    tally.Key
		bucket int64
	}
	var mu sync.Mutex
	sums := map[sumKey]*tally.Counts{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.ReadConcurrency)
	for _, p := range partitions {
		g.Go(func() error {
			in := &dynamodb.QueryInput{
				TableName:                 aws.String(s.table),
				ConsistentRead:            aws.Bool(true),
				KeyConditionExpression:    aws.String("#pk = :pk"),
				ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
				ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: p}},
			}
			if skFrom != "" {
				in.KeyConditionExpression = aws.String("#pk = :pk AND #sk >= :from")
				in.ExpressionAttributeNames["#sk"] = attrSK
				in.ExpressionAttributeValues[":from"] = &types.AttributeValueMemberS{Value: skFrom}
			}
			err := s.query(gctx, in, func(item map[string]types.AttributeValue) (bool, error) {
				sk, _ := item[attrSK].(*types.AttributeValueMemberS)
				if sk == nil {
					return false, errors.New("counter item without a sort key")
				}
				var k sumKey
				var err error
				if allTime {
					k.key, err = parseSeriesSK(sk.Value)
				} else {
					k.bucket, k.key, err = parseBucketSK(sk.Value)
				}
				if err != nil {
					return false, err
				}
				c, err := countsOf(item)
				if err != nil {
					return false, fmt.Errorf("%s/%s: %w", p, sk.Value, err)
				}
				mu.Lock()
				defer mu.Unlock()
				if sums[k] == nil {
					sums[k] = &tally.Counts{}
				}
				sums[k].Add(c)
				return true, nil
			})
			if err != nil {
				return fmt.Errorf("dynamo: read tallies of partition %q in %s: %w", p, s.table, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	keys := make([]sumKey, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b sumKey) int {
		return cmp.Or(cmp.Compare(a.bucket, b.bucket), strings.Compare(a.key.Variant, b.key.Variant),
			strings.Compare(a.key.SegmentKey, b.key.SegmentKey), strings.Compare(a.key.Segment, b.key.Segment))
	})
	for _, k := range keys {
		if err := fn(tally.Delta{Key: k.key, Bucket: k.bucket, Counts: *sums[k]}, allTime); err != nil {
			return err
		}
	}
	return nil
}

// Unmatched implements labels.Store: the sum of every writer's unmatched counter.
func (s *Store) Unmatched(ctx context.Context) (int64, error) {
	parts, err := s.partitions(ctx, prefixUnmat, prefixUnmat+"~")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range parts {
		err := s.query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			ConsistentRead:            aws.Bool(true),
			KeyConditionExpression:    aws.String("#pk = :pk"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: p}},
		}, func(item map[string]types.AttributeValue) (bool, error) {
			n, ok := item[attrCount].(*types.AttributeValueMemberN)
			if !ok {
				return true, nil
			}
			v, err := parseInt(n.Value)
			if err != nil {
				return false, err
			}
			total += v
			return true, nil
		})
		if err != nil {
			return 0, fmt.Errorf("dynamo: read unmatched count %q in %s: %w", p, s.table, err)
		}
	}
	return total, nil
}

var _ labels.Store = (*Store)(nil)
