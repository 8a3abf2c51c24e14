// Package dashboard is verdict's web dashboard: a page served at / that shows, per
// variant, precision, recall, flag rate and label coverage over time, the judge's
// decision and reasons, the per-segment comparison, the rollback alarms' local
// states and ingest health, refreshing itself.
//
// The page is static (embedded HTML, CSS and JavaScript, no external assets) and
// holds no data: it reads everything from the JSON API under /v1/, sending the
// bearer token (VERDICT_API_TOKEN) the user gives it, so the token guards the
// dashboard's data exactly as it guards the API. GET /v1/dashboard tells the page
// what to show; GET /v1/ingest is the ingest health it shows.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/verdictml/verdict/internal/jsonanswer"
)

//go:embed assets
var assets embed.FS

// Settings is what the page needs to know about this verdict: GET /v1/dashboard.
type Settings struct {
	Version string `json:"version"`
	// Baseline and Candidates are the pairs the judge and the segment comparison
	// show (VERDICT_BASELINE, VERDICT_CANDIDATES); without them the page shows the
	// variants only.
	Baseline   string   `json:"baseline"`
	Candidates []string `json:"candidates"`
	// Windows are the sliding windows kept (VERDICT_WINDOWS), shortest first; the
	// page offers them for its charts and tables.
	Windows []string `json:"windows"`
	// Bucket is VERDICT_BUCKET, the finest step of the charts.
	Bucket string `json:"bucket"`
	// SegmentKeys are VERDICT_SEGMENT_KEYS.
	SegmentKeys []string `json:"segment_keys"`
	// RefreshSeconds is how often the page reloads its data.
	RefreshSeconds int `json:"refresh_seconds"`
	// Alarms reports whether an alarm spec is evaluated (VERDICT_ALARM_SPEC).
	Alarms bool `json:"alarms"`
}

// DefaultRefresh is how often the page reloads its data unless told otherwise.
const DefaultRefresh = 10 * time.Second

// Page serves the dashboard's page at / and its assets under /assets/. Anything else
// is 404. The page and assets carry no data, so they need no token.
func Page() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is part of the binary: a missing directory is a build bug
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "use GET", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		// Everything the page loads comes from this server: no CDN, no inline code.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		switch p := r.URL.Path; {
		case p == "/":
			h.Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, sub, "index.html")
		case strings.HasPrefix(p, "/assets/") && path.Clean(p) == p:
			h.Set("Cache-Control", "no-cache")
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimPrefix(p, "/assets")
			files.ServeHTTP(w, r2)
		default:
			http.NotFound(w, r)
		}
	})
}

// SettingsHandler serves GET /v1/dashboard.
func SettingsHandler(s Settings) http.Handler {
	if s.Candidates == nil {
		s.Candidates = []string{}
	}
	if s.SegmentKeys == nil {
		s.SegmentKeys = []string{}
	}
	if s.RefreshSeconds <= 0 {
		s.RefreshSeconds = int(DefaultRefresh / time.Second)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !jsonanswer.OnlyGet(w, r) {
			return
		}
		jsonanswer.Write(w, r, http.StatusOK, s)
	})
}
