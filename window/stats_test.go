package window

import (
	"math"
	"strings"
	"testing"

	"github.com/verdictml/verdict/tally"
)

// TestEstimability checks the rules against a plain recount: precision's bounds are
// TP/n and 1 - FP/n over the n flagged predictions that are not censored.
func TestEstimability(t *testing.T) {
	tests := []struct {
		name      string
		c         tally.Counts
		rule      Rule
		precision bool   // estimable
		reason    string // in the precision reason (or note when estimable)
		recall    bool   // defined and estimable
		early     bool   // recall carries the early note
	}{
		{
			name:   "positive-only early labels: precision is not estimable, recall is early",
			c:      tally.Counts{Predictions: 1000, Flagged: 50, TP: 10, FN: 3},
			reason: "10 of 50 flagged predictions resolved (20 %, estimable from 95 %)", recall: true, early: true,
		},
		{
			name:      "a matured cohort: every flagged prediction resolved",
			c:         tally.Counts{Predictions: 1000, Flagged: 50, TP: 10, FP: 40, FN: 3, TN: 947, Matured: 900},
			precision: true, recall: true,
		},
		{
			name:      "95 % of the flagged resolved is estimable",
			c:         tally.Counts{Predictions: 20, Flagged: 20, TP: 10, FP: 9},
			precision: true, recall: true,
		},
		{
			name:   "94 % of the flagged resolved is not, and says 94 %",
			c:      tally.Counts{Predictions: 50, Flagged: 50, TP: 30, FP: 17},
			reason: "47 of 50 flagged predictions resolved (94 %", recall: true, early: true,
		},
		{
			name:      "a lower coverage rule accepts early precision",
			c:         tally.Counts{Predictions: 1000, Flagged: 50, TP: 10, FP: 20, FN: 3},
			rule:      Rule{Coverage: 0.5},
			precision: true, recall: true, early: true,
		},
		{
			name:      "censored flagged predictions are left out, and the note says so",
			c:         tally.Counts{Predictions: 40, Flagged: 30, TP: 15, FP: 5, TN: 8, Censored: 12, CensoredFlagged: 10},
			precision: true, reason: "leaves out 10 censored flagged predictions", recall: true,
		},
		{
			name:   "all flagged predictions censored: undefined",
			c:      tally.Counts{Predictions: 10, Flagged: 4, TN: 6, Censored: 4, CensoredFlagged: 4},
			reason: "undefined: all 4 flagged predictions are censored",
		},
		{
			name:   "no flagged predictions: undefined",
			c:      tally.Counts{Predictions: 10, TN: 5, FN: 1},
			reason: "undefined: no flagged predictions", recall: true, early: true,
		},
		{
			name:      "recall is no longer early once the predictions are resolved, censored aside",
			c:         tally.Counts{Predictions: 100, Flagged: 10, TP: 5, FP: 5, FN: 5, TN: 73, Censored: 10},
			precision: true, recall: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := DeriveWith(tc.c, tc.rule)
			e := s.Estimable
			if e.Precision.Estimable != tc.precision || (s.Precision != nil) != tc.precision || (s.PrecisionCI != nil) != tc.precision {
				t.Errorf("precision estimable %v (value %v, reason %q), want %v", e.Precision.Estimable, deref(s.Precision), e.Precision.Reason, tc.precision)
			}
			if tc.precision && math.Abs(*s.Precision-float64(tc.c.TP)/float64(tc.c.TP+tc.c.FP)) > 1e-12 {
				t.Errorf("precision %v, recount %v", *s.Precision, float64(tc.c.TP)/float64(tc.c.TP+tc.c.FP))
			}
			if got := e.Precision.Reason + e.Precision.Note; !strings.Contains(got, tc.reason) {
				t.Errorf("precision reason/note %q, want it to contain %q", got, tc.reason)
			}
			if !tc.precision && e.Precision.Reason == "" {
				t.Error("a precision that is not estimable needs a reason")
			}
			if n := tc.c.Flagged - tc.c.CensoredFlagged; n > 0 {
				lower, upper := float64(tc.c.TP)/float64(n), 1-float64(tc.c.FP)/float64(n)
				if b := s.PrecisionBounds; b == nil || math.Abs(b.Lower-lower) > 1e-12 || math.Abs(b.Upper-upper) > 1e-12 {
					t.Errorf("precision bounds %+v, want [%v, %v]", b, lower, upper)
				}
				if s.Precision != nil && (*s.Precision < s.PrecisionBounds.Lower || *s.Precision > s.PrecisionBounds.Upper) {
					t.Errorf("precision %v outside its bounds %+v", *s.Precision, *s.PrecisionBounds)
				}
			} else if s.PrecisionBounds != nil {
				t.Errorf("precision bounds %+v without flagged predictions", *s.PrecisionBounds)
			}
			if e.Recall.Estimable != tc.recall || (s.Recall != nil) != tc.recall {
				t.Errorf("recall estimable %v (value %v), want %v", e.Recall.Estimable, deref(s.Recall), tc.recall)
			}
			if early := strings.HasPrefix(e.Recall.Note, "early:"); early != tc.early {
				t.Errorf("recall note %q, early want %v", e.Recall.Note, tc.early)
			}
			if wantF1 := tc.precision && tc.recall; e.F1.Estimable != wantF1 || (s.F1 != nil) != wantF1 {
				t.Errorf("f1 estimable %v (%q), want %v", e.F1.Estimable, e.F1.Reason, wantF1)
			}
		})
	}
}
