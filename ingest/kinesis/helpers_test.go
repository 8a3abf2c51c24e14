package kinesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	kds "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/verdictml/verdict/ingest/lease"
	"github.com/verdictml/verdict/internal/emulatortest"
)

// peers are the emulator clients and the names one test uses.
type peers struct {
	kinesis *kds.Client
	dynamo  *dynamodb.Client
	stream  string
	table   string
}

func newPeers(t *testing.T, shards int32) peers {
	t.Helper()
	k := emulatortest.KinesisClient(t)
	d := emulatortest.DynamoDBClient(t)
	return peers{
		kinesis: k,
		dynamo:  d,
		stream:  emulatortest.CreateStream(t, k, shards),
		table:   emulatortest.TableName(t, d, "leases"),
	}
}

// testConfig is a Config with short timings so each test runs in seconds.
func (p peers) testConfig(worker string) Config {
	return Config{
		Stream:            p.stream,
		LeaseTable:        p.table,
		WorkerID:          worker,
		LeaseDuration:     time.Second,
		RenewInterval:     200 * time.Millisecond,
		BalanceInterval:   200 * time.Millisecond,
		ShardSyncInterval: 500 * time.Millisecond,
		IdlePollInterval:  30 * time.Millisecond,
		MaxBackoff:        200 * time.Millisecond,
		ShutdownTimeout:   3 * time.Second,
		Logger:            testLogger(),
	}
}

func testLogger() *slog.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// put writes n records with data "<prefix>-<i>" and distinct partition keys (so they
// spread over the shards) and returns the data strings.
func (p peers) put(t *testing.T, prefix string, n int) []string {
	t.Helper()
	var all []string
	for start := 0; start < n; start += 500 {
		var entries []types.PutRecordsRequestEntry
		for i := start; i < min(n, start+500); i++ {
			data := fmt.Sprintf("%s-%d", prefix, i)
			all = append(all, data)
			entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(data), PartitionKey: aws.String(data)})
		}
		out, err := p.kinesis.PutRecords(context.Background(), &kds.PutRecordsInput{StreamName: aws.String(p.stream), Records: entries})
		if err != nil {
			t.Fatalf("put records to %q: %v", p.stream, err)
		}
		if aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("put records to %q: %d failed", p.stream, aws.ToInt32(out.FailedRecordCount))
		}
	}
	return all
}

// leaseItems reads the lease table directly, by shard ID.
func (p peers) leaseItems(t *testing.T) map[string]lease.Lease {
	t.Helper()
	lt := lease.NewTable(p.dynamo, p.table, p.stream)
	leases, err := lt.List(context.Background())
	if err != nil {
		t.Fatalf("read lease table: %v", err)
	}
	m := map[string]lease.Lease{}
	for _, l := range leases {
		m[l.Key] = l
	}
	return m
}

// delivery is one record handed to a handler.
type delivery struct {
	worker, shard, seq, data string
	order                    int64 // global order of Handle calls across workers
}

// recorder is a Handler that remembers every record it accepted, in order.
type recorder struct {
	worker string
	log    *deliveryLog
	// fail, when set, decides per call whether Handle fails (the call's records are
	// then not accepted).
	fail func(shard string, records []types.Record) error
}

type deliveryLog struct {
	mu    sync.Mutex
	order atomic.Int64
	all   []delivery
}

func (r *recorder) Handle(ctx context.Context, shard string, records []types.Record) error {
	if r.fail != nil {
		if err := r.fail(shard, records); err != nil {
			return err
		}
	}
	order := r.log.order.Add(1)
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	for _, rec := range records {
		r.log.all = append(r.log.all, delivery{worker: r.worker, shard: shard, seq: aws.ToString(rec.SequenceNumber), data: string(rec.Data), order: order})
	}
	return nil
}

func (l *deliveryLog) snapshot() []delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]delivery(nil), l.all...)
}

// covers reports whether every data string was delivered at least once.
func (l *deliveryLog) covers(want []string) bool {
	got := map[string]bool{}
	for _, d := range l.snapshot() {
		got[d.data] = true
	}
	for _, w := range want {
		if !got[w] {
			return false
		}
	}
	return true
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running is a Consumer started in the background.
type running struct {
	c      *Consumer
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, c *Consumer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it to return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run returned %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("Run did not return within 15 s of cancellation")
	}
}

func seqLess(a, b string) bool {
	x, okx := new(big.Int).SetString(a, 10)
	y, oky := new(big.Int).SetString(b, 10)
	if !okx || !oky {
		return a < b
	}
	return x.Cmp(y) < 0
}

// errKilled is what a killed worker's clients return.
var errKilled = errors.New("worker killed")

// killableTable is a lease table client that fails every call once killed: the worker
// can neither renew, nor checkpoint, nor release — as if its process died.
type killableTable struct {
	LeaseTableAPI
	killed atomic.Bool
}

func (k *killableTable) check() error {
	if k.killed.Load() {
		return errKilled
	}
	return nil
}

func (k *killableTable) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	return k.LeaseTableAPI.Scan(ctx, in, o...)
}

func (k *killableTable) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	return k.LeaseTableAPI.PutItem(ctx, in, o...)
}

func (k *killableTable) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	return k.LeaseTableAPI.UpdateItem(ctx, in, o...)
}

func (k *killableTable) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	return k.LeaseTableAPI.DeleteItem(ctx, in, o...)
}

// faultyStream injects Kinesis errors in front of the real emulator.
type faultyStream struct {
	StreamAPI
	calls  atomic.Int64
	inject func(call int64) error
}

func (f *faultyStream) GetRecords(ctx context.Context, in *kds.GetRecordsInput, o ...func(*kds.Options)) (*kds.GetRecordsOutput, error) {
	if err := f.inject(f.calls.Add(1)); err != nil {
		return nil, err
	}
	return f.StreamAPI.GetRecords(ctx, in, o...)
}

// takeOver makes owner the holder of a shard's lease directly in the table, as another
// worker's take would.
func (p peers) takeOver(t *testing.T, shardID, owner string) {
	t.Helper()
	_, err := p.dynamo.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(p.table),
		Key:                       map[string]dbtypes.AttributeValue{"lease_key": &dbtypes.AttributeValueMemberS{Value: p.stream + "/" + shardID}},
		UpdateExpression:          aws.String("SET #owner = :owner, #counter = #counter + :one"),
		ExpressionAttributeNames:  map[string]string{"#owner": "lease_owner", "#counter": "lease_counter"},
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":owner": &dbtypes.AttributeValueMemberS{Value: owner}, ":one": &dbtypes.AttributeValueMemberN{Value: "1"}},
	})
	if err != nil {
		t.Fatalf("take over lease of %s: %v", shardID, err)
	}
}
