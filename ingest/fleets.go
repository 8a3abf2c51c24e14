package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// VariantLookup names the variant — the model, the fleet — that served an inference
// id, from the application's own record. During a blue/green shift both fleets keep
// the production variant's name and Data Capture writes both into one folder, and a
// capture record does not name the model; the application, which read the model
// version from each response, knows.
type VariantLookup interface {
	Variant(inferenceID string) (variant string, ok bool)
}

// VariantMap is an in-memory VariantLookup: inference id → variant.
type VariantMap map[string]string

// Variant implements VariantLookup.
func (m VariantMap) Variant(id string) (string, bool) {
	v, ok := m[id]
	return v, ok
}

// maxVariantMapLine bounds one line of a variant map.
const maxVariantMapLine = 64 << 10

// ReadVariantMap adds the application's record of which variant served each
// inference to m: JSON lines {"inference_id":"txn-42","variant":"fraud-v6"}, other
// fields ignored (the application's own verdict JSON prediction records qualify).
// Blank lines are skipped. An id given twice with different variants, an invalid id
// or variant, or a line that is not such an object is an error naming the line
// (name is the input's name, for the message).
func ReadVariantMap(r io.Reader, name string, m VariantMap) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxVariantMapLine)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("variant map %s line %d: %s", name, line, fmt.Sprintf(format, args...))
		}
		if rej := checkJSONLine(b); rej != nil {
			return bad("%s", rej.Reason)
		}
		var rec struct {
			InferenceID *string `json:"inference_id"`
			Variant     *string `json:"variant"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return bad("want {\"inference_id\": ..., \"variant\": ...}: %v", err)
		}
		if rec.InferenceID == nil || rec.Variant == nil {
			return bad("want both inference_id and variant")
		}
		if rej := checkInferenceID("inference_id", *rec.InferenceID); rej != nil {
			return bad("%s", rej.Reason)
		}
		if why := variantProblem(*rec.Variant); why != "" {
			return bad("variant: %s", why)
		}
		if old, ok := m[*rec.InferenceID]; ok && old != *rec.Variant {
			return bad("inference id %s is %s here and %s before: one request is served by one model", quote(*rec.InferenceID), quote(*rec.Variant), quote(old))
		}
		m[*rec.InferenceID] = *rec.Variant
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("variant map %s: a line is longer than %d bytes", name, maxVariantMapLine)
		}
		return fmt.Errorf("variant map %s: %w", name, err)
	}
	return nil
}
