package cloudwatch

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/verdictml/verdict/cwmetric"
)

// PutMetricData limits (CloudWatch API reference, PutMetricData): at most 1000
// metric datums and 1 MB per request, at most 30 dimensions per metric. maxBytes
// leaves headroom under 1 MiB for the HTTP envelope.
const (
	maxDatums     = 1000
	maxBytes      = 1_000_000
	maxDimensions = 30
)

// split packs datums into as few PutMetricData requests as the limits allow: each
// at most perRequest datums and at most bytes of estimated payload, and every
// scope's datums — those of one segment, or of no segment (overall) — in the same
// request whenever they fit in one. An alarm reads one scope (a ratio, its n, the
// baseline's, the pair's shift signals), so a request CloudWatch rejects, or one
// that fails after the others went out, takes away all of what an alarm reads or
// none of it: never a ratio without its n. A scope too large for one request (more
// than about 35 variants) is split by variant, each variant's datums of the scope
// still together; datums keep their order within a scope and scopes the order in
// which they first appear.
func split(namespace string, datums []types.MetricDatum, perRequest, bytes int) []*cloudwatch.PutMetricDataInput {
	p := packer{namespace: namespace, perRequest: perRequest, bytes: bytes, envelope: requestOverhead(namespace)}
	p.size = p.envelope
	for _, scope := range groupBy(datums, scopeOf) {
		if p.fitsAlone(scope) {
			p.add(scope)
			continue
		}
		for _, variant := range groupBy(scope, variantOf) {
			if p.fitsAlone(variant) {
				p.add(variant)
				continue
			}
			for _, d := range variant { // never with the metric contract's datums
				p.add([]types.MetricDatum{d})
			}
		}
	}
	p.flush()
	return p.out
}

// packer fills requests group by group, in order.
type packer struct {
	namespace         string
	perRequest, bytes int
	envelope          int
	out               []*cloudwatch.PutMetricDataInput
	cur               []types.MetricDatum
	size              int
}

// fitsAlone reports whether a group fits in an empty request.
func (p *packer) fitsAlone(g []types.MetricDatum) bool {
	return len(g) <= p.perRequest && p.envelope+groupSize(g) <= p.bytes
}

// add appends a group to the current request, or to a new one when it does not fit
// beside what is there. A single datum over the byte budget still goes, alone.
func (p *packer) add(g []types.MetricDatum) {
	n := groupSize(g)
	if len(p.cur) > 0 && (len(p.cur)+len(g) > p.perRequest || p.size+n > p.bytes) {
		p.flush()
	}
	p.cur = append(p.cur, g...)
	p.size += n
}

func (p *packer) flush() {
	if len(p.cur) == 0 {
		return
	}
	p.out = append(p.out, &cloudwatch.PutMetricDataInput{Namespace: aws.String(p.namespace), MetricData: p.cur})
	p.cur, p.size = nil, p.envelope
}

func groupSize(g []types.MetricDatum) int {
	n := 0
	for _, d := range g {
		n += datumSize(d)
	}
	return n
}

// groupBy splits datums into groups of equal key, in order of first appearance.
func groupBy(datums []types.MetricDatum, key func(types.MetricDatum) string) [][]types.MetricDatum {
	index := map[string]int{}
	var groups [][]types.MetricDatum
	for _, d := range datums {
		k := key(d)
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], d)
	}
	return groups
}

// scopeOf is a datum's segment (SegmentKey and Segment), "" for overall ones.
func scopeOf(d types.MetricDatum) string {
	return dimension(d, cwmetric.DimSegmentKey) + "\x00" + dimension(d, cwmetric.DimSegment)
}

// variantOf is a datum's VariantName.
func variantOf(d types.MetricDatum) string { return dimension(d, cwmetric.DimVariantName) }

func dimension(d types.MetricDatum, name string) string {
	for _, dim := range d.Dimensions {
		if aws.ToString(dim.Name) == name {
			return aws.ToString(dim.Value)
		}
	}
	return ""
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
