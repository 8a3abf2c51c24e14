package rehearsal

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Files of a recording directory, as `verdict dataset` writes it.
const (
	PredictionsFile = "predictions.ndjson"
	LabelsFile      = "labels.ndjson"
	MetadataFile    = "recording.json"
)

// Metadata describes how a recording was made: where its shadow stage ends and
// the shift starts, which variants are the baseline and the candidate, whether
// (and from when) the candidate regresses, and how its labels arrive. `verdict
// dataset` writes it next to the event files; rehearse and backtest take their
// defaults from it.
type Metadata struct {
	// Generator is the command that wrote the recording (with its flags).
	Generator string `json:"generator"`
	// Start is the first prediction's time, End the last one's (traffic stops
	// after it; labels keep arriving).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// ShiftStart is where the shadow stage [Start, ShiftStart) ends and a
	// rollout's traffic shift starts. The events stay shadow data throughout
	// (both variants score every request), so a rehearsal can simulate any split.
	ShiftStart time.Time `json:"shift_start"`
	Baseline   string    `json:"baseline"`
	Candidate  string    `json:"candidate"`
	// SegmentKeys are the prediction attributes the recording's segments live in
	// (rehearse and backtest count them unless told otherwise).
	SegmentKeys []string `json:"segment_keys,omitempty"`
	// Regression is how the candidate is worse; nil for a recording without one.
	Regression *Regression `json:"regression,omitempty"`
	// LabelProcess says in words how labels arrive (delays, shares, declines).
	LabelProcess string `json:"label_process"`
	// LastLabel is when the last label becomes known.
	LastLabel time.Time `json:"last_label"`
}

// Regression is a candidate's regression in a recording.
type Regression struct {
	// SegmentKey and Segment name where the candidate is worse, e.g.
	// merchant_category=electronics.
	SegmentKey string    `json:"segment_key"`
	Segment    string    `json:"segment"`
	Start      time.Time `json:"start"`
	What       string    `json:"what"`
}

// WriteMetadata writes m as dir/recording.json.
func WriteMetadata(dir string, m Metadata) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("rehearsal: encode recording metadata: %w", err)
	}
	path := filepath.Join(dir, MetadataFile)
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("rehearsal: write recording metadata: %w", err)
	}
	return nil
}

// ReadMetadata reads a recording.json.
func ReadMetadata(path string) (Metadata, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Metadata{}, fmt.Errorf("rehearsal: read recording metadata: %w", err)
	}
	var m Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return Metadata{}, fmt.Errorf("rehearsal: recording metadata %s: %w", path, err)
	}
	if m.ShiftStart.IsZero() {
		return Metadata{}, fmt.Errorf("rehearsal: recording metadata %s: no shift_start", path)
	}
	return m, nil
}
