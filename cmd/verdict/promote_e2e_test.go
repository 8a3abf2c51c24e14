package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shadowStage is what the application sent verdict during a shadow stage: every
// inference scored by production v5 and by two shadows, v6 (which scores fraud in
// electronics low, mean 0.38 instead of 0.78) and v7 (a model as good as v5),
// spread over the last 90 minutes. Scores are drawn here, without verdict's code.
func shadowStage(n int, now time.Time) []string {
	rng := rand.New(rand.NewPCG(42, 0x6a7e))
	cats := []struct {
		name         string
		weight, rate float64
	}{{"grocery", .36, .02}, {"restaurants", .20, .03}, {"fuel", .15, .04}, {"travel", .15, .08}, {"electronics", .06, .12}, {"digital_goods", .08, .15}}
	score := func(mean float64) float64 { return math.Min(1, math.Max(0, mean+0.14*rng.NormFloat64())) }
	var lines []string
	for i := range n {
		x, cat := rng.Float64(), cats[len(cats)-1]
		for _, c := range cats {
			if x < c.weight {
				cat = c
				break
			}
			x -= c.weight
		}
		fraud := rng.Float64() < cat.rate
		at := now.Add(-90*time.Minute + time.Duration(i)*85*time.Minute/time.Duration(n))
		for _, v := range []struct {
			name, role string
			weak       bool
		}{{"v5", "production", false}, {"v6", "shadow", cat.name == "electronics"}, {"v7", "shadow", false}} {
			mean := 0.18
			if fraud {
				mean = 0.78
				if v.weak {
					mean = 0.38
				}
			}
			b, _ := json.Marshal(map[string]any{"inference_id": fmt.Sprintf("txn-%d", i), "variant": v.name, "role": v.role,
				"score": score(mean), "time": at.UTC().Format(time.RFC3339Nano), "attributes": map[string]string{"merchant_category": cat.name}})
			lines = append(lines, string(b))
		}
	}
	return lines
}

// promoteSpec writes a rollout spec whose shadow gate compares candidate with v5.
func promoteSpec(t *testing.T, candidate string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rollout.yaml")
	spec := `endpoint: fraud-detector
production: {variant: AllTraffic, model: fraud-model-v5, instance_type: ml.c5.xlarge, instance_count: 4}
candidate: {model: fraud-model-` + candidate + `, endpoint_config: fraud-detector-` + candidate + `}
shadow:
  endpoint_config: fraud-detector-` + candidate + `-shadow
  variant: shadow-` + candidate + `
  gate: {baseline: v5, candidate: ` + candidate + `}
traffic: {type: LINEAR, step: {instance_count: 1}, wait_interval: 5m, termination_wait: 10m, max_execution_timeout: 2h}
alarms: {names: [verdict-fraud-shift-flag-rate-shift]}
`
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPromoteShadowAsksTheGateOfARunningVerdict(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	srv := startServer(t, t.TempDir())
	lines := shadowStage(24000, time.Now())
	for len(lines) > 0 {
		n := min(len(lines), 6000)
		if code, resp, err := srv.post("/v1/predictions", lines[:n], ""); err != nil || code != 200 {
			t.Fatalf("POST predictions: %d %v %+v", code, err, resp.Rejected)
		}
		lines = lines[n:]
	}
	env := append(os.Environ(), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	promote := func(t *testing.T, fake *fakeSageMaker, args ...string) (string, int) {
		t.Helper()
		sm := httptest.NewServer(fake)
		defer sm.Close()
		cmd := exec.Command(verdictBinary(t), append([]string{"deploy", "promote-shadow", "-server", srv.base, "-endpoint-url", sm.URL}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &exit):
			return string(out), exit.ExitCode()
		}
		t.Fatalf("run verdict deploy: %v", err)
		return "", 0
	}

	t.Run("the regressed shadow is refused, naming the category", func(t *testing.T) {
		fake := &fakeSageMaker{}
		out, code := promote(t, fake, "-spec", promoteSpec(t, "v6"))
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s", code, out)
		}
		for _, want := range []string{"shadow gate BLOCKED: candidate v6 vs baseline v5", "merchant_category=electronics  max_flag_rate_drop: flag rate",
			"merchant_category=electronics  max_psi: score PSI", "shadow gate blocked the promotion: shadow gate blocked: merchant_category=electronics",
			"-override-shadow-gate"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if len(fake.sent("CreateEndpointConfig"))+len(fake.sent("UpdateEndpoint")) != 0 {
			t.Errorf("SageMaker was called although the gate blocked: %v", fake.calls)
		}
	})
	t.Run("an explicit override promotes it anyway and says why", func(t *testing.T) {
		fake := &fakeSageMaker{}
		out, code := promote(t, fake, "-spec", promoteSpec(t, "v6"), "-override-shadow-gate", "CAB-1234: electronics is paused this week")
		if code != 0 {
			t.Fatalf("exit %d, want 0:\n%s", code, out)
		}
		if !strings.Contains(out, "BLOCKED, OVERRIDDEN") || !strings.Contains(out, "promoted anyway: CAB-1234") || !strings.Contains(out, "shadow gate overridden") {
			t.Errorf("output does not record the override:\n%s", out)
		}
		if ups := fake.sent("UpdateEndpoint"); len(ups) != 1 || ups[0]["EndpointConfigName"] != "fraud-detector-v6" {
			t.Errorf("UpdateEndpoint = %v, want the shift to fraud-detector-v6", ups)
		}
	})
	t.Run("a shadow as good as production is promoted", func(t *testing.T) {
		fake := &fakeSageMaker{}
		out, code := promote(t, fake, "-spec", promoteSpec(t, "v7"))
		if code != 0 {
			t.Fatalf("exit %d, want 0:\n%s", code, out)
		}
		if !strings.Contains(out, "shadow gate OPEN: candidate v7 vs baseline v5") || !strings.Contains(out, "label-free limits checked in 7 of 7 scopes") ||
			!strings.Contains(out, "VERDICT_REFERENCE_SINCE=") {
			t.Errorf("output:\n%s", out)
		}
		if len(fake.sent("UpdateEndpoint")) != 1 {
			t.Errorf("UpdateEndpoint not sent: %v", fake.calls)
		}
	})
	t.Run("a verdict that cannot be asked is an error naming the flag", func(t *testing.T) {
		fake := &fakeSageMaker{}
		sm := httptest.NewServer(fake)
		defer sm.Close()
		cmd := exec.Command(verdictBinary(t), "deploy", "promote-shadow", "-server", "http://127.0.0.1:1", "-endpoint-url", sm.URL, "-spec", promoteSpec(t, "v7"))
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "shadow gate: ask verdict's judge (-server http://127.0.0.1:1)") {
			t.Errorf("err %v, output:\n%s", err, out)
		}
		if len(fake.calls) != 0 {
			t.Errorf("SageMaker was called: %v", fake.calls)
		}
	})
}
