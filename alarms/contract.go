// Package alarms turns a reviewed alarm spec into the CloudWatch metric alarms
// that a SageMaker endpoint's AutoRollbackConfiguration watches during a traffic
// shift, shows and applies the difference against what exists, exports the
// alarms as CloudFormation or JSON, and evaluates them locally with CloudWatch's
// alarm semantics over verdict's own metric history.
//
// alarms consumes verdict's published metric names (the contract below, also
// written down in docs/alarms.md), never the window package's structs.
package alarms

// The metric contract: what verdict publishes to CloudWatch and what the alarms
// built here read. The publisher implements the same names; changing one side
// means changing docs/alarms.md and both packages.
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
	MetricPrecision           = "Precision"
	MetricRecall              = "Recall"
	MetricF1                  = "F1"
	MetricPrecisionLowerBound = "PrecisionLowerBound"
	MetricRecallLowerBound    = "RecallLowerBound"
	MetricTruePositives       = "TruePositives"
	MetricFalsePositives      = "FalsePositives"
	MetricFalseNegatives      = "FalseNegatives"
	MetricTrueNegatives       = "TrueNegatives"
	MetricResolvedCount       = "ResolvedCount"
	// MetricLabeledPositives is TP+FN: the n behind recall.
	MetricLabeledPositives = "LabeledPositives"
	// MetricPredictedPositives is TP+FP: the n behind precision.
	MetricPredictedPositives = "PredictedPositives"
	MetricPredictionCount    = "PredictionCount"
	MetricFlagRate           = "FlagRate"
	MetricLabelCoverage      = "LabelCoverage"

	// Against the baseline variant (extra dimension BaselineVariant).
	MetricPrecisionDelta          = "PrecisionDelta"
	MetricRecallDelta             = "RecallDelta"
	MetricSegmentRegressions      = "SegmentRegressions"
	MetricWorstSegmentRecallDelta = "WorstSegmentRecallDelta"

	// The traffic shift against the reference period (the shadow stage), label-free,
	// published when a reference is configured. Per variant of every baseline pair
	// (dimensions EndpointName, VariantName, and SegmentKey/Segment for top
	// segments), over the live range — the window since the reference ended:
	// MetricShiftPredictionCount is the n behind the others; MetricFlagRateShiftRatio
	// is the live flag rate / the reference flag rate; MetricScoreShiftPSI is the PSI
	// of the live scores against the reference scores.
	MetricShiftPredictionCount = "ShiftPredictionCount"
	MetricFlagRateShiftRatio   = "FlagRateShiftRatio"
	MetricScoreShiftPSI        = "ScoreShiftPSI"
	// Against the baseline (dimension BaselineVariant), overall and per top segment:
	// the candidate's FlagRateShiftRatio / the baseline's (a ratio of ratios: 1 when
	// the candidate moved with the traffic mix like the baseline) and its
	// ScoreShiftPSI − the baseline's.
	MetricFlagRateShiftVsBaseline = "FlagRateShiftVsBaseline"
	MetricScoreShiftPSIVsBaseline = "ScoreShiftPSIVsBaseline"
	// Over every segment with enough predictions (dimension BaselineVariant, no
	// segment dimensions): the largest flag-rate fold change shown in a segment
	// (at least 1; 1 when none is shown to move) and the largest
	// ScoreShiftPSIVsBaseline.
	MetricSegmentFlagRateShift = "SegmentFlagRateShift"
	MetricSegmentScoreShiftPSI = "SegmentScoreShiftPSI"

	// SageMaker's native endpoint metrics.
	MetricModelLatency        = "ModelLatency" // microseconds
	MetricInvocation5XXErrors = "Invocation5XXErrors"
	MetricInvocations         = "Invocations"
)

// Tags verdict puts on every alarm it manages. apply touches only alarms that
// carry TagManaged=true and TagAlarmSet=<the spec's name>.
const (
	TagManaged  = "verdict:managed"
	TagAlarmSet = "verdict:alarm-set"
)
