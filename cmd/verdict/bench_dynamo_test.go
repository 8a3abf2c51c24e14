package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestNumberSizeFollowsDynamoDBsRule(t *testing.T) {
	// About one byte per two significant digits, plus one; leading and trailing
	// zeros do not count.
	for _, tt := range []struct {
		v    float64
		want int
	}{{0, 1}, {7, 2}, {12, 2}, {123, 3}, {12345, 4}, {1200, 2}, {0.5, 2}, {1772366400123, 8}} {
		if got := numberSize(tt.v); got != tt.want {
			t.Errorf("numberSize(%v) = %d, want %d", tt.v, got, tt.want)
		}
	}
}

func update(expr string, values map[string]types.AttributeValue, names map[string]string) *types.Update {
	return &types.Update{
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "r#a"}, "sk": &types.AttributeValueMemberS{Value: "r"}},
		UpdateExpression:          aws.String(expr),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
}

func TestMeterModelsTheStoresUpdatesAndTheirIndexWrites(t *testing.T) {
	m := newMeteredDynamo(nil)
	n := func(s string) types.AttributeValue { return &types.AttributeValueMemberN{Value: s} }
	names := map[string]string{"#rec": "rec", "#ver": "ver", "#dsh": "due_shard", "#dat": "due_at", "#due": "due", "#exp": "expires_at"}
	steps := []struct {
		name      string
		expr      string
		values    map[string]types.AttributeValue
		wantAttrs []string
		wantIndex float64
	}{
		{
			name:      "a new record enters the index: one index write",
			expr:      "SET #rec = :rec, #ver = :ver, #dsh = :dsh, #dat = :dat, #due = :due REMOVE #exp",
			values:    map[string]types.AttributeValue{":rec": &types.AttributeValueMemberB{Value: make([]byte, 100)}, ":ver": n("1"), ":dsh": n("3"), ":dat": n("100"), ":due": &types.AttributeValueMemberSS{Value: []string{"100#v5"}}},
			wantAttrs: []string{"pk", "sk", "rec", "ver", "due_shard", "due_at", "due"},
			wantIndex: 1,
		},
		{
			name:      "a second pending prediction with the same oldest time changes the projection: one",
			expr:      "SET #rec = :rec, #ver = :ver, #dsh = :dsh, #dat = :dat, #due = :due REMOVE #exp",
			values:    map[string]types.AttributeValue{":rec": &types.AttributeValueMemberB{Value: make([]byte, 120)}, ":ver": n("2"), ":dsh": n("3"), ":dat": n("100"), ":due": &types.AttributeValueMemberSS{Value: []string{"100#v5", "100#v6"}}},
			wantAttrs: []string{"pk", "sk", "rec", "ver", "due_shard", "due_at", "due"},
			wantIndex: 1,
		},
		{
			name:      "an older pending prediction moves the index key: two",
			expr:      "SET #rec = :rec, #ver = :ver, #dsh = :dsh, #dat = :dat, #due = :due REMOVE #exp",
			values:    map[string]types.AttributeValue{":rec": &types.AttributeValueMemberB{Value: make([]byte, 130)}, ":ver": n("3"), ":dsh": n("3"), ":dat": n("90"), ":due": &types.AttributeValueMemberSS{Value: []string{"90#v4", "100#v5", "100#v6"}}},
			wantAttrs: []string{"pk", "sk", "rec", "ver", "due_shard", "due_at", "due"},
			wantIndex: 2,
		},
		{
			name:      "resolved: leaves the index (one) and gets its expiry",
			expr:      "SET #rec = :rec, #ver = :ver, #exp = :exp REMOVE #dsh, #dat, #due",
			values:    map[string]types.AttributeValue{":rec": &types.AttributeValueMemberB{Value: make([]byte, 140)}, ":ver": n("4"), ":exp": n("1800000000")},
			wantAttrs: []string{"pk", "sk", "rec", "ver", "expires_at"},
			wantIndex: 1,
		},
		{
			name:      "a write that touches no indexed attribute: none",
			expr:      "SET #rec = :rec, #ver = :ver, #exp = :exp",
			values:    map[string]types.AttributeValue{":rec": &types.AttributeValueMemberB{Value: make([]byte, 140)}, ":ver": n("5"), ":exp": n("1800000001")},
			wantAttrs: []string{"pk", "sk", "rec", "ver", "expires_at"},
			wantIndex: 0,
		},
	}
	for _, st := range steps {
		_, after, idx := m.applyUpdate(update(st.expr, st.values, names))
		if idx != st.wantIndex {
			t.Errorf("%s: %v index write units, want %v", st.name, idx, st.wantIndex)
		}
		item := m.items["r#a\x00r"]
		if len(item) != len(st.wantAttrs) {
			t.Errorf("%s: attributes %v, want %v", st.name, item, st.wantAttrs)
		}
		for _, a := range st.wantAttrs {
			if _, ok := item[a]; !ok {
				t.Errorf("%s: attribute %s missing", st.name, a)
			}
		}
		if after != itemSize(item) || after < 140 {
			t.Errorf("%s: size after %d, item %d", st.name, after, itemSize(item))
		}
	}
}

func TestMeterSumsCounterAdds(t *testing.T) {
	m := newMeteredDynamo(nil)
	names := map[string]string{"#c00": "n_pred", "#c03": "tp", "#exp": "expires_at"}
	add := func(pred, tp string) {
		vals := map[string]types.AttributeValue{":c00": &types.AttributeValueMemberN{Value: pred}, ":c03": &types.AttributeValueMemberN{Value: tp}, ":exp": &types.AttributeValueMemberN{Value: "1800000000"}}
		m.applyUpdate(update("ADD #c00 :c00, #c03 :c03 SET #exp = :exp", vals, names))
	}
	add("9", "1")
	add("991", "1")
	item := m.items["r#a\x00r"]
	if item["n_pred"].num != 1000 || item["tp"].num != 2 {
		t.Fatalf("counters %+v, want n_pred 1000 and tp 2", item)
	}
	if item["n_pred"].size != numberSize(1000) {
		t.Errorf("n_pred size %d, want that of 1000", item["n_pred"].size)
	}
}

func TestScalePlotIsAnSVGWithALinePerSeries(t *testing.T) {
	run := ScaleRun{Date: "2026-12-04", CPUs: 2, CacheMB: 512, Batch: 1000, Points: []ScalePoint{
		{Pending: 1e7, LastPredictionsPerSec: 60000, LabelsPerSec: 24000, ColdLabelsPerSec: 12000, FirstLabelsPerSec: 5000, BytesPerPred: 120, RSSBytes: 700 << 20, RestartSeconds: 0.7},
		{Pending: 1e8, LastPredictionsPerSec: 20000, LabelsPerSec: 8000, ColdLabelsPerSec: 4000, FirstLabelsPerSec: 3000, BytesPerPred: 100, RSSBytes: 1200 << 20, RestartSeconds: 1.2},
	}}
	path := filepath.Join(t.TempDir(), "scale.svg")
	if err := writeScaleSVG(path, run); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	lines := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if lines != 7 { // 4 rates, bytes per prediction, RSS, restart
		t.Errorf("%d lines, want 7", lines)
	}
	if !strings.Contains(string(data), "labels/s (store files evicted from page cache)") {
		t.Error("legend lacks the cold label rate")
	}
}
