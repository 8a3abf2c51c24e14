package judge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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

// maxReportBody bounds a fetched report.
const maxReportBody = 64 << 20

// FetchReport gets GET /v1/compare from a running verdict and returns the decoded
// report and the raw JSON body. client nil means http.DefaultClient.
func FetchReport(ctx context.Context, client *http.Client, req CompareRequest) (Report, []byte, error) {
	if client == nil {
		client = http.DefaultClient
	}
	base, err := url.Parse(strings.TrimRight(req.Server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return Report{}, nil, fmt.Errorf("server %q: want an http(s) URL like http://127.0.0.1:8080", req.Server)
	}
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
	u := base.JoinPath("/v1/compare")
	u.RawQuery = q.Encode()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Report{}, nil, fmt.Errorf("compare request %s: %w", u, err)
	}
	hreq.Header.Set("Accept", "application/json")
	if req.Token != "" {
		hreq.Header.Set("Authorization", "Bearer "+req.Token)
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return Report{}, nil, fmt.Errorf("fetch shadow report: %w", err) // names method and URL
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReportBody))
	if err != nil {
		return Report{}, nil, fmt.Errorf("GET %s: reading the answer: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return Report{}, nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, e.Error)
		}
		return Report{}, nil, fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, body)
	}
	var rep Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return Report{}, nil, fmt.Errorf("GET %s: decoding the report: %w", u, err)
	}
	return rep, body, nil
}
