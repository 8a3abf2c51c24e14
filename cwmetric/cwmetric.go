// Package cwmetric is the metric contract between verdict's CloudWatch publisher
// (publish/cloudwatch) and the rollback alarms built on what it publishes (alarms):
// the namespace, metric names and dimensions, defined once. docs/alarms.md writes the
// same contract down for people; changing a name here changes what existing alarms
// and dashboards read.
package cwmetric

import (
	"errors"
	"fmt"
	"strings"
)

const (
	// DefaultNamespace is the CloudWatch namespace verdict publishes into unless
	// configured otherwise.
	DefaultNamespace = "Verdict"
	// SageMakerNamespace holds SageMaker's own endpoint metrics.
	SageMakerNamespace = "AWS/SageMaker"

	// Dimensions on every verdict metric.
	DimEndpointName = "EndpointName"
	DimVariantName  = "VariantName"
	// DimBaselineVariant is added on metrics computed against the baseline.
	DimBaselineVariant = "BaselineVariant"
	// DimSegmentKey and DimSegment are added on per-segment metrics (configured
	// top segments only).
	DimSegmentKey = "SegmentKey"
	DimSegment    = "Segment"
	// DimEndpointConfigName is added by SageMaker to its own metrics for the new
	// fleet during a blue/green deployment.
	DimEndpointConfigName = "EndpointConfigName"

	// Per-variant quality metrics, computed over the sliding window.
	Precision           = "Precision"
	Recall              = "Recall"
	F1                  = "F1"
	PrecisionLowerBound = "PrecisionLowerBound"
	RecallLowerBound    = "RecallLowerBound"
	TruePositives       = "TruePositives"
	FalsePositives      = "FalsePositives"
	FalseNegatives      = "FalseNegatives"
	TrueNegatives       = "TrueNegatives"
	ResolvedCount       = "ResolvedCount"
	// LabeledPositives is TP+FN: the n behind recall.
	LabeledPositives = "LabeledPositives"
	// PredictedPositives is TP+FP: the n behind precision.
	PredictedPositives = "PredictedPositives"
	PredictionCount    = "PredictionCount"
	FlagRate           = "FlagRate"
	LabelCoverage      = "LabelCoverage"

	// Against the baseline variant (extra dimension BaselineVariant).
	PrecisionDelta          = "PrecisionDelta"
	RecallDelta             = "RecallDelta"
	SegmentRegressions      = "SegmentRegressions"
	WorstSegmentRecallDelta = "WorstSegmentRecallDelta"

	// The traffic shift against the reference period (the shadow stage), label-free,
	// published when a reference is configured. Per variant of every baseline pair
	// (dimensions EndpointName, VariantName, and SegmentKey/Segment for top
	// segments), over the live range — the window since the reference ended:
	// ShiftPredictionCount is the n behind the others; FlagRateShiftRatio
	// is the live flag rate / the reference flag rate; ScoreShiftPSI is the PSI
	// of the live scores against the reference scores.
	ShiftPredictionCount = "ShiftPredictionCount"
	FlagRateShiftRatio   = "FlagRateShiftRatio"
	ScoreShiftPSI        = "ScoreShiftPSI"
	// Against the baseline (dimension BaselineVariant), overall and per top segment:
	// the candidate's FlagRateShiftRatio / the baseline's (a ratio of ratios: 1 when
	// the candidate moved with the traffic mix like the baseline) and its
	// ScoreShiftPSI − the baseline's.
	FlagRateShiftVsBaseline = "FlagRateShiftVsBaseline"
	ScoreShiftPSIVsBaseline = "ScoreShiftPSIVsBaseline"
	// Over every segment with enough predictions (dimension BaselineVariant, no
	// segment dimensions): the largest flag-rate fold change shown in a segment
	// (at least 1; 1 when none is shown to move) and the largest
	// ScoreShiftPSIVsBaseline.
	SegmentFlagRateShift = "SegmentFlagRateShift"
	SegmentScoreShiftPSI = "SegmentScoreShiftPSI"

	// SageMaker's native endpoint metrics.
	ModelLatency        = "ModelLatency" // microseconds
	Invocation5XXErrors = "Invocation5XXErrors"
	Invocations         = "Invocations"
)

// CheckNamespace applies CloudWatch's rules for a custom metric namespace
// (PutMetricData; the service model's Namespace shape): 1 to 255 characters, ASCII
// without control characters, at least one not a space, not starting with ':' (the
// pattern [^:].*), and not starting with "AWS/", which is reserved for AWS services'
// namespaces.
func CheckNamespace(ns string) error {
	const maxNamespaceLength = 255
	switch {
	case ns == "" || strings.TrimSpace(ns) == "":
		return errors.New("is empty or blank")
	case len(ns) > maxNamespaceLength:
		return fmt.Errorf("is %d characters, at most %d", len(ns), maxNamespaceLength)
	case strings.HasPrefix(ns, ":"):
		return fmt.Errorf("%q starts with ':'", ns)
	case strings.HasPrefix(ns, "AWS/"):
		return fmt.Errorf("%q starts with AWS/, which is reserved for AWS services' namespaces", ns)
	}
	for i := 0; i < len(ns); i++ {
		if b := ns[i]; b < 0x20 || b >= 0x7f {
			return fmt.Errorf("%q holds a character that is not printable ASCII", ns)
		}
	}
	return nil
}
