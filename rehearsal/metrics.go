package rehearsal

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/publish/cloudwatch"
	"github.com/verdictml/verdict/window"
)

// Publisher records what verdict's CloudWatch publisher would send, into a
// metric history the local alarm evaluator reads.
type Publisher struct {
	// Config is the CloudWatch publisher's configuration: namespace, endpoint,
	// window, variant dimensions and baseline pairs.
	Config cloudwatch.Config
	// Judge computes the baseline metrics of Config.Pairs.
	Judge cloudwatch.Judge
	// Samples receives the published values.
	Samples *alarms.Samples
}

// Publish records one flush at now of the windows' Config.Window snapshot.
func (p *Publisher) Publish(now time.Time, w *window.Windows) error {
	datums, err := cloudwatch.FlushDatums(p.Config, w, p.Judge, now)
	if err != nil {
		return fmt.Errorf("rehearsal: metrics at %s: %w", now.Format(time.RFC3339), err)
	}
	ns := p.Config.Namespace
	if ns == "" {
		ns = cloudwatch.DefaultNamespace
	}
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
	}
	return nil
}

// PublisherFor is the publisher configuration the alarms of spec read: the spec's
// namespace and endpoint, and the candidate's and baseline's verdict variant ids
// published under the spec's variant names.
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
		cfg.Pairs = []cloudwatch.Pair{{Baseline: baseline, Candidate: candidate}}
	}
	return cfg
}
