package loadtest

import (
	"math"
	"sort"
	"sync"
)

// AllSegments names the row of every compared payload.
const AllSegments = "(all)"

// Divergence compares the candidate's scores with production's recorded scores on
// identical payloads (each payload once, its first successful response).
type Divergence struct {
	Threshold float64             `json:"threshold"`
	Segments  []SegmentDivergence `json:"segments"`
}

// SegmentDivergence is one segment's comparison; Segment AllSegments is every pair.
type SegmentDivergence struct {
	Segment string `json:"segment"`
	Pairs   int    `json:"pairs"`
	// Unscored counts successful responses the candidate score could not be read from.
	Unscored int `json:"unscored"`
	// MeanAbsDiff and MaxAbsDiff are |candidate - production|; MeanDiff keeps the
	// sign (positive: the candidate scores higher).
	MeanAbsDiff float64 `json:"mean_abs_diff"`
	MaxAbsDiff  float64 `json:"max_abs_diff"`
	MeanDiff    float64 `json:"mean_diff"`
	// FlagDisagreement is the share of pairs flagged by exactly one model.
	FlagDisagreement   float64 `json:"flag_disagreement"`
	ProductionFlagRate float64 `json:"production_flag_rate"`
	CandidateFlagRate  float64 `json:"candidate_flag_rate"`
}

type pairSums struct {
	n, unscored                  int
	sumAbs, maxAbs, sumDiff      float64
	disagree, prodFlag, candFlag int
}

type divergence struct {
	threshold float64
	mu        sync.Mutex
	bySeg     map[string]*pairSums
}

func newDivergence(threshold float64) *divergence {
	return &divergence{threshold: threshold, bySeg: map[string]*pairSums{}}
}

func (d *divergence) add(segment string, production, candidate float64, scoreErr error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rows := []string{AllSegments}
	if segment != "" {
		rows = append(rows, segment)
	}
	for _, seg := range rows {
		s := d.bySeg[seg]
		if s == nil {
			s = &pairSums{}
			d.bySeg[seg] = s
		}
		if scoreErr != nil {
			s.unscored++
			continue
		}
		diff := candidate - production
		s.n++
		s.sumAbs += math.Abs(diff)
		s.maxAbs = math.Max(s.maxAbs, math.Abs(diff))
		s.sumDiff += diff
		pf, cf := production >= d.threshold, candidate >= d.threshold
		if pf != cf {
			s.disagree++
		}
		if pf {
			s.prodFlag++
		}
		if cf {
			s.candFlag++
		}
	}
}

func (d *divergence) result() *Divergence {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := &Divergence{Threshold: d.threshold}
	for seg, s := range d.bySeg {
		row := SegmentDivergence{Segment: seg, Pairs: s.n, Unscored: s.unscored, MaxAbsDiff: s.maxAbs}
		if s.n > 0 {
			n := float64(s.n)
			row.MeanAbsDiff, row.MeanDiff = s.sumAbs/n, s.sumDiff/n
			row.FlagDisagreement = float64(s.disagree) / n
			row.ProductionFlagRate, row.CandidateFlagRate = float64(s.prodFlag)/n, float64(s.candFlag)/n
		}
		out.Segments = append(out.Segments, row)
	}
	sort.Slice(out.Segments, func(i, j int) bool {
		a, b := out.Segments[i], out.Segments[j]
		if (a.Segment == AllSegments) != (b.Segment == AllSegments) {
			return a.Segment == AllSegments
		}
		if a.MeanAbsDiff != b.MeanAbsDiff {
			return a.MeanAbsDiff > b.MeanAbsDiff
		}
		return a.Segment < b.Segment
	})
	return out
}
