package rehearsal

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

func decoder(t *testing.T) *ingest.Decoder {
	t.Helper()
	d, err := ingest.NewDecoder(ingest.DecoderConfig{DefaultThreshold: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The recording below, out of order on purpose: two variants score id a at 09:00
// and id b at 09:02; a's label (fraud) is known at 09:03, b's (legit) at 09:07;
// one line is malformed.
const (
	recordedPredictions = `{"inference_id":"b","variant":"v5","score":0.9,"time":"2026-01-05T09:02:00Z"}
{"inference_id":"a","variant":"v5","score":0.8,"time":"2026-01-05T09:00:00Z"}
{"inference_id":"a","variant":"v6","score":0.2,"time":"2026-01-05T09:00:00Z"}
{"inference_id":"broken","variant":"v5","score":1.7,"time":"2026-01-05T09:00:00Z"}
`
	recordedLabels = `{"inference_id":"b","label":false,"time":"2026-01-05T09:07:00Z"}
{"inference_id":"a","label":true,"time":"2026-01-05T09:03:00Z"}
`
)

func TestReplayAppliesEventsOnEventTime(t *testing.T) {
	rec, err := Read(decoder(t), strings.NewReader(recordedPredictions), strings.NewReader(recordedLabels), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Rejected != 1 || len(rec.Predictions) != 3 || len(rec.Labels) != 2 {
		t.Fatalf("read %d predictions, %d labels, %d rejected; want 3, 2, 1", len(rec.Predictions), len(rec.Labels), rec.Rejected)
	}
	if !rec.Predictions[0].Time.Before(rec.Predictions[2].Time) || rec.Labels[0].InferenceID != "a" {
		t.Fatalf("events are not in event-time order: %+v %+v", rec.Predictions, rec.Labels)
	}
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	type counts struct{ v5Preds, v5TP, v5FP, v6FN int64 }
	want := map[time.Duration]counts{
		0:               {1, 0, 0, 0}, // a predicted, no label yet
		2 * time.Minute: {2, 0, 0, 0}, // b predicted
		4 * time.Minute: {2, 1, 0, 1}, // a's label: v5 caught it, v6 missed it
		6 * time.Minute: {2, 1, 0, 1},
		8 * time.Minute: {2, 1, 1, 1}, // b's label: v5 flagged a legit one
	}
	steps := 0
	cfg := ReplayConfig{Join: labels.Config{Bucket: time.Minute}, Longest: time.Hour, From: t0, To: t0.Add(8 * time.Minute), Step: 2 * time.Minute, Dir: t.TempDir()}
	err = Replay(context.Background(), rec, cfg, func(_ context.Context, tk Tick) (time.Time, error) {
		now, w := tk.Now, tk.Windows
		steps++
		snap := w.Snapshot(window.Span(time.Hour))
		if !snap.End.Equal(now) {
			t.Errorf("windows end at %s, want the simulated time %s", snap.End, now)
		}
		v5, _ := snap.Row(tally.Key{Variant: "v5"})
		v6, _ := snap.Row(tally.Key{Variant: "v6"})
		got := counts{v5.Counts.Predictions, v5.Counts.TP, v5.Counts.FP, v6.Counts.FN}
		if w := want[now.Sub(t0)]; got != w {
			t.Errorf("at %s: got %+v, want %+v", now.Format("15:04"), got, w)
		}
		return time.Time{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if steps != 5 {
		t.Errorf("%d steps, want 5", steps)
	}
}

func TestReplayServesOnlyChosenPredictionsAndStops(t *testing.T) {
	rec, err := Read(decoder(t), strings.NewReader(recordedPredictions), strings.NewReader(recordedLabels), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	steps := 0
	cfg := ReplayConfig{Longest: time.Hour, From: t0, To: t0.Add(time.Hour), Step: 5 * time.Minute, Dir: t.TempDir(),
		Serve: func(p ingest.Prediction) bool { return p.Variant == "v6" }}
	err = Replay(context.Background(), rec, cfg, func(_ context.Context, tk Tick) (time.Time, error) {
		steps++
		snap := tk.Windows.Snapshot(window.AllTime)
		if _, ok := snap.Row(tally.Key{Variant: "v5"}); ok {
			t.Errorf("v5 counted although only v6 was served")
		}
		if steps == 2 {
			return time.Time{}, ErrStop
		}
		return time.Time{}, nil
	})
	if err != nil || steps != 2 {
		t.Fatalf("Replay = %v after %d steps; want nil after 2 (ErrStop)", err, steps)
	}
}

func TestReplayReportsChangesAndSkipsToTheNextOne(t *testing.T) {
	// One prediction at 09:00, the next at 12:00; a's label comes at 11:00. With
	// a 1h sliding window over 5m buckets, the 09:00 bucket leaves it at 10:05.
	// A callback that skips whenever nothing changed sees only the changes and
	// the tick after each.
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	rec := &Recording{
		Predictions: []ingest.Prediction{
			{InferenceID: "a", Variant: "v5", Score: 0.9, Threshold: 0.5, Time: t0},
			{InferenceID: "b", Variant: "v5", Score: 0.1, Threshold: 0.5, Time: t0.Add(3 * time.Hour)},
		},
		Labels: []ingest.Label{{InferenceID: "a", Positive: true, Time: t0.Add(2 * time.Hour)}},
	}
	type tick struct {
		at      string
		changed bool
		next    string
	}
	var got []tick
	var progress []Progress
	cfg := ReplayConfig{Join: labels.Config{Bucket: 5 * time.Minute}, Longest: 24 * time.Hour, Spans: []time.Duration{time.Hour},
		From: t0, To: t0.Add(3*time.Hour + 10*time.Minute), Step: 5 * time.Minute, Dir: t.TempDir(),
		Progress: func(p Progress) { progress = append(progress, p) }}
	err := Replay(context.Background(), rec, cfg, func(_ context.Context, tk Tick) (time.Time, error) {
		next := ""
		if !tk.NextChange.IsZero() {
			next = tk.NextChange.Format("15:04")
		}
		got = append(got, tick{tk.Now.Format("15:04"), tk.Changed, next})
		all := tk.Windows.Snapshot(window.AllTime)
		if row, _ := all.Row(tally.Key{Variant: "v5"}); tk.Now.Equal(t0.Add(2*time.Hour)) && row.Counts.TP != 1 {
			t.Errorf("at 11:00 the label known then is not applied: %+v", row.Counts)
		}
		if !tk.Changed {
			return tk.NextChange.Add(time.Hour), nil // past the next change: held at it
		}
		return time.Time{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []tick{
		{"09:00", true, "10:05"}, {"09:05", false, "10:05"},
		{"10:05", true, "11:00"}, {"10:10", false, "11:00"},
		{"11:00", true, "12:00"}, {"11:05", false, "12:00"},
		{"12:00", true, "13:05"}, {"12:05", false, "13:05"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ticks\n got %v\nwant %v", got, want)
	}
	last := progress[len(progress)-1]
	if len(progress) != len(got) || last.Applied != 3 || last.Total != 3 || last.Now.Format("15:04") != "12:05" {
		t.Errorf("%d progress reports, last %+v; want one per tick, ending with 3 of 3 events at 12:05", len(progress), last)
	}
}

func TestReplayMarksMaturityAndTheKeptRangeAsChanges(t *testing.T) {
	// A prediction at 09:00 matures (30m) after 09:30, at the 09:35 tick; it
	// leaves the 2h kept range after 11:00: a period can no longer start at its
	// bucket at 11:05, and the bucket is dropped at 11:10. Those ticks are
	// changes with no event.
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	rec := &Recording{Predictions: []ingest.Prediction{{InferenceID: "a", Variant: "v5", Score: 0.9, Threshold: 0.5, Time: t0}}}
	var changed []string
	cfg := ReplayConfig{Join: labels.Config{Bucket: 5 * time.Minute, Maturity: 30 * time.Minute}, Longest: 2 * time.Hour,
		From: t0, To: t0.Add(3 * time.Hour), Step: 5 * time.Minute, Dir: t.TempDir()}
	err := Replay(context.Background(), rec, cfg, func(_ context.Context, tk Tick) (time.Time, error) {
		if tk.Changed {
			changed = append(changed, tk.Now.Format("15:04"))
		}
		if tk.Now.Equal(t0.Add(35 * time.Minute)) {
			if row, _ := tk.Windows.Snapshot(window.AllTime).Row(tally.Key{Variant: "v5"}); row.Counts.Matured != 1 {
				t.Errorf("at 09:35 the prediction has not matured: %+v", row.Counts)
			}
		}
		return time.Time{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"09:00", "09:35", "11:05", "11:10"}
	if !reflect.DeepEqual(changed, want) {
		t.Errorf("changes at %v, want %v", changed, want)
	}
}

func TestRecordingBetweenKeepsTheEventsOfThatTime(t *testing.T) {
	rec, err := Read(decoder(t), strings.NewReader(recordedPredictions), strings.NewReader(recordedLabels), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := func(hm string) time.Time {
		tm, _ := time.Parse("2006-01-02T15:04", "2026-01-05T"+hm)
		return tm
	}
	tests := []struct {
		name          string
		from, to      time.Time
		preds, labels int
	}{
		{"open bounds keep everything", time.Time{}, time.Time{}, 3, 2},
		{"bounds are inclusive", at("09:02"), at("09:07"), 1, 2},
		{"from drops earlier predictions and labels", at("09:01"), time.Time{}, 1, 2},
		{"to drops later ones", time.Time{}, at("09:03"), 3, 1},
		{"an empty stretch keeps nothing", at("09:08"), at("09:09"), 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := rec.Between(tc.from, tc.to)
			if len(b.Predictions) != tc.preds || len(b.Labels) != tc.labels {
				t.Errorf("%d predictions, %d labels; want %d, %d", len(b.Predictions), len(b.Labels), tc.preds, tc.labels)
			}
		})
	}
}
