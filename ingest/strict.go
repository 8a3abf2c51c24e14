package ingest

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf16"
)

// encoding/json is lenient where a lenient reader lets distinct input mean the same
// thing: a duplicate key keeps the last value, a key matches a field ignoring case
// ("INFERENCE_ID" overrides "inference_id"), and an escaped lone UTF-16 surrogate
// becomes U+FFFD (so "\ud800" and "\ud801" are the same id). checkStrict refuses
// those lines; it runs after encoding/json accepted the syntax.

// schema is what checkStrict knows of an object: its fields (matched exactly, by
// case), and the schemas of fields that hold objects. A nil schema is an object whose
// keys are data (attributes) or unknown to verdict.
type schema struct {
	fields map[string]*schema
	// lower maps a field name in lower case to the field, to name the mismatch.
	lower map[string]string
}

func newSchema(fields map[string]*schema) *schema {
	s := &schema{fields: fields, lower: map[string]string{}}
	for f := range fields {
		s.lower[strings.ToLower(f)] = f
	}
	return s
}

var (
	captureStreamSchema = newSchema(map[string]*schema{"observedContentType": nil, "mode": nil, "data": nil, "encoding": nil})
	predictionSchema    = newSchema(map[string]*schema{
		"inference_id": nil, "variant": nil, "role": nil, "score": nil, "threshold": nil, "time": nil,
		"attributes": nil, "latency_ms": nil, "error": nil,
		"captureData":   newSchema(map[string]*schema{"endpointInput": captureStreamSchema, "endpointOutput": captureStreamSchema}),
		"eventMetadata": newSchema(map[string]*schema{"eventId": nil, "inferenceId": nil, "inferenceTime": nil}),
	})
	labelSchema = newSchema(map[string]*schema{"inference_id": nil, "label": nil, "time": nil, "source": nil})
)

// checkStrict rejects a line (valid JSON) with a duplicate key in any object, a key
// that matches one of the schema's fields only when case is ignored, or a string
// with an escaped lone surrogate. s may be nil (no fields known).
func checkStrict(line []byte, s *schema) *Rejection {
	sc := strictScanner{data: line}
	sc.skipSpace()
	return sc.value("", nil, s)
}

type strictScanner struct {
	data []byte
	pos  int
}

func (sc *strictScanner) skipSpace() {
	for sc.pos < len(sc.data) {
		switch sc.data[sc.pos] {
		case ' ', '\t', '\r', '\n':
			sc.pos++
		default:
			return
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// value checks the value at pos, member key of the object at parent (key nil: the
// value is at parent itself). Paths are built only for objects, arrays and errors.
func (sc *strictScanner) value(parent string, key []byte, s *schema) *Rejection {
	if sc.pos >= len(sc.data) {
		return nil
	}
	path := func() string {
		if key == nil {
			return parent
		}
		return join(parent, string(key))
	}
	switch sc.data[sc.pos] {
	case '{':
		return sc.object(path(), s)
	case '[':
		sc.pos++
		at := path()
		for i := 0; ; i++ {
			sc.skipSpace()
			if sc.pos >= len(sc.data) || sc.data[sc.pos] == ']' {
				sc.pos++
				return nil
			}
			if rej := sc.value(at, []byte(strconv.Itoa(i)), nil); rej != nil {
				return rej
			}
			sc.skipSpace()
			if sc.pos < len(sc.data) && sc.data[sc.pos] == ',' {
				sc.pos++
			}
		}
	case '"':
		_, bad := sc.str()
		if bad != 0 {
			return surrogateRejection(path(), bad)
		}
		return nil
	default:
		for sc.pos < len(sc.data) && !strings.ContainsRune(",]} \t\r\n", rune(sc.data[sc.pos])) {
			sc.pos++
		}
		return nil
	}
}

func (sc *strictScanner) object(path string, s *schema) *Rejection {
	sc.pos++               // {
	var seenBuf [16][]byte // keys so far; objects are small, a linear scan beats a map
	seen := seenBuf[:0]
	for {
		sc.skipSpace()
		if sc.pos >= len(sc.data) || sc.data[sc.pos] == '}' {
			sc.pos++
			return nil
		}
		key, bad := sc.str()
		if bad != 0 {
			return surrogateRejection(path, bad)
		}
		for _, k := range seen {
			if bytes.Equal(k, key) {
				return reject(ClassMalformedJSON, join(path, string(key)), "duplicate key: an object may name a key once (which value counts would depend on the reader)")
			}
		}
		seen = append(seen, key)
		var inner *schema
		if s != nil {
			known, isField := s.fields[string(key)]
			if !isField {
				if want, folds := s.lower[strings.ToLower(string(key))]; folds {
					return reject(ClassInvalidField, join(path, string(key)), "keys are case-sensitive: %s is not %s", quote(string(key)), quote(want))
				}
			}
			inner = known
		}
		sc.skipSpace()
		sc.pos++ // :
		sc.skipSpace()
		if rej := sc.value(path, key, inner); rej != nil {
			return rej
		}
		sc.skipSpace()
		if sc.pos < len(sc.data) && sc.data[sc.pos] == ',' {
			sc.pos++
		}
	}
}

// str reads the string at pos; it returns it as written when it has no escapes (keys
// are compared so) or decoded, or the first lone surrogate escaped in it.
func (sc *strictScanner) str() ([]byte, rune) {
	sc.pos++ // opening quote
	start := sc.pos
	escaped := false
	for sc.pos < len(sc.data) {
		switch sc.data[sc.pos] {
		case '"':
			raw := sc.data[start:sc.pos]
			sc.pos++
			if !escaped {
				return raw, 0
			}
			s, _ := jsonString(sc.data[start-1 : sc.pos]) // encoding/json accepted it
			return []byte(s), 0
		case '\\':
			escaped = true
			if sc.pos+1 < len(sc.data) && sc.data[sc.pos+1] == 'u' {
				if bad := sc.unicodeEscape(); bad != 0 {
					return nil, bad
				}
				continue
			}
			sc.pos += 2
		default:
			sc.pos++
		}
	}
	return nil, 0
}

// unicodeEscape moves past the \uXXXX escape at pos (and its pair, for a
// surrogate); it returns the surrogate when it is a lone one.
func (sc *strictScanner) unicodeEscape() rune {
	r, ok := sc.hex4(sc.pos + 2)
	if !ok {
		sc.pos += 2
		return 0
	}
	sc.pos += 6
	if !utf16.IsSurrogate(r) {
		return 0
	}
	if r < 0xDC00 && sc.pos+1 < len(sc.data) && sc.data[sc.pos] == '\\' && sc.data[sc.pos+1] == 'u' {
		if lo, ok := sc.hex4(sc.pos + 2); ok && lo >= 0xDC00 && lo <= 0xDFFF {
			sc.pos += 6
			return 0
		}
	}
	return r
}

func surrogateRejection(field string, r rune) *Rejection {
	return reject(ClassInvalidField, field, "invalid escape \\u%04x: a lone UTF-16 surrogate is not a character (decoders turn it into U+FFFD, so distinct values would collide)", r)
}

func (sc *strictScanner) hex4(at int) (rune, bool) {
	if at+4 > len(sc.data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(sc.data[at:at+4]), 16, 32)
	return rune(v), err == nil
}
