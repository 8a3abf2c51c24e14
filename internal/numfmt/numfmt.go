// Package numfmt writes the optional numbers of a judgement the way verdict shows
// them to people, in the judge's reasons and warnings and in the rendered reports
// alike: an absent value (nil) is an em dash. Duration writes the durations of
// rollout plans and alarm descriptions.
package numfmt

import (
	"fmt"
	"strconv"
)

// Absent is how a missing value reads.
const Absent = "—"

// Num is p with digits decimals.
func Num(p *float64, digits int) string {
	if p == nil {
		return Absent
	}
	return strconv.FormatFloat(*p, 'f', digits, 64)
}

// PValue is p with two significant digits.
func PValue(p *float64) string {
	if p == nil {
		return Absent
	}
	return strconv.FormatFloat(*p, 'g', 2, 64)
}

// Signed is p with its sign and three decimals.
func Signed(p *float64) string {
	if p == nil {
		return Absent
	}
	return fmt.Sprintf("%+.3f", *p)
}

// Pair is baseline → candidate, each with digits decimals.
func Pair(b, c *float64, digits int) string { return Num(b, digits) + " → " + Num(c, digits) }
