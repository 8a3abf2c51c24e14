// Package filesource replays predictions or labels from a file or stdin: verdict JSON
// or SageMaker Data Capture JSONL, one event per line. Valid events are committed to
// the sink in batches, in input order; rejected lines go to an optional dead-letter
// writer with the reason. Replaying a file again is safe: the sink is idempotent.
package filesource

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/verdictml/verdict/ingest"
)

// Defaults for zero Config fields.
const (
	DefaultBatchSize        = 1000
	DefaultProgressInterval = time.Second
)

// Config tunes a Replayer. Zero fields take the defaults.
type Config struct {
	// BatchSize is the number of valid events per Sink.Apply. Default 1000.
	BatchSize int
	// DeadLetters receives one DeadLetter JSON object per rejected line; nil drops
	// them (they are still counted in Progress and in the metrics).
	DeadLetters io.Writer
	// Progress, if set, is called at most every ProgressInterval and once more when
	// the replay ends.
	Progress func(Progress)
	// ProgressInterval spaces Progress calls. Default 1s; negative means after every
	// batch.
	ProgressInterval time.Duration
	// Metrics records accepted, duplicate and rejected events; nil records nothing.
	Metrics *ingest.Metrics
	// Source is the metrics source label. Default "file".
	Source string
}

// Progress says how far a replay has come. The final Progress is the replay's totals.
type Progress struct {
	Lines int   // lines read (the number of the last line decoded)
	Bytes int64 // input bytes read
	// TotalBytes is the input size when known (a regular file), else 0.
	TotalBytes int64
	Accepted   int // valid events committed, duplicates included
	Duplicates int // committed events that changed nothing
	Rejected   int // lines rejected
	Elapsed    time.Duration
	// LinesPerSecond is Lines / Elapsed.
	LinesPerSecond float64
}

// DeadLetter is one rejected line as written to Config.DeadLetters, as NDJSON.
type DeadLetter struct {
	Kind   ingest.Kind        `json:"kind"`
	Line   int                `json:"line"`
	Class  ingest.RejectClass `json:"class"`
	Field  string             `json:"field,omitempty"`
	Reason string             `json:"reason"`
	// Raw is the start of the line (at most ingest.RawKeepBytes) when it is valid
	// UTF-8; RawBase64 carries it otherwise, so no byte is altered.
	Raw       string `json:"raw,omitempty"`
	RawBase64 string `json:"raw_base64,omitempty"`
	// Size is the length of the whole line; RawTruncated says Raw holds less.
	Size         int  `json:"size"`
	RawTruncated bool `json:"raw_truncated,omitempty"`
}

// Replayer decodes input and commits it to a sink.
type Replayer struct {
	dec  *ingest.Decoder
	sink ingest.Sink
	cfg  Config
}

// New returns a Replayer that decodes with dec and commits to sink; both are required.
func New(dec *ingest.Decoder, sink ingest.Sink, cfg Config) *Replayer {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.ProgressInterval == 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.Source == "" {
		cfg.Source = ingest.SourceFile
	}
	return &Replayer{dec: dec, sink: sink, cfg: cfg}
}

// Replay reads events of the given kind from r until its end and returns the totals.
// size is r's length if known (for progress), else 0. On error the totals say how far
// the replay got: every event up to Progress.Lines that was accepted is committed.
// Dead letters are written before their batch is committed, so a replay that fails
// and is rerun may write some of them twice.
func (rp *Replayer) Replay(ctx context.Context, kind ingest.Kind, r io.Reader, size int64) (Progress, error) {
	switch kind {
	case ingest.KindPrediction:
		return replay[ingest.Prediction](ctx, rp, r, size)
	case ingest.KindLabel:
		return replay[ingest.Label](ctx, rp, r, size)
	}
	return Progress{}, fmt.Errorf("filesource: kind %q is not one of prediction, label", kind)
}

func replay[E ingest.Event](ctx context.Context, rp *Replayer, r io.Reader, size int64) (Progress, error) {
	kind := ingest.KindOf[E]()
	start := time.Now()
	lastReport := start
	p := Progress{TotalBytes: size}
	report := func(final bool) {
		if rp.cfg.Progress == nil {
			return
		}
		now := time.Now()
		if !final && rp.cfg.ProgressInterval > 0 && now.Sub(lastReport) < rp.cfg.ProgressInterval {
			return
		}
		lastReport = now
		p.Elapsed = now.Sub(start)
		if s := p.Elapsed.Seconds(); s > 0 {
			p.LinesPerSecond = float64(p.Lines) / s
		}
		rp.cfg.Progress(p)
	}
	var dl *deadLetterWriter
	if rp.cfg.DeadLetters != nil {
		dl = &deadLetterWriter{w: bufio.NewWriter(rp.cfg.DeadLetters), kind: kind}
		dl.enc = json.NewEncoder(dl.w)
	}
	counted := &countingReader{r: r}

	err := ingest.Decode(rp.dec, counted, rp.cfg.BatchSize, func(b ingest.Decoded[E]) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("filesource: stopped after line %d: %w", p.Lines, err)
		}
		if err := dl.write(b.Rejections); err != nil {
			return err
		}
		rp.cfg.Metrics.Rejected(kind, rp.cfg.Source, b.Rejections)
		p.Rejected += len(b.Rejections)
		if len(b.Events) > 0 {
			batch := ingest.BatchOf(b.Events)
			res, err := rp.sink.Apply(ctx, batch)
			if err != nil {
				rp.cfg.Metrics.SinkFailed(rp.cfg.Source, batch)
				return fmt.Errorf("filesource: commit the %ss of lines %d to %d: %w", kind, p.Lines+1, b.Lines, err)
			}
			rp.cfg.Metrics.Committed(rp.cfg.Source, batch, res)
			p.Accepted += len(b.Events)
			p.Duplicates += res.Duplicates
		}
		p.Lines, p.Bytes = b.Lines, b.Bytes
		report(false)
		return nil
	})
	if err == nil {
		// Trailing blank lines end no batch; count their bytes too.
		p.Bytes = counted.n
	}
	report(true)
	return p, err
}

type deadLetterWriter struct {
	w    *bufio.Writer
	enc  *json.Encoder
	kind ingest.Kind
}

// write writes and flushes one batch of dead letters; a nil writer writes nothing.
func (d *deadLetterWriter) write(rejections []ingest.Rejection) error {
	if d == nil || len(rejections) == 0 {
		return nil
	}
	for _, r := range rejections {
		if err := d.enc.Encode(NewDeadLetter(d.kind, r)); err != nil {
			return fmt.Errorf("filesource: write dead letter for line %d: %w", r.Line, err)
		}
	}
	if err := d.w.Flush(); err != nil {
		return fmt.Errorf("filesource: write dead letters up to line %d: %w", rejections[len(rejections)-1].Line, err)
	}
	return nil
}

// NewDeadLetter is the dead letter of a rejected line of the given kind.
func NewDeadLetter(kind ingest.Kind, r ingest.Rejection) DeadLetter {
	letter := DeadLetter{
		Kind: kind, Line: r.Line, Class: r.Class, Field: r.Field, Reason: r.Reason,
		Size: r.Size, RawTruncated: r.Size > len(r.Raw),
	}
	if raw, ok := validText(r.Raw, letter.RawTruncated); ok {
		letter.Raw = raw
	} else if len(r.Raw) > 0 {
		letter.RawBase64 = base64.StdEncoding.EncodeToString(r.Raw)
	}
	return letter
}

// validText returns raw as a string if it is valid UTF-8. A truncated raw line may end
// in a cut multi-byte sequence; that tail is dropped rather than giving up on text.
func validText(raw []byte, truncated bool) (string, bool) {
	for cut := 0; cut <= 3 && cut <= len(raw); cut++ {
		if utf8.Valid(raw[:len(raw)-cut]) {
			return string(raw[:len(raw)-cut]), true
		}
		if !truncated {
			break
		}
	}
	return "", false
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
