package labels

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/verdictml/verdict/tally"
)

// Record is everything the join knows about one inference id: its label, if any, and
// the prediction of each variant. It is the unit the store reads and writes, so one
// label resolves every variant's prediction in one atomic write.
type Record struct {
	ID    string
	Label *LabelState
	// Review is the latest label from a review source (Config.ReviewSources), kept
	// apart because with Config.Declined = DeclinedCensored it alone resolves the
	// predictions of a declined inference. Nil without review sources.
	Review *LabelState
	Preds  []PredState
	// Version is the store's optimistic-concurrency token: 0 for a record that does not
	// exist yet. Stores that are shared by several writers commit a record only if its
	// version is unchanged.
	Version uint64
}

// LabelState is the label currently in force for an inference id.
type LabelState struct {
	Positive bool
	// Time is when the label became known (Unix nanoseconds); the latest wins.
	Time int64
	// Seq orders labels received with the same Time: the one received last wins.
	Seq    uint64
	Source string
}

// PredState is one variant's prediction and its current outcome.
type PredState struct {
	Variant string
	Shadow  bool
	Score   float64
	Flagged bool
	Errored bool
	// Time is the prediction time (Unix nanoseconds); windows bucket by it.
	Time     int64
	Segments []Segment
	Outcome  tally.Outcome
	// Matured is set when the outcome came from label maturity, not from a label.
	Matured bool
	// Censored is set on a pending prediction that maturity will not resolve: the
	// serving variant declined its inference (Config.Declined = DeclinedCensored).
	Censored bool
}

// Open reports whether the prediction still waits for a label or maturity: not
// errored, not resolved and not censored.
func (p PredState) Open() bool { return !p.Errored && p.Outcome == tally.Pending && !p.Censored }

// Segment is one configured attribute of a prediction, as counted.
type Segment struct{ Key, Value string }

func (r *Record) pred(variant string) *PredState {
	for i := range r.Preds {
		if r.Preds[i].Variant == variant {
			return &r.Preds[i]
		}
	}
	return nil
}

const recordFormat = 1

var errCorrupt = errors.New("corrupt record")

// Marshal encodes a record compactly: it is written once per event, so it stays
// binary and allocation-light.
func (r *Record) Marshal() []byte {
	b := make([]byte, 0, 64+len(r.Preds)*64)
	b = append(b, recordFormat)
	switch {
	case r.Label != nil && r.Review != nil:
		b = appendLabel(append(b, labelAndReview), r.Label)
		b = appendLabel(b, r.Review)
	case r.Label != nil:
		b = appendLabel(append(b, labelOnly), r.Label)
	default:
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Preds)))
	var prevTime int64
	for i, p := range r.Preds {
		b = appendString(b, p.Variant)
		var flags byte
		if p.Shadow {
			flags |= 1
		}
		if p.Flagged {
			flags |= 2
		}
		if p.Errored {
			flags |= 4
		}
		if p.Matured {
			flags |= 8
		}
		if p.Censored {
			flags |= 32
		}
		// Production and shadow predictions of one request usually share their
		// segments: store them once. Prediction times are stored as deltas.
		sameSegs := i > 0 && slices.Equal(p.Segments, r.Preds[i-1].Segments)
		if sameSegs {
			flags |= 16
		}
		b = append(b, flags, byte(p.Outcome))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Score))
		b = binary.AppendVarint(b, p.Time-prevTime)
		prevTime = p.Time
		if sameSegs {
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(p.Segments)))
		for _, s := range p.Segments {
			b = appendString(b, s.Key)
			b = appendString(b, s.Value)
		}
	}
	return b
}

// UnmarshalRecord decodes what Marshal encoded; corrupt input is an error, never a panic.
func UnmarshalRecord(id string, b []byte) (*Record, error) {
	d := decoder{b: b}
	if v := d.byte(); v != recordFormat {
		return nil, fmt.Errorf("record %q: format %d: %w", id, v, errCorrupt)
	}
	r := &Record{ID: id}
	switch d.byte() {
	case 0:
	case labelOnly:
		r.Label = d.label()
	case labelAndReview:
		r.Label, r.Review = d.label(), d.label()
	default:
		d.err = errCorrupt
	}
	n := d.uvarint()
	if n > 1<<16 {
		d.err = errCorrupt
	}
	var prevTime int64
	for i := uint64(0); i < n && d.err == nil; i++ {
		p := PredState{Variant: d.string()}
		flags := d.byte()
		p.Shadow, p.Flagged, p.Errored, p.Matured = flags&1 != 0, flags&2 != 0, flags&4 != 0, flags&8 != 0
		p.Censored = flags&32 != 0
		p.Outcome = tally.Outcome(d.byte())
		if p.Outcome > tally.TrueNegative {
			d.err = errCorrupt
		}
		p.Score = math.Float64frombits(d.uint64())
		p.Time = prevTime + d.varint()
		prevTime = p.Time
		if flags&16 != 0 {
			if len(r.Preds) == 0 {
				d.err = errCorrupt
			} else {
				p.Segments = r.Preds[len(r.Preds)-1].Segments
			}
		} else {
			ns := d.uvarint()
			if ns > 1<<10 {
				d.err = errCorrupt
			}
			for j := uint64(0); j < ns && d.err == nil; j++ {
				p.Segments = append(p.Segments, Segment{Key: d.string(), Value: d.string()})
			}
		}
		r.Preds = append(r.Preds, p)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return nil, fmt.Errorf("record %q: %w", id, d.err)
	}
	return r, nil
}

// Label markers in the encoding: none (0), the label in force, or it and the
// latest review label.
const (
	labelOnly      = 1
	labelAndReview = 3
)

func appendLabel(b []byte, l *LabelState) []byte {
	b = appendBool(b, l.Positive)
	b = binary.AppendVarint(b, l.Time)
	b = binary.AppendUvarint(b, l.Seq)
	return appendString(b, l.Source)
}

func (d *decoder) label() *LabelState {
	return &LabelState{Positive: d.byte() == 1, Time: d.varint(), Seq: d.uvarint(), Source: d.string()}
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads the record encoding; the first error sticks and zero values follow.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.err = errCorrupt
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uint64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.err = errCorrupt
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
