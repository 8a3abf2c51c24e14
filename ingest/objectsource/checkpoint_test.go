package objectsource

import (
	"maps"
	"slices"
	"testing"
	"time"
)

func TestCheckpointFloorAndForgetting(t *testing.T) {
	h := func(n int) time.Time { return time.Date(2026, 3, 1, n, 0, 0, 0, time.UTC) }
	limit := h(23)
	cp := checkpoint{Done: map[string]int64{}}
	if f := cp.floor(2*time.Hour, true, time.Time{}); !f.IsZero() {
		t.Errorf("floor of an empty checkpoint = %v, want zero (read everything)", f)
	}
	if f := cp.floor(2*time.Hour, true, h(5)); !f.Equal(h(5)) {
		t.Errorf("floor with a start = %v, want the start", f)
	}
	cp.done("2026/03/01/10/a", h(10), limit, 2*time.Hour, true, 100)
	cp.done("2026/03/01/11/a", h(11), limit, 2*time.Hour, true, 100)
	cp.done("2026/03/01/09/late", h(9), limit, 2*time.Hour, true, 100)
	if !cp.Newest.Equal(h(11)) || len(cp.Done) != 3 {
		t.Fatalf("after three objects: %+v", cp)
	}
	cp.done("2026/03/01/12/a", h(12), limit, 2*time.Hour, true, 100)
	if _, ok := cp.Done["2026/03/01/09/late"]; ok || len(cp.Done) != 3 {
		t.Errorf("hour 9 is below the floor (10:00) once 12:00 is read and must be forgotten: %v", cp.Done)
	}
	if f := cp.floor(2*time.Hour, true, time.Time{}); !f.Equal(h(10)) {
		t.Errorf("floor = %v, want 10:00", f)
	}
	// Label partitions are not cut at the hour.
	if f := cp.floor(90*time.Minute, false, time.Time{}); !f.Equal(h(10).Add(30 * time.Minute)) {
		t.Errorf("flat floor = %v, want 10:30", f)
	}
	// An object dated far ahead moves Newest only to the limit.
	cp.done("2099/01/01/00/x", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), limit, 2*time.Hour, true, 100)
	if !cp.Newest.Equal(limit) {
		t.Errorf("Newest = %v, want the limit %v", cp.Newest, limit)
	}
	// maxDone keeps the newest keys.
	small := checkpoint{Done: map[string]int64{}}
	for i := range 5 {
		small.done(string(rune('a'+i)), h(10).Add(time.Duration(i)*time.Minute), limit, 24*time.Hour, false, 3)
	}
	if kept := slices.Sorted(maps.Keys(small.Done)); !slices.Equal(kept, []string{"c", "d", "e"}) {
		t.Errorf("maxDone kept %v, want c, d, e", kept)
	}
	back, err := decodeCheckpoint(cp.encode())
	if err != nil || !back.Newest.Equal(cp.Newest) || len(back.Done) != len(cp.Done) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	if _, err := decodeCheckpoint(`{"v":9}`); err == nil {
		t.Errorf("a checkpoint of an unknown version was accepted")
	}
}
