package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/judge"
)

func TestEverySubcommandHasHelp(t *testing.T) {
	for name := range commands() {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := realMain([]string{name, "--help"}, &out, &errOut); code != 0 {
				t.Fatalf("verdict %s --help exited %d: %s", name, code, errOut.String())
			}
			if !strings.Contains(out.String()+errOut.String(), "usage: verdict "+name) {
				t.Errorf("verdict %s --help does not show its usage:\n%s%s", name, out.String(), errOut.String())
			}
		})
	}
}

func TestUnknownCommandAndBadConfiguration(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := realMain([]string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut.String())
	}
	tests := []struct{ env, value, want string }{
		{"VERDICT_MATURITY_MODE", "sometimes", "VERDICT_MATURITY_MODE"},
		{"VERDICT_WINDOWS", "1h,fortnight", "VERDICT_WINDOWS"},
		{"VERDICT_ROLES", "v5:canary", "VERDICT_ROLES"},
		{"VERDICT_CAPTURE_ATTRIBUTES", "merchant_category", "name=selector"},
		{"VERDICT_BUCKET", "1500ms", "VERDICT_BUCKET"},
		{"VERDICT_DECLINED", "approved", "VERDICT_DECLINED"},
		{"VERDICT_REVIEW_SOURCES", "review", "VERDICT_REVIEW_SOURCES: needs VERDICT_DECLINED=censored"},
		{"VERDICT_ESTIMABLE_COVERAGE", "1.5", "VERDICT_ESTIMABLE_COVERAGE"},
		{"VERDICT_ESTIMABLE_COVERAGE", "0", "VERDICT_ESTIMABLE_COVERAGE"},
		{"VERDICT_COHORT_HORIZON", "24h", "VERDICT_COHORT_HORIZON"},
		{"VERDICT_SOURCES", "s3", "VERDICT_SOURCES=s3 needs VERDICT_S3_CAPTURE_PREFIXES"},
		{"VERDICT_S3_CAPTURE_PREFIXES", "https://bucket/x", "VERDICT_S3_CAPTURE_PREFIXES: \"https://bucket/x\" is neither an s3:// URL nor a local directory"},
		{"VERDICT_S3_START", "yesterday", "VERDICT_S3_START"},
		{"VERDICT_CAPTURE_VARIANT_SELECTOR", "model", "VERDICT_CAPTURE_VARIANT_SELECTOR: \"model\" is neither"},
		{"VERDICT_LABEL_CSV_COLUMNS", "score=x", "VERDICT_LABEL_CSV_COLUMNS [\"score\"]: not a label field"},
		{"VERDICT_INPUT_FORMAT", "datacapture", "set VERDICT_CAPTURE_VARIANT or VERDICT_CAPTURE_VARIANT_SELECTOR"},
		{"VERDICT_REFERENCE_SINCE", "2026-12-01T00:00:00Z", "VERDICT_REFERENCE_SINCE and VERDICT_REFERENCE_UNTIL: set both"},
		{"VERDICT_REFERENCE_UNTIL", "yesterday", "VERDICT_REFERENCE_SINCE and VERDICT_REFERENCE_UNTIL: set both"},
		{"VERDICT_SHIFT_ALPHA", "2", "VERDICT_SHIFT_*: shift config: Alpha: 2 must be in (0, 1)"},
		{"VERDICT_ALARM_SPEC", "no-such-spec.yaml", "VERDICT_ALARM_SPEC: alarms: read spec"},
		{"VERDICT_ALARM_SPEC", "../../rehearsal/testdata/demo-alarms.yaml", "VERDICT_ALARM_SPEC: the spec compares against baseline v5: set VERDICT_BASELINE"},
		{"VERDICT_CAPTURE_VARIANT_MAP", "/nonexistent/fleets.jsonl", "VERDICT_CAPTURE_VARIANT_MAP: stat /nonexistent/fleets.jsonl"},
		{"VERDICT_CLOUDWATCH_NAMESPACE", "AWS/SageMaker", "VERDICT_CLOUDWATCH_NAMESPACE: \"AWS/SageMaker\" starts with AWS/"},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			if strings.HasPrefix(tc.env, "VERDICT_CLOUDWATCH_") {
				t.Setenv("VERDICT_SINKS", "cloudwatch")
				t.Setenv("VERDICT_CLOUDWATCH_ENDPOINT_NAME", "fraud-detector")
			}
			if strings.HasPrefix(tc.env, "VERDICT_S3_") {
				t.Setenv("VERDICT_SOURCES", "s3")
				t.Setenv("VERDICT_S3_LABEL_PREFIXES", t.TempDir())
			}
			out.Reset()
			errOut.Reset()
			if code := realMain([]string{"config", "--check"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("%s=%s: exit %d, stderr %q; want exit 1 naming %s", tc.env, tc.value, code, errOut.String(), tc.want)
			}
		})
	}
}

func TestREADMEConfigurationTableIsCurrent(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := printConfigTable(&table); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, table.Bytes()) {
		t.Errorf("README.md's configuration table differs from `verdict config`; paste its output into README.md:\n%s", table.String())
	}
}

// VERDICT_CAPTURE_VARIANT_MAP: the application's record of which model served each
// inference names the variant of Data Capture records from the shared folder of a
// blue/green shift; a bad record is an error naming the variable.
func TestCaptureVariantMapNamesTheFleet(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "fleets.jsonl")
	if err := os.WriteFile(good, []byte(`{"inference_id":"txn-1","variant":"fraud-v6"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VERDICT_CAPTURE_VARIANT_MAP", good)
	t.Setenv("VERDICT_CAPTURE_VARIANT_SELECTOR", "json:model_version")
	t.Setenv("VERDICT_RETENTION", "0") // a fixed 2026 time, whatever the clock
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cfg.liveDecoder()
	if err != nil {
		t.Fatal(err)
	}
	line := `{"captureData":{"endpointOutput":{"observedContentType":"text/csv","mode":"OUTPUT","data":"0.4","encoding":"CSV"}},` +
		`"eventMetadata":{"eventId":"e","inferenceId":"txn-1","inferenceTime":"2026-03-01T12:00:00Z"},"eventVersion":"0"}`
	p, err := dec.WithCaptureVariant("AllTraffic").DecodePrediction([]byte(line))
	if err != nil || p.Variant != "fraud-v6" {
		t.Fatalf("variant %q, %v; want fraud-v6 from the map", p.Variant, err)
	}

	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"inference_id":"txn-1"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VERDICT_CAPTURE_VARIANT_MAP", good+","+bad)
	cfg, err = loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.liveDecoder(); err == nil || !strings.Contains(err.Error(), "VERDICT_CAPTURE_VARIANT_MAP: variant map "+bad+" line 1: want both inference_id and variant") {
		t.Errorf("err %v", err)
	}
}

// The CloudWatch publisher judges its pairs over the comparison period the gate uses:
// since VERDICT_JUDGE_SINCE when set, else since the candidate's first prediction,
// and never over a sliding VERDICT_JUDGE_WINDOW (an alarm looks every minute).
func TestCloudWatchPairsJudgeTheGatesPeriod(t *testing.T) {
	pinned := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, window, since string
		want                judge.Range
	}{
		{"default", "", "", judge.Period(time.Time{})},
		{"pinned start", "period", pinned.Format(time.RFC3339), judge.Period(pinned)},
		{"sliding gate window", "24h", "", judge.Period(time.Time{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("VERDICT_BASELINE", "v5")
			t.Setenv("VERDICT_CANDIDATES", "v6")
			t.Setenv("VERDICT_JUDGE_WINDOW", tc.window)
			t.Setenv("VERDICT_JUDGE_SINCE", tc.since)
			cfg, err := loadConfig()
			if err != nil {
				t.Fatal(err)
			}
			pc, _, err := cloudWatchConfig(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(pc.Pairs) != 1 || pc.Pairs[0].Candidate != "v6" || pc.Pairs[0].Baseline != "v5" {
				t.Fatalf("pairs %+v, want v6 vs v5", pc.Pairs)
			}
			if got := pc.Pairs[0].Range; got != tc.want {
				t.Fatalf("range %v, want %v", got, tc.want)
			}
		})
	}
}
