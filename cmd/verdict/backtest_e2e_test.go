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

// judgeRange is what a variant holds in the judge's range at look time at,
// replaying only events in [from, to] (docs/decisions.md): the comparison
// period from the candidate's (v6's) earliest 5-minute bucket that is still
// kept (no older than longest), or all time once none is; each prediction
// resolved by the latest label known by then (ties to the later line), else
// matured negative once more than maturity old.
func (r recorded) judgeRange(variant string, at, from, to time.Time, maturity, longest time.Duration) rehearsal.WindowView {
	in := func(t time.Time) bool { return !t.Before(from) && !t.After(to) && !t.After(at) }
	final := map[string]rLabel{}
	for _, l := range r.labels {
		if cur, ok := final[l.id]; in(l.at) && (!ok || !l.at.Before(cur.at)) {
			final[l.id] = l
		}
	}
	bucket := func(t time.Time) int64 { return t.Unix() / 300 * 300 }
	kept := at.Add(-longest).Unix()
	start, period := int64(0), false
	for _, p := range r.preds {
		if b := bucket(p.at); p.variant == "v6" && in(p.at) && b >= kept && (!period || b < start) {
			start, period = b, true
		}
	}
	var v rehearsal.WindowView
	for _, p := range r.preds {
		if p.variant != variant || !in(p.at) || (period && bucket(p.at) < start) {
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

	// Predictions mature within the hours of traffic, and alerts arriving later
	// correct them; the half second keeps maturity off the looks, so ties cannot
	// hide. The windows keep a day: after it the judge's period has no bucket
	// left and it reads all time.
	const (
		maturity = 40*time.Minute + 500*time.Millisecond
		longest  = 24 * time.Hour
	)
	tests := []struct {
		name     string
		args     []string
		from, to time.Time     // zero: open
		step     time.Duration // between ticks: publishes with alarms, else looks
		alarms   int
	}{
		{"the whole recording with the alarms", []string{"--alarms", "../../rehearsal/testdata/demo-alarms.yaml"},
			time.Time{}, time.Time{}, time.Minute, 8}, // the alarms of the recommended demo-alarms.yaml
		{"events from 20m to 80m, the judge alone", []string{"--from", "20m", "--to", "80m"},
			meta.Start.Add(20 * time.Minute), meta.Start.Add(80 * time.Minute), 5 * time.Minute, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"backtest", "--recording", dir, "--format", "json"}, tc.args...)...)
			cmd.Env = append(os.Environ(), "VERDICT_SEGMENT_KEYS=merchant_category", "VERDICT_MATURITY="+maturity.String(),
				"VERDICT_BUCKET=5m", "VERDICT_WINDOWS=1h,24h")
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

			// Every tick from --from to --to, a look every 5 minutes; only those
			// after a change computed.
			first := from.Truncate(tc.step)
			if ticks, looks := int(to.Sub(first)/tc.step)+1, int(to.Sub(first)/(5*time.Minute)); rep.Ticks != ticks || len(rep.Judge.Looks) != looks {
				t.Errorf("%d ticks, %d looks; want %d and %d", rep.Ticks, len(rep.Judge.Looks), ticks, looks)
			}
			if tc.from.IsZero() && rep.Computed*10 > rep.Ticks {
				t.Errorf("computed %d of %d ticks over a label tail of weeks", rep.Computed, rep.Ticks)
			}
			if !rep.To.Equal(to) || rep.RegressionStart == nil || !rep.RegressionStart.Equal(meta.Regression.Start) {
				t.Errorf("report to %s, regression start %v; want %s and %s", rep.To, rep.RegressionStart, to, meta.Regression.Start)
			}
			if len(rep.Alarms) != tc.alarms {
				t.Errorf("%d alarm results, want %d", len(rep.Alarms), tc.alarms)
			}

			// What the judge's range held at each computed look, against the
			// recount; the looks in between held the same.
			if len(rep.Seen) == 0 || !rep.Seen[0].At.Equal(first.Add(5*time.Minute)) {
				t.Fatalf("computed looks %v; want the first at %s", rep.Seen, first.Add(5*time.Minute))
			}
			var positives, matured int64
			for _, s := range rep.Seen {
				for _, v := range []struct {
					name string
					got  rehearsal.WindowView
				}{{"v5", s.Baseline}, {"v6", s.Candidate}} {
					if want := rec.judgeRange(v.name, s.At, from, to, maturity, longest); v.got != want {
						t.Errorf("%s at %s: report %+v, recount %+v", v.name, s.At.Format("15:04"), v.got, want)
					}
					positives += v.got.LabeledPositives
					matured += v.got.Matured
				}
			}
			if positives == 0 || matured == 0 {
				t.Errorf("the windows held %d labeled positives and %d matured predictions in all: the recount checks too little", positives, matured)
			}
		})
	}
}
