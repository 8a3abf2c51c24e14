package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/internal/containertest"
	"github.com/verdictml/verdict/loadtest"
)

const captureFixture = "../../loadtest/testdata/capture.jsonl"

// sloSpec writes the deploy testdata rollout with an slo section.
func sloSpec(t *testing.T, slo string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"rollout.yaml", "alarms.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../deploy/testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "rollout.yaml" {
			b = append(b, []byte("\n"+slo+"\n")...)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "rollout.yaml")
}

func TestLoadtestJudgesTheSpecSLOAndExitsNonZeroOnFailure(t *testing.T) {
	srv := containertest.Start(t, containertest.Behavior{Latency: 20 * time.Millisecond})
	cases := []struct {
		name    string
		slo     string
		wantErr error
	}{
		// 20 ms injected: a 1 s bound passes, a 5 ms bound cannot.
		{"within the bound", "slo: {p99_ms: 1000, rate: 50}", nil},
		{"over the bound", "slo: {p99_ms: 5, rate: 50}", errSLOFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := loadtestCmd(context.Background(), []string{"--url", srv.URL, "--capture", captureFixture, "--spec", sloSpec(t, tc.slo),
				"--duration", "2500ms", "--format", "json"}, &out, &errOut)
			if !errors.Is(err, tc.wantErr) && (err != nil || tc.wantErr != nil) {
				t.Fatalf("err %v, want %v\n%s", err, tc.wantErr, out.String())
			}
			var rep loadtest.Report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("JSON output: %v\n%s", err, out.String())
			}
			// The default schedule is the SLO's rate for --duration: 125 requests,
			// long enough for progress lines (every second) to be printed.
			if rep.Total.Scheduled != 125 || rep.Verdict == nil || rep.Verdict.Pass != (tc.wantErr == nil) {
				t.Errorf("scheduled %d verdict %+v", rep.Total.Scheduled, rep.Verdict)
			}
			if !strings.Contains(errOut.String(), "phase 1/1") {
				t.Errorf("no progress on stderr: %q", errOut.String())
			}
		})
	}
}

func TestLoadtestTextReportComparesScoresPerSegment(t *testing.T) {
	// The container answers the request's first CSV column as the score: the
	// capture's production scores equal the first column too, so no divergence.
	srv := containertest.Start(t, containertest.Behavior{Score: func(b []byte) string { s, _, _ := strings.Cut(string(b), ","); return s }})
	var out bytes.Buffer
	err := loadtestCmd(context.Background(), []string{"--url", srv.URL, "--capture", captureFixture, "--rate", "30", "--duration", "1s",
		"--score", "csv:0", "--segment", "merchant_category=csv:1", "--p99", "2s", "--slo-rate", "30", "--quiet"}, &out, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"candidate vs production scores", "electronics", "grocery", "SLO (p99 <= 2000 ms at up to 30/s, errors <= 0.0%): PASS", "total"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestLoadtestFlagErrorsNameTheFlag(t *testing.T) {
	srv := containertest.Start(t, containertest.Behavior{})
	base := []string{"--url", srv.URL, "--capture", captureFixture}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--capture", captureFixture, "--rate", "1"}, "give one target: --url"},
		{[]string{"--url", srv.URL, "--rate", "1"}, "give one of --capture"},
		{append(base, "--phases", "800/soon"), `--phases: phase 1 "800/soon"`},
		{append(base, "--rate", "5", "--phases", "5/1s"), "--rate and --phases"},
		{base, "--rate or --phases is required"},
		{append(base, "--p99", "40ms", "--rate", "1"), "--slo-rate 0: an SLO needs a positive rate"},
		{append(base, "--rate", "1", "--max-in-flight", "0"), "--max-in-flight 0"},
		{append(base, "--rate", "1", "--segment", "m=csv:1"), "--segment: needs --score"},
		{append(base, "--rate", "1", "--score", "csv:7"), "--score csv:7: no captured response"},
		{append(base, "--rate", "1", "--score", "xml:a"), "--score/--segment"},
		{[]string{"--url", srv.URL, "--payloads", captureFixture, "--rate", "1"}, "holds Data Capture records; use --capture"},
		{append(base, "--spec", sloSpec(t, "slo: {p99_ms: 40}")), "--spec: deploy: rollout spec"},
		{append(base, "--recommendation-job", filepath.Join(t.TempDir(), "job.json")), "--recommendation-job: needs --spec"},
		{[]string{"--url", "http://127.0.0.1:1", "--capture", captureFixture, "--rate", "1"}, "--url: ping http://127.0.0.1:1"},
	}
	for _, tc := range cases {
		err := loadtestCmd(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}

func TestLoadtestWritesTheRecommendationJob(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.json")
	var out bytes.Buffer
	err := loadtestCmd(context.Background(), []string{"--spec", sloSpec(t, "slo: {p99_ms: 40, rate: 800}"), "--recommendation-job", path,
		"--role-arn", "arn:aws:iam::123456789012:role/verdict-inference-recommender",
		"--sample-payload-url", "s3://fraud-ml-capture/load-test/payloads.tar.gz"}, &out, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../deploy/testdata/golden/recommendation_job.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from deploy's golden request:\n%s", path, got)
	}
	if !strings.Contains(out.String(), "8 users") && !strings.Contains(out.String(), "3 users rising by 3 a minute") {
		t.Errorf("summary: %s", out.String())
	}
	err = loadtestCmd(context.Background(), []string{"--spec", sloSpec(t, "slo: {p99_ms: 40, rate: 800}"), "--recommendation-job", path}, &out, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "role ARN") {
		t.Errorf("without --role-arn: err %v", err)
	}
}
