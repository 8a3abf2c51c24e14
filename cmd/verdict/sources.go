package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	kds "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/ingest/kinesis"
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
			Stream: stream, LeaseTable: cfg.LeaseTable, WorkerID: cfg.WorkerID,
			InitialPosition: start, Logger: log.With("stream", stream), Registerer: reg,
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
