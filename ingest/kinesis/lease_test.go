package kinesis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/ingest/lease"
)

// TestLeaseTableWritesAreConditional checks each lease write against kumo: ownership
// changes need the counter the writer saw, and checkpoints need owner and counter.
func TestLeaseTableWritesAreConditional(t *testing.T) {
	ctx := context.Background()
	p := newPeers(t, 1)
	lt := lease.NewTable(p.dynamo, p.table, p.stream)
	if err := lt.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lt.Ensure(ctx); err != nil {
		t.Fatalf("ensure on an existing table: %v", err)
	}
	const shard = "shardId-000000000007"
	for range 2 { // creating twice keeps the first
		if err := lt.Create(ctx, shard, []string{"shardId-000000000001"}, CheckpointTrimHorizon); err != nil {
			t.Fatal(err)
		}
	}
	read := func() lease.Lease {
		t.Helper()
		return p.leaseItems(t)[shard]
	}
	free := read()
	a, err := lt.Take(ctx, free, "a")
	if err != nil {
		t.Fatalf("take a free lease: %v", err)
	}
	if a.Owner != "a" || a.Counter != free.Counter+1 || a.Parents[0] != "shardId-000000000001" {
		t.Fatalf("take returned %+v", a)
	}

	tests := []struct {
		name  string
		write func() error
	}{
		{"take at a stale counter fails", func() error { _, err := lt.Take(ctx, free, "b"); return err }},
		{"renew by another owner fails", func() error {
			_, err := lt.Renew(ctx, lease.Lease{Key: shard, Owner: "b", Counter: a.Counter})
			return err
		}},
		{"renew at a stale counter fails", func() error {
			_, err := lt.Renew(ctx, lease.Lease{Key: shard, Owner: "a", Counter: free.Counter})
			return err
		}},
		{"checkpoint by another owner fails", func() error {
			return lt.Checkpoint(ctx, lease.Lease{Key: shard, Owner: "b", Counter: a.Counter}, "123")
		}},
		{"checkpoint at a stale counter fails", func() error {
			return lt.Checkpoint(ctx, lease.Lease{Key: shard, Owner: "a", Counter: free.Counter}, "123")
		}},
		{"release by another owner fails", func() error {
			return lt.Release(ctx, lease.Lease{Key: shard, Owner: "b", Counter: a.Counter}, true)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.write(); !errors.Is(err, lease.ErrLost) {
				t.Errorf("got %v, want lease.ErrLost", err)
			}
			if got := read(); got.Owner != "a" || got.Counter != a.Counter || got.Checkpoint != CheckpointTrimHorizon {
				t.Errorf("lease changed by a rejected write: %+v", got)
			}
		})
	}

	if err := lt.Checkpoint(ctx, a, "123"); err != nil {
		t.Fatalf("owner's checkpoint: %v", err)
	}
	if a.Counter, err = lt.Renew(ctx, a); err != nil {
		t.Fatalf("owner's renewal: %v", err)
	}
	if err := lt.Release(ctx, a, true); err != nil {
		t.Fatalf("owner's finish: %v", err)
	}
	done := read()
	if done.Owner != "" || done.Checkpoint != CheckpointShardEnd || done.Counter != a.Counter+1 {
		t.Errorf("finished lease = %+v, want no owner, SHARD_END, counter %d", done, a.Counter+1)
	}
	if _, err := lt.Take(ctx, done, "b"); !errors.Is(err, lease.ErrLost) {
		t.Errorf("take of a finished lease: got %v, want lease.ErrLost", err)
	}
	if err := lt.Remove(ctx, shard); err != nil {
		t.Fatalf("remove finished lease: %v", err)
	}
	if _, ok := p.leaseItems(t)[shard]; ok {
		t.Errorf("finished lease still present after remove")
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	cfg, err := Config{Stream: "s", LeaseTable: "t"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LeaseDuration != 10*time.Second || cfg.RenewInterval >= cfg.LeaseDuration || cfg.WorkerID == "" ||
		cfg.GetRecordsLimit != 1000 || cfg.InitialPosition != TrimHorizon || cfg.Logger == nil {
		t.Errorf("defaults = %+v", cfg)
	}
	for _, bad := range []Config{
		{LeaseTable: "t"},
		{Stream: "s"},
		{Stream: "s", LeaseTable: "t", GetRecordsLimit: 10001},
		{Stream: "s", LeaseTable: "t", InitialPosition: "AT_TIMESTAMP"},
		{Stream: "s", LeaseTable: "t", LeaseDuration: time.Second, RenewInterval: 2 * time.Second},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("config %+v accepted, want an error", bad)
		}
	}
}

func TestConsumersOfTwoStreamsShareARegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h := HandlerFunc(func(context.Context, string, []Record) error { return nil })
	for _, stream := range []string{"predictions", "labels"} {
		if _, err := New(&faultyStream{}, &killableTable{}, h, Config{Stream: stream, LeaseTable: "leases", Registerer: reg}); err != nil {
			t.Fatalf("consumer of %q: %v", stream, err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() == "verdict_kinesis_leases_held" && len(f.GetMetric()) != 2 {
			t.Errorf("verdict_kinesis_leases_held has %d series, want one per stream", len(f.GetMetric()))
		}
	}
}
