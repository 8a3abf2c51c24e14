// Package tally is the counting vocabulary every stage after the join shares: the
// additive confusion-matrix tally of one series in one bucket (Counts, with its score
// histogram and paired cells), the series it belongs to (Key), a change to it (Delta),
// where one prediction stands (Outcome), and the binary encoding stores sum word by
// word. It imports nothing of verdict.
package tally

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Outcome is where a prediction stands against its label.
type Outcome uint8

// Outcomes. Pending means no label yet (and not matured).
const (
	Pending Outcome = iota
	TruePositive
	FalsePositive
	FalseNegative
	TrueNegative
)

func (o Outcome) String() string {
	switch o {
	case Pending:
		return "pending"
	case TruePositive:
		return "tp"
	case FalsePositive:
		return "fp"
	case FalseNegative:
		return "fn"
	case TrueNegative:
		return "tn"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// OutcomeOf is the confusion-matrix cell of a prediction flagged (or not) against a
// label positive (or not).
func OutcomeOf(flagged, positive bool) Outcome {
	switch {
	case flagged && positive:
		return TruePositive
	case flagged:
		return FalsePositive
	case positive:
		return FalseNegative
	default:
		return TrueNegative
	}
}

// ScoreBins is the number of equal-width score histogram bins kept per tally; the
// histogram needs no labels and feeds score-distribution comparisons.
const ScoreBins = 10

// Key names one series: a variant overall (SegmentKey and Segment empty) or a
// variant within one segment (for example merchant_category=electronics).
//
// A key with Versus set names a pair series instead: the inferences that both Variant
// and Versus scored (a production model and its shadow), counted in Counts.Pair by
// which of the two flagged them and by what is known of their label. Variant sorts
// before Versus.
type Key struct {
	Variant    string
	SegmentKey string
	Segment    string
	Versus     string
}

// Overall reports whether the key is the variant's (or pair's) overall series.
func (k Key) Overall() bool { return k.SegmentKey == "" }

// Paired reports whether the key names a pair series.
func (k Key) Paired() bool { return k.Versus != "" }

// LabelClass is what is known of a paired inference's label.
type LabelClass uint8

// Label classes of paired counts.
const (
	// ClassPending: no label yet, not matured.
	ClassPending LabelClass = iota
	// ClassPositive and ClassNegative: labeled.
	ClassPositive
	ClassNegative
	// ClassMatured: no label, resolved negative by maturity.
	ClassMatured
	// LabelClasses is the number of classes.
	LabelClasses
)

func (c LabelClass) String() string {
	switch c {
	case ClassPending:
		return "pending"
	case ClassPositive:
		return "positive"
	case ClassNegative:
		return "negative"
	case ClassMatured:
		return "matured"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Agreement is which variants of a pair flagged an inference. The first variant is
// the key's Variant, the second its Versus.
type Agreement uint8

// Agreements.
const (
	Neither Agreement = iota
	OnlyFirst
	OnlySecond
	Both
	// Agreements is the number of agreements.
	Agreements
)

// AgreementOf is the agreement of two flags.
func AgreementOf(first, second bool) Agreement {
	var a Agreement
	if first {
		a |= OnlyFirst
	}
	if second {
		a |= OnlySecond
	}
	return a
}

func (a Agreement) String() string {
	switch a {
	case Neither:
		return "neither"
	case OnlyFirst:
		return "only_first"
	case OnlySecond:
		return "only_second"
	case Both:
		return "both"
	}
	return fmt.Sprintf("agreement(%d)", uint8(a))
}

// PairCounts counts paired inferences by label class and agreement.
type PairCounts [LabelClasses][Agreements]int64

// Class sums one label class over the agreements.
func (p PairCounts) Class(c LabelClass) int64 {
	var n int64
	for _, v := range p[c] {
		n += v
	}
	return n
}

// Agreement sums one agreement over the label classes.
func (p PairCounts) Agreement(a Agreement) int64 {
	var n int64
	for c := range p {
		n += p[c][a]
	}
	return n
}

// Total is every paired inference counted.
func (p PairCounts) Total() int64 {
	var n int64
	for c := range p {
		n += p.Class(LabelClass(c))
	}
	return n
}

// Swapped is p with the roles of the first and second variant exchanged.
func (p PairCounts) Swapped() PairCounts {
	var s PairCounts
	for c := range p {
		s[c][Neither], s[c][Both] = p[c][Neither], p[c][Both]
		s[c][OnlyFirst], s[c][OnlySecond] = p[c][OnlySecond], p[c][OnlyFirst]
	}
	return s
}

// Counts is what the join contributes to one series in one time bucket. Every field
// is additive, so a tally is the sum of the deltas that built it.
type Counts struct {
	// Predictions counts scored predictions; Flagged those predicted positive.
	Predictions int64
	Flagged     int64
	// Errors counts predictions whose inference failed; they are never joined.
	Errors int64
	// TP, FP, FN and TN count resolved predictions by outcome.
	TP, FP, FN, TN int64
	// Matured counts predictions resolved negative by label maturity rather than by a
	// label (a subset of FP + TN).
	Matured int64
	// ScoreSum and Bins describe the score distribution of Predictions.
	ScoreSum float64
	Bins     [ScoreBins]int64
	// Pair is set only in pair series (Key.Versus set): the paired inferences.
	Pair PairCounts
	// Censored counts pending predictions that maturity will not resolve because the
	// serving variant declined their inference (Config.Declined = DeclinedCensored);
	// only a label (from a review source, if any are configured) resolves them.
	// CensoredFlagged is the part of them predicted positive. Both are subsets of
	// the pending predictions, Predictions - Resolved.
	Censored, CensoredFlagged int64
}

// Resolved is TP + FP + FN + TN.
func (c Counts) Resolved() int64 { return c.TP + c.FP + c.FN + c.TN }

// Pending is the predictions without an outcome yet: Predictions - Resolved
// (censored ones included).
func (c Counts) Pending() int64 { return c.Predictions - c.Resolved() }

// Add adds d to c.
func (c *Counts) Add(d Counts) {
	c.Predictions += d.Predictions
	c.Flagged += d.Flagged
	c.Errors += d.Errors
	c.TP += d.TP
	c.FP += d.FP
	c.FN += d.FN
	c.TN += d.TN
	c.Matured += d.Matured
	c.ScoreSum += d.ScoreSum
	for i := range c.Bins {
		c.Bins[i] += d.Bins[i]
	}
	for i := range c.Pair {
		for j := range c.Pair[i] {
			c.Pair[i][j] += d.Pair[i][j]
		}
	}
	c.Censored += d.Censored
	c.CensoredFlagged += d.CensoredFlagged
}

// Sub subtracts d from c.
func (c *Counts) Sub(d Counts) {
	c.Predictions -= d.Predictions
	c.Flagged -= d.Flagged
	c.Errors -= d.Errors
	c.TP -= d.TP
	c.FP -= d.FP
	c.FN -= d.FN
	c.TN -= d.TN
	c.Matured -= d.Matured
	c.ScoreSum -= d.ScoreSum
	for i := range c.Bins {
		c.Bins[i] -= d.Bins[i]
	}
	for i := range c.Pair {
		for j := range c.Pair[i] {
			c.Pair[i][j] -= d.Pair[i][j]
		}
	}
	c.Censored -= d.Censored
	c.CensoredFlagged -= d.CensoredFlagged
}

// IsZero reports whether every field is zero.
func (c Counts) IsZero() bool { return c == Counts{} }

func (c *Counts) AddOutcome(o Outcome, n int64) {
	switch o {
	case TruePositive:
		c.TP += n
	case FalsePositive:
		c.FP += n
	case FalseNegative:
		c.FN += n
	case TrueNegative:
		c.TN += n
	}
}

func ScoreBin(score float64) int {
	b := int(score * ScoreBins)
	if b >= ScoreBins {
		b = ScoreBins - 1
	}
	if b < 0 {
		b = 0
	}
	return b
}

// Delta is a change to one series in one bucket of prediction time, committed with
// the outcome transitions that caused it. Bucket is the bucket's start (Unix seconds).
type Delta struct {
	Key    Key
	Bucket int64
	Counts Counts
}

// countsWords is the number of 8-byte words in an encoded Counts; word scoreSumWord
// holds a float64, the others int64. Fields added later are appended as words:
// legacyCountsWords is the encoding before paired counts existed, pairedCountsWords
// the one before the censored counts; both still decode (the missing fields zero),
// and stores sum values of different lengths as if zero-extended.
const (
	legacyCountsWords = 9 + ScoreBins
	pairWords         = int(LabelClasses) * int(Agreements)
	pairedCountsWords = legacyCountsWords + pairWords
	censoredWord      = pairedCountsWords // Censored, then CensoredFlagged
	countsWords       = pairedCountsWords + 2
	scoreSumWord      = 8
)

// EncodeCounts encodes c as little-endian 8-byte words, so stores can sum encoded
// deltas word by word (word 8 as float64, the others as int64). A value shorter than
// another is summed as if zero-extended: the pair cells and the censored counts were
// appended later.
func EncodeCounts(c Counts) []byte {
	b := make([]byte, countsWords*8)
	w := []int64{c.Predictions, c.Flagged, c.Errors, c.TP, c.FP, c.FN, c.TN, c.Matured}
	for i, v := range w {
		binary.LittleEndian.PutUint64(b[i*8:], uint64(v))
	}
	binary.LittleEndian.PutUint64(b[scoreSumWord*8:], math.Float64bits(c.ScoreSum))
	for i, v := range c.Bins {
		binary.LittleEndian.PutUint64(b[(9+i)*8:], uint64(v))
	}
	for i := range pairWords {
		v := c.Pair[i/int(Agreements)][i%int(Agreements)]
		binary.LittleEndian.PutUint64(b[(legacyCountsWords+i)*8:], uint64(v))
	}
	binary.LittleEndian.PutUint64(b[censoredWord*8:], uint64(c.Censored))
	binary.LittleEndian.PutUint64(b[(censoredWord+1)*8:], uint64(c.CensoredFlagged))
	return b
}

// DecodeCounts decodes what EncodeCounts encoded, and its earlier forms without the
// pair cells or the censored counts (those fields are then zero).
func DecodeCounts(b []byte) (Counts, error) {
	if len(b) != countsWords*8 && len(b) != pairedCountsWords*8 && len(b) != legacyCountsWords*8 {
		return Counts{}, fmt.Errorf("tally value has %d bytes, want %d", len(b), countsWords*8)
	}
	w := func(i int) int64 { return int64(binary.LittleEndian.Uint64(b[i*8:])) }
	c := Counts{
		Predictions: w(0), Flagged: w(1), Errors: w(2),
		TP: w(3), FP: w(4), FN: w(5), TN: w(6), Matured: w(7),
		ScoreSum: math.Float64frombits(binary.LittleEndian.Uint64(b[scoreSumWord*8:])),
	}
	for i := range c.Bins {
		c.Bins[i] = w(9 + i)
	}
	if len(b) >= pairedCountsWords*8 {
		for i := range pairWords {
			c.Pair[i/int(Agreements)][i%int(Agreements)] = w(legacyCountsWords + i)
		}
	}
	if len(b) == countsWords*8 {
		c.Censored, c.CensoredFlagged = w(censoredWord), w(censoredWord+1)
	}
	return c, nil
}
