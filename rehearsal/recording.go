package rehearsal

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/verdictml/verdict/ingest"
)

// Recording is recorded events in event-time order: predictions by prediction
// time, labels by the time they became known (ties keep input order).
type Recording struct {
	Predictions []ingest.Prediction
	Labels      []ingest.Label
	// Rejected counts input lines the decoder refused (each with a reason, see
	// ReadOptions.Rejected); they never stop a read.
	Rejected int
}

// ReadOptions configure Read.
type ReadOptions struct {
	// Rejected, when set, sees every rejected line with its kind.
	Rejected func(kind ingest.Kind, r ingest.Rejection)
}

// Read decodes predictions and labels (either may be nil) with dec and orders
// them by event time.
func Read(dec *ingest.Decoder, predictions, labels io.Reader, opts ReadOptions) (*Recording, error) {
	rec := &Recording{}
	rejected := func(kind ingest.Kind, rs []ingest.Rejection) {
		rec.Rejected += len(rs)
		if opts.Rejected != nil {
			for _, r := range rs {
				opts.Rejected(kind, r)
			}
		}
	}
	if predictions != nil {
		err := dec.DecodePredictions(predictions, 4096, func(b ingest.Decoded[ingest.Prediction]) error {
			rec.Predictions = append(rec.Predictions, b.Events...)
			rejected(ingest.KindPrediction, b.Rejections)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("rehearsal: read predictions: %w", err)
		}
	}
	if labels != nil {
		err := dec.DecodeLabels(labels, 4096, func(b ingest.Decoded[ingest.Label]) error {
			rec.Labels = append(rec.Labels, b.Events...)
			rejected(ingest.KindLabel, b.Rejections)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("rehearsal: read labels: %w", err)
		}
	}
	slices.SortStableFunc(rec.Predictions, func(a, b ingest.Prediction) int { return a.Time.Compare(b.Time) })
	slices.SortStableFunc(rec.Labels, func(a, b ingest.Label) int { return a.Time.Compare(b.Time) })
	return rec, nil
}

// Span is the time of the first and the last event (zero for no events).
func (r *Recording) Span() (first, last time.Time) {
	var ts []time.Time
	if n := len(r.Predictions); n > 0 {
		ts = append(ts, r.Predictions[0].Time, r.Predictions[n-1].Time)
	}
	if n := len(r.Labels); n > 0 {
		ts = append(ts, r.Labels[0].Time, r.Labels[n-1].Time)
	}
	if len(ts) == 0 {
		return time.Time{}, time.Time{}
	}
	return slices.MinFunc(ts, time.Time.Compare), slices.MaxFunc(ts, time.Time.Compare)
}

// FirstPrediction is the time of the earliest prediction (zero for none).
func (r *Recording) FirstPrediction() time.Time {
	if len(r.Predictions) == 0 {
		return time.Time{}
	}
	return r.Predictions[0].Time
}

// Variants lists the variants that predicted, sorted.
func (r *Recording) Variants() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range r.Predictions {
		if !seen[p.Variant] {
			seen[p.Variant] = true
			out = append(out, p.Variant)
		}
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}

// Between is the part of the recording whose event times lie in [from, to]:
// predictions made and labels known then (a zero bound is open). The events are
// shared with r, not copied.
func (r *Recording) Between(from, to time.Time) *Recording {
	cut := func(n int, at func(int) time.Time) (int, int) {
		lo, hi := 0, n
		if !from.IsZero() {
			lo = sort.Search(n, func(i int) bool { return !at(i).Before(from) })
		}
		if !to.IsZero() {
			hi = sort.Search(n, func(i int) bool { return at(i).After(to) })
		}
		return lo, max(lo, hi)
	}
	pl, ph := cut(len(r.Predictions), func(i int) time.Time { return r.Predictions[i].Time })
	ll, lh := cut(len(r.Labels), func(i int) time.Time { return r.Labels[i].Time })
	return &Recording{Predictions: r.Predictions[pl:ph], Labels: r.Labels[ll:lh], Rejected: r.Rejected}
}
