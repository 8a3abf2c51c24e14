package objectsource

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/verdictml/verdict/ingest"
)

// ClassUnreadableObject is the class of a dead letter for a whole object that could
// not be read (not valid gzip, truncated, deleted after it was listed). The lines read
// before the damage are committed.
const ClassUnreadableObject ingest.RejectClass = "unreadable_object"

// objectResult is what reading one object did.
type objectResult struct {
	bytes                          int64
	accepted, duplicates, rejected int
	// dead: the object could not be read whole; a dead letter says why.
	dead bool
}

// retryable marks an error after which the object must be read again later: the
// store, the dead letters or the transport failed, not the object's content.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// transportReader counts bytes and marks every read error as retryable, so a broken
// connection is told apart from a damaged gzip stream (whose errors gzip makes).
type transportReader struct {
	r io.Reader
	n int64
}

func (t *transportReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += int64(n)
	if err != nil && err != io.EOF {
		err = retryable{err}
	}
	return n, err
}

// readObject reads one object of partition p into the join: events in batches, bad
// lines to the dead letters. A nil error means the object is done (read whole, or
// dead-lettered as unreadable): its key may be recorded.
func (s *Source) readObject(ctx context.Context, p *partition, o Object) (objectResult, error) {
	var res objectResult
	url := p.bucket.URL(o.Key)
	dead := func(reason string) (objectResult, error) {
		res.dead = true
		letter := DeadLetter{Object: url, ETag: o.ETag, LastModified: o.LastModified, Kind: p.kind,
			Rejection: ingest.Rejection{Class: ClassUnreadableObject, Reason: reason, Size: int(min(o.Size, 1<<31-1))}}
		if err := s.putDeadLetters(ctx, url, []DeadLetter{letter}); err != nil {
			return res, err
		}
		if err := s.flushDeadLetters(ctx, url); err != nil {
			return res, err
		}
		s.log.WarnContext(ctx, "objectsource: object dead-lettered", "object", url, "reason", reason)
		return res, nil
	}
	body, err := p.bucket.Open(ctx, o.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return dead("the object no longer exists (deleted after it was listed)")
	}
	if err != nil {
		return res, fmt.Errorf("open %s: %w", url, err)
	}
	defer body.Close()
	tr := &transportReader{r: body}
	br := bufio.NewReaderSize(tr, 64<<10)
	var in io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			if errors.As(err, new(retryable)) {
				return res, fmt.Errorf("read %s: %w", url, err)
			}
			return dead(fmt.Sprintf("starts like gzip but is not: %v", err))
		}
		defer zr.Close()
		in = zr
	} else if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return res, fmt.Errorf("read %s: %w", url, err)
	}

	var lines int
	commit := func(kind ingest.Kind, rejections []ingest.Rejection, b ingest.Batch, upTo int) error {
		if len(rejections) > 0 {
			letters := make([]DeadLetter, len(rejections))
			for i, r := range rejections {
				letters[i] = DeadLetter{Object: url, ETag: o.ETag, LastModified: o.LastModified, Kind: kind, Rejection: r}
			}
			if err := s.putDeadLetters(ctx, url, letters); err != nil {
				return retryable{err}
			}
			s.cfg.Metrics.Rejected(kind, s.cfg.Source, rejections)
			res.rejected += len(rejections)
		}
		if b.Len() > 0 {
			r, err := s.cfg.Sink.Apply(ctx, b)
			if err != nil {
				s.cfg.Metrics.SinkFailed(s.cfg.Source, b)
				return retryable{fmt.Errorf("commit the events of lines %d to %d of %s: %w", lines+1, upTo, url, err)}
			}
			s.cfg.Metrics.Committed(s.cfg.Source, b, r)
			res.accepted += b.Len()
			res.duplicates += r.Duplicates
		}
		lines = upTo
		return nil
	}
	switch {
	case p.kind == ingest.KindPrediction:
		dec := p.dec
		if dec == nil {
			dec = s.cfg.Decoder
		}
		err = dec.DecodePredictions(in, s.cfg.BatchSize, func(b ingest.Decoded[ingest.Prediction]) error {
			return commit(ingest.KindPrediction, b.Rejections, ingest.BatchOf(b.Events), b.Lines)
		})
	case isCSV(o.Key):
		err = s.cfg.Decoder.DecodeLabelsCSV(in, s.cfg.BatchSize, func(b ingest.Decoded[ingest.Label]) error {
			return commit(ingest.KindLabel, b.Rejections, ingest.BatchOf(b.Events), b.Lines)
		})
	default:
		err = s.cfg.Decoder.DecodeLabels(in, s.cfg.BatchSize, func(b ingest.Decoded[ingest.Label]) error {
			return commit(ingest.KindLabel, b.Rejections, ingest.BatchOf(b.Events), b.Lines)
		})
	}
	res.bytes = tr.n
	switch {
	case err == nil:
	case errors.As(err, new(retryable)) || ctx.Err() != nil:
		return res, fmt.Errorf("read %s: %w", url, err)
	default:
		// The content itself is damaged (a gzip stream cut short or corrupt): what was
		// readable is committed; reading again would find the same damage.
		if _, derr := dead(fmt.Sprintf("damaged after line %d: %v", lines, err)); derr != nil {
			return res, derr
		}
	}
	if !res.dead {
		if err := s.flushDeadLetters(ctx, url); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (s *Source) flushDeadLetters(ctx context.Context, object string) error {
	if s.cfg.DeadLetters == nil {
		return nil
	}
	if err := s.cfg.DeadLetters.Flush(ctx, object); err != nil {
		return fmt.Errorf("dead letters of %s: %w", object, err)
	}
	return nil
}

func (s *Source) putDeadLetters(ctx context.Context, object string, letters []DeadLetter) error {
	if s.cfg.DeadLetters == nil {
		return nil
	}
	if err := s.cfg.DeadLetters.Put(ctx, letters); err != nil {
		return fmt.Errorf("dead letters of %s: %w", object, err)
	}
	return nil
}

// isCSV reports whether a label object is CSV: its key ends in .csv (or .csv.gz).
func isCSV(key string) bool {
	k := strings.ToLower(strings.TrimSuffix(strings.ToLower(key), ".gz"))
	return strings.HasSuffix(k, ".csv")
}
