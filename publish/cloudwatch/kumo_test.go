package cloudwatch

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/internal/emulatortest"
	"github.com/verdictml/verdict/judge"
)

// tee records each request it forwards to a real client.
type tee struct {
	rec  recorder
	next API
}

func (t *tee) PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	_, _ = t.rec.PutMetricData(ctx, in)
	return t.next.PutMetricData(ctx, in, optFns...)
}

// metricID names a metric with its dimensions, order-insensitively.
func metricID(name string, ds []types.Dimension) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// Publishes real window snapshots to the kumo emulator over the wire and reads them
// back with ListMetrics and GetMetricStatistics. kumo cannot decode timestamps, so
// this runs with OmitTimestamp (the wire golden test checks timestamps); kumo also
// collapses a query's datapoints into one and ignores Counts, so each metric gets
// exactly one flush here. Request compression is off for kumo only.
func TestKumoShowsThePublishedMetrics(t *testing.T) {
	url := emulatortest.KumoEndpoint(t)
	client := cloudwatch.NewFromConfig(emulatortest.Config(), func(o *cloudwatch.Options) {
		o.BaseEndpoint = aws.String(url)
		// kumo cannot read the gzip'd bodies the SDK sends by default; CloudWatch can.
		o.DisableRequestCompression = true
	})
	namespace := emulatortest.UniqueName(t, "Verdict")
	w := windowsOf(
		series{variant: "fraud-v4", counts: counts(800, 200, 200, 18800)},
		series{variant: "fraud-v5", counts: counts(810, 190, 190, 18810)},
		series{variant: "fraud-v4", segmentKey: "merchant_category", segment: "travel", counts: counts(400, 100, 100, 9400)},
		series{variant: "fraud-v5", segmentKey: "merchant_category", segment: "travel", counts: counts(405, 95, 95, 9405)},
		series{variant: "fraud-v4", segmentKey: "merchant_category", segment: "grocery", counts: counts(40, 10, 10, 940)},
		series{variant: "fraud-v5", segmentKey: "merchant_category", segment: "grocery", counts: counts(40, 10, 10, 940)},
		series{variant: "fraud-v4", segmentKey: "merchant_category", segment: "gaming", counts: counts(4, 1, 1, 94)},
		series{variant: "fraud-v5", segmentKey: "merchant_category", segment: "gaming", counts: counts(4, 1, 1, 94)},
		series{variant: "fraud-v5", segmentKey: "country", segment: "DE", counts: counts(4, 1, 1, 94)},
	)
	sent := &tee{next: client}
	reg := prometheus.NewRegistry()
	p, err := New(Config{
		Namespace: namespace, EndpointName: "fraud-detector",
		Variants:      map[string]Variant{"fraud-v5": {VariantName: "fraud-v5-AllTraffic"}},
		Pairs:         []judge.Pair{{Baseline: "fraud-v4", Candidate: "fraud-v5"}},
		TopSegments:   map[string]int{"merchant_category": 2},
		Interval:      time.Hour,
		OmitTimestamp: true,
	}, Deps{Client: sent, Snapshots: w, Registerer: reg, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	runPublisher(t, p)
	before := time.Now().Add(-time.Minute)
	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the flush to reach kumo", func() bool {
		return value(t, reg, "verdict_cloudwatch_flushes_total", "result", "delivered")+
			value(t, reg, "verdict_cloudwatch_flushes_total", "result", "failed") > 0
	})
	if got := value(t, reg, "verdict_cloudwatch_flushes_total", "result", "failed"); got != 0 {
		t.Fatalf("kumo rejected the flush (errors: %v)", value(t, reg, "verdict_cloudwatch_errors_total", "reason", ReasonRejected))
	}

	// ListMetrics shows exactly the series sent, with their dimensions.
	var listed []string
	pages := cloudwatch.NewListMetricsPaginator(client, &cloudwatch.ListMetricsInput{Namespace: aws.String(namespace)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatalf("ListMetrics: %v", err)
		}
		for _, m := range out.Metrics {
			listed = append(listed, metricID(aws.ToString(m.MetricName), m.Dimensions))
		}
	}
	var want []string
	for _, d := range sent.rec.datums() {
		want = append(want, metricID(aws.ToString(d.MetricName), d.Dimensions))
	}
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("ListMetrics shows %d metrics, %d were sent:\n listed %v\n   sent %v", len(listed), len(want), listed, want)
	}
	for _, id := range []string{
		"Precision{EndpointName=fraud-detector,VariantName=fraud-v4}",
		"Recall{EndpointName=fraud-detector,VariantName=fraud-v5-AllTraffic}",
		"LabeledPositives{EndpointName=fraud-detector,Segment=travel,SegmentKey=merchant_category,VariantName=fraud-v5-AllTraffic}",
		"PredictedPositives{EndpointName=fraud-detector,Segment=grocery,SegmentKey=merchant_category,VariantName=fraud-v4}",
		"SegmentRegressions{BaselineVariant=fraud-v4,EndpointName=fraud-detector,VariantName=fraud-v5-AllTraffic}",
	} {
		if !slices.Contains(listed, id) {
			t.Errorf("ListMetrics lacks %s", id)
		}
	}
	for _, id := range listed {
		if strings.Contains(id, "Segment=gaming") || strings.Contains(id, "SegmentKey=country") {
			t.Errorf("ListMetrics shows %s: not a configured top segment", id)
		}
	}

	// GetMetricStatistics returns the values.
	v4 := []types.Dimension{
		{Name: aws.String(cwmetric.DimEndpointName), Value: aws.String("fraud-detector")},
		{Name: aws.String(cwmetric.DimVariantName), Value: aws.String("fraud-v4")},
	}
	v5 := []types.Dimension{
		{Name: aws.String(cwmetric.DimEndpointName), Value: aws.String("fraud-detector")},
		{Name: aws.String(cwmetric.DimVariantName), Value: aws.String("fraud-v5-AllTraffic")},
	}
	vs := append(slices.Clone(v5), types.Dimension{Name: aws.String(cwmetric.DimBaselineVariant), Value: aws.String("fraud-v4")})
	travel := append(slices.Clone(v5),
		types.Dimension{Name: aws.String(cwmetric.DimSegmentKey), Value: aws.String("merchant_category")},
		types.Dimension{Name: aws.String(cwmetric.DimSegment), Value: aws.String("travel")})
	for _, tc := range []struct {
		metric string
		dims   []types.Dimension
		want   float64
	}{
		{cwmetric.Precision, v4, 0.8},
		{cwmetric.Recall, v4, 0.8},
		{cwmetric.PredictedPositives, v4, 1000},
		{cwmetric.LabeledPositives, v4, 1000},
		{cwmetric.Precision, v5, 0.81},
		{cwmetric.PredictionCount, v5, 20000},
		{cwmetric.Recall, travel, 0.81},
		{cwmetric.LabeledPositives, travel, 500},
		{cwmetric.SegmentRegressions, vs, 0},
	} {
		name := fmt.Sprintf("%s%v", tc.metric, metricID("", tc.dims))
		out, err := client.GetMetricStatistics(t.Context(), &cloudwatch.GetMetricStatisticsInput{
			Namespace: aws.String(namespace), MetricName: aws.String(tc.metric), Dimensions: tc.dims,
			StartTime: aws.Time(before), EndTime: aws.Time(time.Now().Add(time.Minute)),
			Period: aws.Int32(60), Statistics: []types.Statistic{types.StatisticAverage, types.StatisticSampleCount},
		})
		if err != nil {
			t.Errorf("GetMetricStatistics %s: %v", name, err)
			continue
		}
		if len(out.Datapoints) != 1 {
			t.Errorf("%s: %d datapoints, want 1", name, len(out.Datapoints))
			continue
		}
		dp := out.Datapoints[0]
		if !approxEqual(aws.ToFloat64(dp.Average), tc.want) || aws.ToFloat64(dp.SampleCount) != 1 {
			t.Errorf("%s: average %v over %v samples, want %v from one flush", name, aws.ToFloat64(dp.Average), aws.ToFloat64(dp.SampleCount), tc.want)
		}
	}
}
