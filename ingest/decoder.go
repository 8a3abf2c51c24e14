package ingest

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Kind names an event type; it is the kind label of the ingest metrics.
type Kind string

// Event kinds.
const (
	KindPrediction Kind = "prediction"
	KindLabel      Kind = "label"
)

// Event is the type set sources decode and commit: a Prediction or a Label.
type Event interface{ Prediction | Label }

// KindOf returns the Kind of E.
func KindOf[E Event]() Kind {
	var e E
	if _, ok := any(e).(Label); ok {
		return KindLabel
	}
	return KindPrediction
}

// BatchOf wraps events in a Batch for Sink.Apply.
func BatchOf[E Event](events []E) Batch {
	switch ev := any(events).(type) {
	case []Prediction:
		return Batch{Predictions: ev}
	case []Label:
		return Batch{Labels: ev}
	}
	return Batch{}
}

// Decoded is a run of consecutive input lines, decoded: the valid events in input
// order, and the rejected lines.
type Decoded[E Event] struct {
	Events     []E
	Rejections []Rejection
	// Lines and Bytes say how far through the input decoding has come, this batch
	// included: the number of the last line read and the bytes consumed.
	Lines int
	Bytes int64
}

// Decoder validates input lines and turns them into events. It is safe for
// concurrent use; its only state is the set of variants it accepted (MaxVariants).
type Decoder struct {
	cfg        DecoderConfig
	pinned     map[string]struct{}
	pinnedList string
	score      selector
	variantSel *variantSelector // nil: the variant is DataCapture.Variant
	attrs      []attrSelector
	variants   *variantSet // nil without a cap
	// labelValues are LabelCSV.Values by lower-cased value; nil for true/false, 1/0.
	labelValues    map[string]bool
	labelValueList string
	// strictOnly turns the fast path off (tests compare the two paths).
	strictOnly bool
	// names interns variant names and attribute keys of the fast path.
	names *internTable
}

// variantSet is the bounded set of variant names a decoder accepted. Every prediction
// line asks it, so reads take no lock: the set is an immutable map swapped whole
// (copy on write) when a variant is added, which happens a few times per process.
type variantSet struct {
	mu    sync.Mutex // serialises writers
	known atomic.Pointer[map[string]struct{}]
	max   int
}

func newVariantSet(max int) *variantSet {
	vs := &variantSet{max: max}
	vs.known.Store(&map[string]struct{}{})
	return vs
}

// add adds names past the cap when force, else a name only while fewer than max are
// known; it reports the number known and whether every name is now known.
func (vs *variantSet) add(force bool, names ...string) (known int, ok bool) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	cur := *vs.known.Load()
	next := maps.Clone(cur)
	for _, n := range names {
		if _, in := next[n]; in {
			continue
		}
		if !force && len(next) >= vs.max {
			return len(next), false
		}
		next[n] = struct{}{}
	}
	vs.known.Store(&next)
	return len(next), true
}

// KnowVariants adds variants to those accepted so far (the variants a restarted
// service already counts), so they stay accepted under MaxVariants.
func (d *Decoder) KnowVariants(names ...string) {
	if d.variants == nil {
		return
	}
	d.variants.add(true, names...)
}

// admitVariant accepts a variant already known, or a new one while fewer than
// MaxVariants are known.
func (d *Decoder) admitVariant(field, v string) *Rejection {
	vs := d.variants
	if vs == nil {
		return nil
	}
	if _, ok := (*vs.known.Load())[v]; ok {
		return nil
	}
	if known, ok := vs.add(false, v); !ok {
		return reject(ClassLimitExceeded, field, "%s would be variant number %d, over the limit of %d distinct variants (VERDICT_MAX_VARIANTS); "+
			"pin the variants with VERDICT_VARIANTS or raise the limit", quote(v), known+1, vs.max)
	}
	return nil
}

// NewDecoder checks cfg, fills in its defaults, and returns a Decoder. The error lists
// every problem in cfg, each naming its field.
func NewDecoder(cfg0 DecoderConfig) (*Decoder, error) {
	cfg, err := cfg0.withDefaults()
	if err != nil {
		return nil, err
	}
	// The caller keeps its maps and slices; the decoder must not see later changes.
	cfg.Thresholds = maps.Clone(cfg.Thresholds)
	cfg.Roles = maps.Clone(cfg.Roles)
	cfg.Variants = slices.Clone(cfg.Variants)
	cfg.DataCapture.Attributes = maps.Clone(cfg.DataCapture.Attributes)
	cfg.LabelCSV.Columns = maps.Clone(cfg.LabelCSV.Columns)
	cfg.LabelCSV.Values = nil // kept as labelValues
	d := &Decoder{cfg: cfg, names: &internTable{}}
	if len(cfg0.LabelCSV.Values) > 0 {
		d.labelValues = map[string]bool{}
		var list []string
		for _, v := range sortedKeys(cfg0.LabelCSV.Values) {
			d.labelValues[strings.ToLower(strings.TrimSpace(v))] = cfg0.LabelCSV.Values[v]
			list = append(list, quote(v))
		}
		d.labelValueList = strings.Join(list, ", ")
	}
	if len(cfg.Variants) > 0 {
		d.pinned = make(map[string]struct{}, len(cfg.Variants))
		names := make([]string, 0, len(cfg.Variants))
		for _, v := range cfg.Variants {
			d.pinned[v] = struct{}{}
			names = append(names, quote(v))
		}
		if len(names) > 8 {
			names = append(names[:8], fmt.Sprintf("and %d more", len(names)-8))
		}
		d.pinnedList = strings.Join(names, ", ")
	}
	// Selectors were validated by withDefaults.
	if cfg.DataCapture.Score != "" {
		d.score, _ = parseSelector(cfg.DataCapture.Score)
	}
	if cfg.DataCapture.VariantSelector != "" {
		sel, _ := parseVariantSelector(cfg.DataCapture.VariantSelector)
		d.variantSel = &sel
	}
	for _, name := range sortedKeys(cfg.DataCapture.Attributes) {
		sel, _ := parseSelector(cfg.DataCapture.Attributes[name])
		d.attrs = append(d.attrs, attrSelector{name: name, sel: sel})
	}
	if cfg.MaxVariants > 0 && d.pinned == nil {
		d.variants = newVariantSet(cfg.MaxVariants)
		d.KnowVariants(sortedKeys(cfg.Thresholds)...)
		d.KnowVariants(sortedKeys(cfg.Roles)...)
		if v := cfg.DataCapture.Variant; v != "" {
			d.KnowVariants(v)
		}
	}
	return d, nil
}

// WithCaptureVariant returns a decoder like d that assigns variant to Data Capture
// records (unless DataCapture.Fleets or VariantSelector name another): the variant
// a capture file's S3 key names, for sources that read capture files. The variant is
// checked per record, as a verdict JSON prediction's is.
func (d *Decoder) WithCaptureVariant(variant string) *Decoder {
	c := *d
	c.cfg.DataCapture.Variant = variant
	return &c
}

// MaxLineBytes is the longest line the decoder accepts.
func (d *Decoder) MaxLineBytes() int { return d.cfg.MaxLineBytes }

// DecodePredictions reads newline-delimited predictions from r and calls emit with
// batches of up to batchSize valid predictions (default 1000 when batchSize <= 0),
// along with the lines rejected since the previous batch. Blank lines are skipped.
// A batch is also emitted once batchSize rejections have piled up, so memory stays
// bounded on input that is all bad. The slices in a batch are not reused.
//
// It returns nil at the end of r, emit's error as is if emit fails, and otherwise the
// read error (after emitting the lines read before it).
func (d *Decoder) DecodePredictions(r io.Reader, batchSize int, emit func(Decoded[Prediction]) error) error {
	return decodeStream(r, d.cfg.MaxLineBytes, batchSize, d.decodePrediction, emit)
}

// DecodeLabels is DecodePredictions for labels.
func (d *Decoder) DecodeLabels(r io.Reader, batchSize int, emit func(Decoded[Label]) error) error {
	return decodeStream(r, d.cfg.MaxLineBytes, batchSize, d.decodeLabel, emit)
}

// DecodePrediction decodes one line, without its line terminator (a Kinesis record, a
// JSON array element). A non-nil error is always a *Rejection with Line 0.
func (d *Decoder) DecodePrediction(line []byte) (Prediction, error) {
	p, rej := decodeOne(line, d.cfg.MaxLineBytes, d.decodePrediction)
	if rej != nil {
		return Prediction{}, rej
	}
	return p, nil
}

// DecodeLabel is DecodePrediction for labels.
func (d *Decoder) DecodeLabel(line []byte) (Label, error) {
	l, rej := decodeOne(line, d.cfg.MaxLineBytes, d.decodeLabel)
	if rej != nil {
		return Label{}, rej
	}
	return l, nil
}

// Decode is DecodePredictions or DecodeLabels, chosen by E, for sources that handle
// either kind.
func Decode[E Event](d *Decoder, r io.Reader, batchSize int, emit func(Decoded[E]) error) error {
	return decodeStream(r, d.cfg.MaxLineBytes, batchSize, lineDecoder[E](d), emit)
}

// DecodeLine is DecodePrediction or DecodeLabel, chosen by E.
func DecodeLine[E Event](d *Decoder, line []byte) (E, error) {
	e, rej := decodeOne(line, d.cfg.MaxLineBytes, lineDecoder[E](d))
	if rej != nil {
		var zero E
		return zero, rej
	}
	return e, nil
}

func lineDecoder[E Event](d *Decoder) func([]byte) (E, *Rejection) {
	var f func([]byte) (E, *Rejection)
	switch p := any(&f).(type) {
	case *func([]byte) (Prediction, *Rejection):
		*p = d.decodePrediction
	case *func([]byte) (Label, *Rejection):
		*p = d.decodeLabel
	}
	return f
}

func decodeOne[E Event](data []byte, maxLine int, decode func([]byte) (E, *Rejection)) (E, *Rejection) {
	var zero E
	switch {
	case len(data) > maxLine:
		rej := oversize(len(data), maxLine)
		rej.Raw, rej.Size = clone(data), len(data)
		return zero, rej
	case blank(data):
		return zero, &Rejection{Class: ClassMalformedJSON, Reason: "line is empty, want a JSON object"}
	}
	e, rej := decode(data)
	if rej != nil {
		rej.Raw, rej.Size = clone(data), len(data)
		return zero, rej
	}
	return e, nil
}

func decodeStream[E Event](r io.Reader, maxLine, batchSize int, decode func([]byte) (E, *Rejection), emit func(Decoded[E]) error) error {
	if batchSize <= 0 {
		batchSize = 1000
	}
	lr := newLineReader(r, maxLine)
	var batch Decoded[E]
	flush := func() error {
		if len(batch.Events) == 0 && len(batch.Rejections) == 0 {
			return nil
		}
		batch.Lines, batch.Bytes = lr.lines, lr.bytes
		err := emit(batch)
		batch = Decoded[E]{}
		return err
	}
	for {
		l, err := lr.next()
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("ingest: read line %d: %w", lr.lines+1, err)
		}
		switch {
		case l.oversize:
			rej := oversize(l.size, maxLine)
			rej.Line, rej.Raw, rej.Size = l.num, clone(l.data), l.size
			batch.Rejections = append(batch.Rejections, *rej)
		case blank(l.data):
			continue
		default:
			e, rej := decode(l.data)
			if rej == skipLine {
				continue
			}
			if rej != nil {
				rej.Line, rej.Raw, rej.Size = l.num, clone(l.data), l.size
				batch.Rejections = append(batch.Rejections, *rej)
			} else {
				batch.Events = append(batch.Events, e)
			}
		}
		if len(batch.Events) >= batchSize || len(batch.Rejections) >= batchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

func oversize(size, max int) *Rejection {
	return reject(ClassOversizeLine, "", "line is %d bytes, over the %d-byte limit", size, max)
}

// clone copies up to RawKeepBytes of b, which may be reused by the caller.
func clone(b []byte) []byte {
	return append([]byte(nil), b[:min(len(b), RawKeepBytes)]...)
}
