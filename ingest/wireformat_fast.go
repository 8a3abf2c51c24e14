package ingest

import (
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// The fast path decodes the common verdict JSON line in one pass, without
// reflection: an object whose keys are all known fields, written exactly once, with
// strings that need no unescaping. It accepts a line only when the strict path
// (encoding/json, checkStrict, then the same field checks) would accept it with the
// same result; for anything else — an escape, an unknown or duplicate key, a value
// of an unexpected type, a value a check refuses — it gives up, and the strict path
// decodes the line again and words the rejection. So every rejection and its reason
// come from one place, and the fast path only has to be right about what it accepts
// (FuzzFastPathAgreesWithStrict checks that it is).

// Fields of a verdict JSON prediction or label, as bits of a seen-set.
const (
	fInferenceID = 1 << iota
	fVariant
	fRole
	fScore
	fThreshold
	fTime
	fAttributes
	fLatency
	fError
	fLabel
	fSource
)

// fastScanner reads JSON from b at i.
type fastScanner struct {
	b []byte
	i int
}

func (s *fastScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// eat consumes c if it is next.
func (s *fastScanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string at i and returns its contents; false when there is none, or it
// has an escape or a control character (which the strict path handles or refuses).
func (s *fastScanner) str() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// null consumes the literal null if it is next.
func (s *fastScanner) null() bool {
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// number reads a number in JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *fastScanner) number() ([]byte, bool) {
	start := s.i
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return nil, false
	}
	if s.eat('.') && !s.digits() {
		return nil, false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

// digits consumes one or more digits; false if there is none.
func (s *fastScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// float reads a number or null, as encoding/json would into a *float64: set is
// false for null; ok is false for anything else or a number out of float64's range.
func (s *fastScanner) float() (f float64, set, ok bool) {
	if s.null() {
		return 0, false, true
	}
	num, ok := s.number()
	if !ok {
		return 0, false, false
	}
	f, err := strconv.ParseFloat(string(num), 64)
	return f, true, err == nil
}

// optString reads a string or null, as encoding/json would into a *string.
func (s *fastScanner) optString() (v []byte, set, ok bool) {
	if s.null() {
		return nil, false, true
	}
	v, ok = s.str()
	return v, ok, ok
}

// timeValue reads a time as its raw JSON (a string or a number); parseTime decides.
func (s *fastScanner) timeValue() ([]byte, bool) {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '"' {
		if _, ok := s.str(); !ok {
			return nil, false
		}
		return s.b[start:s.i], true
	}
	return s.number()
}

// members reads an object's members, calling member with each key (the scanner at
// its value); false on anything but a well-formed object or when member fails.
func (s *fastScanner) members(member func(key []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	s.space()
	if s.eat('}') {
		return true
	}
	for {
		s.space()
		key, ok := s.str()
		if !ok {
			return false
		}
		s.space()
		if !s.eat(':') {
			return false
		}
		s.space()
		if !member(key) {
			return false
		}
		s.space()
		if s.eat(',') {
			continue
		}
		return s.eat('}')
	}
}

// end reports whether only whitespace is left.
func (s *fastScanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// fastPrediction decodes line if it is a plain verdict JSON prediction that the
// strict path would accept; ok is false otherwise (see the top of this file).
func (d *Decoder) fastPrediction(line []byte) (p Prediction, ok bool) {
	if !utf8.Valid(line) {
		return p, false
	}
	var (
		w                          predictionFields
		id, variant, role, errText []byte
		attrs                      map[string]string
		seen                       int
	)
	s := fastScanner{b: line}
	s.space()
	ok = s.members(func(key []byte) bool {
		var f int
		var ok bool
		switch string(key) {
		case "inference_id":
			f = fInferenceID
			id, w.hasID, ok = s.optString()
		case "variant":
			f = fVariant
			variant, w.hasVariant, ok = s.optString()
		case "role":
			f = fRole
			role, w.hasRole, ok = s.optString()
		case "error":
			f = fError
			errText, w.hasErr, ok = s.optString()
		case "score":
			f = fScore
			w.score, w.hasScore, ok = s.float()
		case "threshold":
			f = fThreshold
			w.threshold, w.hasThreshold, ok = s.float()
		case "latency_ms":
			f = fLatency
			w.latencyMS, w.hasLatency, ok = s.float()
		case "time":
			f = fTime
			w.time, ok = s.timeValue()
		case "attributes":
			f = fAttributes
			attrs, ok = d.fastAttributes(&s)
		default:
			return false
		}
		if seen&f != 0 {
			return false
		}
		seen |= f
		return ok
	})
	if !ok || !s.end() {
		return Prediction{}, false
	}
	w.id, w.variant, w.role = string(id), d.names.lookup(variant), roleName(role)
	if w.hasErr {
		w.errText = string(errText)
	}
	p, rej := d.verdictFields(&w)
	if rej != nil {
		return Prediction{}, false
	}
	if len(attrs) > 0 {
		p.Attributes = attrs
	}
	if d.admitVariant("variant", p.Variant) != nil {
		return Prediction{}, false
	}
	d.names.add(&d.names.names, p.Variant, maxInternedNames)
	return p, true
}

// roleName returns the constant for a known role, else a copy of b.
func roleName(b []byte) string {
	switch string(b) {
	case string(RoleProduction):
		return string(RoleProduction)
	case string(RoleShadow):
		return string(RoleShadow)
	}
	return string(b)
}

// fastAttributes reads the attributes object (or null): string values only, within
// the limits; ok is false for anything the strict path might refuse.
func (d *Decoder) fastAttributes(s *fastScanner) (map[string]string, bool) {
	if s.null() {
		return nil, true
	}
	var attrs map[string]string
	ok := s.members(func(key []byte) bool {
		v, ok := s.str()
		if !ok {
			return false
		}
		if attrs == nil {
			attrs = make(map[string]string, 4)
		}
		if _, dup := attrs[string(key)]; dup || len(attrs) >= d.cfg.MaxAttributes {
			return false
		}
		k, val := d.names.lookup(key), d.names.lookupValue(v)
		if d.checkAttribute("", k, val) != nil {
			return false
		}
		attrs[k] = val
		d.names.add(&d.names.names, k, maxInternedNames)
		d.names.add(&d.names.values, val, maxInternedValues)
		return true
	})
	return attrs, ok
}

// fastLabel is fastPrediction for labels.
func (d *Decoder) fastLabel(line []byte) (Label, bool) {
	if !utf8.Valid(line) {
		return Label{}, false
	}
	var (
		w          labelMembers
		id, source []byte
		seen       int
	)
	s := fastScanner{b: line}
	s.space()
	ok := s.members(func(key []byte) bool {
		var f int
		var ok bool
		switch string(key) {
		case "inference_id":
			f = fInferenceID
			id, _, ok = s.optString()
		case "source":
			f = fSource
			source, _, ok = s.optString()
		case "label":
			f = fLabel
			start := s.i
			switch {
			case len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true":
				s.i += 4
			case len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false":
				s.i += 5
			default:
				return false
			}
			w.label, ok = s.b[start:s.i], true
		case "time":
			f = fTime
			w.time, ok = s.timeValue()
		default:
			return false
		}
		if seen&f != 0 {
			return false
		}
		seen |= f
		return ok
	})
	if !ok || !s.end() {
		return Label{}, false
	}
	w.id, w.source = string(id), d.names.lookupValue(source)
	l, rej := d.labelFields(&w)
	if rej != nil {
		return Label{}, false
	}
	return l, true
}

// internTable hands out one string per distinct variant name, attribute key and
// (low-cardinality) attribute value, so the fast path does not allocate them per
// line. It is read without locks; it stops growing at its caps, after which new
// strings are allocated as usual.
type internTable struct {
	mu     sync.Mutex
	names  atomic.Pointer[map[string]string]
	values atomic.Pointer[map[string]string]
}

const (
	maxInternedNames  = 512
	maxInternedValues = 4096
)

// lookup returns the interned name equal to b, or b as a new string.
func (t *internTable) lookup(b []byte) string { return find(&t.names, b) }

// lookupValue is lookup for attribute values.
func (t *internTable) lookupValue(b []byte) string { return find(&t.values, b) }

func find(p *atomic.Pointer[map[string]string], b []byte) string {
	if m := p.Load(); m != nil {
		if v, ok := (*m)[string(b)]; ok {
			return v
		}
	}
	return string(b)
}

// add adds s to a table, unless it holds it or is full: the table is copied (tables
// are small, stop growing at max, and are read far more often than added to).
func (t *internTable) add(p *atomic.Pointer[map[string]string], s string, max int) {
	old := p.Load()
	if old != nil {
		if _, ok := (*old)[s]; ok || len(*old) >= max {
			return
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old = p.Load()
	if old != nil {
		if _, ok := (*old)[s]; ok || len(*old) >= max {
			return
		}
	}
	m := make(map[string]string, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[s] = s
	p.Store(&m)
}

func lenOf(m *map[string]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
