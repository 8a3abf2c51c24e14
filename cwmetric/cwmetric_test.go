package cwmetric

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The contract is written down twice: here for the code and in docs/alarms.md for the
// people who build alarms and dashboards on it. Every name published here must appear
// there (in backticks), so renaming one without the other fails.
func TestEveryNameIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/alarms.md")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "cwmetric.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", name.Name)
				}
				v, _ := strconv.Unquote(lit.Value)
				if other, dup := seen[v]; dup {
					t.Errorf("%s and %s both publish %q", other, name.Name, v)
				}
				seen[v] = name.Name
				if !strings.Contains(string(doc), "`"+v+"`") {
					t.Errorf("%s = %q is not in docs/alarms.md", name.Name, v)
				}
			}
		}
	}
	if len(seen) < 30 {
		t.Fatalf("found %d names in cwmetric.go, want the whole contract", len(seen))
	}
}
