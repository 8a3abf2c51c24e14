package dynamo

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/tally"
)

// Attribute names. Every expression refers to them through placeholders, so none of
// them can collide with DynamoDB's reserved words.
const (
	attrPK        = "pk"
	attrSK        = "sk"
	attrRecord    = "rec"        // B: labels.Record, binary
	attrVersion   = "ver"        // N: optimistic-concurrency version, 1 on first write
	attrDueShard  = "due_shard"  // N: GSI partition key of records with pending predictions
	attrDueAt     = "due_at"     // N: GSI sort key, the oldest pending prediction (Unix ns)
	attrDue       = "due"        // SS: the pending predictions, "<time ns>#<variant>"
	attrExpiresAt = "expires_at" // N: TTL (epoch seconds) on fully resolved records
	attrCount     = "n"          // N: the unmatched-label counter
)

// dueIndex is the sparse global secondary index of records with pending predictions.
const dueIndex = "due"

// dueShards spreads the maturity index over this many GSI partitions. It is fixed:
// Due queries exactly these partitions, so changing it would hide entries.
const dueShards = 16

// Key prefixes. A tally partition's key is also its directory entry's sort key.
const (
	pkDirectory  = "dir"
	prefixRecord = "r#"
	prefixBucket = "t#"
	prefixAll    = "a#"
	prefixUnmat  = "u#"
	skRecord     = "r"
	skUnmatched  = "u"
	hourSeconds  = 3600
)

// counterAttrs are the tally attributes, in tally.Counts field order; scoreSumAttr is
// the only one that is not an integer.
// The pair cells follow, "p<label class><agreement>" (tally.PairCounts order).
var counterAttrs = [...]string{
	"n_pred", "n_flag", "n_err", "tp", "fp", "fn", "tn", "n_mat", "score_sum",
	"bin0", "bin1", "bin2", "bin3", "bin4", "bin5", "bin6", "bin7", "bin8", "bin9",
	"p00", "p01", "p02", "p03", "p10", "p11", "p12", "p13",
	"p20", "p21", "p22", "p23", "p30", "p31", "p32", "p33",
	"n_cens", "n_cens_flag",
}

const (
	scoreSumAttr = 8
	// pairAttrs is the index of the first pair cell in counterAttrs.
	pairAttrs = scoreSumAttr + 1 + tally.ScoreBins
	// censoredAttr is n_cens's index; n_cens_flag follows.
	censoredAttr = pairAttrs + int(tally.LabelClasses)*int(tally.Agreements)
)

func recordPK(id string) string { return prefixRecord + id }

// idOfRecordPK is the inverse of recordPK.
func idOfRecordPK(pk string) (string, bool) { return strings.CutPrefix(pk, prefixRecord) }

// sortableHex encodes v as 16 hex digits that sort like the integers (sign bit flipped).
func sortableHex(v int64) string {
	return fmt.Sprintf("%016x", uint64(v)^(1<<63))
}

func parseSortableHex(s string) (int64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("sortable integer %q: want 16 hex digits", s)
	}
	u, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("sortable integer %q: %w", s, err)
	}
	return int64(u ^ (1 << 63)), nil
}

// hourOf is the start of the hour holding t (Unix seconds), rounding down for negatives.
func hourOf(t int64) int64 {
	h := t / hourSeconds * hourSeconds
	if t < 0 && t%hourSeconds != 0 {
		h -= hourSeconds
	}
	return h
}

// bucketPartition holds the bucket tallies of one writer shard for the buckets that
// start within one hour.
func bucketPartition(bucket int64, shard int) string {
	return prefixBucket + sortableHex(hourOf(bucket)) + "#" + strconv.Itoa(shard)
}

// partitionHour is the hour of a bucket partition's key.
func partitionHour(pk string) (int64, bool) {
	rest, ok := strings.CutPrefix(pk, prefixBucket)
	if !ok {
		return 0, false
	}
	hex, _, _ := strings.Cut(rest, "#")
	h, err := parseSortableHex(hex)
	return h, err == nil
}

func allTimePartition(shard int) string   { return prefixAll + strconv.Itoa(shard) }
func unmatchedPartition(shard int) string { return prefixUnmat + strconv.Itoa(shard) }

// bucketSK is a bucket tally's sort key: the bucket, so a range condition selects
// buckets from a time on, then the series.
func bucketSK(bucket int64, k tally.Key) string {
	return sortableHex(bucket) + "#" + seriesSK(k)
}

func parseBucketSK(sk string) (int64, tally.Key, error) {
	b, series, ok := strings.Cut(sk, "#")
	if !ok {
		return 0, tally.Key{}, fmt.Errorf("bucket tally key %q: no series", sk)
	}
	bucket, err := parseSortableHex(b)
	if err != nil {
		return 0, tally.Key{}, fmt.Errorf("bucket tally key %q: %w", sk, err)
	}
	k, err := parseSeriesSK(series)
	if err != nil {
		return 0, tally.Key{}, fmt.Errorf("bucket tally key %q: %w", sk, err)
	}
	return bucket, k, nil
}

// seriesSK encodes a series as "variant#segment key#segment" (and "#versus" for a pair
// series), each part escaped so '#' cannot occur inside it.
func seriesSK(k tally.Key) string {
	sk := escape(k.Variant) + "#" + escape(k.SegmentKey) + "#" + escape(k.Segment)
	if k.Versus != "" {
		sk += "#" + escape(k.Versus)
	}
	return sk
}

var errSeries = errors.New("want variant#segment key#segment[#versus]")

func parseSeriesSK(s string) (tally.Key, error) {
	parts := strings.Split(s, "#")
	if len(parts) != 3 && len(parts) != 4 {
		return tally.Key{}, fmt.Errorf("series %q: %w", s, errSeries)
	}
	out := make([]string, 4)
	for i, p := range parts {
		v, err := unescape(p)
		if err != nil {
			return tally.Key{}, fmt.Errorf("series %q: %w", s, err)
		}
		out[i] = v
	}
	if len(parts) == 4 && out[3] == "" {
		return tally.Key{}, fmt.Errorf("series %q: %w", s, errSeries)
	}
	return tally.Key{Variant: out[0], SegmentKey: out[1], Segment: out[2], Versus: out[3]}, nil
}

var escaper = strings.NewReplacer("%", "%25", "#", "%23")

func escape(s string) string { return escaper.Replace(s) }

func unescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "%25"):
			b.WriteByte('%')
		case strings.HasPrefix(s[i:], "%23"):
			b.WriteByte('#')
		default:
			return "", fmt.Errorf("bad escape in %q", s)
		}
		i += 2
	}
	return b.String(), nil
}

// dueEntry encodes one pending prediction of a record as "<time ns>#<variant>".
func dueEntry(p labels.PredState) string {
	return strconv.FormatInt(p.Time, 10) + "#" + p.Variant
}

func parseDueEntry(id, s string) (labels.DueRef, error) {
	t, variant, ok := strings.Cut(s, "#")
	if !ok {
		return labels.DueRef{}, fmt.Errorf("due entry %q of %q: want <time>#<variant>", s, id)
	}
	ns, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return labels.DueRef{}, fmt.Errorf("due entry %q of %q: %w", s, id, err)
	}
	return labels.DueRef{ID: id, Variant: variant, Time: ns}, nil
}

// hashShard maps s onto [0, n).
func hashShard(s string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(s))
	return int(h.Sum32() % uint32(n))
}
