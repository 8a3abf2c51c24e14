package strictyaml

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type spec struct {
	Name  string `yaml:"name"`
	Count int    `yaml:"count"`
}

func defaults(s *spec) {
	if s.Count == 0 {
		s.Count = 3
	}
}

func check(s *spec) error {
	if s.Name == "" {
		return errors.New("name: is required")
	}
	return nil
}

func parse(b []byte) (*spec, error) { return Parse(b, "test spec", defaults, check) }

func TestParse(t *testing.T) {
	s, err := parse([]byte("name: a\n"))
	if err != nil || *s != (spec{Name: "a", Count: 3}) {
		t.Fatalf("Parse = %+v, %v; want {a 3}", s, err)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"empty", "", "empty test spec"},
		{"comments only", "# nothing\n", "empty test spec"},
		{"unknown field", "name: a\nnmae: b\n", "decode yaml: yaml: unmarshal errors:\n  line 2: field nmae not found in type strictyaml.spec"},
		{"wrong type", "count: many\n", "decode yaml: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `many` into int"},
		{"check", "count: 1\n", "name: is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parse([]byte(tc.yaml)); err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(ok, []byte("name: a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("count: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Load(ok, "pkg", "test spec", parse); err != nil || s.Name != "a" {
		t.Fatalf("Load(ok) = %+v, %v", s, err)
	}
	if _, err := Load(bad, "pkg", "test spec", parse); err == nil || err.Error() != "pkg: test spec "+bad+": name: is required" {
		t.Errorf("Load(bad): %v", err)
	}
	_, err := Load(filepath.Join(dir, "missing.yaml"), "pkg", "test spec", parse)
	if err == nil || !strings.HasPrefix(err.Error(), "pkg: read test spec: ") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing): %v", err)
	}
}
