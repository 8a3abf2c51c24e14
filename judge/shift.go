package judge

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// Label-free signals inside a traffic shift.
//
// During a SageMaker traffic shift almost no labels exist, and the two models no
// longer score the same requests: each serves its own share, chosen at random. What
// can still be compared is how each variant behaves now (the live range) against how
// it behaved on the reference period — the shadow stage, when both scored every
// request. A variant's flag rate and score distribution move with the traffic mix
// (time of day, season), so the candidate's movement is compared with the baseline's
// over the same live range: the traffic split is random, so both see the same mix, and
// a difference of the two movements is the candidate's own.
//
//   - Flag rate: FlagRateRatio = live flag rate / reference flag rate of one variant;
//     FlagRateVsBaseline = the candidate's ratio / the baseline's (a ratio of ratios:
//     1 when the candidate moved like the baseline), from continuity-corrected
//     rates so that it exists whenever all four have predictions.
//   - Score distribution: PSI of a variant's live score histogram against its
//     reference histogram; PSIVsBaseline = the candidate's PSI − the baseline's.

// DefaultShiftMinPredictions and DefaultShiftAlpha are ShiftConfig's defaults.
const (
	DefaultShiftMinPredictions = 1000
	DefaultShiftAlpha          = 0.001
)

// ShiftConfig holds the thresholds of the shift signals.
type ShiftConfig struct {
	// MinPredictions is the fewest predictions each variant needs in a segment, in
	// the live range and in the reference, for the segment to enter the worst-segment
	// summaries. Default 1000.
	MinPredictions int64
	// Alpha is the chance, at one look at a candidate that moved like the baseline,
	// that some segment's flag-rate shift is shown at all: each of the S eligible
	// segments is bounded at the two-sided level Alpha/S. Default 0.001.
	Alpha float64
}

func (c ShiftConfig) withDefaults() ShiftConfig {
	if c.MinPredictions == 0 {
		c.MinPredictions = DefaultShiftMinPredictions
	}
	if c.Alpha == 0 {
		c.Alpha = DefaultShiftAlpha
	}
	return c
}

// Validate names the setting that is out of range.
func (c ShiftConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.MinPredictions < 1 {
		errs = append(errs, fmt.Errorf("shift config: MinPredictions: %d must be at least 1", c.MinPredictions))
	}
	if !(c.Alpha > 0 && c.Alpha < 1) {
		errs = append(errs, fmt.Errorf("shift config: Alpha: %g must be in (0, 1)", c.Alpha))
	}
	return errors.Join(errs...)
}

// VariantShift is one variant in one scope: its live range against its reference.
type VariantShift struct {
	LivePredictions      int64 `json:"live_predictions"`
	ReferencePredictions int64 `json:"reference_predictions"`
	// LiveFlagRate and ReferenceFlagRate are flagged / predictions; nil without
	// predictions.
	LiveFlagRate      *float64 `json:"live_flag_rate"`
	ReferenceFlagRate *float64 `json:"reference_flag_rate"`
	// FlagRateRatio is LiveFlagRate / ReferenceFlagRate; nil when either is
	// undefined or the reference flagged nothing.
	FlagRateRatio *float64 `json:"flag_rate_ratio"`
	// PSI is the live score histogram against the reference one; nil when either
	// is empty.
	PSI *float64 `json:"psi"`

	live, ref tally.Counts
}

// ScopeShift compares the candidate's movement with the baseline's in one scope.
type ScopeShift struct {
	Scope
	Baseline  VariantShift `json:"baseline"`
	Candidate VariantShift `json:"candidate"`
	// FlagRateVsBaseline is the candidate's flag-rate ratio over the baseline's,
	// each rate continuity-corrected as (flagged + ½)/(predictions + 1): below 1 the
	// candidate flags less than the baseline's movement predicts. The correction
	// keeps it defined and positive whenever both variants have predictions on both
	// sides (a candidate that flags nothing gives a small ratio, not a division by
	// zero) and moves it little once each side has a few dozen flags. Nil when a
	// variant has no predictions in the live range or the reference.
	FlagRateVsBaseline *float64 `json:"flag_rate_vs_baseline"`
	// FlagRateShift is the fold change of FlagRateVsBaseline shown at this scope's
	// level (1 when not shown to differ from 1), always at least 1: exp(max(0,
	// |ln r| − z·se)) with continuity-corrected counts. Overall at level Alpha, in a
	// segment at Alpha over the eligible segments; nil for a segment that is not
	// eligible or a scope where a variant has no predictions.
	FlagRateShift *float64 `json:"flag_rate_shift"`
	// PSIVsBaseline is Candidate.PSI − Baseline.PSI.
	PSIVsBaseline *float64 `json:"psi_vs_baseline"`
	// Eligible: both variants have MinPredictions in the live range and in the
	// reference.
	Eligible bool `json:"eligible"`
}

// Shift is the candidate's movement against the baseline's since the reference
// period, overall and per segment.
type Shift struct {
	Baseline  string       `json:"baseline"`
	Candidate string       `json:"candidate"`
	Overall   ScopeShift   `json:"overall"`
	Segments  []ScopeShift `json:"segments"`
	// SegmentFlagRateShift is the largest FlagRateShift among eligible segments
	// (1 when none is shown to move), SegmentFlagRateScope where; nil when no segment
	// is eligible.
	SegmentFlagRateShift *float64 `json:"segment_flag_rate_shift"`
	SegmentFlagRateScope *Scope   `json:"segment_flag_rate_scope,omitempty"`
	// SegmentPSIVsBaseline is the largest PSIVsBaseline among eligible segments,
	// SegmentPSIScope where; nil when no segment is eligible.
	SegmentPSIVsBaseline *float64 `json:"segment_psi_vs_baseline"`
	SegmentPSIScope      *Scope   `json:"segment_psi_scope,omitempty"`
}

// CompareShift compares how candidate and baseline moved between reference (the
// shadow stage) and live (the traffic shift so far), overall and in every segment
// either snapshot holds.
func CompareShift(live, reference window.Snapshot, baseline, candidate string, cfg ShiftConfig) (Shift, error) {
	if err := cfg.Validate(); err != nil {
		return Shift{}, err
	}
	cfg = cfg.withDefaults()
	switch {
	case baseline == "" || candidate == "":
		return Shift{}, errors.New("judge: shift: baseline and candidate are both required")
	case baseline == candidate:
		return Shift{}, fmt.Errorf("judge: shift: baseline and candidate are both %q", baseline)
	}
	type sides struct{ live, ref scopeCounts }
	scopes := map[Scope]*sides{{}: {}}
	sumByScope(scopes, live, baseline, candidate, func(s *sides) *scopeCounts { return &s.live })
	sumByScope(scopes, reference, baseline, candidate, func(s *sides) *scopeCounts { return &s.ref })

	s := Shift{Baseline: baseline, Candidate: candidate, Segments: []ScopeShift{}}
	var segs []*ScopeShift
	for sc, c := range scopes {
		ss := newScopeShift(sc, c.live.base, c.ref.base, c.live.cand, c.ref.cand, cfg.MinPredictions)
		if sc.Overall() {
			s.Overall = ss
			continue
		}
		segs = append(segs, &ss)
	}
	slices.SortFunc(segs, func(a, b *ScopeShift) int { return a.Scope.compare(b.Scope) })
	eligible := 0
	for _, ss := range segs {
		if ss.Eligible {
			eligible++
		}
	}
	s.Overall.FlagRateShift = shownFold(s.Overall, normalQuantile(cfg.Alpha/2))
	if eligible > 0 {
		z := normalQuantile(cfg.Alpha / (2 * float64(eligible)))
		for _, ss := range segs {
			if !ss.Eligible {
				continue
			}
			ss.FlagRateShift = shownFold(*ss, z)
			if f := ss.FlagRateShift; f != nil && (s.SegmentFlagRateShift == nil || *f > *s.SegmentFlagRateShift) {
				s.SegmentFlagRateShift, s.SegmentFlagRateScope = ptr(*f), &ss.Scope
			}
			if p := ss.PSIVsBaseline; p != nil && (s.SegmentPSIVsBaseline == nil || *p > *s.SegmentPSIVsBaseline) {
				s.SegmentPSIVsBaseline, s.SegmentPSIScope = ptr(*p), &ss.Scope
			}
		}
	}
	for _, ss := range segs {
		s.Segments = append(s.Segments, *ss)
	}
	return s, nil
}

func newVariantShift(live, ref tally.Counts) VariantShift {
	v := VariantShift{LivePredictions: live.Predictions, ReferencePredictions: ref.Predictions, live: live, ref: ref}
	v.LiveFlagRate = proportion(live.Flagged, live.Predictions).Value
	v.ReferenceFlagRate = proportion(ref.Flagged, ref.Predictions).Value
	if v.LiveFlagRate != nil && v.ReferenceFlagRate != nil && *v.ReferenceFlagRate > 0 {
		v.FlagRateRatio = ptr(*v.LiveFlagRate / *v.ReferenceFlagRate)
	}
	if psi, ok := PSI(ref.Bins, live.Bins); ok {
		v.PSI = ptr(psi)
	}
	return v
}

func newScopeShift(sc Scope, bl, br, cl, cr tally.Counts, minPred int64) ScopeShift {
	ss := ScopeShift{Scope: sc, Baseline: newVariantShift(bl, br), Candidate: newVariantShift(cl, cr)}
	if logR, _, ok := flagRateLogRatio(ss); ok {
		ss.FlagRateVsBaseline = ptr(math.Exp(logR))
	}
	if b, c := ss.Baseline.PSI, ss.Candidate.PSI; b != nil && c != nil {
		ss.PSIVsBaseline = ptr(*c - *b)
	}
	ss.Eligible = min(bl.Predictions, br.Predictions, cl.Predictions, cr.Predictions) >= minPred
	return ss
}

// shownFold is the fold change of the candidate's flag-rate movement against the
// baseline's that the counts show at normal quantile z: exp(max(0, |ln r| − z·se))
// for r = (c_live/c_ref) / (b_live/b_ref). Each rate is continuity-corrected,
// (flagged + ½)/(n + 1), so a variant that flags nothing still has a finite log, and
// se is the delta method's sqrt(Σ 1/(x + ½) − 1/(n + 1)) over the four rates, as if
// independent (the reference's two rates are paired and positively correlated, so
// this overstates the noise: conservative). Nil when a variant has no predictions in
// the live range or the reference.
func shownFold(ss ScopeShift, z float64) *float64 {
	logR, v, ok := flagRateLogRatio(ss)
	if !ok {
		return nil
	}
	return ptr(math.Exp(math.Max(0, math.Abs(logR)-z*math.Sqrt(v))))
}

// flagRateLogRatio is ln r of the continuity-corrected ratio of ratios and its
// delta-method variance; false when a variant has no predictions on a side.
func flagRateLogRatio(ss ScopeShift) (logR, variance float64, ok bool) {
	cs := []tally.Counts{ss.Candidate.live, ss.Candidate.ref, ss.Baseline.live, ss.Baseline.ref}
	sign := []float64{1, -1, -1, 1}
	for i, c := range cs {
		if c.Predictions <= 0 || c.Flagged < 0 || c.Flagged > c.Predictions {
			return 0, 0, false
		}
		x, n := float64(c.Flagged)+0.5, float64(c.Predictions)+1
		logR += sign[i] * math.Log(x/n)
		variance += 1/x - 1/n
	}
	return logR, variance, true
}

// normalQuantile is Φ⁻¹(1 − q): the z with an upper tail of q.
func normalQuantile(q float64) float64 { return math.Sqrt2 * math.Erfinv(1-2*q) }
