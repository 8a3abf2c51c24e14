package cloudwatch

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/verdictml/verdict/judge"
)

// FlushDatums returns the datums one Flush would publish from snaps, stamped with at:
// the same metrics, values and dimensions, cfg's defaults filled in, series that
// CloudWatch would reject left out. Rehearsals and backtests feed them to the local
// alarm evaluator instead of CloudWatch, so the alarms read exactly what they would
// read in production. j is needed when cfg has Pairs, ref when cfg has Shift; while
// ref's period has not ended the shift signals are left out.
func FlushDatums(cfg Config, snaps Snapshots, j Judge, ref Reference, at time.Time) ([]types.MetricDatum, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	snap := snaps.Snapshot(cfg.Window)
	var regs []judge.SegmentRegression
	if len(cfg.Pairs) > 0 {
		if j == nil {
			return nil, errors.New("cloudwatch: flush datums: Pairs configured but no Judge")
		}
		pairs := make([]judge.Pair, 0, len(cfg.Pairs))
		for _, p := range cfg.Pairs {
			pairs = append(pairs, judge.Pair{Baseline: p.Baseline, Candidate: p.Candidate})
		}
		r, err := j.Regressions(snaps, pairs)
		if err != nil {
			return nil, fmt.Errorf("cloudwatch: flush datums: judge baseline pairs over %s: %w", cfg.Window, err)
		}
		regs = r
	}
	sh, err := shifts(cfg, snaps, ref)
	if err != nil && !errors.Is(err, ErrReferencePending) {
		return nil, fmt.Errorf("cloudwatch: flush datums: shift signals: %w", err)
	}
	datums, _ := build(cfg, snap, regs, sh, at.Truncate(time.Millisecond))
	return datums, nil
}
