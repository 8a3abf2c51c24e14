package kinesis

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestTwoConsumersShareShardsAndSurviveACrash: two workers split four shards evenly;
// when one dies without hand-off (no renewals, no checkpoint, no release), the other
// takes its leases once they expire, and the union of deliveries covers every record.
// Records are delivered twice only after the dead worker's last checkpoint.
func TestTwoConsumersShareShardsAndSurviveACrash(t *testing.T) {
	p := newPeers(t, 4)
	log := &deliveryLog{}

	doomedTable := &killableTable{LeaseTableAPI: p.dynamo}
	doomed, err := New(p.kinesis, doomedTable, &recorder{worker: "doomed", log: log}, p.testConfig("doomed"))
	if err != nil {
		t.Fatal(err)
	}
	survivor, err := New(p.kinesis, p.dynamo, &recorder{worker: "survivor", log: log}, p.testConfig("survivor"))
	if err != nil {
		t.Fatal(err)
	}
	rd := start(t, doomed)
	start(t, survivor)

	waitFor(t, 10*time.Second, "two leases each", func() bool {
		return len(doomed.Stats().Shards) == 2 && len(survivor.Stats().Shards) == 2
	})
	before := p.put(t, "before", 200)
	waitFor(t, 10*time.Second, "the first records", func() bool { return log.covers(before) })

	// Crash: the doomed worker's lease table calls fail from now on, so it can neither
	// renew, checkpoint nor release; it still reads and handles records for a moment,
	// like a process dying between Handle and its checkpoint.
	doomedTable.killed.Store(true)
	lastCheckpoint := map[string]string{}
	for shard, l := range p.leaseItems(t) {
		if l.Owner == "doomed" {
			lastCheckpoint[shard] = l.Checkpoint
		}
	}
	if len(lastCheckpoint) != 2 {
		t.Fatalf("doomed worker held %v at the crash, want 2 shards", lastCheckpoint)
	}
	mid := p.put(t, "mid", 200)
	waitFor(t, 10*time.Second, "the doomed worker to handle records it cannot checkpoint", func() bool {
		for _, d := range log.snapshot() {
			if d.worker == "doomed" && strings.HasPrefix(d.data, "mid-") {
				return true
			}
		}
		return false
	})
	rd.stop(t) // its hand-off fails: leases stay with the dead owner until they expire

	after := p.put(t, "after", 200)
	waitFor(t, 15*time.Second, "the survivor to take all four leases", func() bool {
		return len(survivor.Stats().Shards) == 4
	})
	all := append(append(before, mid...), after...)
	waitFor(t, 10*time.Second, "every record", func() bool { return log.covers(all) })

	deliveries := log.snapshot()
	seenBy := map[string][]delivery{}
	for _, d := range deliveries {
		seenBy[d.data] = append(seenBy[d.data], d)
	}
	dups := 0
	for data, ds := range seenBy {
		if len(ds) == 1 {
			continue
		}
		dups++
		for _, d := range ds {
			if cp, ok := lastCheckpoint[d.shard]; !ok || (cp != CheckpointTrimHorizon && !seqLess(cp, d.seq)) {
				t.Errorf("record %q (shard %s, seq %s) delivered %d times, though at or before the dead worker's checkpoint %q", data, d.shard, d.seq, len(ds), cp)
			}
		}
	}
	if s := survivor.Stats(); s.LeasesTaken+s.LeasesStolen < 4 {
		t.Errorf("survivor took %d and stole %d leases, want >= 4 (2 at start, 2 after the crash)", s.LeasesTaken, s.LeasesStolen)
	}
	if dups == 0 {
		t.Errorf("no record was delivered twice, want the doomed worker's uncheckpointed records redelivered")
	}
	t.Logf("%d deliveries of %d records, %d redelivered after the crash", len(deliveries), len(all), dups)
}

// TestNewWorkerStealsItsShare: a worker joining a busy one steals leases, one per
// round, until they hold two each; no record is lost on the way.
func TestNewWorkerStealsItsShare(t *testing.T) {
	p := newPeers(t, 4)
	log := &deliveryLog{}
	first, err := New(p.kinesis, p.dynamo, &recorder{worker: "first", log: log}, p.testConfig("first"))
	if err != nil {
		t.Fatal(err)
	}
	start(t, first)
	waitFor(t, 10*time.Second, "the first worker to hold all leases", func() bool { return len(first.Stats().Shards) == 4 })
	before := p.put(t, "before", 100)

	second, err := New(p.kinesis, p.dynamo, &recorder{worker: "second", log: log}, p.testConfig("second"))
	if err != nil {
		t.Fatal(err)
	}
	start(t, second)
	waitFor(t, 10*time.Second, "two leases each", func() bool {
		return len(first.Stats().Shards) == 2 && len(second.Stats().Shards) == 2
	})
	if s := second.Stats(); s.LeasesStolen != 2 {
		t.Errorf("second worker stole %d leases, want 2", s.LeasesStolen)
	}
	if s := first.Stats(); s.LeasesLost != 2 {
		t.Errorf("first worker lost %d leases, want 2", s.LeasesLost)
	}
	after := p.put(t, "after", 100)
	waitFor(t, 10*time.Second, "every record", func() bool { return log.covers(append(before, after...)) })
}

// TestLostLeaseStopsShardAndNeverCheckpoints: while a Handle call is in flight, another
// worker takes the lease. The renewal notices, the shard's context is cancelled, and the
// checkpoint for the batch that Handle then completes is not written.
func TestLostLeaseStopsShardAndNeverCheckpoints(t *testing.T) {
	p := newPeers(t, 1)
	p.put(t, "r", 10)
	entered := make(chan struct{})
	cancelled := make(chan struct{})
	var calls atomic.Int32
	h := HandlerFunc(func(ctx context.Context, shard string, records []Record) error {
		if n := calls.Add(1); n > 1 {
			t.Errorf("Handle called again (%d) after the lease was lost", n)
			return nil
		}
		close(entered)
		<-ctx.Done() // the lease loss must cancel the in-flight call
		close(cancelled)
		return nil // as if the sink committed anyway: the checkpoint must still not move
	})
	cfg := p.testConfig("loser")
	cfg.LeaseDuration = 5 * time.Second // long: no re-take of the intruder's lease during the test
	c, err := New(p.kinesis, p.dynamo, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, c)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("Handle was not called")
	}
	p.takeOver(t, "shardId-000000000000", "intruder")
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("Handle's context was not cancelled after the lease was lost")
	}
	waitFor(t, 5*time.Second, "the lease loss to be counted", func() bool { return c.Stats().LeasesLost == 1 })
	time.Sleep(300 * time.Millisecond) // room for a (wrong) checkpoint write
	r.stop(t)
	l := p.leaseItems(t)["shardId-000000000000"]
	if l.Owner != "intruder" || l.Checkpoint != CheckpointTrimHorizon {
		t.Errorf("lease after loss = owner %q checkpoint %q, want owner intruder, checkpoint %s", l.Owner, l.Checkpoint, CheckpointTrimHorizon)
	}
}
