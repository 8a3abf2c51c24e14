package tally

import (
	"encoding/binary"
	"testing"
)

func TestCountsEncoding(t *testing.T) {
	c := Counts{Predictions: 9, Flagged: 4, Errors: 1, TP: 2, FP: 1, FN: 1, TN: 3, Matured: 2, ScoreSum: 3.25,
		Censored: 2, CensoredFlagged: 1}
	c.Bins[0], c.Bins[9] = 5, 4
	c.Pair[ClassMatured][OnlySecond] = 3
	t.Run("round trip", func(t *testing.T) {
		got, err := DecodeCounts(EncodeCounts(c))
		if err != nil || got != c {
			t.Fatalf("got %+v (%v), want %+v", got, err, c)
		}
	})
	t.Run("a tally written before the censored counts decodes with them zero", func(t *testing.T) {
		legacy := EncodeCounts(c)[:pairedCountsWords*8]
		got, err := DecodeCounts(legacy)
		want := c
		want.Censored, want.CensoredFlagged = 0, 0
		if err != nil || got != want {
			t.Fatalf("got %+v (%v), want %+v", got, err, want)
		}
	})
	t.Run("the censored counts are the last words", func(t *testing.T) {
		b := EncodeCounts(c)
		if n := int64(binary.LittleEndian.Uint64(b[censoredWord*8:])); n != 2 {
			t.Errorf("word %d = %d, want Censored 2", censoredWord, n)
		}
	})
	t.Run("Sub undoes Add", func(t *testing.T) {
		var z Counts
		z.Add(c)
		z.Sub(c)
		if !z.IsZero() {
			t.Fatalf("c + c - c - c = %+v", z)
		}
	})
	t.Run("other lengths are refused", func(t *testing.T) {
		if _, err := DecodeCounts(make([]byte, 8)); err == nil {
			t.Error("8 bytes decoded")
		}
	})
}
