package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/rehearsal"
)

// demoDataset writes a small recording from the demo generator: 2h05m at 3
// inferences/s, labels after ~10 min; with regress, v6 loses recall on
// electronics from 1h on (when the rehearsed shift starts).
func demoDataset(t *testing.T, regress string) (dir string, regressionStart time.Time) {
	t.Helper()
	dir = t.TempDir()
	sum, err := writeDataset(context.Background(), datasetOptions{
		dir: dir, start: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), duration: 125 * time.Minute, shadow: time.Hour, rate: 3,
		labels: fastLabels{delay: 10 * time.Minute}, regress: regress, regressAfter: time.Hour, seed: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir, sum.regressionStart
}

const demoRollout = "../../rehearsal/testdata/demo-rollout.yaml"

func TestRehearseRollsBackOnTheRegressingDemoAndCompletesWithout(t *testing.T) {
	t.Run("regressing v6 is rolled back by the recall alarm during the shift", func(t *testing.T) {
		dir, _ := demoDataset(t, "electronics")
		var out bytes.Buffer
		err := runRehearse(context.Background(), []string{"--rollout", demoRollout, "--quiet", "--format", "json",
			"--predictions", filepath.Join(dir, "predictions.ndjson"), "--labels", filepath.Join(dir, "labels.ndjson"),
			"--baseline", "v5", "--candidate", "v6", "--start", "2026-01-05T01:00:00Z", "--segment-keys", "merchant_category"}, &out)
		if !errors.Is(err, errRolledBack) {
			t.Fatalf("rehearse returned %v, want a rollback\n%s", err, out.String())
		}
		var o rehearsal.Outcome
		if err := json.Unmarshal(out.Bytes(), &o); err != nil {
			t.Fatalf("decode outcome: %v\n%s", err, out.String())
		}
		last := o.Steps[len(o.Steps)-1]
		if o.Result != rehearsal.RolledBack || o.Alarm != "verdict-demo-v6-recall-drop" || !last.At.Equal(o.At) || !o.At.Before(o.End) {
			t.Errorf("outcome %s by %q at %s (last step %s, planned end %s); want rolled back by the recall-drop alarm before the end",
				o.Result, o.Alarm, o.At, last.At, o.End)
		}
		if s := o.Steps[0]; s.Phase != "step 1/4" || s.Share != 0.25 {
			t.Errorf("first step %q at share %v, want step 1/4 (one instance of 4) at 0.25", s.Phase, s.Share)
		}
	})
	t.Run("v6 as good as v5 completes after the termination wait", func(t *testing.T) {
		dir, _ := demoDataset(t, "")
		var out bytes.Buffer
		err := runRehearse(context.Background(), []string{"--rollout", demoRollout, "--quiet",
			"--predictions", filepath.Join(dir, "predictions.ndjson"), "--labels", filepath.Join(dir, "labels.ndjson"),
			"--segment-keys", "merchant_category"}, &out)
		if err != nil {
			t.Fatalf("rehearse returned %v, want a completed rollout\n%s", err, out.String())
		}
		for _, w := range []string{"COMPLETED at 2026-01-05T01:50:00Z", "termination wait", "step 4/4", "recall-drop=OK"} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("output lacks %q:\n%s", w, out.String())
			}
		}
	})
}

func TestBacktestDetectsTheRegressionAndRaisesNoFalseAlarm(t *testing.T) {
	tests := []struct {
		name, regress string
	}{
		{"regressing v6 is detected after the regression starts", "electronics"},
		{"v6 as good as v5 raises no alarm", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, regStart := demoDataset(t, tc.regress)
			args := []string{"--quiet", "--format", "json", "--baseline", "v5", "--candidate", "v6",
				"--predictions", filepath.Join(dir, "predictions.ndjson"), "--labels", filepath.Join(dir, "labels.ndjson"),
				"--segment-keys", "merchant_category", "--alarms", "../../rehearsal/testdata/demo-alarms.yaml"}
			if tc.regress != "" {
				args = append(args, "--regression-start", regStart.Format(time.RFC3339))
			}
			var out bytes.Buffer
			if err := runBacktest(context.Background(), args, &out); err != nil {
				t.Fatalf("backtest: %v\n%s", err, out.String())
			}
			var rep rehearsal.BacktestReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("decode report: %v\n%s", err, out.String())
			}
			if rep.Judge.FalseAlarm || rep.Judge.FalseFails > 0 {
				t.Errorf("judge: false alarm %v, %d false fails", rep.Judge.FalseAlarm, rep.Judge.FalseFails)
			}
			for _, a := range rep.Alarms {
				if a.FalseAlarms > 0 {
					t.Errorf("%s: %d false alarms (first at %v)", a.Alarm, a.FalseAlarms, a.FirstAlarm)
				}
			}
			if tc.regress == "" {
				if rep.Judge.AlarmAt != nil || rep.Judge.Detected {
					t.Errorf("judge alarmed at %v on data without regression", rep.Judge.AlarmAt)
				}
				return
			}
			dataLeft := rep.To.Sub(regStart)
			if ttd := rep.Judge.TimeToDetect; !rep.Judge.Detected || ttd == nil || *ttd <= 0 || *ttd > dataLeft {
				t.Errorf("judge: detected %v after %v; want detection within the %s of data after the regression", rep.Judge.Detected, ttd, dataLeft)
			}
			var recall *rehearsal.AlarmResult
			for i := range rep.Alarms {
				if rep.Alarms[i].Alarm == "verdict-demo-v6-recall-drop" {
					recall = &rep.Alarms[i]
				}
			}
			if recall == nil || !recall.Detected || recall.TimeToDetect == nil || *recall.TimeToDetect <= 0 || time.Duration(*recall.TimeToDetect) > dataLeft {
				t.Errorf("recall-drop alarm: %+v; want it detected within %s", recall, dataLeft)
			}
		})
	}
}

func TestBacktestTableThroughTheBinaryAndRehearseExitCode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := verdictBinary(t)
	dir := t.TempDir()
	out, err := exec.Command(bin, "dataset", "--dir", dir, "--hours", "2.25", "--rate", "3", "--regress-after", "1h", "--seed", "7", "--label-process", "fast").CombinedOutput()
	if err != nil {
		t.Fatalf("verdict dataset: %v\n%s", err, out)
	}
	files := []string{"--predictions", filepath.Join(dir, "predictions.ndjson"), "--labels", filepath.Join(dir, "labels.ndjson")}
	cmd := exec.Command(bin, append([]string{"rehearse", "--rollout", demoRollout, "--segment-keys", "merchant_category"}, files...)...)
	out, err = cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "would have rolled back") ||
		!strings.Contains(string(out), "ROLLED BACK at") || !strings.Contains(string(out), "by alarm verdict-demo-v6-recall-drop") {
		t.Fatalf("verdict rehearse on the regressing dataset: %v, want exit 1 naming the rollback\n%s", err, out)
	}
	out, err = exec.Command(bin, append([]string{"backtest", "--baseline", "v5", "--candidate", "v6", "--regression-start", "1h", "--quiet"}, files...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "time to detect") || !strings.Contains(string(out), "judge (period, look every") {
		t.Fatalf("verdict backtest: %v\n%s", err, out)
	}
}

func TestReplayFlagsAreCheckedByName(t *testing.T) {
	dir, _ := demoDataset(t, "")
	files := []string{"--predictions", filepath.Join(dir, "predictions.ndjson"), "--labels", filepath.Join(dir, "labels.ndjson")}
	tests := []struct {
		name string
		run  func(context.Context, []string, io.Writer) error
		args []string
		want string
	}{
		{"a recording and files", runBacktest, append([]string{"--recording", dir}, files...), "--recording names the files"},
		{"no recording at all", runBacktest, []string{"--baseline", "v5", "--candidate", "v6"}, "--recording, or --predictions and --labels, are required"},
		{"files without variants", runBacktest, files, "--baseline and --candidate are required"},
		{"--to before --from", runBacktest, []string{"--recording", dir, "--from", "1h", "--to", "30m"}, "--to 2026-01-05T00:30:00Z is before --from"},
		{"--from past the recording", runBacktest, []string{"--recording", dir, "--from", "10h"}, "no predictions between --from and --to"},
		{"--from that is no time", runBacktest, []string{"--recording", dir, "--from", "yesterday"}, "--from: \"yesterday\""},
		{"rehearse --from after the shift start", runRehearse, []string{"--recording", dir, "--rollout", demoRollout, "--from", "90m"},
			"--from 2026-01-05T01:30:00Z is after the shift starts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := tc.run(context.Background(), append([]string{"--quiet", "--segment-keys", "merchant_category"}, tc.args...), &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: %v; want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestRehearseAndBacktestTakeTheirDefaultsFromTheRecording(t *testing.T) {
	// demoDataset's recording.json: shadow stage of 1h, the regression from 1h on,
	// baseline v5 and candidate v6.
	dir, regStart := demoDataset(t, "electronics")
	var out bytes.Buffer
	err := runRehearse(context.Background(), []string{"--recording", dir, "--rollout", demoRollout, "--quiet", "--format", "json",
		"--segment-keys", "merchant_category"}, &out)
	var o rehearsal.Outcome
	if jerr := json.Unmarshal(out.Bytes(), &o); jerr != nil || !errors.Is(err, errRolledBack) {
		t.Fatalf("rehearse: %v, %v\n%s", err, jerr, out.String())
	}
	if want := time.Date(2026, 1, 5, 1, 0, 0, 0, time.UTC); !o.Start.Equal(want) {
		t.Errorf("shift started at %s, want the recording's shift start %s", o.Start, want)
	}
	out.Reset()
	if err := runBacktest(context.Background(), []string{"--recording", dir, "--quiet", "--format", "json", "--segment-keys", "merchant_category"}, &out); err != nil {
		t.Fatalf("backtest: %v\n%s", err, out.String())
	}
	var rep rehearsal.BacktestReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.RegressionStart == nil || !rep.RegressionStart.Equal(regStart) || !rep.Judge.Detected {
		t.Errorf("backtest regression start %v, detected %v; want the recording's %s, detected", rep.RegressionStart, rep.Judge.Detected, regStart)
	}
}
