package kinesis

import "github.com/verdictml/verdict/ingest/lease"

// parentsReady is the lease group's readiness rule for shards: a shard may be read
// once its parents are finished. Listed-ness is not needed here: leases exist for every
// listed shard after a sync, so a parent without a lease has aged out.
func parentsReady(leases []lease.Lease) func(lease.Lease) bool {
	finished := make(map[string]bool, len(leases))
	leased := make(map[string]bool, len(leases))
	for _, l := range leases {
		leased[l.Key] = true
		finished[l.Key] = l.Finished()
	}
	return func(l lease.Lease) bool { return parentsFinished(l.Parents, finished, leased, nil) }
}

// parentsFinished reports whether a shard with the given parents may be read: every
// parent's lease is finished, or the parent has neither a lease nor a place in the
// stream's shard list any more (it aged out of retention, and so did its records).
// A parent that is listed but has no lease yet is not finished: its lease is about to
// be created and its records still have to be read first.
func parentsFinished(parents []string, finished map[string]bool, leased, listed map[string]bool) bool {
	for _, p := range parents {
		if finished[p] {
			continue
		}
		if leased[p] || listed[p] {
			return false
		}
	}
	return true
}
