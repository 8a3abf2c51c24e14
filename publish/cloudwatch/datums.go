package cloudwatch

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// regressions judges cfg's pairs with cfg.Judge; nil without pairs.
func regressions(cfg Config, snaps Snapshots) ([]judge.SegmentRegression, error) {
	if len(cfg.Pairs) == 0 {
		return nil, nil
	}
	regs, err := judge.Regressions(snaps, cfg.Pairs, cfg.Judge)
	if err != nil {
		return nil, fmt.Errorf("judge baseline pairs over %s: %w", cfg.Window, err)
	}
	return regs, nil
}

// skipped is a series left out of a flush because CloudWatch would reject it.
type skipped struct {
	Key tally.Key
	Err error
}

// segmentID is one segment value of one segment key.
type segmentID struct{ Key, Value string }

// topSegments picks, per configured segment key, the top-N segments by predictions
// in the window summed over all variants (ties: by segment value), among segments
// whose names are valid dimension values.
func topSegments(rows []window.Row, topN map[string]int) map[segmentID]bool {
	volume := map[segmentID]int64{}
	for _, r := range rows {
		if r.Key.Overall() || topN[r.Key.SegmentKey] <= 0 {
			continue
		}
		if checkDimensionValue(r.Key.Segment) != nil {
			continue
		}
		volume[segmentID{r.Key.SegmentKey, r.Key.Segment}] += r.Counts.Predictions
	}
	byKey := map[string][]segmentID{}
	for id := range volume {
		byKey[id.Key] = append(byKey[id.Key], id)
	}
	out := map[segmentID]bool{}
	for key, ids := range byKey {
		slices.SortFunc(ids, func(a, b segmentID) int {
			if c := cmp.Compare(volume[b], volume[a]); c != 0 {
				return c
			}
			return cmp.Compare(a.Value, b.Value)
		})
		for _, id := range ids[:min(len(ids), topN[key])] {
			out[id] = true
		}
	}
	return out
}

// build turns one snapshot, its judgements and the pairs' shift signals into the
// datums of one flush, all stamped with at (unless cfg.OmitTimestamp). Undefined and
// not estimable ratios are omitted; counts and n's are present, except precision's n
// while precision is not estimable (see row). Series CloudWatch would reject are
// returned in skipped instead.
func build(cfg Config, snap window.Snapshot, regs []judge.SegmentRegression, shifts []judge.Shift, at time.Time) ([]types.MetricDatum, []skipped) {
	b := datumBuilder{cfg: cfg}
	if !cfg.OmitTimestamp {
		b.at = aws.Time(at)
	}
	b.resolution = aws.Int32(60)
	if cfg.HighResolution {
		b.resolution = aws.Int32(1)
	}
	top := topSegments(snap.Rows, cfg.TopSegments)
	var skips []skipped
	for _, r := range withEveryTopSegment(snap.Rows, top) {
		if !r.Key.Overall() && !top[segmentID{r.Key.SegmentKey, r.Key.Segment}] {
			continue
		}
		dims, err := b.dimensions(r.Key.Variant, "", r.Key.SegmentKey, r.Key.Segment)
		if err != nil {
			skips = append(skips, skipped{r.Key, err})
			continue
		}
		b.row(dims, r)
	}
	for _, g := range regs {
		dims, err := b.dimensions(g.Candidate, g.Baseline, "", "")
		if err != nil {
			skips = append(skips, skipped{tally.Key{Variant: g.Candidate}, err})
			continue
		}
		b.count(cwmetric.SegmentRegressions, dims, int64(g.Segments))
		b.ratio(cwmetric.WorstSegmentRecallDelta, dims, g.WorstRecallDelta)
		b.ratio(cwmetric.PrecisionDelta, dims, g.PrecisionDelta)
		b.ratio(cwmetric.RecallDelta, dims, g.RecallDelta)
	}
	published := map[tally.Key]bool{}
	for _, s := range shifts {
		skips = append(skips, b.shift(s, top, published)...)
	}
	return b.out, skips
}

// withEveryTopSegment adds an empty row for each variant and top segment the
// variant has no predictions in, so its n's go out as 0 rather than missing, and
// returns the rows in snapshot order (variant; overall first; segment key, value).
func withEveryTopSegment(rows []window.Row, top map[segmentID]bool) []window.Row {
	have := map[tally.Key]bool{}
	var variants []string
	for _, r := range rows {
		have[r.Key] = true
		if r.Key.Overall() {
			variants = append(variants, r.Key.Variant)
		}
	}
	out := slices.Clone(rows)
	added := false
	for _, v := range variants {
		for id := range top {
			k := tally.Key{Variant: v, SegmentKey: id.Key, Segment: id.Value}
			if !have[k] {
				out = append(out, window.Row{Key: k, Stats: window.Derive(tally.Counts{})})
				added = true
			}
		}
	}
	if added {
		slices.SortStableFunc(out, func(a, b window.Row) int {
			if c := cmp.Compare(a.Key.Variant, b.Key.Variant); c != 0 {
				return c
			}
			if a.Key.Overall() != b.Key.Overall() {
				if a.Key.Overall() {
					return -1
				}
				return 1
			}
			if c := cmp.Compare(a.Key.SegmentKey, b.Key.SegmentKey); c != 0 {
				return c
			}
			return cmp.Compare(a.Key.Segment, b.Key.Segment)
		})
	}
	return out
}

type datumBuilder struct {
	cfg        Config
	at         *time.Time
	resolution *int32
	out        []types.MetricDatum
}

// variantName is verdict's variant id as CloudWatch's VariantName.
func (b *datumBuilder) variantName(id string) string {
	if v := b.cfg.Variants[id].VariantName; v != "" {
		return v
	}
	return id
}

// dimensions are a series' dimensions in the contract's order: EndpointName,
// VariantName, [EndpointConfigName], [BaselineVariant], [SegmentKey, Segment].
func (b *datumBuilder) dimensions(variant, baseline, segmentKey, segment string) ([]types.Dimension, error) {
	dims := []types.Dimension{
		{Name: aws.String(cwmetric.DimEndpointName), Value: aws.String(b.cfg.EndpointName)},
		{Name: aws.String(cwmetric.DimVariantName), Value: aws.String(b.variantName(variant))},
	}
	if ec := b.cfg.Variants[variant].EndpointConfigName; ec != "" {
		dims = append(dims, types.Dimension{Name: aws.String(cwmetric.DimEndpointConfigName), Value: aws.String(ec)})
	}
	if baseline != "" {
		dims = append(dims, types.Dimension{Name: aws.String(cwmetric.DimBaselineVariant), Value: aws.String(b.variantName(baseline))})
	}
	if segmentKey != "" {
		dims = append(dims,
			types.Dimension{Name: aws.String(cwmetric.DimSegmentKey), Value: aws.String(segmentKey)},
			types.Dimension{Name: aws.String(cwmetric.DimSegment), Value: aws.String(segment)})
	}
	if len(dims) > maxDimensions {
		return nil, fmt.Errorf("%d dimensions, at most %d", len(dims), maxDimensions)
	}
	for _, d := range dims {
		if err := checkDimensionValue(aws.ToString(d.Value)); err != nil {
			return nil, fmt.Errorf("dimension %s: %w", aws.ToString(d.Name), err)
		}
	}
	return dims, nil
}

func (b *datumBuilder) row(dims []types.Dimension, r window.Row) {
	c, s := r.Counts, r.Stats
	b.ratio(cwmetric.Precision, dims, s.Precision)
	b.ratio(cwmetric.Recall, dims, s.Recall)
	b.ratio(cwmetric.F1, dims, s.F1)
	if s.PrecisionCI != nil {
		b.ratio(cwmetric.PrecisionLowerBound, dims, &s.PrecisionCI.Lower)
	}
	if s.RecallCI != nil {
		b.ratio(cwmetric.RecallLowerBound, dims, &s.RecallCI.Lower)
	}
	b.count(cwmetric.TruePositives, dims, c.TP)
	b.count(cwmetric.FalsePositives, dims, c.FP)
	b.count(cwmetric.FalseNegatives, dims, c.FN)
	b.count(cwmetric.TrueNegatives, dims, c.TN)
	b.count(cwmetric.ResolvedCount, dims, c.Resolved())
	b.count(cwmetric.LabeledPositives, dims, c.TP+c.FN)
	// Precision's n goes with precision: the alarms' guard IF(n >= min_n, v) turns a
	// present n without its v into 0, a breaching value. While precision is not
	// estimable (resolved flagged predictions are mostly the early positives), both
	// are omitted and the guarded datapoint is missing, which the alarms read as
	// not breaching.
	if s.Estimable.Precision.Estimable || c.TP+c.FP == 0 {
		b.count(cwmetric.PredictedPositives, dims, c.TP+c.FP)
	}
	b.count(cwmetric.PredictionCount, dims, c.Predictions)
	b.ratio(cwmetric.FlagRate, dims, s.FlagRate)
	b.ratio(cwmetric.LabelCoverage, dims, s.LabelCoverage)
}

// ratio adds a unitless value, or nothing when it is undefined.
func (b *datumBuilder) ratio(name string, dims []types.Dimension, v *float64) {
	if v == nil {
		return
	}
	b.add(name, dims, *v, types.StandardUnitNone)
}

func (b *datumBuilder) count(name string, dims []types.Dimension, n int64) {
	b.add(name, dims, float64(n), types.StandardUnitCount)
}

func (b *datumBuilder) add(name string, dims []types.Dimension, v float64, unit types.StandardUnit) {
	b.out = append(b.out, types.MetricDatum{
		MetricName:        aws.String(name),
		Dimensions:        dims,
		Timestamp:         b.at,
		Value:             aws.Float64(v),
		Unit:              unit,
		StorageResolution: b.resolution,
	})
}
