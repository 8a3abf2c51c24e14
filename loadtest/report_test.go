package loadtest

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func phaseReport(from, to float64, p99 float64, sent, dropped int, errs map[Class]int) PhaseReport {
	if errs == nil {
		errs = map[Class]int{}
	}
	ok := sent
	for _, n := range errs {
		ok -= n
	}
	return PhaseReport{FromRate: from, ToRate: to, DurationS: 60, phase: Phase{From: from, To: to, Duration: time.Minute},
		Summary: Summary{Scheduled: sent + dropped, Sent: sent, Dropped: dropped, OK: ok, Errors: errs, Latency: Latency{Count: int64(sent), P99MS: p99}}}
}

func TestJudge(t *testing.T) {
	slo := SLO{P99: 40 * time.Millisecond, Rate: 800, MaxErrorRate: 0.001}
	cases := []struct {
		name   string
		phases []PhaseReport
		want   string // "" for pass, else a reason fragment
	}{
		{"steps up to the SLO rate within p99", []PhaseReport{phaseReport(400, 400, 20, 24000, 0, nil), phaseReport(800, 800, 39.9, 48000, 0, nil)}, ""},
		{"p99 over the bound at the SLO rate", []PhaseReport{phaseReport(800, 800, 41, 48000, 0, nil)}, "phase 1 (800/s for 1m0s): p99 41.0 ms > 40.0 ms"},
		{"a faster phase is headroom, not judged", []PhaseReport{phaseReport(800, 800, 30, 48000, 0, nil), phaseReport(1200, 1200, 400, 72000, 50, nil)}, ""},
		{"a ramp to the SLO rate reaches it", []PhaseReport{phaseReport(0, 800, 30, 24000, 0, nil)}, ""},
		{"never reaching the SLO rate is no evidence", []PhaseReport{phaseReport(400, 400, 10, 24000, 0, nil)}, "peak at 400/s, below the SLO rate 800/s"},
		{"every phase above the SLO rate", []PhaseReport{phaseReport(1000, 1000, 10, 60000, 0, nil)}, "none was judged"},
		{"drops at the cap fail", []PhaseReport{phaseReport(800, 800, 30, 47990, 10, nil)}, "10 of 48000 requests dropped at the concurrency cap"},
		{"errors within the budget pass", []PhaseReport{phaseReport(800, 800, 30, 48000, 0, map[Class]int{HTTP5xx: 48})}, ""},
		{"errors over the budget fail", []PhaseReport{phaseReport(800, 800, 30, 48000, 0, map[Class]int{HTTP5xx: 40, Timeout: 9})}, "0.102% of requests failed (http_5xx 40, timeout 9), over 0.1%"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{Phases: tc.phases, MaxInFlight: 256}
			v := r.Judge(slo)
			got := strings.Join(v.Reasons, "\n")
			switch {
			case tc.want == "" && !v.Pass:
				t.Errorf("want pass, got fail: %s", got)
			case tc.want != "" && (v.Pass || !strings.Contains(got, tc.want)):
				t.Errorf("want a failure containing %q, got pass=%v %q", tc.want, v.Pass, got)
			}
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			if verdict := map[bool]string{true: "PASS", false: "FAIL"}[v.Pass]; !strings.Contains(b.String(), "): "+verdict) {
				t.Errorf("text report does not say %s:\n%s", verdict, b.String())
			}
		})
	}
}
