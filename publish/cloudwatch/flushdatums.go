package cloudwatch

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// FlushDatums returns the datums one Flush would publish from snaps, stamped with at:
// the same metrics, values and dimensions, cfg's defaults filled in, series that
// CloudWatch would reject left out. Rehearsals and backtests feed them to the local
// alarm evaluator instead of CloudWatch, so the alarms read exactly what they would
// read in production. ref is needed when cfg has Shift; while ref's period has not
// ended the shift signals are left out.
func FlushDatums(cfg Config, snaps Snapshots, ref Reference, at time.Time) ([]types.MetricDatum, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	snap := snaps.Snapshot(cfg.Window)
	regs, err := regressions(cfg, snaps)
	if err != nil {
		return nil, fmt.Errorf("cloudwatch: flush datums: %w", err)
	}
	sh, err := shifts(cfg, snap, snaps, ref)
	if err != nil && !errors.Is(err, ErrReferencePending) {
		return nil, fmt.Errorf("cloudwatch: flush datums: shift signals: %w", err)
	}
	datums, _ := build(cfg, snap, regs, sh, at.Truncate(time.Millisecond))
	return datums, nil
}
