package dynamo

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/tally"
)

// DynamoDB's TransactWriteItems limits: 100 actions and 4 MB per request. The byte
// budget stays well below the limit because the estimate ignores attribute overhead.
const (
	maxTxnItems = 100
	maxTxnBytes = 3 << 20
)

// tallyKey is one counter item: its partition and sort key.
type tallyKey struct{ pk, sk string }

// txn is one TransactWriteItems: whole RecordChanges (each one atomic with the
// counts it moves) and the sum of their tally deltas, one item per counter.
type txn struct {
	records   []int // indices into the Change's Records
	tallies   map[tallyKey]*tally.Counts
	buckets   map[tallyKey]int64 // bucket counters: their bucket
	order     []tallyKey
	unmatched int64
	hasUnmat  bool
	bytes     int
}

func newTxn() *txn {
	return &txn{tallies: map[tallyKey]*tally.Counts{}, buckets: map[tallyKey]int64{}}
}

// items is the number of actions the transaction will send (an upper bound: counters
// whose deltas cancel out are skipped when the request is built).
func (t *txn) items() int {
	n := len(t.tallies)
	if t.hasUnmat {
		n++
	}
	return n + len(t.records)
}

// recordCost is what a RecordChange adds to a transaction: its counter keys, whether
// it touches the unmatched counter, and its approximate bytes.
func recordCost(rc *labels.RecordChange, shard int) (keys []tallyKey, unmatched bool, bytes int) {
	seen := map[tallyKey]bool{}
	for _, d := range rc.Deltas {
		for _, k := range []tallyKey{
			{bucketPartition(d.Bucket, shard), bucketSK(d.Bucket, d.Key)},
			{allTimePartition(shard), seriesSK(d.Key)},
		} {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
			bytes += len(k.pk) + len(k.sk) + 200
		}
	}
	bytes += 2*len(rc.ID) + 200
	if rc.Record != nil {
		bytes += 64 + len(rc.Record.Preds)*96
	}
	return keys, rc.Unmatched != 0, bytes
}

// pack groups a change's records into transactions of at most maxItems actions and
// maxBytes bytes, in order. A record that alone needs more than one transaction can
// hold cannot be committed atomically and is an error.
func pack(rcs []labels.RecordChange, idx []int, shard, maxItems, maxBytes int) ([]*txn, error) {
	var out []*txn
	cur := newTxn()
	for _, i := range idx {
		rc := &rcs[i]
		keys, unmat, bytes := recordCost(rc, shard)
		need := 1 // the record itself (or nothing, but count it anyway)
		for _, k := range keys {
			if cur.tallies[k] == nil {
				need++
			}
		}
		if unmat && !cur.hasUnmat {
			need++
		}
		if len(cur.records) > 0 && (cur.items()+need > maxItems || cur.bytes+bytes > maxBytes) {
			out = append(out, cur)
			cur = newTxn()
			need = 1 + len(keys)
			if unmat {
				need++
			}
		}
		if need > maxItems || bytes > maxBytes {
			return nil, fmt.Errorf("record %q needs %d transaction items (%d bytes), more than one transaction holds (%d, %d)",
				rc.ID, need, bytes, maxItems, maxBytes)
		}
		cur.add(rc, i, shard, bytes)
	}
	if len(cur.records) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

func (t *txn) add(rc *labels.RecordChange, i, shard, bytes int) {
	t.records = append(t.records, i)
	t.bytes += bytes
	for _, d := range rc.Deltas {
		bk := tallyKey{bucketPartition(d.Bucket, shard), bucketSK(d.Bucket, d.Key)}
		t.addTally(bk, d.Counts)
		t.buckets[bk] = d.Bucket
		t.addTally(tallyKey{allTimePartition(shard), seriesSK(d.Key)}, d.Counts)
	}
	if rc.Unmatched != 0 {
		t.hasUnmat = true
		t.unmatched += rc.Unmatched
	}
}

func (t *txn) addTally(k tallyKey, c tally.Counts) {
	sum := t.tallies[k]
	if sum == nil {
		sum = &tally.Counts{}
		t.tallies[k] = sum
		t.order = append(t.order, k)
	}
	sum.Add(c)
}

// partitions are the tally partitions the transaction writes, for the directory.
func (t *txn) partitions(shard int) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range t.order {
		if !seen[k.pk] {
			seen[k.pk] = true
			out = append(out, k.pk)
		}
	}
	if t.hasUnmat {
		out = append(out, unmatchedPartition(shard))
	}
	return out
}

// request builds the transaction's actions. owner[i] is the index (into rcs) of the
// record whose condition action i carries, or -1 for shared counters.
func (t *txn) request(table string, rcs []labels.RecordChange, shard int, now time.Time, retention time.Duration) (items []types.TransactWriteItem, owner []int) {
	for _, i := range t.records {
		rc := &rcs[i]
		if rc.Record == nil {
			continue // only maturity-index entries that are no longer pending: nothing to write
		}
		items = append(items, types.TransactWriteItem{Update: recordUpdate(table, rc, now, retention)})
		owner = append(owner, i)
	}
	for _, k := range t.order {
		c := t.tallies[k]
		if c.IsZero() {
			continue
		}
		u := counterUpdate(table, k, *c)
		if b, ok := t.buckets[k]; ok {
			// Bucket counters expire with the records; all-time counters never do.
			*u.UpdateExpression += " SET #exp = :exp"
			u.ExpressionAttributeNames["#exp"] = attrExpiresAt
			u.ExpressionAttributeValues[":exp"] = num(b + int64(retention/time.Second))
		}
		items = append(items, types.TransactWriteItem{Update: u})
		owner = append(owner, -1)
	}
	if t.unmatched != 0 {
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:                 aws.String(table),
			Key:                       key(unmatchedPartition(shard), skUnmatched),
			UpdateExpression:          aws.String("ADD #n :n"),
			ExpressionAttributeNames:  map[string]string{"#n": attrCount},
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(t.unmatched)},
		}})
		owner = append(owner, -1)
	}
	return items, owner
}

// recordUpdate writes a record's new state if its version is still the one read. The
// maturity index lives on the record (the sparse "due" index), so it changes in the
// same write; it is recomputed only when the join moved index entries, since
// otherwise the record's pending predictions did not change.
func recordUpdate(table string, rc *labels.RecordChange, now time.Time, retention time.Duration) *types.Update {
	r := rc.Record
	names := map[string]string{"#rec": attrRecord, "#ver": attrVersion, "#exp": attrExpiresAt}
	values := map[string]types.AttributeValue{
		":rec": &types.AttributeValueMemberB{Value: r.Marshal()},
		":ver": num(int64(r.Version + 1)),
	}
	set := "SET #rec = :rec, #ver = :ver"
	var remove []string
	if len(rc.Due) > 0 || len(rc.Undue) > 0 {
		names["#dsh"], names["#dat"], names["#due"] = attrDueShard, attrDueAt, attrDue
		if entries, oldest := pending(r); len(entries) > 0 {
			set += ", #dsh = :dsh, #dat = :dat, #due = :due"
			values[":dsh"] = num(int64(hashShard(r.ID, dueShards)))
			values[":dat"] = num(oldest)
			values[":due"] = &types.AttributeValueMemberSS{Value: entries}
		} else {
			remove = append(remove, "#dsh", "#dat", "#due")
		}
	}
	if resolved(r) {
		set += ", #exp = :exp"
		values[":exp"] = num(now.Add(retention).Unix())
	} else {
		remove = append(remove, "#exp")
	}
	expr := set
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	cond := "attribute_not_exists(#ver)"
	if r.Version > 0 {
		cond = "#ver = :old"
		values[":old"] = num(int64(r.Version))
	}
	return &types.Update{
		TableName:                 aws.String(table),
		Key:                       key(recordPK(r.ID), skRecord),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
}

// pending lists a record's predictions still waiting for a label or maturity, and the
// oldest one's time. Censored predictions never mature, so they are not listed.
func pending(r *labels.Record) (entries []string, oldest int64) {
	for _, p := range r.Preds {
		if !p.Open() {
			continue
		}
		if len(entries) == 0 || p.Time < oldest {
			oldest = p.Time
		}
		entries = append(entries, dueEntry(p))
	}
	return entries, oldest
}

// resolved reports whether every prediction of a record has its outcome (errored
// ones never get one, censored ones only from a review label), so the record may
// expire.
func resolved(r *labels.Record) bool {
	if len(r.Preds) == 0 {
		return false // a label waiting for its prediction
	}
	for _, p := range r.Preds {
		if p.Open() {
			return false
		}
	}
	return true
}

// counterUpdate adds c to one counter item; only non-zero fields are sent.
func counterUpdate(table string, k tallyKey, c tally.Counts) *types.Update {
	words := countsWords(c)
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	expr := "ADD "
	for i, w := range words {
		if w == "" {
			continue
		}
		ph := fmt.Sprintf("c%02d", i)
		if len(names) > 0 {
			expr += ", "
		}
		expr += "#" + ph + " :" + ph
		names["#"+ph] = counterAttrs[i]
		values[":"+ph] = &types.AttributeValueMemberN{Value: w}
	}
	return &types.Update{
		TableName:                 aws.String(table),
		Key:                       key(k.pk, k.sk),
		UpdateExpression:          aws.String(expr),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
}

// countsWords renders c's fields as DynamoDB numbers in counterAttrs order; zero
// fields are "".
func countsWords(c tally.Counts) [len(counterAttrs)]string {
	var w [len(counterAttrs)]string
	ints := []int64{c.Predictions, c.Flagged, c.Errors, c.TP, c.FP, c.FN, c.TN, c.Matured}
	for i, v := range ints {
		if v != 0 {
			w[i] = strconv.FormatInt(v, 10)
		}
	}
	if c.ScoreSum != 0 {
		w[scoreSumAttr] = strconv.FormatFloat(c.ScoreSum, 'f', -1, 64)
	}
	for i, v := range c.Bins {
		if v != 0 {
			w[scoreSumAttr+1+i] = strconv.FormatInt(v, 10)
		}
	}
	for ci, row := range c.Pair {
		for ai, v := range row {
			if v != 0 {
				w[pairAttrs+ci*len(row)+ai] = strconv.FormatInt(v, 10)
			}
		}
	}
	for i, v := range []int64{c.Censored, c.CensoredFlagged} {
		if v != 0 {
			w[censoredAttr+i] = strconv.FormatInt(v, 10)
		}
	}
	return w
}

// countsOf reads a counter item's fields back; absent fields are zero.
func countsOf(item map[string]types.AttributeValue) (tally.Counts, error) {
	var vals [len(counterAttrs)]float64
	var ints [len(counterAttrs)]int64
	for i, name := range counterAttrs {
		av, ok := item[name]
		if !ok {
			continue
		}
		n, ok := av.(*types.AttributeValueMemberN)
		if !ok {
			return tally.Counts{}, fmt.Errorf("counter %s is not a number", name)
		}
		if i == scoreSumAttr {
			f, err := strconv.ParseFloat(n.Value, 64)
			if err != nil {
				return tally.Counts{}, fmt.Errorf("counter %s: %w", name, err)
			}
			vals[i] = f
			continue
		}
		v, err := parseInt(n.Value)
		if err != nil {
			return tally.Counts{}, fmt.Errorf("counter %s: %w", name, err)
		}
		ints[i] = v
	}
	c := tally.Counts{
		Predictions: ints[0], Flagged: ints[1], Errors: ints[2],
		TP: ints[3], FP: ints[4], FN: ints[5], TN: ints[6], Matured: ints[7],
		ScoreSum: vals[scoreSumAttr],
	}
	for i := range c.Bins {
		c.Bins[i] = ints[scoreSumAttr+1+i]
	}
	for ci := range c.Pair {
		for ai := range c.Pair[ci] {
			c.Pair[ci][ai] = ints[pairAttrs+ci*len(c.Pair[ci])+ai]
		}
	}
	c.Censored, c.CensoredFlagged = ints[censoredAttr], ints[censoredAttr+1]
	return c, nil
}

// parseInt reads an integral DynamoDB number, which may come back in exponent form.
func parseInt(s string) (int64, error) {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if f != float64(int64(f)) {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	return int64(f), nil
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: pk},
		attrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
