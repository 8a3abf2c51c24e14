package judge

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The reference values below were computed independently (Python's math.lgamma and
// a brute-force grid of 200,001 points for the null's maximum), not by this code.
func TestEValuesMatchHandComputedValues(t *testing.T) {
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		// Sequential exact McNemar, 15 discordant pairs against 3: B(15.5, 3.5)/B(½, ½)·2¹⁸.
		{"McNemar b=15 c=3", mcNemarLogE(15, 3), 2.6743622496592447},
		{"McNemar with the candidate ahead is no evidence", mcNemarLogE(3, 15), math.Min(0, mcNemarLogE(3, 15))},
		{"two-sample, worse at all: 90/100 vs 60/100", logE(twoSample{90, 100, 60, 100}, atMost, 0), 7.592782066042503},
		{"two-sample, within 0.1: 90/100 vs 88/100", logE(twoSample{90, 100, 88, 100}, atLeast, 0.1), -3.505095465986301},
		{"paired, within 0.05: b=6 c=4 of 200", logE(pairedSample{6, 4, 200}, atLeast, 0.05), -2.775456351626943},
		{"paired, worse by more than 0.1: b=30 c=5 of 100", logE(pairedSample{30, 5, 100}, atMost, 0.1), -0.7974207993649287},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if math.Abs(tc.got-tc.want) > 1e-6 {
				t.Errorf("log e = %.10f, want %.10f", tc.got, tc.want)
			}
		})
	}
	if v := mcNemarLogE(3, 15); v > 0 {
		t.Errorf("McNemar with the candidate ahead: log e %v > 0", v)
	}
}

func TestBoundsAndScaleAgreeWithTheTests(t *testing.T) {
	s := twoSample{180, 200, 150, 200} // 0.90 vs 0.75
	const level = 0.05
	u, l := upperBound(s, level), lowerBound(s, level)
	if !(l < 0.15 && 0.15 < u) {
		t.Fatalf("bounds [%v, %v] do not contain the estimate 0.15", l, u)
	}
	thr := -math.Log(level)
	// Just outside the bounds the nulls are rejected, just inside they are not.
	if logE(s, atLeast, u+1e-3) < thr || logE(s, atLeast, u-1e-3) >= thr {
		t.Errorf("upper bound %v is not where the null θ ≥ θ0 starts to be rejected", u)
	}
	if logE(s, atMost, l-1e-3) < thr || logE(s, atMost, l+1e-3) >= thr {
		t.Errorf("lower bound %v is not where the null θ ≤ θ0 starts to be rejected", l)
	}
	k := scaleToReject(pairedSample{5, 5, 200}, atLeast, 0.05, level)
	if math.IsInf(k, 1) || k <= 1 {
		t.Fatalf("scale to show non-inferiority: %v", k)
	}
	if logE(pairedSample{5 * k, 5 * k, 200 * k}, atLeast, 0.05) < thr || logE(pairedSample{5 * k * 0.99, 5 * k * 0.99, 200 * k * 0.99}, atLeast, 0.05) >= thr {
		t.Errorf("scale %v is not where the evidence crosses", k)
	}
	if k := scaleToReject(pairedSample{20, 5, 200}, atLeast, 0.05, level); !math.IsInf(k, 1) {
		t.Errorf("estimate 0.075 can never show θ < 0.05, got scale %v", k)
	}
}

// TestEValuesAreAnytimeValid follows many null paths label by label and counts how
// often the e-value ever reaches 1/α. Ville's inequality bounds that by α at any
// number of looks; here every sample size is a look (the most a gate could ask).
func TestEValuesAreAnytimeValid(t *testing.T) {
	const (
		paths = 2000
		steps = 400
		alpha = 0.05
	)
	thr := -math.Log(alpha)
	// twoSampleRun adds one inference to each arm a step, a success with
	// probability pb (baseline) and pc (candidate); true when "dir θ0" is rejected
	// at some step.
	twoSampleRun := func(pb, pc float64, dir direction, theta0 float64) func(rng *rand.Rand) bool {
		return func(rng *rand.Rand) bool {
			var s twoSample
			for range steps {
				s.nb++
				s.nc++
				if rng.Float64() < pb {
					s.xb++
				}
				if rng.Float64() < pc {
					s.xc++
				}
				if logE(s, dir, theta0) >= thr {
					return true
				}
			}
			return false
		}
	}
	cases := []struct {
		name string
		run  func(rng *rand.Rand) bool
	}{
		{"two-sample at the boundary θ = 0", twoSampleRun(0.8, 0.8, atMost, 0)},
		{"two-sample non-inferiority at the boundary θ = 0.1", twoSampleRun(0.85, 0.75, atLeast, 0.1)},
		{"paired non-inferiority at the boundary θ = 0.05", func(rng *rand.Rand) bool {
			var s pairedSample
			for range steps {
				s.n++
				switch u := rng.Float64(); {
				case u < 0.08:
					s.b++
				case u < 0.11:
					s.c++
				}
				if logE(s, atLeast, 0.05) >= thr {
					return true
				}
			}
			return false
		}},
		{"McNemar at π = ½", func(rng *rand.Rand) bool {
			var b, c float64
			for range steps {
				if rng.IntN(2) == 0 {
					b++
				} else {
					c++
				}
				if mcNemarLogE(b, c) >= thr {
					return true
				}
			}
			return false
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 11))
			rejected := 0
			for range paths {
				if tc.run(rng) {
					rejected++
				}
			}
			// α·paths = 100 expected at most; 3 binomial standard deviations of slack.
			limit := alpha*paths + 3*math.Sqrt(paths*alpha*(1-alpha))
			t.Logf("%d of %d null paths ever rejected (α·N = %.0f)", rejected, paths, alpha*paths)
			if float64(rejected) > limit {
				t.Errorf("%d of %d null paths rejected at some look, more than %.0f", rejected, paths, limit)
			}
		})
	}
}
