package ingest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAmbiguousJSONIsRejected(t *testing.T) {
	const tail = `"variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z"}`
	capture := func(input string) string {
		return `{"captureData":{"endpointInput":{"data":` + input + `,"encoding":"JSON"},"endpointOutput":{"data":"0.4","encoding":"CSV"}},` +
			`"eventMetadata":{"inferenceId":"c1","inferenceTime":"2026-03-01T12:00:00Z"}}`
	}
	dc := DecoderConfig{DataCapture: DataCaptureConfig{Variant: "v1", Attributes: map[string]string{"mcc": "json:mcc"}}}
	tests := []rejectionCase{
		{name: "duplicate key", line: `{"inference_id":"a","inference_id":"b",` + tail, class: ClassMalformedJSON, field: "inference_id", reason: "duplicate key"},
		{name: "duplicate key written with an escape", line: `{"inference_id":"a","inference\u005fid":"b",` + tail, class: ClassMalformedJSON, field: "inference_id", reason: "duplicate key"},
		{name: "key differing only in case overrides nothing", line: `{"inference_id":"a","INFERENCE_ID":"b",` + tail, class: ClassInvalidField, field: "INFERENCE_ID", reason: `keys are case-sensitive: "INFERENCE_ID" is not "inference_id"`},
		{name: "key in the wrong case alone", line: `{"Inference_Id":"a",` + tail, class: ClassInvalidField, field: "Inference_Id", reason: "case-sensitive"},
		{name: "nested key in the wrong case", line: `{"captureData":{"EndpointOutput":{"data":"0.4"}},"eventMetadata":{"inferenceId":"c"}}`, cfg: &dc, class: ClassInvalidField, field: "captureData.EndpointOutput", reason: "case-sensitive"},
		{name: "duplicate attribute", line: `{"inference_id":"a","attributes":{"mcc":"1","mcc":"2"},` + tail, class: ClassMalformedJSON, field: "attributes.mcc", reason: "duplicate key"},
		{name: "duplicate key in an unknown member", line: `{"inference_id":"a","extra":[{"k":1,"k":2}],` + tail, class: ClassMalformedJSON, field: "extra.0.k", reason: "duplicate key"},
		{name: "lone high surrogate", line: `{"inference_id":"a\ud800",` + tail, class: ClassInvalidField, field: "inference_id", reason: `invalid escape \ud800`},
		{name: "lone low surrogate", line: `{"inference_id":"\udc01x",` + tail, class: ClassInvalidField, field: "inference_id", reason: "lone UTF-16 surrogate"},
		{name: "high surrogate before a letter", line: `{"inference_id":"\ud800\u0041",` + tail, class: ClassInvalidField, field: "inference_id", reason: "lone UTF-16 surrogate"},
		{name: "lone surrogate in an attribute", line: `{"inference_id":"a","attributes":{"mcc":"\udfff"},` + tail, class: ClassInvalidField, field: "attributes.mcc", reason: "surrogate"},
		{name: "duplicate key in a Data Capture payload", line: capture(`"{\"mcc\":\"1\",\"mcc\":\"2\"}"`), cfg: &dc, class: ClassInvalidField, field: "captureData.endpointInput.data", reason: "duplicate key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DecoderConfig{}
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			_, err := newTestDecoder(t, cfg).DecodePrediction([]byte(tt.line))
			checkRejection(t, err, tt)
		})
	}

	labels := []rejectionCase{
		{name: "label given twice", line: `{"inference_id":"a","label":false,"label":true,"time":"2026-03-02T00:00:00Z"}`, class: ClassMalformedJSON, field: "label", reason: "duplicate key"},
		{name: "LABEL overriding label", line: `{"inference_id":"a","label":false,"LABEL":true,"time":"2026-03-02T00:00:00Z"}`, class: ClassInvalidField, field: "LABEL", reason: "case-sensitive"},
	}
	for _, tt := range labels {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newTestDecoder(t, DecoderConfig{}).DecodeLabel([]byte(tt.line))
			checkRejection(t, err, tt)
		})
	}
}

func TestUnambiguousJSONStillDecodes(t *testing.T) {
	d := newTestDecoder(t, DecoderConfig{})
	for _, line := range []string{
		`{"inference_id":"a\ud83d\ude00","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z"}`,            // a surrogate pair
		`{"inference_id":"a","Extra":{"x":1},"variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z"}`,        // unknown keys are ignored
		`{"inference_id":"a","attributes":{"MCC":"1","mcc":"2"},"variant":"v1","score":0.5,"time":1772366400}`, // attribute names are data
		`{"inference_id":"a\"\\\u00e9","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z"}`,
	} {
		if _, err := d.DecodePrediction([]byte(line)); err != nil {
			t.Errorf("%s: %v", line, err)
		}
	}
	p, err := d.DecodePrediction([]byte(`{"inference_id":"a\ud83d\ude00","variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z"}`))
	if err != nil || p.InferenceID != "a😀" {
		t.Errorf("surrogate pair: %q %v", p.InferenceID, err)
	}
}

func TestEventTimesOutsideTheClockRulesAreRejected(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	cfg := DecoderConfig{MaxClockSkew: 5 * time.Minute, MaxAge: 90 * 24 * time.Hour, Now: func() time.Time { return now },
		DataCapture: DataCaptureConfig{Variant: "v1"}}
	at := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	predAt := func(t time.Time) string {
		return `{"inference_id":"a","variant":"v1","score":0.5,"time":"` + at(t) + `"}`
	}
	labelAt := func(t time.Time) string { return `{"inference_id":"a","label":true,"time":"` + at(t) + `"}` }
	d := newTestDecoder(t, cfg)

	for _, ok := range []time.Time{now, now.Add(4 * time.Minute), now.Add(-89 * 24 * time.Hour)} {
		if _, err := d.DecodePrediction([]byte(predAt(ok))); err != nil {
			t.Errorf("prediction at %s: %v", at(ok), err)
		}
		if _, err := d.DecodeLabel([]byte(labelAt(ok))); err != nil {
			t.Errorf("label at %s: %v", at(ok), err)
		}
	}
	cases := []rejectionCase{
		{name: "prediction a year ahead", line: predAt(now.AddDate(1, 0, 0)), class: ClassFutureTime, field: "time", reason: "VERDICT_MAX_CLOCK_SKEW"},
		{name: "prediction 6 minutes ahead", line: predAt(now.Add(6 * time.Minute)), class: ClassFutureTime, field: "time", reason: "6m0s ahead"},
		{name: "prediction older than the retention", line: predAt(now.Add(-91 * 24 * time.Hour)), class: ClassTooOld, field: "time", reason: "VERDICT_RETENTION"},
		{name: "capture record from the future", class: ClassFutureTime, field: "eventMetadata.inferenceTime", reason: "ahead",
			line: `{"captureData":{"endpointOutput":{"data":"0.4","encoding":"CSV"}},"eventMetadata":{"inferenceId":"c","inferenceTime":"` + at(now.Add(time.Hour)) + `"}}`},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.DecodePrediction([]byte(tt.line))
			checkRejection(t, err, tt)
		})
	}
	for _, tt := range []rejectionCase{
		{name: "label dated 2099", line: labelAt(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)), class: ClassFutureTime, field: "time", reason: "ahead"},
		{name: "label older than the retention", line: labelAt(now.AddDate(-1, 0, 0)), class: ClassTooOld, field: "time", reason: "could count twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.DecodeLabel([]byte(tt.line))
			checkRejection(t, err, tt)
		})
	}
	// Without the rules (replays, rehearsals on recorded time) any time in range goes.
	if _, err := newTestDecoder(t, DecoderConfig{}).DecodePrediction([]byte(predAt(now.AddDate(50, 0, 0)))); err != nil {
		t.Errorf("without clock rules: %v", err)
	}
}

func TestVariantsBeyondTheCapAreRejected(t *testing.T) {
	line := func(v string, score float64) []byte {
		return []byte(fmt.Sprintf(`{"inference_id":"a","variant":%q,"score":%v,"time":"2026-03-01T12:00:00Z"}`, v, score))
	}
	d := newTestDecoder(t, DecoderConfig{MaxVariants: 4, Thresholds: map[string]float64{"v1": 0.5}})
	d.KnowVariants("old")
	// A line rejected for another reason takes no slot.
	if _, err := d.DecodePrediction(line("v9", 2)); err == nil {
		t.Fatal("score 2 accepted")
	}
	for _, v := range []string{"v1", "old", "v2", "v3", "v2"} {
		if _, err := d.DecodePrediction(line(v, 0.5)); err != nil {
			t.Errorf("variant %s: %v", v, err)
		}
	}
	_, err := d.DecodePrediction(line("v4", 0.5))
	checkRejection(t, err, rejectionCase{class: ClassLimitExceeded, field: "variant", reason: `"v4" would be variant number 5, over the limit of 4 distinct variants (VERDICT_MAX_VARIANTS)`})

	// 20,000 distinct names cost 4 slots, not 20,000 series.
	var accepted int
	for i := range 20000 {
		if _, err := d.DecodePrediction(line(fmt.Sprintf("junk-%d", i), 0.5)); err == nil {
			accepted++
		}
	}
	if accepted != 0 {
		t.Errorf("%d junk variants accepted beyond the cap", accepted)
	}
	// Pinning is the strict mode; the cap does not apply to pinned names.
	pinned := newTestDecoder(t, DecoderConfig{MaxVariants: 1, Variants: []string{"a", "b"}})
	for _, v := range []string{"a", "b"} {
		if _, err := pinned.DecodePrediction(line(v, 0.5)); err != nil {
			t.Errorf("pinned %s: %v", v, err)
		}
	}
	if _, err := pinned.DecodePrediction(line("c", 0.5)); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Errorf("unpinned variant: %v", err)
	}
}

func TestNewestEventTimeNeverRunsAheadOfTheClock(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	m.Committed(SourceHTTP, Batch{Predictions: []Prediction{{Time: time.Now().Add(4 * time.Minute)}}}, Result{Applied: 1})
	got, ok := gathered(t, reg, "verdict_ingest_newest_event_timestamp_seconds", map[string]string{"kind": "prediction"})
	if !ok {
		t.Fatal("no newest event timestamp for the committed prediction")
	}
	if limit := float64(time.Now().Unix()) + 1; got > limit {
		t.Fatalf("newest event timestamp %v is ahead of the clock (%v): the lag alert would read negative", got, limit)
	}
	// Held at the clock, not dropped: the event still moves the newest time to now.
	if floor := float64(before.Unix()); got < floor {
		t.Fatalf("newest event timestamp %v is before the commit (%v): an event dated ahead must count as now", got, floor)
	}
}
