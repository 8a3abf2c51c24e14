package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/window"
)

// Gates: how the judge handler maps a decision to an HTTP status.
const (
	// GateNone (the default) always answers 200 with the decision in the body, as
	// Argo Rollouts' web metric provider wants: it reads the body with jsonPath and
	// treats a non-2xx answer as a measurement error, not a failure.
	GateNone = ""
	// GateFlagger answers 200 to let a Flagger canary proceed and 412 to halt it,
	// since Flagger's webhooks look only at the status code.
	GateFlagger = "flagger"
)

// Inconclusive handling under GateFlagger.
const (
	// InconclusiveProceed answers 200 (the default): missing evidence is not evidence
	// of harm, so a rollout hook does not count it towards a rollback.
	InconclusiveProceed = "proceed"
	// InconclusiveHalt answers 412, for confirm-promotion hooks that should wait
	// until there are enough labels to pass.
	InconclusiveHalt = "halt"
)

// DecisionHeader carries the decision on every judge answer.
const DecisionHeader = "X-Verdict-Decision"

// maxWebhookBody bounds a Flagger webhook body.
const maxWebhookBody = 64 << 10

// judgeHandler is what the judge and compare endpoints share: the windows they read
// and the judge's thresholds.
type judgeHandler struct {
	snaps judge.Snapshots
	cfg   judge.Config
	log   *slog.Logger
}

func newJudgeHandler(snaps judge.Snapshots, cfg judge.Config, log *slog.Logger) (judgeHandler, error) {
	if snaps == nil {
		return judgeHandler{}, errors.New("api: nil Snapshots")
	}
	if err := cfg.Validate(); err != nil {
		return judgeHandler{}, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return judgeHandler{snaps: snaps, cfg: cfg, log: log}, nil
}

// JudgeHandler serves GET /v1/judge?baseline=v5&candidate=v6&window=24h: the
// Judgement as JSON. With gate=flagger it also accepts Flagger's webhook POST (the
// variants and window may then come from the webhook's metadata) and answers 412
// when the candidate must not proceed.
type JudgeHandler struct{ h judgeHandler }

// NewJudgeHandler returns the judge endpoint over snaps with cfg's thresholds.
// log may be nil.
func NewJudgeHandler(snaps judge.Snapshots, cfg judge.Config, log *slog.Logger) (*JudgeHandler, error) {
	h, err := newJudgeHandler(snaps, cfg, log)
	if err != nil {
		return nil, err
	}
	return &JudgeHandler{h: h}, nil
}

// flaggerPayload is the part of Flagger's webhook body the judge reads.
type flaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Metadata  map[string]string `json:"metadata"`
}

func (jh *JudgeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := jh.h
	if !allowMethod(w, r, http.MethodGet, http.MethodHead, http.MethodPost) {
		return
	}
	q, err := params(r.URL.RawQuery, "baseline", "candidate", "window", "since", "gate", "inconclusive")
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	gate := q.Get("gate")
	if gate != GateNone && gate != GateFlagger {
		h.badRequest(w, r, badParam("gate", "%q: want flagger, or omit it for a 200 answer with the decision in the body", gate))
		return
	}
	if r.Method == http.MethodPost {
		var p flaggerPayload
		body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody+1))
		switch {
		case err != nil:
			h.badRequest(w, r, badParam("body", "reading the webhook body: %v", err))
			return
		case len(body) > maxWebhookBody:
			h.badRequest(w, r, badParam("body", "webhook body over %d bytes", maxWebhookBody))
			return
		case len(strings.TrimSpace(string(body))) > 0:
			if err := json.Unmarshal(body, &p); err != nil {
				h.badRequest(w, r, badParam("body", "want Flagger's webhook JSON ({name, namespace, phase, metadata}): %v", err))
				return
			}
		}
		for _, k := range []string{"baseline", "candidate", "window", "since", "inconclusive"} {
			if !q.Has(k) && p.Metadata[k] != "" {
				q.Set(k, p.Metadata[k])
			}
		}
		if p.Name != "" {
			h.log.Info("judge: flagger webhook", "canary", p.Namespace+"/"+p.Name, "phase", p.Phase)
		}
	}
	inconclusive := q.Get("inconclusive")
	switch {
	case inconclusive == "":
		inconclusive = InconclusiveProceed
	case gate != GateFlagger:
		h.badRequest(w, r, badParam("inconclusive", "only applies with gate=flagger"))
		return
	case inconclusive != InconclusiveProceed && inconclusive != InconclusiveHalt:
		h.badRequest(w, r, badParam("inconclusive", "%q: want proceed or halt", inconclusive))
		return
	}
	base, cand, snap, err := h.pairParams(q)
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	j, err := judge.Judge(snap, base, cand, h.cfg)
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	status := http.StatusOK
	if gate == GateFlagger && (j.Decision == judge.Fail || (j.Decision == judge.Inconclusive && inconclusive == InconclusiveHalt)) {
		status = http.StatusPreconditionFailed
	}
	w.Header().Set(DecisionHeader, string(j.Decision))
	h.log.Debug("api: judge decision", "baseline", base, "candidate", cand, "window", j.Window, "decision", j.Decision, "reason", j.Reason)
	writeJSON(w, r, status, j, h.log)
}

// CompareHandler serves GET /v1/compare?baseline=v5&candidate=v6&window=7d&sort=divergence:
// the shadow Report as JSON.
type CompareHandler struct{ h judgeHandler }

// NewCompareHandler returns the shadow comparison endpoint over snaps with cfg's
// thresholds. log may be nil.
func NewCompareHandler(snaps judge.Snapshots, cfg judge.Config, log *slog.Logger) (*CompareHandler, error) {
	h, err := newJudgeHandler(snaps, cfg, log)
	if err != nil {
		return nil, err
	}
	return &CompareHandler{h: h}, nil
}

func (ch *CompareHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := ch.h
	if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	q, err := params(r.URL.RawQuery, "baseline", "candidate", "window", "since", "sort")
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	sortBy := q.Get("sort")
	if sortBy != "" && !slices.Contains(judge.SortOrders(), sortBy) {
		h.badRequest(w, r, badParam("sort", "%q: want one of %s", sortBy, strings.Join(judge.SortOrders(), ", ")))
		return
	}
	base, cand, snap, err := h.pairParams(q)
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	rep, err := judge.Compare(snap, base, cand, sortBy, h.cfg)
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, rep, h.log)
}

// pairParams reads the variants and the range: since=<RFC 3339> starts a comparison
// period there, window=<span> is a sliding window (window=period the default
// period), and neither means the configured default.
func (h judgeHandler) pairParams(q url.Values) (base, cand string, snap window.Snapshot, err error) {
	base, cand = q.Get("baseline"), q.Get("candidate")
	switch {
	case base == "":
		return "", "", snap, badParam("baseline", "required: the variant to compare against, e.g. baseline=v5")
	case cand == "":
		return "", "", snap, badParam("candidate", "required: the variant being judged, e.g. candidate=v6")
	case base == cand:
		return "", "", snap, badParam("candidate", "%q is also the baseline", cand)
	}
	rng := h.cfg.Range
	param := "window"
	switch s, since := q.Get("window"), q.Get("since"); {
	case s != "" && since != "":
		return "", "", snap, badParam("since", "give since (a comparison period) or window (a sliding window), not both")
	case since != "":
		param = "since"
		t, err := time.Parse(time.RFC3339, since)
		if err != nil {
			return "", "", snap, badParam("since", "%q: want an RFC 3339 time such as 2026-12-04T10:00:00Z (the rollout's start)", since)
		}
		rng = judge.Period(t)
	case s == "period":
		rng = judge.Period(time.Time{})
	case s != "":
		span, err := window.ParseSpan(s)
		if err != nil {
			return "", "", snap, badParam("window", "%v", err)
		}
		// Windows that keep buckets only for a bounded span would answer a longer
		// one with partial counts: refuse it.
		if l, ok := h.snaps.(interface{ Longest() window.Span }); ok && span != window.AllTime && span > l.Longest() {
			return "", "", snap, badParam("window", "%s is longer than the %s verdict keeps (VERDICT_WINDOWS); use window=all or a shorter one", span, l.Longest())
		}
		rng = judge.Sliding(span)
	}
	snap, err = judge.RangeSnapshot(h.snaps, rng, cand)
	if err != nil {
		return "", "", snap, badParam(param, "%v", err)
	}
	return base, cand, snap, nil
}

func (h judgeHandler) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	badRequest(w, r, err, h.log)
}
