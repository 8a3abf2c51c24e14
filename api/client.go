package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/verdictml/verdict/judge"
)

// CompareRequest names a shadow comparison to fetch from a running verdict.
type CompareRequest struct {
	// Server is verdict's base URL, e.g. http://127.0.0.1:8080.
	Server string
	// Token is the API bearer token; empty sends none.
	Token                             string
	Baseline, Candidate, Window, Sort string
	// Since starts the comparison period (RFC 3339); empty: Window, else the
	// server's default period.
	Since string
}

// JudgeRequest names a judgement to fetch from a running verdict: the candidate
// against the baseline over a comparison period.
type JudgeRequest struct {
	// Server is verdict's base URL, e.g. http://127.0.0.1:8080.
	Server string
	// Token is the API bearer token; empty sends none.
	Token               string
	Baseline, Candidate string
	// Since starts the comparison period (the shadow stage's start); zero means the
	// period since the candidate's first prediction (window=period).
	Since time.Time
}

// maxReportBody bounds a fetched report or judgement.
const maxReportBody = 64 << 20

// FetchReport gets GET /v1/compare from a running verdict and returns the decoded
// report and the raw JSON body. client nil means http.DefaultClient.
func FetchReport(ctx context.Context, client *http.Client, req CompareRequest) (judge.Report, []byte, error) {
	q := url.Values{"baseline": {req.Baseline}, "candidate": {req.Candidate}}
	if req.Window != "" {
		q.Set("window", req.Window)
	}
	if req.Since != "" {
		q.Set("since", req.Since)
	}
	if req.Sort != "" {
		q.Set("sort", req.Sort)
	}
	var rep judge.Report
	body, err := fetch(ctx, client, req.Server, req.Token, "/v1/compare", q, "report", &rep)
	if err != nil {
		if body == nil {
			return judge.Report{}, nil, fmt.Errorf("fetch shadow report: %w", err)
		}
		return judge.Report{}, nil, err
	}
	return rep, body, nil
}

// FetchJudgement gets GET /v1/judge from a running verdict: the judgement a rollout
// gate reads. client nil means http.DefaultClient.
func FetchJudgement(ctx context.Context, client *http.Client, req JudgeRequest) (judge.Judgement, error) {
	q := url.Values{"baseline": {req.Baseline}, "candidate": {req.Candidate}}
	if req.Since.IsZero() {
		q.Set("window", "period")
	} else {
		q.Set("since", req.Since.UTC().Format(time.RFC3339))
	}
	var j judge.Judgement
	body, err := fetch(ctx, client, req.Server, req.Token, "/v1/judge", q, "judgement", &j)
	if err != nil {
		if body == nil {
			return judge.Judgement{}, fmt.Errorf("fetch judgement: %w", err)
		}
		return judge.Judgement{}, err
	}
	return j, nil
}

// fetch GETs path with query from server and decodes the JSON answer into out. The
// body is nil when the request never got an answer (the error then names the
// method and URL only).
func fetch(ctx context.Context, client *http.Client, server, token, path string, q url.Values, what string, out any) ([]byte, error) {
	if client == nil {
		client = http.DefaultClient
	}
	base, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return []byte{}, fmt.Errorf("server %q: want an http(s) URL like http://127.0.0.1:8080", server)
	}
	u := base.JoinPath(path)
	u.RawQuery = q.Encode()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return []byte{}, fmt.Errorf("%s request %s: %w", what, u, err)
	}
	hreq.Header.Set("Accept", "application/json")
	if token != "" {
		hreq.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, err // names method and URL
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReportBody))
	if err != nil {
		return []byte{}, fmt.Errorf("GET %s: reading the answer: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return []byte{}, fmt.Errorf("GET %s: %s: %s", u, resp.Status, e.Error)
		}
		return []byte{}, fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return []byte{}, fmt.Errorf("GET %s: decoding the %s: %w", u, what, err)
	}
	return body, nil
}
