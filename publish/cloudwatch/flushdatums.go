package cloudwatch

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/window"
)

// FlushDatums returns the datums one Flush would publish for snap, stamped with at:
// the same metrics, values and dimensions, cfg's defaults filled in, series that
// CloudWatch would reject left out. Rehearsals and backtests feed them to the local
// alarm evaluator instead of CloudWatch, so the alarms read exactly what they would
// read in production. j is needed when cfg has Pairs.
func FlushDatums(cfg Config, snap window.Snapshot, j Judge, at time.Time) ([]types.MetricDatum, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var regs []judge.SegmentRegression
	if len(cfg.Pairs) > 0 {
		if j == nil {
			return nil, errors.New("cloudwatch: flush datums: Pairs configured but no Judge")
		}
		pairs := make([]judge.Pair, 0, len(cfg.Pairs))
		for _, p := range cfg.Pairs {
			pairs = append(pairs, judge.Pair{Baseline: p.Baseline, Candidate: p.Candidate, Window: cfg.Window})
		}
		r, err := j.Regressions(snap, pairs)
		if err != nil {
			return nil, fmt.Errorf("cloudwatch: flush datums: judge baseline pairs over %s: %w", cfg.Window, err)
		}
		regs = r
	}
	datums, _ := build(cfg, snap, regs, at.Truncate(time.Millisecond))
	return datums, nil
}
