// Package charts holds verdict's Helm chart (charts/verdict) and its test: the
// chart is linted and rendered with helm (scripts/tools.sh builds it; .ci/run runs
// this test), and the rendered objects are checked against what verdict needs.
package charts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// helm finds the helm binary: VERDICT_HELM, else helm on PATH. Without one the test
// skips, or fails when scripts/test.sh requires every tool (VERDICT_REQUIRE_EMULATORS=1).
func helm(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VERDICT_HELM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if os.Getenv("VERDICT_REQUIRE_EMULATORS") == "1" {
		t.Fatal("no helm (VERDICT_HELM or on PATH) but VERDICT_REQUIRE_EMULATORS=1: scripts/tools.sh install builds it")
	}
	t.Skip("no helm: run scripts/tools.sh install, or scripts/test.sh")
	return ""
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

type object = map[string]any

// render runs helm template with the given --set values and returns the objects
// by "Kind/name".
func render(t *testing.T, sets ...string) map[string]object {
	t.Helper()
	args := []string{"template", "verdict", "verdict", "--namespace", "fraud"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	dec := yaml.NewDecoder(strings.NewReader(run(t, args...)))
	out := map[string]object{}
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rendered chart is not YAML: %v", err)
		}
		if o == nil {
			continue
		}
		out[fmt.Sprintf("%v/%v", o["kind"], get(o, "metadata", "name"))] = o
	}
	return out
}

// get walks maps by key and lists by index ("0").
func get(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			if _, err := fmt.Sscanf(p, "%d", &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func names(objs map[string]object) []string {
	var ks []string
	for k := range objs {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// env is the container's environment: name to value, or to "secret:<name>/<key>".
func env(t *testing.T, sts object) map[string]string {
	t.Helper()
	out := map[string]string{}
	list, _ := get(sts, "spec", "template", "spec", "containers", "0", "env").([]any)
	for _, e := range list {
		name := fmt.Sprint(get(e, "name"))
		if ref := get(e, "valueFrom", "secretKeyRef"); ref != nil {
			out[name] = fmt.Sprintf("secret:%v/%v", get(ref, "name"), get(ref, "key"))
			continue
		}
		out[name] = fmt.Sprint(get(e, "value"))
	}
	return out
}

func TestChartLints(t *testing.T) {
	run(t, "lint", "--strict", "verdict")
	run(t, "lint", "--strict", "verdict", "--set", "gate.enabled=false,serviceMonitor.enabled=false,persistence.enabled=false,token.existingSecret=mine")
}

func TestChartRendersWhatVerdictNeeds(t *testing.T) {
	objs := render(t)
	for _, want := range []string{"StatefulSet/verdict", "Service/verdict", "Service/verdict-gate", "Service/verdict-headless", "ServiceMonitor/verdict", "Secret/verdict-token"} {
		if objs[want] == nil {
			t.Errorf("no %s; rendered %v", want, names(objs))
		}
	}
	sts := objs["StatefulSet/verdict"]
	e := env(t, sts)
	for name, want := range map[string]string{
		"VERDICT_ADDR":      "0.0.0.0:8080",
		"VERDICT_GATE_ADDR": "0.0.0.0:8081",
		"VERDICT_DATA_DIR":  "/data",
		"VERDICT_API_TOKEN": "secret:verdict-token/token",
	} {
		if e[name] != want {
			t.Errorf("env %s = %q, want %q", name, e[name], want)
		}
	}
	if get(sts, "spec", "volumeClaimTemplates", "0", "metadata", "name") != "data" ||
		get(sts, "spec", "template", "spec", "containers", "0", "volumeMounts", "0", "mountPath") != "/data" {
		t.Error("the join store's volume is not a claim mounted at /data")
	}
	if get(sts, "spec", "replicas") != 1 {
		t.Errorf("replicas %v: the embedded store allows one", get(sts, "spec", "replicas"))
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := get(sts, "spec", "template", "spec", "containers", "0", probe, "httpGet", "path"); got != path {
			t.Errorf("%s path %v, want %s", probe, got, path)
		}
	}
	// The Services route to the container's named ports; the ServiceMonitor scrapes
	// the API Service's port, selected by labels that Service carries.
	ports := map[string]bool{}
	for _, p := range get(sts, "spec", "template", "spec", "containers", "0", "ports").([]any) {
		ports[fmt.Sprint(get(p, "name"))] = true
	}
	for _, svc := range []string{"Service/verdict", "Service/verdict-gate"} {
		target := fmt.Sprint(get(objs[svc], "spec", "ports", "0", "targetPort"))
		if !ports[target] {
			t.Errorf("%s targets port %q, which the container does not name (%v)", svc, target, ports)
		}
	}
	sm := objs["ServiceMonitor/verdict"]
	if get(sm, "spec", "endpoints", "0", "port") != get(objs["Service/verdict"], "spec", "ports", "0", "name") || get(sm, "spec", "endpoints", "0", "path") != "/metrics" {
		t.Error("the ServiceMonitor does not scrape the API Service's /metrics")
	}
	svcLabels, _ := get(objs["Service/verdict"], "metadata", "labels").(map[string]any)
	sel, _ := get(sm, "spec", "selector", "matchLabels").(map[string]any)
	for k, v := range sel {
		if svcLabels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%v, the API Service has %v", k, v, svcLabels[k])
		}
	}
	if gateSel, _ := get(objs["Service/verdict-gate"], "metadata", "labels").(map[string]any); gateSel["app.kubernetes.io/component"] == sel["app.kubernetes.io/component"] {
		t.Error("the ServiceMonitor would scrape the gate Service too")
	}
}

func TestChartOptions(t *testing.T) {
	t.Run("an existing token Secret, no gate, no ServiceMonitor, no volume", func(t *testing.T) {
		objs := render(t, "token.existingSecret=fraud-verdict", "token.secretKey=api", "gate.enabled=false", "serviceMonitor.enabled=false", "persistence.enabled=false")
		for _, gone := range []string{"Secret/verdict-token", "Service/verdict-gate", "ServiceMonitor/verdict"} {
			if objs[gone] != nil {
				t.Errorf("%s rendered", gone)
			}
		}
		sts := objs["StatefulSet/verdict"]
		e := env(t, sts)
		if e["VERDICT_API_TOKEN"] != "secret:fraud-verdict/api" {
			t.Errorf("token from %s", e["VERDICT_API_TOKEN"])
		}
		if _, ok := e["VERDICT_GATE_ADDR"]; ok {
			t.Error("VERDICT_GATE_ADDR set without the gate")
		}
		if get(sts, "spec", "volumeClaimTemplates") != nil {
			t.Error("a volume claim without persistence")
		}
	})
	t.Run("an alarm spec becomes a ConfigMap verdict reads", func(t *testing.T) {
		objs := render(t, "alarmSpec=name: demo-v6", "env.VERDICT_BASELINE=v5", "env.VERDICT_CANDIDATES=v6")
		cm := objs["ConfigMap/verdict-alarms"]
		if cm == nil || !strings.Contains(fmt.Sprint(get(cm, "data", "alarms.yaml")), "demo-v6") {
			t.Fatalf("no alarm spec ConfigMap: %v", names(objs))
		}
		e := env(t, objs["StatefulSet/verdict"])
		if e["VERDICT_ALARM_SPEC"] != "/etc/verdict/alarms.yaml" || e["VERDICT_BASELINE"] != "v5" {
			t.Errorf("env %v", e)
		}
	})
	t.Run("a NetworkPolicy lets the rollout controllers reach the gate", func(t *testing.T) {
		objs := render(t, "gate.networkPolicy.enabled=true", "gate.networkPolicy.fromNamespaces={flagger-system}")
		np := objs["NetworkPolicy/verdict-gate"]
		if get(np, "spec", "ingress", "1", "from", "0", "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") != "flagger-system" {
			t.Errorf("network policy %v", np)
		}
	})
}

// TestChartSetsOnlyRealSettings: every VERDICT_* variable the chart sets is one
// verdict reads (README's table is `verdict config`'s, checked by cmd/verdict).
func TestChartSetsOnlyRealSettings(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	objs := render(t, "alarmSpec=x: y")
	for name := range env(t, objs["StatefulSet/verdict"]) {
		if !regexp.MustCompile("\\| `" + name + "` \\|").Match(readme) {
			t.Errorf("the chart sets %s, which is not in verdict's configuration", name)
		}
	}
}
