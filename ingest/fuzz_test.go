package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodePrediction checks that no input panics the decoder and that every
// non-blank line is either accepted as a valid prediction or rejected with a class and
// a reason. Run it with: go test ./ingest -run '^$' -fuzz FuzzDecodePrediction -fuzztime 20s
func FuzzDecodePrediction(f *testing.F) {
	f.Add([]byte(pred("a") + "\n" + `{"inference_id":"b","variant":"v2","score":0.9,"threshold":0.2,"time":1772366400,"attributes":{"k":"v"},"latency_ms":3,"error":"x"}`))
	f.Add([]byte("\xEF\xBB\xBF" + pred("a") + "\r\n\r\n  \nnot json\n[1]\nnull\n\xff"))
	f.Add([]byte(`{"inference_id":"a","variant":"v1","score":1e400,"time":"2026-03-01T12:00:00Z","attributes":{"a":1}}`))
	f.Add([]byte(`{"inference_id":"a\u0000","variant":"v\u0000","time":9999999999999999,"role":"x"}`))
	f.Add([]byte(strings.Repeat("x", 600) + "\n" + pred("c")))
	for _, name := range []string{"datacapture_csv.jsonl", "datacapture_json.jsonl", "datacapture_base64.jsonl"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	const maxLine = 512
	decoders := []*Decoder{}
	for _, cfg := range []DecoderConfig{
		{MaxLineBytes: maxLine, Variants: []string{"v1", "v2", "fraud-v4"}, Roles: map[string]Role{"v2": RoleShadow},
			DataCapture: DataCaptureConfig{Variant: "fraud-v4", Attributes: map[string]string{"mcc": "csv:1", "country": "csv:3"}}},
		{MaxLineBytes: maxLine, MaxAttributes: 2, MaxAttributeBytes: 8,
			DataCapture: DataCaptureConfig{Variant: "v5", Score: "json:predictions.0.score", Attributes: map[string]string{"mcc": "json:merchant_category"}}},
	} {
		d, err := NewDecoder(cfg)
		if err != nil {
			f.Fatal(err)
		}
		decoders = append(decoders, d)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		want := countLines(data, maxLine)
		for _, d := range decoders {
			var accepted, rejected, lastLine int
			err := d.DecodePredictions(bytes.NewReader(data), 3, func(b Decoded[Prediction]) error {
				for _, p := range b.Events {
					checkValidPrediction(t, p)
				}
				for _, r := range b.Rejections {
					checkValidRejection(t, r)
					if r.Line <= lastLine {
						t.Errorf("rejection line %d after line %d", r.Line, lastLine)
					}
					lastLine = r.Line
				}
				accepted += len(b.Events)
				rejected += len(b.Rejections)
				return nil
			})
			if err != nil {
				t.Fatalf("DecodePredictions: %v", err)
			}
			if accepted+rejected != want {
				t.Fatalf("%d accepted + %d rejected, want %d non-blank lines", accepted, rejected, want)
			}

			// The same bytes as one line (a Kinesis record, an array element).
			p, err := d.DecodePrediction(data)
			if err == nil {
				checkValidPrediction(t, p)
				continue
			}
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("DecodePrediction error %v is not a *Rejection", err)
			}
			checkValidRejection(t, *rej)
		}
	})
}

// countLines counts the lines a decoder must accept or reject: all lines but blank
// ones that fit the limit.
func countLines(data []byte, maxLine int) int {
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, len(data)+1)
	n := 0
	for i := 0; s.Scan(); i++ {
		l := bytes.TrimSuffix(s.Bytes(), []byte("\r"))
		if len(l) > maxLine {
			n++
			continue
		}
		if i == 0 {
			l = bytes.TrimPrefix(l, []byte("\xEF\xBB\xBF"))
		}
		if len(bytes.Trim(l, " \t\r")) > 0 {
			n++
		}
	}
	return n
}

func checkValidRejection(t *testing.T, r Rejection) {
	t.Helper()
	if r.Reason == "" || !slices.Contains(RejectClasses(), r.Class) {
		t.Fatalf("rejection without a reason or with an unknown class: %+v", r)
	}
	if r.Field != "" && !strings.HasPrefix(r.Reason, r.Field+": ") {
		t.Fatalf("reason %q does not start with field %q", r.Reason, r.Field)
	}
	if len(r.Raw) > RawKeepBytes {
		t.Fatalf("raw keeps %d bytes", len(r.Raw))
	}
}

func checkValidPrediction(t *testing.T, p Prediction) {
	t.Helper()
	unit := func(f float64) bool { return !math.IsNaN(f) && f >= 0 && f <= 1 }
	switch {
	case p.InferenceID == "" || len(p.InferenceID) > MaxInferenceIDBytes || strings.ContainsRune(p.InferenceID, 0):
		t.Fatalf("accepted bad inference id %q", p.InferenceID)
	case p.Variant == "" || strings.ContainsRune(p.Variant, 0) || !utf8.ValidString(p.Variant):
		t.Fatalf("accepted bad variant %q", p.Variant)
	case p.Role != RoleProduction && p.Role != RoleShadow:
		t.Fatalf("accepted bad role %q", p.Role)
	case !unit(p.Score) || !unit(p.Threshold):
		t.Fatalf("accepted score %v threshold %v", p.Score, p.Threshold)
	case p.Time.Year() < 2000 || p.Time.Year() >= 2100:
		t.Fatalf("accepted time %v", p.Time)
	case p.LatencyMS < 0 || math.IsNaN(p.LatencyMS) || math.IsInf(p.LatencyMS, 0):
		t.Fatalf("accepted latency %v", p.LatencyMS)
	}
	for k, v := range p.Attributes {
		if !utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(k+v, 0) {
			t.Fatalf("accepted bad attribute %q=%q", k, v)
		}
	}
}
