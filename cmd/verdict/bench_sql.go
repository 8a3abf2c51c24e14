package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/embedded"
	"github.com/verdictml/verdict/window"
)

// The side-by-side run (scripts/bench-sql.sh starts PostgreSQL and runs it): the same
// events as files, then
//   - verdict's store ceiling: the decoded events applied straight to a fresh join;
//   - verdict: the NDJSON files decoded and applied (as `verdict replay` does), then
//     1 % more labels;
//   - PostgreSQL: the files loaded with \copy, ANALYZE, the precision/recall query,
//     then 1 % more labels loaded and the query again;
//   - DuckDB: the same query over the NDJSON files, then again with the new labels.
// Every system's per-variant and per-segment TP/FP/FN/TN must agree.

// sqlQuery is the batch job a team would schedule: the latest label per inference,
// joined to every variant's prediction, counted per variant and per segment. It runs
// unchanged on PostgreSQL and DuckDB.
const sqlQuery = `WITH latest AS (
  SELECT inference_id, label FROM (
    SELECT inference_id, label,
           row_number() OVER (PARTITION BY inference_id ORDER BY time DESC) AS rn
    FROM labels) ranked
  WHERE rn = 1
), joined AS (
  SELECT p.variant, p.merchant_category, p.score >= 0.5 AS flagged, l.label
  FROM predictions p JOIN latest l ON l.inference_id = p.inference_id
)
SELECT variant, coalesce(merchant_category, '*') AS segment,
  sum(CASE WHEN flagged AND label THEN 1 ELSE 0 END) AS tp,
  sum(CASE WHEN flagged AND NOT label THEN 1 ELSE 0 END) AS fp,
  sum(CASE WHEN NOT flagged AND label THEN 1 ELSE 0 END) AS fn,
  sum(CASE WHEN NOT flagged AND NOT label THEN 1 ELSE 0 END) AS tn,
  round(sum(CASE WHEN flagged AND label THEN 1 ELSE 0 END) * 1.0
        / nullif(sum(CASE WHEN flagged THEN 1 ELSE 0 END), 0), 4) AS precision,
  round(sum(CASE WHEN flagged AND label THEN 1 ELSE 0 END) * 1.0
        / nullif(sum(CASE WHEN label THEN 1 ELSE 0 END), 0), 4) AS recall
FROM joined
GROUP BY GROUPING SETS ((variant), (variant, merchant_category))
ORDER BY variant, segment`

// sqlEvents are the run's events, decoded, and where their files are.
type sqlEvents struct {
	dir                  string
	preds                []ingest.Prediction
	lbls, more           []ingest.Label
	predFile, lblFile    string
	moreFile             string
	predCSV, lblCSV, mcs string
}

// sqlCounts are TP, FP, FN, TN by "variant/segment" ("variant/*" for the variant).
type sqlCounts map[string][4]int64

// writeSQLEvents writes n inferences (production v5 and shadow v6 predictions each,
// UUID ids, demo categories and fraud rates), labels for a random half of them and
// 1 % more labels for others, as NDJSON (verdict JSON) and CSV.
func writeSQLEvents(dir string, n int) (*sqlEvents, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ev := &sqlEvents{dir: dir}
	rng := rand.New(rand.NewPCG(7, 8))
	now := time.Now().UTC().Truncate(time.Millisecond)
	t0 := now.Add(-time.Duration(float64(n) / 800 * float64(time.Second)))
	fraud := make([]bool, n)
	for i := range n {
		cat, rate := demoCategories[0].name, demoCategories[0].fraudRate
		x := rng.Float64()
		for _, c := range demoCategories {
			if x < c.weight {
				cat, rate = c.name, c.fraudRate
				break
			}
			x -= c.weight
		}
		fraud[i] = rng.Float64() < rate
		at := t0.Add(time.Duration(float64(i) / 800 * float64(time.Second)))
		for _, v := range []string{"v5", "v6"} {
			s := rng.Float64() * 0.6
			if fraud[i] {
				s += 0.35
			}
			role := ingest.RoleProduction
			if v == "v6" {
				role = ingest.RoleShadow
			}
			ev.preds = append(ev.preds, ingest.Prediction{InferenceID: scaleID(i), Variant: v, Role: role,
				Score: float64(int(s*1000)) / 1000, Threshold: 0.5, Time: at, Attributes: map[string]string{"merchant_category": cat}})
		}
	}
	order := rng.Perm(n)
	labeled := order[:n/2]
	moreIDs := order[n/2 : n/2+max(n/200, 1)]
	label := func(i int) ingest.Label {
		return ingest.Label{InferenceID: scaleID(i), Positive: fraud[i], Time: now.Add(-time.Duration(rng.IntN(3600)) * time.Second)}
	}
	for _, i := range labeled {
		ev.lbls = append(ev.lbls, label(i))
	}
	for _, i := range moreIDs {
		ev.more = append(ev.more, label(i))
	}
	ev.predFile, ev.lblFile, ev.moreFile = filepath.Join(dir, "predictions.ndjson"), filepath.Join(dir, "labels.ndjson"), filepath.Join(dir, "labels-more.ndjson")
	ev.predCSV, ev.lblCSV, ev.mcs = filepath.Join(dir, "predictions.csv"), filepath.Join(dir, "labels.csv"), filepath.Join(dir, "labels-more.csv")
	write := func(path string, line func(w *bufio.Writer, k int), count int) error {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		for k := range count {
			line(w, k)
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	ts := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	predJSON := func(w *bufio.Writer, k int) {
		p := ev.preds[k]
		fmt.Fprintf(w, `{"inference_id":%q,"variant":%q,"role":%q,"score":%s,"time":%q,"attributes":{"merchant_category":%q}}`+"\n",
			p.InferenceID, p.Variant, p.Role, strconv.FormatFloat(p.Score, 'f', -1, 64), ts(p.Time), p.Attributes["merchant_category"])
	}
	predCSV := func(w *bufio.Writer, k int) {
		p := ev.preds[k]
		fmt.Fprintf(w, "%s,%s,%s,%s,%s\n", p.InferenceID, p.Variant, strconv.FormatFloat(p.Score, 'f', -1, 64), ts(p.Time), p.Attributes["merchant_category"])
	}
	lblJSON := func(ls []ingest.Label) func(*bufio.Writer, int) {
		return func(w *bufio.Writer, k int) {
			fmt.Fprintf(w, `{"inference_id":%q,"label":%t,"time":%q}`+"\n", ls[k].InferenceID, ls[k].Positive, ts(ls[k].Time))
		}
	}
	lblCSV := func(ls []ingest.Label) func(*bufio.Writer, int) {
		return func(w *bufio.Writer, k int) {
			fmt.Fprintf(w, "%s,%t,%s\n", ls[k].InferenceID, ls[k].Positive, ts(ls[k].Time))
		}
	}
	for _, f := range []struct {
		path  string
		line  func(*bufio.Writer, int)
		count int
	}{
		{ev.predFile, predJSON, len(ev.preds)}, {ev.predCSV, predCSV, len(ev.preds)},
		{ev.lblFile, lblJSON(ev.lbls), len(ev.lbls)}, {ev.lblCSV, lblCSV(ev.lbls), len(ev.lbls)},
		{ev.moreFile, lblJSON(ev.more), len(ev.more)}, {ev.mcs, lblCSV(ev.more), len(ev.more)},
	} {
		if err := write(f.path, f.line, f.count); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// sqlResult is one system's timings on the run's events.
type sqlResult struct {
	system  string
	how     string
	load    time.Duration // loading or ingesting the events (before the first answer)
	query   time.Duration // the first query after loading
	refresh time.Duration // 1 % more labels in, and the answer again
	refLoad time.Duration // of which loading them
	first   sqlCounts     // the first answer's counts
	counts  sqlCounts     // the answer's after the new labels
	diskB   int64
	note    string
}

func (r sqlResult) toFirst() time.Duration { return r.load + r.query }

func benchSQL(ctx context.Context, out io.Writer, dir string, n, batch int, pgConn, duckdbCmd string) error {
	progress("sql: writing %d inferences' events", n)
	ev, err := writeSQLEvents(filepath.Join(dir, "events"), n)
	if err != nil {
		return err
	}
	nEvents := len(ev.preds) + len(ev.lbls)
	var results []sqlResult

	// verdict's store ceiling: decoded events straight into a fresh join.
	progress("sql: verdict store ceiling")
	ceiling, err := sqlVerdict(ctx, filepath.Join(dir, "ceiling"), ev, batch, false)
	if err != nil {
		return err
	}
	results = append(results, ceiling)
	progress("sql: verdict from the NDJSON files")
	vr, err := sqlVerdict(ctx, filepath.Join(dir, "verdict"), ev, batch, true)
	if err != nil {
		return err
	}
	results = append(results, vr)
	if pgConn != "" {
		progress("sql: PostgreSQL")
		r, err := sqlPostgres(ctx, pgConn, ev)
		if err != nil {
			return fmt.Errorf("postgresql: %w", err)
		}
		results = append(results, r)
	}
	if duckdbCmd != "" {
		progress("sql: DuckDB")
		r, err := sqlDuckDB(ctx, duckdbCmd, ev)
		if err != nil {
			return fmt.Errorf("duckdb: %w", err)
		}
		results = append(results, r)
	}
	fmt.Fprint(os.Stderr, "\r\033[K")
	for _, r := range results[1:] {
		if d := diffCounts(results[0].first, r.first); d != "" {
			return fmt.Errorf("%s's first answer disagrees with verdict's counts: %s", r.system, d)
		}
		if d := diffCounts(results[0].counts, r.counts); d != "" {
			return fmt.Errorf("%s's answer after the new labels disagrees with verdict's counts: %s", r.system, d)
		}
	}
	fmt.Fprintf(out, "### Side by side: %d inferences (%d predictions, production + shadow), %d labels, then %d more (1 %%); load average %.1f\n\n",
		n, len(ev.preds), len(ev.lbls), len(ev.more), loadAverage())
	fmt.Fprintf(out, "Every system's per-variant and per-segment TP/FP/FN/TN agree, in the first answer and after the new labels (%d rows each).\n\n", len(results[0].counts))
	fmt.Fprintln(out, "| system | how | load / ingest | first answer | events/s to first answer | vs verdict store ceiling | +1 % labels: answer again | of which loading them | store on disk |")
	fmt.Fprintln(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|")
	ceil := float64(nEvents) / ceiling.toFirst().Seconds()
	for _, r := range results {
		rate := float64(nEvents) / r.toFirst().Seconds()
		disk := "-"
		if r.diskB > 0 {
			disk = mib(r.diskB)
		}
		fmt.Fprintf(out, "| %s | %s | %s | **%s** | %.0f | %.2f | **%s** | %s | %s |\n", r.system, r.how, secs(r.load), secs(r.toFirst()), rate, rate/ceil,
			secs(r.refresh), secs(r.refLoad), disk)
	}
	fmt.Fprintln(out)
	for _, r := range results {
		if r.note != "" {
			fmt.Fprintf(out, "- %s: %s\n", r.system, r.note)
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Per variant, from the run (all systems agree):")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| variant | TP | FP | FN | TN | precision | recall |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|")
	for _, v := range []string{"v5", "v6"} {
		c := results[0].counts[v+"/*"]
		fmt.Fprintf(out, "| %s | %d | %d | %d | %d | %.4f | %.4f |\n", v, c[0], c[1], c[2], c[3], float64(c[0])/float64(c[0]+c[1]), float64(c[0])/float64(c[0]+c[2]))
	}
	fmt.Fprintln(out)
	return nil
}

func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// sqlVerdict runs the events through a fresh store configured as serve's (fsync,
// maturity 30 d, merchant_category segments): decoded events straight to the join
// (fromFiles false: the ceiling), or the NDJSON files read and decoded on the way.
func sqlVerdict(ctx context.Context, dir string, ev *sqlEvents, batch int, fromFiles bool) (sqlResult, error) {
	r := sqlResult{system: "verdict store ceiling", how: "decoded events → join (fsync per commit of 1000)"}
	if fromFiles {
		r.system, r.how = "verdict", "NDJSON files → decode → join, 1 writer (as `verdict replay`)"
	}
	jn, err := openBenchJoin(ctx, dir, embedded.Options{CacheBytes: 512 << 20}, labels.Config{Maturity: 30 * 24 * time.Hour})
	if err != nil {
		return r, err
	}
	defer jn.close()
	j, w := jn.join, jn.windows
	dec, err := ingest.NewDecoder(ingest.DecoderConfig{})
	if err != nil {
		return r, err
	}
	applyPreds := func(ps []ingest.Prediction) error {
		for lo := 0; lo < len(ps); lo += batch {
			if _, err := j.Apply(ctx, ingest.Batch{Predictions: ps[lo:min(lo+batch, len(ps))]}); err != nil {
				return err
			}
		}
		return nil
	}
	applyLabels := func(ls []ingest.Label) error {
		for lo := 0; lo < len(ls); lo += batch {
			if _, err := j.Apply(ctx, ingest.Batch{Labels: ls[lo:min(lo+batch, len(ls))]}); err != nil {
				return err
			}
		}
		return nil
	}
	replay := func(path string, labels bool) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if labels {
			return dec.DecodeLabels(f, batch, func(d ingest.Decoded[ingest.Label]) error {
				if len(d.Rejections) > 0 {
					return fmt.Errorf("%s: %v", path, d.Rejections[0])
				}
				_, err := j.Apply(ctx, ingest.Batch{Labels: d.Events})
				return err
			})
		}
		return dec.DecodePredictions(f, batch, func(d ingest.Decoded[ingest.Prediction]) error {
			if len(d.Rejections) > 0 {
				return fmt.Errorf("%s: %v", path, d.Rejections[0])
			}
			_, err := j.Apply(ctx, ingest.Batch{Predictions: d.Events})
			return err
		})
	}
	counts := func() sqlCounts {
		c := sqlCounts{}
		for _, row := range w.Snapshot(window.AllTime).Rows {
			k := row.Key
			if k.Versus != "" || (k.SegmentKey != "" && k.SegmentKey != "merchant_category") {
				continue
			}
			name := k.Variant + "/*"
			if k.SegmentKey != "" {
				name = k.Variant + "/" + k.Segment
			}
			if row.Counts.Resolved() > 0 { // the query has no row without a labeled prediction
				c[name] = [4]int64{row.Counts.TP, row.Counts.FP, row.Counts.FN, row.Counts.TN}
			}
		}
		return c
	}
	start := time.Now()
	if fromFiles {
		err = replay(ev.predFile, false)
		if err == nil {
			err = replay(ev.lblFile, true)
		}
	} else {
		err = applyPreds(ev.preds)
		if err == nil {
			err = applyLabels(ev.lbls)
		}
	}
	if err != nil {
		return r, err
	}
	r.load = time.Since(start)
	start = time.Now()
	r.first = counts()
	r.query = time.Since(start)
	start = time.Now()
	if fromFiles {
		err = replay(ev.moreFile, true)
	} else {
		err = applyLabels(ev.more)
	}
	if err != nil {
		return r, err
	}
	r.refLoad = time.Since(start)
	r.counts = counts()
	r.refresh = time.Since(start)
	r.diskB = treeSize(dir)
	r.note = "the answer (windows, /metrics, the query API) is current after every commit; \"first answer\" is the time to ingest the backlog, the query itself reads in-memory tallies"
	if !fromFiles {
		r.note = "verdict's own write path without reading or decoding files: the ceiling the other rows are compared to"
	}
	return r, nil
}

// runTimed runs a command and returns its standard output and how long it took.
func runTimed(ctx context.Context, name string, args []string, stdin string) (string, time.Duration, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return "", d, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), d, nil
}

// parseSQLCounts reads the query's rows as printed (comma-separated).
func parseSQLCounts(out string) (sqlCounts, error) {
	c := sqlCounts{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) < 6 {
			continue
		}
		var v [4]int64
		for k := range 4 {
			n, err := strconv.ParseInt(f[2+k], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("row %q: %w", line, err)
			}
			v[k] = n
		}
		c[f[0]+"/"+f[1]] = v
	}
	if len(c) == 0 {
		return nil, fmt.Errorf("no rows in %q", out)
	}
	return c, nil
}

func diffCounts(want, got sqlCounts) string {
	var d []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if want[k] != got[k] {
			d = append(d, fmt.Sprintf("%s: %v, verdict %v", k, got[k], want[k]))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s: %v, verdict has none", k, got[k]))
		}
	}
	slices.Sort(d)
	return strings.Join(d, "; ")
}

// sqlPostgres loads the CSV files with \copy into plain (logged) tables, analyzes
// them, and runs the query; then loads the new labels and runs it again.
func sqlPostgres(ctx context.Context, conn string, ev *sqlEvents) (sqlResult, error) {
	r := sqlResult{system: "PostgreSQL", how: "\\copy CSV → tables, ANALYZE, the query (full recompute on refresh)"}
	psql := func(script string) (string, time.Duration, error) {
		return runTimed(ctx, "psql", []string{conn, "-X", "-q", "-A", "-t", "-F", ",", "-v", "ON_ERROR_STOP=1"}, script)
	}
	if _, _, err := psql(`DROP TABLE IF EXISTS predictions, labels;
CREATE TABLE predictions (inference_id text NOT NULL, variant text NOT NULL, score double precision NOT NULL,
  time timestamptz NOT NULL, merchant_category text, PRIMARY KEY (inference_id, variant));
CREATE TABLE labels (inference_id text NOT NULL, label boolean NOT NULL, time timestamptz NOT NULL);`); err != nil {
		return r, err
	}
	_, dp, err := psql(fmt.Sprintf("\\copy predictions FROM '%s' WITH (FORMAT csv)\n", ev.predCSV))
	if err != nil {
		return r, err
	}
	_, dl, err := psql(fmt.Sprintf("\\copy labels FROM '%s' WITH (FORMAT csv)\nANALYZE predictions;\nANALYZE labels;\n", ev.lblCSV))
	if err != nil {
		return r, err
	}
	r.load = dp + dl
	if _, _, err := psql("SELECT 1"); err != nil { // connection cost, for the note
		return r, err
	}
	_, conn1, _ := psql("SELECT 1")
	out, dq, err := psql(sqlQuery + ";")
	if err != nil {
		return r, err
	}
	r.query = dq
	if r.first, err = parseSQLCounts(out); err != nil {
		return r, err
	}
	_, dm, err := psql(fmt.Sprintf("\\copy labels FROM '%s' WITH (FORMAT csv)\n", ev.mcs))
	if err != nil {
		return r, err
	}
	out, dq2, err := psql(sqlQuery + ";")
	if err != nil {
		return r, err
	}
	r.refLoad, r.refresh = dm, dm+dq2
	if r.counts, err = parseSQLCounts(out); err != nil {
		return r, err
	}
	size, _, err := psql("SELECT pg_total_relation_size('predictions') + pg_total_relation_size('labels');")
	if err == nil {
		r.diskB, _ = strconv.ParseInt(strings.TrimSpace(size), 10, 64)
	}
	version, _, _ := psql("SHOW server_version;")
	r.note = fmt.Sprintf("PostgreSQL %s on 127.0.0.1, fsync on; predictions %s, labels %s to load; the query %s, again after the new labels %s; each psql call includes a connection (~%s); disk is the tables with the primary key",
		strings.TrimSpace(version), secs(dp), secs(dl), secs(dq), secs(dq2), secs(conn1))
	return r, nil
}

// sqlDuckDB runs the same query over the NDJSON files, through views.
func sqlDuckDB(ctx context.Context, command string, ev *sqlEvents) (sqlResult, error) {
	r := sqlResult{system: "DuckDB", how: "the query over the NDJSON files (read_json), in memory; refresh re-reads them"}
	args := strings.Fields(command)
	views := func(labelFiles ...string) string {
		return fmt.Sprintf(`CREATE VIEW predictions AS SELECT inference_id, variant, score, time, attributes.merchant_category AS merchant_category
  FROM read_json('%s', format = 'newline_delimited', columns = {inference_id: 'VARCHAR', variant: 'VARCHAR', role: 'VARCHAR', score: 'DOUBLE', time: 'TIMESTAMPTZ', attributes: 'STRUCT(merchant_category VARCHAR)'});
CREATE VIEW labels AS SELECT inference_id, label, time
  FROM read_json(['%s'], format = 'newline_delimited', columns = {inference_id: 'VARCHAR', label: 'BOOLEAN', time: 'TIMESTAMPTZ'});
`, ev.predFile, strings.Join(labelFiles, "', '"))
	}
	_, startup, err := runTimed(ctx, args[0], args[1:], "SELECT 1;")
	if err != nil {
		return r, err
	}
	out, d1, err := runTimed(ctx, args[0], args[1:], views(ev.lblFile)+sqlQuery+";")
	if err != nil {
		return r, err
	}
	r.query = d1
	if r.first, err = parseSQLCounts(out); err != nil {
		return r, err
	}
	out, d2, err := runTimed(ctx, args[0], args[1:], views(ev.lblFile, ev.moreFile)+sqlQuery+";")
	if err != nil {
		return r, err
	}
	r.refresh = d2
	if r.counts, err = parseSQLCounts(out); err != nil {
		return r, err
	}
	version, _, _ := runTimed(ctx, args[0], args[1:], "SELECT version();")
	r.note = fmt.Sprintf("DuckDB %s (npm @duckdb/node-api), nothing loaded ahead: each answer parses every file; process start-up (%s) included", strings.TrimSpace(version), secs(startup))
	return r, nil
}
