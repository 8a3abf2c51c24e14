package cloudwatch

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// PutMetricData limits (CloudWatch API reference, PutMetricData): at most 1000
// metric datums and 1 MB per request, at most 30 dimensions per metric. maxBytes
// leaves headroom under 1 MiB for the HTTP envelope.
const (
	maxDatums     = 1000
	maxBytes      = 1_000_000
	maxDimensions = 30
)

// split packs datums, in order, into as few PutMetricData requests as the limits
// allow: each at most perRequest datums and at most bytes of estimated payload.
func split(namespace string, datums []types.MetricDatum, perRequest, bytes int) []*cloudwatch.PutMetricDataInput {
	var out []*cloudwatch.PutMetricDataInput
	envelope := requestOverhead(namespace)
	var cur []types.MetricDatum
	size := envelope
	flush := func() {
		if len(cur) == 0 {
			return
		}
		out = append(out, &cloudwatch.PutMetricDataInput{Namespace: aws.String(namespace), MetricData: cur})
		cur, size = nil, envelope
	}
	for _, d := range datums {
		n := datumSize(d)
		if len(cur) == perRequest || (len(cur) > 0 && size+n > bytes) {
			flush()
		}
		cur = append(cur, d)
		size += n
	}
	flush()
	return out
}

// requestOverhead bounds the bytes of a request besides its datums: the top-level
// map, the namespace, the MetricData list header.
func requestOverhead(namespace string) int {
	return 1 + cborString("Namespace") + cborString(namespace) + cborString("MetricData") + 9 + 1
}

// datumSize is an upper bound of one datum's Smithy RPCv2 CBOR encoding (what
// cloudwatch v1.75 sends; the query and JSON protocols are not used): definite or
// indefinite lengths, float64 numbers. TestDatumSizeBoundsTheWire checks it
// against the SDK's real request bodies.
func datumSize(d types.MetricDatum) int {
	n := 2 // map header, or indefinite start and break
	n += cborString("MetricName") + cborString(aws.ToString(d.MetricName))
	if d.Dimensions != nil {
		n += cborString("Dimensions") + cborHead(len(d.Dimensions)) + 1
		for _, dim := range d.Dimensions {
			n += 2 + cborString("Name") + cborString(aws.ToString(dim.Name)) +
				cborString("Value") + cborString(aws.ToString(dim.Value))
		}
	}
	if d.Timestamp != nil {
		n += cborString("Timestamp") + 1 + 9 // tag 1, float64 epoch seconds
	}
	if d.Value != nil {
		n += cborString("Value") + 9
	}
	if d.Unit != "" {
		n += cborString("Unit") + cborString(string(d.Unit))
	}
	if d.StorageResolution != nil {
		n += cborString("StorageResolution") + 5
	}
	if d.Values != nil {
		n += cborString("Values") + cborHead(len(d.Values)) + 1 + 9*len(d.Values)
	}
	if d.Counts != nil {
		n += cborString("Counts") + cborHead(len(d.Counts)) + 1 + 9*len(d.Counts)
	}
	if d.StatisticValues != nil {
		n += cborString("StatisticValues") + 2 + cborString("SampleCount") + cborString("Sum") +
			cborString("Minimum") + cborString("Maximum") + 4*9
	}
	return n
}

func cborString(s string) int { return cborHead(len(s)) + len(s) }

// cborHead is the size of a CBOR item head with argument n.
func cborHead(n int) int {
	switch {
	case n < 24:
		return 1
	case n < 1<<8:
		return 2
	case n < 1<<16:
		return 3
	case n < 1<<32:
		return 5
	}
	return 9
}
