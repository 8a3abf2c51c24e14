package dynamo

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/tally"
)

// change builds n record changes; each moves the variant's overall series and
// segments segment series in one bucket (bucket i%buckets).
func change(n, segments, buckets int) []labels.RecordChange {
	rcs := make([]labels.RecordChange, n)
	for i := range rcs {
		id := fmt.Sprintf("id-%04d", i)
		rc := labels.RecordChange{ID: id, Record: &labels.Record{ID: id, Preds: []labels.PredState{{Variant: "v5"}}}}
		b := int64(i%buckets) * 300
		rc.Deltas = append(rc.Deltas, tally.Delta{Key: tally.Key{Variant: "v5"}, Bucket: b, Counts: tally.Counts{Predictions: 1}})
		for s := range segments {
			rc.Deltas = append(rc.Deltas, tally.Delta{
				Key:    tally.Key{Variant: "v5", SegmentKey: fmt.Sprintf("k%d", s), Segment: fmt.Sprintf("%s-%d", id, s)},
				Bucket: b, Counts: tally.Counts{Predictions: 1},
			})
		}
		if i%3 == 0 {
			rc.Unmatched = -1
		}
		rcs[i] = rc
	}
	return rcs
}

func indices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestPackStaysWithinTransactionLimits(t *testing.T) {
	tests := []struct {
		name                    string
		records, segments, bkts int
		maxItems                int
		wantTxns                int // 0: don't check
	}{
		{name: "few records share their counters", records: 10, segments: 0, bkts: 1, maxItems: 100, wantTxns: 1},
		{name: "records with shared counters fill a transaction", records: 200, segments: 0, bkts: 1, maxItems: 100, wantTxns: 3},
		{name: "distinct segment counters split sooner", records: 100, segments: 2, bkts: 1, maxItems: 100},
		{name: "many buckets", records: 500, segments: 1, bkts: 50, maxItems: 100},
		{name: "a small limit", records: 50, segments: 3, bkts: 7, maxItems: 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rcs := change(tc.records, tc.segments, tc.bkts)
			txns, err := pack(rcs, indices(len(rcs)), 3, tc.maxItems, maxTxnBytes)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantTxns != 0 && len(txns) != tc.wantTxns {
				t.Errorf("%d transactions, want %d", len(txns), tc.wantTxns)
			}
			next := 0
			for n, tx := range txns {
				items, owner := tx.request("tbl", rcs, 3, time.Unix(0, 0), time.Hour)
				if len(items) > tc.maxItems || tx.items() > tc.maxItems {
					t.Errorf("transaction %d has %d items (estimate %d), limit %d", n, len(items), tx.items(), tc.maxItems)
				}
				if len(owner) != len(items) {
					t.Fatalf("owner has %d entries for %d items", len(owner), len(items))
				}
				seen := map[string]bool{}
				for i, it := range items {
					k := aws.ToString(it.Update.TableName) + "/" + it.Update.Key[attrPK].(*types.AttributeValueMemberS).Value +
						"/" + it.Update.Key[attrSK].(*types.AttributeValueMemberS).Value
					if seen[k] {
						t.Errorf("transaction %d writes %s twice", n, k)
					}
					seen[k] = true
					if owner[i] >= 0 {
						if owner[i] != next {
							t.Errorf("transaction %d holds record %d, want %d (order and completeness)", n, owner[i], next)
						}
						next++
					}
				}
			}
			if next != len(rcs) {
				t.Errorf("transactions hold %d records, want %d", next, len(rcs))
			}
		})
	}
}

func TestPackSumsDeltasPerCounter(t *testing.T) {
	rcs := change(30, 0, 2)
	txns, err := pack(rcs, indices(30), 0, 100, maxTxnBytes)
	if err != nil || len(txns) != 1 {
		t.Fatalf("%d transactions, %v", len(txns), err)
	}
	tx := txns[0]
	// Two buckets and the all-time counter of one series, plus the unmatched counter.
	if len(tx.tallies) != 3 || tx.unmatched != -10 {
		t.Fatalf("tallies %d (want 3), unmatched %d (want -10)", len(tx.tallies), tx.unmatched)
	}
	all := tx.tallies[tallyKey{allTimePartition(0), seriesSK(tally.Key{Variant: "v5"})}]
	if all == nil || all.Predictions != 30 {
		t.Fatalf("all-time counter %+v, want 30 predictions", all)
	}
}

func TestPackRejectsARecordNoTransactionHolds(t *testing.T) {
	rcs := change(1, 60, 1) // 61 series × (bucket + all-time) + record + unmatched
	_, err := pack(rcs, indices(1), 0, 100, maxTxnBytes)
	if err == nil || !strings.Contains(err.Error(), `"id-0000"`) {
		t.Fatalf("err = %v, want one naming the record", err)
	}
}

func TestCounterUpdateSendsOnlyNonZeroFields(t *testing.T) {
	c := tally.Counts{Predictions: 2, TP: -1, FN: 1, ScoreSum: 1.25, CensoredFlagged: -1}
	c.Bins[9] = 2
	u := counterUpdate("tbl", tallyKey{"a#0", "v5##"}, c)
	if got, want := aws.ToString(u.UpdateExpression), "ADD #c00 :c00, #c03 :c03, #c05 :c05, #c08 :c08, #c18 :c18, #c36 :c36"; got != want {
		t.Errorf("update %q, want %q", got, want)
	}
	if v := u.ExpressionAttributeValues[":c08"].(*types.AttributeValueMemberN).Value; v != "1.25" {
		t.Errorf("score sum %q", v)
	}
	item := map[string]types.AttributeValue{}
	for ph, name := range u.ExpressionAttributeNames {
		item[name] = u.ExpressionAttributeValues[":"+ph[1:]]
	}
	back, err := countsOf(item)
	if err != nil || back != c {
		t.Errorf("counts round trip: %+v, %v; want %+v", back, err, c)
	}
}

func TestRecordUpdate(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	pendingRec := &labels.Record{ID: "a", Version: 3, Preds: []labels.PredState{
		{Variant: "v5", Time: 20}, {Variant: "v6", Time: 10}, {Variant: "v7", Time: 5, Errored: true},
	}}
	resolvedRec := &labels.Record{ID: "b", Preds: []labels.PredState{{Variant: "v5", Outcome: tally.TruePositive}}}
	labelOnly := &labels.Record{ID: "c", Label: &labels.LabelState{Positive: true}}
	tests := []struct {
		name    string
		rc      labels.RecordChange
		expr    string
		cond    string
		due     []string
		expires bool
	}{
		{
			name: "pending predictions join the due index",
			rc:   labels.RecordChange{ID: "a", Record: pendingRec, Due: []labels.DueRef{{ID: "a", Variant: "v5", Time: 20}}},
			expr: "SET #rec = :rec, #ver = :ver, #dsh = :dsh, #dat = :dat, #due = :due REMOVE #exp",
			cond: "#ver = :old", due: []string{"20#v5", "10#v6"},
		},
		{
			name: "a resolved record leaves the index and expires",
			rc:   labels.RecordChange{ID: "b", Record: resolvedRec, Undue: []labels.DueRef{{ID: "b", Variant: "v5"}}},
			expr: "SET #rec = :rec, #ver = :ver, #exp = :exp REMOVE #dsh, #dat, #due",
			cond: "attribute_not_exists(#ver)", expires: true,
		},
		{
			name: "without index changes the index attributes are left alone",
			rc:   labels.RecordChange{ID: "b", Record: resolvedRec},
			expr: "SET #rec = :rec, #ver = :ver, #exp = :exp",
			cond: "attribute_not_exists(#ver)", expires: true,
		},
		{
			name: "a label waiting for its prediction never expires",
			rc:   labels.RecordChange{ID: "c", Record: labelOnly},
			expr: "SET #rec = :rec, #ver = :ver REMOVE #exp",
			cond: "attribute_not_exists(#ver)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := recordUpdate("tbl", &tc.rc, now, time.Hour)
			if got := aws.ToString(u.UpdateExpression); got != tc.expr {
				t.Errorf("update %q, want %q", got, tc.expr)
			}
			if got := aws.ToString(u.ConditionExpression); got != tc.cond {
				t.Errorf("condition %q, want %q", got, tc.cond)
			}
			wantVer := fmt.Sprint(tc.rc.Record.Version + 1)
			if v := u.ExpressionAttributeValues[":ver"].(*types.AttributeValueMemberN).Value; v != wantVer {
				t.Errorf("new version %s, want %s", v, wantVer)
			}
			if tc.due != nil {
				got := u.ExpressionAttributeValues[":due"].(*types.AttributeValueMemberSS).Value
				if fmt.Sprint(got) != fmt.Sprint(tc.due) {
					t.Errorf("due %v, want %v", got, tc.due)
				}
				if v := u.ExpressionAttributeValues[":dat"].(*types.AttributeValueMemberN).Value; v != "10" {
					t.Errorf("due_at %s, want the oldest pending time 10", v)
				}
			}
			exp, ok := u.ExpressionAttributeValues[":exp"]
			if ok != tc.expires {
				t.Fatalf("expires_at set: %v, want %v", ok, tc.expires)
			}
			if ok && exp.(*types.AttributeValueMemberN).Value != fmt.Sprint(now.Add(time.Hour).Unix()) {
				t.Errorf("expires_at %v", exp)
			}
			// Every placeholder sent is used: DynamoDB rejects unused ones.
			all := aws.ToString(u.UpdateExpression) + " " + aws.ToString(u.ConditionExpression)
			for ph := range u.ExpressionAttributeNames {
				if !strings.Contains(all, ph) {
					t.Errorf("unused name placeholder %s", ph)
				}
			}
			for ph := range u.ExpressionAttributeValues {
				if !strings.Contains(all, ph) {
					t.Errorf("unused value placeholder %s", ph)
				}
			}
		})
	}
}

func TestClassifyCancellationReasons(t *testing.T) {
	r := func(codes ...string) []types.CancellationReason {
		out := make([]types.CancellationReason, len(codes))
		for i, c := range codes {
			out[i].Code = aws.String(c)
		}
		return out
	}
	owner := []int{0, 4, -1, -1}
	tests := []struct {
		name    string
		reasons []types.CancellationReason
		drop    []int
		retry   bool
		fatal   bool
	}{
		{name: "AWS: a record's condition failed", reasons: r("None", "ConditionalCheckFailed", "None", "None"), drop: []int{4}},
		{name: "kumo: empty codes for actions that were fine", reasons: r("", "ConditionalCheckFailed", "", ""), drop: []int{4}},
		{name: "a record another transaction was writing is a conflict", reasons: r("TransactionConflict", "None", "None", "None"), drop: []int{0}},
		{name: "a contended counter is retried", reasons: r("None", "None", "TransactionConflict", "None"), retry: true},
		{name: "throttling is retried", reasons: r("None", "None", "None", "ThrottlingError"), retry: true},
		{name: "a validation error is fatal", reasons: r("None", "ValidationError", "None", "None"), fatal: true},
		{name: "reasons that do not match the actions", reasons: r("ConditionalCheckFailed")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			drop, retry, fatal := classify(tc.reasons, owner)
			if len(drop) != len(tc.drop) {
				t.Errorf("drop %v, want %v", drop, tc.drop)
			}
			for _, i := range tc.drop {
				if !drop[i] {
					t.Errorf("record %d not dropped", i)
				}
			}
			if retry != tc.retry || (fatal != "") != tc.fatal {
				t.Errorf("retry %v fatal %q, want %v %v", retry, fatal, tc.retry, tc.fatal)
			}
		})
	}
}
