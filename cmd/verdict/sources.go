package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	kds "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/alarms/watch"
	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/ingest/kinesis"
	"github.com/verdictml/verdict/ingest/lease"
	"github.com/verdictml/verdict/ingest/objectsource"
	"github.com/verdictml/verdict/ingest/objectsource/dirbucket"
	"github.com/verdictml/verdict/ingest/objectsource/s3bucket"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/window"
)

// kinesisSources builds one consumer per configured stream (predictions, labels),
// each feeding the join through a kinesis.SinkHandler. They share one lease table
// (lease keys include the stream name) and one dead-letter table.
func kinesisSources(ctx context.Context, cfg settings, awsConfig *awsOnce, log *slog.Logger, reg prometheus.Registerer,
	dec *ingest.Decoder, sink ingest.Sink, metrics *ingest.Metrics) ([]func(context.Context) error, error) {
	awsCfg, err := awsConfig.load(ctx)
	if err != nil {
		return nil, err
	}
	streams := kds.NewFromConfig(awsCfg)
	tables := dynamodb.NewFromConfig(awsCfg)
	var dead kinesis.DeadLetters
	if cfg.DeadLetterTable != "" {
		t := kinesis.NewDeadLetterTable(tables, cfg.DeadLetterTable)
		if err := t.Ensure(ctx); err != nil {
			return nil, fmt.Errorf("dead-letter table (VERDICT_DEAD_LETTER_TABLE): %w", err)
		}
		dead = t
	}
	start := kinesis.TrimHorizon
	if cfg.KinesisStart == "latest" {
		start = kinesis.Latest
	}
	consumerCfg := func(stream string) kinesis.Config {
		return kinesis.Config{
			Stream: stream, LeaseTable: cfg.LeaseTable, WorkerID: cfg.workerID(),
			InitialPosition: start, LeaseDuration: cfg.KinesisLease, Logger: log.With("stream", stream), Registerer: reg,
		}
	}
	var runs []func(context.Context) error
	add := func(stream string, h kinesis.Handler) error {
		c, err := kinesis.New(streams, tables, h, consumerCfg(stream))
		if err != nil {
			return fmt.Errorf("kinesis consumer for %s: %w", stream, err)
		}
		runs = append(runs, c.Run)
		return nil
	}
	if s := cfg.KinesisPreds; s != "" {
		if err := add(s, kinesis.NewSinkHandler[ingest.Prediction](s, dec, sink, dead, metrics)); err != nil {
			return nil, err
		}
	}
	if s := cfg.KinesisLabels; s != "" {
		if err := add(s, kinesis.NewSinkHandler[ingest.Label](s, dec, sink, dead, metrics)); err != nil {
			return nil, err
		}
	}
	return runs, nil
}

// objectPrefixes turns the VERDICT_S3_*_PREFIXES settings into followed prefixes:
// one Bucket per S3 bucket (newS3 builds the client only when an s3:// prefix is
// configured), one per local directory.
func objectPrefixes(cfg settings, newS3 func() (s3bucket.API, error)) ([]objectsource.Prefix, error) {
	var out []objectsource.Prefix
	buckets := map[string]objectsource.Bucket{}
	var client s3bucket.API
	for _, set := range []struct {
		variable string
		kind     ingest.Kind
		prefixes []string
	}{{"VERDICT_S3_CAPTURE_PREFIXES", ingest.KindPrediction, cfg.S3Captures}, {"VERDICT_S3_LABEL_PREFIXES", ingest.KindLabel, cfg.S3Labels}} {
		for _, p := range set.prefixes {
			bucket, prefix, err := parsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", set.variable, err)
			}
			if bucket == "" { // a local directory
				d, err := dirbucket.New(prefix)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", set.variable, err)
				}
				out = append(out, objectsource.Prefix{Bucket: d, Kind: set.kind})
				continue
			}
			b, ok := buckets[bucket]
			if !ok {
				if client == nil {
					if client, err = newS3(); err != nil {
						return nil, err
					}
				}
				b = s3bucket.New(client, bucket)
				buckets[bucket] = b
			}
			out = append(out, objectsource.Prefix{Bucket: b, Prefix: prefix, Kind: set.kind})
		}
	}
	return out, nil
}

// variantOfFolder maps a capture variant folder to its verdict variant with
// VERDICT_S3_VARIANTS ("endpoint/folder" first, then "folder"), else the folder name.
func variantOfFolder(names map[string]string) func(endpoint, folder string) string {
	return func(endpoint, folder string) string {
		if v, ok := names[endpoint+"/"+folder]; ok {
			return v
		}
		if v, ok := names[folder]; ok {
			return v
		}
		return folder
	}
}

// objectSource builds the S3 source (VERDICT_SOURCES=s3). With the embedded store it
// is the only reader of its prefixes: checkpoints and dead letters live in files
// under VERDICT_DATA_DIR/sources. With the DynamoDB store several instances share the
// variant folders through leases (VERDICT_S3_LEASE_TABLE, checkpoints in the lease
// items) and dead letters go to VERDICT_DEAD_LETTER_TABLE.
func objectSource(ctx context.Context, cfg settings, awsConfig *awsOnce, log *slog.Logger, reg prometheus.Registerer,
	dec *ingest.Decoder, sink ingest.Sink, metrics *ingest.Metrics) (*objectsource.Source, error) {
	prefixes, err := objectPrefixes(cfg, func() (s3bucket.API, error) {
		c, err := awsConfig.load(ctx)
		if err != nil {
			return nil, err
		}
		return s3.NewFromConfig(c, func(o *s3.Options) { o.UsePathStyle = cfg.S3PathStyle }), nil
	})
	if err != nil {
		return nil, err
	}
	srcCfg := objectsource.Config{
		Prefixes: prefixes, Decoder: dec, Sink: sink, Variant: variantOfFolder(cfg.S3Variants),
		Lookback: cfg.S3Lookback, PollInterval: cfg.S3Poll, Source: "s3", Metrics: metrics, Registerer: reg,
		Logger: log.With("source", "s3"),
	}
	if cfg.S3Start != "" {
		srcCfg.Start, _ = time.Parse(time.RFC3339, cfg.S3Start) // validated
	}
	if cfg.S3Queue != "" {
		c, err := awsConfig.load(ctx)
		if err != nil {
			return nil, err
		}
		q, err := s3bucket.NewQueue(sqs.NewFromConfig(c), s3bucket.QueueConfig{URL: cfg.S3Queue, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("VERDICT_S3_QUEUE_URL: %w", err)
		}
		srcCfg.Notifications = q
	}
	switch cfg.Store {
	case "dynamodb":
		c, err := awsConfig.load(ctx)
		if err != nil {
			return nil, err
		}
		tables := dynamodb.NewFromConfig(c)
		// New variant folders are looked for at every poll: one Delimiter listing
		// per folder level and a read of the lease table.
		g, err := lease.NewGroup(lease.NewTable(tables, cfg.S3LeaseTable, "objects"), lease.GroupConfig{
			WorkerID: cfg.workerID(), LeaseDuration: cfg.S3Lease, SyncInterval: cfg.S3Poll, Logger: log.With("source", "s3"),
		})
		if err != nil {
			return nil, fmt.Errorf("VERDICT_S3_LEASE_DURATION: %w", err)
		}
		srcCfg.Claims = objectsource.Leased(g)
		if cfg.DeadLetterTable != "" {
			t := kinesis.NewDeadLetterTable(tables, cfg.DeadLetterTable)
			if err := t.Ensure(ctx); err != nil {
				return nil, fmt.Errorf("dead-letter table (VERDICT_DEAD_LETTER_TABLE): %w", err)
			}
			srcCfg.DeadLetters = tableDeadLetters{t}
		}
	default:
		dir := filepath.Join(cfg.DataDir, "sources")
		claims, err := objectsource.NewDirClaims(filepath.Join(dir, "checkpoints"), cfg.S3Poll, log)
		if err != nil {
			return nil, fmt.Errorf("VERDICT_DATA_DIR: %w", err)
		}
		srcCfg.Claims = claims
		dead, err := objectsource.NewDirDeadLetters(filepath.Join(dir, "dead-letters"))
		if err != nil {
			return nil, fmt.Errorf("VERDICT_DATA_DIR: %w", err)
		}
		srcCfg.DeadLetters = dead
	}
	src, err := objectsource.New(srcCfg)
	if err != nil {
		return nil, fmt.Errorf("configuration (VERDICT_S3_*): %w", err)
	}
	return src, nil
}

// tableDeadLetters keeps the S3 source's dead letters in the DynamoDB dead-letter
// table of the Kinesis sources: source is the object's URL (s3://bucket/key), position
// "<ETag>#<line>" (line 000000 for an object that could not be read whole), so reading
// an object again overwrites its letters.
type tableDeadLetters struct{ t *kinesis.DeadLetterTable }

func (d tableDeadLetters) Put(ctx context.Context, letters []objectsource.DeadLetter) error {
	out := make([]kinesis.DeadLetter, 0, len(letters))
	for _, l := range letters {
		i := strings.Index(strings.TrimPrefix(l.Object, "s3://"), "/")
		if i < 0 {
			return fmt.Errorf("dead letter of %q: not an s3:// object", l.Object)
		}
		i += len("s3://")
		reason := l.Rejection.Reason
		if l.Rejection.Class == objectsource.ClassUnreadableObject {
			reason = "unreadable object: " + reason
		}
		out = append(out, kinesis.DeadLetter{Stream: l.Object[:i], ShardID: l.Object[i+1:], SequenceNumber: l.ETag,
			Index: l.Rejection.Line, ArrivedAt: l.LastModified, Data: l.Rejection.Raw, Reason: reason})
	}
	return d.t.Put(ctx, out)
}

func (tableDeadLetters) Flush(context.Context, string) error { return nil }

// cloudWatchPublisher builds the CloudWatch sink: per-variant metrics (and the
// configured top segments and baseline comparisons) every VERDICT_CLOUDWATCH_INTERVAL,
// from the same windows /metrics reads. With a shared store only the lease holder
// publishes. The endpoint may be overridden with AWS_ENDPOINT_URL_CLOUDWATCH.
func cloudWatchPublisher(ctx context.Context, cfg settings, awsConfig *awsOnce, log *slog.Logger, reg prometheus.Registerer,
	windows *window.Windows, jcfg judge.Config, leader cloudwatch.Leader) (*cloudwatch.Publisher, error) {
	awsCfg, err := awsConfig.load(ctx)
	if err != nil {
		return nil, err
	}
	cwc, ref, err := cloudWatchConfig(cfg, windows)
	if err != nil {
		return nil, err
	}
	cwc.Judge = jcfg
	client := cw.NewFromConfig(awsCfg, func(o *cw.Options) {
		// A hung endpoint must not hold a request for the whole send timeout.
		o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(10 * time.Second)
	})
	deps := cloudwatch.Deps{Client: client, Snapshots: windows, Leader: leader, Registerer: reg, Log: log}
	if ref != nil {
		deps.Reference = *ref
		log.Info("cloudwatch: shift signals against the reference period", "since", ref.Since, "until", ref.Until)
	}
	pub, err := cloudwatch.New(cwc, deps)
	if err != nil {
		return nil, fmt.Errorf("configuration (VERDICT_CLOUDWATCH_*): %w", err)
	}
	return pub, nil
}

// cloudWatchConfig is what the CloudWatch publisher sends (VERDICT_CLOUDWATCH_*),
// and so what the alarm watch records, with the reference period of the shift
// signals (VERDICT_REFERENCE_SINCE/UNTIL; nil without one). The reference is read
// back from the stored tallies at every flush, so it survives restarts and is the
// same on every instance.
func cloudWatchConfig(cfg settings, windows *window.Windows) (cloudwatch.Config, *cloudwatch.StoredReference, error) {
	span, err := window.ParseSpan(cfg.CWWindow)
	if err != nil {
		return cloudwatch.Config{}, nil, fmt.Errorf("VERDICT_CLOUDWATCH_WINDOW: %w", err)
	}
	variants := map[string]cloudwatch.Variant{}
	for id, name := range cfg.CWVariantNames {
		variants[id] = cloudwatch.Variant{VariantName: name}
	}
	// The publisher judges each pair over the comparison period — since
	// VERDICT_JUDGE_SINCE when set, as the gate does, else since the candidate's first
	// prediction — never over a sliding VERDICT_JUDGE_WINDOW: an alarm looks every
	// minute, and only the period keeps its error rates under repeated looks.
	var pairs []judge.Pair
	for _, p := range cfg.judgePairs() {
		rng := judge.Period(p.Range.Since)
		if p.Range.Sliding {
			rng = judge.Period(time.Time{})
		}
		pairs = append(pairs, judge.Pair{Baseline: p.Baseline, Candidate: p.Candidate, Range: rng})
	}
	pcfg := cloudwatch.Config{
		Namespace: cfg.CWNamespace, EndpointName: cfg.CWEndpoint, Window: span,
		Interval: cfg.CWInterval, HighResolution: cfg.CWHighRes, Variants: variants,
		Pairs: pairs, TopSegments: cfg.CWTopSegments, OmitTimestamp: cfg.CWOmitTimestamp,
	}
	since, until, err := cfg.reference()
	if err != nil {
		return cloudwatch.Config{}, nil, err
	}
	if since.IsZero() {
		return pcfg, nil, nil
	}
	sc := cfg.shiftConfig()
	pcfg.Shift = &sc
	return pcfg, &cloudwatch.StoredReference{Ranges: windows, Since: since, Until: until}, nil
}

// alarmWatch evaluates the alarms of VERDICT_ALARM_SPEC locally over what the
// CloudWatch publisher would send from the windows (GET /v1/alarms, the dashboard).
func alarmWatch(cfg settings, w *window.Windows, jcfg judge.Config, log *slog.Logger) (*watch.Watch, error) {
	spec, err := alarms.LoadSpec(cfg.AlarmSpec)
	if err != nil {
		return nil, fmt.Errorf("VERDICT_ALARM_SPEC: %w", err)
	}
	cwc, ref, err := cloudWatchConfig(cfg, w)
	if err != nil {
		return nil, err
	}
	if cwc.EndpointName == "" {
		cwc.EndpointName = spec.Endpoint
	}
	// Recorded, not sent: timestamps are the recording's own.
	cwc.OmitTimestamp = false
	cwc.Judge = jcfg
	wcfg := watch.Config{Spec: spec, File: cfg.AlarmSpec, Publisher: cwc, Every: cfg.CWInterval}
	if ref != nil {
		wcfg.Reference = *ref
	}
	wt, err := watch.New(wcfg, w, log)
	if err != nil {
		return nil, fmt.Errorf("VERDICT_ALARM_SPEC: %w", err)
	}
	return wt, nil
}
