package cloudwatch

import (
	"errors"
	"fmt"
	"time"

	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// Reference is the reference period the shift signals compare with: the shadow
// stage, when the candidate scored every request next to production. Its snapshot's
// End is where the live range starts.
type Reference interface {
	Reference() (window.Snapshot, error)
}

// ErrReferencePending is what a Reference returns while its period has not ended:
// the shift signals are then left out of the flush without an error.
var ErrReferencePending = errors.New("the reference period has not ended yet")

// Ranges reads a closed stretch of the past from the windows; *window.Windows
// implements it.
type Ranges interface {
	Between(start, end time.Time) (window.Snapshot, error)
}

// StoredReference is the reference period [Since, Until) read back from the windows
// at every flush (VERDICT_REFERENCE_SINCE and VERDICT_REFERENCE_UNTIL): it is the join
// store's tallies, so a restart or another instance reads the same reference. The
// windows must keep buckets back to Since (the longest of VERDICT_WINDOWS).
type StoredReference struct {
	Ranges       Ranges
	Since, Until time.Time
	// Now is the clock the pending check reads; nil means time.Now.
	Now func() time.Time
}

// Reference implements Reference.
func (r StoredReference) Reference() (window.Snapshot, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	if now().Before(r.Until) {
		return window.Snapshot{}, ErrReferencePending
	}
	snap, err := r.Ranges.Between(r.Since, r.Until)
	if err != nil {
		return window.Snapshot{}, fmt.Errorf("reference period %s to %s: %w", r.Since.UTC().Format(time.RFC3339), r.Until.UTC().Format(time.RFC3339), err)
	}
	return snap, nil
}

// FixedReference is a reference period already summed, as a replay computes it from
// the shadow stage it replayed.
type FixedReference window.Snapshot

// Reference implements Reference.
func (f FixedReference) Reference() (window.Snapshot, error) { return window.Snapshot(f), nil }

// Shifts compares each pair's variants in the live range — the publisher's window,
// started no earlier than the reference's end — with the reference: the shift
// signals a flush publishes (cfg's defaults filled in). Nil without cfg.Shift;
// ErrReferencePending (wrapped) while the reference has not ended. Replays use it
// to name the segments behind the published summaries.
func Shifts(cfg Config, snaps Snapshots, ref Reference) ([]judge.Shift, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return shifts(cfg, snaps.Snapshot(cfg.Window), snaps, ref)
}

// shifts is Shifts with live the snapshot of cfg.Window the flush publishes anyway
// (the live range, unless it starts before the reference ends).
func shifts(cfg Config, live window.Snapshot, snaps Snapshots, ref Reference) ([]judge.Shift, error) {
	if cfg.Shift == nil || len(cfg.Pairs) == 0 {
		return nil, nil
	}
	if ref == nil {
		return nil, errors.New("shift signals configured but no Reference")
	}
	rs, err := ref.Reference()
	if err != nil {
		return nil, err
	}
	if live.End.Before(rs.End) {
		// The windows end before the reference does (a replay's clock, or a fixed
		// reference of a shift not yet started): nothing live to compare yet.
		return nil, ErrReferencePending
	}
	if live.Start.Before(rs.End) {
		if live, err = snaps.Period(rs.End); err != nil {
			return nil, fmt.Errorf("live range since the reference ended: %w", err)
		}
	}
	out := make([]judge.Shift, 0, len(cfg.Pairs))
	for _, p := range cfg.Pairs {
		s, err := judge.CompareShift(live, rs, p.Baseline, p.Candidate, *cfg.Shift)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// shift adds one pair's shift signals: per variant and scope (overall and the top
// segments) the live n, the flag-rate ratio and the PSI against the reference; the
// candidate's against the baseline's; and the worst-segment summaries. published
// keeps a variant that is the baseline of several pairs from being sent twice.
func (b *datumBuilder) shift(s judge.Shift, top map[segmentID]bool, published map[tally.Key]bool) []skipped {
	var skips []skipped
	scopes := []judge.ScopeShift{s.Overall}
	for _, ss := range s.Segments {
		if top[segmentID{ss.SegmentKey, ss.Segment}] {
			scopes = append(scopes, ss)
		}
	}
	for _, ss := range scopes {
		for _, v := range []struct {
			id string
			vs judge.VariantShift
		}{{s.Baseline, ss.Baseline}, {s.Candidate, ss.Candidate}} {
			k := tally.Key{Variant: v.id, SegmentKey: ss.SegmentKey, Segment: ss.Segment}
			if published[k] {
				continue
			}
			published[k] = true
			dims, err := b.dimensions(v.id, "", ss.SegmentKey, ss.Segment)
			if err != nil {
				skips = append(skips, skipped{k, err})
				continue
			}
			b.count(cwmetric.ShiftPredictionCount, dims, v.vs.LivePredictions)
			b.ratio(cwmetric.FlagRateShiftRatio, dims, v.vs.FlagRateRatio)
			b.ratio(cwmetric.ScoreShiftPSI, dims, v.vs.PSI)
		}
		dims, err := b.dimensions(s.Candidate, s.Baseline, ss.SegmentKey, ss.Segment)
		if err != nil {
			skips = append(skips, skipped{tally.Key{Variant: s.Candidate, SegmentKey: ss.SegmentKey, Segment: ss.Segment}, err})
			continue
		}
		b.ratio(cwmetric.FlagRateShiftVsBaseline, dims, ss.FlagRateVsBaseline)
		b.ratio(cwmetric.ScoreShiftPSIVsBaseline, dims, ss.PSIVsBaseline)
		if ss.Scope.Overall() {
			b.ratio(cwmetric.SegmentFlagRateShift, dims, s.SegmentFlagRateShift)
			b.ratio(cwmetric.SegmentScoreShiftPSI, dims, s.SegmentPSIVsBaseline)
		}
	}
	return skips
}
