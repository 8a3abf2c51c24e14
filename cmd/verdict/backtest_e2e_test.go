package main

// End-to-end test of `verdict backtest` on a recording with the realistic label
// process: the binary's report of what the judge's window held at each look is
// checked against a plain recount of the recorded files, written here without
// any of verdict's code.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/rehearsal"
)

// recorded is a recording as read back by the test: valid predictions (first of
// each inference id and variant) and labels, in file order.
type recorded struct {
	preds  []rPred
	labels []rLabel
}

type rPred struct {
	id, variant string
	score       float64
	at          time.Time
}

type rLabel struct {
	id       string
	positive bool
	at       time.Time
}

func readRecorded(t *testing.T, dir string) recorded {
	t.Helper()
	var r recorded
	seen := map[[2]string]bool{}
	eachLine(t, filepath.Join(dir, "predictions.ndjson"), func(b []byte) {
		var p struct {
			ID      string   `json:"inference_id"`
			Variant string   `json:"variant"`
			Score   *float64 `json:"score"`
			Time    string   `json:"time"`
		}
		if json.Unmarshal(b, &p) != nil || p.ID == "" || p.Variant == "" || p.Score == nil || *p.Score < 0 || *p.Score > 1 {
			return // the generator's malformed lines
		}
		at, err := time.Parse(time.RFC3339Nano, p.Time)
		if err != nil || seen[[2]string{p.ID, p.Variant}] {
			return
		}
		seen[[2]string{p.ID, p.Variant}] = true
		r.preds = append(r.preds, rPred{p.ID, p.Variant, *p.Score, at})
	})
	eachLine(t, filepath.Join(dir, "labels.ndjson"), func(b []byte) {
		var l struct {
			ID    string `json:"inference_id"`
			Label *bool  `json:"label"`
			Time  string `json:"time"`
		}
		if json.Unmarshal(b, &l) != nil || l.ID == "" || l.Label == nil {
			return
		}
		at, err := time.Parse(time.RFC3339Nano, l.Time)
		if err != nil {
			return
		}
		r.labels = append(r.labels, rLabel{l.ID, *l.Label, at})
	})
	return r
}

func eachLine(t *testing.T, path string, fn func([]byte)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		fn(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// window is what a variant's 1h window holds at look time at, replaying only
// events in [from, to]: predictions whose 5-minute bucket starts at or after
// the bucket of at-1h (the window's documented shape), each resolved by the
// latest label known by then (ties to the later line), else matured negative
// once more than maturity old.
func (r recorded) window(variant string, at, from, to time.Time, maturity time.Duration) rehearsal.WindowView {
	in := func(t time.Time) bool { return !t.Before(from) && !t.After(to) && !t.After(at) }
	final := map[string]rLabel{}
	for _, l := range r.labels {
		if cur, ok := final[l.id]; in(l.at) && (!ok || !l.at.Before(cur.at)) {
			final[l.id] = l
		}
	}
	bucket := func(t time.Time) int64 { return t.Unix() / 300 * 300 }
	start := bucket(at.Add(-time.Hour))
	var v rehearsal.WindowView
	for _, p := range r.preds {
		if p.variant != variant || !in(p.at) || bucket(p.at) < start {
			continue
		}
		v.Predictions++
		if p.score >= 0.5 {
			v.Flagged++
		}
		if l, ok := final[p.id]; ok {
			v.Resolved++
			if l.positive {
				v.LabeledPositives++
			}
		} else if p.at.Add(maturity).Before(at) {
			v.Resolved++
			v.Matured++
		}
	}
	return v
}

func TestBacktestOnARealisticRecordingHoldsWhatARecountSays(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := verdictBinary(t)
	dir := t.TempDir()
	// 90 minutes at 4 inferences/s, realistic labels; half of v5's flags declined
	// and 30 % of the fraud confirmed by issuer alerts, so that the window holds
	// some labeled positives to count (the defaults leave it almost none).
	out, err := exec.Command(bin, "dataset", "--dir", dir, "--hours", "1.5", "--rate", "4", "--shadow", "30m",
		"--decline", "0.5", "--alert-share", "0.3", "--seed", "11").CombinedOutput()
	if err != nil {
		t.Fatalf("verdict dataset: %v\n%s", err, out)
	}
	rec := readRecorded(t, dir)
	var meta struct {
		Start      time.Time `json:"start"`
		ShiftStart time.Time `json:"shift_start"`
		Regression struct {
			Start time.Time `json:"start"`
		} `json:"regression"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "recording.json")); err != nil || json.Unmarshal(b, &meta) != nil {
		t.Fatalf("recording.json: %v\n%s", err, b)
	}
	if !meta.ShiftStart.Equal(meta.Start.Add(30*time.Minute)) || !meta.Regression.Start.Equal(meta.Start) {
		t.Errorf("recording.json: start %s, shift start %s, regression start %s; want the shift 30m in and the regression from the start",
			meta.Start, meta.ShiftStart, meta.Regression.Start)
	}
	lastLabel := rec.labels[len(rec.labels)-1].at
	if lastLabel.Sub(meta.Start) < 30*24*time.Hour {
		t.Errorf("the last label is known %s after the first prediction; want a label tail of weeks", lastLabel.Sub(meta.Start))
	}

	// Predictions mature inside the 1h window, and alerts arriving later correct
	// them; the half second keeps maturity off the looks, so ties cannot hide.
	const maturity = 40*time.Minute + 500*time.Millisecond
	tests := []struct {
		name     string
		args     []string
		from, to time.Time // zero: open
		// settle is how long after the window empties the replay goes on.
		settle time.Duration
		alarms int
	}{
		{"the whole recording with the alarms", []string{"--alarms", "../../rehearsal/testdata/demo-alarms.yaml"},
			time.Time{}, time.Time{}, 6 * 5 * time.Minute /* 3 evaluation periods + 2 + 1, of 5m */, 4},
		{"events from 20m to 80m, the judge alone", []string{"--from", "20m", "--to", "80m"},
			meta.Start.Add(20 * time.Minute), meta.Start.Add(80 * time.Minute), 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"backtest", "--recording", dir, "--format", "json"}, tc.args...)...)
			cmd.Env = append(os.Environ(), "VERDICT_SEGMENT_KEYS=merchant_category", "VERDICT_MATURITY="+maturity.String(), "VERDICT_BUCKET=5m")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("verdict backtest: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "replayed to ") || !strings.Contains(stderr.String(), "regression start ") {
				t.Errorf("stderr lacks the replay's progress and the regression start from recording.json:\n%s", stderr.String())
			}
			var rep rehearsal.BacktestReport
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("decode report: %v\n%s", err, stdout.String())
			}
			from, to := tc.from, tc.to
			if from.IsZero() {
				from = meta.Start
			}
			if to.IsZero() {
				to = lastLabel
			}

			// It stops once the window has emptied (and the alarms settled), long
			// before the label tail ends; or at --to.
			var last time.Time
			for _, p := range rec.preds {
				if !p.at.Before(from) && !p.at.After(to) && p.at.After(last) {
					last = p.at
				}
			}
			empty := time.Unix(last.Unix()/300*300, 0).Add(5*time.Minute + time.Hour) // the first look whose window misses it
			want, stops := empty.Add(tc.settle), true
			if bound := to.Truncate(5 * time.Minute); bound.Before(want) {
				want, stops = bound, false
			}
			if !rep.Until.Equal(want) || (rep.Stopped != "") != stops {
				t.Errorf("replayed until %s (stopped: %q); want the end at %s, stopped early: %v", rep.Until, rep.Stopped, want, stops)
			}
			if !rep.To.Equal(to) || rep.RegressionStart == nil || !rep.RegressionStart.Equal(meta.Regression.Start) {
				t.Errorf("report to %s, regression start %v; want %s and %s", rep.To, rep.RegressionStart, to, meta.Regression.Start)
			}
			if len(rep.Alarms) != tc.alarms {
				t.Errorf("%d alarm results, want %d", len(rep.Alarms), tc.alarms)
			}

			// Labels known by the stop, and in all.
			known, all := 0, 0
			for _, l := range rec.labels {
				if !l.at.Before(from) && !l.at.After(to) {
					all++
					if !l.at.After(rep.Until) {
						known++
					}
				}
			}
			if rep.Labels != all || rep.LabelsReplayed != known {
				t.Errorf("labels: report %d known of %d, recount %d of %d", rep.LabelsReplayed, rep.Labels, known, all)
			}

			// Each look's window, against the recount.
			if n := int(rep.Until.Sub(from.Truncate(5*time.Minute)) / (5 * time.Minute)); len(rep.Seen) != n || len(rep.Judge.Looks) != n {
				t.Fatalf("%d windows seen, %d looks; want a look every 5m up to the stop: %d", len(rep.Seen), len(rep.Judge.Looks), n)
			}
			var positives, matured int64
			for _, s := range rep.Seen {
				for _, v := range []struct {
					name string
					got  rehearsal.WindowView
				}{{"v5", s.Baseline}, {"v6", s.Candidate}} {
					if want := rec.window(v.name, s.At, from, to, maturity); v.got != want {
						t.Errorf("%s at %s: report %+v, recount %+v", v.name, s.At.Format("15:04"), v.got, want)
					}
					positives += v.got.LabeledPositives
					matured += v.got.Matured
				}
			}
			if positives == 0 || (tc.settle > 0 && matured == 0) {
				t.Errorf("the windows held %d labeled positives and %d matured predictions in all: the recount checks too little", positives, matured)
			}
		})
	}
}
