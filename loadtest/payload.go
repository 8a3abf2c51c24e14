package loadtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/verdictml/verdict/ingest"
)

// Payload is one request to replay.
type Payload struct {
	Body        []byte
	ContentType string
	Accept      string
	// Production is the production model's score for this request, read from the
	// captured response; nil when unknown. Segment is its segment value, "" when none.
	Production *float64
	Segment    string
}

// maxLine caps one input line (a captured record or a payload).
const maxLine = 16 << 20

// ReadPayloads reads one payload per non-blank line (a CSV record, a JSON document),
// all of contentType.
func ReadPayloads(r io.Reader, contentType string) ([]Payload, error) {
	var out []Payload
	err := eachLine(r, func(n int, line []byte) error {
		out = append(out, Payload{Body: line, ContentType: contentType})
		return nil
	})
	if err == nil && len(out) == 0 {
		err = errors.New("no payloads: the input is empty")
	}
	return out, err
}

// CaptureReading says how to read SageMaker Data Capture records into payloads.
type CaptureReading struct {
	// Decoder reads the production score from the captured response
	// (DataCapture.Score) and attributes from the request (DataCapture.Attributes);
	// nil reads requests only.
	Decoder *ingest.Decoder
	// SegmentKey is the attribute whose value is a payload's segment.
	SegmentKey string
	// Accept, when set, is sent as every request's Accept header; otherwise the
	// captured response's content type is.
	Accept string
}

// ReadCapture reads Data Capture JSONL: each record's endpointInput becomes a
// payload with its observed content type. With a Decoder, the production score
// (endpointOutput) and the segment ride along for comparing responses; a record whose
// output cannot be scored still replays, without a production score. A record without
// a usable endpointInput is an error naming its line and field.
func ReadCapture(r io.Reader, cr CaptureReading) ([]Payload, error) {
	var out []Payload
	err := eachLine(r, func(n int, line []byte) error {
		ex, err := ingest.DecodeCapturedExchange(line)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		p := Payload{Body: ex.Input, ContentType: ex.InputContentType, Accept: cr.Accept}
		if p.Accept == "" {
			p.Accept = ex.OutputContentType
		}
		if cr.Decoder != nil && ex.Output != nil {
			if s, err := cr.Decoder.CaptureScore(ex.Output); err == nil {
				p.Production = &s
			}
			if cr.SegmentKey != "" {
				if attrs, err := cr.Decoder.CaptureAttributes(ex.Input); err == nil {
					p.Segment = attrs[cr.SegmentKey]
				}
			}
		}
		out = append(out, p)
		return nil
	})
	if err == nil && len(out) == 0 {
		err = errors.New("no captured requests: the input is empty")
	}
	return out, err
}

// IsCapture reports whether the first non-blank line of b looks like a Data Capture
// record (a JSON object with captureData).
func IsCapture(b []byte) bool {
	for line := range bytes.Lines(b) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		return line[0] == '{' && bytes.Contains(line, []byte(`"captureData"`))
	}
	return false
}

func eachLine(r io.Reader, fn func(n int, line []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if err := fn(n, bytes.Clone(line)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	return nil
}
