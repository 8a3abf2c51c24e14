package judge

import (
	"math"
	"testing"

	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestNormalCDFMatchesTableQuantiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		z    float64
		want float64
	}{
		{"median", 0, 0.5},
		{"upper 97.5 % point (z 1.96)", 1.959963984540054, 0.975},
		{"lower 5 % point (z -1.645)", -1.6448536269514722, 0.05},
		{"lower 1 % point (z -2.326)", -2.3263478740408408, 0.01},
		{"far lower tail stays positive", -8, 6.22096057427178e-16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NormalCDF(tc.z); !near(got, tc.want, 1e-12+1e-9*tc.want) {
				t.Errorf("Φ(%g) = %.15g, want %.15g", tc.z, got, tc.want)
			}
		})
	}
}

// Wilson intervals from Newcombe (1998), "Two-sided confidence intervals for the
// single proportion", Statistics in Medicine 17, table I, method 3 (score without
// continuity correction), to the table's four decimals.
func TestWilsonMatchesNewcombeTable(t *testing.T) {
	for _, tc := range []struct {
		name         string
		x, n         int64
		lower, upper float64
	}{
		{"81 of 263", 81, 263, 0.2553, 0.3662},
		{"15 of 148", 15, 148, 0.0624, 0.1605},
		{"p = 0: 0 of 20", 0, 20, 0, 0.1611},
		{"1 of 29", 1, 29, 0.0061, 0.1718},
		{"p = 1: 20 of 20 mirrors 0 of 20", 20, 20, 0.8389, 1},
		{"n = 0 is uninformative", 0, 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := proportion(tc.x, tc.n)
			if !near(p.CI.Lower, tc.lower, 5e-5) || !near(p.CI.Upper, tc.upper, 5e-5) {
				t.Errorf("Wilson(%d, %d) = [%.5f, %.5f], want [%.4f, %.4f]", tc.x, tc.n, p.CI.Lower, p.CI.Upper, tc.lower, tc.upper)
			}
			if (tc.n == 0) != (p.Value == nil) {
				t.Errorf("value defined = %v for n = %d", p.Value != nil, tc.n)
			}
		})
	}
	// The judge reuses window.Wilson; pin that it is the same function.
	if got := window.Wilson(81, 263, window.Z95); got.Lower != proportion(81, 263).CI.Lower {
		t.Errorf("proportion does not use window.Wilson: %v", got)
	}
}

// Reference values: z by hand from the pooled formula, p-values from Φ; checked
// independently with Python's math.erfc.
func TestTwoProportionZAgainstHandComputedValues(t *testing.T) {
	for _, tc := range []struct {
		name              string
		x1, n1, x2, n2    int64
		z, lower, twoSide float64
	}{
		// pooled 0.75, SE = sqrt(0.75·0.25·(1/100+1/100)) = 0.0612372, z = -0.1/SE
		{"80/100 vs 70/100", 80, 100, 70, 100, -1.632993162, 0.05123521743, 0.1024704349},
		{"400/500 vs 380/500", 400, 500, 380, 500, -1.526762041, 0.06341009684, 0.1268201937},
		{"candidate better: 50/1000 vs 65/1000", 50, 1000, 65, 1000, 1.440793231, 0.9251784468, 0.1496431064},
		{"large drop on small n: 9/10 vs 1/10", 9, 10, 1, 10, -3.577708764, 0.0001733096756, 0.0003466193511},
		{"equal proportions", 30, 100, 60, 200, 0, 0.5, 1},
		{"p = 0 in both: no evidence", 0, 50, 0, 80, 0, 0.5, 1},
		{"p = 1 in both: no evidence", 50, 50, 80, 80, 0, 0.5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := TwoProportionZ(tc.x1, tc.n1, tc.x2, tc.n2)
			if !ok {
				t.Fatal("test undefined")
			}
			if !near(got.Z, tc.z, 1e-8) || !near(got.Lower, tc.lower, 1e-9) || !near(got.TwoSided, tc.twoSide, 1e-9) {
				t.Errorf("got z %.10g lower %.10g two-sided %.10g, want %.10g %.10g %.10g",
					got.Z, got.Lower, got.TwoSided, tc.z, tc.lower, tc.twoSide)
			}
		})
	}
	for _, tc := range []struct {
		name           string
		x1, n1, x2, n2 int64
	}{
		{"n = 0 for the baseline", 0, 0, 3, 10},
		{"n = 0 for the candidate", 3, 10, 0, 0},
		{"more successes than trials", 11, 10, 3, 10},
		{"negative count", -1, 10, 3, 10},
	} {
		t.Run(tc.name+" is undefined", func(t *testing.T) {
			if _, ok := TwoProportionZ(tc.x1, tc.n1, tc.x2, tc.n2); ok {
				t.Error("want undefined")
			}
		})
	}
}

func TestHolmMatchesWorkedExamples(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []float64
		want []float64
	}{
		// Holm–Bonferroni's textbook example: four tests at α = 0.05 reject the first
		// two in sorted order (0.005 ≤ 0.05/4, 0.01 ≤ 0.05/3) and stop at 0.03 > 0.05/2.
		{"four hypotheses", []float64{0.01, 0.04, 0.03, 0.005}, []float64{0.03, 0.06, 0.06, 0.02}},
		// Monotonicity: an adjusted p-value never falls below an earlier one.
		{"step-down keeps the running maximum", []float64{0.001, 0.013, 0.014, 0.5}, []float64{0.004, 0.039, 0.039, 0.5}},
		{"adjusted values cap at 1", []float64{0.4, 0.6}, []float64{0.8, 0.8}},
		{"single test is unadjusted", []float64{0.03}, []float64{0.03}},
		{"ties", []float64{0.02, 0.02}, []float64{0.04, 0.04}},
		{"empty family", nil, []float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Holm(tc.p)
			if len(got) != len(tc.want) {
				t.Fatalf("len %d, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !near(got[i], tc.want[i], 1e-12) {
					t.Errorf("adjusted %v, want %v", got, tc.want)
					break
				}
			}
		})
	}
}

func bins(xs ...int64) (b [tally.ScoreBins]int64) {
	copy(b[:], xs)
	return b
}

func TestPSIAgainstHandComputedValues(t *testing.T) {
	for _, tc := range []struct {
		name             string
		expected, actual [tally.ScoreBins]int64
		want             float64
	}{
		{"identical distributions", bins(10, 10, 10, 10, 10, 10, 10, 10, 10, 10), bins(1, 1, 1, 1, 1, 1, 1, 1, 1, 1), 0},
		// 4·(−0.05·ln 0.5) + 3·0 + 2·(0.05·ln 1.5) + 0.1·ln 2 = 0.138629 + 0.040547 + 0.069315
		{"uniform against skewed", bins(100, 100, 100, 100, 100, 100, 100, 100, 100, 100),
			bins(50, 50, 50, 50, 100, 100, 100, 150, 150, 200), 0.248490664979},
		// empty bins on one side take ε = 1e-4: 2·(0.25−0.5)·ln(0.5) + 2·(0.25−ε)·ln(0.25/ε)
		{"empty bins use epsilon", bins(50, 0, 0, 0, 0, 0, 0, 0, 0, 50), bins(25, 25, 0, 0, 0, 0, 0, 0, 25, 25), 4.25703178651},
		{"disjoint point masses stay finite", bins(1), bins(0, 0, 0, 0, 0, 0, 0, 0, 0, 1), 18.4188386759},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := PSI(tc.expected, tc.actual)
			if !ok || !near(got, tc.want, 1e-9) {
				t.Errorf("PSI = %.12g (ok %v), want %.12g", got, ok, tc.want)
			}
			if rev, _ := PSI(tc.actual, tc.expected); !near(rev, got, 1e-12) {
				t.Errorf("PSI not symmetric: %g vs %g", rev, got)
			}
		})
	}
	if _, ok := PSI(bins(), bins(1)); ok {
		t.Error("PSI with an empty histogram (n = 0) should be undefined")
	}
}
