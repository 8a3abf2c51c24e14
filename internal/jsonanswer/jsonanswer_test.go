package jsonanswer

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, method, target string
		v                    any
		code                 int
		allow, body          string
	}{
		{"GET is indented JSON with HTML left as is", http.MethodGet, "/v1/x", map[string]string{"a": "<b>&"}, 200, "", "{\n  \"a\": \"<b>&\"\n}\n"},
		{"HEAD has the headers only", http.MethodHead, "/v1/x", map[string]string{"a": "b"}, 200, "", ""},
		{"a POST is 405 naming GET and HEAD", http.MethodPost, "/v1/x", nil, 405, "GET, HEAD", "{\n  \"error\": \"use GET\"\n}\n"},
		{"a parameter is 400 naming it", http.MethodGet, "/v1/x?state=ALARM", nil, 400, "",
			"{\n  \"error\": \"state: unknown parameter; /v1/x takes none\",\n  \"parameter\": \"state\"\n}\n"},
		{"a value that cannot be encoded is 500", http.MethodGet, "/v1/x", math.NaN(), 500, "", "{\"error\":\"encoding the answer failed\"}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(tc.method, tc.target, nil)
			if OnlyGet(rec, r) {
				Write(rec, r, http.StatusOK, tc.v)
			}
			h := rec.Header()
			if rec.Code != tc.code || rec.Body.String() != tc.body || h.Get("Allow") != tc.allow ||
				h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
				t.Errorf("%d %q, Allow %q, Content-Type %q, Cache-Control %q; want %d %q, Allow %q, application/json, no-store",
					rec.Code, rec.Body, h.Get("Allow"), h.Get("Content-Type"), h.Get("Cache-Control"), tc.code, tc.body, tc.allow)
			}
		})
	}
}
