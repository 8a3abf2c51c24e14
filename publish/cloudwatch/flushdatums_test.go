package cloudwatch

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/judge"
)

func TestFlushDatumsAreWhatFlushSends(t *testing.T) {
	flushAt := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	w := windowsOf(
		series{variant: "v5", counts: counts(300, 60, 20, 5000)},
		series{variant: "v6", counts: counts(250, 60, 70, 5000)},
		series{variant: "v6", segmentKey: "merchant_category", segment: "electronics", counts: counts(30, 5, 40, 500)},
	)
	cfg := Config{EndpointName: "fraud-detector", Pairs: []judge.Pair{{Baseline: "v5", Candidate: "v6"}},
		Variants: map[string]Variant{"v6": {VariantName: "AllTraffic"}}, TopSegments: map[string]int{"merchant_category": 3}}
	snaps := endAt{w, flushAt}

	sent := sentDatums(t, cfg, snaps)
	got, err := FlushDatums(cfg, snaps, nil, flushAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(sent) || len(got) == 0 {
		t.Fatalf("FlushDatums gave %d datums, Flush sent %d", len(got), len(sent))
	}
	for _, s := range sent {
		d, ok := find(got, aws.ToString(s.MetricName), dimMap(s.Dimensions))
		if !ok || !approxEqual(aws.ToFloat64(d.Value), aws.ToFloat64(s.Value)) || !aws.ToTime(d.Timestamp).Equal(aws.ToTime(s.Timestamp)) {
			t.Errorf("%s %v: FlushDatums %v at %v, Flush sent %v at %v", aws.ToString(s.MetricName), dimMap(s.Dimensions),
				aws.ToFloat64(d.Value), aws.ToTime(d.Timestamp), aws.ToFloat64(s.Value), aws.ToTime(s.Timestamp))
		}
	}
	if _, ok := find(got, cwmetric.SegmentRegressions, dims("EndpointName=fraud-detector", "VariantName=AllTraffic", "BaselineVariant=v5")); !ok {
		t.Error("no SegmentRegressions datum for the pair")
	}
}

func TestFlushDatumsValidatesTheConfig(t *testing.T) {
	cfg := Config{EndpointName: "e", Pairs: []judge.Pair{{Baseline: "v5", Candidate: "v6"}}, Judge: judge.Config{Alpha: 2}}
	if _, err := FlushDatums(cfg, oneSnapshot{}, nil, time.Unix(0, 0)); err == nil || !strings.Contains(err.Error(), "Alpha") {
		t.Errorf("FlushDatums with a bad judge config: %v, want it named", err)
	}
	if _, err := FlushDatums(Config{}, oneSnapshot{}, nil, time.Unix(0, 0)); err == nil {
		t.Error("FlushDatums without EndpointName: no error")
	}
}
