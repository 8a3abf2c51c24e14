package kinesis

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// TestHandlerErrorKeepsCheckpointAndRedelivers: while Handle fails the checkpoint stays
// where it was; once it succeeds, delivery resumes with the very records that failed.
func TestHandlerErrorKeepsCheckpointAndRedelivers(t *testing.T) {
	p := newPeers(t, 1)
	want := p.put(t, "r", 30)
	log := &deliveryLog{}
	var (
		failing   atomic.Bool
		mu        sync.Mutex
		firstFail string
	)
	failing.Store(true)
	rec := &recorder{worker: "w", log: log, fail: func(_ string, records []types.Record) error {
		if !failing.Load() {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if firstFail == "" {
			firstFail = aws.ToString(records[0].SequenceNumber)
		}
		return errors.New("sink unavailable")
	}}
	cfg := p.testConfig("w")
	cfg.GetRecordsLimit = 10
	c, err := New(p.kinesis, p.dynamo, rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, c)
	waitFor(t, 10*time.Second, "three failed Handle calls", func() bool { return c.Stats().HandlerErrors >= 3 })
	if cp := p.leaseItems(t)["shardId-000000000000"].Checkpoint; cp != CheckpointTrimHorizon {
		t.Errorf("checkpoint %q after failed Handle calls, want %s", cp, CheckpointTrimHorizon)
	}
	failing.Store(false)
	waitFor(t, 10*time.Second, "every record", func() bool { return log.covers(want) })
	r.stop(t)

	deliveries := log.snapshot()
	if len(deliveries) != len(want) {
		t.Errorf("accepted %d records, want %d (each once)", len(deliveries), len(want))
	}
	mu.Lock()
	defer mu.Unlock()
	if deliveries[0].seq != firstFail {
		t.Errorf("first accepted record %s, want the first failed one %s", deliveries[0].seq, firstFail)
	}
	if cp := p.leaseItems(t)["shardId-000000000000"].Checkpoint; cp != deliveries[len(deliveries)-1].seq {
		t.Errorf("final checkpoint %s, want the last record %s", cp, deliveries[len(deliveries)-1].seq)
	}
}

// TestExpiredIteratorsAndThrottlingLoseNothing injects ExpiredIteratorException and
// ProvisionedThroughputExceededException (which kinesalite never returns within a
// test's time) in front of kinesalite: the consumer re-obtains iterators after its
// checkpoint and backs off, delivering every record exactly once.
func TestExpiredIteratorsAndThrottlingLoseNothing(t *testing.T) {
	p := newPeers(t, 2)
	want := p.put(t, "r", 100)
	stream := &faultyStream{StreamAPI: p.kinesis, inject: func(call int64) error {
		switch call % 5 {
		case 2:
			return &types.ExpiredIteratorException{Message: aws.String("injected: iterator expired")}
		case 4:
			return &types.ProvisionedThroughputExceededException{Message: aws.String("injected: rate exceeded")}
		}
		return nil
	}}
	log := &deliveryLog{}
	cfg := p.testConfig("w")
	cfg.GetRecordsLimit = 7
	c, err := New(stream, p.dynamo, &recorder{worker: "w", log: log}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, c)
	waitFor(t, 15*time.Second, "every record", func() bool { return log.covers(want) })
	r.stop(t)
	if got := len(log.snapshot()); got != len(want) {
		t.Errorf("delivered %d records, want each of %d exactly once", got, len(want))
	}
	if stream.calls.Load() < 10 {
		t.Errorf("only %d GetRecords calls: faults were not exercised", stream.calls.Load())
	}
}
