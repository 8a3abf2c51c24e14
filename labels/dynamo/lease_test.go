package dynamo

import (
	"context"
	"testing"
	"time"

	"github.com/verdictml/verdict/internal/emulatortest"
)

func TestLeaseElectsOneHolderAndFailsOver(t *testing.T) {
	db := emulatortest.DynamoDBClient(t)
	table := emulatortest.TableName(t, db, "lease")
	st := newStore(t, db, table, "a")
	const ttl = 900 * time.Millisecond
	a, b := st.Lease("publisher", "a", ttl), st.Lease("publisher", "b", ttl)
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneA := make(chan struct{})
	go func() { a.Run(ctxA); close(doneA) }()
	waitLeader(t, a, true)
	go b.Run(ctxB)
	// b keeps trying for several renewal rounds and never gets it while a renews.
	time.Sleep(3 * ttl)
	if !a.IsLeader() || b.IsLeader() {
		t.Fatalf("two contenders: a leader %v, b leader %v; want exactly a", a.IsLeader(), b.IsLeader())
	}
	// a gives the lease up on shutdown: b takes over.
	stopA()
	<-doneA
	waitLeader(t, b, true)
	if a.IsLeader() {
		t.Fatal("a still claims the lease after shutdown")
	}

	// A holder that dies without releasing loses the lease after its TTL.
	c := st.Lease("publisher", "c", ttl)
	crashed := st.Lease("publisher", "crashed", ttl)
	stopB()
	time.Sleep(ttl / 2)
	if ok, err := crashed.try(context.Background()); err != nil || !ok {
		t.Fatalf("crashed holder could not take the released lease: %v %v", ok, err)
	}
	if ok, _ := c.try(context.Background()); ok {
		t.Fatal("c took a lease that was held and not expired")
	}
	time.Sleep(ttl + 200*time.Millisecond) // crashed never renews
	if ok, err := c.try(context.Background()); err != nil || !ok {
		t.Fatalf("c could not take an expired lease: %v %v", ok, err)
	}
}

func waitLeader(t *testing.T, l *Lease, want bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); l.IsLeader() != want; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("lease %s: leader %v not reached", l.owner, want)
		}
	}
}
