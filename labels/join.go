// Package labels joins predictions with the labels that arrive later and keeps each
// prediction's outcome (TP, FP, FN, TN) in a durable join store.
//
// The join is a state machine per inference id (see Record). Every outcome transition
// and the tally deltas it moves are committed in one atomic write, so replaying input
// or crashing anywhere never changes the final counts. Concurrent callers are grouped
// into one commit (group commit): one writer, one fsync per group.
package labels

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/tally"
)

// Store is the durable join store the Join needs. Two implement it: the embedded
// store on local disk (package labels/embedded, pebble; the default) and the shared
// store on DynamoDB (package labels/dynamo, for several instances). Both pass the
// same conformance suite of the join's semantics.
type Store interface {
	// Records returns the stored records for ids, in the same order, with nil for ids
	// never seen.
	Records(ctx context.Context, ids []string) ([]*Record, error)
	// Commit writes a change atomically and durably: all of it or none of it.
	Commit(ctx context.Context, c *Change) error
	// Due lists pending predictions made before t, oldest first, at most limit.
	Due(ctx context.Context, before time.Time, limit int) ([]DueRef, error)
	// Tallies calls fn with every series' all-time tally (allTime true) and every
	// bucket tally whose bucket starts at or after since (Unix seconds).
	Tallies(ctx context.Context, since int64, fn func(d tally.Delta, allTime bool) error) error
	// Unmatched is the number of labels waiting for their first prediction.
	Unmatched(ctx context.Context) (int64, error)
}

// Change is one group's write to the store: every record it touched, with what that
// record's transitions move. The embedded store commits a whole Change atomically; a
// store that cannot (DynamoDB's transactions are bounded) must commit each
// RecordChange atomically, so a record's state never disagrees with the counts it
// contributed.
type Change struct {
	Records []RecordChange
}

// RecordChange is one record's new state and everything its transitions move.
type RecordChange struct {
	ID string
	// Record is the new state; nil when only maturity-index entries change.
	Record *Record
	// Due and Undue add and remove maturity-index entries.
	Due, Undue []DueRef
	// Deltas are the tally changes, aggregated per series and bucket.
	Deltas []tally.Delta
	// Unmatched is the change in labels waiting for their first prediction.
	Unmatched int64
}

// Deltas are the change's tally deltas summed per series and bucket.
func (c *Change) Deltas() []tally.Delta {
	sum := map[deltaKey]*tally.Counts{}
	var order []deltaKey
	for _, rc := range c.Records {
		for _, d := range rc.Deltas {
			k := deltaKey{d.Key, d.Bucket}
			if sum[k] == nil {
				sum[k] = &tally.Counts{}
				order = append(order, k)
			}
			sum[k].Add(d.Counts)
		}
	}
	out := make([]tally.Delta, 0, len(order))
	for _, k := range order {
		if !sum[k].IsZero() {
			out = append(out, tally.Delta{Key: k.key, Bucket: k.bucket, Counts: *sum[k]})
		}
	}
	return out
}

// Unmatched is the change in labels waiting for their first prediction.
func (c *Change) Unmatched() int64 {
	var n int64
	for _, rc := range c.Records {
		n += rc.Unmatched
	}
	return n
}

// ErrConflict is returned by a shared store's Commit when a record changed since it
// was read. The join then reads again and reapplies the group; records that did
// commit come back as their new state, so their events count once.
var ErrConflict = errors.New("labels: record changed concurrently")

// DueRef names a pending prediction in the maturity index.
type DueRef struct {
	ID      string
	Variant string
	Time    int64 // prediction time, Unix nanoseconds
}

// Observer sees the tallies: Restore for each stored tally when the join opens,
// Observe for the deltas of each commit, after it is durable and in commit order.
type Observer interface {
	Restore(d tally.Delta, allTime bool)
	Observe(deltas []tally.Delta)
}

// Config is the join's behaviour.
type Config struct {
	// SegmentKeys are the prediction attributes counted as segments.
	SegmentKeys []string
	// MaxSegmentValues bounds distinct values per segment key; later values count as
	// OtherSegment. Zero means 200.
	MaxSegmentValues int
	// Bucket is the width of prediction-time buckets. Zero means 5 minutes.
	Bucket time.Duration
	// Longest is how far back bucket tallies are restored on open (the longest
	// window). All-time tallies are always restored. Zero means 7 days.
	Longest time.Duration
	// Maturity resolves a prediction still unlabeled this long after its prediction
	// time as negative (a later label is a correction). Zero disables maturity.
	Maturity time.Duration
	// Declined says how predictions of inferences the serving variant declined are
	// resolved; ReviewSources are the label sources that resolve them when they are
	// censored (empty: any label does).
	Declined      Declined
	ReviewSources []string
	// MaxGroup bounds the events in one commit. Zero means 8192.
	MaxGroup int
}

// Segment values with a meaning of their own.
const (
	MissingSegment = "__missing__"
	OtherSegment   = "__other__"
)

func (c Config) withDefaults() Config {
	if c.MaxSegmentValues == 0 {
		c.MaxSegmentValues = 200
	}
	if c.Bucket == 0 {
		c.Bucket = 5 * time.Minute
	}
	if c.Longest == 0 {
		c.Longest = 7 * 24 * time.Hour
	}
	if c.MaxGroup == 0 {
		c.MaxGroup = 8192
	}
	return c
}

// Join applies predictions and labels to the store. It is safe for concurrent use.
type Join struct {
	store    Store
	cfg      Config
	observer Observer
	now      func() time.Time

	mu      sync.Mutex
	queue   []*request
	leading bool
	closed  bool

	// Only the leader touches these.
	known   map[string]map[string]bool // segment key → values with a series
	lastSeq uint64
}

type request struct {
	batch ingest.Batch
	due   []DueRef
	// exclusive, when set, runs alone in its group instead of a commit (Exclusive).
	exclusive func(context.Context) error
	result    ingest.Result
	err       error
	done      chan struct{}
}

// size is how much of a group r takes; an exclusive request takes a whole group.
func (j *Join) size(r *request) int {
	if r.exclusive != nil {
		return j.cfg.MaxGroup
	}
	return r.batch.Len() + len(r.due)
}

// ErrClosed is returned by Apply and Mature after Close.
var ErrClosed = errors.New("labels: join is closed")

// Open restores the tallies from the store into observer (which may be nil) and
// returns a join ready to apply events.
func Open(ctx context.Context, store Store, cfg Config, observer Observer) (*Join, error) {
	j := &Join{
		store:    store,
		cfg:      cfg.withDefaults(),
		observer: observer,
		now:      time.Now,
		known:    map[string]map[string]bool{},
	}
	since := time.Now().Add(-j.cfg.Longest).Unix()
	err := store.Tallies(ctx, since, func(d tally.Delta, allTime bool) error {
		if allTime && !d.Key.Overall() {
			j.learnSegment(d.Key.SegmentKey, d.Key.Segment)
		}
		if observer != nil {
			observer.Restore(d, allTime)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("labels: restore tallies: %w", err)
	}
	return j, nil
}

// Close makes later Apply and Mature calls fail; it waits for nothing (callers own
// their requests) and does not close the store.
func (j *Join) Close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
}

// Apply joins a batch of valid events and returns once they are durably committed.
func (j *Join) Apply(ctx context.Context, b ingest.Batch) (ingest.Result, error) {
	if b.Len() == 0 {
		return ingest.Result{}, nil
	}
	r := &request{batch: b, done: make(chan struct{})}
	if err := j.submit(ctx, r); err != nil {
		return ingest.Result{}, err
	}
	return r.result, r.err
}

// Exclusive runs fn while no commit is in progress and none can start: Apply and
// Mature calls queue behind it. It is for work that must not interleave with
// commits, such as reopening a failed store and rebuilding the windows from its
// tallies. A panic in fn becomes its error.
func (j *Join) Exclusive(ctx context.Context, fn func(context.Context) error) error {
	r := &request{exclusive: fn, done: make(chan struct{})}
	if err := j.submit(ctx, r); err != nil {
		return err
	}
	return r.err
}

// Mature resolves, as negative, predictions still pending Maturity after their
// prediction time (as of now), up to limit of them; it returns how many it resolved.
// With maturity disabled it does nothing.
func (j *Join) Mature(ctx context.Context, now time.Time, limit int) (int, error) {
	if j.cfg.Maturity <= 0 {
		return 0, nil
	}
	due, err := j.store.Due(ctx, now.Add(-j.cfg.Maturity), limit)
	if err != nil {
		return 0, fmt.Errorf("labels: list predictions due for maturity: %w", err)
	}
	if len(due) == 0 {
		return 0, nil
	}
	r := &request{due: due, done: make(chan struct{})}
	if err := j.submit(ctx, r); err != nil {
		return 0, err
	}
	return r.result.Applied, r.err
}

// submit queues r and either waits for the current leader to commit it or becomes the
// leader and commits queued requests in groups until the queue is empty.
func (j *Join) submit(ctx context.Context, r *request) error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	j.queue = append(j.queue, r)
	if j.leading {
		j.mu.Unlock()
		select {
		case <-r.done:
			return nil
		case <-ctx.Done():
			// The request may still commit; events are idempotent, so a retry is safe.
			return fmt.Errorf("labels: waiting for commit: %w", ctx.Err())
		}
	}
	j.leading = true
	j.mu.Unlock()
	j.lead(ctx)
	return nil
}

// lead commits queued requests in groups until the queue is empty, then gives up
// leadership. Every request a group took is released with the group's outcome, and a
// panic inside a commit (a store bug, a storage engine giving up) becomes that group's
// error: callers waiting behind a failed leader are never left hanging.
func (j *Join) lead(ctx context.Context) {
	for {
		j.mu.Lock()
		if len(j.queue) == 0 {
			j.leading = false
			j.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(j.queue) && (n == 0 || size+j.size(j.queue[n]) <= j.cfg.MaxGroup) {
			size += j.size(j.queue[n])
			n++
		}
		group := slices.Clone(j.queue[:n])
		j.queue = slices.Delete(j.queue, 0, n)
		j.mu.Unlock()
		// A commit, once started, is not abandoned because one caller went away.
		err := j.commitRecovering(context.WithoutCancel(ctx), group)
		for _, g := range group {
			if err != nil {
				g.err = err
			}
			close(g.done)
		}
	}
}

// commitRecovering is commit with a panic turned into the group's error. Nothing of
// the group is acknowledged; the store's commit is atomic, so it is either all in or
// all out, and a retry counts its events once.
func (j *Join) commitRecovering(ctx context.Context, group []*request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("labels: commit of %d request(s) failed with a panic: %v", len(group), p)
		}
	}()
	if len(group) == 1 && group[0].exclusive != nil {
		return group[0].exclusive(ctx)
	}
	return j.commit(ctx, group)
}

// group is the working state of one commit.
type group struct {
	j       *Join
	records map[string]*Record
	changes map[string]*recordChange
}

// recordChange accumulates one record's part of the Change.
type recordChange struct {
	RecordChange
	dirty  bool
	deltas map[deltaKey]*tally.Counts
	order  []deltaKey
}

type deltaKey struct {
	key    tally.Key
	bucket int64
}

// maxConflictRetries bounds rereads of a group whose records a shared store saw change.
const maxConflictRetries = 8

func (j *Join) commit(ctx context.Context, reqs []*request) error {
	ids := map[string]struct{}{}
	for _, r := range reqs {
		for _, p := range r.batch.Predictions {
			ids[p.InferenceID] = struct{}{}
		}
		for _, l := range r.batch.Labels {
			ids[l.InferenceID] = struct{}{}
		}
		for _, d := range r.due {
			ids[d.ID] = struct{}{}
		}
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted) // neighbouring keys read neighbouring blocks
	for attempt := 0; ; attempt++ {
		err := j.attempt(ctx, reqs, sorted)
		if !errors.Is(err, ErrConflict) || attempt == maxConflictRetries {
			return err
		}
	}
}

// attempt reads the group's records, applies every request's events in order and
// commits the result.
func (j *Join) attempt(ctx context.Context, reqs []*request, ids []string) error {
	recs, err := j.store.Records(ctx, ids)
	if err != nil {
		return fmt.Errorf("labels: read %d records: %w", len(ids), err)
	}
	g := &group{j: j, records: make(map[string]*Record, len(ids)), changes: map[string]*recordChange{}}
	for i, id := range ids {
		if recs[i] == nil {
			recs[i] = &Record{ID: id}
		}
		g.records[id] = recs[i]
	}
	for _, r := range reqs {
		r.result = ingest.Result{}
		for _, p := range r.batch.Predictions {
			if g.predict(p) {
				r.result.Applied++
			} else {
				r.result.Duplicates++
			}
		}
		for _, l := range r.batch.Labels {
			if g.label(l) {
				r.result.Applied++
			} else {
				r.result.Duplicates++
			}
		}
		for _, d := range r.due {
			if g.mature(d) {
				r.result.Applied++
			}
		}
	}
	var change Change
	for _, id := range ids {
		rc := g.changes[id]
		if rc == nil {
			continue
		}
		if rc.dirty {
			rc.Record = g.records[id]
		}
		for _, pc := range g.j.pairCells(g.records[id]) {
			rc.addPair(pc, 1)
		}
		for _, k := range rc.order {
			if c := rc.deltas[k]; !c.IsZero() {
				rc.Deltas = append(rc.Deltas, tally.Delta{Key: k.key, Bucket: k.bucket, Counts: *c})
			}
		}
		change.Records = append(change.Records, rc.RecordChange)
	}
	if len(change.Records) == 0 {
		return nil
	}
	if err := j.store.Commit(ctx, &change); err != nil {
		return fmt.Errorf("labels: commit %d records: %w", len(change.Records), err)
	}
	if j.observer != nil {
		if deltas := change.Deltas(); len(deltas) > 0 {
			j.observer.Observe(deltas)
		}
	}
	return nil
}

// change is the accumulating change of record id.
func (g *group) change(id string) *recordChange {
	rc := g.changes[id]
	if rc == nil {
		rc = &recordChange{RecordChange: RecordChange{ID: id}, deltas: map[deltaKey]*tally.Counts{}}
		g.changes[id] = rc
		// The record as it was before this group: its pair cells are taken out here
		// and its new ones put back when the change is finalized, so every paired
		// transition (a second prediction, a label, a correction, maturity) moves
		// exactly one cell.
		for _, pc := range g.j.pairCells(g.records[id]) {
			rc.addPair(pc, -1)
		}
	}
	return rc
}

// predict adds a prediction; it reports false for a duplicate (same id and variant).
func (g *group) predict(p ingest.Prediction) bool {
	rec := g.records[p.InferenceID]
	if rec.pred(p.Variant) != nil {
		return false
	}
	rc := g.change(rec.ID)
	if len(rec.Preds) == 0 && rec.Label != nil {
		rc.Unmatched--
	}
	ps := PredState{
		Variant:  p.Variant,
		Shadow:   p.Role == ingest.RoleShadow,
		Score:    p.Score,
		Flagged:  p.Error == "" && p.Flagged(),
		Errored:  p.Error != "",
		Time:     p.Time.UnixNano(),
		Segments: g.j.segments(p.Attributes),
	}
	var d tally.Counts
	switch {
	case ps.Errored:
		d.Errors = 1
	default:
		d.Predictions = 1
		if ps.Flagged {
			d.Flagged = 1
		}
		d.ScoreSum = ps.Score
		d.Bins[tally.ScoreBin(ps.Score)] = 1
		if rec.Label != nil {
			ps.Outcome = tally.OutcomeOf(ps.Flagged, rec.Label.Positive)
			d.AddOutcome(ps.Outcome, 1)
		} else if g.j.cfg.Maturity > 0 {
			rc.Due = append(rc.Due, DueRef{ID: rec.ID, Variant: ps.Variant, Time: ps.Time})
		}
	}
	rec.Preds = append(rec.Preds, ps)
	rc.add(g.j, &ps, d)
	rc.dirty = true
	g.settle(rec, rc)
	return true
}

// label applies a label; it reports false when the label changes nothing (older than
// the one held, or the same).
func (g *group) label(l ingest.Label) bool {
	if g.j.censoring() {
		return g.labelCensoring(l)
	}
	rec := g.records[l.InferenceID]
	t := l.Time.UnixNano()
	if cur := rec.Label; cur != nil {
		if t < cur.Time || (t == cur.Time && l.Positive == cur.Positive) {
			return false
		}
	}
	rc := g.change(rec.ID)
	if rec.Label == nil && len(rec.Preds) == 0 {
		rc.Unmatched++
	}
	rec.Label = &LabelState{Positive: l.Positive, Time: t, Seq: g.j.nextSeq(), Source: l.Source}
	for i := range rec.Preds {
		ps := &rec.Preds[i]
		if ps.Errored {
			continue
		}
		next := tally.OutcomeOf(ps.Flagged, l.Positive)
		if next == ps.Outcome && !ps.Matured {
			continue
		}
		var d tally.Counts
		d.AddOutcome(ps.Outcome, -1)
		d.AddOutcome(next, 1)
		if ps.Matured {
			d.Matured = -1
		}
		if ps.Outcome == tally.Pending && g.j.cfg.Maturity > 0 {
			rc.Undue = append(rc.Undue, DueRef{ID: rec.ID, Variant: ps.Variant, Time: ps.Time})
		}
		ps.Outcome, ps.Matured = next, false
		rc.add(g.j, ps, d)
	}
	rc.dirty = true
	return true
}

// mature resolves a due prediction as negative if it is still pending.
func (g *group) mature(ref DueRef) bool {
	rc := g.change(ref.ID)
	rc.Undue = append(rc.Undue, ref)
	rec := g.records[ref.ID]
	ps := rec.pred(ref.Variant)
	if ps == nil || ps.Errored || ps.Outcome != tally.Pending || rec.Label != nil {
		return false
	}
	if g.j.censoring() && declined(rec) {
		return false // censored: the label a declined inference needs never comes
	}
	ps.Outcome, ps.Matured = tally.OutcomeOf(ps.Flagged, false), true
	var d tally.Counts
	d.AddOutcome(ps.Outcome, 1)
	d.Matured = 1
	rc.add(g.j, ps, d)
	rc.dirty = true
	return true
}

// add accumulates d for every series the prediction counts in.
func (rc *recordChange) add(j *Join, ps *PredState, d tally.Counts) {
	if d.IsZero() {
		return
	}
	bucket := j.bucket(ps.Time)
	rc.addTo(tally.Key{Variant: ps.Variant}, bucket, d)
	for _, s := range ps.Segments {
		rc.addTo(tally.Key{Variant: ps.Variant, SegmentKey: s.Key, Segment: s.Value}, bucket, d)
	}
}

func (rc *recordChange) addTo(k tally.Key, bucket int64, d tally.Counts) {
	dk := deltaKey{key: k, bucket: bucket}
	c := rc.deltas[dk]
	if c == nil {
		c = &tally.Counts{}
		rc.deltas[dk] = c
		rc.order = append(rc.order, dk)
	}
	c.Add(d)
}

// pairCell is one paired inference's place in the pair tallies: the pair, its
// segments, the bucket of its prediction time and its cell.
type pairCell struct {
	first, second string
	segments      []Segment
	bucket        int64
	class         tally.LabelClass
	agreement     tally.Agreement
}

// pairCells lists the pairs of predictions in rec that count in pair tallies: every
// two scored (not errored) predictions of different variants, the first variant the
// one whose name sorts first. A pair takes the segments of its first prediction
// (production and shadow predictions of one request carry the same attributes) and
// the bucket of the earlier prediction time. Its label class is the record's label
// (the one that resolves its predictions: see resolvingLabel), else matured when both
// predictions matured, else pending (censored ones included).
func (j *Join) pairCells(rec *Record) []pairCell {
	if len(rec.Preds) < 2 {
		return nil
	}
	label := j.resolvingLabel(rec)
	var out []pairCell
	for a := range rec.Preds {
		for b := a + 1; b < len(rec.Preds); b++ {
			pa, pb := &rec.Preds[a], &rec.Preds[b]
			if pa.Errored || pb.Errored || pa.Variant == pb.Variant {
				continue
			}
			if pb.Variant < pa.Variant {
				pa, pb = pb, pa
			}
			class := tally.ClassPending
			switch {
			case label != nil && label.Positive:
				class = tally.ClassPositive
			case label != nil:
				class = tally.ClassNegative
			case pa.Matured && pb.Matured:
				class = tally.ClassMatured
			}
			out = append(out, pairCell{
				first: pa.Variant, second: pb.Variant, segments: pa.Segments,
				bucket: j.bucket(min(pa.Time, pb.Time)), class: class,
				agreement: tally.AgreementOf(pa.Flagged, pb.Flagged),
			})
		}
	}
	return out
}

// addPair adds n to a pair cell in the pair's overall series and each of its segments.
func (rc *recordChange) addPair(pc pairCell, n int64) {
	var d tally.Counts
	d.Pair[pc.class][pc.agreement] = n
	rc.addTo(tally.Key{Variant: pc.first, Versus: pc.second}, pc.bucket, d)
	for _, s := range pc.segments {
		rc.addTo(tally.Key{Variant: pc.first, Versus: pc.second, SegmentKey: s.Key, Segment: s.Value}, pc.bucket, d)
	}
}

// bucket is the start (Unix seconds) of the prediction-time bucket holding t.
func (j *Join) bucket(tNanos int64) int64 {
	w := int64(j.cfg.Bucket / time.Second)
	s := tNanos / int64(time.Second)
	if tNanos < 0 && tNanos%int64(time.Second) != 0 {
		s--
	}
	b := s / w * w
	if s < 0 && s%w != 0 {
		b -= w
	}
	return b
}

// segments maps a prediction's attributes to its counted segments, bounding the
// values per key.
func (j *Join) segments(attrs map[string]string) []Segment {
	if len(j.cfg.SegmentKeys) == 0 {
		return nil
	}
	segs := make([]Segment, 0, len(j.cfg.SegmentKeys))
	for _, k := range j.cfg.SegmentKeys {
		v, ok := attrs[k]
		if !ok || v == "" {
			v = MissingSegment
		}
		if !j.known[k][v] {
			// __missing__ is always its own segment: a prediction without the attribute
			// is not one of the many other values.
			if v != MissingSegment && len(j.known[k]) >= j.cfg.MaxSegmentValues {
				v = OtherSegment
			}
			j.learnSegment(k, v)
		}
		segs = append(segs, Segment{Key: k, Value: v})
	}
	return segs
}

func (j *Join) learnSegment(k, v string) {
	m := j.known[k]
	if m == nil {
		m = map[string]bool{}
		j.known[k] = m
	}
	m[v] = true
}

// nextSeq orders labels by receipt: wall-clock nanoseconds, strictly increasing
// within the process, so "received last" survives restarts without a stored counter.
func (j *Join) nextSeq() uint64 {
	s := uint64(j.now().UnixNano())
	if s <= j.lastSeq {
		s = j.lastSeq + 1
	}
	j.lastSeq = s
	return s
}
