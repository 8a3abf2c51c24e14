package ingest

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// maxInfoBytes caps informational text (a prediction's error, a label's source).
// Longer text is cut, not rejected: it does not change how the event counts.
const maxInfoBytes = 1024

// wirePrediction is one prediction line as sent: verdict JSON, or a SageMaker Data
// Capture record (captureData and eventMetadata). Pointers and raw members tell
// "absent" from "zero"; encoding/json reports wrong types with the field's path.
type wirePrediction struct {
	InferenceID *string                    `json:"inference_id"`
	Variant     *string                    `json:"variant"`
	Role        *string                    `json:"role"`
	Score       *float64                   `json:"score"`
	Threshold   *float64                   `json:"threshold"`
	Time        json.RawMessage            `json:"time"`
	Attributes  map[string]json.RawMessage `json:"attributes"`
	LatencyMS   *float64                   `json:"latency_ms"`
	Error       *string                    `json:"error"`

	CaptureData   *captureData   `json:"captureData"`
	EventMetadata *eventMetadata `json:"eventMetadata"`
}

type wireLabel struct {
	InferenceID *string         `json:"inference_id"`
	Label       json.RawMessage `json:"label"`
	Time        json.RawMessage `json:"time"`
	Source      *string         `json:"source"`
}

// decodePrediction decodes one line: the fast path (fast.go) for the common verdict
// JSON prediction, else the strict path, which alone decides and words rejections.
func (d *Decoder) decodePrediction(line []byte) (Prediction, *Rejection) {
	if d.cfg.Format != FormatDataCapture && !d.strictOnly {
		if p, ok := d.fastPrediction(line); ok {
			return p, nil
		}
	}
	return d.strictPrediction(line)
}

func (d *Decoder) strictPrediction(line []byte) (Prediction, *Rejection) {
	if rej := checkJSONLine(line); rej != nil {
		return Prediction{}, rej
	}
	var w wirePrediction
	if err := json.Unmarshal(line, &w); err != nil {
		return Prediction{}, unmarshalRejection(err)
	}
	if rej := checkStrict(line, predictionSchema); rej != nil {
		return Prediction{}, rej
	}
	switch d.cfg.Format {
	case FormatDataCapture:
		return d.fromCapture(&w)
	case FormatAuto:
		if w.CaptureData != nil {
			return d.fromCapture(&w)
		}
	}
	return d.fromVerdict(&w)
}

func (d *Decoder) fromVerdict(w *wirePrediction) (Prediction, *Rejection) {
	f := w.fields()
	p, rej := d.verdictFields(&f)
	if rej != nil {
		return p, rej
	}
	attrs, rej := d.attributes(w.Attributes)
	if rej != nil {
		return p, rej
	}
	p.Attributes = attrs
	// Last: a line rejected for another reason takes no variant slot.
	if rej := d.admitVariant("variant", p.Variant); rej != nil {
		return p, rej
	}
	return p, nil
}

// predictionFields are a verdict JSON prediction's members but its attributes, as
// read: has* says which were given (not null). Values, not pointers, so the fast path
// fills one on the stack.
type predictionFields struct {
	id, variant, role, errText                                             string
	score, threshold, latencyMS                                            float64
	hasID, hasVariant, hasRole, hasErr, hasScore, hasThreshold, hasLatency bool
	time                                                                   json.RawMessage
	// capture is set when the line has a captureData member.
	capture bool
}

func (w *wirePrediction) fields() predictionFields {
	f := predictionFields{time: w.Time, capture: w.CaptureData != nil}
	str := func(p *string, v *string, has *bool) {
		if p != nil {
			*v, *has = *p, true
		}
	}
	num := func(p *float64, v *float64, has *bool) {
		if p != nil {
			*v, *has = *p, true
		}
	}
	str(w.InferenceID, &f.id, &f.hasID)
	str(w.Variant, &f.variant, &f.hasVariant)
	str(w.Role, &f.role, &f.hasRole)
	str(w.Error, &f.errText, &f.hasErr)
	num(w.Score, &f.score, &f.hasScore)
	num(w.Threshold, &f.threshold, &f.hasThreshold)
	num(w.LatencyMS, &f.latencyMS, &f.hasLatency)
	return f
}

// verdictFields validates and carries over every field of a verdict JSON prediction
// but its attributes, and admits no variant.
func (d *Decoder) verdictFields(w *predictionFields) (Prediction, *Rejection) {
	var p Prediction
	if !w.hasID && w.capture {
		return p, reject(ClassMissingField, "inference_id",
			"missing (the line looks like a SageMaker Data Capture record, but the decoder's Format is verdict)")
	}
	if rej := checkInferenceID("inference_id", w.id); rej != nil {
		return p, rej
	}
	p.InferenceID = w.id
	if rej := d.checkVariant("variant", w.variant); rej != nil {
		return p, rej
	}
	p.Variant = w.variant
	if !w.hasRole {
		p.Role = d.defaultRole(p.Variant)
	} else {
		switch r := Role(w.role); r {
		case RoleProduction, RoleShadow:
			p.Role = r
		default:
			return p, reject(ClassInvalidField, "role", "%s is not one of production, shadow", quote(w.role))
		}
	}
	t, rej := d.eventTime("time", w.time)
	if rej != nil {
		return p, rej
	}
	p.Time = t
	if w.hasErr && w.errText != "" {
		p.Error = clip(w.errText, maxInfoBytes)
	}
	switch {
	case w.hasScore:
		if rej := checkUnit("score", w.score); rej != nil {
			return p, rej
		}
		p.Score = w.score
	case p.Error == "":
		return p, reject(ClassMissingField, "score", "missing (only a prediction with an error may omit it)")
	}
	p.Threshold = d.threshold(p.Variant)
	if w.hasThreshold {
		if rej := checkUnit("threshold", w.threshold); rej != nil {
			return p, rej
		}
		p.Threshold = w.threshold
	}
	if w.hasLatency {
		if l := w.latencyMS; l < 0 || math.IsNaN(l) || math.IsInf(l, 0) {
			return p, reject(ClassInvalidField, "latency_ms", "%s is not a non-negative number", strconv.FormatFloat(l, 'g', -1, 64))
		}
		p.LatencyMS = w.latencyMS
	}
	return p, nil
}

// attributes validates the attributes object: string values only, within the limits.
// When several are bad, the first in key order is reported, so reasons are stable.
func (d *Decoder) attributes(raw map[string]json.RawMessage) (map[string]string, *Rejection) {
	if len(raw) == 0 {
		return nil, nil
	}
	if len(raw) > d.cfg.MaxAttributes {
		return nil, reject(ClassLimitExceeded, "attributes", "%d attributes, over the limit of %d", len(raw), d.cfg.MaxAttributes)
	}
	attrs := make(map[string]string, len(raw))
	var worst *Rejection
	worstKey := ""
	for k, v := range raw {
		var rej *Rejection
		if s, ok := jsonString(v); ok {
			rej = d.checkAttribute("attributes."+k, k, s)
			attrs[k] = s
		} else {
			rej = reject(ClassInvalidField, "attributes."+k, "want a string, got %s", jsonKind(v))
		}
		if rej != nil && (worst == nil || k < worstKey) {
			worst, worstKey = rej, k
		}
	}
	if worst != nil {
		return nil, worst
	}
	return attrs, nil
}

// checkAttribute applies the attribute limits; field names the attribute in the input.
func (d *Decoder) checkAttribute(field, name, value string) *Rejection {
	max := d.cfg.MaxAttributeBytes
	switch {
	case name == "":
		return reject(ClassInvalidField, field, "attribute name is empty")
	case len(name) > max:
		return reject(ClassLimitExceeded, field, "attribute name is %d bytes, over the %d-byte limit", len(name), max)
	case len(value) > max:
		return reject(ClassLimitExceeded, field, "value is %d bytes, over the %d-byte limit", len(value), max)
	case strings.IndexByte(name, 0) >= 0 || strings.IndexByte(value, 0) >= 0:
		return reject(ClassInvalidField, field, "contains NUL")
	}
	return nil
}

// decodeLabel is decodePrediction for labels.
func (d *Decoder) decodeLabel(line []byte) (Label, *Rejection) {
	if !d.strictOnly {
		if l, ok := d.fastLabel(line); ok {
			return l, nil
		}
	}
	return d.strictLabel(line)
}

func (d *Decoder) strictLabel(line []byte) (Label, *Rejection) {
	var l Label
	if rej := checkJSONLine(line); rej != nil {
		return l, rej
	}
	var w wireLabel
	if err := json.Unmarshal(line, &w); err != nil {
		return l, unmarshalRejection(err)
	}
	if rej := checkStrict(line, labelSchema); rej != nil {
		return l, rej
	}
	return d.labelFields(&labelMembers{id: deref(w.InferenceID), source: deref(w.Source), label: w.Label, time: w.Time})
}

// labelMembers are a label's members as read (absent and null strings are empty).
type labelMembers struct {
	id, source  string
	label, time json.RawMessage
}

// labelFields validates and carries over the fields of a label.
func (d *Decoder) labelFields(w *labelMembers) (Label, *Rejection) {
	var l Label
	if rej := checkInferenceID("inference_id", w.id); rej != nil {
		return l, rej
	}
	l.InferenceID = w.id
	positive, rej := parseLabelValue(w.label)
	if rej != nil {
		return l, rej
	}
	l.Positive = positive
	t, rej := d.eventTime("time", w.time)
	if rej != nil {
		return l, rej
	}
	l.Time = t
	l.Source = clip(w.source, maxInfoBytes)
	return l, nil
}

// parseLabelValue accepts the JSON booleans true (positive) and false. Numbers are
// refused: 1 and 0 look safe, but 0.99999999999999999999 parses as 1.
func parseLabelValue(raw json.RawMessage) (bool, *Rejection) {
	if !present(raw) {
		return false, reject(ClassMissingField, "label", "missing")
	}
	switch s := string(raw); s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	detail := jsonKind(raw)
	if s, ok := jsonString(raw); ok {
		detail += " " + quote(s)
	} else if detail == "a number" {
		detail += " " + quote(string(raw))
	}
	return false, reject(ClassInvalidField, "label", "want true (positive) or false, got %s", detail)
}

func (d *Decoder) defaultRole(variant string) Role {
	if r, ok := d.cfg.Roles[variant]; ok {
		return r
	}
	return RoleProduction
}

func (d *Decoder) threshold(variant string) float64 {
	if t, ok := d.cfg.Thresholds[variant]; ok {
		return t
	}
	return d.cfg.DefaultThreshold
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
