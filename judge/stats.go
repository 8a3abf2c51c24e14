package judge

import (
	"math"
	"slices"

	"github.com/verdictml/verdict/tally"
)

// NormalCDF is the standard normal cumulative distribution function Φ(z).
func NormalCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// ZTest is the result of a two-proportion z-test.
type ZTest struct {
	// Z is (p2 - p1) / SE with the pooled standard error
	// SE = sqrt(p̂(1-p̂)(1/n1 + 1/n2)), p̂ = (x1 + x2) / (n1 + n2).
	Z float64
	// Lower is the one-sided p-value P(Z <= z) for the alternative p2 < p1.
	Lower float64
	// TwoSided is the two-sided p-value P(|Z| >= |z|) for the alternative p2 != p1.
	TwoSided float64
}

// TwoProportionZ tests x2/n2 against x1/n1 with the pooled two-proportion z-test
// (normal approximation). ok is false when either n is zero or a count is out of
// range: the test is undefined there. When the pooled proportion is 0 or 1 both
// samples are identical (all failures or all successes), the standard error is zero,
// and the result is Z = 0 (no evidence of a difference).
func TwoProportionZ(x1, n1, x2, n2 int64) (t ZTest, ok bool) {
	if n1 <= 0 || n2 <= 0 || x1 < 0 || x2 < 0 || x1 > n1 || x2 > n2 {
		return ZTest{}, false
	}
	f1, f2 := float64(n1), float64(n2)
	p1, p2 := float64(x1)/f1, float64(x2)/f2
	pooled := float64(x1+x2) / (f1 + f2)
	se := math.Sqrt(pooled * (1 - pooled) * (1/f1 + 1/f2))
	z := 0.0
	if se > 0 {
		z = (p2 - p1) / se
	}
	return ZTest{Z: z, Lower: NormalCDF(z), TwoSided: math.Min(1, 2*NormalCDF(-math.Abs(z)))}, true
}

// Holm returns Holm's step-down adjusted p-values (Holm 1979) in the order of p:
// sorted ascending p(1) <= ... <= p(m), adj(i) = max over j <= i of
// min(1, (m - j + 1) p(j)). Rejecting every hypothesis whose adjusted p-value is at
// most α controls the family-wise error rate at α under any dependence.
func Holm(p []float64) []float64 {
	m := len(p)
	idx := make([]int, m)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case p[a] < p[b]:
			return -1
		case p[a] > p[b]:
			return 1
		}
		return 0
	})
	adj := make([]float64, m)
	running := 0.0
	for rank, i := range idx {
		v := math.Min(1, float64(m-rank)*p[i])
		running = math.Max(running, v)
		adj[i] = running
	}
	return adj
}

// PSIEpsilon replaces an empty bin's share in PSI, so that an empty bin on one side
// contributes a large but finite term instead of an infinite one.
const PSIEpsilon = 1e-4

// PSI is the population stability index of actual against expected histograms:
// Σ (a_i - e_i) ln(a_i / e_i) over the bins' shares, with shares of zero replaced by
// PSIEpsilon. ok is false when either histogram is empty. PSI is symmetric in its
// arguments and zero for identical distributions.
func PSI(expected, actual [tally.ScoreBins]int64) (psi float64, ok bool) {
	var ne, na int64
	for i := range expected {
		if expected[i] < 0 || actual[i] < 0 {
			return 0, false
		}
		ne += expected[i]
		na += actual[i]
	}
	if ne == 0 || na == 0 {
		return 0, false
	}
	share := func(c, n int64) float64 {
		if c == 0 {
			return PSIEpsilon
		}
		return float64(c) / float64(n)
	}
	for i := range expected {
		e, a := share(expected[i], ne), share(actual[i], na)
		psi += (a - e) * math.Log(a/e)
	}
	return psi, true
}
