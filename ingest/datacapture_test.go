package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDataCaptureFixtures(t *testing.T) {
	type rej struct {
		line   int
		class  RejectClass
		field  string
		reason string
	}
	tests := []struct {
		file    string
		cfg     DecoderConfig
		want    []Prediction
		rejects []rej
	}{
		{
			file: "datacapture_csv.jsonl",
			cfg: DecoderConfig{
				Roles: map[string]Role{"fraud-v4": RoleShadow},
				DataCapture: DataCaptureConfig{
					Variant:    "fraud-v4",
					Attributes: map[string]string{"merchant_category": "csv:1", "country": "csv:3"},
				},
			},
			want: []Prediction{
				{InferenceID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", Variant: "fraud-v4", Role: RoleShadow, Score: 0.0254181120544672,
					Threshold: 0.5, Time: ts("2022-02-14T17:25:49Z"), Attributes: map[string]string{"merchant_category": "5411", "country": "US"}},
				{InferenceID: "txn-2", Variant: "fraud-v4", Role: RoleShadow, Score: 0.91,
					Threshold: 0.5, Time: ts("2022-02-14T17:25:50.125Z"), Attributes: map[string]string{"merchant_category": "5812", "country": "DE"}},
			},
			rejects: []rej{
				{3, ClassInvalidField, "captureData.endpointOutput.data", "score 30.4133586884 is outside [0, 1]"},
				{4, ClassInvalidField, "captureData.endpointOutput.data", "payload holds 2 CSV records, want one per inference"},
				{5, ClassInvalidField, "captureData.endpointInput.data", "attribute country: column 3 is missing: the record has 2 column(s)"},
			},
		},
		{
			file: "datacapture_json.jsonl",
			cfg: DecoderConfig{
				Format:     FormatDataCapture,
				Thresholds: map[string]float64{"fraud-v5": 0.8},
				DataCapture: DataCaptureConfig{
					Variant:    "fraud-v5",
					Score:      "json:predictions.0.score",
					Attributes: map[string]string{"merchant_category": "json:merchant_category", "country": "json:card.country"},
				},
			},
			want: []Prediction{
				{InferenceID: "txn-10", Variant: "fraud-v5", Role: RoleProduction, Score: 0.87,
					Threshold: 0.8, Time: ts("2024-05-01T08:00:00Z"), Attributes: map[string]string{"merchant_category": "grocery", "country": "DE"}},
				{InferenceID: "e-2", Variant: "fraud-v5", Role: RoleProduction, Score: 0.05,
					Threshold: 0.8, Time: ts("2024-05-01T08:00:01Z"), Attributes: map[string]string{"country": "FR"}},
			},
			rejects: []rej{
				{3, ClassInvalidField, "captureData.endpointOutput.data", "score (json:predictions.0.score): no such value in the payload"},
				{4, ClassMissingField, "captureData.endpointOutput", "capture mode Output or InputAndOutput"},
			},
		},
		{
			file: "datacapture_base64.jsonl",
			cfg: DecoderConfig{
				DataCapture: DataCaptureConfig{
					Variant:    "fraud-v5",
					Role:       RoleShadow,
					Score:      "json:probabilities.1",
					Attributes: map[string]string{"merchant_category": "csv:1", "device": "csv:2"},
				},
			},
			want: []Prediction{
				{InferenceID: "txn-20", Variant: "fraud-v5", Role: RoleShadow, Score: 0.78,
					Threshold: 0.5, Time: ts("2023-11-30T23:59:59Z"), Attributes: map[string]string{"merchant_category": "5411", "device": ""}},
				{InferenceID: "b-2", Variant: "fraud-v5", Role: RoleShadow, Score: 0.1,
					Threshold: 0.5, Time: ts("2023-12-01T00:00:00Z"), Attributes: map[string]string{"merchant_category": "5812", "device": "x"}},
			},
			rejects: []rej{
				{3, ClassInvalidField, "captureData.endpointOutput.data", "encoding is BASE64 but data is not valid base64"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			d := newTestDecoder(t, tt.cfg)
			var got []Prediction
			var rejects []Rejection
			err = d.DecodePredictions(f, 100, func(b Decoded[Prediction]) error {
				got = append(got, b.Events...)
				rejects = append(rejects, b.Rejections...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d predictions, want %d; rejections: %v", len(got), len(tt.want), rejects)
			}
			for i := range got {
				if d := diffPrediction(got[i], tt.want[i]); d != "" {
					t.Errorf("prediction %d: %s", i, d)
				}
			}
			if len(rejects) != len(tt.rejects) {
				t.Fatalf("rejections %v, want %d", rejects, len(tt.rejects))
			}
			for i, w := range tt.rejects {
				r := rejects[i]
				if r.Line != w.line || r.Class != w.class || r.Field != w.field || !strings.Contains(r.Reason, w.reason) {
					t.Errorf("rejection %d = {%d %s %s %q}, want {%d %s %s ...%q...}", i, r.Line, r.Class, r.Field, r.Reason, w.line, w.class, w.field, w.reason)
				}
			}
		})
	}
}

func capture(output, outEnc, meta string) string {
	return `{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"1,2","encoding":"CSV"},` +
		`"endpointOutput":{"observedContentType":"text/csv","mode":"OUTPUT","data":` + output + `,"encoding":"` + outEnc + `"}},` +
		`"eventMetadata":` + meta + `,"eventVersion":"0"}`
}

const goodMeta = `{"eventId":"e-1","inferenceTime":"2026-03-01T12:00:00Z"}`

func TestDataCaptureRejects(t *testing.T) {
	base := DecoderConfig{DataCapture: DataCaptureConfig{Variant: "v1"}}
	noVariant := DecoderConfig{}
	csv1 := DecoderConfig{DataCapture: DataCaptureConfig{Variant: "v1", Score: "csv:1"}}
	fromOutput := DecoderConfig{DataCapture: DataCaptureConfig{VariantSelector: "json:model", Score: "json:score"}}
	pinned := DecoderConfig{Variants: []string{"v1"}}
	jsonScore := DecoderConfig{DataCapture: DataCaptureConfig{Variant: "v1", Score: "json:score"}}
	tests := []rejectionCase{
		{name: "no variant configured", cfg: &noVariant, line: capture(`"0.5"`, "CSV", goodMeta), class: ClassMissingField, field: "variant", reason: "it comes from the capture file's S3 key"},
		{name: "variant selector finds nothing", cfg: &fromOutput, line: capture(`"{\"score\":0.5}"`, "JSON", goodMeta), class: ClassInvalidField, field: "captureData.endpointOutput.data", reason: "variant (json:model, VERDICT_CAPTURE_VARIANT_SELECTOR): no such value"},
		{name: "variant selector finds an object", cfg: &fromOutput, line: capture(`"{\"score\":0.5,\"model\":{}}"`, "JSON", goodMeta), class: ClassInvalidField, field: "captureData.endpointOutput.data", reason: "an object, want a string or number"},
		{name: "variant from a file outside the pinned set", cfg: &pinned, captureVariant: "v2", line: capture(`"0.5"`, "CSV", goodMeta), class: ClassUnknownVariant, field: "variant", reason: `"v2" is not one of the pinned variants`},
		{name: "no event metadata", cfg: &base, line: `{"captureData":{}}`, class: ClassMissingField, field: "eventMetadata", reason: "missing"},
		{name: "neither inferenceId nor eventId", cfg: &base, line: capture(`"0.5"`, "CSV", `{"inferenceTime":"2026-03-01T12:00:00Z"}`), class: ClassMissingField, field: "eventMetadata.inferenceId", reason: "and so is eventMetadata.eventId"},
		{name: "over-long eventId", cfg: &base, line: capture(`"0.5"`, "CSV", `{"eventId":"`+strings.Repeat("e", 300)+`","inferenceTime":"2026-03-01T12:00:00Z"}`), class: ClassLimitExceeded, field: "eventMetadata.eventId", reason: "300 bytes"},
		{name: "missing inference time", cfg: &base, line: capture(`"0.5"`, "CSV", `{"eventId":"e"}`), class: ClassMissingField, field: "eventMetadata.inferenceTime", reason: "missing"},
		{name: "bad inference time", cfg: &base, line: capture(`"0.5"`, "CSV", `{"eventId":"e","inferenceTime":"14/02/2022"}`), class: ClassInvalidField, field: "eventMetadata.inferenceTime", reason: "not an RFC 3339 time"},
		{name: "data of the wrong type", cfg: &base, line: capture(`0.5`, "CSV", goodMeta), class: ClassInvalidField, field: "captureData.endpointOutput.data", reason: "want a string, got a number"},
		{name: "missing data", cfg: &base, line: capture(`null`, "CSV", goodMeta), class: ClassMissingField, field: "captureData.endpointOutput.data", reason: "missing"},
		{name: "unknown encoding", cfg: &base, line: capture(`"0.5"`, "GZIP", goodMeta), class: ClassInvalidField, field: "captureData.endpointOutput.encoding", reason: `"GZIP" is not one of BASE64, CSV, JSON`},
		{name: "several columns without a score selector", cfg: &base, line: capture(`"0.2,0.8"`, "CSV", goodMeta), class: ClassInvalidField, field: "captureData.endpointOutput.data", reason: "want a single number, got 2 columns"},
		{name: "score column past the end", cfg: &csv1, line: capture(`"0.2"`, "CSV", goodMeta), class: ClassInvalidField, field: "captureData.endpointOutput.data", reason: "score column 1 is missing"},
		{name: "score not a number", cfg: &base, line: capture(`"high"`, "CSV", goodMeta), class: ClassInvalidField, field: "captureData.endpointOutput.data", reason: `score "high" is not a number`},
		{name: "NaN score", cfg: &base, line: capture(`"NaN"`, "CSV", goodMeta), class: ClassInvalidField, field: "captureData.endpointOutput.data", reason: "NaN is not a finite number"},
		{name: "empty output", cfg: &base, line: capture(`""`, "CSV", goodMeta), class: ClassInvalidField, field: "captureData.endpointOutput.data", reason: "payload is empty"},
		{name: "JSON score of the wrong type", cfg: &jsonScore, line: capture(`"{\"score\":[0.5]}"`, "JSON", goodMeta), class: ClassInvalidField, field: "captureData.endpointOutput.data", reason: "score (json:score) is an array, want a number"},
		{name: "JSON output that is not JSON", cfg: &jsonScore, line: capture(`"score=0.5"`, "JSON", goodMeta), class: ClassInvalidField, field: "captureData.endpointOutput.data", reason: "payload is not JSON"},
		{name: "base64 payload that is not UTF-8", cfg: &base, line: capture(`"//79"`, "BASE64", goodMeta), class: ClassInvalidField, field: "captureData.endpointOutput.data", reason: "not valid UTF-8"},
	}
	checkCaptureRejections(t, tests)
}

func TestDataCaptureAccepts(t *testing.T) {
	tests := []struct {
		name   string
		dc     DataCaptureConfig
		output string
		enc    string
		score  float64
	}{
		{"plain CSV number with newline", DataCaptureConfig{}, `"0.25\n"`, "CSV", 0.25},
		{"plain JSON number", DataCaptureConfig{}, `"0.25"`, "JSON", 0.25},
		{"quoted CSV field", DataCaptureConfig{}, `"\"0.25\""`, "CSV", 0.25},
		{"CSV column", DataCaptureConfig{Score: "csv:1"}, `"0.75,0.25"`, "CSV", 0.25},
		{"JSON array index at the root", DataCaptureConfig{Score: "json:0"}, `"[0.25]"`, "JSON", 0.25},
		{"JSON numeric string", DataCaptureConfig{Score: "json:score"}, `"{\"score\":\"0.25\"}"`, "JSON", 0.25},
		{"base64 JSON", DataCaptureConfig{Score: "json:probabilities.1"}, `"eyJwcm9iYWJpbGl0aWVzIjpbMC43NSwwLjI1XX0="`, "BASE64", 0.25},
		{"unpadded base64", DataCaptureConfig{}, `"MC4yNQ"`, "BASE64", 0.25},
		{"lower-case encoding", DataCaptureConfig{}, `"MC4yNQ=="`, "base64", 0.25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.dc.Variant = "v1"
			d := newTestDecoder(t, DecoderConfig{DataCapture: tt.dc})
			p, err := d.DecodePrediction([]byte(capture(tt.output, tt.enc, goodMeta)))
			if err != nil {
				t.Fatal(err)
			}
			if p.Score != tt.score || p.InferenceID != "e-1" || p.Variant != "v1" {
				t.Errorf("got %+v, want score %v for e-1/v1", p, tt.score)
			}
		})
	}
}

func TestDataCaptureVariantPrecedence(t *testing.T) {
	line := []byte(capture(`"{\"score\":0.5,\"model\":7}"`, "JSON", goodMeta))
	tests := []struct {
		name        string
		dc          DataCaptureConfig
		fileVariant string
		want        string
	}{
		{"configured variant", DataCaptureConfig{Variant: "v1"}, "", "v1"},
		{"the file's variant wins over the configured one", DataCaptureConfig{Variant: "v1"}, "AllTraffic", "AllTraffic"},
		{"the output's variant wins over the file's", DataCaptureConfig{VariantSelector: "json:model"}, "AllTraffic", "7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.dc.Score = "json:score"
			d := newTestDecoder(t, DecoderConfig{DataCapture: tt.dc})
			if tt.fileVariant != "" {
				d = d.WithCaptureVariant(tt.fileVariant)
			}
			p, err := d.DecodePrediction(line)
			if err != nil {
				t.Fatal(err)
			}
			if p.Variant != tt.want {
				t.Errorf("variant %q, want %q", p.Variant, tt.want)
			}
		})
	}
}

func TestDataCaptureInferenceIDWinsOverEventID(t *testing.T) {
	d := newTestDecoder(t, DecoderConfig{DataCapture: DataCaptureConfig{Variant: "v1"}})
	p, err := d.DecodePrediction([]byte(capture(`"0.5"`, "CSV", `{"eventId":"e-1","inferenceId":"txn-9","inferenceTime":"2026-03-01T12:00:00Z"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if p.InferenceID != "txn-9" {
		t.Errorf("inference id %q, want txn-9", p.InferenceID)
	}
}

func TestParseCaptureKeyEndpointAndVariant(t *testing.T) {
	tests := []struct {
		key               string
		endpoint, variant string
		ok                bool
	}{
		{"s3://bucket/datacapture/fraud-ep/AllTraffic/2026/03/01/12/f-1.jsonl", "fraud-ep", "AllTraffic", true},
		{"fraud-ep/shadow-v5/2026/03/01/12/f-1.jsonl", "fraud-ep", "shadow-v5", true},
		{"fraud-ep/shadow-v5/2026/3/01/12/f-1.jsonl", "", "", false},
		{"shadow-v5/2026/03/01/12/f-1.jsonl", "", "", false},
		{"a/b/c/d/e/f/g", "", "", false},
		{"fraud-ep/shadow-v5/2026/13/01/12/f-1.jsonl", "", "", false},
		{"fraud-ep/shadow-v5/2026/03/01/24/f-1.jsonl", "", "", false},
		{"fraud-ep/shadow-v5/2026/03/01/12/", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		k, ok := ParseCaptureKey(tt.key)
		if k.Endpoint != tt.endpoint || k.Variant != tt.variant || ok != tt.ok {
			t.Errorf("ParseCaptureKey(%q) = endpoint %q, variant %q, %v; want %q, %q, %v", tt.key, k.Endpoint, k.Variant, ok, tt.endpoint, tt.variant, tt.ok)
		}
	}
}

func TestParseCaptureKey(t *testing.T) {
	k, ok := ParseCaptureKey("s3://bucket/dc/fraud-ep/AllTraffic/2026/03/01/12/56-58-024-uuid.jsonl.gz")
	want := CaptureKey{Prefix: "bucket/dc/", Endpoint: "fraud-ep", Variant: "AllTraffic", Hour: ts("2026-03-01T12:00:00Z"), File: "56-58-024-uuid.jsonl.gz"}
	if !ok || k != want {
		t.Errorf("ParseCaptureKey = %+v, %v; want %+v", k, ok, want)
	}
	if f := k.Folder(); f != "bucket/dc/fraud-ep/AllTraffic/" {
		t.Errorf("Folder() = %q", f)
	}
	if k, ok := ParseCaptureKey("ep/v/2026/03/01/12/f"); !ok || k.Prefix != "" {
		t.Errorf("key at the root: %+v, %v", k, ok)
	}
}
