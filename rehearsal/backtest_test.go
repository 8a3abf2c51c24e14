package rehearsal

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/window"
)

// gapRecording is shadow traffic in two bursts of 40 minutes, at 00:00 and at
// 06:00, with nothing in between: v5 and v6 score every request (one every 2 s,
// a fifth of them fraud), v6 misses electronics fraud in the second burst. Most
// labels are known 2 to 10 minutes after the prediction, a tenth of them only
// 1 to 2 days later: a long label tail past the traffic.
func gapRecording(seed uint64) *Recording {
	rng := rand.New(rand.NewPCG(seed, 1))
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	score := func(mean float64) float64 { return math.Min(1, math.Max(0, mean+0.1*rng.NormFloat64())) }
	rec := &Recording{}
	for _, burst := range []time.Duration{0, 6 * time.Hour} {
		for s := time.Duration(0); s < 40*time.Minute; s += 2 * time.Second {
			at := t0.Add(burst + s)
			id := fmt.Sprintf("r-%d", at.Unix())
			cat := []string{"electronics", "grocery"}[rng.IntN(2)]
			fraud := rng.IntN(5) == 0
			for _, v := range []string{"v5", "v6"} {
				mean := 0.2
				if fraud {
					mean = 0.8
					if v == "v6" && burst > 0 && cat == "electronics" {
						mean = 0.3
					}
				}
				rec.Predictions = append(rec.Predictions, ingest.Prediction{InferenceID: id, Variant: v, Score: score(mean),
					Threshold: 0.5, Time: at, Attributes: map[string]string{"merchant_category": cat}})
			}
			delay := time.Duration(2+rng.IntN(9)) * time.Minute
			if rng.IntN(10) == 0 {
				delay = time.Duration(24+rng.IntN(24)) * time.Hour
			}
			rec.Labels = append(rec.Labels, ingest.Label{InferenceID: id, Positive: fraud, Time: at.Add(delay)})
		}
	}
	slices.SortStableFunc(rec.Labels, func(a, b ingest.Label) int { return a.Time.Compare(b.Time) })
	return rec
}

func gapBacktest(t *testing.T, regressionStart time.Time, r judge.Range) *Backtest {
	t.Helper()
	spec, err := alarms.LoadSpec("testdata/gap-alarms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	as, err := alarms.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	jc := judge.Config{Alpha: 0.05, Range: r}
	span := window.Span(time.Hour)
	pub := PublisherFor(spec, "v5", "v6", span)
	pub.Judge = jc
	return &Backtest{
		Baseline: "v5", Candidate: "v6", Window: span, Every: 5 * time.Minute,
		Judge:  judge.BacktestOptions{Config: jc, RegressionStart: regressionStart},
		Alarms: as, Publisher: pub, Interval: time.Minute,
		Join: labels.Config{SegmentKeys: []string{"merchant_category"}, Bucket: 5 * time.Minute}, Longest: time.Hour,
		Dir: t.TempDir(),
	}
}

func TestBacktestComputesOnlyWhatChangedAndGetsTheSameResults(t *testing.T) {
	rec := gapRecording(3)
	tests := []struct {
		name            string
		regressionStart time.Time
		judgeRange      judge.Range
	}{
		{"regression starting in the gap between the bursts", time.Date(2026, 1, 5, 3, 0, 0, 0, time.UTC), judge.Range{}},
		{"regression starting with the second burst", time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC), judge.Range{}},
		{"no regression declared: every alarm is false", time.Time{}, judge.Range{}},
		{"the judge on a sliding window", time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC), judge.Sliding(window.Span(time.Hour))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			full := gapBacktest(t, tc.regressionStart, tc.judgeRange)
			full.Exhaustive = true
			want, err := full.Run(context.Background(), rec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := gapBacktest(t, tc.regressionStart, tc.judgeRange).Run(context.Background(), rec)
			if err != nil {
				t.Fatal(err)
			}

			// The fast replay computed a fraction of the ticks: the bursts, the
			// labels and the windows' moves, not the gap or the days of label tail.
			if got.Ticks != want.Ticks || want.Computed != want.Ticks || got.Computed > got.Ticks/5 {
				t.Errorf("fast replay computed %d of %d ticks, exhaustive %d of %d", got.Computed, got.Ticks, want.Computed, want.Ticks)
			}
			// Same judge: every look's decision; the reason too where the fast
			// replay computed it (a repeated look repeats the reason of the look it
			// repeats, whose label-rate estimate was made a little earlier).
			computed := map[time.Time]bool{}
			for _, s := range got.Seen {
				computed[s.At] = true
			}
			if len(got.Judge.Looks) != len(want.Judge.Looks) {
				t.Fatalf("judge: fast %d looks, exhaustive %d", len(got.Judge.Looks), len(want.Judge.Looks))
			}
			for i, w := range want.Judge.Looks {
				g := got.Judge.Looks[i]
				if !computed[w.At] {
					g.Reason = w.Reason
				}
				if g != w {
					t.Errorf("look %d: fast %+v\nexhaustive %+v", i, g, w)
					break
				}
			}
			if gj, wj := got.Judge, want.Judge; !reflect.DeepEqual(withoutLooks(gj), withoutLooks(wj)) {
				t.Errorf("judge: fast %+v, exhaustive %+v", withoutLooks(gj), withoutLooks(wj))
			}
			// Same alarms: every evaluation's state.
			if len(got.Alarms) != len(want.Alarms) {
				t.Fatalf("%d alarm results, want %d", len(got.Alarms), len(want.Alarms))
			}
			for i := range want.Alarms {
				if g, w := got.Alarms[i], want.Alarms[i]; !reflect.DeepEqual(g, w) {
					t.Errorf("alarm %s: fast %s, exhaustive %s", w.Alarm, fmtResult(g), fmtResult(w))
				}
			}
			// What the fast replay saw is what the exhaustive one saw then.
			seen := map[time.Time]Seen{}
			for _, s := range want.Seen {
				seen[s.At] = s
			}
			for _, s := range got.Seen {
				if seen[s.At] != s {
					t.Errorf("window at %s: fast %+v, exhaustive %+v", s.At, s, seen[s.At])
				}
			}
			if after := lastChange(want); !got.LastChange.After(after) {
				t.Errorf("last change at %s; the exhaustive replay's window last changed after %s", got.LastChange, after)
			}
		})
	}
}

func withoutLooks(r judge.BacktestResult) judge.BacktestResult {
	r.Looks = nil
	return r
}

// lastChange is the look before the last look of an exhaustive report whose
// window differs from the one before: the change came after it.
func lastChange(r BacktestReport) time.Time {
	var at time.Time
	for i := 1; i < len(r.Seen); i++ {
		if r.Seen[i].Baseline != r.Seen[i-1].Baseline || r.Seen[i].Candidate != r.Seen[i-1].Candidate {
			at = r.Seen[i-1].At
		}
	}
	return at
}

// fmtResult prints an alarm result with its times.
func fmtResult(r AlarmResult) string {
	at := func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return t.Format("01-02T15:04")
	}
	ttd := "-"
	if r.TimeToDetect != nil {
		ttd = time.Duration(*r.TimeToDetect).String()
	}
	return fmt.Sprintf("{first %s, false %d, detected %v at %s after %s}", at(r.FirstAlarm), r.FalseAlarms, r.Detected, at(r.DetectedAt), ttd)
}

func TestBacktestAlarmsFireOnTheGapRecording(t *testing.T) {
	// The comparison above means something only if the alarms and the judge do
	// something on this recording: the recall-drop alarm and the judge catch the
	// second burst's regression, and precision-floor (missing data breaching)
	// alarms in the gap.
	regStart := time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC)
	rep, err := gapBacktest(t, regStart, judge.Range{}).Run(context.Background(), gapRecording(3))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Judge.Detected || rep.Judge.FalseAlarm {
		t.Errorf("judge: detected %v, false alarm %v; want the regression detected and no false alarm", rep.Judge.Detected, rep.Judge.FalseAlarm)
	}
	byName := map[string]AlarmResult{}
	for _, a := range rep.Alarms {
		byName[a.Alarm] = a
	}
	if a := byName["verdict-gap-recall-drop"]; !a.Detected || a.FalseAlarms != 0 {
		t.Errorf("recall-drop: %s; want detected without false alarms", fmtResult(a))
	}
	if a := byName["verdict-gap-precision-floor"]; a.FalseAlarms == 0 {
		t.Errorf("precision-floor: %s; want it in ALARM on the missing data of the gap", fmtResult(a))
	}
}
