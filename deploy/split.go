package deploy

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"go.yaml.in/yaml/v3"

	"github.com/verdictml/verdict/internal/strictyaml"
)

// Split is a stable A/B split (see testdata/split.yaml and docs/deploy.md): one
// endpoint config with two or more weighted production variants, kept for weeks
// while verdict compares them, its weights moved with `verdict deploy weights`.
type Split struct {
	// Endpoint is the SageMaker endpoint that serves the split.
	Endpoint string `yaml:"endpoint"`
	// EndpointConfig is the name of the endpoint config created for the split.
	EndpointConfig string `yaml:"endpoint_config"`
	// Variants are the production variants; each gets the share
	// weight / sum of weights of the traffic.
	Variants []SplitVariant `yaml:"variants"`
	// DataCapture, when set, is added to the endpoint config.
	DataCapture *DataCapture `yaml:"data_capture"`
	// Tags are added to the endpoint config.
	Tags map[string]string `yaml:"tags"`
}

// SplitVariant is one production variant of a split.
type SplitVariant struct {
	Name          string `yaml:"name"`
	Model         string `yaml:"model"`
	InstanceType  string `yaml:"instance_type"`
	InstanceCount int    `yaml:"instance_count"`
	// Weight is required: a reviewed split states every weight.
	Weight *float64 `yaml:"weight"`
}

// StageSplit creates a split's endpoint config and moves the endpoint to it.
const StageSplit Stage = "split"

// SageMaker's ProductionVariants list holds 1 to 10 variants; a split needs 2.
const (
	minSplitVariants = 2
	maxSplitVariants = 10
)

// SpecKind is the kind of a deploy spec file.
type SpecKind string

// Spec kinds.
const (
	KindRollout SpecKind = "rollout"
	KindSplit   SpecKind = "split"
)

// KindOf tells a split spec (it has top-level variants) from a rollout spec.
func KindOf(path string) (SpecKind, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("deploy: read spec: %w", err)
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(b, &top); err != nil {
		return "", fmt.Errorf("deploy: spec %s: decode yaml: %w", path, err)
	}
	if _, ok := top["variants"]; ok {
		return KindSplit, nil
	}
	return KindRollout, nil
}

// LoadSplit reads, defaults and validates a split spec.
func LoadSplit(path string) (*Split, error) {
	return strictyaml.Load(path, "deploy", "split spec", ParseSplit)
}

// ParseSplit decodes, defaults and validates a split spec.
func ParseSplit(b []byte) (*Split, error) {
	return strictyaml.Parse(b, "split spec", func(s *Split) { s.DataCapture.applyDefaults() }, (*Split).Validate)
}

// Validate reports everything CreateEndpointConfig would reject, and a split
// that is not one, each problem naming its field.
func (s *Split) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	name := func(field, v string) { checkName(bad, field, v) }
	name("endpoint", s.Endpoint)
	name("endpoint_config", s.EndpointConfig)
	if n := len(s.Variants); n < minSplitVariants || n > maxSplitVariants {
		bad("variants", "%d variants; a split has %d to %d (SageMaker's limit of production variants per endpoint config)", n, minSplitVariants, maxSplitVariants)
	}
	seen := map[string]int{}
	total := 0.0
	for i, v := range s.Variants {
		f := fmt.Sprintf("variants[%d]", i)
		name(f+".name", v.Name)
		name(f+".model", v.Model)
		if j, dup := seen[v.Name]; dup && v.Name != "" {
			bad(f+".name", "%q is also variants[%d]; variant names must be distinct", v.Name, j)
		}
		seen[v.Name] = i
		checkInstances(bad, f, v.InstanceType, v.InstanceCount)
		switch {
		case v.Weight == nil:
			bad(f+".weight", "is required")
		case !validWeight(*v.Weight):
			bad(f+".weight", "%v must be a number from 0 to %g", *v.Weight, math.MaxFloat32)
		default:
			total += *v.Weight
		}
	}
	if len(s.Variants) > 0 && total == 0 && len(errs) == 0 {
		bad("variants", "every weight is 0; at least one variant must receive traffic")
	}
	errs = append(errs, s.DataCapture.validate()...)
	errs = append(errs, validateTags("tags", s.Tags)...)
	return errors.Join(errs...)
}

// validWeight is SageMaker's VariantWeight (a float, at least 0).
func validWeight(w float64) bool {
	return !math.IsNaN(w) && w >= 0 && w <= math.MaxFloat32
}

// Requests builds the split: the endpoint config with the weighted production
// variants, and the UpdateEndpoint that moves the endpoint to it. The update has
// no DeploymentConfig (SageMaker's default all-at-once blue/green); once it is
// done, the weights move with UpdateEndpointWeightsAndCapacities, without a new
// endpoint config.
func (s *Split) Requests() *Requests {
	cfg := &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(s.EndpointConfig),
		DataCaptureConfig:  dataCaptureConfig(s.DataCapture),
		Tags:               managedTags(s.Tags),
	}
	for _, v := range s.Variants {
		cfg.ProductionVariants = append(cfg.ProductionVariants, types.ProductionVariant{
			VariantName:          aws.String(v.Name),
			ModelName:            aws.String(v.Model),
			InstanceType:         types.ProductionVariantInstanceType(v.InstanceType),
			InitialInstanceCount: aws.Int32(int32(v.InstanceCount)),
			InitialVariantWeight: aws.Float32(float32(*v.Weight)),
		})
	}
	return &Requests{
		Stage:                StageSplit,
		CreateEndpointConfig: cfg,
		UpdateEndpoint: &sagemaker.UpdateEndpointInput{
			EndpointName:       aws.String(s.Endpoint),
			EndpointConfigName: aws.String(s.EndpointConfig),
		},
	}
}

// Weights are the split's weights as configured.
func (s *Split) Weights() []Weight {
	out := make([]Weight, 0, len(s.Variants))
	for _, v := range s.Variants {
		w := 0.0
		if v.Weight != nil {
			w = *v.Weight
		}
		out = append(out, Weight{Variant: v.Name, Weight: w})
	}
	return out
}

// CheckVariants reports desired weights for variants the split does not have.
func (s *Split) CheckVariants(desired []Weight) error {
	return checkVariants("split spec "+s.EndpointConfig, s.Weights(), desired)
}

func checkVariants(what string, have, desired []Weight) error {
	names := make([]string, 0, len(have))
	for _, h := range have {
		names = append(names, h.Variant)
	}
	var errs []error
	for _, d := range desired {
		if !hasVariant(have, d.Variant) {
			errs = append(errs, fmt.Errorf("weights: variant %q is not in %s (variants %s)", d.Variant, what, strings.Join(names, ", ")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	return nil
}

func hasVariant(ws []Weight, name string) bool {
	for _, w := range ws {
		if w.Variant == name {
			return true
		}
	}
	return false
}

// CurrentWeights reads the production variants' current weights from a
// DescribeEndpoint answer (DesiredWeight when CurrentWeight is not reported yet).
func CurrentWeights(d *sagemaker.DescribeEndpointOutput) []Weight {
	out := make([]Weight, 0, len(d.ProductionVariants))
	for _, v := range d.ProductionVariants {
		w := v.CurrentWeight
		if w == nil {
			w = v.DesiredWeight
		}
		out = append(out, Weight{Variant: aws.ToString(v.VariantName), Weight: decimal(aws.ToFloat32(w))})
	}
	return out
}

// decimal widens a float32 to the float64 with the same shortest decimal form,
// so a weight sent as 0.9 reads back as 0.9, not 0.8999999761581421.
func decimal(f float32) float64 {
	d, err := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	if err != nil {
		return float64(f)
	}
	return d
}

// MoveSplit applies desired weights to the current ones: the variants named
// in desired get their new weight, the others keep theirs (as
// UpdateEndpointWeightsAndCapacities does). Every desired variant must exist,
// and the result must send traffic somewhere.
func MoveSplit(endpoint string, current, desired []Weight) ([]Weight, error) {
	if err := checkVariants("endpoint "+endpoint, current, desired); err != nil {
		return nil, err
	}
	after := make([]Weight, len(current))
	total := 0.0
	for i, c := range current {
		after[i] = c
		for _, d := range desired {
			if d.Variant == c.Variant {
				after[i].Weight = d.Weight
			}
		}
		total += after[i].Weight
	}
	if total <= 0 {
		return nil, fmt.Errorf("deploy: weights of %s: every variant would have weight 0; at least one must receive traffic", endpoint)
	}
	return after, nil
}

// WriteSplit prints each variant's weight and traffic share, before -> after
// when after is given.
func WriteSplit(w io.Writer, before, after []Weight) error {
	var b strings.Builder
	sb, sa := sum(before), sum(after)
	for i, v := range before {
		fmt.Fprintf(&b, "  %-20s weight %-6g %6s", v.Variant, v.Weight, share(v.Weight, sb))
		if after != nil && i < len(after) {
			fmt.Fprintf(&b, "  ->  weight %-6g %6s", after[i].Weight, share(after[i].Weight, sa))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sum(ws []Weight) float64 {
	t := 0.0
	for _, w := range ws {
		t += w.Weight
	}
	return t
}

func share(w, total float64) string {
	if total <= 0 {
		return "-"
	}
	return pct(math.Round(1000*w/total) / 10)
}

// WritePlan prints the split's requests and traffic shares for review.
func (s *Split) WritePlan(w io.Writer) error {
	fmt.Fprintf(w, "== A/B split of %s (verdict deploy apply -spec FILE)\n", s.Endpoint)
	if err := WriteRequests(w, s.Requests()); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ntraffic on %s once the update is InService:\n", s.EndpointConfig)
	if err := WriteSplit(w, s.Weights(), nil); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "move it later with: verdict deploy weights -spec FILE -set %s\n", exampleSet(s.Weights()))
	return err
}

func exampleSet(ws []Weight) string {
	parts := make([]string, 0, len(ws))
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("%s=%g", w.Variant, w.Weight))
	}
	return strings.Join(parts, ",")
}
