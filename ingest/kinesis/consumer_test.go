package kinesis

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSingleConsumerDeliversEveryRecordOnceInShardOrder(t *testing.T) {
	p := newPeers(t, 3)
	before := p.put(t, "before", 150)
	log := &deliveryLog{}
	cfg := p.testConfig("solo")
	cfg.GetRecordsLimit = 25
	reg := prometheus.NewPedanticRegistry()
	cfg.Registerer = reg
	c, err := New(p.kinesis, p.dynamo, &recorder{worker: "solo", log: log}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, c)
	waitFor(t, 10*time.Second, "the records put before start", func() bool { return log.covers(before) })
	after := p.put(t, "after", 150) // the live tail
	want := append(before, after...)
	waitFor(t, 10*time.Second, "the records put while running", func() bool { return log.covers(want) })

	if got := len(c.Stats().Shards); got != 3 {
		t.Errorf("Stats().Shards has %d shards, want 3", got)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	held := 0.0
	for _, f := range families {
		if f.GetName() == "verdict_kinesis_leases_held" {
			held = f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if held != 3 {
		t.Errorf("verdict_kinesis_leases_held = %v, want 3", held)
	}

	r.stop(t)
	deliveries := log.snapshot()
	if len(deliveries) != len(want) {
		t.Errorf("delivered %d records, want each of %d exactly once", len(deliveries), len(want))
	}
	last := map[string]string{}
	for _, d := range deliveries {
		if prev, ok := last[d.shard]; ok && !seqLess(prev, d.seq) {
			t.Errorf("shard %s: sequence %s delivered after %s", d.shard, d.seq, prev)
		}
		last[d.shard] = d.seq
	}
	// Hand-off on shutdown: leases released, checkpoints at the last delivered record.
	for shard, l := range p.leaseItems(t) {
		if l.Owner != "" {
			t.Errorf("shard %s: owner %q after shutdown, want released", shard, l.Owner)
		}
		if l.Checkpoint != last[shard] {
			t.Errorf("shard %s: checkpoint %s, want last delivered %s", shard, l.Checkpoint, last[shard])
		}
	}
}

// TestRestartResumesAfterCheckpoint: a second run delivers only records put after the
// first run's hand-off.
func TestRestartResumesAfterCheckpoint(t *testing.T) {
	p := newPeers(t, 2)
	first := p.put(t, "first", 40)
	log := &deliveryLog{}
	c1, err := New(p.kinesis, p.dynamo, &recorder{worker: "w", log: log}, p.testConfig("w"))
	if err != nil {
		t.Fatal(err)
	}
	r1 := start(t, c1)
	waitFor(t, 10*time.Second, "the first records", func() bool { return log.covers(first) })
	r1.stop(t)

	second := p.put(t, "second", 40)
	c2, err := New(p.kinesis, p.dynamo, &recorder{worker: "w", log: log}, p.testConfig("w"))
	if err != nil {
		t.Fatal(err)
	}
	r2 := start(t, c2)
	waitFor(t, 10*time.Second, "the second records", func() bool { return log.covers(second) })
	r2.stop(t)
	if got := len(log.snapshot()); got != 80 {
		t.Errorf("delivered %d records over two runs, want 80 (no redelivery after a clean hand-off)", got)
	}
}
