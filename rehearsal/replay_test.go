package rehearsal

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
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
	err = Replay(context.Background(), rec, cfg, func(_ context.Context, now time.Time, w *window.Windows) error {
		steps++
		snap := w.Snapshot(window.Span(time.Hour))
		if !snap.End.Equal(now) {
			t.Errorf("windows end at %s, want the simulated time %s", snap.End, now)
		}
		v5, _ := snap.Row(labels.Key{Variant: "v5"})
		v6, _ := snap.Row(labels.Key{Variant: "v6"})
		got := counts{v5.Counts.Predictions, v5.Counts.TP, v5.Counts.FP, v6.Counts.FN}
		if w := want[now.Sub(t0)]; got != w {
			t.Errorf("at %s: got %+v, want %+v", now.Format("15:04"), got, w)
		}
		return nil
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
	err = Replay(context.Background(), rec, cfg, func(_ context.Context, now time.Time, w *window.Windows) error {
		steps++
		snap := w.Snapshot(window.AllTime)
		if _, ok := snap.Row(labels.Key{Variant: "v5"}); ok {
			t.Errorf("v5 counted although only v6 was served")
		}
		if steps == 2 {
			return ErrStop
		}
		return nil
	})
	if err != nil || steps != 2 {
		t.Fatalf("Replay = %v after %d steps; want nil after 2 (ErrStop)", err, steps)
	}
}
