package ingest

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The fast path must accept exactly what the strict path accepts, with the same
// event, and leave every rejection (class, field, reason) to it. These tests decode
// the same input with a decoder using both paths and one using the strict path only.

// fastSeeds are lines near the fast path's edges: accepted ones, and ones the strict
// path rejects or that the fast path must hand over.
var fastSeeds = []string{
	`{"inference_id":"txn-1","variant":"v1","role":"shadow","score":0.93,"threshold":0.4,"time":"2026-03-01T12:00:00.5Z","attributes":{"merchant_category":"5411","country":"DE"},"latency_ms":12.5}`,
	`{"inference_id":"a","variant":"v2","role":null,"score":0.1,"threshold":null,"time":"2026-03-01T12:00:00Z","attributes":null,"error":null,"latency_ms":null}`,
	`{"inference_id":"a","variant":"v1","score":1,"time":1772366400.25}`,
	`{"inference_id":"a","variant":"v1","score":0,"time":1772366400123}`,
	`{"inference_id":"a","variant":"v1","time":"2026-03-01T12:00:00Z","error":"model timeout"}`,
	`{"inference_id":"a","variant":"v1","time":"2026-03-01T12:00:00Z","error":""}`,
	`  {"inference_id" : "a" , "variant":"v1","score":-0,"time":"2026-03-01T13:00:00+01:00","attributes":{}}	`,
	`{"inference_id":"a","variant":"v1","score":1e-2,"time":"2026-03-01T12:00:00Z","attributes":{"k":"M\u00fcnchen","city":"München"}}`,
	`{"inference_id":"a","inference_id":"b","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","variant":"v1","Score":0.5,"score":0.5,"time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z","attributes":{"k":"x","k":"y"}}`,
	`{"inference_id":"\ud800","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","variant":"v1","score":1e400,"time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","variant":"v1","score":"0.5","time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z","attributes":{"k":1}}`,
	`{"inference_id":"a","variant":"v1","score":1.5,"time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","variant":"v1","score":0.5,"time":"2126-03-01T12:00:00Z"}`,
	`{"inference_id":"a","variant":"v1","score":0.5,"time":"2026-03-01T12:10:00Z"}`,
	`{"inference_id":"a","variant":"v1","score":0.5,"time":"2025-03-01T12:00:00Z"}`,
	`{"inference_id":"a","variant":"v9","score":0.5,"time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","variant":"v1","role":"canary","score":0.5,"time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z","latency_ms":-1}`,
	`{"inference_id":"a","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z","model":"x"}`,
	`{"inference_id":"a","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z","attributes":{"a":"1","b":"2","c":"3"}}`,
	`{"inference_id":"a","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z","attributes":{"":"1"}}`,
	`{"inference_id":"a","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z","attributes":{"abcdefghi":"1"}}`,
	`{"inference_id":"a","variant":"v1","score":01,"time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z"}x`,
	`{"inference_id":"a","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z",}`,
	`{"captureData":{"endpointOutput":{"observedContentType":"text/csv","mode":"OUTPUT","data":"0.8","encoding":"CSV"}},"eventMetadata":{"eventId":"e","inferenceId":"i","inferenceTime":"2026-03-01T12:00:00Z"}}`,
	`{"inference_id":"a","label":true,"time":"2026-03-01T12:00:00Z","source":"dispute"}`,
	`{"inference_id":"a","label":false,"time":1772366400,"source":null}`,
	`{"inference_id":"a","label":1,"time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","label":"true","time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","label":true,"label":false,"time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","Label":true,"time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"a","label":null,"time":"2026-03-01T12:00:00Z"}`,
	`{"inference_id":"","label":true,"time":"2026-03-01T12:00:00Z"}`,
	"{\"inference_id\":\"a\xff\",\"label\":true,\"time\":\"2026-03-01T12:00:00Z\"}",
	`null`, `[]`, `{}`, `"x"`, `{"inference_id":"a"`,
}

// fastConfigs are the decoder configurations compared: pinned variants with a
// per-variant threshold and role, tight attribute limits with a variant cap, and
// the clock rules (a fixed clock, so both decoders judge times alike).
func fastConfigs() []DecoderConfig {
	now := func() time.Time { return ts("2026-03-01T12:03:00Z") }
	return []DecoderConfig{
		{Variants: []string{"v1", "v2"}, Thresholds: map[string]float64{"v2": 0.7}, Roles: map[string]Role{"v2": RoleShadow}},
		{MaxAttributes: 2, MaxAttributeBytes: 8, MaxVariants: 2, Format: FormatVerdict},
		{MaxClockSkew: 5 * time.Minute, MaxAge: 90 * 24 * time.Hour, Now: now, MaxVariants: 1,
			DataCapture: DataCaptureConfig{Variant: "dc"}},
	}
}

// pathPair is a decoder with the fast path and one without, built alike.
type pathPair struct{ fast, strict *Decoder }

func newPathPairs(t testing.TB) []pathPair {
	var out []pathPair
	for _, cfg := range fastConfigs() {
		f, err := NewDecoder(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewDecoder(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.strictOnly = true
		out = append(out, pathPair{f, s})
	}
	return out
}

// compareStreams decodes data as predictions and as labels with both decoders and
// reports the first difference.
func (pp pathPair) compareStreams(data []byte) error { return pp.compare(data, true) }

// compare is compareStreams; without streams, data is decoded as one line only.
func (pp pathPair) compare(data []byte, streams bool) error {
	type out struct {
		preds []Prediction
		lbls  []Label
		rejs  []Rejection
	}
	run := func(d *Decoder) (o out, err error) {
		if !streams {
			goto line
		}
		err = d.DecodePredictions(bytes.NewReader(data), 2, func(b Decoded[Prediction]) error {
			o.preds = append(o.preds, b.Events...)
			o.rejs = append(o.rejs, b.Rejections...)
			return nil
		})
		if err != nil {
			return o, err
		}
		err = d.DecodeLabels(bytes.NewReader(data), 2, func(b Decoded[Label]) error {
			o.lbls = append(o.lbls, b.Events...)
			o.rejs = append(o.rejs, b.Rejections...)
			return nil
		})
		if err != nil {
			return o, err
		}
		// The whole input as one line (a Kinesis record).
	line:
		if p, err := d.DecodePrediction(data); err == nil {
			o.preds = append(o.preds, p)
		} else {
			o.rejs = append(o.rejs, *err.(*Rejection))
		}
		if l, err := d.DecodeLabel(data); err == nil {
			o.lbls = append(o.lbls, l)
		} else {
			o.rejs = append(o.rejs, *err.(*Rejection))
		}
		return o, nil
	}
	f, ferr := run(pp.fast)
	s, serr := run(pp.strict)
	if fmt.Sprint(ferr) != fmt.Sprint(serr) {
		return fmt.Errorf("errors differ: fast %v, strict %v", ferr, serr)
	}
	if len(f.preds) != len(s.preds) || len(f.lbls) != len(s.lbls) || len(f.rejs) != len(s.rejs) {
		return fmt.Errorf("fast: %d predictions, %d labels, %d rejections; strict: %d, %d, %d\nfast rejections %+v\nstrict rejections %+v",
			len(f.preds), len(f.lbls), len(f.rejs), len(s.preds), len(s.lbls), len(s.rejs), f.rejs, s.rejs)
	}
	for i := range f.preds {
		if d := diffPrediction(f.preds[i], s.preds[i]); d != "" {
			return fmt.Errorf("prediction %d: fast differs from strict: %s", i, d)
		}
	}
	for i := range f.lbls {
		if !reflect.DeepEqual(f.lbls[i], s.lbls[i]) {
			return fmt.Errorf("label %d: fast %+v, strict %+v", i, f.lbls[i], s.lbls[i])
		}
	}
	for i := range f.rejs {
		if !reflect.DeepEqual(f.rejs[i], s.rejs[i]) {
			return fmt.Errorf("rejection %d: fast %+v, strict %+v", i, f.rejs[i], s.rejs[i])
		}
	}
	return nil
}

func TestFastPathAgreesWithStrictOnSeedsAndTheirMutations(t *testing.T) {
	// Every seed, and every seed with one byte deleted or replaced by a byte that
	// matters to JSON, to the checks or to UTF-8.
	replacements := []byte{'"', '\\', '}', ',', ' ', '1', '-', 'e', 'n', 'S', 0x1f, 0xff}
	var inputs []string
	for _, seed := range fastSeeds {
		inputs = append(inputs, seed)
		for i := range len(seed) {
			inputs = append(inputs, seed[:i]+seed[i+1:])
			for _, r := range replacements {
				if seed[i] != r {
					inputs = append(inputs, seed[:i]+string(r)+seed[i+1:])
				}
			}
		}
	}
	pairs := newPathPairs(t)
	for _, in := range inputs {
		for k, pp := range pairs {
			if err := pp.compare([]byte(in), false); err != nil {
				t.Fatalf("config %d, input %q: %v", k, in, err)
			}
		}
	}
	// Variant caps are state: the same stream must admit the same variants.
	var all bytes.Buffer
	for _, in := range fastSeeds {
		all.WriteString(strings.ReplaceAll(in, "\n", " ") + "\n")
	}
	for k, pp := range newPathPairs(t) {
		if err := pp.compareStreams(all.Bytes()); err != nil {
			t.Fatalf("config %d, the seeds as one stream: %v", k, err)
		}
	}
}

func TestFastPathTakesTheCommonLines(t *testing.T) {
	d := newTestDecoder(t, testConfig())
	lines := []string{
		`{"inference_id":"txn-1","variant":"v1","role":"shadow","score":0.93,"threshold":0.4,"time":"2026-03-01T12:00:00.5Z","attributes":{"merchant_category":"5411","country":"DE"},"latency_ms":12.5}`,
		`{"inference_id":"txn-1","variant":"v2","score":0.5,"time":1772366400}`,
		`{"inference_id":"txn-1","variant":"v2","time":"2026-03-01T12:00:00Z","error":"timeout"}`,
	}
	for _, l := range lines {
		if _, ok := d.fastPrediction([]byte(l)); !ok {
			t.Errorf("fast path handed over %s", l)
		}
	}
	for _, l := range []string{
		`{"inference_id":"txn-1","label":true,"time":"2026-03-01T12:00:00Z"}`,
		`{"inference_id":"txn-1","label":false,"time":1772366400,"source":"chargeback_window"}`,
	} {
		if _, ok := d.fastLabel([]byte(l)); !ok {
			t.Errorf("fast path handed over %s", l)
		}
	}
}

// FuzzFastPathAgreesWithStrict: go test ./ingest -run '^$' -fuzz FuzzFastPathAgreesWithStrict -fuzztime 60s
func FuzzFastPathAgreesWithStrict(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(strings.Join(fastSeeds, "\n")))
	pairs := newPathPairs(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for k, pp := range pairs {
			if err := pp.compareStreams(data); err != nil {
				t.Fatalf("config %d: %v", k, err)
			}
		}
	})
}
