package deploy

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// scope is one scope of a paired shadow stage: n inferences both models scored,
// both/onlyB/onlyC of them flagged by both, only the baseline (v5), only the
// candidate (v6); posB and posC are labeled positives only one of them caught.
type scope struct {
	segment               string
	n, both, onlyB, onlyC int64
	posB, posC, posBoth   int64
	// posNone is labeled positives neither model flagged (a miss for both).
	posNone            int64
	baseBins, candBins []int64
}

// shadowSnapshot is the windows' snapshot of a shadow stage made of scopes (the
// overall scope is their sum); flagged predictions score in the top bin and the
// others in the bottom one unless bins are given.
func shadowSnapshot(scopes ...scope) window.Snapshot {
	snap := window.Snapshot{Period: true, Start: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 5, 2, 0, 0, 0, time.UTC)}
	var total [2]tally.Counts
	var totalPair tally.PairCounts
	for _, s := range scopes {
		key := func(v string) tally.Key {
			return tally.Key{Variant: v, SegmentKey: "merchant_category", Segment: s.segment}
		}
		for i, v := range []string{"v5", "v6"} {
			flagged := s.both + s.onlyB
			if i == 1 {
				flagged = s.both + s.onlyC
			}
			c := tally.Counts{Predictions: s.n, Flagged: flagged}
			bins := s.baseBins
			if i == 1 {
				bins = s.candBins
			}
			if bins != nil {
				copy(c.Bins[:], bins)
			} else {
				c.Bins[9], c.Bins[0] = flagged, s.n-flagged
			}
			// Labeled positives: each model's catches are TP, its misses FN.
			caught, missed := s.posBoth+s.posB, s.posC+s.posNone
			if i == 1 {
				caught, missed = s.posBoth+s.posC, s.posB+s.posNone
			}
			c.TP, c.FN = caught, missed
			snap.Rows = append(snap.Rows, window.Row{Key: key(v), Counts: c, Stats: window.Derive(c)})
			total[i].Add(c)
		}
		var p tally.PairCounts
		p[tally.ClassPositive][tally.Both], p[tally.ClassPositive][tally.OnlyFirst], p[tally.ClassPositive][tally.OnlySecond] = s.posBoth, s.posB, s.posC
		p[tally.ClassPositive][tally.Neither] = s.posNone
		p[tally.ClassPending][tally.Both] = s.both - s.posBoth
		p[tally.ClassPending][tally.OnlyFirst] = s.onlyB - s.posB
		p[tally.ClassPending][tally.OnlySecond] = s.onlyC - s.posC
		p[tally.ClassPending][tally.Neither] = s.n - s.both - s.onlyB - s.onlyC - s.posNone
		snap.Pairs = append(snap.Pairs, window.PairRow{Key: tally.Key{Variant: "v5", Versus: "v6", SegmentKey: "merchant_category", Segment: s.segment}, Counts: p})
		for c := range p {
			for a := range p[c] {
				totalPair[c][a] += p[c][a]
			}
		}
	}
	for i, v := range []string{"v5", "v6"} {
		snap.Rows = append(snap.Rows, window.Row{Key: tally.Key{Variant: v}, Counts: total[i], Stats: window.Derive(total[i])})
	}
	snap.Pairs = append(snap.Pairs, window.PairRow{Key: tally.Key{Variant: "v5", Versus: "v6"}, Counts: totalPair})
	return snap
}

// clean is a segment where both models flag about the same requests.
func clean(segment string, n int64) scope {
	f := n / 20
	return scope{segment: segment, n: n, both: f - f/10, onlyB: f / 10, onlyC: f / 10}
}

func defaultGate(t *testing.T) Gate {
	t.Helper()
	r, err := ParseRollout([]byte(`
endpoint: fraud-detector
production: {variant: AllTraffic, model: fraud-model-v5, instance_type: ml.c5.xlarge, instance_count: 4}
candidate: {model: fraud-model-v6, endpoint_config: fraud-detector-v6}
shadow:
  endpoint_config: fraud-detector-v6-shadow
  variant: shadow-v6
  gate: {baseline: v5, candidate: v6}
traffic: {type: LINEAR, step: {instance_count: 1}, wait_interval: 5m, termination_wait: 10m, max_execution_timeout: 2h}
alarms: {names: [a]}
`))
	if err != nil {
		t.Fatal(err)
	}
	return *r.ShadowGate()
}

func check(t *testing.T, g Gate, snap window.Snapshot) GateResult {
	t.Helper()
	j, err := judge.Judge(snap, "v5", "v6", judge.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.Check(j)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func limits(r GateResult) []string {
	var out []string
	for _, b := range r.Breaches {
		out = append(out, b.Scope+" "+b.Limit)
	}
	return out
}

func TestShadowGate(t *testing.T) {
	// electronics: the candidate flags 6 % where production flags 16 %, on 17,000
	// shadow inferences (the recording); its fraud scores moved down.
	regressed := scope{segment: "electronics", n: 17000, both: 900, onlyB: 1820, onlyC: 120,
		baseBins: []int64{9000, 3000, 1500, 600, 300, 200, 300, 500, 800, 800},
		candBins: []int64{9000, 3000, 1700, 1300, 900, 500, 200, 150, 150, 100}}
	cases := []struct {
		name   string
		edit   func(g *Gate)
		scopes []scope
		open   bool
		want   []string // breached scope and limit, in order
		note   string
	}{
		{"a clean candidate is let through", nil,
			[]scope{clean("grocery", 40000), clean("travel", 20000), clean("electronics", 17000)}, true, nil,
			"the judge is inconclusive"},
		{"the regressed category is named with its flag rate and PSI", nil,
			[]scope{clean("grocery", 40000), clean("travel", 20000), regressed}, false,
			[]string{"merchant_category=electronics max_flag_rate_drop", "merchant_category=electronics max_psi"}, ""},
		{"below min_predictions the label-free limits are not checked", func(g *Gate) { g.MinPredictions = 20000 },
			[]scope{clean("grocery", 40000), clean("travel", 20000), regressed}, true, nil,
			"fewer than 20000 predictions"},
		{"a drop beyond the limit that is not significant does not block",
			nil, []scope{clean("grocery", 40000), {segment: "fuel", n: 1200, both: 18, onlyB: 14, onlyC: 4}}, true, nil, ""},
		{"limits set to none do not block", func(g *Gate) { g.MaxFlagRateDrop, g.MaxPSI = NoLimit(), NoLimit() },
			[]scope{clean("grocery", 40000), regressed}, true, nil, ""},
		{"a rise beyond its limit blocks", nil,
			[]scope{clean("grocery", 40000), {segment: "travel", n: 20000, both: 1000, onlyB: 50, onlyC: 900}}, false,
			[]string{"merchant_category=travel max_flag_rate_rise"}, ""},
		{"discordance beyond its limit blocks once set", func(g *Gate) { g.MaxDiscordance = LimitOf(0.02) },
			[]scope{clean("grocery", 40000), {segment: "travel", n: 20000, both: 500, onlyB: 400, onlyC: 400}}, false,
			[]string{"merchant_category=travel max_discordance"}, ""},
		{"a judge fail blocks whatever the label-free signals", nil,
			[]scope{clean("grocery", 40000), {segment: "electronics", n: 17000, both: 800, onlyB: 60, onlyC: 60, posBoth: 10, posB: 40}}, false,
			[]string{"overall judge"}, ""},
		{"require pass blocks an inconclusive judge", func(g *Gate) { g.Require = RequirePass },
			[]scope{clean("grocery", 40000)}, false, []string{"overall judge"}, ""},
		{"a shadow stage too short for any scope blocks: nothing was checked", nil,
			[]scope{clean("grocery", 600), clean("travel", 300)}, false, []string{"overall min_predictions"}, "the gate could check nothing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := defaultGate(t)
			if tc.edit != nil {
				tc.edit(&g)
			}
			r := check(t, g, shadowSnapshot(tc.scopes...))
			var out bytes.Buffer
			if err := r.Write(&out); err != nil {
				t.Fatal(err)
			}
			if r.Open != tc.open || strings.Join(limits(r), ", ") != strings.Join(tc.want, ", ") {
				t.Errorf("open %v breaches %v, want %v %v\n%s", r.Open, limits(r), tc.open, tc.want, out.String())
			}
			if tc.note != "" && !strings.Contains(out.String(), tc.note) {
				t.Errorf("output does not say %q:\n%s", tc.note, out.String())
			}
		})
	}
}

func TestShadowGateNamesTheNumbers(t *testing.T) {
	regressed := scope{segment: "electronics", n: 17000, both: 900, onlyB: 1820, onlyC: 120}
	r := check(t, defaultGate(t), shadowSnapshot(clean("grocery", 40000), regressed))
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"shadow gate BLOCKED: candidate v6 vs baseline v5 over 2026-01-05T00:00:00Z to 2026-01-05T02:00:00Z (paired)",
		"merchant_category=electronics  max_flag_rate_drop: flag rate 16.0% → 6.0% (62% fewer flags, limit 30%; of 17000 paired inferences only the baseline flagged 1820, only the candidate 120",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if got := r.Summary(); !strings.Contains(got, "merchant_category=electronics max_flag_rate_drop") {
		t.Errorf("summary %q does not name the segment and limit", got)
	}
}

func TestShadowGateBlocksACandidateWithoutData(t *testing.T) {
	// The gate names v7, the shadow stage holds v6: the judge is inconclusive ("no
	// data for candidate"), which must not open the gate.
	j, err := judge.Judge(shadowSnapshot(clean("grocery", 40000)), "v5", "v7", judge.Config{})
	if err != nil {
		t.Fatal(err)
	}
	g := defaultGate(t)
	g.Candidate = "v7"
	r, err := g.Check(j)
	if err != nil {
		t.Fatal(err)
	}
	if r.Open || len(r.Breaches) != 1 || r.Breaches[0].Limit != LimitMinPredictions || !strings.Contains(r.Breaches[0].Detail, `no data for candidate "v7"`) {
		t.Errorf("open %v, breaches %+v; want blocked on min_predictions, saying v7 has no data", r.Open, r.Breaches)
	}
}

func TestShadowGateRefusesAJudgementOfOtherVariants(t *testing.T) {
	j, err := judge.Judge(shadowSnapshot(clean("grocery", 4000)), "v5", "v6", judge.Config{})
	if err != nil {
		t.Fatal(err)
	}
	g := defaultGate(t)
	g.Candidate = "v7"
	if _, err := g.Check(j); err == nil {
		t.Error("a gate of v7 must refuse a judgement of v6")
	}
}

func TestShadowGateOnCleanCandidatesOverManySeeds(t *testing.T) {
	// 500 clean shadow stages of 40 inferences/s for 2 hours over six categories
	// (the recording without its regression): both models flag 95 % of the
	// fraud and 1 % of the rest, independently given the truth. The default gate
	// blocks none of them (the flag-rate limit needs a significant difference, and
	// PSI between two histograms of the same requests stays far below 0.25).
	segs := []struct {
		name         string
		weight, rate float64
	}{{"grocery", .36, .02}, {"restaurants", .20, .03}, {"fuel", .15, .04}, {"travel", .15, .08}, {"electronics", .06, .12}, {"digital_goods", .08, .15}}
	blocked := 0
	g := defaultGate(t)
	for seed := range uint64(500) {
		rng := rand.New(rand.NewPCG(seed, 0x6a7e))
		var scopes []scope
		for _, s := range segs {
			n := int64(288000 * s.weight)
			sc := scope{segment: s.name, n: n}
			fraud := binomial(rng, n, s.rate)
			for _, grp := range []struct {
				n int64
				p float64
			}{{fraud, 0.95}, {n - fraud, 0.01}} {
				// Each of the group's inferences is flagged by each model with p,
				// independently: both, only one, or neither.
				both := binomial(rng, grp.n, grp.p*grp.p)
				one := binomial(rng, grp.n-both, 2*grp.p*(1-grp.p)/(1-grp.p*grp.p))
				onlyB := binomial(rng, one, 0.5)
				sc.both, sc.onlyB, sc.onlyC = sc.both+both, sc.onlyB+onlyB, sc.onlyC+one-onlyB
			}
			scopes = append(scopes, sc)
		}
		if r := check(t, g, shadowSnapshot(scopes...)); !r.Open {
			blocked++
			t.Logf("seed %d blocked: %s", seed, r.Summary())
		}
	}
	if blocked > 0 {
		t.Errorf("the default gate blocked %d of 500 clean candidates", blocked)
	}
}

// binomial draws from Binomial(n, p): by geometric waiting times while n·p is
// small, else from the normal approximation (rounded, within [0, n]).
func binomial(rng *rand.Rand, n int64, p float64) int64 {
	switch {
	case n <= 0 || p <= 0:
		return 0
	case p >= 1:
		return n
	case float64(n)*p*(1-p) > 50:
		x := math.Round(float64(n)*p + math.Sqrt(float64(n)*p*(1-p))*rng.NormFloat64())
		return int64(math.Max(0, math.Min(float64(n), x)))
	}
	var x int64
	lq := math.Log1p(-p)
	for pos := int64(0); ; x++ {
		pos += int64(math.Floor(math.Log(1-rng.Float64())/lq)) + 1
		if pos > n {
			return x
		}
	}
}

func TestShadowGateSpec(t *testing.T) {
	spec := func(gate string) string {
		return `
endpoint: fraud-detector
production: {variant: AllTraffic, model: fraud-model-v5, instance_type: ml.c5.xlarge, instance_count: 4}
candidate: {model: fraud-model-v6, endpoint_config: fraud-detector-v6}
shadow:
  endpoint_config: fraud-detector-v6-shadow
  variant: shadow-v6
  gate: ` + gate + `
traffic: {type: LINEAR, step: {instance_count: 1}, wait_interval: 5m, termination_wait: 10m, max_execution_timeout: 2h}
alarms: {names: [a]}
`
	}
	t.Run("defaults and none", func(t *testing.T) {
		r, err := ParseRollout([]byte(spec("{baseline: v5, candidate: v6, max_psi: none, max_flag_rate_drop: 0.4}")))
		if err != nil {
			t.Fatal(err)
		}
		g := r.ShadowGate()
		if _, ok := g.MaxPSI.Value(); ok {
			t.Error("max_psi: none must mean no limit")
		}
		if v, ok := g.MaxFlagRateDrop.Value(); !ok || v != 0.4 {
			t.Errorf("max_flag_rate_drop = %v, %v; want 0.4", v, ok)
		}
		if v, ok := g.MaxFlagRateRise.Value(); !ok || v != DefaultGateMaxFlagRateRise || g.Require != RequireNoFail || g.MinPredictions != DefaultGateMinPredictions {
			t.Errorf("defaults not applied: %+v", g)
		}
		if _, ok := g.MaxDiscordance.Value(); ok {
			t.Error("max_discordance has no limit by default")
		}
	})
	for _, tc := range []struct{ gate, wantErr string }{
		{"{baseline: v5, candidate: v6, require: maybe}", `shadow.gate.require: "maybe" must be no-fail or pass`},
		{"{baseline: v5, candidate: v6, max_psi: -1}", "shadow.gate.max_psi: -1 must be positive, or none"},
		{"{baseline: v5, candidate: v6, max_flag_rate_drop: 1.5}", "shadow.gate.max_flag_rate_drop: 1.5 must be in (0, 1], or none"},
		{"{baseline: v5, candidate: v6, max_psi: lots}", `want a number or none, got "lots"`},
		{"{baseline: v5, candidate: v6, min_predictions: -3}", "shadow.gate.min_predictions: -3 must be at least 1"},
		{"{candidate: v6}", "shadow.gate.baseline: is required"},
		{"{baseline: v6, candidate: v6}", `shadow.gate.candidate: "v6" is also the baseline`},
		{"{baseline: v5, candidate: v6, max_pis: 0.2}", "field max_pis not found"},
	} {
		if _, err := ParseRollout([]byte(spec(tc.gate))); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("gate %s: error %v, want %q", tc.gate, err, tc.wantErr)
		}
	}
	t.Run("the alarm spec names the variants", func(t *testing.T) {
		g := mustRollout(t).ShadowGate()
		if g == nil || g.Baseline != "fraud-v4" || g.Candidate != "fraud-v5" {
			t.Errorf("gate %+v, want fraud-v5 vs fraud-v4 from alarms.from_spec", g)
		}
	})
}

// gateSimSegments is the shadow stage's traffic of TestShadowGateUnderDelayedLabelsAndRepeatedLooks:
// category shares and fraud prevalence (lopsided: 2–15 %).
var gateSimSegments = []struct {
	name         string
	weight, rate float64
}{{"grocery", .36, .02}, {"restaurants", .20, .03}, {"fuel", .15, .04}, {"travel", .15, .08}, {"electronics", .06, .12}, {"digital_goods", .08, .15}}

// shadowStageLooks simulates one two-hour shadow stage at 40 inferences/s cut into
// looks (an operator running promote again and again, or a pipeline polling it), under
// fraud's label reality: a dispute arrives after an exponential delay with a mean of a
// day, so by the end of the stage about 8 % of the fraud is labeled and no negative is
// (negatives resolve by maturity, weeks later). Both models catch 95 % of the fraud
// and flag 1 % of the rest, independently given the truth; regressed, the candidate
// catches only 60 % of the fraud in electronics. It returns the cumulative scopes at
// each look, counted from the simulated events, not from the gate.
func shadowStageLooks(rng *rand.Rand, looks int, regressed bool) [][]scope {
	const perLook = 288000.0                                                // inferences per look over all categories at 12 looks
	labeledBy := func(age float64) float64 { return 1 - math.Exp(-age/24) } // age in hours
	type cells struct{ both, onlyB, onlyC, none int64 }
	// fraud[i][c]: the fraud of category c arriving in slice i, by who caught it, and
	// how much of each cell is labeled so far.
	fraud := make([][]cells, looks)
	labeled := make([][]cells, looks)
	out := make([][]scope, looks)
	cum := make([]scope, len(gateSimSegments))
	for c, sg := range gateSimSegments {
		cum[c].segment = sg.name
	}
	draw := func(n int64, pB, pC float64) cells {
		// Each of n inferences is flagged by each model independently.
		both := binomial(rng, n, pB*pC)
		onlyB := binomial(rng, n-both, pB*(1-pC)/(1-pB*pC))
		onlyC := binomial(rng, n-both-onlyB, (1-pB)*pC/(1-pB*pC-pB*(1-pC)))
		return cells{both, onlyB, onlyC, n - both - onlyB - onlyC}
	}
	sliceHours := 2.0 / float64(looks)
	for look := range looks {
		fraud[look] = make([]cells, len(gateSimSegments))
		labeled[look] = make([]cells, len(gateSimSegments))
		for c, sg := range gateSimSegments {
			n := binomial(rng, int64(perLook*12/float64(looks)), sg.weight)
			f := binomial(rng, n, sg.rate)
			pC := 0.95
			if regressed && sg.name == "electronics" {
				pC = 0.60
			}
			fraud[look][c] = draw(f, 0.95, pC)
			rest := draw(n-f, 0.01, 0.01)
			s := &cum[c]
			s.n += n
			s.both += fraud[look][c].both + rest.both
			s.onlyB += fraud[look][c].onlyB + rest.onlyB
			s.onlyC += fraud[look][c].onlyC + rest.onlyC
		}
		// Labels arriving by this look's end for the fraud of every slice so far:
		// each still-unlabeled inference is labeled now with the conditional chance.
		for i := 0; i <= look; i++ {
			before := labeledBy(float64(look-i) * sliceHours)
			now := labeledBy(float64(look-i+1) * sliceHours)
			p := (now - before) / (1 - before)
			for c := range gateSimSegments {
				f, l := fraud[i][c], &labeled[i][c]
				for _, cell := range []struct{ all, got *int64 }{{&f.both, &l.both}, {&f.onlyB, &l.onlyB}, {&f.onlyC, &l.onlyC}, {&f.none, &l.none}} {
					nl := binomial(rng, *cell.all-*cell.got, p)
					*cell.got += nl
				}
			}
		}
		out[look] = make([]scope, len(cum))
		for c := range cum {
			s := cum[c]
			for i := 0; i <= look; i++ {
				l := labeled[i][c]
				s.posBoth += l.both
				s.posB += l.onlyB
				s.posC += l.onlyC
				s.posNone += l.none
			}
			out[look][c] = s
		}
	}
	return out
}

// TestShadowGateUnderDelayedLabelsAndRepeatedLooks: the default shadow gate over 200
// simulated shadow stages each way, asked at 12 looks (every 10 minutes of the
// two-hour stage, as an operator re-running promote would), with labels arriving a
// day late on average. Clean candidates must almost never be blocked at any look;
// a candidate that lost a third of electronics' fraud must be blocked at the
// stage's end, and the test reports how early.
func TestShadowGateUnderDelayedLabelsAndRepeatedLooks(t *testing.T) {
	const seeds, looks = 200, 12
	g := defaultGate(t)
	var cleanBlockedAny, regBlockedEnd, regOpenedAny, regNamed int
	firstBlocked := map[int]int{}
	for seed := range uint64(seeds) {
		for _, regressed := range []bool{false, true} {
			rng := rand.New(rand.NewPCG(seed, map[bool]uint64{false: 0x5ade, true: 0x5adf}[regressed]))
			var blockedAny, openedAny bool
			first := 0
			var last GateResult
			for look, scopes := range shadowStageLooks(rng, looks, regressed) {
				last = check(t, g, shadowSnapshot(scopes...))
				if last.Open {
					openedAny = true
				} else {
					blockedAny = true
					if first == 0 {
						first = look + 1
					}
				}
			}
			if !regressed {
				if blockedAny {
					cleanBlockedAny++
					t.Logf("clean seed %d blocked first at look %d", seed, first)
				}
				continue
			}
			if openedAny {
				regOpenedAny++
			}
			if !last.Open {
				regBlockedEnd++
				firstBlocked[first]++
				if strings.Contains(last.Summary(), "electronics") {
					regNamed++
				}
			}
		}
	}
	t.Logf("clean: %d of %d stages blocked at some look of %d", cleanBlockedAny, seeds, looks)
	t.Logf("regressed: %d of %d blocked at the stage's end (%d naming electronics), %d open at some look; first blocking look: %v",
		regBlockedEnd, seeds, regNamed, regOpenedAny, firstBlocked)
	// Each look tests the overall flag rate at α = 0.001 and the segments at 0.001
	// over the eligible ones, and the judge fails at α = 0.05 anytime-valid over all
	// looks: at most 12 × 0.002 + 0.05 ≈ 7.4 % of clean stages, if nothing else
	// blocked. Allow α·N + 3σ at that rate.
	rate := looks*0.002 + 0.05
	if limit := rate*seeds + 3*math.Sqrt(seeds*rate*(1-rate)); float64(cleanBlockedAny) > limit {
		t.Errorf("%d of %d clean stages were blocked at some look, more than %.1f", cleanBlockedAny, seeds, limit)
	}
	if regBlockedEnd*100 < seeds*95 {
		t.Errorf("only %d of %d regressed stages were blocked at the stage's end", regBlockedEnd, seeds)
	}
	if regNamed*10 < regBlockedEnd*9 {
		t.Errorf("the block named electronics in only %d of %d", regNamed, regBlockedEnd)
	}
}
