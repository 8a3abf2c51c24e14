package ingest

import (
	"strings"
	"testing"
)

// shiftCapture is one Data Capture record of a blue/green shift: both fleets write
// under {endpoint}/AllTraffic/, the request carries the model the application chose
// (when it chose one) and the response the model version (when the container
// returns it).
func shiftCapture(id, request, response string) []byte {
	return []byte(`{"captureData":{"endpointInput":{"observedContentType":"application/json","mode":"INPUT","data":` + request + `,"encoding":"JSON"},` +
		`"endpointOutput":{"observedContentType":"application/json","mode":"OUTPUT","data":` + response + `,"encoding":"JSON"}},` +
		`"eventMetadata":{"eventId":"e-` + id + `","inferenceId":"` + id + `","inferenceTime":"2026-03-01T12:00:00Z"},"eventVersion":"0"}`)
}

// The ways a team can tell the fleets of a blue/green shift apart, each on records
// that all come from the same capture folder (AllTraffic).
func TestFleetIdentityDuringABlueGreenShift(t *testing.T) {
	fleets := VariantMap{"txn-old": "fraud-v5", "txn-new": "fraud-v6"}
	cases := []struct {
		name string
		dc   DataCaptureConfig
		line []byte
		want string
	}{
		{"the folder alone cannot tell them apart", DataCaptureConfig{},
			shiftCapture("txn-new", `"{\"mcc\":\"5732\"}"`, `"{\"score\":0.3,\"model_version\":\"fraud-v6\"}"`), "AllTraffic"},
		{"the model's version in its response (recommended)", DataCaptureConfig{VariantSelector: "json:model_version"},
			shiftCapture("txn-new", `"{\"mcc\":\"5732\"}"`, `"{\"score\":0.3,\"model_version\":\"fraud-v6\"}"`), "fraud-v6"},
		{"output: names the default side", DataCaptureConfig{VariantSelector: "output:json:model_version"},
			shiftCapture("txn-old", `"{\"mcc\":\"5732\"}"`, `"{\"score\":0.3,\"model_version\":\"fraud-v5\"}"`), "fraud-v5"},
		{"a request attribute naming the model the application chose", DataCaptureConfig{VariantSelector: "input:json:model"},
			shiftCapture("txn-new", `"{\"mcc\":\"5732\",\"model\":\"fraud-v6\"}"`, `"{\"score\":0.3}"`), "fraud-v6"},
		{"a request CSV column", DataCaptureConfig{VariantSelector: "input:csv:1"},
			shiftCapture("txn-old", `"5732,fraud-v5"`, `"{\"score\":0.3}"`), "fraud-v5"},
		{"the application's inference id → variant record", DataCaptureConfig{Fleets: fleets},
			shiftCapture("txn-new", `"{}"`, `"{\"score\":0.3}"`), "fraud-v6"},
		{"the application's record wins over the response", DataCaptureConfig{Fleets: fleets, VariantSelector: "json:model_version"},
			shiftCapture("txn-old", `"{}"`, `"{\"score\":0.3,\"model_version\":\"fraud-v6\"}"`), "fraud-v5"},
		{"an id the record does not know falls back to the selector", DataCaptureConfig{Fleets: fleets, VariantSelector: "json:model_version"},
			shiftCapture("txn-other", `"{}"`, `"{\"score\":0.3,\"model_version\":\"fraud-v6\"}"`), "fraud-v6"},
		{"an id the record does not know falls back to the folder", DataCaptureConfig{Fleets: fleets},
			shiftCapture("txn-other", `"{}"`, `"{\"score\":0.3}"`), "AllTraffic"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.dc.Score = "json:score"
			d := newTestDecoder(t, DecoderConfig{DataCapture: tc.dc}).WithCaptureVariant("AllTraffic")
			p, err := d.DecodePrediction(tc.line)
			if err != nil {
				t.Fatal(err)
			}
			if p.Variant != tc.want {
				t.Errorf("variant %q, want %q", p.Variant, tc.want)
			}
		})
	}
}

func TestFleetIdentityRejections(t *testing.T) {
	input := DecoderConfig{DataCapture: DataCaptureConfig{VariantSelector: "input:json:model", Score: "json:score"}}
	noInput := `{"captureData":{"endpointOutput":{"observedContentType":"application/json","mode":"OUTPUT","data":"{\"score\":0.3}","encoding":"JSON"}},` +
		`"eventMetadata":{"eventId":"e","inferenceTime":"2026-03-01T12:00:00Z"},"eventVersion":"0"}`
	tests := []rejectionCase{
		{name: "a request selector on a capture without the request", cfg: &input, captureVariant: "AllTraffic", line: noInput,
			class: ClassMissingField, field: "captureData.endpointInput", reason: "the variant is read from the request (input:json:model, VERDICT_CAPTURE_VARIANT_SELECTOR)"},
		{name: "a request without the attribute", cfg: &input, captureVariant: "AllTraffic", line: string(shiftCapture("t", `"{\"mcc\":\"1\"}"`, `"{\"score\":0.3}"`)),
			class: ClassInvalidField, field: "captureData.endpointInput.data", reason: "variant (input:json:model, VERDICT_CAPTURE_VARIANT_SELECTOR): no such value"},
	}
	checkCaptureRejections(t, tests)
	if _, err := NewDecoder(DecoderConfig{DataCapture: DataCaptureConfig{VariantSelector: "request:json:model"}}); err == nil ||
		!strings.Contains(err.Error(), "optionally after input: or output:") {
		t.Errorf("a bad side: %v", err)
	}
}

func TestReadVariantMap(t *testing.T) {
	good := `{"inference_id":"txn-1","variant":"fraud-v5"}
{"inference_id":"txn-2","variant":"fraud-v6","score":0.4,"time":"2026-03-01T12:00:00Z"}

{"inference_id":"txn-1","variant":"fraud-v5"}
`
	m := VariantMap{}
	if err := ReadVariantMap(strings.NewReader(good), "app.jsonl", m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["txn-1"] != "fraud-v5" || m["txn-2"] != "fraud-v6" {
		t.Errorf("map %v", m)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"not JSON", "txn-1,fraud-v5\n", "variant map app.jsonl line 1: want {"},
		{"no variant", `{"inference_id":"txn-1"}`, "line 1: want both inference_id and variant"},
		{"an empty variant", `{"inference_id":"txn-1","variant":""}`, "line 1: variant: empty"},
		{"an id over 256 bytes", `{"inference_id":"` + strings.Repeat("x", 257) + `","variant":"v"}`, "line 1: inference_id: 257 bytes, over the 256-byte limit"},
		{"one id, two models", "{\"inference_id\":\"t\",\"variant\":\"a\"}\n{\"inference_id\":\"t\",\"variant\":\"b\"}\n", "line 2: inference id \"t\" is \"b\" here and \"a\" before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ReadVariantMap(strings.NewReader(tc.in), "app.jsonl", VariantMap{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}
