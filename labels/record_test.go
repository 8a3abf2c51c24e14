package labels

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/verdictml/verdict/tally"
)

func TestRecordRoundTrip(t *testing.T) {
	segs := []Segment{{"merchant_category", "electronics"}, {"country", "DE"}}
	tests := []struct {
		name string
		rec  Record
	}{
		{"empty record", Record{ID: "a"}},
		{"label only", Record{ID: "a", Label: &LabelState{Positive: true, Time: 1764000000e9, Seq: 42, Source: "dispute"}}},
		{"production and shadow sharing segments", Record{ID: "a", Preds: []PredState{
			{Variant: "v5", Score: 0.91, Flagged: true, Time: 1764000000e9, Segments: segs, Outcome: tally.TruePositive},
			{Variant: "v6", Shadow: true, Score: 0.12, Time: 1764000000e9 + 3, Segments: segs, Outcome: tally.FalseNegative},
		}}},
		{"different segments, errored and matured", Record{ID: "a", Preds: []PredState{
			{Variant: "v5", Errored: true, Time: -5, Segments: segs[:1]},
			{Variant: "v6", Matured: true, Outcome: tally.TrueNegative, Time: 7, Segments: segs},
			{Variant: "v7", Time: 7},
		}}},
		{"label in force, review label and a censored prediction", Record{ID: "a",
			Label:  &LabelState{Time: 9e9, Seq: 2, Source: "chargeback_window"},
			Review: &LabelState{Positive: true, Time: 5e9, Seq: 1, Source: "review"},
			Preds:  []PredState{{Variant: "v5", Flagged: true, Censored: true, Time: 1}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UnmarshalRecord(tc.rec.ID, tc.rec.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.rec) {
				t.Errorf("round trip:\n got %+v\nwant %+v", *got, tc.rec)
			}
		})
	}
}

func FuzzUnmarshalRecord(f *testing.F) {
	seed := &Record{ID: "a", Label: &LabelState{Time: 1}, Preds: []PredState{{Variant: "v5", Segments: []Segment{{"k", "v"}}}, {Variant: "v6", Segments: []Segment{{"k", "v"}}}}}
	f.Add(seed.Marshal())
	f.Add([]byte{1, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalRecord("x", b)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to something that decodes the same
		// (compared as bytes: a NaN score is not equal to itself).
		again, err := UnmarshalRecord("x", r.Marshal())
		if err != nil || !bytes.Equal(again.Marshal(), r.Marshal()) {
			t.Fatalf("re-decode of %x: %v, %+v vs %+v", b, err, again, r)
		}
	})
}
