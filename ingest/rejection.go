package ingest

import (
	"fmt"
	"strconv"
)

// RejectClass is the stable, machine-readable kind of a rejection. It is the class
// label of verdict_ingest_events_rejected_total, so the set is small and fixed.
type RejectClass string

// Rejection classes.
const (
	// ClassMalformedJSON: the line is not valid UTF-8, not valid JSON, or not a JSON
	// object.
	ClassMalformedJSON RejectClass = "malformed_json"
	// ClassMissingField: a required field is absent, null or empty.
	ClassMissingField RejectClass = "missing_field"
	// ClassInvalidField: a field has the wrong JSON type or a value out of its
	// domain (score outside [0, 1], unparsable time, unknown role, undecodable
	// Data Capture payload, ...).
	ClassInvalidField RejectClass = "invalid_field"
	// ClassUnknownVariant: the variant is not one of the pinned variants.
	ClassUnknownVariant RejectClass = "unknown_variant"
	// ClassLimitExceeded: a field is longer, or has more entries, than allowed
	// (inference id, variant, attribute count, attribute name or value).
	ClassLimitExceeded RejectClass = "limit_exceeded"
	// ClassOversizeLine: the line is longer than DecoderConfig.MaxLineBytes.
	ClassOversizeLine RejectClass = "oversize_line"
	// ClassFutureTime: the event's time is further ahead of the clock than
	// DecoderConfig.MaxClockSkew (a producer's clock or unit mistake).
	ClassFutureTime RejectClass = "future_time"
	// ClassTooOld: the event's time is older than DecoderConfig.MaxAge (the
	// retention): its join record may be gone, so it could count twice.
	ClassTooOld RejectClass = "too_old"
	// ClassMalformedCSV: a line of a CSV label file is not one CSV record, or has
	// fewer columns than its header names.
	ClassMalformedCSV RejectClass = "malformed_csv"
)

// RejectClasses lists every class, for documentation and for pre-initialising metrics.
func RejectClasses() []RejectClass {
	return []RejectClass{
		ClassMalformedJSON, ClassMissingField, ClassInvalidField,
		ClassUnknownVariant, ClassLimitExceeded, ClassOversizeLine, ClassFutureTime, ClassTooOld, ClassMalformedCSV,
	}
}

// Rejection says why one input line was not accepted. It is an error, so single-line
// decoding can return it; errors.As recovers it.
type Rejection struct {
	// Line is the 1-based line number in the input (the element number for a JSON
	// array body); 0 when a single line was decoded on its own.
	Line int `json:"line"`
	// Class is the stable kind of the rejection.
	Class RejectClass `json:"class"`
	// Field is the offending field as a JSON path ("score",
	// "attributes.merchant_category", "eventMetadata.inferenceTime"), empty when the
	// line as a whole is at fault.
	Field string `json:"field,omitempty"`
	// Reason is for humans. It starts with Field when there is one.
	Reason string `json:"reason"`
	// Raw is the start of the rejected line (at most RawKeepBytes), for dead
	// letters. It is not part of the JSON form: an HTTP client has the line already.
	Raw []byte `json:"-"`
	// Size is the length of the whole line in bytes; Raw is cut when Size is larger.
	Size int `json:"-"`
}

// RawKeepBytes is how much of a rejected line Rejection.Raw keeps.
const RawKeepBytes = 1024

func (r Rejection) Error() string {
	prefix := ""
	if r.Line > 0 {
		prefix = "line " + strconv.Itoa(r.Line) + ": "
	}
	return prefix + r.Reason + " (" + string(r.Class) + ")"
}

// reject builds a Rejection whose reason is prefixed with the field name.
func reject(class RejectClass, field, format string, args ...any) *Rejection {
	reason := fmt.Sprintf(format, args...)
	if field != "" {
		reason = field + ": " + reason
	}
	return &Rejection{Class: class, Field: field, Reason: reason}
}

// quote renders a user-supplied value for a reason: quoted, escaped, and cut short so
// a reason never echoes a large payload back.
func quote(s string) string {
	const keep = 64
	if len(s) <= keep {
		return strconv.Quote(s)
	}
	cut := keep
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
