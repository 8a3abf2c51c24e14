package ingest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestDecodeCapturedExchange(t *testing.T) {
	binary := []byte{0x00, 0xff, 0x10, 0x80} // not UTF-8: kept as is for replay
	cases := []struct {
		name      string
		line      string
		wantIn    []byte
		wantInCT  string
		wantOut   []byte
		wantID    string
		wantField string // rejection field; "" when accepted
	}{
		{
			name:   "CSV request and response as text",
			line:   `{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"12.5,electronics","encoding":"CSV"},"endpointOutput":{"observedContentType":"text/csv","mode":"OUTPUT","data":"0.91","encoding":"CSV"}},"eventMetadata":{"eventId":"e-1","inferenceId":"txn-1","inferenceTime":"2026-01-05T00:00:00Z"}}`,
			wantIn: []byte("12.5,electronics"), wantInCT: "text/csv", wantOut: []byte("0.91"), wantID: "txn-1",
		},
		{
			name:   "base64 binary request without output, id from eventId",
			line:   `{"captureData":{"endpointInput":{"observedContentType":"application/x-protobuf","mode":"INPUT","data":"` + base64.StdEncoding.EncodeToString(binary) + `","encoding":"BASE64"}},"eventMetadata":{"eventId":"e-2"}}`,
			wantIn: binary, wantInCT: "application/x-protobuf", wantID: "e-2",
		},
		{name: "no input is refused", line: `{"captureData":{"endpointOutput":{"data":"0.1","encoding":"CSV"}}}`, wantField: fieldInput},
		{name: "not a capture record", line: `{"inference_id":"x"}`, wantField: "captureData"},
		{name: "bad base64", line: `{"captureData":{"endpointInput":{"data":"%%%","encoding":"BASE64"}}}`, wantField: fieldInput + ".data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := DecodeCapturedExchange([]byte(tc.line))
			if tc.wantField != "" {
				var rej *Rejection
				if !errors.As(err, &rej) || rej.Field != tc.wantField {
					t.Fatalf("err = %v, want a rejection of %s", err, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ex.Input, tc.wantIn) || ex.InputContentType != tc.wantInCT || !bytes.Equal(ex.Output, tc.wantOut) || ex.InferenceID != tc.wantID {
				t.Errorf("got %+v", ex)
			}
		})
	}
}

func TestCaptureScoreAndAttributesUseTheConfiguredSelectors(t *testing.T) {
	d, err := NewDecoder(DecoderConfig{DataCapture: DataCaptureConfig{
		Score: "json:predictions.0.score", Attributes: map[string]string{"merchant_category": "csv:1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := d.CaptureScore([]byte(`{"predictions":[{"score":0.25}]}`)); err != nil || s != 0.25 {
		t.Errorf("CaptureScore = %v, %v; want 0.25", s, err)
	}
	if _, err := d.CaptureScore([]byte(`{"predictions":[]}`)); err == nil || !strings.Contains(err.Error(), "json:predictions.0.score") {
		t.Errorf("missing score: err = %v, want it to name the selector", err)
	}
	attrs, err := d.CaptureAttributes([]byte("12.5,electronics"))
	if err != nil || attrs["merchant_category"] != "electronics" {
		t.Errorf("CaptureAttributes = %v, %v", attrs, err)
	}
}
