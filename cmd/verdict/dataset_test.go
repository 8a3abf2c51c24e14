package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// labelFacts is what the test reads back about each labeled inference: its
// label's source, sign and delay after the prediction, and v5's score.
type labelFacts struct {
	source   string
	positive bool
	delay    time.Duration
	v5Score  float64
}

// readLabelFacts reads a dataset's files without verdict's code.
func readLabelFacts(t *testing.T, dir string) (facts []labelFacts, inferences int, v5Flagged map[string]bool) {
	t.Helper()
	rec := readRecorded(t, dir)
	predAt := map[string]time.Time{}
	v5 := map[string]float64{}
	v5Flagged = map[string]bool{}
	for _, p := range rec.preds {
		predAt[p.id] = p.at
		if p.variant == "v5" {
			v5[p.id] = p.score
			v5Flagged[p.id] = p.score >= 0.5
		}
	}
	sources := map[string]string{}
	eachLine(t, filepath.Join(dir, "labels.ndjson"), func(b []byte) {
		var l struct {
			ID     string `json:"inference_id"`
			Source string `json:"source"`
		}
		if json.Unmarshal(b, &l) == nil {
			sources[l.ID] = l.Source
		}
	})
	for _, l := range rec.labels {
		at, ok := predAt[l.id]
		if !ok {
			t.Fatalf("label for %s, which was never predicted", l.id)
		}
		facts = append(facts, labelFacts{sources[l.id], l.positive, l.at.Sub(at), v5[l.id]})
	}
	return facts, len(predAt), v5Flagged
}

func TestDatasetRealisticLabelsArriveAsFraudLabelsDo(t *testing.T) {
	const day = 24 * time.Hour
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	write := func(t *testing.T, labels labelProcess, seed uint64) string {
		t.Helper()
		dir := t.TempDir()
		_, err := writeDataset(context.Background(), datasetOptions{dir: dir, start: start, duration: time.Hour, shadow: 20 * time.Minute,
			rate: 3, labels: labels, regress: "electronics", seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}

	t.Run("every label comes from one of the processes and at its delay", func(t *testing.T) {
		rl := defaultRealisticLabels()
		rl.declineShare = 0 // every request goes through: enough fraud labels to measure
		facts, n, _ := readLabelFacts(t, write(t, rl, 5))
		count := map[string]int{}
		var disputes []time.Duration
		for _, f := range facts {
			count[f.source]++
			var lo, hi time.Duration
			switch f.source {
			case sourceIssuerAlert:
				lo, hi = 5*time.Minute, 4*time.Hour
			case sourceDispute:
				lo, hi = 3*day, 60*day
				disputes = append(disputes, f.delay)
			case sourceChargebackClose:
				lo, hi = 45*day, 46*day-time.Nanosecond
			default:
				t.Fatalf("label source %q", f.source)
			}
			if f.delay < lo || f.delay > hi || f.positive != (f.source != sourceChargebackClose) {
				t.Errorf("%s label (positive %v) %s after its prediction; want a %v label within [%s, %s]",
					f.source, f.positive, f.delay, f.source != sourceChargebackClose, lo, hi)
			}
		}
		fraud := count[sourceIssuerAlert] + count[sourceDispute]
		slices.Sort(disputes)
		median := disputes[len(disputes)/2]
		legit := n - fraud
		switch {
		case fraud < 300:
			t.Fatalf("only %d fraud labels out of %d inferences", fraud, n)
		case share(count[sourceIssuerAlert], fraud) < 0.02 || share(count[sourceIssuerAlert], fraud) > 0.09:
			t.Errorf("%d of %d fraud labels are issuer alerts; want about 5%%", count[sourceIssuerAlert], fraud)
		case median < 13*day || median > 17*day:
			t.Errorf("median dispute delay %s; want about 15 days", median)
		case share(count[sourceChargebackClose], legit) < 0.46 || share(count[sourceChargebackClose], legit) > 0.54:
			t.Errorf("%d of %d legitimate inferences confirmed; want about half", count[sourceChargebackClose], legit)
		}
	})

	t.Run("requests production flagged are declined and never labeled", func(t *testing.T) {
		facts, _, flagged := readLabelFacts(t, write(t, defaultRealisticLabels(), 5))
		flags := 0
		for _, f := range flagged {
			if f {
				flags++
			}
		}
		if flags < 100 {
			t.Fatalf("v5 flagged only %d requests", flags)
		}
		for _, f := range facts {
			if f.v5Score >= 0.5 {
				t.Errorf("a %s label for a request v5 scored %.3f (declined)", f.source, f.v5Score)
			}
		}
	})

	t.Run("the same seed writes the same files, another seed others", func(t *testing.T) {
		a, b, c := write(t, defaultRealisticLabels(), 9), write(t, defaultRealisticLabels(), 9), write(t, defaultRealisticLabels(), 10)
		for _, f := range []string{"predictions.ndjson", "labels.ndjson", "recording.json"} {
			fa, fb, fc := readFile(t, a, f), readFile(t, b, f), readFile(t, c, f)
			if !bytes.Equal(fa, fb) {
				t.Errorf("%s differs between two runs with seed 9", f)
			}
			if f != "recording.json" && bytes.Equal(fa, fc) {
				t.Errorf("%s is the same with seeds 9 and 10", f)
			}
		}
	})

	t.Run("fast labels come within 1.5 delays, corrections one delay later", func(t *testing.T) {
		facts, n, _ := readLabelFacts(t, write(t, fastLabels{delay: 10 * time.Minute}, 5))
		for _, f := range facts {
			if f.source != sourceDispute || f.delay < 5*time.Minute || f.delay > 25*time.Minute {
				t.Errorf("fast label %s after its prediction from %q", f.delay, f.source)
			}
		}
		if share(len(facts), n) < 0.85 {
			t.Errorf("%d labels for %d inferences; want about 90%% labeled", len(facts), n)
		}
	})
}

func share(k, n int) float64 { return float64(k) / float64(max(n, 1)) }

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDatasetFlagsAreCheckedByName(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a share above one", []string{"--alert-share", "1.5"}, "--alert-share 1.5"},
		{"a dispute median outside its bounds", []string{"--dispute-median", "90d"}, "--dispute-median 90d"},
		{"days that are not a number", []string{"--chargeback-window", "soon"}, `"soon"`},
		{"a fast-process flag with realistic labels", []string{"--label-delay", "5s"}, "--label-delay applies to --label-process fast"},
		{"a realistic flag with fast labels", []string{"--label-process", "fast", "--decline", "0.5"}, "--decline applies to --label-process realistic"},
		{"an unknown label process", []string{"--label-process", "instant"}, `--label-process "instant"`},
		{"a shadow stage as long as the recording", []string{"--hours", "1", "--shadow", "1h"}, "--shadow 1h0m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runDataset(context.Background(), append([]string{"--dir", t.TempDir()}, tc.args...), &out)
			if err == nil || !strings.Contains(err.Error()+out.String(), tc.want) {
				t.Errorf("dataset %v: %v; want an error naming %s", tc.args, err, tc.want)
			}
		})
	}
}

func TestDatasetRecordsTheShadowStageAndTheRegression(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := runDataset(context.Background(), []string{"--dir", dir, "--hours", "0.5", "--rate", "1", "--shadow", "10m",
		"--regress-after", "5m", "--start", "2026-02-01T08:00:00Z"}, &out)
	if err != nil {
		t.Fatalf("dataset: %v\n%s", err, out.String())
	}
	var m struct {
		Start, End, ShiftStart time.Time
		Baseline, Candidate    string
		Regression             struct {
			SegmentKey, Segment string
			Start               time.Time
		}
		LabelProcess string `json:"label_process"`
	}
	b := readFile(t, dir, "recording.json")
	if err := json.Unmarshal(bytes.ReplaceAll(b, []byte(`"shift_start"`), []byte(`"ShiftStart"`)), &m); err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	if !m.Start.Equal(at("2026-02-01T08:00:00Z")) || !m.ShiftStart.Equal(at("2026-02-01T08:10:00Z")) ||
		!m.End.Equal(at("2026-02-01T08:29:59Z")) || m.Baseline != "v5" || m.Candidate != "v6" ||
		m.Regression.Segment != "electronics" || !m.Regression.Start.Equal(at("2026-02-01T08:05:00Z")) ||
		!strings.HasPrefix(m.LabelProcess, "realistic:") {
		t.Errorf("recording.json:\n%s", b)
	}
	for _, w := range []string{"shadow stage until 2026-02-01T08:10:00Z", "declined by v5, never labeled", "positive labels known by the shift start"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("summary lacks %q:\n%s", w, out.String())
		}
	}
}
