package wirejson

import (
	"reflect"
	"testing"
)

func TestOfDropsUnsetMembers(t *testing.T) {
	type inner struct {
		Name  *string
		Tags  []string
		Empty map[string]string
	}
	name := "v6"
	in := struct {
		A      string
		B      string
		N      *int
		Zero   float64
		Flag   bool
		Inner  inner
		Nested []inner
	}{A: "x", Inner: inner{Name: &name}, Nested: []inner{{}, {Tags: []string{"", "t"}}}}
	got := Of(in)
	want := map[string]any{
		"A": "x", "Zero": 0.0, "Flag": false,
		"Inner":  map[string]any{"Name": "v6"},
		"Nested": []any{map[string]any{"Tags": []any{"t"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	if Of(struct{ S string }{}) != nil {
		t.Error("an input with nothing set must prune to nil")
	}
}
