package rehearsal

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/window"
)

// Publisher records what verdict's CloudWatch publisher would send, into a
// metric history the local alarm evaluator reads.
type Publisher struct {
	// Config is the CloudWatch publisher's configuration: namespace, endpoint,
	// window, variant dimensions, baseline pairs and the thresholds they are
	// judged with.
	Config cloudwatch.Config
	// Reference is the reference period of Config.Shift's signals.
	Reference cloudwatch.Reference
	// Samples receives the published values.
	Samples *MetricHistory

	// last is the last flush's values, for Repeat.
	last []published
}

type published struct {
	metric alarms.Metric
	value  float64
}

// Publish records one flush at now of the windows' Config.Window snapshot.
func (p *Publisher) Publish(now time.Time, w *window.Windows) error {
	datums, err := cloudwatch.FlushDatums(p.Config, w, p.Reference, now)
	if err != nil {
		return fmt.Errorf("rehearsal: metrics at %s: %w", now.Format(time.RFC3339), err)
	}
	ns := p.Config.Namespace
	if ns == "" {
		ns = cwmetric.DefaultNamespace
	}
	p.last = p.last[:0]
	for _, d := range datums {
		m := alarms.Metric{Namespace: ns, MetricName: aws.ToString(d.MetricName)}
		for _, dim := range d.Dimensions {
			m.Dimensions = append(m.Dimensions, alarms.Dimension{Name: aws.ToString(dim.Name), Value: aws.ToString(dim.Value)})
		}
		at := now
		if d.Timestamp != nil {
			at = *d.Timestamp
		}
		p.Samples.Add(m, at, aws.ToFloat64(d.Value))
		p.last = append(p.last, published{m, aws.ToFloat64(d.Value)})
	}
	return nil
}

// Repeat records at now the values of the last Publish: what a flush sends
// when the windows hold what they held then (Tick.Changed false).
func (p *Publisher) Repeat(now time.Time) {
	at := now.Truncate(time.Millisecond)
	for _, d := range p.last {
		p.Samples.Add(d.metric, at, d.value)
	}
}

// PublisherFor is the publisher configuration the alarms of spec read: the spec's
// namespace and endpoint, and the candidate's and baseline's verdict variant ids
// published under the spec's variant names. Its Judge is judge's defaults: set the
// thresholds in force.
func PublisherFor(spec *alarms.Spec, baseline, candidate string, span window.Span) cloudwatch.Config {
	cfg := cloudwatch.Config{
		Namespace:    spec.Namespace,
		EndpointName: spec.Endpoint,
		Window:       span,
		Variants: map[string]cloudwatch.Variant{
			candidate: {VariantName: spec.Candidate.Variant},
		},
	}
	if spec.Baseline.Variant != "" && baseline != "" {
		cfg.Variants[baseline] = cloudwatch.Variant{VariantName: spec.Baseline.Variant}
		cfg.Pairs = []judge.Pair{{Baseline: baseline, Candidate: candidate}}
	}
	return cfg
}

// MetricHistory is what a replay published, per metric in time order: the
// local alarm evaluator's MetricSource. A period's statistic is found by binary
// search, so evaluating late in a long replay costs what it costs early on.
type MetricHistory struct {
	series map[string][]sample
}

type sample struct {
	t time.Time
	v float64
}

// NewMetricHistory returns an empty history.
func NewMetricHistory() *MetricHistory { return &MetricHistory{series: map[string][]sample{}} }

// Add records one published value; values of one metric come in time order
// (an older one is put in its place).
func (h *MetricHistory) Add(m alarms.Metric, at time.Time, v float64) {
	k := metricKey(m)
	ss := h.series[k]
	i := len(ss)
	if i > 0 && at.Before(ss[i-1].t) {
		i = sort.Search(len(ss), func(j int) bool { return ss[j].t.After(at) })
	}
	h.series[k] = slices.Insert(ss, i, sample{at, v})
}

// Statistic implements alarms.MetricSource: the samples in [start, end)
// aggregated by the evaluator's own rules (alarms.Samples).
func (h *MetricHistory) Statistic(ctx context.Context, m alarms.Metric, stat string, start, end time.Time) (float64, bool, error) {
	ss := h.series[metricKey(m)]
	lo := sort.Search(len(ss), func(i int) bool { return !ss[i].t.Before(start) })
	hi := sort.Search(len(ss), func(i int) bool { return !ss[i].t.Before(end) })
	period := alarms.NewSamples()
	for _, s := range ss[lo:hi] {
		period.Add(m, s.t, s.v)
	}
	return period.Statistic(ctx, m, stat, start, end)
}

// metricKey names a metric whatever the order of its dimensions.
func metricKey(m alarms.Metric) string {
	dims := make([]string, 0, len(m.Dimensions))
	for _, d := range m.Dimensions {
		dims = append(dims, d.Name+"="+d.Value)
	}
	slices.Sort(dims)
	return m.Namespace + "\x00" + m.MetricName + "\x00" + strings.Join(dims, "\x00")
}

// DropBefore forgets the samples older than t, so a history recorded live (the
// dashboard's alarm states) stays bounded by what an evaluation can read.
func (h *MetricHistory) DropBefore(t time.Time) {
	for k, ss := range h.series {
		i := sort.Search(len(ss), func(i int) bool { return !ss[i].t.Before(t) })
		switch {
		case i == len(ss):
			delete(h.series, k)
		case i > 0:
			h.series[k] = slices.Clone(ss[i:])
		}
	}
}
