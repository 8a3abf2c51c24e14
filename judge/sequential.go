package judge

import "math"

// Anytime-valid tests of a difference of proportions.
//
// Every test here is about θ = p_baseline − p_candidate (positive: the candidate is
// worse) and gives an e-value E for a null hypothesis: a non-negative statistic whose
// expectation is at most 1 under the null at every sample size. By Ville's
// inequality the chance that E ever reaches 1/α, however often it is looked at and
// however long the data keep coming, is at most α under the null. That is what lets
// a rollout gate ask every minute for hours without inflating its error rates.
//
// The e-values are universal-inference ratios (Wasserman, Ramdas & Balakrishnan
// 2020, "Universal inference", PNAS): the Bayes mixture likelihood of the data under
// a Jeffreys prior, divided by the largest likelihood any parameter in the null
// attains,
//
//	E = ∫ L(p) dπ(p) / sup_{p ∈ H0} L(p).
//
// For every p* in the null the numerator over L(p*) is a test martingale (a
// likelihood ratio of the mixture against p*), and the denominator is at least
// L(p*), so E is below a test martingale: valid at any stopping time, exactly (no
// normal approximation), and a function of the counts alone — it needs no state
// between looks and does not depend on the order in which labels arrived. The
// mixtures are conjugate (beta-binomial, Dirichlet-multinomial), so E is closed form
// up to a one-dimensional concave maximisation on the null's boundary.
//
// Paired data (a shadow variant scored the same requests as production) has its own
// tests: the sequential exact McNemar test on the discordant pairs for "worse at
// all", and a trinomial (only baseline / only candidate / the rest) for
// non-inferiority with a margin.

// direction says which side of θ0 a null hypothesis lies on.
type direction int

const (
	// atMost: H0 θ ≤ θ0. Rejecting it is evidence the candidate is worse by more
	// than θ0 (θ0 = 0: worse at all).
	atMost direction = iota
	// atLeast: H0 θ ≥ θ0. Rejecting it is evidence the candidate is worse by less
	// than θ0 (non-inferiority with margin θ0).
	atLeast
)

// sample is the data of one comparison.
type sample interface {
	// estimate is θ̂, the observed difference; NaN without data.
	estimate() float64
	// logMixture is the log Bayes mixture likelihood of the data.
	logMixture() float64
	// logLikMax is the log likelihood at the unconstrained maximum.
	logLikMax() float64
	// logLikAt is the largest log likelihood with θ fixed at θ0.
	logLikAt(theta0 float64) float64
	// scaled is the sample with every count multiplied by k (same proportions).
	scaled(k float64) sample
}

// logE is the log e-value of the null "θ ≤ θ0" (atMost) or "θ ≥ θ0" (atLeast). When
// the unconstrained maximum lies in the null the e-value is the mixture over the
// maximum likelihood (at most 1); otherwise the null's supremum is on its boundary
// θ = θ0, because the log likelihood is concave and the null is convex.
func logE(s sample, dir direction, theta0 float64) float64 {
	return newEvidence(s).logE(dir, theta0)
}

// evidence is a sample with the parts of its e-values that do not depend on the null
// computed once (bounds evaluate many nulls on one sample).
type evidence struct {
	s             sample
	est, mix, max float64
}

func newEvidence(s sample) evidence {
	ev := evidence{s: s, est: s.estimate()}
	if !math.IsNaN(ev.est) {
		ev.mix, ev.max = s.logMixture(), s.logLikMax()
	}
	return ev
}

func (ev evidence) logE(dir direction, theta0 float64) float64 {
	if math.IsNaN(ev.est) {
		return 0
	}
	inNull := (dir == atMost && ev.est <= theta0) || (dir == atLeast && ev.est >= theta0)
	if inNull {
		return math.Min(0, ev.mix-ev.max)
	}
	return ev.mix - ev.s.logLikAt(theta0)
}

// twoSample is an unpaired comparison: xb successes of nb for the baseline, xc of nc
// for the candidate, independent (a canary split, or precision on different sets of
// flagged predictions).
type twoSample struct{ xb, nb, xc, nc float64 }

func (s twoSample) estimate() float64 {
	if s.nb <= 0 || s.nc <= 0 {
		return math.NaN()
	}
	return s.xb/s.nb - s.xc/s.nc
}

// logMixture: independent Beta(1/2, 1/2) (Jeffreys) priors on both proportions.
func (s twoSample) logMixture() float64 {
	return logBetaBinomial(s.xb, s.nb) + logBetaBinomial(s.xc, s.nc)
}

func (s twoSample) logLikMax() float64 {
	return binomLogLik(s.xb, s.nb, s.xb/s.nb) + binomLogLik(s.xc, s.nc, s.xc/s.nc)
}

// logLikAt maximises over p_c = q with p_b = q + θ0, both in [0, 1].
func (s twoSample) logLikAt(theta0 float64) float64 {
	lo, hi := math.Max(0, -theta0), math.Min(1, 1-theta0)
	if lo > hi {
		return math.Inf(-1)
	}
	f := func(q float64) float64 {
		return binomLogLik(s.xb, s.nb, q+theta0) + binomLogLik(s.xc, s.nc, q)
	}
	df := func(q float64) float64 {
		pb := q + theta0
		return s.xb/pb - (s.nb-s.xb)/(1-pb) + s.xc/q - (s.nc-s.xc)/(1-q)
	}
	return maxConcave(f, df, lo, hi)
}

func (s twoSample) scaled(k float64) sample {
	return twoSample{s.xb * k, s.nb * k, s.xc * k, s.nc * k}
}

// pairedSample is a paired comparison over n units both variants were judged on:
// in b only the baseline succeeded, in c only the candidate, in the rest both or
// neither. θ = (b − c)/n estimates p_b − p_c.
type pairedSample struct{ b, c, n float64 }

func (s pairedSample) rest() float64 { return s.n - s.b - s.c }

func (s pairedSample) estimate() float64 {
	if s.n <= 0 {
		return math.NaN()
	}
	return (s.b - s.c) / s.n
}

// logMixture: a Dirichlet(1/2, 1/2, 1/2) prior on the trinomial (only baseline, only
// candidate, rest).
func (s pairedSample) logMixture() float64 {
	r := s.rest()
	lg := func(x float64) float64 { v, _ := math.Lgamma(x); return v }
	return lg(1.5) - 3*lg(0.5) + lg(s.b+0.5) + lg(s.c+0.5) + lg(r+0.5) - lg(s.n+1.5)
}

func (s pairedSample) logLikMax() float64 {
	return xlogy(s.b, s.b/s.n) + xlogy(s.c, s.c/s.n) + xlogy(s.rest(), s.rest()/s.n)
}

// logLikAt maximises over π_c = q, π_b = q + θ0, π_rest = 1 − 2q − θ0.
func (s pairedSample) logLikAt(theta0 float64) float64 {
	lo, hi := math.Max(0, -theta0), (1-theta0)/2
	if lo > hi {
		return math.Inf(-1)
	}
	r := s.rest()
	f := func(q float64) float64 {
		return xlogy(s.b, q+theta0) + xlogy(s.c, q) + xlogy(r, 1-2*q-theta0)
	}
	df := func(q float64) float64 {
		return s.b/(q+theta0) + s.c/q - 2*r/(1-2*q-theta0)
	}
	return maxConcave(f, df, lo, hi)
}

func (s pairedSample) scaled(k float64) sample { return pairedSample{s.b * k, s.c * k, s.n * k} }

// mcNemarLogE is the log e-value of the sequential exact McNemar test: among the
// discordant pairs, b where only the baseline succeeded and c where only the
// candidate did, each is "only baseline" with probability π; the null is π ≤ 1/2
// (the candidate is not worse). The e-value is the beta-binomial mixture (Jeffreys
// prior on π) over the null's largest likelihood, 2^−(b+c) when b > c. Conditioning on
// discordance is what makes McNemar's test exact; concordant pairs carry no
// information about which model is better.
func mcNemarLogE(b, c float64) float64 {
	m := b + c
	if m <= 0 {
		return 0
	}
	mix := logBeta(b+0.5, c+0.5) - logBeta(0.5, 0.5)
	if b <= c {
		return math.Min(0, mix-(xlogy(b, b/m)+xlogy(c, c/m)))
	}
	return mix - m*math.Log(0.5)
}

// mcNemarTwoSidedLogE is the e-value of π = 1/2 against any π: how strongly the
// discordant pairs lean one way (label-free when the pairs are all inferences).
func mcNemarTwoSidedLogE(b, c float64) float64 {
	m := b + c
	if m <= 0 {
		return 0
	}
	return logBeta(b+0.5, c+0.5) - logBeta(0.5, 0.5) - m*math.Log(0.5)
}

// upperBound is the smallest θ0 whose null "θ ≥ θ0" is rejected at level: every
// difference at or above it is ruled out (the candidate is worse by less). 1 when
// nothing can be ruled out, NaN without data.
func upperBound(s sample, level float64) float64 { return bound(s, level, atLeast, 1) }

// lowerBound is the largest θ0 whose null "θ ≤ θ0" is rejected at level: the
// candidate is worse by more than it. −1 when nothing can be ruled out.
func lowerBound(s sample, level float64) float64 { return bound(s, level, atMost, -1) }

// bound bisects between the estimate and edge (1 for atLeast, −1 for atMost) for
// the θ0 nearest the estimate whose null "dir θ0" is still rejected at level; edge
// when not even its null is rejected, NaN without data.
func bound(s sample, level float64, dir direction, edge float64) float64 {
	ev := newEvidence(s)
	if math.IsNaN(ev.est) {
		return math.NaN()
	}
	thr := -math.Log(level)
	if ev.logE(dir, edge) < thr {
		return edge
	}
	near := ev.est
	for range boundIterations {
		mid := (near + edge) / 2
		if ev.logE(dir, mid) >= thr {
			edge = mid
		} else {
			near = mid
		}
	}
	return edge
}

// boundIterations bisects [−1, 1] to about 3·10⁻⁵, finer than any displayed digit.
const boundIterations = 16

// scaleToReject is the factor k by which the sample would have to grow, with its
// proportions unchanged, before the null "dir θ0" is rejected at level; +Inf when no
// amount of such data would (the estimate lies in the null). It is how an
// inconclusive judgement says how many more labels it needs.
func scaleToReject(s sample, dir direction, theta0, level float64) float64 {
	thr := -math.Log(level)
	if logE(s, dir, theta0) >= thr {
		return 1
	}
	est := s.estimate()
	if math.IsNaN(est) || (dir == atMost && est <= theta0) || (dir == atLeast && est >= theta0) {
		return math.Inf(1)
	}
	lo, hi := 1.0, 2.0
	for logE(s.scaled(hi), dir, theta0) < thr {
		lo, hi = hi, hi*2
		if hi > 1e7 {
			return math.Inf(1)
		}
	}
	for range 12 { // k to within 0.03 %: "about N more" needs no more
		mid := (lo + hi) / 2
		if logE(s.scaled(mid), dir, theta0) >= thr {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// maxConcave is the maximum of a concave f on [lo, hi], found by bisection on its
// decreasing derivative df (never evaluated at the ends, where it may be infinite).
func maxConcave(f, df func(float64) float64, lo, hi float64) float64 {
	best := math.Max(f(lo), f(hi))
	if hi-lo <= 0 {
		return best
	}
	a, b := lo, hi
	for range 40 { // to 1e-12 of [0, 1]; the log likelihood is flat to second order there

		mid := a + (b-a)/2
		if mid <= a || mid >= b {
			break
		}
		if df(mid) > 0 {
			a = mid
		} else {
			b = mid
		}
	}
	return math.Max(best, f(a+(b-a)/2))
}

// logBetaBinomial is the log marginal likelihood of x successes in n Bernoulli
// trials (in a given order) under a Beta(1/2, 1/2) prior.
func logBetaBinomial(x, n float64) float64 {
	return logBeta(x+0.5, n-x+0.5) - logBeta(0.5, 0.5)
}

func binomLogLik(x, n, p float64) float64 { return xlogy(x, p) + xlogy(n-x, 1-p) }

// xlogy is x·ln y with 0·ln 0 = 0.
func xlogy(x, y float64) float64 {
	if x == 0 {
		return 0
	}
	if y <= 0 {
		return math.Inf(-1)
	}
	return x * math.Log(y)
}

func logBeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}
