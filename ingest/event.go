// Package ingest turns raw input (verdict JSON, SageMaker Data Capture JSONL) into
// validated prediction and label events, and says precisely why a line was rejected.
//
// Sources (HTTP, file replay, Kinesis) live in sub-packages; they decode with this
// package and hand valid events to a Sink, which the join store implements.
package ingest

import (
	"context"
	"time"
)

// Role is how a variant takes part in a rollout.
type Role string

// Roles a prediction may carry.
const (
	RoleProduction Role = "production"
	RoleShadow     Role = "shadow"
)

// Prediction is one model's output for one inference. Several variants may predict for
// the same InferenceID (production and shadow see the same request); they are joined
// with the same label.
type Prediction struct {
	InferenceID string
	Variant     string
	Role        Role
	// Score is the model's probability of the positive class, in [0, 1].
	Score float64
	// Threshold is resolved at decode time: the event's own, else the variant's
	// configured one, else the default. Predicted positive means Score >= Threshold.
	Threshold float64
	// Time is when the prediction was made; windows bucket by it.
	Time time.Time
	// Attributes are the request's string attributes; configured keys become segments.
	Attributes map[string]string
	// LatencyMS is informational (SageMaker's ModelLatency is the source for alarms).
	LatencyMS float64
	// Error is set when the inference failed; such predictions are counted as errors
	// and never joined.
	Error string
}

// Flagged reports whether the prediction is a predicted positive.
func (p Prediction) Flagged() bool { return p.Score >= p.Threshold }

// Label is the ground truth for an inference, known later. A later label for the same
// InferenceID is a correction: the latest Time wins, ties go to the one received last.
type Label struct {
	InferenceID string
	// Positive means the inference was fraud (the positive class).
	Positive bool
	// Time is when the label became known.
	Time time.Time
	// Source says where the label came from (dispute, analyst review); informational.
	Source string
}

// Batch is a group of valid events applied to the join store together, atomically.
type Batch struct {
	Predictions []Prediction
	Labels      []Label
}

// Len is the number of events in the batch.
func (b Batch) Len() int { return len(b.Predictions) + len(b.Labels) }

// Result says what applying a batch did.
type Result struct {
	// Applied is the number of events that changed state (new predictions, new or
	// correcting labels).
	Applied int
	// Duplicates is the number of events that changed nothing: the same prediction for
	// the same inference id and variant, a label no newer than the one held.
	Duplicates int
}

// Sink receives valid events. Apply returns only after the batch is durably
// committed, so a source may advance its checkpoint when Apply returns nil.
type Sink interface {
	Apply(ctx context.Context, b Batch) (Result, error)
}
