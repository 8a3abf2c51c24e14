// Package api is verdict's JSON API under /v1: the analysts' metrics, label
// coverage and time series over the windows (GET /v1/metrics, /v1/coverage,
// /v1/series), the rollout-gate judgement (GET /v1/judge, shaped for Argo Rollouts'
// web metric provider and Flagger webhooks) and the shadow comparison
// (GET /v1/compare); and the client that fetches the last two from a running
// verdict (verdict report, the rollout gates).
//
// Every handler answers the same way: indented JSON with Cache-Control: no-store,
// HEAD like GET without the body, a query string read strictly (a pair that does
// not parse, a parameter given twice or one the endpoint does not know is a 400
// naming it) and errors as an ErrorBody. The handlers read window snapshots at
// request time and keep no state of their own. The schema is documented in
// docs/api.md and is stable: fields are only ever added.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// ErrorBody is the body of every 4xx/5xx answer.
type ErrorBody struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter,omitempty"`
}

// paramError is a bad request that names the parameter at fault.
type paramError struct{ param, msg string }

func (e *paramError) Error() string { return e.msg }

// badParam is a paramError whose message starts with the parameter's name.
func badParam(param, format string, args ...any) error {
	return &paramError{param: param, msg: param + ": " + fmt.Sprintf(format, args...)}
}

// WriteJSON writes v as the indented JSON body with the given status, marked not
// to be cached; HEAD gets the headers only.
func WriteJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	writeJSON(w, r, status, v, nil)
}

// writeJSON is WriteJSON; a value that cannot be encoded (a bug: every answer is
// plain data) is logged to log, when set, and answered 500.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any, log *slog.Logger) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		if log != nil {
			log.Error("api: encode answer", "err", err)
		}
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(b, '\n'))
	}
}

// badRequest answers 400 with err, naming its parameter when it has one.
func badRequest(w http.ResponseWriter, r *http.Request, err error, log *slog.Logger) {
	body := ErrorBody{Error: err.Error()}
	if pe, ok := errors.AsType[*paramError](err); ok {
		body.Parameter = pe.param
	}
	log.Debug("api: bad request", "url", r.URL.String(), "err", err)
	writeJSON(w, r, http.StatusBadRequest, body, log)
}

// allowMethod answers 405 naming the allowed methods unless r uses one of them.
func allowMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	WriteJSON(w, r, http.StatusMethodNotAllowed, ErrorBody{Error: fmt.Sprintf("method %s not allowed; use %s", r.Method, strings.Join(methods, " or "))})
	return false
}

// ReadQuery parses the request's query string strictly: a pair that does not parse
// (url.Values would drop it, so "window=1h;by=segment" would answer for another
// window) or a parameter given twice gets a 400 naming the parameter, and ok is false.
func ReadQuery(w http.ResponseWriter, r *http.Request) (q url.Values, ok bool) {
	q, err := readQuery(r.URL.RawQuery)
	if err != nil {
		badRequest(w, r, err, slog.New(slog.DiscardHandler))
		return nil, false
	}
	return q, true
}

func readQuery(raw string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		param := ""
		for _, pair := range strings.Split(raw, "&") {
			if _, perr := url.ParseQuery(pair); perr != nil {
				param, _, _ = strings.Cut(pair, "=")
				break
			}
		}
		return nil, badParam(param, "the query string %q cannot be read (%v); separate parameters with '&' and escape values", raw, err)
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if n := len(q[name]); n > 1 {
			return nil, badParam(name, "given %d times; give it once", n)
		}
	}
	return q, nil
}

// params reads the query string strictly (ReadQuery) and refuses a parameter not
// in known, naming it.
func params(raw string, known ...string) (url.Values, error) {
	q, err := readQuery(raw)
	if err != nil {
		return nil, err
	}
	var unknown []string
	for k := range q {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, badParam(unknown[0], "unknown parameter; use %s", strings.Join(known, ", "))
	}
	return q, nil
}
