// Package httpingest receives predictions and labels over HTTP: POST /v1/predictions
// and POST /v1/labels with newline-delimited JSON bodies. Authentication and routing
// are the caller's (cmd/verdict wraps these handlers in its mux and bearer-token
// check).
//
// Each request is all-or-nothing per line, not per body: the valid lines are
// committed in one atomic Sink.Apply (in batches of Config.MaxBatch for very large
// bodies), the invalid ones are listed in the response with their line number and
// reason. Ingest is idempotent (by inference id and variant, and by label time), so a
// client may always resend a whole body.
package httpingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/internal/logevery"
)

// Defaults for zero Config fields.
const (
	DefaultMaxBodyBytes = 8 << 20
	DefaultMaxBatch     = 10000
	DefaultBodyTimeout  = 20 * time.Second
)

// Limit caps how many ingest requests are served at once; handlers sharing a Limit
// share the cap. Each request may hold its body (up to Config.MaxBodyBytes) and its
// decoded events, so the cap bounds ingest's memory.
type Limit struct{ slots chan struct{} }

// NewLimit returns a cap of n concurrent requests.
func NewLimit(n int) *Limit { return &Limit{slots: make(chan struct{}, n)} }

// acquire takes a slot without waiting; it reports false when all are taken.
func (l *Limit) acquire() bool {
	if l == nil {
		return true
	}
	select {
	case l.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (l *Limit) release() {
	if l != nil {
		<-l.slots
	}
}

// maxListedRejections caps the rejections a response lists; rejected_count has them
// all.
const maxListedRejections = 1000

// Config tunes a Handler. Zero fields take the defaults.
type Config struct {
	// MaxBodyBytes caps a request body; larger bodies get 413 and nothing is
	// committed. Default 8 MiB.
	MaxBodyBytes int64
	// MaxBatch caps the events in one Sink.Apply. A body with more valid events is
	// committed in several batches, in order. Default 10000.
	MaxBatch int
	// Limit caps concurrent requests (shared with other handlers); beyond it a
	// request gets 503 with Retry-After at once. Nil means no cap.
	Limit *Limit
	// BodyTimeout bounds reading the body: a sender slower than that gets 408 and
	// nothing is committed. Default 20 s.
	BodyTimeout time.Duration
	// Metrics records accepted, duplicate and rejected events; nil records nothing.
	Metrics *ingest.Metrics
	// Logger receives sink failures; nil discards them.
	Logger *slog.Logger
	// Source is the metrics source label. Default "http".
	Source string
}

// Response is the JSON body of every reply.
type Response struct {
	// Accepted is the number of valid events committed, duplicates included.
	Accepted int `json:"accepted"`
	// Duplicates is how many of them changed nothing (already known).
	Duplicates int `json:"duplicates"`
	// RejectedCount is the number of rejected lines.
	RejectedCount int `json:"rejected_count"`
	// Rejected lists the rejected lines, the first 1000 of them, in input order.
	// For a JSON array body, line is the 1-based element number; line 0 means the
	// body as a whole.
	Rejected []ingest.Rejection `json:"rejected"`
	// Message explains a 400: what was committed and what to resend.
	Message string `json:"message,omitempty"`
	// Error says why the request failed as a whole (405, 413, 415, 503).
	Error string `json:"error,omitempty"`
}

// Handler serves one endpoint: predictions or labels.
type Handler struct {
	kind ingest.Kind
	dec  *ingest.Decoder
	sink ingest.Sink
	cfg  Config
	log  *slog.Logger
	// failures limits the log of failed commits to one line per failureLogEvery.
	failures *logevery.Limiter
	serve    func(*Handler, http.ResponseWriter, *http.Request)
}

// Predictions returns the handler for POST /v1/predictions. dec and sink are
// required; the handler is safe for concurrent requests if sink is.
func Predictions(dec *ingest.Decoder, sink ingest.Sink, cfg Config) *Handler {
	return newHandler[ingest.Prediction](dec, sink, cfg)
}

// Labels returns the handler for POST /v1/labels.
func Labels(dec *ingest.Decoder, sink ingest.Sink, cfg Config) *Handler {
	return newHandler[ingest.Label](dec, sink, cfg)
}

func newHandler[E ingest.Event](dec *ingest.Decoder, sink ingest.Sink, cfg Config) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.Source == "" {
		cfg.Source = ingest.SourceHTTP
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{kind: ingest.KindOf[E](), dec: dec, sink: sink, cfg: cfg, log: log,
		failures: &logevery.Limiter{Every: failureLogEvery}, serve: serve[E]}
}

// ServeHTTP handles one request. Status codes: 200 all lines accepted; 400 some lines
// rejected (the valid ones are committed) or an unreadable body; 405 not POST; 408
// the body did not arrive within BodyTimeout; 413 body over the limit; 415
// unsupported Content-Type or Content-Encoding; 503 the sink failed (events before
// the failing batch, counted in accepted, are committed) or too many requests are in
// progress.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.serve(h, w, r) }

func serve[E ingest.Event](h *Handler, w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, Response{Error: r.Method + " is not allowed; use POST"})
		return
	}
	if why := unsupportedContent(r.Header); why != "" {
		reply(w, http.StatusUnsupportedMediaType, Response{Error: why})
		return
	}
	if !h.cfg.Limit.acquire() {
		h.cfg.Metrics.RequestFailed(h.kind, h.cfg.Source, ingest.RequestBusy)
		w.Header().Set("Retry-After", "1")
		reply(w, http.StatusServiceUnavailable, Response{Error: fmt.Sprintf(
			"too many ingest requests in progress (the cap is VERDICT_MAX_CONCURRENT_INGEST=%d); nothing was committed, retry after 1 s",
			cap(h.cfg.Limit.slots))})
		return
	}
	defer h.cfg.Limit.release()
	body, status, reason, why := readBody(w, r, h.cfg.MaxBodyBytes, h.cfg.BodyTimeout)
	if why != "" {
		h.cfg.Metrics.RequestFailed(h.kind, h.cfg.Source, reason)
		reply(w, status, Response{Error: why})
		return
	}

	c := &committer[E]{h: h, ctx: r.Context()}
	var err error
	if isArray(body) {
		err = c.decodeArray(body)
	} else {
		err = ingest.Decode(h.dec, bytes.NewReader(body), h.cfg.MaxBatch, func(b ingest.Decoded[E]) error {
			return c.add(b.Events, b.Rejections)
		})
	}
	if err == nil {
		err = c.flush()
	}
	resp := c.resp
	if err != nil && r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		// The client left while its batch was committing; the store did not fail. The
		// batch may still commit (a resend is a duplicate); nobody reads this answer.
		h.cfg.Metrics.RequestFailed(h.kind, h.cfg.Source, ingest.RequestClientGone)
		h.log.InfoContext(r.Context(), "ingest: client went away before its commit was confirmed", "kind", h.kind, "committed", resp.Accepted)
		return
	}
	if err != nil {
		// Only the sink fails here: decoding reads from memory.
		if ok, skipped, since := h.failures.Allow(); ok {
			args := []any{"kind", h.kind, "committed", resp.Accepted, "err", err}
			if skipped > 0 {
				args = append(args, "suppressed", skipped, "since", since.UTC().Format(time.RFC3339))
			}
			h.log.ErrorContext(r.Context(), "ingest: commit failed", args...)
		}
		resp.Error = fmt.Sprintf("the join store did not commit the %ss: %v", h.kind, err)
		resp.Message = fmt.Sprintf("%d event(s) were committed before the failure; resend the body (ingest is idempotent).", resp.Accepted)
		w.Header().Set("Retry-After", "1")
		reply(w, http.StatusServiceUnavailable, resp)
		return
	}
	if resp.RejectedCount > 0 {
		resp.Message = fmt.Sprintf("%d line(s) were rejected and are listed in \"rejected\"; the other %d valid event(s) were committed. "+
			"Fix and resend the rejected lines; resending the whole body is also safe (ingest is idempotent).",
			resp.RejectedCount, resp.Accepted)
		reply(w, http.StatusBadRequest, resp)
		return
	}
	reply(w, http.StatusOK, resp)
}

// committer gathers valid events into batches of up to MaxBatch and commits each.
type committer[E ingest.Event] struct {
	h       *Handler
	ctx     context.Context
	pending []E
	resp    Response
}

func (c *committer[E]) add(events []E, rejections []ingest.Rejection) error {
	c.h.cfg.Metrics.Rejected(c.h.kind, c.h.cfg.Source, rejections)
	c.resp.RejectedCount += len(rejections)
	if room := maxListedRejections - len(c.resp.Rejected); room > 0 {
		c.resp.Rejected = append(c.resp.Rejected, rejections[:min(room, len(rejections))]...)
	}
	c.pending = append(c.pending, events...)
	for len(c.pending) >= c.h.cfg.MaxBatch {
		if err := c.commit(c.pending[:c.h.cfg.MaxBatch]); err != nil {
			return err
		}
		c.pending = c.pending[c.h.cfg.MaxBatch:]
	}
	return nil
}

func (c *committer[E]) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	err := c.commit(c.pending)
	c.pending = nil
	return err
}

func (c *committer[E]) commit(events []E) error {
	b := ingest.BatchOf(events)
	res, err := c.h.sink.Apply(c.ctx, b)
	if err != nil {
		if c.ctx.Err() == nil || !errors.Is(err, c.ctx.Err()) {
			c.h.cfg.Metrics.SinkFailed(c.h.cfg.Source, b)
		}
		return err
	}
	c.h.cfg.Metrics.Committed(c.h.cfg.Source, b, res)
	c.resp.Accepted += len(events)
	c.resp.Duplicates += res.Duplicates
	return nil
}

// decodeArray handles a body that is one JSON array of event objects. A body that is
// not a valid array is rejected as a whole: no element can be trusted.
func (c *committer[E]) decodeArray(body []byte) error {
	var elems []json.RawMessage
	if err := json.Unmarshal(body, &elems); err != nil {
		return c.add(nil, []ingest.Rejection{{
			Class:  ingest.ClassMalformedJSON,
			Reason: "body starts with '[' but is not a valid JSON array, so none of it was committed: " + err.Error(),
		}})
	}
	const chunk = 1000
	var events []E
	var rejections []ingest.Rejection
	for i, elem := range elems {
		e, err := ingest.DecodeLine[E](c.h.dec, elem)
		if err != nil {
			var rej *ingest.Rejection
			if !errors.As(err, &rej) {
				return err
			}
			rej.Line = i + 1
			rejections = append(rejections, *rej)
		} else {
			events = append(events, e)
		}
		if len(events)+len(rejections) >= chunk || i == len(elems)-1 {
			if err := c.add(events, rejections); err != nil {
				return err
			}
			events, rejections = nil, nil
		}
	}
	return nil
}

func isArray(body []byte) bool {
	body = bytes.TrimLeft(body, " \t\r\n\xEF\xBB\xBF")
	return len(body) > 0 && body[0] == '['
}

// unsupportedContent says why the request's Content-Type or Content-Encoding cannot
// be read, or "" if it can.
func unsupportedContent(h http.Header) string {
	if enc := h.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return "Content-Encoding " + strconv.Quote(enc) + " is not supported; send the body uncompressed"
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "Content-Type " + strconv.Quote(ct) + " cannot be parsed: " + err.Error()
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
		"application/jsonlines", "application/json":
		return ""
	}
	return "Content-Type " + strconv.Quote(mt) + " is not supported; send application/x-ndjson (one JSON object per line) or application/json"
}

// readBody reads the whole body, at most max bytes and within timeout, so an oversize
// or stalled body is refused before anything is committed. Memory grows with what
// arrives, not with what the client declares in Content-Length. On failure it
// returns the status, the metrics reason and the explanation.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, int, string, string) {
	tooLarge := fmt.Sprintf("body exceeds the %d-byte limit; nothing was committed. Split it into smaller requests.", limit)
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, ingest.RequestBodyTooLarge, tooLarge
	}
	// Not supported by every ResponseWriter (test recorders); the server's ReadTimeout
	// still applies then.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	var buf bytes.Buffer
	buf.Grow(int(min(max(r.ContentLength, 0), initialBodyBuffer)))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, http.StatusRequestEntityTooLarge, ingest.RequestBodyTooLarge, tooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, http.StatusRequestTimeout, ingest.RequestBodyTimeout, fmt.Sprintf(
			"the body did not arrive within %s (VERDICT_BODY_READ_TIMEOUT); nothing was committed", timeout)
	case err != nil:
		return nil, http.StatusBadRequest, ingest.RequestBodyUnreadable, "reading the body failed: " + err.Error()
	}
	return buf.Bytes(), 0, "", ""
}

// initialBodyBuffer is the most readBody allocates before bytes arrive.
const initialBodyBuffer = 64 << 10

func reply(w http.ResponseWriter, status int, resp Response) {
	if resp.Rejected == nil {
		resp.Rejected = []ingest.Rejection{}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	// The status is sent; a failed write means the client went away.
	_ = json.NewEncoder(w).Encode(resp)
}
