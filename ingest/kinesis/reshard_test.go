package kinesis

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	kds "github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/verdictml/verdict/internal/emulatortest"
)

// TestReshardingReadsParentsBeforeChildren splits or merges shards while two workers
// read the stream: every record is delivered exactly once, and no child record is
// delivered before the last record of its parents, whichever worker holds which.
func TestReshardingReadsParentsBeforeChildren(t *testing.T) {
	tests := []struct {
		name     string
		shards   int32
		reshard  func(ctx context.Context, p peers) error
		parents  []string
		children int
	}{
		{
			name:   "split: parent before both children",
			shards: 1,
			reshard: func(ctx context.Context, p peers) error {
				_, err := p.kinesis.SplitShard(ctx, &kds.SplitShardInput{
					StreamName:         aws.String(p.stream),
					ShardToSplit:       aws.String("shardId-000000000000"),
					NewStartingHashKey: aws.String("170141183460469231731687303715884105728"), // 2^127
				})
				return err
			},
			parents:  []string{"shardId-000000000000"},
			children: 2,
		},
		{
			name:   "merge: both parents before the child",
			shards: 2,
			reshard: func(ctx context.Context, p peers) error {
				_, err := p.kinesis.MergeShards(ctx, &kds.MergeShardsInput{
					StreamName:           aws.String(p.stream),
					ShardToMerge:         aws.String("shardId-000000000000"),
					AdjacentShardToMerge: aws.String("shardId-000000000001"),
				})
				return err
			},
			parents:  []string{"shardId-000000000000", "shardId-000000000001"},
			children: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeers(t, tt.shards)
			before := p.put(t, "before", 120)
			log := &deliveryLog{}
			var workers []*Consumer
			for _, w := range []string{"w1", "w2"} {
				cfg := p.testConfig(w)
				cfg.GetRecordsLimit = 10 // several batches per parent: the reshard lands mid-read
				slow := func(string, []Record) error { time.Sleep(20 * time.Millisecond); return nil }
				c, err := New(p.kinesis, p.dynamo, &recorder{worker: w, log: log, fail: slow}, cfg)
				if err != nil {
					t.Fatal(err)
				}
				start(t, c)
				workers = append(workers, c)
			}
			waitFor(t, 10*time.Second, "the first batch", func() bool { return len(log.snapshot()) > 0 })
			if err := tt.reshard(context.Background(), p); err != nil {
				t.Fatalf("reshard: %v", err)
			}
			if n := len(log.snapshot()); n >= len(before) {
				t.Fatalf("parents were read completely (%d records) before the reshard; want it mid-read", n)
			}
			emulatortest.WaitStreamActive(t, p.kinesis, p.stream)
			after := p.put(t, "after", 120)
			all := append(before, after...)
			waitFor(t, 15*time.Second, "every record", func() bool { return log.covers(all) })

			deliveries := log.snapshot()
			var lost uint64
			for _, c := range workers {
				lost += c.Stats().LeasesLost
			}
			// The second worker may steal a lease while a batch is in flight (the first
			// one starts alone and takes every shard); that batch is then redelivered.
			// Without a lease change, each record arrives exactly once.
			if len(deliveries) != len(all) && lost == 0 {
				t.Errorf("delivered %d records with no lease lost, want each of %d exactly once", len(deliveries), len(all))
			}
			lastParent, firstChild := int64(0), int64(-1)
			childShards := map[string]bool{}
			for _, d := range deliveries {
				if slices.Contains(tt.parents, d.shard) {
					lastParent = max(lastParent, d.order)
					continue
				}
				childShards[d.shard] = true
				if firstChild < 0 || d.order < firstChild {
					firstChild = d.order
				}
			}
			if firstChild >= 0 && firstChild < lastParent {
				t.Errorf("a child record was handled (call %d) before the last parent record (call %d)", firstChild, lastParent)
			}
			if len(childShards) != tt.children {
				t.Errorf("records delivered from %d child shards, want %d", len(childShards), tt.children)
			}
			leases := p.leaseItems(t)
			for _, parent := range tt.parents {
				if l := leases[parent]; l.Checkpoint != CheckpointShardEnd || l.Owner != "" {
					t.Errorf("parent %s lease: checkpoint %q owner %q, want %s and no owner", parent, l.Checkpoint, l.Owner, CheckpointShardEnd)
				}
			}
			for child := range childShards {
				if got := leases[child].Parents; !sameSet(got, tt.parents) {
					t.Errorf("child %s lease parents %v, want %v", child, got, tt.parents)
				}
			}
			var finished uint64
			for _, c := range workers {
				finished += c.Stats().ShardsFinished
			}
			if finished != uint64(len(tt.parents)) {
				t.Errorf("workers finished %d shards, want %d", finished, len(tt.parents))
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
