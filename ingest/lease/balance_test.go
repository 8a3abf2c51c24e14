package lease

import (
	"reflect"
	"testing"
)

func TestPlanTakes(t *testing.T) {
	live := func(key, owner string) View { return View{Key: key, Owner: owner, Ready: true} }
	free := func(key string) View { return View{Key: key, Ready: true} }
	expired := func(key, owner string) View {
		return View{Key: key, Owner: owner, Expired: true, Ready: true}
	}
	tests := []struct {
		name  string
		views []View
		want  Plan
	}{
		{"no leases: nothing to do", nil, Plan{}},
		{
			"alone: takes every free lease",
			[]View{free("s2"), free("s0"), free("s1")},
			Plan{Take: []string{"s0", "s1", "s2"}},
		},
		{
			"second worker takes only its share of free leases",
			[]View{live("s0", "a"), free("s1"), free("s2"), free("s3")},
			Plan{Take: []string{"s1", "s2"}},
		},
		{
			"expired leases of a dead owner are taken like free ones",
			[]View{expired("s0", "dead"), expired("s1", "dead"), live("s2", "me")},
			Plan{Take: []string{"s0", "s1"}},
		},
		{
			"finished and unready leases are neither taken nor counted",
			[]View{
				{Key: "s0", Finished: true, Ready: true},
				{Key: "s1", Ready: false},
				free("s2"),
			},
			Plan{Take: []string{"s2"}},
		},
		{
			"steals one lease from an owner above target",
			[]View{live("s0", "a"), live("s1", "a"), live("s2", "a"), live("s3", "a")},
			Plan{Steal: "s0"},
		},
		{
			"steals at most one per round even when short by more",
			[]View{live("s0", "a"), live("s1", "a"), live("s2", "a"), live("s3", "a"), live("s4", "a"), live("s5", "a")},
			Plan{Steal: "s0"},
		},
		{
			"balanced within one: no steal (3 leases, 2 workers)",
			[]View{live("s0", "a"), live("s1", "a"), live("s2", "me")},
			Plan{},
		},
		{
			"owner at target is robbed only when short by two (4 leases, 3 workers)",
			[]View{live("s0", "a"), live("s1", "a"), live("s2", "b"), live("s3", "b")},
			Plan{Steal: "s0"},
		},
		{
			"owner at target is left alone when short by one",
			[]View{live("s0", "a"), live("s1", "b"), live("s2", "b"), live("s3", "me")},
			Plan{},
		},
		{
			"robs the most loaded owner",
			[]View{live("s0", "a"), live("s1", "b"), live("s2", "b"), live("s3", "b"), live("s4", "a")},
			Plan{Steal: "s1"},
		},
		{
			"below target: takes a free lease",
			[]View{live("s0", "me"), live("s1", "a"), free("s2")},
			Plan{Take: []string{"s2"}},
		},
		{
			"holding more than target: gives nothing away by itself",
			[]View{live("s0", "me"), live("s1", "me"), live("s2", "me")},
			Plan{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PlanTakes(tt.views, "me")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PlanTakes() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestPlanTakesConverges runs balancing rounds for several workers over a shared set of
// leases and checks they settle within one lease of each other without further moves.
func TestPlanTakesConverges(t *testing.T) {
	for _, tc := range []struct{ leases, workers int }{{2, 2}, {3, 2}, {4, 3}, {7, 3}, {10, 4}, {1, 3}} {
		owners := make(map[string]string, tc.leases)
		keys := make([]string, tc.leases)
		for i := range keys {
			keys[i] = string(rune('a'+i)) + "-shard"
			owners[keys[i]] = "w0"
		}
		workers := make([]string, tc.workers)
		for i := range workers {
			workers[i] = string(rune('0' + i))
			workers[i] = "w" + workers[i]
		}
		moves := 0
		for round := 0; round < 50; round++ {
			moved := false
			for _, w := range workers {
				views := make([]View, 0, len(keys))
				for _, k := range keys {
					views = append(views, View{Key: k, Owner: owners[k], Ready: true})
				}
				p := PlanTakes(views, w)
				for _, k := range p.Take {
					owners[k] = w
					moved = true
				}
				if p.Steal != "" {
					owners[p.Steal] = w
					moved = true
				}
			}
			if !moved {
				break
			}
			moves++
		}
		counts := map[string]int{}
		for _, o := range owners {
			counts[o]++
		}
		lo, hi := tc.leases, 0
		for _, w := range workers {
			lo, hi = min(lo, counts[w]), max(hi, counts[w])
		}
		if hi-lo > 1 || moves >= 50 {
			t.Errorf("%d leases, %d workers: counts %v after %d rounds; want spread <= 1 and a fixed point", tc.leases, tc.workers, counts, moves)
		}
	}
}
