package deploy

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/verdictml/verdict/judge"
)

// Gate is the shadow-stage gate: what the shadow comparison must show before the
// candidate that ran as the shadow may take traffic (`deploy promote-shadow`, and
// `deploy apply -stage shift` of a rollout with a shadow stage). It reads verdict's
// judgement of the candidate against production over the shadow stage: the judge's
// decision on whatever labels exist (paired: both models scored the same requests),
// and the label-free signals in every scope (overall and each segment) with enough
// predictions. docs/deploy.md explains the defaults.
type Gate struct {
	// Baseline and Candidate are verdict's variant ids of the production model and
	// the shadow (default: the alarm spec's baseline.variant and candidate.variant).
	Baseline  string `yaml:"baseline"`
	Candidate string `yaml:"candidate"`
	// Since starts the comparison period (the shadow stage's start); empty: the
	// candidate's first prediction.
	Since *time.Time `yaml:"since"`
	// Require is what the judge's decision must be: no-fail (default: a fail blocks,
	// inconclusive does not) or pass (only a pass promotes).
	Require string `yaml:"require"`
	// MinPredictions is the fewest predictions each variant needs in a scope before
	// its label-free limits apply. Default 1000.
	MinPredictions int64 `yaml:"min_predictions"`
	// MaxFlagRateDrop and MaxFlagRateRise bound the candidate's flag rate relative
	// to the baseline's in every scope: 1 − candidate/baseline and candidate/baseline
	// − 1. A breach counts only when the difference is significant too (paired: the
	// judge's McNemar test on the inferences only one model flagged; unpaired: its
	// flag-rate test). Defaults 0.3 and 0.5.
	MaxFlagRateDrop Limit `yaml:"max_flag_rate_drop"`
	MaxFlagRateRise Limit `yaml:"max_flag_rate_rise"`
	// MaxPSI bounds the score distribution's shift (PSI of the candidate's scores
	// against the baseline's) in every scope. Default 0.25.
	MaxPSI Limit `yaml:"max_psi"`
	// MaxDiscordance bounds the share of paired inferences exactly one model flagged.
	// Default none.
	MaxDiscordance Limit `yaml:"max_discordance"`
}

// Limit is an optional gate limit: a number, or "none" for no limit. Unset means
// the default.
type Limit struct {
	set, none bool
	v         float64
}

// LimitOf is the limit v.
func LimitOf(v float64) Limit { return Limit{set: true, v: v} }

// NoLimit is the limit "none".
func NoLimit() Limit { return Limit{set: true, none: true} }

// Value is the limit and whether there is one.
func (l Limit) Value() (float64, bool) { return l.v, l.set && !l.none }

// UnmarshalYAML reads a number or "none".
func (l *Limit) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Value == "none" {
		*l = NoLimit()
		return nil
	}
	var v float64
	if err := n.Decode(&v); err != nil {
		return fmt.Errorf("line %d: want a number or none, got %q", n.Line, n.Value)
	}
	*l = LimitOf(v)
	return nil
}

// MarshalYAML writes the limit back.
func (l Limit) MarshalYAML() (any, error) {
	switch {
	case !l.set:
		return nil, nil
	case l.none:
		return "none", nil
	}
	return l.v, nil
}

func (l Limit) String() string {
	if v, ok := l.Value(); ok {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return "none"
}

// Gate requirements on the judge's decision.
const (
	RequireNoFail = "no-fail"
	RequirePass   = "pass"
)

// Gate defaults (docs/deploy.md, "The shadow-stage gate").
const (
	DefaultGateMinPredictions  = 1000
	DefaultGateMaxFlagRateDrop = 0.3
	DefaultGateMaxFlagRateRise = 0.5
	DefaultGateMaxPSI          = 0.25
)

func (g *Gate) applyDefaults() {
	if g.Require == "" {
		g.Require = RequireNoFail
	}
	if g.MinPredictions == 0 {
		g.MinPredictions = DefaultGateMinPredictions
	}
	def := func(l *Limit, v float64, none bool) {
		if !l.set {
			*l = Limit{set: true, v: v, none: none}
		}
	}
	def(&g.MaxFlagRateDrop, DefaultGateMaxFlagRateDrop, false)
	def(&g.MaxFlagRateRise, DefaultGateMaxFlagRateRise, false)
	def(&g.MaxPSI, DefaultGateMaxPSI, false)
	def(&g.MaxDiscordance, 0, true)
}

// validate names every field of the gate that is wrong.
func (g *Gate) validate(field string) []error {
	var errs []error
	bad := func(f, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", field, f, fmt.Sprintf(format, args...)))
	}
	switch {
	case g.Baseline == "":
		bad("baseline", "is required (verdict's variant id of the production model), or set baseline.variant in the alarm spec of alarms.from_spec")
	case g.Candidate == "":
		bad("candidate", "is required (verdict's variant id of the shadow), or set candidate.variant in the alarm spec of alarms.from_spec")
	case g.Baseline == g.Candidate:
		bad("candidate", "%q is also the baseline", g.Candidate)
	}
	if g.Require != RequireNoFail && g.Require != RequirePass {
		bad("require", "%q must be no-fail or pass", g.Require)
	}
	if g.MinPredictions < 1 {
		bad("min_predictions", "%d must be at least 1", g.MinPredictions)
	}
	for _, l := range []struct {
		name string
		l    Limit
		max  float64
	}{{"max_flag_rate_drop", g.MaxFlagRateDrop, 1}, {"max_flag_rate_rise", g.MaxFlagRateRise, math.Inf(1)},
		{"max_psi", g.MaxPSI, math.Inf(1)}, {"max_discordance", g.MaxDiscordance, 1}} {
		if v, ok := l.l.Value(); ok && (math.IsNaN(v) || v <= 0 || v > l.max) {
			if l.max == 1 {
				bad(l.name, "%v must be in (0, 1], or none", v)
			} else {
				bad(l.name, "%v must be positive, or none", v)
			}
		}
	}
	return errs
}

// Limits a gate applies, as named in a GateBreach.
const (
	LimitJudge          = "judge"
	LimitFlagRateDrop   = "max_flag_rate_drop"
	LimitFlagRateRise   = "max_flag_rate_rise"
	LimitPSI            = "max_psi"
	LimitDiscordance    = "max_discordance"
	LimitMinPredictions = "min_predictions"
	scopeOverallDisplay = "overall"
)

// GateBreach is one reason the gate blocks.
type GateBreach struct {
	// Scope is "overall" or the segment ("merchant_category=electronics").
	Scope string `json:"scope"`
	// Limit names the spec field breached (or "judge" for the judge's decision).
	Limit string `json:"limit"`
	// Value and Threshold are the measured value and the limit (not for the judge).
	Value     float64 `json:"value,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
	// Detail gives the numbers behind it.
	Detail string `json:"detail"`
	// excess orders breaches: how far beyond its limit, relative.
	excess float64
}

// GateResult is the gate's answer on one judgement.
type GateResult struct {
	// Open reports that promotion may go ahead.
	Open      bool   `json:"open"`
	Baseline  string `json:"baseline"`
	Candidate string `json:"candidate"`
	// Decision and Reason are the judge's.
	Decision judge.Decision `json:"decision"`
	Reason   string         `json:"reason"`
	Design   judge.Design   `json:"design"`
	// Period is the judged range.
	Window      string     `json:"window"`
	WindowStart *time.Time `json:"window_start,omitempty"`
	WindowEnd   time.Time  `json:"window_end"`
	// Breaches lists what blocks, the judge first, then the label-free limits by
	// how far beyond their limit.
	Breaches []GateBreach `json:"breaches"`
	// Checked counts the scopes with enough predictions for the label-free limits,
	// of Scopes.
	Checked int `json:"scopes_checked"`
	Scopes  int `json:"scopes"`
	// Notes say what the gate could not check and why.
	Notes []string `json:"notes"`
	// Overridden is the reason given to promote although the gate blocked.
	Overridden string `json:"overridden,omitempty"`
}

// ErrGateBlocked is returned (wrapped) when the shadow gate refuses promotion.
var ErrGateBlocked = errors.New("shadow gate blocked the promotion")

// Admit is the promote flow's decision: the gate's answer on j, and nil when the
// promotion may go ahead — the gate is open, or it is blocked and override gives the
// reason it is promoted anyway (recorded in the result). A blocked gate without an
// override is an error wrapping ErrGateBlocked that names what blocked.
func (g Gate) Admit(j judge.Judgement, override string) (GateResult, error) {
	r, err := g.Check(j)
	if err != nil {
		return r, err
	}
	if r.Open {
		return r, nil
	}
	if override = strings.TrimSpace(override); override != "" {
		r.Overridden = override
		return r, nil
	}
	return r, fmt.Errorf("%w: %s", ErrGateBlocked, r.Summary())
}

// Describe says in one line what the gate checks, for plans.
func (g Gate) Describe() string {
	var lim []string
	add := func(l Limit, format string, scale float64) {
		if v, ok := l.Value(); ok {
			lim = append(lim, fmt.Sprintf(format, v*scale))
		}
	}
	add(g.MaxFlagRateDrop, "flag-rate drop <= %g%%", 100)
	add(g.MaxFlagRateRise, "flag-rate rise <= %g%%", 100)
	add(g.MaxPSI, "score PSI <= %g", 1)
	add(g.MaxDiscordance, "disagreement <= %g%% of paired inferences", 100)
	judged := "the judge must not fail"
	if g.Require == RequirePass {
		judged = "the judge must pass"
	}
	free := "no label-free limits"
	if len(lim) > 0 {
		free = fmt.Sprintf("in every scope with %d+ predictions of each: %s", g.MinPredictions, strings.Join(lim, ", "))
	}
	since := "since its first prediction"
	if g.Since != nil {
		since = "since " + g.Since.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("shadow gate: %s vs %s %s; %s; %s", g.Candidate, g.Baseline, since, judged, free)
}

// Check applies the gate to a judgement of its candidate against its baseline.
func (g Gate) Check(j judge.Judgement) (GateResult, error) {
	if j.Baseline != g.Baseline || j.Candidate != g.Candidate {
		return GateResult{}, fmt.Errorf("deploy: shadow gate of %s vs %s given a judgement of %s vs %s", g.Candidate, g.Baseline, j.Candidate, j.Baseline)
	}
	r := GateResult{Baseline: g.Baseline, Candidate: g.Candidate, Decision: j.Decision, Reason: j.Reason, Design: j.Design,
		Window: j.Window, WindowStart: j.WindowStart, WindowEnd: j.WindowEnd, Breaches: []GateBreach{}, Notes: []string{}}
	switch {
	case j.Decision == judge.Fail:
		r.Breaches = append(r.Breaches, GateBreach{Scope: scopeOverallDisplay, Limit: LimitJudge, Detail: "judge: fail: " + j.Reason, excess: math.Inf(1)})
	case j.Decision != judge.Pass && g.Require == RequirePass:
		r.Breaches = append(r.Breaches, GateBreach{Scope: scopeOverallDisplay, Limit: LimitJudge,
			Detail: fmt.Sprintf("judge: %s, and require is pass: %s", j.Decision, j.Reason), excess: math.Inf(1)})
	}
	if j.Decision == judge.Inconclusive && g.Require == RequireNoFail {
		r.Notes = append(r.Notes, "the judge is inconclusive on the labels so far; require: no-fail lets that through (the shift's alarms watch the label-free signals)")
	}
	var free []GateBreach
	for _, s := range append([]judge.ScopeJudgement{j.Overall}, j.Segments...) {
		r.Scopes++
		b, c := s.FlagRate.Baseline.N, s.FlagRate.Candidate.N
		if min(b, c) < g.MinPredictions {
			continue
		}
		r.Checked++
		free = append(free, g.scopeBreaches(s, j.Design)...)
	}
	slices.SortStableFunc(free, func(a, b GateBreach) int { return cmp.Compare(b.excess, a.excess) })
	r.Breaches = append(r.Breaches, free...)
	if r.Checked == 0 {
		// Nothing checked is no evidence: a misspelt variant, a shadow stage that
		// never ran, or one too short for even the overall scope.
		o := j.Overall.FlagRate
		r.Breaches = append(r.Breaches, GateBreach{Scope: scopeOverallDisplay, Limit: LimitMinPredictions, Value: float64(min(o.Baseline.N, o.Candidate.N)),
			Threshold: float64(g.MinPredictions), Detail: fmt.Sprintf("the shadow stage holds %d predictions of %s and %d of %s, fewer than min_predictions %d: the gate could check nothing (%s)",
				o.Baseline.N, g.Baseline, o.Candidate.N, g.Candidate, g.MinPredictions, j.Reason)})
	}
	if skipped := r.Scopes - r.Checked; skipped > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d of %d scopes have fewer than %d predictions of a variant (min_predictions): their label-free limits are not checked",
			skipped, r.Scopes, g.MinPredictions))
	}
	r.Open = len(r.Breaches) == 0
	return r, nil
}

// scopeBreaches applies the label-free limits to one scope with enough predictions.
func (g Gate) scopeBreaches(s judge.ScopeJudgement, design judge.Design) []GateBreach {
	var out []GateBreach
	scope := s.Scope.String()
	fr := s.FlagRate
	if fb, fc := fr.Baseline.Value, fr.Candidate.Value; fb != nil && fc != nil && *fb > 0 {
		ratio := *fc / *fb
		significant, evidence := flagRateEvidence(s, design)
		rates := fmt.Sprintf("flag rate %s → %s", fraction(*fb), fraction(*fc))
		if lim, ok := g.MaxFlagRateDrop.Value(); ok && 1-ratio > lim && significant {
			out = append(out, GateBreach{Scope: scope, Limit: LimitFlagRateDrop, Value: 1 - ratio, Threshold: lim, excess: (1 - ratio) / lim,
				Detail: fmt.Sprintf("%s (%.0f%% fewer flags, limit %.0f%%; %s)", rates, 100*(1-ratio), 100*lim, evidence)})
		}
		if lim, ok := g.MaxFlagRateRise.Value(); ok && ratio-1 > lim && significant {
			out = append(out, GateBreach{Scope: scope, Limit: LimitFlagRateRise, Value: ratio - 1, Threshold: lim, excess: (ratio - 1) / lim,
				Detail: fmt.Sprintf("%s (%.0f%% more flags, limit %.0f%%; %s)", rates, 100*(ratio-1), 100*lim, evidence)})
		}
	}
	if lim, ok := g.MaxPSI.Value(); ok && s.Score.PSI != nil && *s.Score.PSI > lim {
		out = append(out, GateBreach{Scope: scope, Limit: LimitPSI, Value: *s.Score.PSI, Threshold: lim, excess: *s.Score.PSI / lim,
			Detail: fmt.Sprintf("score PSI %.3f (limit %g; mean score %s → %s; %d and %d predictions)", *s.Score.PSI, lim,
				fmtOpt(s.Score.BaselineMean), fmtOpt(s.Score.CandidateMean), fr.Baseline.N, fr.Candidate.N)})
	}
	if d := s.Discordance; d != nil && d.Rate != nil {
		if lim, ok := g.MaxDiscordance.Value(); ok && *d.Rate > lim {
			out = append(out, GateBreach{Scope: scope, Limit: LimitDiscordance, Value: *d.Rate, Threshold: lim, excess: *d.Rate / lim,
				Detail: fmt.Sprintf("the models disagree on %s of %d paired inferences (limit %s): only the baseline flagged %d, only the candidate %d",
					fraction(*d.Rate), d.Pairs, fraction(lim), d.OnlyBaseline, d.OnlyCandidate)})
		}
	}
	return out
}

// flagRateEvidence is whether the scope's flag-rate difference is significant, and
// the numbers that say so: paired, the judge's two-sided sequential McNemar test on
// the inferences only one model flagged; unpaired, its Holm-adjusted flag-rate test.
func flagRateEvidence(s judge.ScopeJudgement, design judge.Design) (bool, string) {
	if d := s.Discordance; design == judge.Paired && d != nil && d.PValue != nil {
		return d.Level == judge.LevelWarn, fmt.Sprintf("of %d paired inferences only the baseline flagged %d, only the candidate %d; McNemar p %s",
			d.Pairs, d.OnlyBaseline, d.OnlyCandidate, pValue(*d.PValue))
	}
	f := s.FlagRate
	if f.AdjustedPValue == nil {
		return false, "not tested"
	}
	return f.Level == judge.LevelWarn, fmt.Sprintf("%d and %d predictions; adjusted p %s", f.Baseline.N, f.Candidate.N, pValue(*f.AdjustedPValue))
}

// pValue prints a p-value; one that underflowed to 0 is below the smallest double.
func pValue(p float64) string {
	if p <= 0 {
		return "< 1e-300"
	}
	return strconv.FormatFloat(p, 'g', 2, 64)
}

func fraction(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }

func fmtOpt(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 3, 64)
}

// Write prints the gate's answer for a person: the decision, the breaches (segment,
// limit and numbers) and the notes.
func (r GateResult) Write(out io.Writer) error {
	var b strings.Builder
	period := r.Window
	if r.WindowStart != nil {
		period = fmt.Sprintf("%s to %s", r.WindowStart.UTC().Format(time.RFC3339), r.WindowEnd.UTC().Format(time.RFC3339))
	}
	state := "OPEN"
	switch {
	case !r.Open && r.Overridden != "":
		state = "BLOCKED, OVERRIDDEN"
	case !r.Open:
		state = "BLOCKED"
	}
	fmt.Fprintf(&b, "shadow gate %s: candidate %s vs baseline %s over %s (%s); judge: %s\n", state, r.Candidate, r.Baseline, period, r.Design, r.Decision)
	fmt.Fprintf(&b, "  label-free limits checked in %d of %d scopes\n", r.Checked, r.Scopes)
	for _, br := range r.Breaches {
		if br.Limit == LimitJudge {
			fmt.Fprintf(&b, "  %s\n", br.Detail)
			continue
		}
		fmt.Fprintf(&b, "  %s  %s: %s\n", br.Scope, br.Limit, br.Detail)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	if r.Overridden != "" {
		fmt.Fprintf(&b, "  promoted anyway: %s\n", r.Overridden)
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// Summary is one line naming what blocked: the first breaches' scopes and limits.
func (r GateResult) Summary() string {
	if r.Open {
		return "shadow gate open"
	}
	var parts []string
	for i, br := range r.Breaches {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(r.Breaches)-3))
			break
		}
		if br.Limit == LimitJudge {
			parts = append(parts, "judge "+string(r.Decision))
			continue
		}
		parts = append(parts, br.Scope+" "+br.Limit)
	}
	return "shadow gate blocked: " + strings.Join(parts, ", ")
}
