package judge

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/window"
)

// Snapshots is what the judge reads from the windows: a sliding window, a
// comparison period, and where a variant's data begins. *window.Windows implements
// it.
type Snapshots interface {
	Snapshot(span window.Span) window.Snapshot
	Period(start time.Time) (window.Snapshot, error)
	FirstSeen(variant string) (time.Time, bool)
}

// Pair is one candidate judged against one baseline over one range of data (the
// zero Range: the comparison period since the candidate's first prediction).
type Pair struct {
	Baseline  string
	Candidate string
	Range     Range
}

func (p Pair) validate() error {
	switch {
	case p.Baseline == "" || p.Candidate == "":
		return fmt.Errorf("judge: pair %q vs %q: both variants are required", p.Candidate, p.Baseline)
	case p.Baseline == p.Candidate:
		return fmt.Errorf("judge: pair %q: baseline and candidate are the same", p.Baseline)
	}
	return nil
}

// SegmentRegression is the alarmable summary of one pair's judgement, for sinks
// (Prometheus, CloudWatch) that publish it.
type SegmentRegression struct {
	Pair
	Decision Decision
	// Segments is how many segments are significantly worse than the baseline (see
	// Judgement.SegmentRegressions).
	Segments int
	// WorstRecallDelta is the lowest anytime-valid upper bound of a segment's recall
	// delta (see Judgement.WorstSegmentRecallDelta), WorstSegment its segment; nil
	// when no segment has recall data.
	WorstRecallDelta *float64
	WorstSegment     *Scope
	// RecallDelta and PrecisionDelta are the overall deltas (candidate − baseline),
	// nil while either variant has no labels for them.
	RecallDelta, PrecisionDelta *float64
}

// Regressions judges every pair on the current snapshots (one snapshot per
// window) and summarizes each.
func Regressions(snaps Snapshots, pairs []Pair, cfg Config) ([]SegmentRegression, error) {
	js, err := judgeAll(snaps, pairs, cfg)
	if err != nil {
		return nil, err
	}
	out := make([]SegmentRegression, len(js))
	for i, j := range js {
		out[i] = SegmentRegression{
			Pair: pairs[i], Decision: j.Decision, Segments: j.SegmentRegressions,
			WorstRecallDelta: j.WorstSegmentRecallDelta, WorstSegment: j.WorstSegment,
			RecallDelta: j.Overall.Recall.Delta, PrecisionDelta: j.Overall.Precision.Delta,
		}
	}
	return out, nil
}

func judgeAll(snaps Snapshots, pairs []Pair, cfg Config) ([]Judgement, error) {
	out := make([]Judgement, 0, len(pairs))
	for _, p := range pairs {
		snap, err := RangeSnapshot(snaps, p.Range, p.Candidate)
		if err != nil {
			return nil, fmt.Errorf("judge %s vs %s over %s: %w", p.Candidate, p.Baseline, p.Range, err)
		}
		j, err := Judge(snap, p.Baseline, p.Candidate, cfg)
		if err != nil {
			return nil, fmt.Errorf("judge %s vs %s over %s: %w", p.Candidate, p.Baseline, p.Range, err)
		}
		out = append(out, j)
	}
	return out, nil
}

// RangeSnapshot is the snapshot a judgement of candidate over r reads: the sliding
// window, the period from r.Since, or the period from the candidate's first
// prediction in the buckets kept (all time when the candidate has none: the judgement
// then says it has no data).
func RangeSnapshot(snaps Snapshots, r Range, candidate string) (window.Snapshot, error) {
	switch {
	case r.Sliding:
		return snaps.Snapshot(r.Window), nil
	case !r.Since.IsZero():
		return snaps.Period(r.Since)
	}
	first, ok := snaps.FirstSeen(candidate)
	if !ok {
		return snaps.Snapshot(window.AllTime), nil
	}
	return snaps.Period(first)
}

// Collector is a prometheus.Collector that judges the configured pairs at scrape
// time from the current snapshots; it keeps no state between scrapes.
type Collector struct {
	snaps Snapshots
	pairs []Pair
	cfg   Config
	log   *slog.Logger

	regressions, worst, recallDelta, precisionDelta, psi, judgement *prometheus.Desc
}

// NewCollector returns a collector of the given pairs. log may be nil.
func NewCollector(snaps Snapshots, pairs []Pair, cfg Config, log *slog.Logger) (*Collector, error) {
	if snaps == nil {
		return nil, errors.New("judge: nil Snapshots")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, p := range pairs {
		if err := p.validate(); err != nil {
			return nil, err
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pair := []string{"candidate", "baseline", "window"}
	scoped := []string{"candidate", "baseline", "segment_key", "segment", "window"}
	return &Collector{
		snaps: snaps, pairs: append([]Pair(nil), pairs...), cfg: cfg.withDefaults(), log: log,
		regressions: prometheus.NewDesc("verdict_segment_regressions",
			"Segments where the candidate's recall or precision is worse than the baseline's (anytime-valid, each segment test at its Bonferroni share of alpha).", pair, nil),
		worst: prometheus.NewDesc("verdict_worst_segment_recall_delta",
			"Lowest anytime-valid upper bound of candidate minus baseline recall among segments (negative: shown worse by at least that much); absent when no segment has recall labels.", pair, nil),
		recallDelta: prometheus.NewDesc("verdict_recall_delta",
			"Candidate minus baseline recall (segment labels empty: overall); present once both variants have labeled positives.", scoped, nil),
		precisionDelta: prometheus.NewDesc("verdict_precision_delta",
			"Candidate minus baseline precision (segment labels empty: overall); present once both variants have resolved predicted positives.", scoped, nil),
		psi: prometheus.NewDesc("verdict_score_psi",
			"Population stability index of the candidate's score histogram against the baseline's; present once both have min predictions.", scoped, nil),
		judgement: prometheus.NewDesc("verdict_judgement",
			"1 for the judge's current decision (pass, fail, inconclusive) of the candidate against the baseline, 0 for the others.",
			append(append([]string(nil), pair...), "decision"), nil),
	}, nil
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.regressions, c.worst, c.recallDelta, c.precisionDelta, c.psi, c.judgement} {
		ch <- d
	}
}

// windowLabel is a range's window label: "period" for every comparison period (its
// start changes; the series must not), else the sliding window's span.
func windowLabel(r Range) string {
	if r.Sliding {
		return r.Window.String()
	}
	return "period"
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	js, err := judgeAll(c.snaps, c.pairs, c.cfg)
	if err != nil {
		// Pairs and config are validated in NewCollector; report rather than hide.
		c.log.Error("judge: collect", "err", err)
		ch <- prometheus.NewInvalidMetric(c.judgement, err)
		return
	}
	for i, j := range js {
		p := c.pairs[i]
		w := windowLabel(p.Range)
		g := func(d *prometheus.Desc, v float64, lv ...string) {
			m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, lv...)
			if err != nil { // e.g. a variant or segment name that is not valid UTF-8
				c.log.Warn("judge: collect", "labels", lv, "err", err)
				m = prometheus.NewInvalidMetric(d, err)
			}
			ch <- m
		}
		g(c.regressions, float64(j.SegmentRegressions), p.Candidate, p.Baseline, w)
		if j.WorstSegmentRecallDelta != nil {
			g(c.worst, *j.WorstSegmentRecallDelta, p.Candidate, p.Baseline, w)
		}
		for _, d := range Decisions() {
			v := 0.0
			if d == j.Decision {
				v = 1
			}
			g(c.judgement, v, p.Candidate, p.Baseline, w, string(d))
		}
		for _, s := range append([]ScopeJudgement{j.Overall}, j.Segments...) {
			lv := []string{p.Candidate, p.Baseline, s.SegmentKey, s.Segment, w}
			if d := s.Recall.Delta; d != nil {
				g(c.recallDelta, *d, lv...)
			}
			if d := s.Precision.Delta; d != nil {
				g(c.precisionDelta, *d, lv...)
			}
			if s.Score.PSI != nil && s.Score.Level != LevelInsufficient {
				g(c.psi, *s.Score.PSI, lv...)
			}
		}
	}
}
