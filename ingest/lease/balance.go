package lease

import (
	"math"
	"sort"
)

// View is one lease as the balancer sees it: the table's state plus what this
// worker observed about it.
type View struct {
	Key   string
	Owner string
	// Expired: the owner has not renewed it for a whole lease duration, as measured on
	// this worker's clock (or the lease names this worker but this process does not
	// hold it: a previous incarnation's).
	Expired bool
	// Finished: the lease's work is done for good (checkpoint Finished).
	Finished bool
	// Ready: the lease may be worked on now (for a Kinesis shard: every parent shard
	// is finished).
	Ready bool
}

// Plan is what one balancing round decides: leases to take (free or expired) and at
// most one lease to steal from the most-loaded live owner.
type Plan struct {
	Take  []string
	Steal string
}

// PlanTakes decides which leases worker me should take so that the live workers hold
// the readable leases roughly evenly: each aims at ceil(leases/workers). Free and
// expired leases are taken first; only when none remain and me is still short does it
// steal one lease from the owner holding the most — when that owner is above target,
// or at target while me is short by two or more. Stealing at most one per round keeps
// workers from trading leases back and forth.
func PlanTakes(views []View, me string) Plan {
	var eligible []View
	for _, v := range views {
		if v.Ready && !v.Finished {
			eligible = append(eligible, v)
		}
	}
	if len(eligible) == 0 {
		return Plan{}
	}
	sort.Slice(eligible, func(i, j int) bool { return eligible[i].Key < eligible[j].Key })

	held := map[string]int{me: 0}
	var available []string
	for _, v := range eligible {
		if v.Owner == "" || v.Expired {
			available = append(available, v.Key)
			continue
		}
		held[v.Owner]++
	}
	target := int(math.Ceil(float64(len(eligible)) / float64(len(held))))
	need := target - held[me]
	if need <= 0 {
		return Plan{}
	}
	if len(available) > 0 {
		if len(available) > need {
			available = available[:need]
		}
		return Plan{Take: available}
	}

	victim, most := "", 0
	for owner, n := range held {
		if owner == me {
			continue
		}
		if n > most || (n == most && owner < victim) {
			victim, most = owner, n
		}
	}
	if victim == "" || !(most > target || (most == target && need >= 2)) {
		return Plan{}
	}
	for _, v := range eligible {
		if v.Owner == victim && !v.Expired {
			return Plan{Steal: v.Key}
		}
	}
	return Plan{}
}
