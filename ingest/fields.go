package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Event times must fall in [2000-01-01, 2100-01-01) UTC. The bounds catch zero times
// and unit mistakes, and make numeric times unambiguous: Unix seconds in range are
// below 4.2e9, Unix milliseconds in range are above 9.4e11.
const (
	minEventUnix = 946684800  // 2000-01-01T00:00:00Z
	maxEventUnix = 4102444800 // 2100-01-01T00:00:00Z
)

// checkJSONLine rejects what encoding/json would accept or mangle silently: invalid
// UTF-8 (json replaces it with U+FFFD) and a bare null.
func checkJSONLine(line []byte) *Rejection {
	if !utf8.Valid(line) {
		off := 0
		for off < len(line) {
			r, n := utf8.DecodeRune(line[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return reject(ClassMalformedJSON, "", "line is not valid UTF-8 (bad byte at offset %d)", off)
	}
	if bytes.Equal(bytes.TrimSpace(line), []byte("null")) {
		return reject(ClassMalformedJSON, "", "line is null, want a JSON object")
	}
	return nil
}

// unmarshalRejection turns an encoding/json error into a Rejection naming the field.
func unmarshalRejection(err error) *Rejection {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return reject(ClassMalformedJSON, "", "line is a JSON %s, want an object", te.Value)
		}
		if num, ok := strings.CutPrefix(te.Value, "number "); ok && te.Type.Kind() == reflect.Float64 {
			return reject(ClassInvalidField, te.Field, "%s is not a finite number", num)
		}
		return reject(ClassInvalidField, te.Field, "want %s, got %s", jsonTypeOf(te.Type), jsonArticle(te.Value))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return reject(ClassMalformedJSON, "", "invalid JSON at byte %d: %v", se.Offset, err)
	}
	return reject(ClassMalformedJSON, "", "invalid JSON: %v", err)
}

func jsonTypeOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

func jsonArticle(value string) string {
	switch value {
	case "array", "object":
		return "an " + value
	case "bool":
		return "a boolean"
	}
	return "a " + value
}

// jsonKind names the JSON type of a raw value for reasons.
func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// present reports whether a raw JSON member was given with a non-null value.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// jsonString decodes a raw JSON string; raw must be a JSON string already validated
// by encoding/json. Strings without escapes, the common case, skip the decoder.
func jsonString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// checkInferenceID validates a join key.
func checkInferenceID(field, id string) *Rejection {
	switch {
	case id == "":
		return reject(ClassMissingField, field, "missing or empty")
	case len(id) > MaxInferenceIDBytes:
		return reject(ClassLimitExceeded, field, "%d bytes, over the %d-byte limit", len(id), MaxInferenceIDBytes)
	case strings.IndexByte(id, 0) >= 0:
		return reject(ClassInvalidField, field, "%s contains NUL, which inference ids may not", quote(id))
	}
	return nil
}

// variantProblem says what is wrong with a variant name, or "" if nothing is.
func variantProblem(v string) string {
	switch {
	case v == "":
		return "empty"
	case len(v) > MaxVariantBytes:
		return fmt.Sprintf("%d bytes, over the %d-byte limit", len(v), MaxVariantBytes)
	case strings.IndexByte(v, 0) >= 0:
		return fmt.Sprintf("%s contains NUL, which variant names may not", quote(v))
	}
	return ""
}

// checkVariant validates a variant name against the limits and the pinned set.
func (d *Decoder) checkVariant(field, v string) *Rejection {
	switch {
	case v == "":
		return reject(ClassMissingField, field, "missing or empty")
	case len(v) > MaxVariantBytes:
		return reject(ClassLimitExceeded, field, "%d bytes, over the %d-byte limit", len(v), MaxVariantBytes)
	case strings.IndexByte(v, 0) >= 0:
		return reject(ClassInvalidField, field, "%s contains NUL, which variant names may not", quote(v))
	}
	if d.pinned != nil {
		if _, ok := d.pinned[v]; !ok {
			return reject(ClassUnknownVariant, field, "%s is not one of the pinned variants (%s)", quote(v), d.pinnedList)
		}
	}
	return nil
}

// checkUnit validates a probability-like value: finite and in [0, 1].
func checkUnit(field string, f float64) *Rejection {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return reject(ClassInvalidField, field, "%v is not a finite number", f)
	}
	if f < 0 || f > 1 {
		return reject(ClassInvalidField, field, "%s is outside [0, 1]", strconv.FormatFloat(f, 'g', -1, 64))
	}
	return nil
}

// parseTime reads an event time: an RFC 3339 string, or a JSON number of Unix seconds
// or Unix milliseconds (told apart by magnitude; see minEventUnix).
func parseTime(field string, raw json.RawMessage) (time.Time, *Rejection) {
	if !present(raw) {
		return time.Time{}, reject(ClassMissingField, field, "missing")
	}
	if s, ok := jsonString(raw); ok {
		return parseTimeString(field, s)
	}
	if kind := jsonKind(raw); kind != "a number" {
		return time.Time{}, reject(ClassInvalidField, field, "want an RFC 3339 string or a Unix time in seconds or milliseconds, got %s", kind)
	}
	num := string(bytes.TrimSpace(raw))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(f, 0) {
		return time.Time{}, reject(ClassInvalidField, field, "%s is not a finite number", quote(num))
	}
	var t time.Time
	switch {
	case f >= minEventUnix && f < maxEventUnix:
		sec, frac := math.Modf(f)
		t = time.Unix(int64(sec), int64(math.Round(frac*1e9)))
	case f >= minEventUnix*1e3 && f < maxEventUnix*1e3:
		ms, frac := math.Modf(f)
		t = time.UnixMilli(int64(ms)).Add(time.Duration(math.Round(frac * 1e6)))
	default:
		return time.Time{}, reject(ClassInvalidField, field,
			"%s is neither Unix seconds nor Unix milliseconds between 2000 and 2100", num)
	}
	return t.UTC(), nil
}

// eventTime reads an event time (parseTime) and applies the clock rules to it
// (checkEventTime).
func (d *Decoder) eventTime(field string, raw json.RawMessage) (time.Time, *Rejection) {
	t, rej := parseTime(field, raw)
	if rej != nil {
		return t, rej
	}
	return t, d.checkEventTime(field, t)
}

// checkEventTime applies the clock rules: not further ahead than MaxClockSkew (a
// prediction from the future would sit in the current window and never leave it, a
// label from the future would lock the outcome against the real one), and not older
// than MaxAge (its record may already be deleted, so it would count again).
func (d *Decoder) checkEventTime(field string, t time.Time) *Rejection {
	if d.cfg.MaxClockSkew <= 0 && d.cfg.MaxAge <= 0 {
		return nil
	}
	now := d.cfg.Now()
	if skew := d.cfg.MaxClockSkew; skew > 0 && t.After(now.Add(skew)) {
		return reject(ClassFutureTime, field, "%s is %s ahead of this server's clock, more than the accepted skew of %s (VERDICT_MAX_CLOCK_SKEW); check the producer's clock and time unit",
			t.Format(time.RFC3339Nano), t.Sub(now).Round(time.Second), skew)
	}
	if age := d.cfg.MaxAge; age > 0 && t.Before(now.Add(-age)) {
		return reject(ClassTooOld, field, "%s is older than the retention of %s (VERDICT_RETENTION): its join record may already be deleted, so it could count twice",
			t.Format(time.RFC3339Nano), age)
	}
	return nil
}

func parseTimeString(field, s string) (time.Time, *Rejection) {
	if s == "" {
		return time.Time{}, reject(ClassMissingField, field, "empty")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, reject(ClassInvalidField, field, "%s is not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z)", quote(s))
	}
	if sec := t.Unix(); sec < minEventUnix || sec >= maxEventUnix {
		return time.Time{}, reject(ClassInvalidField, field, "%s is outside the years 2000 to 2099", quote(s))
	}
	return t.UTC(), nil
}

// clip cuts informational text to n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
