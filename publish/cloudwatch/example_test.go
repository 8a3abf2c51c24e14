package cloudwatch_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/window"
)

// The wiring cmd/verdict does: the windows the join store keeps current, the judge
// with the service's thresholds, a CloudWatch client from the AWS config, the
// /metrics registry, and Run in the service's run group.
func ExampleNew() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	windows := window.New(5*time.Minute, 7*24*time.Hour)
	var awsCfg aws.Config // config.LoadDefaultConfig(ctx) in main
	p, err := cloudwatch.New(cloudwatch.Config{
		EndpointName: "fraud-detector",
		Variants:     map[string]cloudwatch.Variant{"fraud-v5": {VariantName: "fraud-v5"}},
		Pairs:        []judge.Pair{{Baseline: "fraud-v4", Candidate: "fraud-v5"}},
		TopSegments:  map[string]int{"merchant_category": 10},
		Judge:        judge.Config{}, // the service's thresholds
	}, cloudwatch.Deps{
		Client:     awscw.NewFromConfig(awsCfg),
		Snapshots:  windows,
		Registerer: prometheus.NewRegistry(),
		Log:        slog.Default(),
	})
	if err != nil {
		slog.Error("cloudwatch publisher", "err", err)
		return
	}
	go func() { _ = p.Run(ctx) }()
}
