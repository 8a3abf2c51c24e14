package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/internal/shadowsim"
	"github.com/verdictml/verdict/judge"
)

func TestFetchReportFromARunningServer(t *testing.T) {
	ch := testCompareHandler(t, shadowsim.Regressed())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"wrong bearer token"}`))
			return
		}
		if r.URL.Path != "/v1/compare" {
			http.NotFound(w, r)
			return
		}
		ch.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		req     CompareRequest
		wantErr string
	}{
		{"fetches and decodes", CompareRequest{Server: srv.URL + "/", Token: "s3cret", Baseline: "v5", Candidate: "v6", Window: "7d", Sort: "recall"}, ""},
		{"names the server's complaint", CompareRequest{Server: srv.URL, Token: "s3cret", Baseline: "v5", Candidate: "v6", Window: "soon"}, `400 Bad Request: window: window "soon"`},
		{"reports a refused token", CompareRequest{Server: srv.URL, Token: "nope", Baseline: "v5", Candidate: "v6"}, "401 Unauthorized: wrong bearer token"},
		{"rejects a server that is not a URL", CompareRequest{Server: "127.0.0.1:8080", Baseline: "v5", Candidate: "v6"}, `server "127.0.0.1:8080"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, raw, err := FetchReport(ctx, srv.Client(), tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Window != "7d" || rep.Sort != "recall" || rep.Segments[0].Segment != "electronics" || !json.Valid(raw) {
				t.Errorf("report window %s sort %s first %s", rep.Window, rep.Sort, rep.Segments[0].Segment)
			}
		})
	}
}

func TestFetchJudgementFromARunningServer(t *testing.T) {
	snaps := shadowsim.Regressed()
	jh := testJudgeHandler(t, snaps)
	srv := httptest.NewServer(jh)
	defer srv.Close()
	since := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	j, err := FetchJudgement(context.Background(), srv.Client(), JudgeRequest{Server: srv.URL, Baseline: "v5", Candidate: "v6", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := judge.Judge(snaps.Snap, "v5", "v6", judge.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Decision != judge.Fail || j.Decision != direct.Decision || j.Segments[0].Segment != "electronics" ||
		j.Segments[0].FlagRate.Candidate.N != direct.Segments[0].FlagRate.Candidate.N || len(snaps.Since) != 1 || !snaps.Since[0].Equal(since) {
		t.Errorf("fetched %s first %s (since asked %v), want %s as judged directly", j.Decision, j.Segments[0].Segment, snaps.Since, direct.Decision)
	}
	if _, err := FetchJudgement(context.Background(), srv.Client(), JudgeRequest{Server: srv.URL, Baseline: "v5", Candidate: "v5"}); err == nil ||
		!strings.Contains(err.Error(), "400 Bad Request") {
		t.Errorf("err %v, want the server's 400 for the same variant twice", err)
	}
}
