package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A SageMaker Data Capture record, one per line of a capture file:
//
//	{"captureData":{
//	   "endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"...","encoding":"CSV"},
//	   "endpointOutput":{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT","data":"0.02","encoding":"CSV"}},
//	 "eventMetadata":{"eventId":"aaaa-...","inferenceId":"txn-1","inferenceTime":"2022-02-14T17:25:49Z"},
//	 "eventVersion":"0"}
//
// encoding is CSV or JSON when the content type was listed in the endpoint's
// CaptureContentTypeHeader (data is then the payload as text), else BASE64.
// inferenceId is present only when the caller passed InferenceId to InvokeEndpoint.
type captureData struct {
	EndpointInput  *captureStream `json:"endpointInput"`
	EndpointOutput *captureStream `json:"endpointOutput"`
}

type captureStream struct {
	ObservedContentType string  `json:"observedContentType"`
	Mode                string  `json:"mode"`
	Data                *string `json:"data"`
	Encoding            string  `json:"encoding"`
}

type eventMetadata struct {
	EventID       string          `json:"eventId"`
	InferenceID   string          `json:"inferenceId"`
	InferenceTime json.RawMessage `json:"inferenceTime"`
}

const (
	fieldInput  = "captureData.endpointInput"
	fieldOutput = "captureData.endpointOutput"
)

func (d *Decoder) fromCapture(w *wirePrediction) (Prediction, *Rejection) {
	var p Prediction
	dc := d.cfg.DataCapture
	if w.CaptureData == nil {
		return p, reject(ClassMissingField, "captureData", "missing (the decoder's Format is datacapture)")
	}
	if w.EventMetadata == nil {
		return p, reject(ClassMissingField, "eventMetadata", "missing")
	}
	meta := w.EventMetadata
	field, id := "eventMetadata.inferenceId", meta.InferenceID
	if id == "" {
		field, id = "eventMetadata.eventId", meta.EventID
	}
	if id == "" {
		return p, reject(ClassMissingField, "eventMetadata.inferenceId", "missing, and so is eventMetadata.eventId")
	}
	if rej := checkInferenceID(field, id); rej != nil {
		return p, rej
	}
	p.InferenceID = id
	if w.CaptureData.EndpointOutput == nil {
		return p, reject(ClassMissingField, fieldOutput,
			"missing: verdict needs the model's output (capture mode Output or InputAndOutput)")
	}
	out, rej := capturePayload(fieldOutput, w.CaptureData.EndpointOutput)
	if rej != nil {
		return p, rej
	}
	p.Variant = dc.Variant
	known := ""
	if dc.Fleets != nil {
		known, _ = dc.Fleets.Variant(id)
	}
	switch {
	case known != "":
		// The application's record of which model served the request.
		p.Variant = known
	case d.variantSel != nil:
		field, payload := fieldOutput, out
		if d.variantSel.input {
			if w.CaptureData.EndpointInput == nil {
				return p, reject(ClassMissingField, fieldInput,
					"missing: the variant is read from the request (%s, VERDICT_CAPTURE_VARIANT_SELECTOR); capture mode Input or InputAndOutput records it", d.variantSel)
			}
			field = fieldInput
			if payload, rej = capturePayload(fieldInput, w.CaptureData.EndpointInput); rej != nil {
				return p, rej
			}
		}
		v, reason := selectText(payload, d.variantSel.sel)
		if reason != "" {
			return p, reject(ClassInvalidField, field+".data", "variant (%s, VERDICT_CAPTURE_VARIANT_SELECTOR): %s", d.variantSel, reason)
		}
		p.Variant = strings.TrimSpace(v)
	}
	if p.Variant == "" {
		return p, reject(ClassMissingField, "variant",
			"Data Capture records do not name their variant: it comes from the capture file's S3 key "+
				"({endpoint}/{variant}/yyyy/mm/dd/hh/, read with VERDICT_SOURCES=s3 or verdict replay --captures), "+
				"from VERDICT_CAPTURE_VARIANT, from the output or the request with VERDICT_CAPTURE_VARIANT_SELECTOR, "+
				"or from the application's record with VERDICT_CAPTURE_VARIANT_MAP")
	}
	if rej := d.checkVariant("variant", p.Variant); rej != nil {
		return p, rej
	}
	p.Role = dc.Role
	if p.Role == "" {
		p.Role = d.defaultRole(p.Variant)
	}
	t, rej := d.eventTime("eventMetadata.inferenceTime", meta.InferenceTime)
	if rej != nil {
		return p, rej
	}
	p.Time = t
	p.Threshold = d.threshold(p.Variant)

	score, rej := d.captureScore(out)
	if rej != nil {
		return p, rej
	}
	p.Score = score

	if len(d.attrs) > 0 {
		if w.CaptureData.EndpointInput == nil {
			return p, reject(ClassMissingField, fieldInput,
				"missing: attributes are configured (VERDICT_CAPTURE_ATTRIBUTES) but the record has no input")
		}
		in, rej := capturePayload(fieldInput, w.CaptureData.EndpointInput)
		if rej != nil {
			return p, rej
		}
		attrs, rej := d.captureAttributes(in)
		if rej != nil {
			return p, rej
		}
		p.Attributes = attrs
	}
	// Last: a line rejected for another reason takes no variant slot.
	if rej := d.admitVariant("variant", p.Variant); rej != nil {
		return p, rej
	}
	return p, nil
}

// capturePayload returns the captured text of one side of the exchange, decoding
// base64 when the capture encoded it.
func capturePayload(field string, s *captureStream) ([]byte, *Rejection) {
	payload, rej := captureBytes(field, s)
	if rej != nil {
		return nil, rej
	}
	if !utf8.Valid(payload) {
		return nil, reject(ClassInvalidField, field+".data", "payload is not valid UTF-8 text")
	}
	return payload, nil
}

// captureBytes returns the captured bytes of one side of the exchange, decoding
// base64 when the capture encoded it; binary payloads are kept as they are.
func captureBytes(field string, s *captureStream) ([]byte, *Rejection) {
	if s.Data == nil {
		return nil, reject(ClassMissingField, field+".data", "missing")
	}
	switch enc := strings.ToUpper(s.Encoding); enc {
	case "BASE64":
		b, err := base64.StdEncoding.DecodeString(*s.Data)
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(*s.Data)
		}
		if err != nil {
			return nil, reject(ClassInvalidField, field+".data", "encoding is BASE64 but data is not valid base64: %v", err)
		}
		return b, nil
	case "CSV", "JSON", "":
		return []byte(*s.Data), nil
	}
	return nil, reject(ClassInvalidField, field+".encoding", "%s is not one of BASE64, CSV, JSON", quote(s.Encoding))
}

// CapturedExchange is one request to a SageMaker endpoint and its response, as Data
// Capture recorded them: what a load test replays and compares against.
type CapturedExchange struct {
	// InferenceID is eventMetadata.inferenceId, or eventId without one.
	InferenceID string
	// Input is the request body (base64 undone; binary payloads kept as they are),
	// InputContentType its observedContentType.
	Input            []byte
	InputContentType string
	// Output is the production response body, nil when the capture has no output
	// (capture mode Input only); OutputContentType its observedContentType.
	Output            []byte
	OutputContentType string
}

// DecodeCapturedExchange reads one Data Capture record's request and, when captured,
// its response. The record needs captureData.endpointInput; the rejection names the
// field at fault.
func DecodeCapturedExchange(line []byte) (CapturedExchange, error) {
	var ex CapturedExchange
	if rej := checkJSONLine(line); rej != nil {
		return ex, rej
	}
	var w wirePrediction
	if err := json.Unmarshal(line, &w); err != nil {
		return ex, unmarshalRejection(err)
	}
	if w.CaptureData == nil {
		return ex, reject(ClassMissingField, "captureData", "missing: not a SageMaker Data Capture record")
	}
	if w.EventMetadata != nil {
		ex.InferenceID = w.EventMetadata.InferenceID
		if ex.InferenceID == "" {
			ex.InferenceID = w.EventMetadata.EventID
		}
	}
	in := w.CaptureData.EndpointInput
	if in == nil {
		return ex, reject(ClassMissingField, fieldInput, "missing: a load test replays the captured requests (capture mode Input)")
	}
	b, rej := captureBytes(fieldInput, in)
	if rej != nil {
		return ex, rej
	}
	ex.Input, ex.InputContentType = b, in.ObservedContentType
	if out := w.CaptureData.EndpointOutput; out != nil {
		b, rej := captureBytes(fieldOutput, out)
		if rej != nil {
			return ex, rej
		}
		ex.Output, ex.OutputContentType = b, out.ObservedContentType
	}
	return ex, nil
}

// CaptureScore reads the score from an endpoint's response body with the configured
// DataCapture.Score selector, as the decoder does for endpointOutput.
func (d *Decoder) CaptureScore(output []byte) (float64, error) {
	if !utf8.Valid(output) {
		return 0, reject(ClassInvalidField, fieldOutput+".data", "payload is not valid UTF-8 text")
	}
	f, rej := d.captureScore(output)
	if rej != nil {
		return 0, rej
	}
	return f, nil
}

// CaptureAttributes reads the configured DataCapture.Attributes from a request body,
// as the decoder does for endpointInput.
func (d *Decoder) CaptureAttributes(input []byte) (map[string]string, error) {
	if !utf8.Valid(input) {
		return nil, reject(ClassInvalidField, fieldInput+".data", "payload is not valid UTF-8 text")
	}
	attrs, rej := d.captureAttributes(input)
	if rej != nil {
		return nil, rej
	}
	return attrs, nil
}

// captureScore reads the score from the output payload with the configured selector.
func (d *Decoder) captureScore(out []byte) (float64, *Rejection) {
	const field = fieldOutput + ".data"
	sel := d.score
	var text string
	switch {
	case sel.path != nil:
		v, err := selectJSON(out, sel.path)
		if err != nil {
			return 0, reject(ClassInvalidField, field, "score (%s): %v", sel, err)
		}
		switch v := v.(type) {
		case json.Number:
			text = v.String()
		case string:
			text = v
		default:
			return 0, reject(ClassInvalidField, field, "score (%s) is %s, want a number", sel, describeJSON(v))
		}
	default:
		rec, err := singleCSVRecord(out)
		if err != nil {
			return 0, reject(ClassInvalidField, field, "%v", err)
		}
		switch {
		case sel.csv:
			if sel.column >= len(rec) {
				return 0, reject(ClassInvalidField, field, "score column %d is missing: the record has %d column(s)", sel.column, len(rec))
			}
			text = rec[sel.column]
		case len(rec) != 1:
			return 0, reject(ClassInvalidField, field,
				"want a single number, got %d columns (set VERDICT_CAPTURE_SCORE, e.g. csv:1 or json:score)", len(rec))
		default:
			text = rec[0]
		}
	}
	text = strings.TrimSpace(text)
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, reject(ClassInvalidField, field, "score %s is not a number", quote(text))
	}
	if rej := checkUnit(field, f); rej != nil {
		rej.Reason = field + ": score " + strings.TrimPrefix(rej.Reason, field+": ")
		return 0, rej
	}
	return f, nil
}

// selectText reads a string or number from a payload with a selector (the whole
// payload's single CSV value for the plain selector). A non-empty reason says why it
// could not; the caller names the field.
func selectText(payload []byte, sel selector) (string, string) {
	if sel.path != nil {
		v, err := selectJSON(payload, sel.path)
		if err != nil {
			return "", err.Error()
		}
		switch v := v.(type) {
		case string:
			return v, ""
		case json.Number:
			return v.String(), ""
		}
		return "", describeJSON(v) + ", want a string or number"
	}
	rec, err := singleCSVRecord(payload)
	if err != nil {
		return "", err.Error()
	}
	col := sel.column
	if !sel.csv {
		col = 0
	}
	if col >= len(rec) {
		return "", fmt.Sprintf("column %d is missing: the record has %d column(s)", col, len(rec))
	}
	return rec[col], ""
}

// captureAttributes pulls the configured attributes from the input payload. A JSON key
// that is absent or null leaves its attribute out; a CSV column past the end of the
// record is an error (the record does not have the configured layout).
func (d *Decoder) captureAttributes(in []byte) (map[string]string, *Rejection) {
	const field = fieldInput + ".data"
	var (
		rec     []string
		doc     any
		parsedC bool
		parsedJ bool
	)
	attrs := make(map[string]string, len(d.attrs))
	for _, a := range d.attrs {
		var value string
		if a.sel.csv {
			if !parsedC {
				var err error
				if rec, err = singleCSVRecord(in); err != nil {
					return nil, reject(ClassInvalidField, field, "attribute %s (%s): %v", a.name, a.sel, err)
				}
				parsedC = true
			}
			if a.sel.column >= len(rec) {
				return nil, reject(ClassInvalidField, field, "attribute %s: column %d is missing: the record has %d column(s)",
					a.name, a.sel.column, len(rec))
			}
			value = strings.TrimSpace(rec[a.sel.column])
		} else {
			if !parsedJ {
				if err := unmarshalNumbers(in, &doc); err != nil {
					return nil, reject(ClassInvalidField, field, "attribute %s (%s): input is not JSON: %v", a.name, a.sel, err)
				}
				parsedJ = true
			}
			v, ok := walkJSON(doc, a.sel.path)
			if !ok || v == nil {
				continue
			}
			switch v := v.(type) {
			case string:
				value = v
			case json.Number:
				value = v.String()
			case bool:
				value = strconv.FormatBool(v)
			default:
				return nil, reject(ClassInvalidField, field, "attribute %s (%s) is %s, want a string or number", a.name, a.sel, describeJSON(v))
			}
		}
		if rej := d.checkAttribute(field, a.name, value); rej != nil {
			rej.Reason = field + ": attribute " + a.name + ": " + strings.TrimPrefix(rej.Reason, field+": ")
			return nil, rej
		}
		attrs[a.name] = value
	}
	if len(attrs) == 0 {
		return nil, nil
	}
	return attrs, nil
}

// selector names a value in a captured payload; see DataCaptureConfig.
type selector struct {
	csv    bool
	column int
	path   []string // JSON path; nil for CSV and for the plain single number
}

type attrSelector struct {
	name string
	sel  selector
}

func (s selector) String() string {
	switch {
	case s.csv:
		return "csv:" + strconv.Itoa(s.column)
	case s.path != nil:
		return "json:" + strings.Join(s.path, ".")
	}
	return "single number"
}

// variantSelector is DataCapture.VariantSelector: a selector and the side of the
// exchange it reads.
type variantSelector struct {
	input bool // endpointInput; else endpointOutput
	sel   selector
}

func (v variantSelector) String() string {
	if v.input {
		return "input:" + v.sel.String()
	}
	return v.sel.String()
}

// parseVariantSelector reads [input:|output:]csv:N or [input:|output:]json:path.
func parseVariantSelector(s string) (variantSelector, error) {
	var v variantSelector
	rest := s
	switch {
	case strings.HasPrefix(s, "input:"):
		v.input, rest = true, strings.TrimPrefix(s, "input:")
	case strings.HasPrefix(s, "output:"):
		rest = strings.TrimPrefix(s, "output:")
	}
	sel, err := parseSelector(rest)
	if err != nil {
		return v, fmt.Errorf("%w (optionally after input: or output:, the side of the exchange)", err)
	}
	v.sel = sel
	return v, nil
}

func parseSelector(s string) (selector, error) {
	switch {
	case strings.HasPrefix(s, "csv:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "csv:"))
		if err != nil || n < 0 || n > 1<<20 {
			return selector{}, fmt.Errorf("%q: csv: wants a 0-based column number, e.g. csv:3", s)
		}
		return selector{csv: true, column: n}, nil
	case strings.HasPrefix(s, "json:"):
		path := strings.Split(strings.TrimPrefix(s, "json:"), ".")
		for _, seg := range path {
			if seg == "" {
				return selector{}, fmt.Errorf("%q: json: wants a dotted path, e.g. json:predictions.0.score", s)
			}
		}
		return selector{path: path}, nil
	}
	return selector{}, fmt.Errorf("%q is neither csv:N nor json:path", s)
}

// singleCSVRecord parses a payload that must hold exactly one CSV record: one
// inference. Batch requests carry several records under one inference id, which
// cannot be joined with per-record labels.
func singleCSVRecord(payload []byte) ([]string, error) {
	r := csv.NewReader(bytes.NewReader(payload))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	rec, err := r.Read()
	if err == io.EOF {
		return nil, errors.New("payload is empty")
	}
	if err != nil {
		return nil, fmt.Errorf("payload is not CSV: %w", err)
	}
	n := 1
	for {
		if _, err := r.Read(); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("payload is not CSV: %w", err)
		}
		n++
	}
	if n > 1 {
		return nil, fmt.Errorf("payload holds %d CSV records, want one per inference", n)
	}
	return rec, nil
}

func unmarshalNumbers(b []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	if rej := checkStrict(b, nil); rej != nil {
		return errors.New(rej.Reason)
	}
	return nil
}

func selectJSON(payload []byte, path []string) (any, error) {
	var doc any
	if err := unmarshalNumbers(payload, &doc); err != nil {
		return nil, fmt.Errorf("payload is not JSON: %w", err)
	}
	v, ok := walkJSON(doc, path)
	if !ok {
		return nil, errors.New("no such value in the payload")
	}
	return v, nil
}

// walkJSON follows path through objects (by key) and arrays (by 0-based index).
func walkJSON(v any, path []string) (any, bool) {
	for _, seg := range path {
		switch node := v.(type) {
		case map[string]any:
			next, ok := node[seg]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(node) {
				return nil, false
			}
			v = node[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func describeJSON(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	}
	return "a number"
}

// CaptureKey is what the S3 key of a Data Capture file says. SageMaker writes
// [prefix/]{endpoint}/{variant}/yyyy/mm/dd/hh/{file}, where the hour folder is the
// hour (UTC) of the captures in the file.
type CaptureKey struct {
	// Prefix is everything before the endpoint folder, with its trailing slash ("" at
	// the bucket's root).
	Prefix   string
	Endpoint string
	Variant  string
	// Hour is the hour folder's time.
	Hour time.Time
	File string
}

// Folder is the key's variant folder: Prefix + Endpoint + "/" + Variant + "/".
func (k CaptureKey) Folder() string { return k.Prefix + k.Endpoint + "/" + k.Variant + "/" }

// ParseCaptureKey reads a Data Capture file's key (an s3:// URL, a key or a local path
// with slashes). ok is false when the key does not have the layout.
func ParseCaptureKey(key string) (k CaptureKey, ok bool) {
	parts := strings.Split(strings.TrimPrefix(key, "s3://"), "/")
	n := len(parts)
	if n < 7 {
		return k, false
	}
	for i, want := range []int{4, 2, 2, 2} { // yyyy, mm, dd, hh
		seg := parts[n-5+i]
		if len(seg) != want || strings.Trim(seg, "0123456789") != "" {
			return k, false
		}
	}
	hour, err := time.Parse("2006/01/02/15", strings.Join(parts[n-5:n-1], "/"))
	if err != nil {
		return k, false
	}
	k = CaptureKey{Endpoint: parts[n-7], Variant: parts[n-6], Hour: hour, File: parts[n-1]}
	if k.Endpoint == "" || k.Variant == "" || k.File == "" {
		return CaptureKey{}, false
	}
	if n > 7 {
		k.Prefix = strings.Join(parts[:n-7], "/") + "/"
	}
	return k, true
}
