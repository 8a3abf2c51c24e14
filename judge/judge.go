package judge

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/verdictml/verdict/internal/numfmt"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// Decision is the outcome of a comparison, a segment or a whole judgement.
type Decision string

// Decisions.
const (
	// Pass: the data show the candidate is not worse than the baseline by more than
	// the tolerance, in every metric and scope the policy requires, and nothing
	// failed. Evidence, not the absence of it.
	Pass Decision = "pass"
	// Fail: the data show the candidate is worse than the baseline somewhere
	// (anytime-valid, family-wise α).
	Fail Decision = "fail"
	// Inconclusive: neither yet; the reason says what is missing.
	Inconclusive Decision = "inconclusive"
)

// Decisions returns every decision in a stable order (for exporters of enums).
func Decisions() []Decision { return []Decision{Pass, Fail, Inconclusive} }

// Metric names a labeled metric that is compared.
type Metric string

// Metrics.
const (
	Recall    Metric = "recall"
	Precision Metric = "precision"
)

// Design says how a comparison's samples relate.
type Design string

// Designs.
const (
	// Paired: both variants scored the same inferences (a shadow variant); the test
	// uses the pairs.
	Paired Design = "paired"
	// Unpaired: independent samples (a canary split).
	Unpaired Design = "unpaired"
)

// Level grades a label-free signal.
type Level string

// Levels.
const (
	// LevelOK: no notable shift.
	LevelOK Level = "ok"
	// LevelWarn: a moderate shift (PSI >= PSIWarn, a significant flag-rate change, or
	// models disagreeing significantly more in one direction).
	LevelWarn Level = "warn"
	// LevelAlert: a major shift (PSI >= PSIAlert).
	LevelAlert Level = "alert"
	// LevelInsufficient: too few predictions to say.
	LevelInsufficient Level = "insufficient"
)

// Interval is a 95 % Wilson interval.
type Interval struct {
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
}

// Proportion is x successes out of n with its 95 % Wilson interval. Value is null
// when n is zero (the interval is then [0, 1]).
type Proportion struct {
	Successes int64    `json:"successes"`
	N         int64    `json:"n"`
	Value     *float64 `json:"value"`
	CI        Interval `json:"ci95"`
}

// proportion is x of n; counts that cannot be a proportion (n <= 0, x < 0 or
// x > n, as only corrupt tallies would give) leave it undefined.
func proportion(x, n int64) Proportion {
	p := Proportion{Successes: x, N: n, CI: Interval{0, 1}}
	if n > 0 && x >= 0 && x <= n {
		ci := window.Wilson(x, n, window.Z95)
		p.CI = Interval{ci.Lower, ci.Upper}
		p.Value = ptr(float64(x) / float64(n))
	}
	return p
}

// difference is c - b, undefined unless both are defined.
func difference(b, c *float64) *float64 {
	if b == nil || c == nil {
		return nil
	}
	return ptr(*c - *b)
}

// Comparison is one labeled metric of the candidate against the baseline in one
// scope (overall or a segment).
type Comparison struct {
	Metric   Metric   `json:"metric"`
	Decision Decision `json:"decision"`
	Reason   string   `json:"reason"`
	Design   Design   `json:"design"`
	// Required reports that a pass of the judgement needs this comparison to pass.
	Required  bool       `json:"required"`
	Baseline  Proportion `json:"baseline"`
	Candidate Proportion `json:"candidate"`
	// Delta is candidate − baseline (negative: the candidate is worse).
	Delta *float64 `json:"delta"`
	// DeltaLower and DeltaUpper bound the true candidate − baseline, anytime-valid:
	// DeltaLower at the pass level β (a pass is DeltaLower > −tolerance), DeltaUpper
	// at this comparison's fail level (DeltaUpper < 0 is evidence it is worse).
	DeltaLower *float64 `json:"delta_lower"`
	DeltaUpper *float64 `json:"delta_upper"`
	Tolerance  float64  `json:"tolerance"`
	// OnlyBaseline and OnlyCandidate are the discordant pairs of a paired recall: the
	// labeled positives only one of the two flagged.
	OnlyBaseline  *int64 `json:"only_baseline,omitempty"`
	OnlyCandidate *int64 `json:"only_candidate,omitempty"`
	// PValue is the always-valid p-value (1/e-value) of "the candidate is not
	// worse"; AdjustedPValue divides it by this comparison's share of α
	// (Bonferroni), so it fails when AdjustedPValue ≤ α.
	PValue         *float64 `json:"p_value"`
	AdjustedPValue *float64 `json:"adjusted_p_value"`
	// PassPValue is the always-valid p-value of "the candidate is worse by at least
	// the tolerance"; it passes when PassPValue ≤ β.
	PassPValue *float64 `json:"pass_p_value"`
	// FailLevel is this comparison's share of α.
	FailLevel float64 `json:"fail_level"`
	// Significant: the candidate is worse, at the fail level.
	Significant bool `json:"significant"`
	// UnlabeledBaselineFlags is, unless labels are missing at random, how many
	// predictions the baseline flagged have no label (declined transactions never
	// get one); the pass test counts them as fraud the candidate missed (paired:
	// those only the baseline flagged).
	UnlabeledBaselineFlags int64 `json:"unlabeled_baseline_flags"`
	// MoreLabels is, for an undecided required comparison, about how many more of
	// its n (labeled positives for recall) it needs to pass if the proportions seen
	// so far hold; Wait is that at the period's label rate so far. Absent when no
	// amount of such data would pass it.
	MoreLabels *int64  `json:"more_labels,omitempty"`
	Wait       *string `json:"wait,omitempty"`
}

// FlagRateShift compares the share of predictions flagged positive; it needs no
// labels. The test is two-sided (a model flagging much more or much less is news).
type FlagRateShift struct {
	Baseline       Proportion `json:"baseline"`
	Candidate      Proportion `json:"candidate"`
	Delta          *float64   `json:"delta"`
	PValue         *float64   `json:"p_value"`
	AdjustedPValue *float64   `json:"adjusted_p_value"`
	Level          Level      `json:"level"`
}

// ScoreShift compares the score distributions; it needs no labels.
type ScoreShift struct {
	BaselineMean  *float64 `json:"baseline_mean"`
	CandidateMean *float64 `json:"candidate_mean"`
	MeanDelta     *float64 `json:"mean_delta"`
	// PSI of the candidate's score histogram against the baseline's.
	PSI   *float64 `json:"psi"`
	Level Level    `json:"level"`
}

// Discordance is how often two paired models disagree and in which direction, over
// every inference both scored (labeled or not): a label-free signal.
type Discordance struct {
	Pairs         int64    `json:"pairs"`
	OnlyBaseline  int64    `json:"only_baseline"`
	OnlyCandidate int64    `json:"only_candidate"`
	Rate          *float64 `json:"rate"`
	// PValue is the always-valid p-value of "disagreements go either way equally";
	// Level is warn when it is below α over the number of scopes.
	PValue *float64 `json:"p_value"`
	Level  Level    `json:"level"`
}

// Scope is the whole variant (both fields empty) or one segment of it.
type Scope struct {
	SegmentKey string `json:"segment_key,omitempty"`
	Segment    string `json:"segment,omitempty"`
}

// Overall reports whether the scope is the variant's overall series.
func (s Scope) Overall() bool { return s.SegmentKey == "" }

// compare orders scopes by segment key, then segment: the overall scope first.
func (s Scope) compare(o Scope) int {
	return cmp.Or(strings.Compare(s.SegmentKey, o.SegmentKey), strings.Compare(s.Segment, o.Segment))
}

// scopeCounts is the baseline's and the candidate's counts in one scope.
type scopeCounts struct{ base, cand tally.Counts }

// sumByScope adds each row of baseline and candidate in snap to its scope's counts in
// scopes (into picks them out of the scope's entry, created when missing).
func sumByScope[T any](scopes map[Scope]*T, snap window.Snapshot, baseline, candidate string, into func(*T) *scopeCounts) {
	for _, r := range snap.Rows {
		if r.Key.Variant != baseline && r.Key.Variant != candidate {
			continue
		}
		sc := Scope{SegmentKey: r.Key.SegmentKey, Segment: r.Key.Segment}
		t := scopes[sc]
		if t == nil {
			t = new(T)
			scopes[sc] = t
		}
		c := into(t)
		if r.Key.Variant == baseline {
			c.base.Add(r.Counts)
		} else {
			c.cand.Add(r.Counts)
		}
	}
}

func (s Scope) String() string {
	if s.Overall() {
		return "overall"
	}
	return s.SegmentKey + "=" + s.Segment
}

// ScopeJudgement is the comparison in one scope.
type ScopeJudgement struct {
	Scope
	Decision Decision `json:"decision"`
	Reason   string   `json:"reason"`
	// Required reports that a pass of the judgement needs this scope to pass: the
	// overall scope, segments above MinSegmentShare and RequiredSegments.
	Required    bool          `json:"required"`
	Recall      Comparison    `json:"recall"`
	Precision   Comparison    `json:"precision"`
	FlagRate    FlagRateShift `json:"flag_rate"`
	Score       ScoreShift    `json:"score"`
	Discordance *Discordance  `json:"discordance,omitempty"`

	base, cand tally.Counts
	pair       *tally.PairCounts
}

// Counts returns the baseline's and the candidate's counts in this scope.
func (s ScopeJudgement) Counts() (baseline, candidate tally.Counts) { return s.base, s.cand }

// Method records the rules and thresholds a judgement was made with.
type Method struct {
	Test                      string   `json:"test"`
	Correction                string   `json:"correction"`
	Alpha                     float64  `json:"alpha"`
	Beta                      float64  `json:"beta"`
	RecallTolerance           float64  `json:"recall_tolerance"`
	PrecisionTolerance        float64  `json:"precision_tolerance"`
	SegmentRecallTolerance    float64  `json:"segment_recall_tolerance"`
	SegmentPrecisionTolerance float64  `json:"segment_precision_tolerance"`
	MinSegmentShare           float64  `json:"min_segment_share"`
	RequiredSegments          []string `json:"required_segments"`
	PassMetrics               []Metric `json:"pass_metrics"`
	MinPredictions            int64    `json:"min_predictions"`
	PSIWarn                   float64  `json:"psi_warn"`
	PSIAlert                  float64  `json:"psi_alert"`
}

// Judgement is the candidate against the baseline over one range of data.
type Judgement struct {
	Decision  Decision `json:"decision"`
	Reason    string   `json:"reason"`
	Baseline  string   `json:"baseline"`
	Candidate string   `json:"candidate"`
	// Window is "period" for a comparison period, else the sliding window's span.
	Window      string     `json:"window"`
	WindowStart *time.Time `json:"window_start,omitempty"`
	WindowEnd   time.Time  `json:"window_end"`
	// Design is paired when the candidate scored the same inferences as the baseline
	// (a shadow), unpaired otherwise.
	Design Design `json:"design"`
	// SegmentRegressions is how many segments fail: the candidate is worse than the
	// baseline in recall or precision, anytime-valid at its share of α.
	SegmentRegressions int `json:"segment_regressions"`
	// SegmentsRequired is how many segments the policy requires for a pass, and
	// SegmentsPassed how many of them passed.
	SegmentsRequired int `json:"segments_required"`
	SegmentsPassed   int `json:"segments_passed"`
	// WorstSegmentRecallDelta is the lowest anytime-valid upper bound of candidate −
	// baseline recall among segments (the most the candidate is shown to be worse
	// by, when negative); WorstSegment names that segment. Null when no segment has
	// recall data.
	WorstSegmentRecallDelta *float64         `json:"worst_segment_recall_delta"`
	WorstSegment            *Scope           `json:"worst_segment,omitempty"`
	Overall                 ScopeJudgement   `json:"overall"`
	Segments                []ScopeJudgement `json:"segments"`
	// Waiting lists what a pass still needs (required comparisons not yet decided).
	Waiting []string `json:"waiting"`
	// Warnings lists label-free signals at warn or alert level; they do not change
	// the decision.
	Warnings []string `json:"warnings"`
	Method   Method   `json:"method"`
}

// Judge compares candidate against baseline in snap, overall and per segment. It
// fails only on input it cannot judge at all (empty or equal variant names, an
// invalid config); missing data is an inconclusive judgement, not an error.
func Judge(snap window.Snapshot, baseline, candidate string, cfg Config) (Judgement, error) {
	if err := cfg.Validate(); err != nil {
		return Judgement{}, err
	}
	cfg = cfg.withDefaults()
	switch {
	case baseline == "":
		return Judgement{}, errors.New("judge: baseline variant is empty")
	case candidate == "":
		return Judgement{}, errors.New("judge: candidate variant is empty")
	case baseline == candidate:
		return Judgement{}, fmt.Errorf("judge: baseline and candidate are both %q", baseline)
	}
	win := snap.Span.String()
	if snap.Period {
		win = "period"
	}
	j := Judgement{
		Baseline: baseline, Candidate: candidate, Window: win, WindowEnd: snap.End,
		Segments: []ScopeJudgement{}, Waiting: []string{}, Warnings: []string{},
		Method: Method{
			Test:       "anytime-valid: universal-inference e-values (Jeffreys mixtures); paired recall: sequential exact McNemar (fail) and trinomial (pass)",
			Correction: "bonferroni: α/4 per overall metric, α/(4·segments) per segment metric; pass: intersection-union at β",
			Alpha:      cfg.Alpha, Beta: cfg.Beta,
			RecallTolerance: cfg.RecallTolerance, PrecisionTolerance: cfg.PrecisionTolerance,
			SegmentRecallTolerance: cfg.SegmentRecallTolerance, SegmentPrecisionTolerance: cfg.SegmentPrecisionTolerance,
			MinSegmentShare: cfg.MinSegmentShare, RequiredSegments: append([]string{}, cfg.RequiredSegments...),
			PassMetrics:    append([]Metric(nil), cfg.PassMetrics...),
			MinPredictions: cfg.MinPredictions, PSIWarn: cfg.PSIWarn, PSIAlert: cfg.PSIAlert,
		},
	}
	if !snap.Start.IsZero() {
		start := snap.Start
		j.WindowStart = &start
	}

	var haveBase, haveCand bool
	variants := map[string]bool{}
	for _, r := range snap.Rows {
		variants[r.Key.Variant] = true
		data := r.Counts.Predictions > 0 || r.Counts.Resolved() > 0
		haveBase = haveBase || (r.Key.Variant == baseline && data)
		haveCand = haveCand || (r.Key.Variant == candidate && data)
	}
	scopes := map[Scope]*scopeCounts{{}: {}}
	sumByScope(scopes, snap, baseline, candidate, func(c *scopeCounts) *scopeCounts { return c })

	all := make([]*ScopeJudgement, 0, len(scopes))
	for sc, p := range scopes {
		all = append(all, &ScopeJudgement{Scope: sc, base: p.base, cand: p.cand})
	}
	// The overall scope (no segment key) sorts first.
	slices.SortFunc(all, func(a, b *ScopeJudgement) int { return a.Scope.compare(b.Scope) })

	// Paired when the candidate's predictions in the range were mostly scored on the
	// baseline's inferences too (a shadow); a canary split has no pairs.
	j.Design = Unpaired
	if pc, ok := snap.Paired(baseline, candidate, "", ""); ok {
		if n := all[0].cand.Predictions; n > 0 && 2*pc.Total() >= n {
			j.Design = Paired
		}
	}
	if j.Design == Paired {
		for _, s := range all {
			if pc, ok := snap.Paired(baseline, candidate, s.SegmentKey, s.Segment); ok {
				s.pair = &pc
			}
		}
	}

	segments := len(all) - 1
	required := requiredScopes(all, cfg)
	rate := labelRate(snap)
	for _, s := range all {
		s.Required = required[s.Scope]
		level := cfg.Alpha / 4
		if !s.Overall() {
			level = cfg.Alpha / float64(4*segments)
		}
		s.Recall = compareRecall(s, cfg, level, rate)
		prec := twoSample{float64(s.base.TP), float64(s.base.TP + s.base.FP), float64(s.cand.TP), float64(s.cand.TP + s.cand.FP)}
		s.Precision = compare(Precision, s, prec, prec, Unpaired, cfg, level, rate)
	}

	// Label-free signals: flag rate (Holm in its own family), score PSI, discordance.
	var flags []*FlagRateShift
	for _, s := range all {
		s.FlagRate = newFlagRateShift(s.base, s.cand, cfg.MinPredictions)
		if s.FlagRate.PValue != nil {
			flags = append(flags, &s.FlagRate)
		}
		s.Score = newScoreShift(s.base, s.cand, cfg)
		if s.pair != nil {
			s.Discordance = newDiscordance(*s.pair, cfg.Alpha/float64(len(all)))
		}
	}
	fadj := Holm(pValues(flags, func(f *FlagRateShift) float64 { return *f.PValue }))
	for i, f := range flags {
		f.AdjustedPValue = ptr(fadj[i])
		if fadj[i] <= cfg.Alpha {
			f.Level = LevelWarn
		}
	}

	for _, s := range all {
		s.decide()
		if s.Required && s.Decision != Fail {
			for _, c := range []Comparison{s.Recall, s.Precision} {
				if c.Required && c.Decision == Inconclusive {
					j.Waiting = append(j.Waiting, fmt.Sprintf("%s in %s: %s", c.Metric, s.Scope, c.Reason))
				}
			}
		}
		if s.Overall() {
			j.Overall = *s
			continue
		}
		if s.Decision == Fail {
			j.SegmentRegressions++
		}
		if s.Required {
			j.SegmentsRequired++
			if s.Decision == Pass {
				j.SegmentsPassed++
			}
		}
		if u := s.Recall.DeltaUpper; u != nil && (j.WorstSegmentRecallDelta == nil || *u < *j.WorstSegmentRecallDelta) {
			j.WorstSegmentRecallDelta = ptr(*u)
			sc := s.Scope
			j.WorstSegment = &sc
		}
		j.Segments = append(j.Segments, *s)
	}
	slices.SortStableFunc(j.Segments, func(a, b ScopeJudgement) int {
		rank := func(s ScopeJudgement) int {
			switch {
			case s.Decision == Fail:
				return 0
			case s.Required:
				return 1
			}
			return 2
		}
		return cmp.Compare(rank(a), rank(b))
	})
	for _, s := range all {
		j.Warnings = append(j.Warnings, s.warnings()...)
	}
	j.decide(haveBase, haveCand, variants, cfg)
	return j, nil
}

// requiredScopes is the pass policy: the overall scope, every segment holding at
// least MinSegmentShare of the scope's predictions or labeled positives (both
// variants together), and the named RequiredSegments.
func requiredScopes(all []*ScopeJudgement, cfg Config) map[Scope]bool {
	out := map[Scope]bool{{}: true}
	overall := all[0]
	preds := overall.base.Predictions + overall.cand.Predictions
	pos := overall.base.TP + overall.base.FN + overall.cand.TP + overall.cand.FN
	for _, s := range all[1:] {
		if slices.Contains(cfg.RequiredSegments, s.Scope.String()) {
			out[s.Scope] = true
			continue
		}
		if cfg.MinSegmentShare < 0 {
			continue
		}
		sp := float64(s.base.Predictions + s.cand.Predictions)
		sl := float64(s.base.TP + s.base.FN + s.cand.TP + s.cand.FN)
		if (preds > 0 && sp >= cfg.MinSegmentShare*float64(preds)) || (pos > 0 && sl >= cfg.MinSegmentShare*float64(pos)) {
			out[s.Scope] = true
		}
	}
	return out
}

// labelRate is the labeled inferences per second the range has accrued, over its
// length; zero when it has no start (all time) or no length.
func labelRate(snap window.Snapshot) func(n int64) float64 {
	secs := snap.End.Sub(snap.Start).Seconds()
	return func(n int64) float64 {
		if snap.Start.IsZero() || secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
}

// compareRecall compares recall on the pairs when the design is paired (the same
// labeled positives for both), else on each variant's own labeled positives.
func compareRecall(s *ScopeJudgement, cfg Config, level float64, rate func(int64) float64) Comparison {
	if s.pair == nil {
		b, c := s.base, s.cand
		smp := twoSample{float64(b.TP), float64(b.TP + b.FN), float64(c.TP), float64(c.TP + c.FN)}
		// The worst completion for a pass: every baseline flag without a label was a
		// caught fraud (pending flags, and flags resolved negative by maturity —
		// at most min(FP, Matured) of them), every candidate flag without one was not.
		var u int64
		if !cfg.MissingAtRandom {
			u = max(0, b.Flagged-b.TP-b.FP) + max(0, min(b.FP, b.Matured))
		}
		worst := twoSample{smp.xb + float64(u), smp.nb + float64(u), smp.xc, smp.nc}
		return compare(Recall, s, smp, worst, Unpaired, cfg, level, rate)
	}
	pos := s.pair[tally.ClassPositive]
	ps := pairedSample{b: float64(pos[tally.OnlyFirst]), c: float64(pos[tally.OnlySecond]), n: float64(s.pair.Class(tally.ClassPositive))}
	// The worst completion for a pass: every pair only the baseline flagged and that
	// has no label (pending, or matured without one) was fraud the candidate missed.
	var u int64
	if !cfg.MissingAtRandom {
		u = s.pair[tally.ClassPending][tally.OnlyFirst] + s.pair[tally.ClassMatured][tally.OnlyFirst]
	}
	worst := pairedSample{b: ps.b + float64(u), c: ps.c, n: ps.n + float64(u)}
	return compare(Recall, s, ps, worst, Paired, cfg, level, rate)
}

// compare runs the fail and pass tests of one metric in one scope and decides it:
// fail on smp, pass on passSmp (the worst completion of labels that may be missing
// because of the flags; smp itself when labels are missing at random).
func compare(m Metric, s *ScopeJudgement, smp, passSmp sample, design Design, cfg Config, level float64, rate func(int64) float64) Comparison {
	tol := cfg.tolerance(m, s.Overall())
	c := Comparison{Metric: m, Design: design, Required: s.Required && cfg.requires(m), Tolerance: tol, FailLevel: level,
		UnlabeledBaselineFlags: unlabeledFlags(smp, passSmp)}
	switch v := smp.(type) {
	case twoSample:
		c.Baseline, c.Candidate = proportion(int64(v.xb), int64(v.nb)), proportion(int64(v.xc), int64(v.nc))
	case pairedSample:
		n, ob, oc := int64(v.n), int64(v.b), int64(v.c)
		both := pairBoth(s.pair, m)
		c.Baseline, c.Candidate = proportion(ob+both, n), proportion(oc+both, n)
		c.OnlyBaseline, c.OnlyCandidate = &ob, &oc
	}
	c.Delta = difference(c.Baseline.Value, c.Candidate.Value)
	if c.Delta == nil || math.IsNaN(smp.estimate()) || !validSample(smp) {
		c.Decision = Inconclusive
		c.Reason = fmt.Sprintf("no labels yet: %s needs %s", m, nOf(m))
		return c
	}
	if m == Precision {
		for _, v := range []struct {
			role   string
			counts tally.Counts
		}{{"baseline", s.base}, {"candidate", s.cand}} {
			if e := window.DeriveWith(v.counts, cfg.Estimable).Estimable.Precision; !e.Estimable {
				c.Decision = Inconclusive
				c.Reason = fmt.Sprintf("precision %.3f → %.3f is not yet estimable for the %s: %s", *c.Baseline.Value, *c.Candidate.Value, v.role, e.Reason)
				return c
			}
		}
	}
	failE := logE(smp, atMost, 0)
	if p, ok := smp.(pairedSample); ok {
		failE = mcNemarLogE(p.b, p.c) // exact, and sharper for "worse at all"
	}
	passE := logE(passSmp, atLeast, tol)
	c.PValue = ptr(math.Min(1, math.Exp(-failE)))
	c.AdjustedPValue = ptr(math.Min(1, *c.PValue*cfg.Alpha/level))
	c.PassPValue = ptr(math.Min(1, math.Exp(-passE)))
	c.DeltaLower = ptr(-upperBound(passSmp, cfg.Beta))
	c.DeltaUpper = ptr(-lowerBound(smp, level))
	c.Significant = failE >= -math.Log(level)
	move := fmt.Sprintf("%s %.3f → %.3f (%+.3f; %s)", m, *c.Baseline.Value, *c.Candidate.Value, *c.Delta, boundsText(c))
	switch {
	case c.Significant:
		c.Decision = Fail
		c.Reason = fmt.Sprintf("%s: worse (%s; p %.2g ≤ %.2g, anytime-valid)", move, c.evidenceText(), *c.PValue, level)
	case passE >= -math.Log(cfg.Beta):
		c.Decision = Pass
		c.Reason = fmt.Sprintf("%s: within the tolerance %g (p %.2g ≤ β %g, anytime-valid)", move, tol, *c.PassPValue, cfg.Beta)
	default:
		c.Decision = Inconclusive
		c.Reason = fmt.Sprintf("%s: not yet shown within the tolerance %g", move, tol)
		if u := c.UnlabeledBaselineFlags; u > 0 {
			c.Reason += fmt.Sprintf("; %d predictions the baseline flagged have no label (a declined transaction never gets one) and count as fraud the candidate missed until labeled", u)
		}
		k := scaleToReject(passSmp, atLeast, tol, cfg.Beta)
		if math.IsInf(k, 1) {
			worst := -passSmp.estimate()
			c.Reason += fmt.Sprintf("; the candidate looks worse by %.3f so far (counting those), so it can pass only if that shrinks below the tolerance", math.Max(0, -worst))
			break
		}
		n := sampleN(passSmp)
		more := int64(math.Ceil(float64(n) * (k - 1)))
		c.MoreLabels = &more
		c.Reason += fmt.Sprintf("; needs about %d more %s", more, nOf(m))
		if r := rate(n); r > 0 {
			w := (time.Duration(float64(more)/r) * time.Second).Round(time.Minute)
			ws := w.String()
			c.Wait = &ws
			c.Reason += fmt.Sprintf(" (about %s at the label rate so far)", ws)
		}
	}
	return c
}

// unlabeledFlags is how many unlabeled baseline flags the pass sample adds.
func unlabeledFlags(smp, passSmp sample) int64 {
	switch p := passSmp.(type) {
	case pairedSample:
		return int64(p.n - smp.(pairedSample).n)
	case twoSample:
		return int64(p.nb - smp.(twoSample).nb)
	}
	return 0
}

// evidenceText is what a failing comparison rests on: the discordant pairs of a
// paired recall (McNemar's test), else the bound on the drop.
func (c Comparison) evidenceText() string {
	if c.OnlyBaseline != nil && c.OnlyCandidate != nil {
		return fmt.Sprintf("%d labeled positives only the baseline caught, %d only the candidate", *c.OnlyBaseline, *c.OnlyCandidate)
	}
	if c.DeltaUpper != nil && *c.DeltaUpper < 0 {
		return fmt.Sprintf("worse by at least %.3f", -*c.DeltaUpper)
	}
	return "anytime-valid"
}

// validSample rejects counts no join could produce (negative, or more successes than
// trials), as only corrupt tallies would give.
func validSample(s sample) bool {
	switch v := s.(type) {
	case twoSample:
		return v.xb >= 0 && v.xc >= 0 && v.xb <= v.nb && v.xc <= v.nc
	case pairedSample:
		return v.b >= 0 && v.c >= 0 && v.b+v.c <= v.n
	}
	return false
}

// boundsText is the anytime-valid range of the candidate − baseline difference.
func boundsText(c Comparison) string {
	return fmt.Sprintf("difference in [%+.3f, %+.3f]", *c.DeltaLower, *c.DeltaUpper)
}

// pairBoth is the labeled inferences both variants got right for m in a pair: for
// recall, labeled positives both flagged.
func pairBoth(p *tally.PairCounts, m Metric) int64 {
	if p == nil || m != Recall {
		return 0
	}
	return p[tally.ClassPositive][tally.Both]
}

// sampleN is a sample's size in its own units: paired inferences, or the smaller arm.
func sampleN(s sample) int64 {
	switch v := s.(type) {
	case pairedSample:
		return int64(v.n)
	case twoSample:
		return int64(math.Min(v.nb, v.nc))
	}
	return 0
}

func pValues[T any](xs []T, p func(T) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = p(x)
	}
	return out
}

// nOf says what a metric's n counts.
func nOf(m Metric) string {
	if m == Recall {
		return "labeled positives (TP+FN)"
	}
	return "resolved predicted positives (TP+FP)"
}

func newFlagRateShift(b, c tally.Counts, minPred int64) FlagRateShift {
	f := FlagRateShift{Baseline: proportion(b.Flagged, b.Predictions), Candidate: proportion(c.Flagged, c.Predictions), Level: LevelInsufficient}
	f.Delta = difference(f.Baseline.Value, f.Candidate.Value)
	if b.Predictions >= minPred && c.Predictions >= minPred {
		if t, ok := TwoProportionZ(b.Flagged, b.Predictions, c.Flagged, c.Predictions); ok {
			f.PValue = ptr(t.TwoSided)
			f.Level = LevelOK
		}
	}
	return f
}

func newScoreShift(b, c tally.Counts, cfg Config) ScoreShift {
	s := ScoreShift{Level: LevelInsufficient}
	if b.Predictions > 0 {
		s.BaselineMean = ptr(b.ScoreSum / float64(b.Predictions))
	}
	if c.Predictions > 0 {
		s.CandidateMean = ptr(c.ScoreSum / float64(c.Predictions))
	}
	s.MeanDelta = difference(s.BaselineMean, s.CandidateMean)
	if psi, ok := PSI(b.Bins, c.Bins); ok {
		s.PSI = ptr(psi)
		if b.Predictions >= cfg.MinPredictions && c.Predictions >= cfg.MinPredictions {
			s.Level = psiLevel(psi, cfg)
		}
	}
	return s
}

// newDiscordance summarizes where two paired models disagree over every paired
// inference; warn when one direction dominates (two-sided sequential McNemar at
// level).
func newDiscordance(p tally.PairCounts, level float64) *Discordance {
	d := &Discordance{Pairs: p.Total(), OnlyBaseline: p.Agreement(tally.OnlyFirst), OnlyCandidate: p.Agreement(tally.OnlySecond), Level: LevelInsufficient}
	if d.Pairs > 0 {
		d.Rate = ptr(float64(d.OnlyBaseline+d.OnlyCandidate) / float64(d.Pairs))
		e := mcNemarTwoSidedLogE(float64(d.OnlyBaseline), float64(d.OnlyCandidate))
		d.PValue = ptr(math.Min(1, math.Exp(-e)))
		d.Level = LevelOK
		if e >= -math.Log(level) {
			d.Level = LevelWarn
		}
	}
	return d
}

func psiLevel(psi float64, cfg Config) Level {
	switch {
	case psi >= cfg.PSIAlert:
		return LevelAlert
	case psi >= cfg.PSIWarn:
		return LevelWarn
	}
	return LevelOK
}

func (s *ScopeJudgement) decide() {
	var fails, waits []string
	for _, c := range []Comparison{s.Recall, s.Precision} {
		switch {
		case c.Decision == Fail:
			fails = append(fails, c.Reason)
		case c.Required && c.Decision == Inconclusive:
			waits = append(waits, c.Reason)
		}
	}
	switch {
	case len(fails) > 0:
		s.Decision, s.Reason = Fail, strings.Join(fails, "; ")
	case len(waits) > 0:
		s.Decision, s.Reason = Inconclusive, strings.Join(waits, "; ")
	default:
		s.Decision, s.Reason = Pass, s.Recall.Reason+"; "+s.Precision.Reason
	}
}

func (s *ScopeJudgement) warnings() []string {
	var w []string
	if s.Score.Level == LevelWarn || s.Score.Level == LevelAlert {
		w = append(w, fmt.Sprintf("%s: score distribution shifted, PSI %s (%s; mean score %s)",
			s.Scope, numfmt.Num(s.Score.PSI, 3), s.Score.Level, numfmt.Pair(s.Score.BaselineMean, s.Score.CandidateMean, 3)))
	}
	if s.FlagRate.Level == LevelWarn {
		w = append(w, fmt.Sprintf("%s: flag rate changed %s (adjusted p %s)",
			s.Scope, numfmt.Pair(s.FlagRate.Baseline.Value, s.FlagRate.Candidate.Value, 4), numfmt.PValue(s.FlagRate.AdjustedPValue)))
	}
	if d := s.Discordance; d != nil && d.Level == LevelWarn {
		w = append(w, fmt.Sprintf("%s: the models disagree one way: only the baseline flagged %d, only the candidate %d of %d paired inferences (p %s)",
			s.Scope, d.OnlyBaseline, d.OnlyCandidate, d.Pairs, numfmt.PValue(d.PValue)))
	}
	return w
}

func (j *Judgement) decide(haveBase, haveCand bool, variants map[string]bool, cfg Config) {
	known := make([]string, 0, len(variants))
	for v := range variants {
		known = append(known, v)
	}
	slices.Sort(known)
	missing := func(role, v string) string {
		return fmt.Sprintf("no data for %s %q in %s (variants with data: %s)", role, v, j.Window, listOrNone(known))
	}
	var failing []string
	for _, s := range append([]ScopeJudgement{j.Overall}, j.Segments...) {
		for _, c := range []Comparison{s.Recall, s.Precision} {
			if c.Decision == Fail {
				failing = append(failing, fmt.Sprintf("%s in %s %.3f → %.3f (%+.3f; %s; p %.2g)",
					c.Metric, s.Scope, *c.Baseline.Value, *c.Candidate.Value, *c.Delta, c.evidenceText(), *c.PValue))
			}
		}
	}
	const show = 3
	switch {
	case len(failing) > 0:
		j.Decision = Fail
		more := ""
		if len(failing) > show {
			more = fmt.Sprintf("; and %d more", len(failing)-show)
			failing = failing[:show]
		}
		j.Reason = fmt.Sprintf("candidate %s is worse than baseline %s (%d segment(s) regressed, %s, %s, α %g anytime-valid): %s%s",
			j.Candidate, j.Baseline, j.SegmentRegressions, j.Window, j.Design, cfg.Alpha, strings.Join(failing, "; "), more)
	case !haveCand:
		j.Decision, j.Reason = Inconclusive, missing("candidate", j.Candidate)
	case !haveBase:
		j.Decision, j.Reason = Inconclusive, missing("baseline", j.Baseline)
	case len(j.Waiting) > 0:
		j.Decision = Inconclusive
		more := ""
		waiting := j.Waiting
		if len(waiting) > show {
			more = fmt.Sprintf("; and %d more", len(waiting)-show)
			waiting = waiting[:show]
		}
		j.Reason = fmt.Sprintf("not yet shown non-inferior (%d of %d required segment(s) passed, %s, %s): %s%s",
			j.SegmentsPassed, j.SegmentsRequired, j.Window, j.Design, strings.Join(waiting, "; "), more)
	default:
		j.Decision = Pass
		j.Reason = fmt.Sprintf("candidate %s is shown not worse than %s beyond tolerance (%s %g overall, %g in segments) overall and in %d required segment(s) (%s, %s, β %g, α %g anytime-valid)",
			j.Candidate, j.Baseline, metricsText(cfg.PassMetrics), cfg.RecallTolerance, cfg.SegmentRecallTolerance,
			j.SegmentsRequired, j.Window, j.Design, cfg.Beta, cfg.Alpha)
	}
}

func metricsText(ms []Metric) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, "+")
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func ptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
