package kinesis

import "testing"

func TestParentsFinished(t *testing.T) {
	set := func(ids ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	tests := []struct {
		name                     string
		parents                  []string
		finished, leased, listed map[string]bool
		want                     bool
	}{
		{"no parents: readable", nil, set(), set(), set(), true},
		{"parent finished: child readable", []string{"p"}, set("p"), set("p"), set("p"), true},
		{"parent still being read: child waits", []string{"p"}, set(), set("p"), set("p"), false},
		{"parent listed without lease yet: child waits", []string{"p"}, set(), set(), set("p"), false},
		{"parent aged out of the stream: child readable", []string{"p"}, set(), set(), set(), true},
		{"merge: both parents finished", []string{"p", "q"}, set("p", "q"), set("p", "q"), set("p", "q"), true},
		{"merge: one parent unfinished", []string{"p", "q"}, set("p"), set("p", "q"), set("p", "q"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parentsFinished(tt.parents, tt.finished, tt.leased, tt.listed); got != tt.want {
				t.Errorf("parentsFinished(%v) = %v, want %v", tt.parents, got, tt.want)
			}
		})
	}
}
