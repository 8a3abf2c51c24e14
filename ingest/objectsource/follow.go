package objectsource

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/verdictml/verdict/ingest"
)

// follower reads one claimed partition.
type follower struct {
	s     *Source
	p     *partition
	claim Claim
	cp    checkpoint
	// notices are objects announced by notifications, for this partition.
	notices chan Notice

	mu sync.Mutex
	// pending are the objects of the current round not read yet (sorted, not
	// changed after the round starts: a scrape walks them, the round re-slices).
	pending []candidate
}

// candidate is an object a round will read, with its order time.
type candidate struct {
	o     Object
	order time.Time
}

type followerStats struct {
	behind      int
	behindBytes int64
	oldest      time.Time
}

// stats counts the objects this round has still to read, at scrape time.
func (f *follower) stats() followerStats {
	f.mu.Lock()
	pending := f.pending
	f.mu.Unlock()
	st := followerStats{behind: len(pending)}
	for _, c := range pending {
		st.behindBytes += c.o.Size
		if st.oldest.IsZero() || c.o.LastModified.Before(st.oldest) {
			st.oldest = c.o.LastModified
		}
	}
	return st
}

// setPending records the objects still to read in this round.
func (f *follower) setPending(rest []candidate) {
	if len(rest) == 0 {
		rest = nil // let the round's listing go
	}
	f.mu.Lock()
	f.pending = rest
	f.mu.Unlock()
}

// follow reads partition p while this instance holds its claim (until ctx ends).
func (s *Source) follow(ctx context.Context, p *partition, c Claim) {
	log := s.log.With("partition", p.id)
	cp, err := decodeCheckpoint(c.Checkpoint())
	if err != nil {
		// Starting over re-reads what the lookback (or Start) reaches: no count changes.
		log.WarnContext(ctx, "objectsource: unreadable checkpoint; starting the partition over", "err", err)
		cp = checkpoint{Done: map[string]int64{}}
	}
	f := &follower{s: s, p: p, claim: c, cp: cp, notices: make(chan Notice, 256)}
	s.mu.Lock()
	s.following[p.id] = f
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.following[p.id] == f {
			delete(s.following, p.id)
		}
		s.mu.Unlock()
		f.drainNotices(ctx)
	}()
	log.InfoContext(ctx, "objectsource: following", "variant", p.variant, "kind", p.kind, "newest", cp.Newest, "done", len(cp.Done))

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-f.notices:
			f.readNotified(ctx, n)
		case <-timer.C:
			if err := f.round(ctx); err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "objectsource: round stopped; retrying at the next listing", "err", err)
			}
			timer.Reset(s.cfg.PollInterval)
		}
	}
}

// drainNotices hands back notices this follower will not read (the claim ended).
func (f *follower) drainNotices(ctx context.Context) {
	for {
		select {
		case n := <-f.notices:
			f.s.retry(ctx, n)
		default:
			return
		}
	}
}

// order is an object's order time: its hour folder in a capture partition, else (and
// for keys outside the hour layout) its LastModified.
func (f *follower) order(o Object) time.Time {
	if f.p.capture {
		if k, ok := ingest.ParseCaptureKey(o.Key); ok && k.Folder() == f.p.prefix {
			return k.Hour
		}
	}
	return o.LastModified.UTC()
}

// round lists the partition from its floor and reads what is new, oldest first.
func (f *follower) round(ctx context.Context) error {
	cfg := f.s.cfg
	floor := f.cp.floor(cfg.Lookback, f.p.capture, cfg.Start)
	startAfter := ""
	if f.p.capture && !floor.IsZero() {
		// The keys of the floor's hour folder and of later ones sort after this.
		startAfter = f.p.prefix + floor.UTC().Truncate(time.Hour).Format("2006/01/02/15/")
	}
	var todo []candidate
	err := f.p.bucket.List(ctx, f.p.prefix, startAfter, func(objs []Object) error {
		for _, o := range objs {
			rel := strings.TrimPrefix(o.Key, f.p.prefix)
			if rel == "" || strings.HasSuffix(rel, "/") {
				continue // folder marker
			}
			if _, done := f.cp.Done[rel]; done {
				continue
			}
			order := f.order(o)
			if order.Before(floor) {
				continue // read before and forgotten, or appeared too late (see Lookback)
			}
			todo = append(todo, candidate{o, order})
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(todo, func(a, b candidate) int {
		if c := a.order.Compare(b.order); c != 0 {
			return c
		}
		return cmp.Compare(a.o.Key, b.o.Key)
	})
	f.setPending(todo)
	for i, c := range todo {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f.readAndRecord(ctx, c.o, c.order); err != nil {
			return err
		}
		f.setPending(todo[i+1:])
	}
	return nil
}

// readNotified reads an object a notification announced, unless it was read already.
// An object whose order time is below the floor is read too: it appeared later than
// the lookback allows for; if it had been read and forgotten, reading it again
// changes no count.
func (f *follower) readNotified(ctx context.Context, n Notice) {
	rel := strings.TrimPrefix(n.Key, f.p.prefix)
	if _, done := f.cp.Done[rel]; done {
		f.s.ack(ctx, n)
		return
	}
	o := Object{Key: n.Key, Size: n.Size, ETag: n.ETag, LastModified: n.Time}
	order := f.order(o)
	if floor := f.cp.floor(f.s.cfg.Lookback, f.p.capture, time.Time{}); order.Before(floor) {
		f.s.log.InfoContext(ctx, "objectsource: reading an object announced after its order time fell behind the lookback",
			"object", f.p.bucket.URL(n.Key), "order", order, "floor", floor)
	}
	if err := f.readAndRecord(ctx, o, order); err != nil {
		if ctx.Err() == nil {
			f.s.log.WarnContext(ctx, "objectsource: announced object not read; it is retried", "object", f.p.bucket.URL(n.Key), "err", err)
		}
		f.s.retry(ctx, n)
		return
	}
	f.s.ack(ctx, n)
}

// readAndRecord reads one object into the join, then records it in the checkpoint.
// An error means the object was not (entirely) read and is read again later.
func (f *follower) readAndRecord(ctx context.Context, o Object, order time.Time) error {
	res, err := f.s.readObject(ctx, f.p, o)
	if err != nil {
		f.s.count(f.p.id, func(st *partitionCounts) { st.failures++ })
		return err
	}
	cfg := f.s.cfg
	f.cp.done(strings.TrimPrefix(o.Key, f.p.prefix), order, cfg.Now().Add(time.Hour), cfg.Lookback, f.p.capture, cfg.MaxDone)
	f.s.count(f.p.id, func(st *partitionCounts) {
		st.objects++
		st.bytes += res.bytes
		st.accepted += res.accepted
		st.duplicates += res.duplicates
		st.rejected += res.rejected
		if res.dead {
			st.deadObjects++
		}
	})
	if err := f.claim.Save(ctx, f.cp.encode()); err != nil {
		// The object is committed; it stays recorded in memory and the next save
		// carries it. A lost claim ends ctx: whoever holds it next reads the object
		// again, which changes no count.
		if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			f.s.log.WarnContext(ctx, "objectsource: checkpoint not saved", "partition", f.p.id, "err", err)
		}
		return err
	}
	return nil
}
