package kinesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/verdictml/verdict/ingest"
)

// SinkHandler turns a shard's records into events for an ingest.Sink: each record
// holds one event or NDJSON lines; valid events of one Handle call are applied in
// one batch, and bad lines go to the dead letters with the reason. Handle returns nil
// only after both are durable, so the consumer's checkpoint covers them; a redelivery
// is harmless (the sink is idempotent, dead letters are keyed by sequence and line).
type SinkHandler[E ingest.Event] struct {
	stream  string
	dec     *ingest.Decoder
	sink    ingest.Sink
	dead    DeadLetters
	metrics *ingest.Metrics
}

// NewSinkHandler returns the handler for one stream of predictions or labels
// (E is ingest.Prediction or ingest.Label). dead and metrics may be nil: rejected
// lines are then only counted (or not even that).
func NewSinkHandler[E ingest.Event](stream string, dec *ingest.Decoder, sink ingest.Sink, dead DeadLetters, metrics *ingest.Metrics) *SinkHandler[E] {
	return &SinkHandler[E]{stream: stream, dec: dec, sink: sink, dead: dead, metrics: metrics}
}

// Handle implements Handler.
func (h *SinkHandler[E]) Handle(ctx context.Context, shardID string, records []Record) error {
	var (
		events  []E
		letters []DeadLetter
		rejects []ingest.Rejection
	)
	for _, r := range records {
		for i, line := range splitLines(r.Data) {
			e, err := ingest.DecodeLine[E](h.dec, line)
			if err == nil {
				events = append(events, e)
				continue
			}
			var rej *ingest.Rejection
			if !errors.As(err, &rej) {
				return fmt.Errorf("kinesis: decode %s/%s record %s: %w", h.stream, shardID, deref(r.SequenceNumber), err)
			}
			rej.Line = i + 1
			rejects = append(rejects, *rej)
			l := DeadLetter{Stream: h.stream, ShardID: shardID, SequenceNumber: deref(r.SequenceNumber), Index: i,
				PartitionKey: deref(r.PartitionKey), Data: line, Reason: rej.Reason}
			if r.ApproximateArrivalTimestamp != nil {
				l.ArrivedAt = *r.ApproximateArrivalTimestamp
			}
			letters = append(letters, l)
		}
	}
	if len(letters) > 0 && h.dead != nil {
		if err := h.dead.Put(ctx, letters); err != nil {
			return fmt.Errorf("kinesis: dead letters for %s/%s: %w", h.stream, shardID, err)
		}
	}
	h.metrics.Rejected(ingest.KindOf[E](), ingest.SourceKinesis, rejects)
	if len(events) == 0 {
		return nil
	}
	b := ingest.BatchOf(events)
	res, err := h.sink.Apply(ctx, b)
	if err != nil {
		h.metrics.SinkFailed(ingest.SourceKinesis, b)
		return fmt.Errorf("kinesis: apply %d events from %s/%s: %w", len(events), h.stream, shardID, err)
	}
	h.metrics.Committed(ingest.SourceKinesis, b, res)
	return nil
}

// splitLines splits NDJSON record data into its non-blank lines (one line for a
// single-event record), without the line terminators.
func splitLines(data []byte) [][]byte {
	var out [][]byte
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) > 0 {
			out = append(out, line)
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
