package ingest

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
)

func newTestDecoder(t *testing.T, cfg DecoderConfig) *Decoder {
	t.Helper()
	d, err := NewDecoder(cfg)
	if err != nil {
		t.Fatalf("NewDecoder: %v", err)
	}
	return d
}

// testConfig has a shadow variant with its own threshold, the shape most tests need.
func testConfig() DecoderConfig {
	return DecoderConfig{
		Thresholds: map[string]float64{"v2": 0.7},
		Roles:      map[string]Role{"v2": RoleShadow},
	}
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func diffPrediction(got, want Prediction) string {
	var d []string
	if got.InferenceID != want.InferenceID {
		d = append(d, fmt.Sprintf("InferenceID %q, want %q", got.InferenceID, want.InferenceID))
	}
	if got.Variant != want.Variant {
		d = append(d, fmt.Sprintf("Variant %q, want %q", got.Variant, want.Variant))
	}
	if got.Role != want.Role {
		d = append(d, fmt.Sprintf("Role %q, want %q", got.Role, want.Role))
	}
	if got.Score != want.Score {
		d = append(d, fmt.Sprintf("Score %v, want %v", got.Score, want.Score))
	}
	if got.Threshold != want.Threshold {
		d = append(d, fmt.Sprintf("Threshold %v, want %v", got.Threshold, want.Threshold))
	}
	if !got.Time.Equal(want.Time) || got.Time.Location() != time.UTC {
		d = append(d, fmt.Sprintf("Time %v, want %v (UTC)", got.Time, want.Time))
	}
	if !maps.Equal(got.Attributes, want.Attributes) {
		d = append(d, fmt.Sprintf("Attributes %v, want %v", got.Attributes, want.Attributes))
	}
	if got.LatencyMS != want.LatencyMS {
		d = append(d, fmt.Sprintf("LatencyMS %v, want %v", got.LatencyMS, want.LatencyMS))
	}
	if got.Error != want.Error {
		d = append(d, fmt.Sprintf("Error %q, want %q", got.Error, want.Error))
	}
	return strings.Join(d, "; ")
}

func TestDecodePredictionAccepts(t *testing.T) {
	pinned := testConfig()
	pinned.Variants = []string{"v1", "v2"}
	tests := []struct {
		name string
		cfg  DecoderConfig
		line string
		want Prediction
	}{
		{
			name: "every field is carried over",
			line: `{"inference_id":"txn-1","variant":"v1","role":"shadow","score":0.93,"threshold":0.4,"time":"2026-03-01T12:00:00.5Z","attributes":{"merchant_category":"5411","country":"DE"},"latency_ms":12.5}`,
			want: Prediction{InferenceID: "txn-1", Variant: "v1", Role: RoleShadow, Score: 0.93, Threshold: 0.4,
				Time: ts("2026-03-01T12:00:00.5Z"), Attributes: map[string]string{"merchant_category": "5411", "country": "DE"}, LatencyMS: 12.5},
		},
		{
			name: "role and threshold default to the variant's configuration",
			line: `{"inference_id":"txn-1","variant":"v2","score":0.5,"time":"2026-03-01T12:00:00Z"}`,
			want: Prediction{InferenceID: "txn-1", Variant: "v2", Role: RoleShadow, Score: 0.5, Threshold: 0.7, Time: ts("2026-03-01T12:00:00Z")},
		},
		{
			name: "unconfigured variant is production with the default threshold",
			line: `{"inference_id":"txn-1","variant":"v9","score":0.5,"time":"2026-03-01T12:00:00Z"}`,
			want: Prediction{InferenceID: "txn-1", Variant: "v9", Role: RoleProduction, Score: 0.5, Threshold: 0.5, Time: ts("2026-03-01T12:00:00Z")},
		},
		{
			name: "configured default threshold applies to unconfigured variants",
			cfg:  DecoderConfig{DefaultThreshold: 0.25},
			line: `{"inference_id":"txn-1","variant":"v9","score":0.5,"time":"2026-03-01T12:00:00Z"}`,
			want: Prediction{InferenceID: "txn-1", Variant: "v9", Role: RoleProduction, Score: 0.5, Threshold: 0.25, Time: ts("2026-03-01T12:00:00Z")},
		},
		{
			name: "event threshold overrides the variant's",
			line: `{"inference_id":"txn-1","variant":"v2","score":0.5,"threshold":0,"time":"2026-03-01T12:00:00Z"}`,
			want: Prediction{InferenceID: "txn-1", Variant: "v2", Role: RoleShadow, Score: 0.5, Threshold: 0, Time: ts("2026-03-01T12:00:00Z")},
		},
		{
			name: "event role overrides the variant's",
			line: `{"inference_id":"txn-1","variant":"v2","role":"production","score":0.5,"time":"2026-03-01T12:00:00Z"}`,
			want: Prediction{InferenceID: "txn-1", Variant: "v2", Role: RoleProduction, Score: 0.5, Threshold: 0.7, Time: ts("2026-03-01T12:00:00Z")},
		},
		{
			name: "time as Unix seconds",
			line: `{"inference_id":"a","variant":"v1","score":1,"time":1772366400}`,
			want: Prediction{InferenceID: "a", Variant: "v1", Role: RoleProduction, Score: 1, Threshold: 0.5, Time: ts("2026-03-01T12:00:00Z")},
		},
		{
			name: "time as fractional Unix seconds",
			line: `{"inference_id":"a","variant":"v1","score":1,"time":1772366400.25}`,
			want: Prediction{InferenceID: "a", Variant: "v1", Role: RoleProduction, Score: 1, Threshold: 0.5, Time: ts("2026-03-01T12:00:00.25Z")},
		},
		{
			name: "time as Unix milliseconds",
			line: `{"inference_id":"a","variant":"v1","score":0,"time":1772366400123}`,
			want: Prediction{InferenceID: "a", Variant: "v1", Role: RoleProduction, Score: 0, Threshold: 0.5, Time: ts("2026-03-01T12:00:00.123Z")},
		},
		{
			name: "time with an offset is normalised to UTC",
			line: `{"inference_id":"a","variant":"v1","score":0,"time":"2026-03-01T13:00:00+01:00"}`,
			want: Prediction{InferenceID: "a", Variant: "v1", Role: RoleProduction, Score: 0, Threshold: 0.5, Time: ts("2026-03-01T12:00:00Z")},
		},
		{
			name: "failed inference may omit score",
			line: `{"inference_id":"a","variant":"v1","time":"2026-03-01T12:00:00Z","error":"model timeout"}`,
			want: Prediction{InferenceID: "a", Variant: "v1", Role: RoleProduction, Threshold: 0.5, Time: ts("2026-03-01T12:00:00Z"), Error: "model timeout"},
		},
		{
			name: "long error text is cut, not rejected",
			line: `{"inference_id":"a","variant":"v1","time":"2026-03-01T12:00:00Z","error":"` + strings.Repeat("x", 3000) + `"}`,
			want: Prediction{InferenceID: "a", Variant: "v1", Role: RoleProduction, Threshold: 0.5, Time: ts("2026-03-01T12:00:00Z"), Error: strings.Repeat("x", 1024)},
		},
		{
			name: "null optional fields count as absent",
			line: `{"inference_id":"a","variant":"v2","role":null,"score":0.1,"threshold":null,"time":"2026-03-01T12:00:00Z","attributes":null,"error":null}`,
			want: Prediction{InferenceID: "a", Variant: "v2", Role: RoleShadow, Score: 0.1, Threshold: 0.7, Time: ts("2026-03-01T12:00:00Z")},
		},
		{
			name: "unknown fields are ignored",
			line: `{"inference_id":"a","variant":"v1","score":0.1,"time":"2026-03-01T12:00:00Z","model_version":"4.1","extra":{"x":[1]}}`,
			want: Prediction{InferenceID: "a", Variant: "v1", Role: RoleProduction, Score: 0.1, Threshold: 0.5, Time: ts("2026-03-01T12:00:00Z")},
		},
		{
			name: "escaped strings are decoded",
			line: `{"inference_id":"t\u00e9-\"1\"","variant":"v1","score":0.1,"time":"2026-03-01T12:00:00Z","attributes":{"city":"M\u00fcnchen"}}`,
			want: Prediction{InferenceID: `té-"1"`, Variant: "v1", Role: RoleProduction, Score: 0.1, Threshold: 0.5,
				Time: ts("2026-03-01T12:00:00Z"), Attributes: map[string]string{"city": "München"}},
		},
		{
			name: "pinned variant is accepted",
			cfg:  pinned,
			line: `{"inference_id":"a","variant":"v2","score":0.8,"time":"2026-03-01T12:00:00Z"}`,
			want: Prediction{InferenceID: "a", Variant: "v2", Role: RoleShadow, Score: 0.8, Threshold: 0.7, Time: ts("2026-03-01T12:00:00Z")},
		},
		{
			name: "surrounding whitespace is allowed",
			line: "  \t{\"inference_id\":\"a\",\"variant\":\"v1\",\"score\":0.8,\"time\":\"2026-03-01T12:00:00Z\"}  ",
			want: Prediction{InferenceID: "a", Variant: "v1", Role: RoleProduction, Score: 0.8, Threshold: 0.5, Time: ts("2026-03-01T12:00:00Z")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.Thresholds == nil && cfg.DefaultThreshold == 0 && cfg.Variants == nil {
				cfg = testConfig()
			}
			got, err := newTestDecoder(t, cfg).DecodePrediction([]byte(tt.line))
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if d := diffPrediction(got, tt.want); d != "" {
				t.Error(d)
			}
		})
	}
}

type rejectionCase struct {
	name   string
	cfg    *DecoderConfig
	line   string
	class  RejectClass
	field  string
	reason string // substring
	// captureVariant, when set, is the variant of the capture file the line is from.
	captureVariant string
}

func TestDecodePredictionRejects(t *testing.T) {
	pinned := testConfig()
	pinned.Variants = []string{"v1", "v2"}
	few := DecoderConfig{MaxAttributes: 2, MaxAttributeBytes: 8}
	const ok = `"inference_id":"a","variant":"v1","time":"2026-03-01T12:00:00Z"`
	tests := []rejectionCase{
		{name: "truncated JSON", line: `{"inference_id":"a"`, class: ClassMalformedJSON, reason: "invalid JSON"},
		{name: "trailing garbage", line: `{"inference_id":"a"} x`, class: ClassMalformedJSON, reason: "after top-level value"},
		{name: "array instead of object", line: `[{"inference_id":"a"}]`, class: ClassMalformedJSON, reason: "line is a JSON array, want an object"},
		{name: "bare number", line: `42`, class: ClassMalformedJSON, reason: "line is a JSON number"},
		{name: "null line", line: `null`, class: ClassMalformedJSON, reason: "line is null"},
		{name: "invalid UTF-8", line: "{\"inference_id\":\"a\xff\"," + ok[19:] + `,"score":0.1}`, class: ClassMalformedJSON, reason: "not valid UTF-8 (bad byte at offset 18)"},
		{name: "missing inference_id", line: `{"variant":"v1","score":0.1,"time":"2026-03-01T12:00:00Z"}`, class: ClassMissingField, field: "inference_id", reason: "inference_id: missing"},
		{name: "empty inference_id", line: `{"inference_id":"","variant":"v1","score":0.1,"time":"2026-03-01T12:00:00Z"}`, class: ClassMissingField, field: "inference_id", reason: "empty"},
		{name: "numeric inference_id", line: `{"inference_id":17,"variant":"v1","score":0.1,"time":"2026-03-01T12:00:00Z"}`, class: ClassInvalidField, field: "inference_id", reason: "inference_id: want a string, got a number"},
		{name: "over-long inference_id", line: `{"inference_id":"` + strings.Repeat("x", 257) + `","variant":"v1","score":0.1,"time":"2026-03-01T12:00:00Z"}`, class: ClassLimitExceeded, field: "inference_id", reason: "257 bytes, over the 256-byte limit"},
		{name: "NUL in inference_id", line: `{"inference_id":"a\u0000b","variant":"v1","score":0.1,"time":"2026-03-01T12:00:00Z"}`, class: ClassInvalidField, field: "inference_id", reason: "contains NUL"},
		{name: "missing variant", line: `{"inference_id":"a","score":0.1,"time":"2026-03-01T12:00:00Z"}`, class: ClassMissingField, field: "variant", reason: "variant: missing"},
		{name: "NUL in variant", line: `{"inference_id":"a","variant":"v\u0000","score":0.1,"time":"2026-03-01T12:00:00Z"}`, class: ClassInvalidField, field: "variant", reason: "contains NUL"},
		{name: "unknown variant when pinned", cfg: &pinned, line: `{"inference_id":"a","variant":"v3","score":0.1,"time":"2026-03-01T12:00:00Z"}`, class: ClassUnknownVariant, field: "variant", reason: `"v3" is not one of the pinned variants ("v1", "v2")`},
		{name: "role outside production and shadow", line: `{` + ok + `,"role":"canary","score":0.1}`, class: ClassInvalidField, field: "role", reason: `role: "canary" is not one of production, shadow`},
		{name: "missing time", line: `{"inference_id":"a","variant":"v1","score":0.1}`, class: ClassMissingField, field: "time", reason: "time: missing"},
		{name: "time not RFC 3339", line: `{"inference_id":"a","variant":"v1","score":0.1,"time":"01/03/2026 12:00"}`, class: ClassInvalidField, field: "time", reason: "is not an RFC 3339 time"},
		{name: "zero time", line: `{"inference_id":"a","variant":"v1","score":0.1,"time":"0001-01-01T00:00:00Z"}`, class: ClassInvalidField, field: "time", reason: "outside the years 2000 to 2099"},
		{name: "numeric time in neither seconds nor milliseconds", line: `{"inference_id":"a","variant":"v1","score":0.1,"time":1772366400123456}`, class: ClassInvalidField, field: "time", reason: "neither Unix seconds nor Unix milliseconds"},
		{name: "boolean time", line: `{"inference_id":"a","variant":"v1","score":0.1,"time":true}`, class: ClassInvalidField, field: "time", reason: "got a boolean"},
		{name: "missing score", line: `{` + ok + `}`, class: ClassMissingField, field: "score", reason: "score: missing"},
		{name: "score above 1", line: `{` + ok + `,"score":1.7}`, class: ClassInvalidField, field: "score", reason: "score: 1.7 is outside [0, 1]"},
		{name: "negative score", line: `{` + ok + `,"score":-0.01}`, class: ClassInvalidField, field: "score", reason: "score: -0.01 is outside [0, 1]"},
		{name: "score as string", line: `{` + ok + `,"score":"0.5"}`, class: ClassInvalidField, field: "score", reason: "score: want a number, got a string"},
		{name: "score overflowing float64", line: `{` + ok + `,"score":1e400}`, class: ClassInvalidField, field: "score", reason: "score: 1e400 is not a finite number"},
		{name: "invalid score on a failed inference", line: `{` + ok + `,"score":3,"error":"boom"}`, class: ClassInvalidField, field: "score", reason: "outside [0, 1]"},
		{name: "threshold above 1", line: `{` + ok + `,"score":0.5,"threshold":2}`, class: ClassInvalidField, field: "threshold", reason: "threshold: 2 is outside [0, 1]"},
		{name: "negative latency", line: `{` + ok + `,"score":0.5,"latency_ms":-3}`, class: ClassInvalidField, field: "latency_ms", reason: "-3 is not a non-negative number"},
		{name: "error as number", line: `{` + ok + `,"error":500}`, class: ClassInvalidField, field: "error", reason: "want a string, got a number"},
		{name: "numeric attribute value", line: `{` + ok + `,"score":0.5,"attributes":{"country":"DE","merchant_category":5411}}`, class: ClassInvalidField, field: "attributes.merchant_category", reason: "attributes.merchant_category: want a string, got a number"},
		{name: "null attribute value", line: `{` + ok + `,"score":0.5,"attributes":{"country":null}}`, class: ClassInvalidField, field: "attributes.country", reason: "got null"},
		{name: "first bad attribute in key order is reported", line: `{` + ok + `,"score":0.5,"attributes":{"z":1,"b":true,"m":[]}}`, class: ClassInvalidField, field: "attributes.b", reason: "got a boolean"},
		{name: "attributes as array", line: `{` + ok + `,"score":0.5,"attributes":["a"]}`, class: ClassInvalidField, field: "attributes", reason: "want an object, got an array"},
		{name: "too many attributes", cfg: &few, line: `{` + ok + `,"score":0.5,"attributes":{"a":"1","b":"2","c":"3"}}`, class: ClassLimitExceeded, field: "attributes", reason: "3 attributes, over the limit of 2"},
		{name: "over-long attribute value", cfg: &few, line: `{` + ok + `,"score":0.5,"attributes":{"a":"123456789"}}`, class: ClassLimitExceeded, field: "attributes.a", reason: "value is 9 bytes, over the 8-byte limit"},
		{name: "over-long attribute name", cfg: &few, line: `{` + ok + `,"score":0.5,"attributes":{"abcdefghi":"1"}}`, class: ClassLimitExceeded, field: "attributes.abcdefghi", reason: "attribute name is 9 bytes"},
		{name: "NUL in attribute value", line: `{` + ok + `,"score":0.5,"attributes":{"a":"x\u0000"}}`, class: ClassInvalidField, field: "attributes.a", reason: "contains NUL"},
		{name: "empty line", line: ``, class: ClassMalformedJSON, reason: "line is empty"},
		{name: "oversize line", cfg: &DecoderConfig{MaxLineBytes: 20}, line: `{` + ok + `,"score":0.5}`, class: ClassOversizeLine, reason: "line is 77 bytes, over the 20-byte limit"},
		{name: "Data Capture record when the format is verdict", cfg: &DecoderConfig{Format: FormatVerdict},
			line:  `{"captureData":{"endpointOutput":{"data":"0.5","encoding":"CSV"}},"eventMetadata":{"eventId":"e","inferenceTime":"2026-03-01T12:00:00Z"}}`,
			class: ClassMissingField, field: "inference_id", reason: "looks like a SageMaker Data Capture record"},
		{name: "verdict line when the format is datacapture", cfg: &DecoderConfig{Format: FormatDataCapture, DataCapture: DataCaptureConfig{Variant: "v1"}},
			line: `{` + ok + `,"score":0.5}`, class: ClassMissingField, field: "captureData", reason: "captureData: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			p, err := newTestDecoder(t, cfg).DecodePrediction([]byte(tt.line))
			checkRejection(t, err, tt)
			if err != nil && p.InferenceID != "" {
				t.Errorf("rejected prediction is not zero: %+v", p)
			}
		})
	}
}

// checkCaptureRejections decodes each case's line as a prediction with its cfg, read
// from a capture file of its captureVariant when it has one, and checks the rejection.
func checkCaptureRejections(t *testing.T, tests []rejectionCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDecoder(t, *tt.cfg)
			if tt.captureVariant != "" {
				d = d.WithCaptureVariant(tt.captureVariant)
			}
			_, err := d.DecodePrediction([]byte(tt.line))
			checkRejection(t, err, tt)
		})
	}
}

func checkRejection(t *testing.T, err error, tt rejectionCase) {
	t.Helper()
	var rej *Rejection
	if !errors.As(err, &rej) {
		t.Fatalf("got error %v, want a *Rejection", err)
	}
	if rej.Class != tt.class {
		t.Errorf("class %q, want %q (reason %q)", rej.Class, tt.class, rej.Reason)
	}
	if rej.Field != tt.field {
		t.Errorf("field %q, want %q (reason %q)", rej.Field, tt.field, rej.Reason)
	}
	if !strings.Contains(rej.Reason, tt.reason) {
		t.Errorf("reason %q does not contain %q", rej.Reason, tt.reason)
	}
	if tt.field != "" && !strings.HasPrefix(rej.Reason, tt.field+": ") {
		t.Errorf("reason %q does not start with the field name", rej.Reason)
	}
	if rej.Line != 0 {
		t.Errorf("single-line rejection has line %d, want 0", rej.Line)
	}
	if len(rej.Raw) == 0 && tt.line != "" {
		t.Error("rejection keeps no raw line")
	}
}

func TestDecodeLabel(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Label
	}{
		{"true is positive", `{"inference_id":"a","label":true,"time":"2026-03-02T00:00:00Z","source":"dispute"}`,
			Label{InferenceID: "a", Positive: true, Time: ts("2026-03-02T00:00:00Z"), Source: "dispute"}},
		{"false is negative", `{"inference_id":"a","label":false,"time":"2026-03-02T00:00:00Z"}`,
			Label{InferenceID: "a", Positive: false, Time: ts("2026-03-02T00:00:00Z")}},
		{"time in Unix seconds", `{"inference_id":"a","label":true,"time":1772409600}`,
			Label{InferenceID: "a", Positive: true, Time: ts("2026-03-02T00:00:00Z")}},
		{"time in Unix milliseconds", `{"inference_id":"a","label":false,"time":1772409600000}`,
			Label{InferenceID: "a", Positive: false, Time: ts("2026-03-02T00:00:00Z")}},
	}
	d := newTestDecoder(t, DecoderConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.DecodeLabel([]byte(tt.line))
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if got.InferenceID != tt.want.InferenceID || got.Positive != tt.want.Positive ||
				!got.Time.Equal(tt.want.Time) || got.Source != tt.want.Source {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeLabelRejects(t *testing.T) {
	tests := []rejectionCase{
		{name: "missing label", line: `{"inference_id":"a","time":"2026-03-02T00:00:00Z"}`, class: ClassMissingField, field: "label", reason: "label: missing"},
		{name: "null label", line: `{"inference_id":"a","label":null,"time":"2026-03-02T00:00:00Z"}`, class: ClassMissingField, field: "label", reason: "label: missing"},
		{name: "string label", line: `{"inference_id":"a","label":"yes","time":"2026-03-02T00:00:00Z"}`, class: ClassInvalidField, field: "label", reason: `want true (positive) or false, got a string "yes"`},
		{name: "label 2", line: `{"inference_id":"a","label":2,"time":"2026-03-02T00:00:00Z"}`, class: ClassInvalidField, field: "label", reason: `got a number "2"`},
		{name: "label 1 is a number, not a boolean", line: `{"inference_id":"a","label":1,"time":"2026-03-02T00:00:00Z"}`, class: ClassInvalidField, field: "label", reason: `want true (positive) or false, got a number "1"`},
		{name: "label 0 is a number, not a boolean", line: `{"inference_id":"a","label":0,"time":"2026-03-02T00:00:00Z"}`, class: ClassInvalidField, field: "label", reason: `got a number "0"`},
		{name: "label that rounds to 1", line: `{"inference_id":"a","label":0.99999999999999999999,"time":"2026-03-02T00:00:00Z"}`, class: ClassInvalidField, field: "label", reason: `got a number "0.99999999999999999999"`},
		{name: "missing inference_id", line: `{"label":true,"time":"2026-03-02T00:00:00Z"}`, class: ClassMissingField, field: "inference_id", reason: "missing"},
		{name: "missing time", line: `{"inference_id":"a","label":true}`, class: ClassMissingField, field: "time", reason: "time: missing"},
		{name: "bad time", line: `{"inference_id":"a","label":true,"time":"tomorrow"}`, class: ClassInvalidField, field: "time", reason: "not an RFC 3339 time"},
		{name: "malformed", line: `{"inference_id":"a",`, class: ClassMalformedJSON, reason: "invalid JSON"},
		{name: "source as number", line: `{"inference_id":"a","label":true,"time":"2026-03-02T00:00:00Z","source":3}`, class: ClassInvalidField, field: "source", reason: "want a string"},
	}
	d := newTestDecoder(t, DecoderConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.DecodeLabel([]byte(tt.line))
			checkRejection(t, err, tt)
		})
	}
}

func TestNewDecoderRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  DecoderConfig
		want string
	}{
		{"unknown format", DecoderConfig{Format: "csv"}, `DecoderConfig.Format: "csv" is not one of`},
		{"threshold out of range", DecoderConfig{Thresholds: map[string]float64{"v1": 1.5}}, `DecoderConfig.Thresholds["v1"]: 1.5 is outside [0, 1]`},
		{"default threshold out of range", DecoderConfig{DefaultThreshold: -1}, `DecoderConfig.DefaultThreshold: -1 is outside`},
		{"bad role", DecoderConfig{Roles: map[string]Role{"v1": "canary"}}, `DecoderConfig.Roles["v1"]: "canary" is not one of production, shadow`},
		{"threshold for a variant that is not pinned", DecoderConfig{Variants: []string{"v1"}, Thresholds: map[string]float64{"v2": 0.5}}, `Thresholds["v2"]: variant "v2" is not in Variants`},
		{"bad variant selector", DecoderConfig{DataCapture: DataCaptureConfig{VariantSelector: "model"}}, "DataCapture.VariantSelector: \"model\" is neither"},
		{"data capture variant not pinned", DecoderConfig{Variants: []string{"v1"}, DataCapture: DataCaptureConfig{Variant: "v2"}}, `DataCapture.Variant: variant "v2" is not in Variants`},
		{"bad score selector", DecoderConfig{DataCapture: DataCaptureConfig{Score: "xml:score"}}, `DataCapture.Score: "xml:score" is neither`},
		{"bad csv column", DecoderConfig{DataCapture: DataCaptureConfig{Score: "csv:-1"}}, "0-based column number"},
		{"bad attribute selector", DecoderConfig{DataCapture: DataCaptureConfig{Attributes: map[string]string{"mcc": "json:a..b"}}}, `DataCapture.Attributes["mcc"]: "json:a..b"`},
		{"negative line limit", DecoderConfig{MaxLineBytes: -1}, "MaxLineBytes: -1 is negative"},
		{"empty pinned variant", DecoderConfig{Variants: []string{""}}, "Variants[0]: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDecoder(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDecoderIgnoresLaterChangesToItsConfig(t *testing.T) {
	cfg := DecoderConfig{Thresholds: map[string]float64{"v1": 0.9}, Variants: []string{"v1"}}
	d := newTestDecoder(t, cfg)
	cfg.Thresholds["v1"] = 0.1
	cfg.Variants[0] = "v2"
	p, err := d.DecodePrediction([]byte(`{"inference_id":"a","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z"}`))
	if err != nil || p.Threshold != 0.9 {
		t.Errorf("got %+v, %v; want v1 accepted with threshold 0.9", p, err)
	}
}
