package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	kds "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/ingest/kinesis"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/window"
)

// loadAWS reads the standard AWS configuration: credentials chain, AWS_REGION, and
// endpoint overrides such as AWS_ENDPOINT_URL_KINESIS / AWS_ENDPOINT_URL_DYNAMODB
// (how the tests point verdict at local emulators).
func loadAWS(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return cfg, fmt.Errorf("aws configuration: %w", err)
	}
	return cfg, nil
}

// kinesisSources builds one consumer per configured stream (predictions, labels),
// each feeding the join through a kinesis.SinkHandler. They share one lease table
// (lease keys include the stream name) and one dead-letter table.
func kinesisSources(ctx context.Context, cfg settings, log *slog.Logger, reg prometheus.Registerer,
	dec *ingest.Decoder, sink ingest.Sink, metrics *ingest.Metrics) ([]func(context.Context) error, error) {
	awsCfg, err := loadAWS(ctx)
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

// cloudWatchPublisher builds the CloudWatch sink: per-variant metrics (and the
// configured top segments and baseline comparisons) every VERDICT_CLOUDWATCH_INTERVAL,
// from the same windows /metrics reads. With a shared store only the lease holder
// publishes. The endpoint may be overridden with AWS_ENDPOINT_URL_CLOUDWATCH.
func cloudWatchPublisher(ctx context.Context, cfg settings, log *slog.Logger, reg prometheus.Registerer,
	snaps cloudwatch.Snapshots, jcfg judge.Config, leader cloudwatch.Leader) (*cloudwatch.Publisher, error) {
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return nil, err
	}
	span, err := window.ParseSpan(cfg.CWWindow)
	if err != nil {
		return nil, fmt.Errorf("VERDICT_CLOUDWATCH_WINDOW: %w", err)
	}
	variants := map[string]cloudwatch.Variant{}
	for id, name := range cfg.CWVariantNames {
		variants[id] = cloudwatch.Variant{VariantName: name}
	}
	var pairs []cloudwatch.Pair
	for _, p := range cfg.judgePairs() {
		pairs = append(pairs, cloudwatch.Pair{Baseline: p.Baseline, Candidate: p.Candidate})
	}
	judgeFn, err := cloudwatch.NewJudge(jcfg)
	if err != nil {
		return nil, err
	}
	client := cw.NewFromConfig(awsCfg, func(o *cw.Options) {
		// A hung endpoint must not hold a request for the whole send timeout.
		o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(10 * time.Second)
	})
	pub, err := cloudwatch.New(cloudwatch.Config{
		Namespace: cfg.CWNamespace, EndpointName: cfg.CWEndpoint, Window: span,
		Interval: cfg.CWInterval, HighResolution: cfg.CWHighRes, Variants: variants,
		Pairs: pairs, TopSegments: cfg.CWTopSegments, OmitTimestamp: cfg.CWOmitTimestamp,
	}, cloudwatch.Deps{Client: client, Snapshots: snaps, Judge: judgeFn, Leader: leader, Registerer: reg, Log: log})
	if err != nil {
		return nil, fmt.Errorf("configuration (VERDICT_CLOUDWATCH_*): %w", err)
	}
	return pub, nil
}
