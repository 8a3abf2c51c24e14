package lease

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/verdictml/verdict/internal/emulatortest"
)

// TestGroupsShareKeysAndHandOver runs two workers over three keys on kumo: every key is
// worked on by exactly one of them, the spread is even, a checkpoint written by one
// survives the hand-over to the other, and a worker that lost a lease cannot write it.
func TestGroupsShareKeysAndHandOver(t *testing.T) {
	db := emulatortest.DynamoDBClient(t)
	table := emulatortest.TableName(t, db, "leases")
	keys := []string{"s3://b/p/v5/", "s3://b/p/v6/", "s3://b/labels/"}
	listKeys := func(context.Context) ([]string, error) { return keys, nil }

	type worker struct {
		g      *Group
		cancel context.CancelFunc
		done   chan struct{}
		mu     sync.Mutex
		claims map[string]*Claim
	}
	start := func(id string) *worker {
		g, err := NewGroup(NewTable(db, table, "s3"), GroupConfig{
			WorkerID: id, LeaseDuration: time.Second, RenewInterval: 200 * time.Millisecond, SyncInterval: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		w := &worker{g: g, cancel: cancel, done: make(chan struct{}), claims: map[string]*Claim{}}
		go func() {
			defer close(w.done)
			err := g.Run(ctx, listKeys, func(ctx context.Context, c *Claim) {
				w.mu.Lock()
				w.claims[c.Key()] = c
				w.mu.Unlock()
				<-ctx.Done()
			})
			if err != nil {
				t.Errorf("worker %s: %v", id, err)
			}
		}()
		t.Cleanup(func() { cancel(); <-w.done })
		return w
	}
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not reached within 20s: %s", what)
			}
		}
	}

	a := start("a")
	claim := func(w *worker, key string) *Claim {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.claims[key]
	}
	waitUntil("a works on all three keys", func() bool {
		return len(a.g.Held()) == 3 && claim(a, keys[0]) != nil && claim(a, keys[1]) != nil && claim(a, keys[2]) != nil
	})
	first := claim(a, keys[0])
	if err := first.Save(context.Background(), `{"done":["x"]}`); err != nil {
		t.Fatalf("save a checkpoint of a held lease: %v", err)
	}

	b := start("b")
	waitUntil("a and b hold 2 and 1 keys between them, each key once", func() bool {
		ha, hb := a.g.Held(), b.g.Held()
		all := append(slices.Clone(ha), hb...)
		slices.Sort(all)
		return len(ha) >= 1 && len(hb) >= 1 && len(slices.Compact(all)) == 3 && len(all) == 3
	})

	a.cancel()
	<-a.done
	waitUntil("b works on all three keys after a stopped", func() bool {
		return len(b.g.Held()) == 3 && claim(b, keys[0]) != nil && claim(b, keys[1]) != nil && claim(b, keys[2]) != nil
	})
	if got := claim(b, keys[0]).Checkpoint(); got != `{"done":["x"]}` {
		t.Errorf("checkpoint after hand-over = %q, want the one a saved", got)
	}
	if err := first.Save(context.Background(), `{"done":["stale"]}`); !errors.Is(err, ErrLost) {
		t.Errorf("save by a worker that released the lease: got %v, want ErrLost", err)
	}
}

// TestDrainReadyAndFinish runs one draining worker over a parent and a child key on
// kumo: the child is not taken until the parent's work finished it (Ready, Finish,
// SyncSoon), and work in flight when Run ends keeps its claim's context and may still
// save before Run releases the lease.
func TestDrainReadyAndFinish(t *testing.T) {
	db := emulatortest.DynamoDBClient(t)
	table := NewTable(db, emulatortest.TableName(t, db, "leases"), "drain")
	g, err := NewGroup(table, GroupConfig{
		WorkerID: "w", LeaseDuration: time.Second, RenewInterval: 200 * time.Millisecond,
		BalanceInterval: time.Minute, // only SyncSoon lets the child start soon
		Drain:           true,
		Ready: func(leases []Lease) func(Lease) bool {
			parentFinished := false
			for _, l := range leases {
				if l.Key == "parent" {
					parentFinished = l.Finished()
				}
			}
			return func(l Lease) bool { return l.Key != "child" || parentFinished }
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan string, 2)
	saved := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		done <- g.Run(ctx, func(context.Context) ([]string, error) { return []string{"parent", "child"}, nil }, func(ctx context.Context, c *Claim) {
			started <- c.Key()
			if c.Key() == "parent" {
				if err := c.Finish(ctx); err != nil {
					t.Errorf("finish: %v", err)
				}
				g.SyncSoon()
				return
			}
			<-ctx.Done()
			if err := c.Context().Err(); err != nil {
				t.Errorf("the claim's context ended with Run's: %v", err)
			}
			saved <- c.Save(c.Context(), "last")
		})
	}()
	next := func() string {
		t.Helper()
		select {
		case k := <-started:
			return k
		case <-time.After(20 * time.Second):
			t.Fatal("no work started within 20s")
			return ""
		}
	}
	if first, second := next(), next(); first != "parent" || second != "child" {
		t.Fatalf("work started on %q, then %q; want the parent, then the child", first, second)
	}
	cancel()
	if err := <-saved; err != nil {
		t.Errorf("save while draining: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	leases, err := table.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Lease{}
	for _, l := range leases {
		got[l.Key] = l
	}
	if p := got["parent"]; !p.Finished() || p.Owner != "" {
		t.Errorf("parent lease %+v, want finished and released", p)
	}
	if c := got["child"]; c.Checkpoint != "last" || c.Owner != "" {
		t.Errorf("child lease %+v, want checkpoint %q and released", c, "last")
	}
	if s := g.Stats(); s.Taken != 2 || s.Released != 1 || s.Lost != 0 {
		t.Errorf("stats %+v, want 2 taken, 1 released (the parent was finished), none lost", s)
	}
}
