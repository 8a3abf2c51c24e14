// Package layers holds the test that keeps the package graph equal to the rule table
// in docs/architecture.md ("Which package may import which").
package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/verdictml/verdict/"

// rules reads the table between the layers markers: package pattern → allowed
// import patterns.
func rules(t *testing.T, doc string) map[string][]string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "<!-- layers:begin -->")
	table, _, ok2 := strings.Cut(rest, "<!-- layers:end -->")
	if !ok || !ok2 {
		t.Fatal("docs/architecture.md has no layers table between its markers")
	}
	tick := regexp.MustCompile("`([^`]+)`")
	out := map[string][]string{}
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "`") {
			continue
		}
		pkg := tick.FindStringSubmatch(cells[1])[1]
		var allowed []string
		for _, m := range tick.FindAllStringSubmatch(cells[2], -1) {
			allowed = append(allowed, m[1])
		}
		out[pkg] = allowed
	}
	return out
}

// matches reports whether pkg is pattern or, for "x/*", below x.
func matches(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/*"); ok {
		return strings.HasPrefix(pkg, base+"/")
	}
	return pattern == pkg
}

// ruleFor finds the most specific row of pkg: its exact name before a wildcard.
func ruleFor(rs map[string][]string, pkg string) (allowed []string, ok bool) {
	if a, ok := rs[pkg]; ok {
		return a, true
	}
	for pattern, a := range rs {
		if matches(pattern, pkg) {
			return a, true
		}
	}
	return nil, false
}

type listed struct {
	ImportPath string
	Imports    []string
}

func TestPackagesImportOnlyWhatTheArchitectureAllows(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	rs := rules(t, string(doc))
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := 0
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkg := strings.TrimPrefix(p.ImportPath, module)
		if pkg == "cmd/verdict" || strings.HasPrefix(pkg, "internal/") {
			continue
		}
		seen++
		allowed, ok := ruleFor(rs, pkg)
		if !ok {
			t.Errorf("%s has no row in docs/architecture.md's layers table", pkg)
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours || strings.HasPrefix(dep, "internal/") {
				continue
			}
			if !slices.ContainsFunc(allowed, func(a string) bool { return matches(a, dep) }) {
				t.Errorf("%s imports %s, which docs/architecture.md does not allow (allowed: %v)", pkg, dep, allowed)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("checked only %d packages: go list found too little", seen)
	}
}

func TestTheRuleTableIsRead(t *testing.T) {
	rs := rules(t, "x\n<!-- layers:begin -->\n| package | may import |\n|---|---|\n| `a` | `b`, `c/*` |\n| `d` | |\n<!-- layers:end -->\n")
	if got := rs["a"]; len(got) != 2 || got[0] != "b" || got[1] != "c/*" {
		t.Errorf("row a: %v", got)
	}
	if got, ok := rs["d"]; !ok || len(got) != 0 {
		t.Errorf("row d: %v %v", got, ok)
	}
	allowed, _ := ruleFor(rs, "a")
	if !slices.ContainsFunc(allowed, func(p string) bool { return matches(p, "c/e") }) || matches("c/*", "c") {
		t.Error("wildcards match the packages below, not the package itself")
	}
}
