// Package jsonanswer writes the JSON answers of the handlers that sit beside the
// /v1 API without importing it (the dashboard's settings and ingest health, the
// live alarm watch): indented JSON with HTML left unescaped, Cache-Control:
// no-store, HEAD answered like GET without the body, and one error body.
package jsonanswer

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// ErrorBody is the body of an error answer; Parameter names the query parameter
// at fault, if any.
type ErrorBody struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter,omitempty"`
}

// Write writes v as the indented JSON body with the given status. A value that
// cannot be encoded (a bug: every answer is plain data) is answered 500.
func Write(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err := enc.Encode(v)
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(b, '\n'))
	}
}

// OnlyGet answers anything but a GET or HEAD without query parameters with an
// error (405 naming the allowed methods, or 400 naming the parameter) and reports
// whether r may be served.
func OnlyGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		Write(w, r, http.StatusMethodNotAllowed, ErrorBody{Error: "use GET"})
		return false
	}
	for k := range r.URL.Query() {
		Write(w, r, http.StatusBadRequest, ErrorBody{Error: k + ": unknown parameter; " + r.URL.Path + " takes none", Parameter: k})
		return false
	}
	return true
}
