package kinesis

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/verdictml/verdict/ingest"
)

type recordingSink struct {
	batches []ingest.Batch
	err     error
}

func (s *recordingSink) Apply(_ context.Context, b ingest.Batch) (ingest.Result, error) {
	if s.err != nil {
		return ingest.Result{}, s.err
	}
	s.batches = append(s.batches, b)
	return ingest.Result{Applied: b.Len()}, nil
}

type recordingDead struct{ letters []DeadLetter }

func (d *recordingDead) Put(_ context.Context, l []DeadLetter) error {
	d.letters = append(d.letters, l...)
	return nil
}

func TestSinkHandlerSplitsRecordsAndDeadLettersBadLines(t *testing.T) {
	dec, err := ingest.NewDecoder(ingest.DecoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sink, dead := &recordingSink{}, &recordingDead{}
	h := NewSinkHandler[ingest.Prediction]("preds", dec, sink, dead, nil)
	records := []Record{
		{SequenceNumber: aws.String("1"), Data: []byte(`{"inference_id":"a","variant":"v5","score":0.9,"time":"2026-11-25T10:00:00Z"}`)},
		{SequenceNumber: aws.String("2"), Data: []byte("{\"inference_id\":\"b\",\"variant\":\"v5\",\"score\":0.1,\"time\":\"2026-11-25T10:00:00Z\"}\r\n\n" +
			"{\"inference_id\":\"c\",\"variant\":\"v5\",\"score\":7,\"time\":\"2026-11-25T10:00:00Z\"}\n" +
			"{\"inference_id\":\"d\",\"variant\":\"v6\",\"score\":0.5,\"time\":\"2026-11-25T10:00:00Z\"}\n")},
		{SequenceNumber: aws.String("3"), Data: []byte(`not json`)},
	}
	if err := h.Handle(context.Background(), "shard-0", records); err != nil {
		t.Fatal(err)
	}
	if len(sink.batches) != 1 {
		t.Fatalf("%d batches, want one per Handle", len(sink.batches))
	}
	var ids []string
	for _, p := range sink.batches[0].Predictions {
		ids = append(ids, p.InferenceID)
	}
	if want := []string{"a", "b", "d"}; !slices.Equal(ids, want) {
		t.Errorf("applied %v, want %v in order", ids, want)
	}
	if len(dead.letters) != 2 {
		t.Fatalf("dead letters %+v, want 2", dead.letters)
	}
	if l := dead.letters[0]; l.SequenceNumber != "2" || l.Index != 1 || l.Reason == "" || l.ShardID != "shard-0" {
		t.Errorf("first dead letter %+v, want record 2 line index 1 with a reason", l)
	}
	if l := dead.letters[1]; l.SequenceNumber != "3" || l.Index != 0 {
		t.Errorf("second dead letter %+v, want record 3 index 0", l)
	}

	// A failing sink fails Handle, so the checkpoint does not move.
	sink.err = errors.New("store down")
	if err := h.Handle(context.Background(), "shard-0", records[:1]); !errors.Is(err, sink.err) {
		t.Errorf("Handle with failing sink: %v, want the sink's error", err)
	}
}
