// Package objectsource follows prefixes of an object store (S3, or a local directory
// laid out the same way) and reads every object under them exactly once into the
// join: SageMaker Data Capture files as predictions, label files (JSONL or CSV) as
// labels.
//
// # Partitions, order and the lookback
//
// A followed prefix is split into partitions: for captures, each variant folder
// ({endpoint}/{variant}/ under the prefix, found by listing), whose objects sit in hour
// folders yyyy/mm/dd/hh/; for labels, the prefix itself. Every object has an order
// time: the hour folder of a capture file, else the object's LastModified. A
// partition's checkpoint holds the newest order time read (Newest) and the keys read
// whose order time is within Lookback of it (Done). Each round lists the partition
// from its floor, Newest - Lookback (capture partitions start the listing at that hour
// folder with StartAfter; label partitions are listed whole), and reads the listed
// objects that are not Done and not below the floor, oldest order time first. So an
// object is read once if it appears before its order time falls Lookback behind the
// newest one read — SageMaker uploads a capture file minutes after its hour, so a
// Lookback of a few hours absorbs instances uploading late and out of key order; a
// notification (S3 event through SQS) for an object below the floor still reads it.
//
// # Exactly once
//
// An object is read in batches that are committed to the join, its rejected lines go
// to the dead letters, and only then is its key added to Done and the checkpoint
// saved. A crash before the save reads the object again: the join is idempotent (a
// prediction by inference id and variant, a label by its version), so the counts do
// not change; only the duplicate counters move. Checkpoints live with the claims: in
// files beside the embedded store for one instance (DirClaims), in the lease items of
// a DynamoDB table for several (Leased), where a partition is read by one instance at
// a time and only its holder may move its checkpoint.
package objectsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/ingest"
)

// Object is one listed object.
type Object struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// Bucket is what the source needs from an object store.
type Bucket interface {
	// List calls fn with the objects whose keys start with prefix and sort after
	// startAfter ("" for all), page by page, in key order.
	List(ctx context.Context, prefix, startAfter string, fn func([]Object) error) error
	// Folders returns the folders right under prefix (keys up to the next "/",
	// with it), in order.
	Folders(ctx context.Context, prefix string) ([]string, error)
	// Open returns the object's content. An object that does not exist gives an error
	// wrapping fs.ErrNotExist.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// URL names a key for people and dead letters: s3://bucket/key, or a file path.
	URL(key string) string
}

// Prefix is one followed prefix.
type Prefix struct {
	Bucket Bucket
	// Prefix is the key prefix, "" or ending in "/".
	Prefix string
	// Kind is what the objects hold: predictions (SageMaker Data Capture files, whose
	// variant folders are found under Prefix) or labels (JSONL, or CSV for keys ending
	// in .csv or .csv.gz).
	Kind ingest.Kind
}

// Defaults of zero Config fields.
const (
	DefaultLookback     = 3 * time.Hour
	DefaultPollInterval = 30 * time.Second
	DefaultSyncInterval = time.Minute
	DefaultBatchSize    = 1000
	DefaultMaxDone      = 2000
)

// Config configures a Source. Prefixes, Decoder, Sink and Claims are required.
type Config struct {
	Prefixes []Prefix
	// Decoder decodes lines; each capture file gets the variant its key names
	// (Decoder.WithCaptureVariant).
	Decoder *ingest.Decoder
	// Sink commits events (the join).
	Sink ingest.Sink
	// Claims decides which partitions this instance reads and keeps checkpoints.
	Claims Claims
	// DeadLetters stores rejected lines and unreadable objects; nil only counts them.
	DeadLetters DeadLetters
	// Notifications, when set, announce new objects (S3 events through SQS), so they
	// are read without waiting for the next listing.
	Notifications Notifications
	// Variant names the verdict variant of a capture variant folder (endpoint and
	// variant folder names). Default: the folder's name.
	Variant func(endpoint, folder string) string
	// Lookback is how far behind the newest order time read an object may still
	// appear and be read (see the package documentation). Default 3 h.
	Lookback time.Duration
	// Start, when set, skips objects whose order time is before it.
	Start time.Time
	// PollInterval is the pause between listings of a partition. Default 30 s.
	PollInterval time.Duration
	// BatchSize is the number of events per commit. Default 1000.
	BatchSize int
	// MaxDone caps the keys a checkpoint remembers (the oldest go first; an object
	// forgotten too early is read again, which changes no count). Default 2000, which
	// keeps a checkpoint below ~200 KB (a DynamoDB item holds 400 KB).
	MaxDone int
	// Source is the source label of the ingest metrics ("s3", "dir").
	Source string
	// Metrics records accepted, duplicate and rejected events; nil records nothing.
	Metrics *ingest.Metrics
	// Registerer, when set, receives the source's object metrics.
	Registerer prometheus.Registerer
	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock for ages and the future guard. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	var problems []string
	if len(c.Prefixes) == 0 {
		problems = append(problems, "no prefixes to follow")
	}
	for i, p := range c.Prefixes {
		if p.Bucket == nil {
			problems = append(problems, fmt.Sprintf("prefix %d (%q) has no bucket", i, p.Prefix))
		}
		if p.Prefix != "" && !strings.HasSuffix(p.Prefix, "/") {
			problems = append(problems, fmt.Sprintf("prefix %q must end with /", p.Prefix))
		}
		if p.Kind != ingest.KindPrediction && p.Kind != ingest.KindLabel {
			problems = append(problems, fmt.Sprintf("prefix %q: kind %q is not prediction or label", p.Prefix, p.Kind))
		}
	}
	if c.Decoder == nil || c.Sink == nil || c.Claims == nil {
		problems = append(problems, "a Decoder, a Sink and Claims are required")
	}
	if len(problems) > 0 {
		return c, fmt.Errorf("objectsource: config: %s", strings.Join(problems, "; "))
	}
	if c.Variant == nil {
		c.Variant = func(_, folder string) string { return folder }
	}
	if c.Lookback <= 0 {
		c.Lookback = DefaultLookback
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxDone <= 0 {
		c.MaxDone = DefaultMaxDone
	}
	if c.Source == "" {
		c.Source = "objects"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Source follows the configured prefixes.
type Source struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// known are the partitions found by the last discovery, by ID.
	known map[string]*partition
	// following are the partitions this instance reads now, by ID.
	following map[string]*follower
	// counts are per-partition counters, for the metrics and Totals.
	counts  map[string]*partitionCounts
	notices int
}

// New returns a Source; Run starts it.
func New(cfg Config) (*Source, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, log: cfg.Logger, known: map[string]*partition{}, following: map[string]*follower{}, counts: map[string]*partitionCounts{}}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(&collector{s: s}); err != nil {
			return nil, fmt.Errorf("objectsource: register metrics: %w", err)
		}
	}
	return s, nil
}

// partition is one unit of following: a capture variant folder or a label prefix.
type partition struct {
	id     string // the folder's URL, the lease key
	bucket Bucket
	prefix string
	kind   ingest.Kind
	// capture partitions: the endpoint and variant folder names and the verdict
	// variant; their objects' order time is the hour folder.
	capture           bool
	endpoint, variant string
	dec               *ingest.Decoder
}

// Run follows the prefixes until ctx ends. It returns an error only if it cannot
// start; listing and reading errors are logged, counted and retried.
func (s *Source) Run(ctx context.Context) error {
	if s.cfg.Notifications != nil {
		go s.notifications(ctx)
	}
	return s.cfg.Claims.Run(ctx, s.partitionIDs, func(ctx context.Context, c Claim) {
		s.mu.Lock()
		p := s.known[c.Key()]
		s.mu.Unlock()
		if p == nil {
			// Another instance knows a partition this one has not found yet.
			var err error
			if p, err = s.partitionOf(c.Key()); err != nil {
				s.log.WarnContext(ctx, "objectsource: claimed a partition this instance does not follow; leaving it", "partition", c.Key(), "err", err)
				<-ctx.Done()
				return
			}
		}
		s.follow(ctx, p, c)
	})
}

// partitionIDs discovers the partitions of every prefix.
func (s *Source) partitionIDs(ctx context.Context) ([]string, error) {
	parts, err := s.discover(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(parts))
	for _, p := range parts {
		if _, ok := s.known[p.id]; !ok {
			s.known[p.id] = p
		}
		ids = append(ids, p.id)
	}
	return ids, nil
}

// discover lists the capture prefixes for variant folders; label prefixes are
// partitions as they are.
func (s *Source) discover(ctx context.Context) ([]*partition, error) {
	var out []*partition
	var errs []error
	for _, pre := range s.cfg.Prefixes {
		if pre.Kind == ingest.KindLabel {
			out = append(out, &partition{id: pre.Bucket.URL(pre.Prefix), bucket: pre.Bucket, prefix: pre.Prefix, kind: ingest.KindLabel})
			continue
		}
		folders, err := variantFolders(ctx, pre.Bucket, pre.Prefix, 3)
		if err != nil {
			errs = append(errs, fmt.Errorf("find variant folders under %s: %w", pre.Bucket.URL(pre.Prefix), err))
			continue
		}
		for _, f := range folders {
			out = append(out, s.capturePartition(pre.Bucket, f))
		}
	}
	return out, errors.Join(errs...)
}

func (s *Source) capturePartition(b Bucket, folder string) *partition {
	segs := strings.Split(strings.TrimSuffix(folder, "/"), "/")
	p := &partition{id: b.URL(folder), bucket: b, prefix: folder, kind: ingest.KindPrediction, capture: true}
	p.variant = segs[len(segs)-1]
	if len(segs) > 1 {
		p.endpoint = segs[len(segs)-2]
	}
	p.variant = s.cfg.Variant(p.endpoint, p.variant)
	p.dec = s.cfg.Decoder.WithCaptureVariant(p.variant)
	return p
}

// partitionOf rebuilds a partition from its ID, for one claimed before this instance
// discovered it.
func (s *Source) partitionOf(id string) (*partition, error) {
	for _, pre := range s.cfg.Prefixes {
		root := pre.Bucket.URL(pre.Prefix)
		if !strings.HasPrefix(id, root) {
			continue
		}
		key := pre.Prefix + strings.TrimPrefix(id, root)
		if pre.Kind == ingest.KindLabel {
			if key == pre.Prefix {
				return &partition{id: id, bucket: pre.Bucket, prefix: pre.Prefix, kind: ingest.KindLabel}, nil
			}
			continue
		}
		if strings.HasSuffix(key, "/") {
			return s.capturePartition(pre.Bucket, key), nil
		}
	}
	return nil, errors.New("no configured prefix holds it")
}

// variantFolders finds the folders under prefix that hold year folders (yyyy/),
// looking at most depth levels down: the prefix may be Data Capture's destination
// (…/{endpoint}/{variant}/ below it), an endpoint folder, or a variant folder.
func variantFolders(ctx context.Context, b Bucket, prefix string, depth int) ([]string, error) {
	folders, err := b.Folders(ctx, prefix)
	if err != nil {
		return nil, err
	}
	for _, f := range folders {
		if isYear(strings.TrimSuffix(strings.TrimPrefix(f, prefix), "/")) {
			return []string{prefix}, nil
		}
	}
	if depth == 0 {
		return nil, nil
	}
	var out []string
	for _, f := range folders {
		sub, err := variantFolders(ctx, b, f, depth-1)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return out, nil
}

func isYear(s string) bool {
	return len(s) == 4 && strings.Trim(s, "0123456789") == "" && s >= "2000" && s < "2100"
}

// Totals counts what a source did since it started.
type Totals struct {
	Objects       int   // objects read to their end
	Bytes         int64 // bytes of those objects as stored (compressed, if so)
	Accepted      int   // valid events committed, duplicates included
	Duplicates    int   // committed events that changed nothing
	Rejected      int   // lines rejected
	DeadObjects   int   // objects that could not be read whole (dead-lettered)
	ObjectsBehind int   // listed objects not read yet, over all followed partitions
}

// Totals returns what the source did so far and how far behind it is: the sums of
// the per-partition counters.
func (s *Source) Totals() Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t Totals
	for _, c := range s.counts {
		t.Objects += c.objects
		t.Bytes += c.bytes
		t.Accepted += c.accepted
		t.Duplicates += c.duplicates
		t.Rejected += c.rejected
		t.DeadObjects += c.deadObjects
	}
	for _, f := range s.following {
		t.ObjectsBehind += f.stats().behind
	}
	return t
}

// Drain reads every object of every prefix once, without checkpoints (a replay of
// local copies: reading again is harmless), calling progress (if set) about every
// interval and once at the end. It returns the totals.
func (s *Source) Drain(ctx context.Context, interval time.Duration, progress func(Totals)) (Totals, error) {
	parts, err := s.discover(ctx)
	if err != nil {
		return s.Totals(), err
	}
	done := make(chan struct{})
	if progress != nil {
		go func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					progress(s.Totals())
				}
			}
		}()
	}
	var errs []error
	for _, p := range parts {
		f := &follower{s: s, p: p, claim: &memClaim{key: p.id}, cp: checkpoint{Done: map[string]int64{}}}
		s.mu.Lock()
		s.following[p.id] = f
		s.mu.Unlock()
		if err := f.round(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.id, err))
		}
		s.mu.Lock()
		delete(s.following, p.id)
		s.mu.Unlock()
	}
	close(done)
	t := s.Totals()
	if progress != nil {
		progress(t)
	}
	return t, errors.Join(errs...)
}
