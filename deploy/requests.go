package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// SageMakerAPI is what apply, weights and watch need from SageMaker;
// *sagemaker.Client implements it.
type SageMakerAPI interface {
	CreateEndpointConfig(ctx context.Context, in *sagemaker.CreateEndpointConfigInput, optFns ...func(*sagemaker.Options)) (*sagemaker.CreateEndpointConfigOutput, error)
	UpdateEndpoint(ctx context.Context, in *sagemaker.UpdateEndpointInput, optFns ...func(*sagemaker.Options)) (*sagemaker.UpdateEndpointOutput, error)
	UpdateEndpointWeightsAndCapacities(ctx context.Context, in *sagemaker.UpdateEndpointWeightsAndCapacitiesInput, optFns ...func(*sagemaker.Options)) (*sagemaker.UpdateEndpointWeightsAndCapacitiesOutput, error)
	DescribeEndpoint(ctx context.Context, in *sagemaker.DescribeEndpointInput, optFns ...func(*sagemaker.Options)) (*sagemaker.DescribeEndpointOutput, error)
}

// Stage is a rollout stage.
type Stage string

// Stages.
const (
	// StageShadow deploys the candidate as a shadow variant next to production.
	StageShadow Stage = "shadow"
	// StageShift shifts traffic to the candidate with rollback alarms.
	StageShift Stage = "shift"
)

// Requests are the SageMaker calls of one stage, in order.
type Requests struct {
	Stage                Stage
	CreateEndpointConfig *sagemaker.CreateEndpointConfigInput
	UpdateEndpoint       *sagemaker.UpdateEndpointInput
}

// ShadowRequests builds the shadow stage: an endpoint config with the current
// production variant and the candidate as a shadow variant, and the update that
// switches the endpoint to it. The update has no DeploymentConfig (SageMaker's
// default all-at-once blue/green): nobody is served by the shadow, so the
// quality alarms have nothing to roll back.
func (r *Rollout) ShadowRequests() (*Requests, error) {
	if r.Shadow == nil {
		return nil, errors.New("deploy: rollout has no shadow stage")
	}
	cfg := &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(r.Shadow.EndpointConfig),
		ProductionVariants: []types.ProductionVariant{r.productionVariant()},
		ShadowProductionVariants: []types.ProductionVariant{{
			VariantName:          aws.String(r.Shadow.Variant),
			ModelName:            aws.String(r.Candidate.Model),
			InstanceType:         types.ProductionVariantInstanceType(r.Candidate.InstanceType),
			InitialInstanceCount: aws.Int32(int32(r.Candidate.InstanceCount)),
			InitialVariantWeight: aws.Float32(float32(*r.Shadow.SamplingWeight)),
		}},
		DataCaptureConfig: r.dataCapture(),
		Tags:              r.tags(),
	}
	return &Requests{
		Stage:                StageShadow,
		CreateEndpointConfig: cfg,
		UpdateEndpoint: &sagemaker.UpdateEndpointInput{
			EndpointName:       aws.String(r.Endpoint),
			EndpointConfigName: aws.String(r.Shadow.EndpointConfig),
		},
	}, nil
}

// ShiftRequests builds the shift: the candidate's endpoint config (same variant
// name as production, so it is a blue/green or rolling update of that variant)
// and the UpdateEndpoint with the DeploymentConfig — BlueGreenUpdatePolicy with
// the traffic routing, or RollingUpdatePolicy for ROLLING — and the rollback
// alarms.
func (r *Rollout) ShiftRequests() *Requests {
	pv := r.productionVariant()
	pv.ModelName = aws.String(r.Candidate.Model)
	pv.InstanceType = types.ProductionVariantInstanceType(r.Candidate.InstanceType)
	pv.InitialInstanceCount = aws.Int32(int32(r.Candidate.InstanceCount))

	var rollback []types.Alarm
	for _, n := range r.Alarms.Names {
		rollback = append(rollback, types.Alarm{AlarmName: aws.String(n)})
	}
	dc := &types.DeploymentConfig{AutoRollbackConfiguration: &types.AutoRollbackConfig{Alarms: rollback}}
	timeout := aws.Int32(int32(r.Traffic.MaxExecutionTimeout.Seconds()))
	wait := aws.Int32(int32(r.Traffic.WaitInterval.Seconds()))
	if r.Traffic.Type == Rolling {
		dc.RollingUpdatePolicy = &types.RollingUpdatePolicy{
			MaximumBatchSize:                 capacity(r.Traffic.Batch),
			WaitIntervalInSeconds:            wait,
			MaximumExecutionTimeoutInSeconds: timeout,
			RollbackMaximumBatchSize:         capacity(r.Traffic.RollbackBatch),
		}
	} else {
		dc.BlueGreenUpdatePolicy = &types.BlueGreenUpdatePolicy{
			TrafficRoutingConfiguration: &types.TrafficRoutingConfig{
				Type:                  types.TrafficRoutingConfigType(r.Traffic.Type),
				WaitIntervalInSeconds: wait,
				CanarySize:            capacity(r.Traffic.Canary),
				LinearStepSize:        capacity(r.Traffic.Step),
			},
			TerminationWaitInSeconds:         aws.Int32(int32(r.Traffic.TerminationWait.Seconds())),
			MaximumExecutionTimeoutInSeconds: timeout,
		}
	}
	return &Requests{
		Stage: StageShift,
		CreateEndpointConfig: &sagemaker.CreateEndpointConfigInput{
			EndpointConfigName: aws.String(r.Candidate.EndpointConfig),
			ProductionVariants: []types.ProductionVariant{pv},
			DataCaptureConfig:  r.dataCapture(),
			Tags:               r.tags(),
		},
		UpdateEndpoint: &sagemaker.UpdateEndpointInput{
			EndpointName:       aws.String(r.Endpoint),
			EndpointConfigName: aws.String(r.Candidate.EndpointConfig),
			DeploymentConfig:   dc,
		},
	}
}

func (r *Rollout) productionVariant() types.ProductionVariant {
	return types.ProductionVariant{
		VariantName:          aws.String(r.Production.Variant),
		ModelName:            aws.String(r.Production.Model),
		InstanceType:         types.ProductionVariantInstanceType(r.Production.InstanceType),
		InitialInstanceCount: aws.Int32(int32(r.Production.InstanceCount)),
		InitialVariantWeight: aws.Float32(1),
	}
}

func capacity(s *Size) *types.CapacitySize {
	switch {
	case s == nil:
		return nil
	case s.CapacityPercent > 0:
		return &types.CapacitySize{Type: types.CapacitySizeTypeCapacityPercent, Value: aws.Int32(int32(s.CapacityPercent))}
	default:
		return &types.CapacitySize{Type: types.CapacitySizeTypeInstanceCount, Value: aws.Int32(int32(s.InstanceCount))}
	}
}

func (r *Rollout) dataCapture() *types.DataCaptureConfig { return dataCaptureConfig(r.DataCapture) }

func (r *Rollout) tags() []types.Tag { return managedTags(r.Tags) }

// dataCaptureConfig is SageMaker's form of a data capture spec; nil when unset.
func dataCaptureConfig(dc *DataCapture) *types.DataCaptureConfig {
	if dc == nil {
		return nil
	}
	out := &types.DataCaptureConfig{
		EnableCapture:             aws.Bool(true),
		DestinationS3Uri:          aws.String(dc.Destination),
		InitialSamplingPercentage: aws.Int32(int32(*dc.SamplingPercentage)),
		CaptureContentTypeHeader:  &types.CaptureContentTypeHeader{JsonContentTypes: []string{"application/json"}},
	}
	if dc.KMSKeyID != "" {
		out.KmsKeyId = aws.String(dc.KMSKeyID)
	}
	for _, c := range dc.Capture {
		out.CaptureOptions = append(out.CaptureOptions, types.CaptureOption{CaptureMode: types.CaptureMode(c)})
	}
	return out
}

// managedTags marks a resource as verdict's and adds the spec's tags in key order.
func managedTags(m map[string]string) []types.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	tags := []types.Tag{{Key: aws.String("verdict:managed"), Value: aws.String("true")}}
	for _, k := range keys {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return tags
}

// Apply sends a stage's requests: CreateEndpointConfig, then UpdateEndpoint.
func Apply(ctx context.Context, api SageMakerAPI, req *Requests) error {
	if _, err := api.CreateEndpointConfig(ctx, req.CreateEndpointConfig); err != nil {
		return fmt.Errorf("deploy: %s stage: create endpoint config %s: %w", req.Stage, aws.ToString(req.CreateEndpointConfig.EndpointConfigName), err)
	}
	if _, err := api.UpdateEndpoint(ctx, req.UpdateEndpoint); err != nil {
		return fmt.Errorf("deploy: %s stage: update endpoint %s to %s: %w", req.Stage,
			aws.ToString(req.UpdateEndpoint.EndpointName), aws.ToString(req.UpdateEndpoint.EndpointConfigName), err)
	}
	return nil
}

// Weight is a production variant's desired traffic weight.
type Weight struct {
	Variant string
	Weight  float64
}

// ParseWeights parses "v4=0.9,v5=0.1".
func ParseWeights(s string) ([]Weight, error) {
	var out []Weight
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("deploy: weight %q: want variant=weight", part)
		}
		var f float64
		if _, err := fmt.Sscanf(w, "%g", &f); err != nil {
			return nil, fmt.Errorf("deploy: weight of %q: %q is not a number", name, w)
		}
		out = append(out, Weight{Variant: name, Weight: f})
	}
	return out, nil
}

// WeightsRequest builds the UpdateEndpointWeightsAndCapacities request that
// moves a stable A/B split (two or more production variants kept for weeks).
func WeightsRequest(endpoint string, weights []Weight) (*sagemaker.UpdateEndpointWeightsAndCapacitiesInput, error) {
	var errs []error
	if !resourceNameRE.MatchString(endpoint) {
		errs = append(errs, fmt.Errorf("endpoint: %q is not a valid endpoint name", endpoint))
	}
	if len(weights) == 0 {
		errs = append(errs, errors.New("weights: at least one variant is required"))
	}
	if len(weights) > maxSplitVariants {
		errs = append(errs, fmt.Errorf("weights: %d variants; an endpoint has at most %d", len(weights), maxSplitVariants))
	}
	in := &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String(endpoint)}
	seen := map[string]bool{}
	total := 0.0
	for _, w := range weights {
		switch {
		case !resourceNameRE.MatchString(w.Variant):
			errs = append(errs, fmt.Errorf("weights: %q is not a valid variant name", w.Variant))
		case seen[w.Variant]:
			errs = append(errs, fmt.Errorf("weights: variant %q given twice", w.Variant))
		case !validWeight(w.Weight):
			errs = append(errs, fmt.Errorf("weights: %s=%v must be 0 or more (and a finite number)", w.Variant, w.Weight))
		}
		seen[w.Variant] = true
		total += w.Weight
		in.DesiredWeightsAndCapacities = append(in.DesiredWeightsAndCapacities, types.DesiredWeightAndCapacity{
			VariantName: aws.String(w.Variant), DesiredWeight: aws.Float32(float32(w.Weight)),
		})
	}
	if len(weights) > 0 && total == 0 {
		errs = append(errs, errors.New("weights: at least one variant must have a positive weight"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	return in, nil
}

// PromoteShadowRequests builds the shift that promotes the shadow: the
// candidate, which ran as the shadow variant, becomes the production variant
// through the rollout's blue/green shift with rollback alarms. It is the shift
// stage of a rollout that has a shadow stage; the shadow variant disappears with
// the old endpoint config.
func (r *Rollout) PromoteShadowRequests() (*Requests, error) {
	if r.Shadow == nil {
		return nil, errors.New("deploy: promote-shadow: rollout has no shadow stage")
	}
	return r.ShiftRequests(), nil
}
