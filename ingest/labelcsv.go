package ingest

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// LabelCSVConfig says how CSV label files, as dispute and review systems export them,
// become labels: a header line naming the columns, then one label per line.
type LabelCSVConfig struct {
	// Columns maps a label field (inference_id, label, time, source) to the header of
	// its column, e.g. inference_id: txn_id. A field not listed is looked for under its
	// own name. Headers match case-insensitively. source is optional.
	Columns map[string]string
	// Values maps values of the label column to positive (true: fraud) or negative
	// (false), e.g. fraud: true, legit: false; they match after trimming,
	// case-insensitively. Empty means true/false and 1/0.
	Values map[string]bool
}

// CSV label fields, in the order they are reported.
var labelCSVFields = []string{"inference_id", "label", "time", "source"}

func (c LabelCSVConfig) check(bad func(field, format string, args ...any)) {
	for _, f := range sortedKeys(c.Columns) {
		if !slices.Contains(labelCSVFields, f) {
			bad(fmt.Sprintf("LabelCSV.Columns[%q]", f), "not a label field (inference_id, label, time, source)")
		}
		if strings.TrimSpace(c.Columns[f]) == "" {
			bad(fmt.Sprintf("LabelCSV.Columns[%q]", f), "empty column name")
		}
	}
	seen := map[string]bool{}
	for _, v := range sortedKeys(c.Values) {
		k := strings.ToLower(strings.TrimSpace(v))
		switch p, dup := seen[k]; {
		case k == "":
			bad("LabelCSV.Values", "an empty label value")
		case dup && p != c.Values[v]:
			bad(fmt.Sprintf("LabelCSV.Values[%q]", v), "maps to both positive and negative (values match case-insensitively)")
		}
		seen[k] = c.Values[v]
	}
}

// labelCSV is the header of one CSV file: where each field's column is.
type labelCSV struct {
	d       *Decoder
	names   map[string]string // field -> header name looked for
	col     map[string]int    // field -> column index
	width   int               // columns in the header
	problem *Rejection        // the header lacks a required column
}

// DecodeLabelsCSV reads a CSV label file from r: a header line, then one label per
// line, mapped by DecoderConfig.LabelCSV. It calls emit as DecodeLabels does. Each
// label is one line (quoted fields may not hold line breaks); time is an RFC 3339
// time or Unix seconds or milliseconds, as in verdict JSON. When the header lacks a
// required column, every line is rejected with that reason.
func (d *Decoder) DecodeLabelsCSV(r io.Reader, batchSize int, emit func(Decoded[Label]) error) error {
	var h *labelCSV
	decode := func(line []byte) (Label, *Rejection) {
		if h == nil {
			h = d.labelCSVHeader(line)
			if h.problem != nil {
				rej := *h.problem
				return Label{}, &rej
			}
			return Label{}, skipLine
		}
		if h.problem != nil {
			rej := *h.problem
			return Label{}, &rej
		}
		return h.decode(line)
	}
	return decodeStream(r, d.cfg.MaxLineBytes, batchSize, decode, emit)
}

// skipLine is what a line decoder returns for a line that is neither an event nor
// rejected (a CSV header).
var skipLine = &Rejection{Class: "skip"}

func csvRecord(line []byte) ([]string, error) {
	if !utf8.Valid(line) {
		return nil, fmt.Errorf("line is not valid UTF-8")
	}
	r := csv.NewReader(bytes.NewReader(line))
	r.FieldsPerRecord = -1
	rec, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("not one CSV record: %w", err)
	}
	return rec, nil
}

func (d *Decoder) labelCSVHeader(line []byte) *labelCSV {
	h := &labelCSV{d: d, names: map[string]string{}, col: map[string]int{}}
	for _, f := range labelCSVFields {
		h.names[f] = f
		if n, ok := d.cfg.LabelCSV.Columns[f]; ok {
			h.names[f] = strings.TrimSpace(n)
		}
	}
	rec, err := csvRecord(line)
	if err != nil {
		h.problem = reject(ClassMalformedCSV, "", "header: %v", err)
		return h
	}
	h.width = len(rec)
	for i, name := range rec {
		name = strings.TrimSpace(name)
		for f, want := range h.names {
			if _, dup := h.col[f]; !dup && strings.EqualFold(name, want) {
				h.col[f] = i
			}
		}
	}
	var missing []string
	for _, f := range labelCSVFields[:3] {
		if _, ok := h.col[f]; !ok {
			missing = append(missing, fmt.Sprintf("%s (for %s)", quote(h.names[f]), f))
		}
	}
	if len(missing) > 0 {
		h.problem = reject(ClassMissingField, "", "the CSV header (%s) has no column %s; name the columns with VERDICT_LABEL_CSV_COLUMNS",
			clip(string(line), 200), strings.Join(missing, " or "))
	}
	return h
}

func (h *labelCSV) decode(line []byte) (Label, *Rejection) {
	var l Label
	rec, err := csvRecord(line)
	if err != nil {
		return l, reject(ClassMalformedCSV, "", "%v", err)
	}
	field := func(f string) (string, bool) {
		i, ok := h.col[f]
		if !ok || i >= len(rec) {
			return "", false
		}
		return strings.TrimSpace(rec[i]), true
	}
	for _, f := range labelCSVFields[:3] {
		if _, ok := field(f); !ok {
			return l, reject(ClassMalformedCSV, "", "%d columns, but the header has %d (%s is column %d)", len(rec), h.width, h.names[f], h.col[f]+1)
		}
	}
	id, _ := field("inference_id")
	if rej := checkInferenceID(h.names["inference_id"], id); rej != nil {
		return l, rej
	}
	l.InferenceID = id
	value, _ := field("label")
	positive, rej := h.labelValue(value)
	if rej != nil {
		return l, rej
	}
	l.Positive = positive
	ts, _ := field("time")
	t, rej := csvTime(h.names["time"], ts)
	if rej != nil {
		return l, rej
	}
	if rej := h.d.checkEventTime(h.names["time"], t); rej != nil {
		return l, rej
	}
	l.Time = t
	if src, ok := field("source"); ok {
		l.Source = clip(src, maxInfoBytes)
	}
	return l, nil
}

func (h *labelCSV) labelValue(v string) (bool, *Rejection) {
	name := h.names["label"]
	if v == "" {
		return false, reject(ClassMissingField, name, "empty")
	}
	values := h.d.labelValues
	if values == nil {
		switch strings.ToLower(v) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
		return false, reject(ClassInvalidField, name, "%s is not true/false or 1/0 (map other values with VERDICT_LABEL_VALUES, e.g. fraud:true,legit:false)", quote(v))
	}
	if p, ok := values[strings.ToLower(v)]; ok {
		return p, nil
	}
	return false, reject(ClassInvalidField, name, "%s is not one of the label values (%s; VERDICT_LABEL_VALUES)", quote(v), h.d.labelValueList)
}

// csvTime reads a time column: Unix seconds or milliseconds, or an RFC 3339 time.
func csvTime(field, s string) (time.Time, *Rejection) {
	if s == "" {
		return time.Time{}, reject(ClassMissingField, field, "empty")
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && strings.Trim(s, "0123456789.") == "" {
		return parseTime(field, []byte(s))
	}
	return parseTimeString(field, s)
}
