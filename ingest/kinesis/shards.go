package kinesis

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
