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
	"github.com/verdictml/verdict/publish/cloudwatch"
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

func gapBacktest(t *testing.T, regressionStart time.Time) *Backtest {
	t.Helper()
	spec, err := alarms.LoadSpec("testdata/gap-alarms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	as, err := alarms.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	jc := judge.Config{MinN: 20, Alpha: 0.05}
	pj, err := cloudwatch.NewJudge(jc)
	if err != nil {
		t.Fatal(err)
	}
	span := window.Span(time.Hour)
	return &Backtest{
		Baseline: "v5", Candidate: "v6", Window: span, Every: 5 * time.Minute,
		Judge:  judge.BacktestOptions{Config: jc, RegressionStart: regressionStart},
		Alarms: as, Publisher: PublisherFor(spec, "v5", "v6", span), PublisherJudge: pj, Interval: time.Minute,
		Join: labels.Config{SegmentKeys: []string{"merchant_category"}, Bucket: 5 * time.Minute}, Longest: time.Hour,
		Dir: t.TempDir(),
	}
}

func TestBacktestSkipsEmptyStretchesAndStopsWithoutChangingAnyResult(t *testing.T) {
	rec := gapRecording(3)
	tests := []struct {
		name            string
		regressionStart time.Time
	}{
		{"regression starting in the gap between the bursts", time.Date(2026, 1, 5, 3, 0, 0, 0, time.UTC)},
		{"regression starting with the second burst", time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC)},
		{"no regression declared: every alarm is false", time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			full := gapBacktest(t, tc.regressionStart)
			full.Exhaustive = true
			fullTicks := 0
			full.ReplayProgress = func(Progress) { fullTicks++ }
			fast := gapBacktest(t, tc.regressionStart)
			ticks := 0
			fast.ReplayProgress = func(Progress) { ticks++ }
			want, err := full.Run(context.Background(), rec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fast.Run(context.Background(), rec)
			if err != nil {
				t.Fatal(err)
			}

			// The fast replay did skip and stop: the gap, and the label tail. The
			// last prediction (06:39:58, bucket 06:35) leaves the 1h window at 07:40;
			// the alarms settle within their evaluation range (3+2 periods) and one
			// more: 08:10.
			if stop := time.Date(2026, 1, 5, 8, 10, 0, 0, time.UTC); len(got.Skipped) == 0 || got.Stopped == "" || !got.Until.Equal(stop) {
				t.Errorf("fast replay skipped %v, stopped %q at %s; want the gap skipped and a stop at %s", got.Skipped, got.Stopped, got.Until, stop)
			}
			if ticks > fullTicks/5 {
				t.Errorf("fast replay took %d ticks, the exhaustive one %d", ticks, fullTicks)
			}
			if want.To.Sub(want.Until) >= time.Minute || len(want.Skipped) != 0 || want.Stopped != "" {
				t.Fatalf("exhaustive replay ended at %s (to %s) with skips %v, stopped %q", want.Until, want.To, want.Skipped, want.Stopped)
			}

			// Same gates' verdicts.
			gj, wj := got.Judge, want.Judge
			gj.Looks, wj.Looks = nil, nil
			if !reflect.DeepEqual(gj, wj) {
				t.Errorf("judge: fast %+v, exhaustive %+v", gj, wj)
			}
			if len(got.Alarms) != len(want.Alarms) {
				t.Fatalf("%d alarm results, want %d", len(got.Alarms), len(want.Alarms))
			}
			for i := range want.Alarms {
				g, w := got.Alarms[i], want.Alarms[i]
				g.Evaluations, w.Evaluations = 0, 0
				if !reflect.DeepEqual(g, w) {
					t.Errorf("alarm %s: fast %s, exhaustive %s", w.Alarm, fmtResult(g), fmtResult(w))
				}
			}
			// Every look the fast replay made is the exhaustive one's; every look it
			// left out is a repeat of a passing or inconclusive one.
			fastLooks := map[time.Time]judge.LookResult{}
			for _, l := range got.Judge.Looks {
				fastLooks[l.At] = l
			}
			seen := map[time.Time]Seen{}
			for _, s := range want.Seen {
				seen[s.At] = s
			}
			for _, s := range got.Seen {
				if seen[s.At] != s {
					t.Errorf("window at %s: fast %+v, exhaustive %+v", s.At, s, seen[s.At])
				}
			}
			left := 0
			for _, l := range want.Judge.Looks {
				f, ok := fastLooks[l.At]
				switch {
				case ok && (f.Decision != l.Decision || f.Reason != l.Reason):
					t.Errorf("look at %s: fast %s (%s), exhaustive %s (%s)", l.At, f.Decision, f.Reason, l.Decision, l.Reason)
				case !ok && l.Decision == judge.Fail:
					t.Errorf("look at %s failed but was skipped", l.At)
				case !ok:
					left++
				}
			}
			if left == 0 || len(fastLooks) != len(want.Judge.Looks)-left {
				t.Errorf("fast replay left out %d of %d looks and made %d", left, len(want.Judge.Looks), len(fastLooks))
			}
		})
	}
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
	rep, err := gapBacktest(t, regStart).Run(context.Background(), gapRecording(3))
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
