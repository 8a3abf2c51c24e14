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
