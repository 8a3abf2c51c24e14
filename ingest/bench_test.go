package ingest

import (
	"bytes"
	"fmt"
	"testing"
)

func BenchmarkDecodePredictions(b *testing.B) {
	var in bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&in, `{"inference_id":"txn-%08d","variant":"fraud-v5","role":"shadow","score":0.%04d,"time":"2026-03-01T12:%02d:00.123Z","attributes":{"merchant_category":"5411","country":"DE","channel":"web"},"latency_ms":12.5}`+"\n", i, i, i%60)
	}
	d, err := NewDecoder(DecoderConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(in.Len()))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := d.DecodePredictions(bytes.NewReader(in.Bytes()), 1000, func(dp Decoded[Prediction]) error {
			n += len(dp.Events)
			return nil
		})
		if err != nil || n != 1000 {
			b.Fatalf("%d events, err %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}

func BenchmarkDecodeDataCapture(b *testing.B) {
	line := []byte(`{"captureData":{"endpointInput":{"observedContentType":"application/json","mode":"INPUT","data":"{\"amount\":12.5,\"merchant_category\":\"grocery\",\"card\":{\"country\":\"DE\"}}","encoding":"JSON"},"endpointOutput":{"observedContentType":"application/json","mode":"OUTPUT","data":"{\"predictions\":[{\"score\":0.87}]}","encoding":"JSON"}},"eventMetadata":{"eventId":"e-1","inferenceId":"txn-10","inferenceTime":"2024-05-01T08:00:00Z"},"eventVersion":"0"}`)
	d, err := NewDecoder(DecoderConfig{DataCapture: DataCaptureConfig{
		Variant: "v5", Score: "json:predictions.0.score",
		Attributes: map[string]string{"merchant_category": "json:merchant_category", "country": "json:card.country"},
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DecodePrediction(line); err != nil {
			b.Fatal(err)
		}
	}
}
