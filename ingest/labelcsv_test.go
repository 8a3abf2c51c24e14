package ingest

import (
	"os"
	"strings"
	"testing"
)

func decodeCSVFile(t *testing.T, cfg DecoderConfig, path string) ([]Label, []Rejection) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return decodeCSV(t, cfg, f.Name(), f)
}

func decodeCSV(t *testing.T, cfg DecoderConfig, name string, r interface{ Read([]byte) (int, error) }) ([]Label, []Rejection) {
	t.Helper()
	var got []Label
	var rejects []Rejection
	err := newTestDecoder(t, cfg).DecodeLabelsCSV(r, 2, func(b Decoded[Label]) error {
		got = append(got, b.Events...)
		rejects = append(rejects, b.Rejections...)
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return got, rejects
}

func TestLabelCSVWithMappedColumnsAndValues(t *testing.T) {
	cfg := DecoderConfig{LabelCSV: LabelCSVConfig{
		Columns: map[string]string{"inference_id": "txn_id", "label": "outcome", "time": "resolved_at", "source": "system"},
		Values:  map[string]bool{"fraud": true, "legit": false},
	}}
	got, rejects := decodeCSVFile(t, cfg, "testdata/labels_mapped.csv")
	want := []Label{
		{InferenceID: "txn-1", Positive: true, Time: ts("2026-03-01T10:00:00Z"), Source: "disputes"},
		{InferenceID: "txn-2", Positive: false, Time: ts("2026-03-01T10:00:00Z"), Source: "disputes"},
		{InferenceID: "txn,7", Positive: true, Time: ts("2026-03-01T10:00:00Z")},
	}
	if len(got) != len(want) {
		t.Fatalf("labels %+v, want %+v (rejections %+v)", got, want, rejects)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("label %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	wantRej := []struct {
		line   int
		class  RejectClass
		field  string
		reason string
	}{
		{5, ClassInvalidField, "outcome", `"maybe" is not one of the label values ("fraud", "legit"; VERDICT_LABEL_VALUES)`},
		{6, ClassInvalidField, "resolved_at", `"yesterday" is not an RFC 3339 time`},
		{7, ClassMalformedCSV, "", "not one CSV record"},
		{8, ClassMalformedCSV, "", "2 columns, but the header has 4 (resolved_at is column 3)"},
		{9, ClassMissingField, "txn_id", "missing or empty"},
	}
	if len(rejects) != len(wantRej) {
		t.Fatalf("rejections %+v, want %d", rejects, len(wantRej))
	}
	for i, w := range wantRej {
		r := rejects[i]
		if r.Line != w.line || r.Class != w.class || r.Field != w.field || !strings.Contains(r.Reason, w.reason) {
			t.Errorf("rejection %d = {%d %s %s %q}, want {%d %s %s ...%q...}", i, r.Line, r.Class, r.Field, r.Reason, w.line, w.class, w.field, w.reason)
		}
		if len(r.Raw) == 0 {
			t.Errorf("rejection %d keeps no raw line", i)
		}
	}
}

func TestLabelCSVDefaults(t *testing.T) {
	in := "inference_id,label,time\ntxn-1,1,2026-03-01T10:00:00Z\ntxn-2,False,2026-03-01T10:00:00Z\ntxn-3,fraud,2026-03-01T10:00:00Z\n"
	got, rejects := decodeCSV(t, DecoderConfig{}, "defaults", strings.NewReader(in))
	if len(got) != 2 || !got[0].Positive || got[1].Positive || got[0].Source != "" {
		t.Errorf("labels %+v, want txn-1 positive and txn-2 negative", got)
	}
	if len(rejects) != 1 || !strings.Contains(rejects[0].Reason, "map other values with VERDICT_LABEL_VALUES") {
		t.Errorf("rejections %+v, want txn-3's value refused with a hint", rejects)
	}
}

func TestLabelCSVWithoutTheNeededHeaderRejectsEveryLine(t *testing.T) {
	in := "txn-1,1,2026-03-01T10:00:00Z\ntxn-2,0,2026-03-01T10:00:00Z\n"
	got, rejects := decodeCSV(t, DecoderConfig{}, "headless", strings.NewReader(in))
	if len(got) != 0 || len(rejects) != 2 {
		t.Fatalf("labels %+v, rejections %+v; want none and 2", got, rejects)
	}
	for _, r := range rejects {
		if r.Class != ClassMissingField || !strings.Contains(r.Reason, `no column "inference_id" (for inference_id) or "label" (for label) or "time" (for time)`) ||
			!strings.Contains(r.Reason, "VERDICT_LABEL_CSV_COLUMNS") {
			t.Errorf("rejection %+v", r)
		}
	}
}

func TestLabelCSVConfigIsChecked(t *testing.T) {
	_, err := NewDecoder(DecoderConfig{LabelCSV: LabelCSVConfig{
		Columns: map[string]string{"score": "s", "time": " "},
		Values:  map[string]bool{"Fraud": true, "fraud": false},
	}})
	for _, want := range []string{`LabelCSV.Columns["score"]: not a label field`, `LabelCSV.Columns["time"]: empty column name`, "maps to both positive and negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one containing %q", err, want)
		}
	}
}
