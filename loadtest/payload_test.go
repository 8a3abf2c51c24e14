package loadtest

import (
	"os"
	"strings"
	"testing"

	"github.com/verdictml/verdict/ingest"
)

func TestReadCaptureReplaysInputsWithProductionScoresAndSegments(t *testing.T) {
	b, err := os.ReadFile("testdata/capture.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !IsCapture(b) || IsCapture([]byte("0.2,electronics\n")) {
		t.Fatal("IsCapture does not tell a capture file from a payload file")
	}
	dec, err := ingest.NewDecoder(ingest.DecoderConfig{DataCapture: ingest.DataCaptureConfig{
		Score: "csv:0", Attributes: map[string]string{"merchant_category": "csv:1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := ReadCapture(strings.NewReader(string(b)), CaptureReading{Decoder: dec, SegmentKey: "merchant_category"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 {
		t.Fatalf("%d payloads, want 3 (the blank line skipped)", len(ps))
	}
	want := []struct {
		body, ct, accept, segment string
		prod                      float64 // -1: none
	}{
		{"0.2,electronics", "text/csv", "text/csv; charset=utf-8", "electronics", 0.2},
		{"0.7,grocery", "text/csv", "text/csv; charset=utf-8", "grocery", 0.7}, // base64 undone
		{"0.9,travel", "text/csv", "", "", -1},                                 // no output captured
	}
	for i, w := range want {
		p := ps[i]
		if string(p.Body) != w.body || p.ContentType != w.ct || p.Accept != w.accept || p.Segment != w.segment ||
			(w.prod < 0) != (p.Production == nil) || (p.Production != nil && *p.Production != w.prod) {
			t.Errorf("payload %d = %+v (production %v), want %+v", i, p, p.Production, w)
		}
	}
}

func TestReadCaptureNamesTheLineAndFieldAtFault(t *testing.T) {
	in := `{"captureData":{"endpointInput":{"data":"1","encoding":"CSV"}}}` + "\n" + `{"captureData":{"endpointOutput":{"data":"1"}}}` + "\n"
	_, err := ReadCapture(strings.NewReader(in), CaptureReading{})
	if err == nil || !strings.Contains(err.Error(), "line 2: captureData.endpointInput: missing") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadPayloadsOnePerLine(t *testing.T) {
	ps, err := ReadPayloads(strings.NewReader("1,a\r\n\n2,b\n"), "text/csv")
	if err != nil || len(ps) != 2 || string(ps[0].Body) != "1,a" || ps[1].ContentType != "text/csv" {
		t.Fatalf("ReadPayloads = %+v, %v", ps, err)
	}
	if _, err := ReadPayloads(strings.NewReader("\n"), "text/csv"); err == nil {
		t.Error("an empty payload file was accepted")
	}
}
