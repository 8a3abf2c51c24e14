package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/dynamo"
	"github.com/verdictml/verdict/tally"
	"github.com/verdictml/verdict/window"
)

// What the shared store costs: the join on the DynamoDB store against kumo, with every
// request metered by DynamoDB's documented capacity rules (kumo accepts
// ReturnConsumedCapacity but returns no ConsumedCapacity, so the meter computes it
// from the items, as DynamoDB bills them):
//   - item size: the attribute names' and values' bytes (strings and binary by
//     length, numbers about one byte per two significant digits plus one, sets the sum
//     of their elements), keys included;
//   - a transactional write: 2 write units per KB (rounded up) of the larger of the
//     item before and after; a standard write (PutItem): 1 per KB;
//   - a global secondary index write (standard, 1 per KB of the index entry: keys,
//     projected attributes and 100 bytes) when an item enters or leaves the index or a
//     projected attribute changes, two when its index key changes;
//   - a strongly consistent read: 1 read unit per 4 KB of each item read (an item
//     that does not exist still costs 1); a query: 1 per 4 KB of the items returned,
//     half for an eventually consistent one (index queries);
//   - storage: item bytes plus 100 bytes per item, index entries alike.

// List prices, us-east-1, DynamoDB Standard table class (see BENCHMARKS.md for the
// sources and dates).
const (
	priceWRU        = 0.625 / 1e6 // on demand, per write request unit
	priceRRU        = 0.125 / 1e6 // on demand, per read request unit
	priceWCUHour    = 0.00065     // provisioned, per write capacity unit-hour
	priceRCUHour    = 0.00013     // provisioned, per read capacity unit-hour
	priceStorageGBm = 0.25        // per GB-month beyond the free 25 GB
)

// capacity is what a run consumed, by kind.
type capacity struct {
	recordWCU, counterWCU, indexWCU, otherWCU float64
	readRCU, queryRCU                         float64
	records, counters                         int64 // item writes
}

func (c capacity) wcu() float64 { return c.recordWCU + c.counterWCU + c.indexWCU + c.otherWCU }
func (c capacity) rcu() float64 { return c.readRCU + c.queryRCU }

func (c capacity) sub(o capacity) capacity {
	return capacity{c.recordWCU - o.recordWCU, c.counterWCU - o.counterWCU, c.indexWCU - o.indexWCU, c.otherWCU - o.otherWCU,
		c.readRCU - o.readRCU, c.queryRCU - o.queryRCU, c.records - o.records, c.counters - o.counters}
}

// meteredDynamo wraps the DynamoDB client the store uses and meters every request.
// It keeps a model of every item's attribute sizes to know sizes before and after an
// update.
type meteredDynamo struct {
	dynamo.API
	mu    sync.Mutex
	items map[string]map[string]attrSize // pk + "\x00" + sk → attribute → size
	used  capacity
}

// attrSize is an attribute's billed size; for numbers, its value too (ADD sums).
type attrSize struct {
	size int
	num  float64
}

const dueIndexKeyA, dueIndexKeyB, dueProjected = "due_shard", "due_at", "due"

func newMeteredDynamo(api dynamo.API) *meteredDynamo {
	return &meteredDynamo{API: api, items: map[string]map[string]attrSize{}}
}

func (m *meteredDynamo) capacity() capacity {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

func numberSize(v float64) int {
	s := strings.TrimLeft(strings.Replace(strconv.FormatFloat(math.Abs(v), 'g', -1, 64), ".", "", 1), "0")
	if i := strings.IndexAny(s, "e"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimRight(s, "0")
	return (len(s)+1)/2 + 1
}

func valueSize(v types.AttributeValue) attrSize {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return attrSize{size: len(v.Value)}
	case *types.AttributeValueMemberB:
		return attrSize{size: len(v.Value)}
	case *types.AttributeValueMemberN:
		f, _ := strconv.ParseFloat(v.Value, 64)
		return attrSize{size: numberSize(f), num: f}
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return attrSize{size: n}
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return attrSize{size: 1}
	}
	return attrSize{size: 8}
}

func itemSize(attrs map[string]attrSize) int {
	n := 0
	for name, a := range attrs {
		n += len(name) + a.size
	}
	return n
}

func itemKey(key map[string]types.AttributeValue) string {
	pk, _ := key["pk"].(*types.AttributeValueMemberS)
	sk, _ := key["sk"].(*types.AttributeValueMemberS)
	if pk == nil || sk == nil {
		return ""
	}
	return pk.Value + "\x00" + sk.Value
}

func kb(size, unit int) float64 { return math.Max(1, math.Ceil(float64(size)/float64(unit))) }

// indexEntry is the size of the item's due-index entry, or 0 when it is not in it.
func indexEntry(attrs map[string]attrSize) int {
	if _, ok := attrs[dueIndexKeyA]; !ok {
		return 0
	}
	if _, ok := attrs[dueIndexKeyB]; !ok {
		return 0
	}
	n := 100
	for _, name := range []string{"pk", "sk", dueIndexKeyA, dueIndexKeyB, dueProjected} {
		if a, ok := attrs[name]; ok {
			n += len(name) + a.size
		}
	}
	return n
}

// applyUpdate applies an update's SET, ADD and REMOVE clauses to the item model and
// returns the item's sizes before and after and the index write units.
func (m *meteredDynamo) applyUpdate(u *types.Update) (before, after int, indexWCU float64) {
	k := itemKey(u.Key)
	old := m.items[k]
	cur := make(map[string]attrSize, len(old)+4)
	for n, a := range old {
		cur[n] = a
	}
	if old == nil {
		for n, v := range u.Key {
			cur[n] = valueSize(v)
		}
	}
	before = itemSize(old)
	name := func(s string) string {
		if n, ok := u.ExpressionAttributeNames[s]; ok {
			return n
		}
		return s
	}
	clause := ""
	for _, part := range strings.Split(aws.ToString(u.UpdateExpression), ",") {
		f := strings.Fields(part)
		if len(f) > 0 && (f[0] == "SET" || f[0] == "ADD" || f[0] == "REMOVE") {
			clause, f = f[0], f[1:]
		}
		// A clause keyword may follow the previous clause's last item.
		for len(f) > 0 {
			switch {
			case clause == "SET" && len(f) >= 3 && f[1] == "=":
				cur[name(f[0])] = valueSize(u.ExpressionAttributeValues[f[2]])
				f = f[3:]
			case clause == "ADD" && len(f) >= 2:
				v := valueSize(u.ExpressionAttributeValues[f[1]])
				if a, ok := cur[name(f[0])]; ok {
					v.num += a.num
					v.size = numberSize(v.num)
				}
				cur[name(f[0])] = v
				f = f[2:]
			case clause == "REMOVE":
				delete(cur, name(f[0]))
				f = f[1:]
			default:
				f = f[1:]
			}
			if len(f) > 0 && (f[0] == "SET" || f[0] == "ADD" || f[0] == "REMOVE") {
				clause, f = f[0], f[1:]
			}
		}
	}
	m.items[k] = cur
	after = itemSize(cur)
	ib, ia := indexEntry(old), indexEntry(cur)
	switch {
	case ib == 0 && ia > 0:
		indexWCU = kb(ia, 1024)
	case ib > 0 && ia == 0:
		indexWCU = kb(ib, 1024)
	case ib > 0 && ia > 0:
		switch {
		case old[dueIndexKeyA] != cur[dueIndexKeyA] || old[dueIndexKeyB] != cur[dueIndexKeyB]:
			indexWCU = kb(ib, 1024) + kb(ia, 1024)
		case old[dueProjected] != cur[dueProjected]:
			indexWCU = kb(ia, 1024)
		}
	}
	return before, after, indexWCU
}

func (m *meteredDynamo) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := m.API.TransactWriteItems(ctx, in, opts...)
	if err != nil {
		return out, err // a cancelled transaction is billed too; the join's rare conflicts are left out
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, it := range in.TransactItems {
		if it.Update == nil {
			continue
		}
		before, after, idx := m.applyUpdate(it.Update)
		w := 2 * kb(max(before, after), 1024)
		if strings.HasPrefix(itemKey(it.Update.Key), "r#") {
			m.used.recordWCU += w
			m.used.records++
		} else {
			m.used.counterWCU += w
			m.used.counters++
		}
		m.used.indexWCU += idx
	}
	return out, nil
}

func (m *meteredDynamo) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := m.API.PutItem(ctx, in, opts...)
	if err == nil {
		m.mu.Lock()
		attrs := map[string]attrSize{}
		for n, v := range in.Item {
			attrs[n] = valueSize(v)
		}
		m.items[itemKey(in.Item)] = attrs
		m.used.otherWCU += kb(itemSize(attrs), 1024)
		m.mu.Unlock()
	}
	return out, err
}

func (m *meteredDynamo) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out, err := m.API.BatchGetItem(ctx, in, opts...)
	if err == nil {
		m.mu.Lock()
		for _, ka := range in.RequestItems {
			read := float64(len(ka.Keys)) // kumo returns no unprocessed keys
			for _, k := range ka.Keys {
				if attrs, ok := m.items[itemKey(k)]; ok {
					read += kb(itemSize(attrs), 4096) - 1
				}
			}
			if !aws.ToBool(ka.ConsistentRead) {
				read /= 2
			}
			m.used.readRCU += read
		}
		m.mu.Unlock()
	}
	return out, err
}

func (m *meteredDynamo) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := m.API.Query(ctx, in, opts...)
	if err == nil {
		n := 0
		for _, it := range out.Items {
			for name, v := range it {
				n += len(name) + valueSize(v).size
			}
		}
		r := kb(n, 4096)
		if !aws.ToBool(in.ConsistentRead) {
			r /= 2
		}
		m.mu.Lock()
		m.used.queryRCU += r
		m.mu.Unlock()
	}
	return out, err
}

// storage is the table's billed bytes: items and due-index entries, 100 bytes each.
func (m *meteredDynamo) storage() (bytes int64, items, records int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, attrs := range m.items {
		bytes += int64(itemSize(attrs) + 100 + indexEntry(attrs))
		if strings.HasPrefix(k, "r#") {
			records++
		}
	}
	return bytes, len(m.items), records
}

// benchDynamo runs inferences through the join on the DynamoDB store (kumo at
// endpoint): production and shadow predictions in separate batches (two sources),
// labels for a share of them, maturity for the rest, for each batch size; and prices
// the capacity at the team's traffic.
func benchDynamo(ctx context.Context, out io.Writer, endpoint string, n int, batches []int) error {
	client := dynamodb.New(dynamodb.Options{
		BaseEndpoint: aws.String(endpoint), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", ""),
	})
	fmt.Fprintf(out, "### DynamoDB capacity per event (the join on the DynamoDB store against kumo, metered by the documented rules; %d inferences per run)\n\n", n)
	fmt.Fprintln(out, "Production and shadow predictions arrive in separate batches (two sources), or together (one commit holds both of an inference); 1 in 10 inferences gets a label (random order), the rest mature after 30 days. Write units are transactional (2 per KB) unless noted.")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| events per commit | production and shadow | WCU per prediction (record + counters + index) | RCU per prediction | WCU per label | RCU per label | WCU per matured prediction | largest item | record item (mean) |")
	fmt.Fprintln(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	type row struct {
		batch                            int
		together                         bool
		pred, lbl, mat                   capacity
		preds, lbls, mats                int
		storagePerRecord, reloadRCU, hot float64
	}
	var rows []row
	type runKind struct {
		batch    int
		together bool
	}
	var kinds []runKind
	for _, b := range batches {
		kinds = append(kinds, runKind{b, false}, runKind{b, true})
	}
	for _, kind := range kinds {
		batch := kind.batch
		m := newMeteredDynamo(client)
		table := fmt.Sprintf("verdict-bench-%d-%d", batch, time.Now().UnixNano())
		jn, err := openJoin(ctx, joinSpec{
			store: storeDynamo, dynamoAPI: m, dynamo: dynamo.Config{Table: table, WriterID: "bench", Retention: 90 * 24 * time.Hour},
			join:    labels.Config{SegmentKeys: []string{"merchant_category"}, Maturity: 30 * 24 * time.Hour},
			windows: window.New(5*time.Minute, 7*24*time.Hour),
		})
		if err != nil {
			return fmt.Errorf("dynamodb at %s: %w", endpoint, err)
		}
		st, j := jn.store, jn.join
		rng := rand.New(rand.NewPCG(9, uint64(batch)))
		now := time.Now()
		r := row{batch: batch, together: kind.together}
		c0 := m.capacity()
		pred := func(i int, v string) ingest.Prediction {
			p := benchPrediction(i, v, rng, now.Add(-time.Duration(n-i)*time.Millisecond))
			p.InferenceID = scaleID(i)
			return p
		}
		var pb ingest.Batch
		flush := func(force bool) error {
			if len(pb.Predictions) >= batch || (force && len(pb.Predictions) > 0) {
				_, err := j.Apply(ctx, pb)
				pb.Predictions = nil
				return err
			}
			return nil
		}
		if kind.together {
			for i := range n {
				pb.Predictions = append(pb.Predictions, pred(i, "v5"), pred(i, "v6"))
				if err := flush(false); err != nil {
					return err
				}
			}
		} else {
			for _, v := range []string{"v5", "v6"} {
				for i := range n {
					pb.Predictions = append(pb.Predictions, pred(i, v))
					if err := flush(false); err != nil {
						return err
					}
				}
				if err := flush(true); err != nil {
					return err
				}
			}
		}
		if err := flush(true); err != nil {
			return err
		}
		r.preds = 2 * n
		c1 := m.capacity()
		r.pred = c1.sub(c0)
		var b ingest.Batch
		for _, i := range rng.Perm(n)[:n/10] {
			b.Labels = append(b.Labels, ingest.Label{InferenceID: scaleID(i), Positive: rng.IntN(5) == 0, Time: now})
			if len(b.Labels) == batch {
				if _, err := j.Apply(ctx, b); err != nil {
					return err
				}
				b.Labels = nil
			}
		}
		if len(b.Labels) > 0 {
			if _, err := j.Apply(ctx, b); err != nil {
				return err
			}
		}
		r.lbls = n / 10
		c2 := m.capacity()
		r.lbl = c2.sub(c1)
		for {
			k, err := j.Mature(ctx, now.Add(31*24*time.Hour), batch)
			if err != nil {
				return err
			}
			if k == 0 {
				break
			}
			r.mats += k
		}
		c3 := m.capacity()
		r.mat = c3.sub(c2)
		bytes, _, records := m.storage()
		r.storagePerRecord = float64(bytes) / float64(records)
		// A full reload of the tallies (hourly) and a recent one (every refresh).
		c4 := m.capacity()
		if err := st.Tallies(ctx, now.Add(-7*24*time.Hour).Unix(), func(tally.Delta, bool) error { return nil }); err != nil {
			return err
		}
		c5 := m.capacity()
		if err := st.Tallies(ctx, now.Add(-2*time.Hour).Unix(), func(tally.Delta, bool) error { return nil }); err != nil {
			return err
		}
		r.reloadRCU, r.hot = c5.sub(c4).rcu(), m.capacity().sub(c5).rcu()
		jn.close()
		largest, recSum, recN := 0, 0, 0
		m.mu.Lock()
		for k, attrs := range m.items {
			largest = max(largest, itemSize(attrs))
			if strings.HasPrefix(k, "r#") {
				recSum += itemSize(attrs)
				recN++
			}
		}
		m.mu.Unlock()
		per := func(c capacity, k int) string {
			return fmt.Sprintf("%.2f (%.2f + %.2f + %.2f)", c.wcu()/float64(k), c.recordWCU/float64(k), c.counterWCU/float64(k), c.indexWCU/float64(k))
		}
		fmt.Fprintf(out, "| %d | %s | %s | %.2f | %s | %.2f | %s | %d B | %d B |\n", batch, arrival(r.together), per(r.pred, r.preds), r.pred.rcu()/float64(r.preds),
			per(r.lbl, r.lbls), r.lbl.rcu()/float64(r.lbls), per(r.mat, max(r.mats, 1)), largest, recSum/max(recN, 1))
		rows = append(rows, r)
	}
	fmt.Fprintln(out)
	// The team's traffic: 800 inferences/s, production + shadow; every inference is
	// resolved once (a label or maturity; here 1 in 10 by a label).
	const inferencesPerSec, month = 800.0, 30 * 24 * 3600.0
	fmt.Fprintln(out, "At the team's traffic (800 inferences/s, production + shadow: 1,600 predictions/s; each inference resolved once, 1 in 10 by a label, the rest by maturity), 30-day month, list prices us-east-1:")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| events per commit | production and shadow | write units/s | read units/s | on-demand $/month (writes + reads) | provisioned $/month at 70 % utilisation | storage at 90-day retention | storage $/month |")
	fmt.Fprintln(out, "|---:|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		perInf := func(f func(capacity) float64) float64 {
			// A maturity sweep resolves an inference's two predictions in one write.
			return 2*f(r.pred)/float64(r.preds) + 0.1*f(r.lbl)/float64(r.lbls) + 0.9*2*f(r.mat)/float64(max(r.mats, 1))
		}
		wps := inferencesPerSec * perInf(capacity.wcu)
		rps := inferencesPerSec*perInf(capacity.rcu) + r.hot/5 + r.reloadRCU/3600 // refresh every 5 s, full reload hourly
		onDemand := (wps*priceWRU + rps*priceRRU) * month
		provisioned := (wps*priceWCUHour + rps*priceRCUHour) / 0.7 * month / 3600
		storeGB := inferencesPerSec * 90 * 86400 * r.storagePerRecord / 1e9
		fmt.Fprintf(out, "| %d | %s | %.0f | %.0f | **$%.0f** | **$%.0f** | %.1f TB (%.0f B per inference) | $%.0f |\n", r.batch, arrival(r.together), wps, rps, onDemand, provisioned,
			storeGB/1000, r.storagePerRecord, math.Max(0, storeGB-25)*priceStorageGBm)
	}
	fmt.Fprintln(out)
	return nil
}

func arrival(together bool) string {
	if together {
		return "together"
	}
	return "separate"
}
