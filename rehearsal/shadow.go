package rehearsal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/window"
)

// ShadowStage is the part of a recording before the traffic shift, when the
// candidate ran as a shadow: both variants scored every request.
type ShadowStage struct {
	// Start and End bound the stage: predictions made in [Start, End] and the labels
	// known by End (End is where the shift starts).
	Start, End time.Time
	// Join is the join's configuration; Longest its longest window; Rule decides
	// when statistics are estimable.
	Join    labels.Config
	Longest time.Duration
	Rule    window.Rule
	// Dir holds the temporary join store (default: the system's temporary directory).
	Dir string
}

// ShadowSnapshots are what a shadow stage shows at its end.
type ShadowSnapshots struct {
	// Period is the comparison period from the stage's start, as verdict's judge
	// reads it at the end of the stage (GET /v1/judge?since=<start>): what the shadow
	// gate judges.
	Period window.Snapshot
	// Reference is the stage's whole buckets (window.Windows.Between): the reference
	// period of the shift signals, as VERDICT_REFERENCE_SINCE/UNTIL read it.
	Reference window.Snapshot
}

// Run replays the stage into a fresh join (every prediction of both variants: no
// traffic split) and returns its snapshots at End.
func (s ShadowStage) Run(ctx context.Context, rec *Recording) (ShadowSnapshots, error) {
	if !s.End.After(s.Start) {
		return ShadowSnapshots{}, fmt.Errorf("rehearsal: shadow stage from %s to %s is empty: the shift must start after the first recorded prediction",
			s.Start.Format(time.RFC3339), s.End.Format(time.RFC3339))
	}
	bucket := bucketWidth(s.Join)
	// The windows keep every bucket of the stage, however long it was.
	longest := max(s.Longest, s.End.Sub(s.Start)+2*bucket)
	var out ShadowSnapshots
	cfg := ReplayConfig{Join: s.Join, Longest: longest, Rule: s.Rule, From: s.End, To: s.End, Step: bucket, Dir: s.Dir}
	err := Replay(ctx, rec.Between(s.Start, s.End), cfg, func(_ context.Context, t Tick) (time.Time, error) {
		var err error
		if out.Period, err = t.Windows.Period(s.Start); err != nil {
			return time.Time{}, fmt.Errorf("rehearsal: shadow stage's comparison period: %w", err)
		}
		if out.Reference, err = t.Windows.Between(s.Start, s.End); err != nil {
			return time.Time{}, fmt.Errorf("rehearsal: shadow stage's reference period: %w", err)
		}
		return time.Time{}, ErrStop
	})
	if err != nil {
		return ShadowSnapshots{}, err
	}
	if out.Period.End.IsZero() {
		return ShadowSnapshots{}, errors.New("rehearsal: the shadow stage was not replayed")
	}
	return out, nil
}
