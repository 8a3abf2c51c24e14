package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/tally"
)

// joinSemantics is the table of docs/architecture.md ("Join semantics"), one store per
// row.
func joinSemantics(t *testing.T, open Open) {
	v5 := tally.Key{Variant: "v5"}
	v6 := tally.Key{Variant: "v6"}
	tests := []struct {
		name      string
		cfg       labels.Config
		steps     []ingest.Batch
		want      map[tally.Key]OC
		unmatched int64
	}{
		{
			name:  "label after prediction resolves it",
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9)), Labels(Label("a", true, time.Hour))},
			want:  map[tally.Key]OC{v5: {Pred: 1, Flag: 1, TP: 1}},
		},
		{
			name:  "label before prediction waits in the store and resolves on arrival",
			steps: []ingest.Batch{Labels(Label("a", true, time.Hour)), Preds(Pred("a", "v5", 0.2))},
			want:  map[tally.Key]OC{v5: {Pred: 1, FN: 1}},
		},
		{
			name:      "a label with no prediction yet is counted as unmatched",
			steps:     []ingest.Batch{Labels(Label("a", true, time.Hour), Label("b", false, time.Hour))},
			want:      map[tally.Key]OC{},
			unmatched: 2,
		},
		{
			name:  "one label resolves production and shadow predictions",
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9), Pred("a", "v6", 0.1)), Labels(Label("a", false, time.Hour))},
			want:  map[tally.Key]OC{v5: {Pred: 1, Flag: 1, FP: 1}, v6: {Pred: 1, TN: 1}},
		},
		{
			name:  "a duplicate prediction changes nothing, even with another score",
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9)), Preds(Pred("a", "v5", 0.1)), Labels(Label("a", true, time.Hour))},
			want:  map[tally.Key]OC{v5: {Pred: 1, Flag: 1, TP: 1}},
		},
		{
			name:  "a duplicate label changes nothing",
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9)), Labels(Label("a", true, time.Hour)), Labels(Label("a", true, time.Hour))},
			want:  map[tally.Key]OC{v5: {Pred: 1, Flag: 1, TP: 1}},
		},
		{
			name:  "a newer label corrects the outcome",
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9)), Labels(Label("a", false, time.Hour)), Labels(Label("a", true, 2*time.Hour))},
			want:  map[tally.Key]OC{v5: {Pred: 1, Flag: 1, TP: 1}},
		},
		{
			name:  "an older label arriving late is ignored",
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9)), Labels(Label("a", true, 2*time.Hour)), Labels(Label("a", false, time.Hour))},
			want:  map[tally.Key]OC{v5: {Pred: 1, Flag: 1, TP: 1}},
		},
		{
			name:  "labels with the same time: the one received last wins",
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9)), Labels(Label("a", true, time.Hour)), Labels(Label("a", false, time.Hour))},
			want:  map[tally.Key]OC{v5: {Pred: 1, Flag: 1, FP: 1}},
		},
		{
			name:  "events for one id within one batch apply in order",
			steps: []ingest.Batch{{Predictions: []ingest.Prediction{Pred("a", "v5", 0.9)}, Labels: []ingest.Label{Label("a", false, time.Hour), Label("a", true, 2*time.Hour)}}},
			want:  map[tally.Key]OC{v5: {Pred: 1, Flag: 1, TP: 1}},
		},
		{
			// A segment value with the DynamoDB store's key separator in it.
			name: "segments partition the variant; a missing attribute is its own segment",
			cfg:  labels.Config{SegmentKeys: []string{"merchant_category"}},
			steps: []ingest.Batch{
				Preds(Pred("a", "v5", 0.9, "merchant_category", "grocery"), Pred("b", "v5", 0.9, "merchant_category", "travel#1"), Pred("c", "v5", 0.1)),
				Labels(Label("a", true, time.Hour), Label("b", false, time.Hour), Label("c", true, time.Hour)),
			},
			want: map[tally.Key]OC{
				v5: {Pred: 3, Flag: 2, TP: 1, FP: 1, FN: 1},
				{Variant: "v5", SegmentKey: "merchant_category", Segment: "grocery"}:             {Pred: 1, Flag: 1, TP: 1},
				{Variant: "v5", SegmentKey: "merchant_category", Segment: "travel#1"}:            {Pred: 1, Flag: 1, FP: 1},
				{Variant: "v5", SegmentKey: "merchant_category", Segment: labels.MissingSegment}: {Pred: 1, FN: 1},
			},
		},
		{
			name: "segment values beyond the cap count as other",
			cfg:  labels.Config{SegmentKeys: []string{"mcc"}, MaxSegmentValues: 2},
			steps: []ingest.Batch{
				Preds(Pred("a", "v5", 0.9, "mcc", "1"), Pred("b", "v5", 0.9, "mcc", "2"), Pred("c", "v5", 0.9, "mcc", "3"), Pred("d", "v5", 0.9, "mcc", "4")),
			},
			want: map[tally.Key]OC{
				v5: {Pred: 4, Flag: 4},
				{Variant: "v5", SegmentKey: "mcc", Segment: "1"}:                 {Pred: 1, Flag: 1},
				{Variant: "v5", SegmentKey: "mcc", Segment: "2"}:                 {Pred: 1, Flag: 1},
				{Variant: "v5", SegmentKey: "mcc", Segment: labels.OtherSegment}: {Pred: 2, Flag: 2},
			},
		},
		{
			name: "a missing attribute stays missing once the segment cap is reached",
			cfg:  labels.Config{SegmentKeys: []string{"mcc"}, MaxSegmentValues: 2},
			steps: []ingest.Batch{
				Preds(Pred("a", "v5", 0.9, "mcc", "1"), Pred("b", "v5", 0.9, "mcc", "2"), Pred("c", "v5", 0.9, "mcc", "3"),
					Pred("d", "v5", 0.9), Pred("e", "v5", 0.9, "mcc", "")),
			},
			want: map[tally.Key]OC{
				v5: {Pred: 5, Flag: 5},
				{Variant: "v5", SegmentKey: "mcc", Segment: "1"}:                   {Pred: 1, Flag: 1},
				{Variant: "v5", SegmentKey: "mcc", Segment: "2"}:                   {Pred: 1, Flag: 1},
				{Variant: "v5", SegmentKey: "mcc", Segment: labels.OtherSegment}:   {Pred: 1, Flag: 1},
				{Variant: "v5", SegmentKey: "mcc", Segment: labels.MissingSegment}: {Pred: 2, Flag: 2},
			},
		},
		{
			name: "an errored prediction counts as an error and is never resolved",
			steps: []ingest.Batch{
				Preds(ingest.Prediction{InferenceID: "a", Variant: "v5", Time: T0, Error: "ModelError", Threshold: 0.5}),
				Labels(Label("a", true, time.Hour)),
			},
			want: map[tally.Key]OC{v5: {Err: 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, _ := openApplied(t, open, tc.cfg, tc.steps)
			tl := ReadTallies(t, st)
			checkSeries(t, tl.outcomes(), tc.want) // pair series: pairedCells
			tl.CheckBucketsSumToAllTime(t)
			if n, err := st.Unmatched(ctx); err != nil || n != tc.unmatched {
				t.Errorf("unmatched labels: got %d (%v), want %d", n, err, tc.unmatched)
			}
		})
	}
}

func applyReportsAppliedAndDuplicates(t *testing.T, open Open) {
	st, _ := open(t)
	j := openJoin(t, st, labels.Config{}, nil)
	b := ingest.Batch{
		Predictions: []ingest.Prediction{Pred("a", "v5", 0.9), Pred("a", "v5", 0.9), Pred("b", "v5", 0.1)},
		Labels:      []ingest.Label{Label("a", true, time.Hour), Label("a", true, time.Hour), Label("a", false, 0)},
	}
	if got, want := apply(t, j, b), (ingest.Result{Applied: 3, Duplicates: 3}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func maturity(t *testing.T, open Open) {
	ctx := context.Background()
	st, _ := open(t)
	j := openJoin(t, st, labels.Config{Maturity: 24 * time.Hour}, nil)
	apply(t, j, Preds(Pred("a", "v5", 0.9), Pred("b", "v5", 0.1), Pred("c", "v5", 0.9)))
	apply(t, j, Labels(Label("c", true, time.Hour)))
	v5 := func() OC { return OCOf(ReadTallies(t, st).AllTime[tally.Key{Variant: "v5"}]) }
	// Not yet mature.
	if n, err := j.Mature(ctx, T0.Add(23*time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("before maturity: resolved %d (err %v), want 0", n, err)
	}
	n, err := j.Mature(ctx, T0.Add(25*time.Hour), 100)
	if err != nil || n != 2 {
		t.Fatalf("after maturity: resolved %d (err %v), want 2 (a and b; c has a label)", n, err)
	}
	if got, want := v5(), (OC{Pred: 3, Flag: 2, TP: 1, FP: 1, TN: 1, Matured: 2}); got != want {
		t.Fatalf("after maturity: got %+v, want %+v", got, want)
	}
	// Maturing again finds nothing; a late label is a correction.
	due(t, st, farFuture, 0)
	if n, err := j.Mature(ctx, T0.Add(48*time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("second sweep: resolved %d (err %v), want 0", n, err)
	}
	apply(t, j, Labels(Label("a", true, 30*time.Hour)))
	if got, want := v5(), (OC{Pred: 3, Flag: 2, TP: 2, TN: 1, Matured: 1}); got != want {
		t.Fatalf("after late label: got %+v, want %+v", got, want)
	}
	if refs := due(t, st, farFuture, 0); len(refs) != 0 {
		t.Errorf("maturity index still holds %v", refs)
	}
}

func maturityDisabled(t *testing.T, open Open) {
	st, _ := open(t)
	j := openJoin(t, st, labels.Config{}, nil)
	apply(t, j, Preds(Pred("a", "v5", 0.9)))
	if n, err := j.Mature(context.Background(), farFuture, 100); err != nil || n != 0 {
		t.Fatalf("resolved %d (err %v), want 0", n, err)
	}
	if refs := due(t, st, farFuture, 0); len(refs) != 0 {
		t.Errorf("maturity index written with maturity disabled: %v", refs)
	}
}

// maturityIndexAndRestart: the maturity index lists pending predictions oldest first,
// up to a time and a limit; a reopened store restores what was counted and matures
// them.
func maturityIndexAndRestart(t *testing.T, open Open) {
	ctx := context.Background()
	cfg := labels.Config{Maturity: 24 * time.Hour, SegmentKeys: []string{"mcc"}}
	st, reopen := open(t)
	j := openJoin(t, st, cfg, nil)
	at := func(p ingest.Prediction, d time.Duration) ingest.Prediction { p.Time = T0.Add(d); return p }
	// d is the oldest, then b, a, c; e has only a shadow prediction, older than all.
	apply(t, j, Preds(
		at(Pred("a", "v5", 0.9, "mcc", "1"), 3*time.Minute),
		at(Pred("b", "v5", 0.1, "mcc", "2"), 2*time.Minute),
		at(Pred("c", "v5", 0.9), 4*time.Minute),
		at(Pred("d", "v5", 0.9), time.Minute),
		at(Pred("d", "v6", 0.2), 5*time.Minute),
		at(Pred("e", "v6", 0.7), -time.Hour),
	))
	apply(t, j, Labels(Label("c", true, time.Hour)))
	stored := ReadTallies(t, st).AllTime

	// The reopened store (a restarted process, or another one on a shared store) sees
	// the pending predictions oldest first, the labelled one gone, and can stop at a
	// limit.
	st2 := reopen(t)
	want := []labels.DueRef{
		{ID: "e", Variant: "v6", Time: T0.Add(-time.Hour).UnixNano()},
		{ID: "d", Variant: "v5", Time: T0.Add(time.Minute).UnixNano()},
		{ID: "b", Variant: "v5", Time: T0.Add(2 * time.Minute).UnixNano()},
		{ID: "a", Variant: "v5", Time: T0.Add(3 * time.Minute).UnixNano()},
		{ID: "d", Variant: "v6", Time: T0.Add(5 * time.Minute).UnixNano()},
	}
	if got := due(t, st2, T0.Add(time.Hour), len(want)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("due:\n got %v\nwant %v", got, want)
	}
	if got, err := st2.Due(ctx, T0.Add(2*time.Minute), 100); err != nil || fmt.Sprint(got) != fmt.Sprint(want[:2]) {
		t.Fatalf("due before T0+2m: got %v (%v), want %v", got, err, want[:2])
	}
	if got, err := st2.Due(ctx, T0.Add(time.Hour), 3); err != nil || fmt.Sprint(got) != fmt.Sprint(want[:3]) {
		t.Fatalf("due, limit 3: got %v (%v), want %v", got, err, want[:3])
	}

	// The restarted join restores what the first one counted.
	obs := NewRecorder()
	j2 := openJoin(t, st2, cfg, obs)
	if fmt.Sprint(obs.Restored) != fmt.Sprint(stored) || len(obs.Restored) == 0 {
		t.Fatalf("restored %v, stored %v", obs.Restored, stored)
	}

	// Maturity through the reopened store resolves a, b, d (both) and e as negatives.
	if n, err := j2.Mature(ctx, T0.Add(25*time.Hour), 100); err != nil || n != 5 {
		t.Fatalf("matured %d (err %v), want 5", n, err)
	}
	due(t, st2, T0.Add(48*time.Hour), 0)
	if n, err := j2.Mature(ctx, T0.Add(48*time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("second sweep matured %d (err %v), want 0", n, err)
	}
	// A late label is a correction.
	apply(t, j2, Labels(Label("a", true, 30*time.Hour)))
	tl := ReadTallies(t, st2)
	if got, want := OCOf(tl.AllTime[tally.Key{Variant: "v5"}]), (OC{Pred: 4, Flag: 3, TP: 2, FP: 1, TN: 1, Matured: 2}); got != want {
		t.Errorf("v5: got %+v, want %+v", got, want)
	}
	if got, want := OCOf(tl.AllTime[tally.Key{Variant: "v6"}]), (OC{Pred: 2, Flag: 1, FP: 1, TN: 1, Matured: 2}); got != want {
		t.Errorf("v6: got %+v, want %+v", got, want)
	}
	tl.CheckBucketsSumToAllTime(t)
}

// reopenRestores: a reopened store restores the tallies (all-time and buckets), the
// unmatched count, the maturity index and the records.
func reopenRestores(t *testing.T, open Open) {
	ctx := context.Background()
	cfg := labels.Config{SegmentKeys: []string{"mcc"}, Maturity: time.Hour, Bucket: 5 * time.Minute}
	st, reopen := open(t)
	j := openJoin(t, st, cfg, nil)
	var b ingest.Batch
	for i := range 100 {
		b.Predictions = append(b.Predictions, ingest.Prediction{
			InferenceID: fmt.Sprintf("id-%03d", i), Variant: "v5", Score: float64(i) / 100, Threshold: 0.5,
			Time: T0.Add(time.Duration(i) * time.Minute), Attributes: map[string]string{"mcc": fmt.Sprint(i % 3)},
		})
	}
	for i := range 40 { // ids 0..39 labeled: positive when even
		b.Labels = append(b.Labels, ingest.Label{InferenceID: fmt.Sprintf("id-%03d", i), Positive: i%2 == 0, Time: T0})
	}
	b.Labels = append(b.Labels, ingest.Label{InferenceID: "nobody", Positive: true, Time: T0})
	apply(t, j, b)

	st = reopen(t)
	tl := NewRecorder()
	j = openJoin(t, st, cfg, tl)
	// Scores 0.00..0.39 are all below threshold: 20 FN (even) and 20 TN (odd).
	if got, want := OCOf(tl.Restored[tally.Key{Variant: "v5"}]), (OC{Pred: 100, Flag: 50, FN: 20, TN: 20}); got != want {
		t.Fatalf("restored all-time tally %+v, want %+v", got, want)
	}
	var perBucket int64
	for _, c := range tl.RestoredBuckets[tally.Key{Variant: "v5"}] {
		perBucket += c.Predictions
	}
	if perBucket != 100 {
		t.Errorf("restored bucket tallies hold %d predictions, want 100", perBucket)
	}
	if n := len(tl.RestoredBuckets[tally.Key{Variant: "v5"}]); n != 20 {
		t.Errorf("100 minutes of predictions in 5-minute buckets: got %d buckets, want 20", n)
	}
	var segTotal int64
	for k, c := range tl.Restored {
		if k.SegmentKey == "mcc" {
			segTotal += c.Predictions
		}
	}
	if segTotal != 100 {
		t.Errorf("segments sum to %d predictions, want 100", segTotal)
	}
	if n, err := st.Unmatched(ctx); err != nil || n != 1 {
		t.Errorf("unmatched = %d (%v), want 1", n, err)
	}
	// 60 predictions are pending; maturity is 1h after prediction time. Pending ids
	// 40..99 at T0+40m..T0+99m; due before T0+90m: 40..89 → 50.
	refs := due(t, st, T0.Add(90*time.Minute), 50)
	if len(refs) != 50 {
		t.Fatalf("due before T0+90m: %d, want 50", len(refs))
	}
	for i := 1; i < len(refs); i++ {
		if refs[i].Time < refs[i-1].Time {
			t.Fatalf("due not oldest first at %d", i)
		}
	}
	n, err := j.Mature(ctx, T0.Add(90*time.Minute+time.Hour), 1000)
	if err != nil || n != 50 {
		t.Fatalf("matured %d (%v), want 50", n, err)
	}
	recs, err := st.Records(ctx, []string{"id-050", "id-000", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if recs[2] != nil {
		t.Errorf("missing id returned %+v", recs[2])
	}
	if p := recs[0].Preds[0]; p.Outcome != tally.FalsePositive || !p.Matured {
		t.Errorf("id-050 after maturity: %+v, want matured FP", p)
	}
	if p := recs[1].Preds[0]; p.Outcome != tally.FalseNegative || p.Matured {
		t.Errorf("id-000: %+v, want labeled FN", p)
	}
}

// step is a batch to apply, or (mature true) a maturity sweep long after everything.
type step struct {
	b      ingest.Batch
	mature bool
}

func applyStep(b ingest.Batch) step { return step{b: b} }

var matureAll = step{mature: true}

func declinedInferences(t *testing.T, open Open) {
	v5, v6 := tally.Key{Variant: "v5"}, tally.Key{Variant: "v6"}
	maturity := 24 * time.Hour
	negative := labels.Config{Maturity: maturity}
	censored := labels.Config{Maturity: maturity, Declined: labels.DeclinedCensored}
	reviewed := labels.Config{Maturity: maturity, Declined: labels.DeclinedCensored, ReviewSources: []string{"review"}}
	// v5 is the serving (production) variant, v6 the shadow.
	declinedPair := Preds(Pred("a", "v5", 0.9), Pred("a", "v6", 0.2))
	tests := []struct {
		name  string
		cfg   labels.Config
		steps []step
		want  map[tally.Key]cc
	}{
		{
			name:  "negative: a declined inference matures as the serving model's false positive",
			cfg:   negative,
			steps: []step{applyStep(declinedPair), matureAll},
			want:  map[tally.Key]cc{v5: {OC: OC{Pred: 1, Flag: 1, FP: 1, Matured: 1}}, v6: {OC: OC{Pred: 1, TN: 1, Matured: 1}}},
		},
		{
			name:  "censored: a declined inference never matures, production and shadow alike",
			cfg:   censored,
			steps: []step{applyStep(declinedPair), matureAll},
			want:  map[tally.Key]cc{v5: {OC: OC{Pred: 1, Flag: 1}, Censored: 1, CensoredFlagged: 1}, v6: {OC: OC{Pred: 1}, Censored: 1}},
		},
		{
			name:  "censored: an inference the serving variant approved matures as usual",
			cfg:   censored,
			steps: []step{applyStep(Preds(Pred("a", "v5", 0.2), Pred("a", "v6", 0.9))), matureAll},
			want:  map[tally.Key]cc{v5: {OC: OC{Pred: 1, TN: 1, Matured: 1}}, v6: {OC: OC{Pred: 1, Flag: 1, FP: 1, Matured: 1}}},
		},
		{
			name:  "censored without review sources: any label resolves a declined inference",
			cfg:   censored,
			steps: []step{applyStep(declinedPair), matureAll, applyStep(Labels(sourced(Label("a", true, time.Hour), "dispute")))},
			want:  map[tally.Key]cc{v5: {OC: OC{Pred: 1, Flag: 1, TP: 1}}, v6: {OC: OC{Pred: 1, FN: 1}}},
		},
		{
			name:  "censored with review sources: a dispute leaves a declined inference censored",
			cfg:   reviewed,
			steps: []step{applyStep(declinedPair), applyStep(Labels(sourced(Label("a", false, time.Hour), "chargeback_window"))), matureAll},
			want:  map[tally.Key]cc{v5: {OC: OC{Pred: 1, Flag: 1}, Censored: 1, CensoredFlagged: 1}, v6: {OC: OC{Pred: 1}, Censored: 1}},
		},
		{
			name: "censored with review sources: a review label resolves it, and a newer dispute does not undo that",
			cfg:  reviewed,
			steps: []step{applyStep(declinedPair), applyStep(Labels(sourced(Label("a", true, time.Hour), "review"))),
				applyStep(Labels(sourced(Label("a", false, 40*24*time.Hour), "chargeback_window"))), matureAll},
			want: map[tally.Key]cc{v5: {OC: OC{Pred: 1, Flag: 1, TP: 1}}, v6: {OC: OC{Pred: 1, FN: 1}}},
		},
		{
			name: "censored with review sources: an older review label arriving after a newer dispute still resolves",
			cfg:  reviewed,
			steps: []step{applyStep(declinedPair), applyStep(Labels(sourced(Label("a", false, 40*24*time.Hour), "chargeback_window"))),
				applyStep(Labels(sourced(Label("a", true, time.Hour), "review")))},
			want: map[tally.Key]cc{v5: {OC: OC{Pred: 1, Flag: 1, TP: 1}}, v6: {OC: OC{Pred: 1, FN: 1}}},
		},
		{
			name: "censored with review sources: on an approved inference the latest label wins, review or not",
			cfg:  reviewed,
			steps: []step{applyStep(Preds(Pred("a", "v5", 0.2))), applyStep(Labels(sourced(Label("a", false, time.Hour), "review"))),
				applyStep(Labels(sourced(Label("a", true, 2*time.Hour), "dispute")))},
			want: map[tally.Key]cc{v5: {OC: OC{Pred: 1, FN: 1}}},
		},
		{
			name:  "censored: a serving prediction arriving after the shadow matured censors the shadow again",
			cfg:   censored,
			steps: []step{applyStep(Preds(Pred("a", "v6", 0.9))), matureAll, applyStep(Preds(Pred("a", "v5", 0.8))), matureAll},
			want:  map[tally.Key]cc{v5: {OC: OC{Pred: 1, Flag: 1}, Censored: 1, CensoredFlagged: 1}, v6: {OC: OC{Pred: 1, Flag: 1}, Censored: 1, CensoredFlagged: 1}},
		},
		{
			name: "censored with review sources: a serving prediction arriving after a dispute label takes the resolution back",
			cfg:  reviewed,
			steps: []step{applyStep(Preds(Pred("a", "v6", 0.9))), applyStep(Labels(sourced(Label("a", false, time.Hour), "dispute"))),
				applyStep(Preds(Pred("a", "v5", 0.8)))},
			want: map[tally.Key]cc{v5: {OC: OC{Pred: 1, Flag: 1}, Censored: 1, CensoredFlagged: 1}, v6: {OC: OC{Pred: 1, Flag: 1}, Censored: 1, CensoredFlagged: 1}},
		},
		{
			name:  "censored: a label before the predictions resolves a declined inference on arrival",
			cfg:   censored,
			steps: []step{applyStep(Labels(Label("a", true, time.Hour))), applyStep(declinedPair), matureAll},
			want:  map[tally.Key]cc{v5: {OC: OC{Pred: 1, Flag: 1, TP: 1}}, v6: {OC: OC{Pred: 1, FN: 1}}},
		},
		{
			name: "censored: an errored serving prediction declines nothing",
			cfg:  censored,
			steps: []step{applyStep(Preds(ingest.Prediction{InferenceID: "a", Variant: "v5", Role: ingest.RoleProduction, Time: T0, Error: "ModelError", Threshold: 0.5},
				Pred("a", "v6", 0.9))), matureAll},
			want: map[tally.Key]cc{v5: {OC: OC{Err: 1}}, v6: {OC: OC{Pred: 1, Flag: 1, FP: 1, Matured: 1}}},
		},
		{
			name:  "censored: a flagged shadow alone declines nothing",
			cfg:   censored,
			steps: []step{applyStep(Preds(Pred("a", "v6", 0.9))), matureAll},
			want:  map[tally.Key]cc{v6: {OC: OC{Pred: 1, Flag: 1, FP: 1, Matured: 1}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, _ := open(t)
			j := openJoin(t, st, tc.cfg, nil)
			for i, s := range tc.steps {
				var err error
				if s.mature {
					_, err = j.Mature(ctx, farFuture, 1000)
				} else {
					_, err = j.Apply(ctx, s.b)
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			tl := ReadTallies(t, st)
			got := map[tally.Key]cc{}
			for k, c := range tl.AllTime {
				if !c.IsZero() && !k.Paired() {
					got[k] = ccOf(c)
				}
			}
			checkSeries(t, got, tc.want)
			tl.CheckBucketsSumToAllTime(t)
			// Nothing open is left after the last sweep, and nothing censored stays
			// in the maturity index.
			if tc.steps[len(tc.steps)-1].mature {
				if refs := due(t, st, farFuture, 0); len(refs) != 0 {
					t.Errorf("maturity index still holds %v", refs)
				}
			}
		})
	}
}

// censoredDeclinedInferences: with VERDICT_DECLINED=censored, a declined inference's
// predictions leave the maturity index and count as censored; a review label resolves
// them, a dispute does not; a reopened store reads the same counts.
func censoredDeclinedInferences(t *testing.T, open Open) {
	ctx := context.Background()
	cfg := labels.Config{Maturity: time.Hour, Declined: labels.DeclinedCensored, ReviewSources: []string{"review"}}
	st, reopen := open(t)
	j := openJoin(t, st, cfg, nil)
	review := sourced(Label("reviewed", true, time.Hour), "review")
	dispute := sourced(Label("declined", false, time.Hour), "dispute")
	apply(t, j, ingest.Batch{
		Predictions: []ingest.Prediction{Pred("declined", "v5", 0.9), Pred("declined", "v6", 0.3),
			Pred("reviewed", "v5", 0.7), Pred("approved", "v5", 0.2), Pred("approved", "v6", 0.8)},
		Labels: []ingest.Label{dispute},
	})
	if n, err := j.Mature(ctx, T0.Add(2*time.Hour), 100); err != nil || n != 2 {
		t.Fatalf("matured %d (%v), want 2 (the approved inference)", n, err)
	}
	if refs := due(t, st, farFuture, 0); len(refs) != 0 {
		t.Fatalf("maturity index: %v, want empty: censored predictions never mature", refs)
	}
	apply(t, j, Labels(review))
	tl := ReadTallies(t, reopen(t))
	tl.CheckBucketsSumToAllTime(t)
	v5, v6 := tl.AllTime[tally.Key{Variant: "v5"}], tl.AllTime[tally.Key{Variant: "v6"}]
	if got, want := [4]int64{v5.TP, v5.TN, v5.Censored, v5.CensoredFlagged}, [4]int64{1, 1, 1, 1}; got != want {
		t.Errorf("v5 tp, tn, censored, censored flagged = %v, want %v (%+v)", got, want, v5)
	}
	if got, want := [4]int64{v6.FP, v6.Matured, v6.Censored, v6.CensoredFlagged}, [4]int64{1, 1, 1, 0}; got != want {
		t.Errorf("v6 fp, matured, censored, censored flagged = %v, want %v (%+v)", got, want, v6)
	}
}

func pairedCells(t *testing.T, open Open) {
	pair := tally.Key{Variant: "v5", Versus: "v6"}
	seg := func(v string) tally.Key {
		return tally.Key{Variant: "v5", Versus: "v6", SegmentKey: "merchant_category", Segment: v}
	}
	cell := func(c tally.LabelClass, a tally.Agreement) tally.PairCounts {
		var p tally.PairCounts
		p[c][a] = 1
		return p
	}
	errored := ingest.Prediction{InferenceID: "a", Variant: "v6", Role: ingest.RoleShadow, Time: T0, Error: "ModelError", Threshold: 0.5}
	tests := []struct {
		name  string
		cfg   labels.Config
		steps []ingest.Batch
		now   time.Time // for a maturity pass after the steps
		after []ingest.Batch
		want  map[tally.Key]tally.PairCounts
	}{
		{
			name:  "a lone prediction is not paired",
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9))},
			want:  map[tally.Key]tally.PairCounts{},
		},
		{
			name:  "production and shadow of one request pair up, pending until labeled",
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9), Pred("a", "v6", 0.2))},
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassPending, tally.OnlyFirst)},
		},
		{
			name:  "the pair is keyed by variant name whichever arrives first",
			steps: []ingest.Batch{Preds(Pred("a", "v6", 0.9)), Preds(Pred("a", "v5", 0.2))},
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassPending, tally.OnlySecond)},
		},
		{
			name:  "a label moves the pair to its class",
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9), Pred("a", "v6", 0.7)), Labels(Label("a", true, time.Hour))},
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassPositive, tally.Both)},
		},
		{
			name:  "a label waiting for the second prediction counts the pair on arrival",
			steps: []ingest.Batch{Labels(Label("a", false, time.Hour)), Preds(Pred("a", "v5", 0.1)), Preds(Pred("a", "v6", 0.1))},
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassNegative, tally.Neither)},
		},
		{
			name: "a correction moves the pair once",
			steps: []ingest.Batch{
				Preds(Pred("a", "v5", 0.9), Pred("a", "v6", 0.2)),
				Labels(Label("a", true, time.Hour)), Labels(Label("a", false, 2*time.Hour)),
			},
			want: map[tally.Key]tally.PairCounts{pair: cell(tally.ClassNegative, tally.OnlyFirst)},
		},
		{
			name: "duplicates change nothing",
			steps: []ingest.Batch{
				Preds(Pred("a", "v5", 0.9), Pred("a", "v6", 0.9)), Preds(Pred("a", "v6", 0.1)),
				Labels(Label("a", true, time.Hour)), Labels(Label("a", true, time.Hour)),
			},
			want: map[tally.Key]tally.PairCounts{pair: cell(tally.ClassPositive, tally.Both)},
		},
		{
			name:  "an errored prediction does not pair",
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9)), Preds(errored), Labels(Label("a", true, time.Hour))},
			want:  map[tally.Key]tally.PairCounts{},
		},
		{
			name:  "segments of the pair are its first variant's",
			cfg:   labels.Config{SegmentKeys: []string{"merchant_category"}},
			steps: []ingest.Batch{Preds(Pred("a", "v6", 0.9, "merchant_category", "travel"), Pred("a", "v5", 0.9, "merchant_category", "grocery"))},
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassPending, tally.Both), seg("grocery"): cell(tally.ClassPending, tally.Both)},
		},
		{
			name:  "both predictions matured: the pair is matured",
			cfg:   labels.Config{Maturity: 24 * time.Hour},
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9), Pred("a", "v6", 0.2))},
			now:   T0.Add(25 * time.Hour),
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassMatured, tally.OnlyFirst)},
		},
		{
			name:  "a label after maturity is a correction of the pair too",
			cfg:   labels.Config{Maturity: 24 * time.Hour},
			steps: []ingest.Batch{Preds(Pred("a", "v5", 0.9), Pred("a", "v6", 0.2))},
			now:   T0.Add(25 * time.Hour),
			after: []ingest.Batch{Labels(Label("a", true, 40*time.Hour))},
			want:  map[tally.Key]tally.PairCounts{pair: cell(tally.ClassPositive, tally.OnlyFirst)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, j := openApplied(t, open, tc.cfg, tc.steps)
			if !tc.now.IsZero() {
				if _, err := j.Mature(ctx, tc.now, 100); err != nil {
					t.Fatal(err)
				}
			}
			applyAll(t, j, "after step", tc.after)
			tl := ReadTallies(t, st)
			got := map[tally.Key]tally.PairCounts{}
			for k, c := range tl.AllTime {
				if k.Paired() && c.Pair != (tally.PairCounts{}) {
					got[k] = c.Pair
				}
			}
			checkSeries(t, got, tc.want)
			tl.CheckBucketsSumToAllTime(t)
		})
	}
}

func failedCommitChangesNothing(t *testing.T, open Open) {
	ctx := context.Background()
	st, reopen := open(t)
	fst := &faulty{Store: st}
	obs := NewRecorder()
	j := openJoin(t, fst, labels.Config{}, obs)
	diskFull := errors.New("disk full")
	fst.failNext = diskFull
	b := ingest.Batch{Predictions: []ingest.Prediction{Pred("a", "v5", 0.9)}, Labels: []ingest.Label{Label("a", true, time.Hour)}}
	if _, err := j.Apply(ctx, b); !errors.Is(err, diskFull) {
		t.Fatalf("Apply with failing store: err = %v, want an error", err)
	}
	recs, err := st.Records(ctx, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Observed) != 0 || recs[0] != nil {
		t.Fatalf("failed commit leaked: observed %v, record %+v", obs.Observed, recs[0])
	}
	// The retry applies everything once.
	apply(t, j, b)
	if got, want := OCOf(obs.Observed[tally.Key{Variant: "v5"}]), (OC{Pred: 1, Flag: 1, TP: 1}); got != want {
		t.Fatalf("after retry: got %+v, want %+v", got, want)
	}
	// A reopened join restores the same tallies.
	obs2 := NewRecorder()
	openJoin(t, reopen(t), labels.Config{}, obs2)
	if obs2.Restored[tally.Key{Variant: "v5"}] != obs.Observed[tally.Key{Variant: "v5"}] {
		t.Fatalf("restored %+v, observed %+v", obs2.Restored, obs.Observed)
	}
}

func conflictRereadsAndCountsOnce(t *testing.T, open Open) {
	st, _ := open(t)
	fst := &faulty{Store: st, partialConflicts: 3}
	j := openJoin(t, fst, labels.Config{SegmentKeys: []string{"merchant_category"}}, nil)
	s := RandomStream(42, 50, false)
	apply(t, j, ingest.Batch{Predictions: s.Preds})
	apply(t, j, ingest.Batch{Labels: s.Labels})
	if fst.partialConflicts != 0 {
		t.Fatalf("conflicts left %d: the test did not exercise the retries", fst.partialConflicts)
	}
	tl := ReadTallies(t, st)
	for k, w := range recount(s.Preds, s.Labels) {
		if got := OCOf(tl.AllTime[k]); got != w {
			t.Errorf("%+v: got %+v, recount %+v", k, got, w)
		}
	}
}

func concurrentCallersShareCommits(t *testing.T, open Open) {
	st, _ := open(t)
	j := openJoin(t, st, labels.Config{}, nil)
	var wg sync.WaitGroup
	var all []ingest.Prediction
	for w := range 8 {
		var mine []ingest.Prediction
		for i := range 200 {
			mine = append(mine, Pred(fmt.Sprintf("w%d-%d", w, i), "v5", 0.9))
		}
		all = append(all, mine...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range mine {
				if _, err := j.Apply(context.Background(), Preds(p)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := ReadTallies(t, st).AllTime[tally.Key{Variant: "v5"}].Predictions; got != int64(len(all)) {
		t.Fatalf("predictions: got %d, want %d", got, len(all))
	}
}
