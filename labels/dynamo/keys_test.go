package dynamo

import (
	"slices"
	"testing"

	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/tally"
)

func TestSortableHexSortsLikeIntegers(t *testing.T) {
	vals := []int64{-1 << 63, -7200, -3600, -1, 0, 1, 300, 1_800_000_000, 1<<63 - 1}
	var enc []string
	for _, v := range vals {
		s := sortableHex(v)
		back, err := parseSortableHex(s)
		if err != nil || back != v {
			t.Fatalf("%d → %q → %d, %v", v, s, back, err)
		}
		enc = append(enc, s)
	}
	if !slices.IsSorted(enc) {
		t.Fatalf("encodings do not sort like the integers: %q", enc)
	}
}

func TestHourOf(t *testing.T) {
	tests := []struct {
		name string
		in   int64
		want int64
	}{
		{"start of an hour", 7200, 7200},
		{"inside an hour", 7299, 7200},
		{"epoch", 0, 0},
		{"negative rounds down", -1, -3600},
		{"negative on the hour", -3600, -3600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := hourOf(tc.in); got != tc.want {
				t.Errorf("hourOf(%d) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestSeriesKeysRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		key  tally.Key
		sk   string
	}{
		{"overall series", tally.Key{Variant: "v5"}, "v5##"},
		{"segment", tally.Key{Variant: "v5", SegmentKey: "merchant_category", Segment: "grocery"}, "v5#merchant_category#grocery"},
		{"separator inside values is escaped", tally.Key{Variant: "a#b", SegmentKey: "k", Segment: "#"}, "a%23b#k#%23"},
		{"escape character is escaped", tally.Key{Variant: "100%", SegmentKey: "%23", Segment: "x"}, "100%25#%2523#x"},
		{"special segment values", tally.Key{Variant: "v6", SegmentKey: "mcc", Segment: labels.MissingSegment}, "v6#mcc#__missing__"},
		{"unicode", tally.Key{Variant: "modèle", SegmentKey: "pays", Segment: "Österreich"}, "modèle#pays#Österreich"},
		{"pair series", tally.Key{Variant: "v5", Versus: "v6"}, "v5###v6"},
		{"pair segment", tally.Key{Variant: "v5", SegmentKey: "mcc", Segment: "5411", Versus: "v#6"}, "v5#mcc#5411#v%236"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sk := seriesSK(tc.key)
			if sk != tc.sk {
				t.Errorf("seriesSK = %q, want %q", sk, tc.sk)
			}
			back, err := parseSeriesSK(sk)
			if err != nil || back != tc.key {
				t.Errorf("parseSeriesSK(%q) = %+v, %v; want %+v", sk, back, err, tc.key)
			}
			bucket := int64(1_700_000_100)
			b, k, err := parseBucketSK(bucketSK(bucket, tc.key))
			if err != nil || b != bucket || k != tc.key {
				t.Errorf("bucket key round trip: %d %+v %v", b, k, err)
			}
		})
	}
}

func TestMalformedKeysAreErrors(t *testing.T) {
	for _, s := range []string{"v5", "v5#a", "v5#a#b#c#d", "v5#a#b#", "v5#%2#x", "v5#%zz#x"} {
		if k, err := parseSeriesSK(s); err == nil {
			t.Errorf("parseSeriesSK(%q) = %+v, want an error", s, k)
		}
	}
	for _, s := range []string{"", "12#v5##", "zzzzzzzzzzzzzzzz#v5##", sortableHex(5)} {
		if _, _, err := parseBucketSK(s); err == nil {
			t.Errorf("parseBucketSK(%q): want an error", s)
		}
	}
}

func TestPartitionKeysGroupBucketsByHourAndShard(t *testing.T) {
	a, b := bucketPartition(7200, 3), bucketPartition(7200+3599, 3)
	if a != b {
		t.Errorf("buckets of one hour in different partitions: %q, %q", a, b)
	}
	if c := bucketPartition(7200+3600, 3); c <= a {
		t.Errorf("next hour's partition %q does not sort after %q", c, a)
	}
	if d := bucketPartition(7200, 4); d == a {
		t.Errorf("shards share partition %q", d)
	}
}

func TestDueEntriesRoundTrip(t *testing.T) {
	p := labels.PredState{Variant: "v#6", Time: -5}
	ref, err := parseDueEntry("id-1", dueEntry(p))
	if err != nil || ref != (labels.DueRef{ID: "id-1", Variant: "v#6", Time: -5}) {
		t.Fatalf("got %+v, %v", ref, err)
	}
	if _, err := parseDueEntry("id-1", "soon#v5"); err == nil {
		t.Fatal("bad time: want an error")
	}
}
