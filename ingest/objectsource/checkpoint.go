package objectsource

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// checkpoint is a partition's progress: the newest order time read and the keys read
// since the floor. It is stored as JSON (a file, a lease item attribute).
type checkpoint struct {
	V int `json:"v"`
	// Newest is the newest order time of an object read.
	Newest time.Time `json:"newest,omitzero"`
	// Done holds the keys read (relative to the partition's prefix) whose order time
	// (Unix seconds) is within the lookback of Newest.
	Done map[string]int64 `json:"done,omitempty"`
}

const checkpointVersion = 1

func decodeCheckpoint(s string) (checkpoint, error) {
	cp := checkpoint{Done: map[string]int64{}}
	if s == "" || s == "{}" {
		return cp, nil
	}
	if err := json.Unmarshal([]byte(s), &cp); err != nil {
		return cp, fmt.Errorf("read checkpoint: %w", err)
	}
	if cp.V != checkpointVersion {
		return cp, fmt.Errorf("read checkpoint: version %d, this verdict writes %d", cp.V, checkpointVersion)
	}
	if cp.Done == nil {
		cp.Done = map[string]int64{}
	}
	return cp, nil
}

func (cp checkpoint) encode() string {
	cp.V = checkpointVersion
	b, _ := json.Marshal(cp) // a struct of strings, times and numbers always marshals
	return string(b)
}

// floor is the oldest order time still read: Newest less the lookback (for capture
// partitions, the start of that hour), and never before start.
func (cp checkpoint) floor(lookback time.Duration, capture bool, start time.Time) time.Time {
	var f time.Time
	if !cp.Newest.IsZero() {
		f = cp.Newest.Add(-lookback)
		if capture {
			f = f.Truncate(time.Hour)
		}
	}
	if start.After(f) {
		f = start
	}
	return f
}

// done records a key as read and advances Newest (never past limit, so one object
// dated far ahead cannot push the floor past everything else), then forgets keys below
// the floor, and the oldest beyond maxDone.
func (cp *checkpoint) done(rel string, order, limit time.Time, lookback time.Duration, capture bool, maxDone int) {
	cp.Done[rel] = order.Unix()
	if order.After(limit) {
		order = limit
	}
	if order.After(cp.Newest) {
		cp.Newest = order.UTC()
	}
	floor := cp.floor(lookback, capture, time.Time{}).Unix()
	for k, t := range cp.Done {
		if t < floor {
			delete(cp.Done, k)
		}
	}
	if len(cp.Done) > maxDone {
		keys := slices.Collect(maps.Keys(cp.Done))
		slices.SortFunc(keys, func(a, b string) int {
			if c := cmp.Compare(cp.Done[a], cp.Done[b]); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		for _, k := range keys[:len(keys)-maxDone] {
			delete(cp.Done, k)
		}
	}
}
