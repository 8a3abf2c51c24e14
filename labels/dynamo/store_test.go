package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/internal/emulatortest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/storetest"
	"github.com/verdictml/verdict/tally"
)

// These tests run against kumo over the wire (scripts/test.sh starts it).

// newStore returns a store on table (created if needed) for writer.
func newStore(t *testing.T, db *dynamodb.Client, table, writer string) *Store {
	t.Helper()
	st, err := New(db, Config{Table: table, WriterID: writer})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestStoreConformance runs the join semantics on kumo: every case on a table of its
// own, written by writer-a; a reopen is another process (writer-b, counting in its
// own shard) on the same table.
func TestStoreConformance(t *testing.T) {
	db := emulatortest.DynamoDBClient(t)
	storetest.Run(t, func(t *testing.T) (labels.Store, func(*testing.T) labels.Store) {
		table := emulatortest.TableName(t, db, "join")
		return newStore(t, db, table, "writer-a"), func(t *testing.T) labels.Store { return newStore(t, db, table, "writer-b") }
	})
}

func TestStaleRecordIsAConflictAndTheRestCommits(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)
	table := emulatortest.TableName(t, db, "join")
	a, b := newStore(t, db, table, "writer-a"), newStore(t, db, table, "writer-b")
	ja, err := labels.Open(ctx, a, labels.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ja.Apply(ctx, storetest.Preds(storetest.Pred("x", "v5", 0.9), storetest.Pred("y", "v5", 0.9))); err != nil {
		t.Fatal(err)
	}
	recs, err := b.Records(ctx, []string{"x", "y", "z"})
	if err != nil {
		t.Fatal(err)
	}
	if recs[0] == nil || recs[0].Version != 1 || recs[1] == nil || recs[2] != nil {
		t.Fatalf("records: %+v", recs)
	}
	// Writer a labels x; writer b then commits its stale copy of x with y and z.
	if _, err := ja.Apply(ctx, storetest.Labels(storetest.Label("x", true, time.Hour))); err != nil {
		t.Fatal(err)
	}
	delta := func(id string) labels.RecordChange {
		r := &labels.Record{ID: id, Label: &labels.LabelState{Positive: false, Time: 1}}
		for _, old := range recs {
			if old != nil && old.ID == id {
				r.Preds, r.Version = old.Preds, old.Version
			}
		}
		return labels.RecordChange{ID: id, Record: r, Deltas: []tally.Delta{{Key: tally.Key{Variant: "v5"}, Counts: tally.Counts{TN: 1}}}}
	}
	err = b.Commit(ctx, &labels.Change{Records: []labels.RecordChange{delta("x"), delta("y"), delta("z")}})
	if !errors.Is(err, labels.ErrConflict) {
		t.Fatalf("commit with a stale record: err = %v, want ErrConflict", err)
	}
	if s := b.Stats(); s.Conflicts != 1 || s.Transactions != 1 {
		t.Errorf("stats %+v, want 1 conflict and 1 transaction", s)
	}
	got, err := b.Records(ctx, []string{"x", "y", "z"})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Version != 2 || got[0].Label == nil || !got[0].Label.Positive {
		t.Errorf("x: %+v, want writer a's label at version 2", got[0])
	}
	if got[1].Version != 2 || got[2] == nil || got[2].Version != 1 {
		t.Errorf("y, z: %+v %+v, want them committed", got[1], got[2])
	}
	if tn := storetest.ReadTallies(t, b).AllTime[tally.Key{Variant: "v5"}].TN; tn != 2 {
		t.Errorf("TN %d, want 2 (y and z, not the stale x)", tn)
	}
}

func TestConcurrentWritersCountExactly(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)
	table := emulatortest.TableName(t, db, "join")
	s := storetest.RandomStream(7, 150, true)
	cfg := labels.Config{SegmentKeys: []string{"merchant_category"}}

	// Pick writer ids on three different shards, so the sum on read is exercised.
	var stores []*Store
	shards := map[int]bool{}
	for i := 0; len(stores) < 3; i++ {
		st := newStore(t, db, table, "verdict-"+strconv.Itoa(i))
		if !shards[st.Shard()] {
			shards[st.Shard()] = true
			stores = append(stores, st)
		}
	}

	// Every event goes to two or three writers, each in its own shuffled order, in
	// small batches: writers read and write the same records at the same time.
	type event struct {
		p *ingest.Prediction
		l *ingest.Label
	}
	parts := make([][]event, len(stores))
	rng := rand.New(rand.NewPCG(7, 2))
	add := func(e event) {
		skip := rng.IntN(len(stores) + 1) // == len(stores): everyone gets it
		for w := range stores {
			if w != skip {
				parts[w] = append(parts[w], e)
			}
		}
	}
	for i := range s.Preds {
		add(event{p: &s.Preds[i]})
	}
	for i := range s.Labels {
		add(event{l: &s.Labels[i]})
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(stores))
	for w, st := range stores {
		part := parts[w]
		rng := rand.New(rand.NewPCG(uint64(w), 3))
		rng.Shuffle(len(part), func(i, j int) { part[i], part[j] = part[j], part[i] })
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, err := labels.Open(ctx, st, cfg, nil)
			if err != nil {
				errs <- err
				return
			}
			for len(part) > 0 {
				n := min(len(part), 1+rng.IntN(12))
				var b ingest.Batch
				for _, e := range part[:n] {
					if e.p != nil {
						b.Predictions = append(b.Predictions, *e.p)
					} else {
						b.Labels = append(b.Labels, *e.l)
					}
				}
				part = part[n:]
				for {
					_, err := j.Apply(ctx, b)
					if errors.Is(err, labels.ErrConflict) {
						continue // the join gave up rereading; the batch is idempotent
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var conflicts int64
	for _, st := range stores {
		conflicts += st.Stats().Conflicts
	}
	t.Logf("conflicts: %d, stats %+v %+v %+v", conflicts, stores[0].Stats(), stores[1].Stats(), stores[2].Stats())
	if conflicts == 0 {
		t.Fatal("no writer saw a conflict: the test did not exercise concurrent commits")
	}

	storetest.CheckRecount(t, newStore(t, db, table, "reader"), s)
}

func TestEnsureTables(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)

	t.Run("creates the table with the due index and TTL, and accepts it again", func(t *testing.T) {
		table := emulatortest.TableName(t, db, "join")
		st := newStore(t, db, table, "w")
		if err := st.EnsureTables(ctx); err != nil {
			t.Fatalf("second EnsureTables: %v", err)
		}
		out, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		if d := out.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != attrExpiresAt || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
			t.Fatalf("TTL: %+v", out.TimeToLiveDescription)
		}
	})

	t.Run("several processes ensure the same new table at once", func(t *testing.T) {
		table := emulatortest.TableName(t, db, "join")
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			st, err := New(db, Config{Table: table, WriterID: fmt.Sprint("w", i)})
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = st.EnsureTables(ctx)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("process %d: %v", i, err)
			}
		}
	})

	t.Run("rejects a table with another key schema", func(t *testing.T) {
		table := emulatortest.TableName(t, db, "other")
		_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(table),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		})
		if err != nil {
			t.Fatal(err)
		}
		st, err := New(db, Config{Table: table, WriterID: "w"})
		if err != nil {
			t.Fatal(err)
		}
		err = st.EnsureTables(ctx)
		if err == nil {
			t.Fatal("EnsureTables accepted a table keyed by id only")
		}
		t.Logf("error: %v", err)
	})
}

func TestResolvedRecordsExpire(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)
	st := newStore(t, db, emulatortest.TableName(t, db, "join"), "w")
	j, err := labels.Open(ctx, st, labels.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if _, err := j.Apply(ctx, ingest.Batch{
		Predictions: []ingest.Prediction{storetest.Pred("done", "v5", 0.9), storetest.Pred("open", "v5", 0.9)},
		Labels:      []ingest.Label{storetest.Label("done", true, time.Hour), storetest.Label("waiting", true, time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	expires := func(id string) (int64, bool) {
		out, err := db.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(st.table),
			ConsistentRead:            aws.Bool(true),
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: recordPK(id)}},
		})
		if err != nil || len(out.Items) != 1 {
			t.Fatalf("read %q: %d items, %v", id, len(out.Items), err)
		}
		n, ok := out.Items[0][attrExpiresAt].(*types.AttributeValueMemberN)
		if !ok {
			return 0, false
		}
		v, _ := strconv.ParseInt(n.Value, 10, 64)
		return v, true
	}
	at, ok := expires("done")
	lo, hi := before.Add(DefaultRetention).Unix(), time.Now().Add(DefaultRetention).Unix()
	if !ok || at < lo || at > hi {
		t.Errorf("resolved record expires at %d (set %v), want within [%d, %d]", at, ok, lo, hi)
	}
	if _, ok := expires("open"); ok {
		t.Error("a record with a pending prediction expires")
	}
	if _, ok := expires("waiting"); ok {
		t.Error("a label waiting for its prediction expires")
	}
}

// faultyAPI is kumo with the faults kumo never produces: unprocessed keys from
// BatchGetItem, and transactions cancelled by contention on a counter or throttling.
type faultyAPI struct {
	*dynamodb.Client
	mu          sync.Mutex
	unprocessed int // BatchGetItem calls that leave half their keys unprocessed
	contended   int // TransactWriteItems calls cancelled: TransactionConflict on a counter
	throttled   int // TransactWriteItems calls cancelled: ThrottlingError
}

func (f *faultyAPI) take(n *int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *n > 0 {
		*n--
		return true
	}
	return false
}

func (f *faultyAPI) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	for table, ka := range in.RequestItems {
		if len(ka.Keys) < 2 || !f.take(&f.unprocessed) {
			break
		}
		half := len(ka.Keys) / 2
		rest := ka
		rest.Keys = ka.Keys[half:]
		ka.Keys = ka.Keys[:half]
		out, err := f.Client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: ka}}, opts...)
		if err != nil {
			return nil, err
		}
		out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: rest}
		return out, nil
	}
	return f.Client.BatchGetItem(ctx, in, opts...)
}

func (f *faultyAPI) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	code := ""
	switch {
	case f.take(&f.contended):
		code = "TransactionConflict"
	case f.take(&f.throttled):
		code = "ThrottlingError"
	default:
		return f.Client.TransactWriteItems(ctx, in, opts...)
	}
	reasons := make([]types.CancellationReason, len(in.TransactItems))
	hit := false
	for i, it := range in.TransactItems {
		reasons[i].Code = aws.String("None")
		pk := it.Update.Key[attrPK].(*types.AttributeValueMemberS).Value
		if !hit && pk[:2] != prefixRecord {
			reasons[i].Code = aws.String(code)
			hit = true
		}
	}
	return nil, &types.TransactionCanceledException{Message: aws.String("injected"), CancellationReasons: reasons}
}

func TestLargeBatchesWithUnprocessedKeysContentionAndThrottling(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)
	api := &faultyAPI{Client: db, unprocessed: 3, contended: 2, throttled: 2}
	st, err := New(api, Config{Table: emulatortest.TableName(t, db, "join"), WriterID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureTables(ctx); err != nil {
		t.Fatal(err)
	}
	s := storetest.RandomStream(11, 400, true)
	j, err := labels.Open(ctx, st, labels.Config{SegmentKeys: []string{"merchant_category"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Hundreds of records per commit: several BatchGetItem calls and transactions.
	if _, err := j.Apply(ctx, ingest.Batch{Predictions: s.Preds}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Apply(ctx, ingest.Batch{Labels: s.Labels}); err != nil {
		t.Fatal(err)
	}
	// A replay of everything changes nothing.
	if _, err := j.Apply(ctx, ingest.Batch{Predictions: s.Preds, Labels: s.Labels}); err != nil {
		t.Fatal(err)
	}
	stats := st.Stats()
	if stats.Retries < 7 || api.unprocessed+api.contended+api.throttled != 0 {
		t.Errorf("stats %+v, faults left %+v: the faults were not all retried", stats, api)
	}
	if stats.Transactions < 8 {
		t.Errorf("%d transactions: batches were not split", stats.Transactions)
	}
	storetest.CheckRecount(t, st, s)
}
