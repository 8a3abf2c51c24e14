package main

// End-to-end tests of the S3 source: SageMaker Data Capture files and label CSV files
// uploaded to kumo's S3 under SageMaker's layout while the binary runs, a SIGKILL in
// the middle, more files (late, out of key order) after the restart; counts are
// compared with the plain recount of the scenario.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/verdictml/verdict/internal/emulatortest"
)

// folderOf is the Data Capture variant folder each scenario variant is captured in.
var folderOf = map[string]string{"v5": "AllTraffic", "v6": "Shadow"}

// captureRecord is a prediction as SageMaker Data Capture writes it: the score as
// the CSV output, the request as JSON input, the inference id passed to
// InvokeEndpoint. The variant is not in the record: its folder names it.
func captureRecord(p tPred) string {
	in, _ := json.Marshal(map[string]string{"merchant_category": p.Cat})
	rec := map[string]any{
		"captureData": map[string]any{
			"endpointInput":  map[string]string{"observedContentType": "application/json", "mode": "INPUT", "data": string(in), "encoding": "JSON"},
			"endpointOutput": map[string]string{"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT", "data": fmt.Sprint(p.Score), "encoding": "CSV"},
		},
		"eventMetadata": map[string]string{"eventId": "ev-" + p.ID, "inferenceId": p.ID, "inferenceTime": p.Time.UTC().Format(time.RFC3339Nano)},
		"eventVersion":  "0",
	}
	b, _ := json.Marshal(rec)
	return string(b)
}

// s3File is one object to upload.
type s3File struct {
	key   string
	lines []string
}

// body is the file's content: its lines, gzip'd when the key ends in .gz.
func (f s3File) body() []byte {
	body := []byte(strings.Join(f.lines, "\n") + "\n")
	if strings.HasSuffix(f.key, ".gz") {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		zw.Close()
		body = buf.Bytes()
	}
	return body
}

// captureFiles cuts the scenario's predictions (duplicates included, in send order)
// into capture files of per lines, per variant and hour folder, named as SageMaker
// names them (mm-ss-mmm-uuid.jsonl); every third is gzip'd. name gives the file
// name's leading minute, so files of two batches sort as the test wants.
func captureFiles(preds []tPred, per int, name func(i int) int) []s3File {
	type folder struct{ variant, hour string }
	groups := map[folder][]tPred{}
	var order []folder
	for _, p := range preds {
		f := folder{p.Variant, p.Time.UTC().Format("2006/01/02/15")}
		if _, ok := groups[f]; !ok {
			order = append(order, f)
		}
		groups[f] = append(groups[f], p)
	}
	var files []s3File
	for _, f := range order {
		ps := groups[f]
		for i := 0; i < len(ps); i += per {
			n := len(files)
			key := fmt.Sprintf("datacapture/fraud-ep/%s/%s/%02d-%02d-%03d-5bd8d0f8-a5a4-4b4c-8d6e-%012d.jsonl",
				folderOf[f.variant], f.hour, name(n), n%60, n%1000, n)
			if n%3 == 0 {
				key += ".gz"
			}
			var lines []string
			for _, p := range ps[i:min(i+per, len(ps))] {
				lines = append(lines, captureRecord(p))
			}
			files = append(files, s3File{key, lines})
		}
	}
	return files
}

// labelFiles cuts labels (in send order) into CSV files as a dispute system exports
// them: its own column names and outcome words. Keys sort in upload order.
func labelFiles(labels []tLabel, per int, first int) []s3File {
	var files []s3File
	for i := 0; i < len(labels); i += per {
		lines := []string{"txn_id,outcome,resolved_at,system"}
		for _, l := range labels[i:min(i+per, len(labels))] {
			outcome := "legit"
			if l.Fraud {
				outcome = "fraud"
			}
			lines = append(lines, fmt.Sprintf("%s,%s,%s,disputes", l.ID, outcome, l.Time.UTC().Format(time.RFC3339Nano)))
		}
		files = append(files, s3File{fmt.Sprintf("labels/disputes/disputes-%04d.csv", first+len(files)), lines})
	}
	return files
}

// phaseFiles cuts the scenario into the files of a test's two phases: the capture
// files of the first cut predictions (early, in key order), those of the rest (late:
// named to sort before the early ones, in reverse key order), and the labels in two
// halves.
func (sc scenario) phaseFiles(cut int) (early, late, labelsA, labelsB []s3File) {
	early = captureFiles(sc.preds[:cut], 20, func(i int) int { return 30 + i%29 })
	late = captureFiles(sc.preds[cut:], 20, func(i int) int { return i % 29 })
	slices.Reverse(late)
	half := len(sc.labels) / 2
	labelsA = labelFiles(sc.labels[:half], 40, 0)
	labelsB = labelFiles(sc.labels[half:], 40, len(labelsA))
	return early, late, labelsA, labelsB
}

func upload(t *testing.T, c *s3.Client, bucket string, files []s3File) {
	t.Helper()
	for _, f := range files {
		if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(f.key), Body: bytes.NewReader(f.body())}); err != nil {
			t.Fatalf("put %s: %v", f.key, err)
		}
	}
}

// readingRules say how the test's files read: the variants of the folders, their
// roles, the attribute in the captured input, the CSV label columns and words.
var readingRules = []string{
	"VERDICT_S3_VARIANTS=AllTraffic:v5,Shadow:v6",
	"VERDICT_ROLES=v5:production,v6:shadow",
	"VERDICT_CAPTURE_ATTRIBUTES=merchant_category=json:merchant_category",
	"VERDICT_LABEL_CSV_COLUMNS=inference_id=txn_id,label=outcome,time=resolved_at,source=system",
	"VERDICT_LABEL_VALUES=fraud:true,legit:false",
}

// s3Env is the environment of a verdict process following the test bucket on kumo.
func s3Env(bucket, kumoURL string, extra ...string) []string {
	env := append([]string{
		"VERDICT_SOURCES=s3",
		"VERDICT_S3_CAPTURE_PREFIXES=s3://" + bucket + "/datacapture/",
		"VERDICT_S3_LABEL_PREFIXES=s3://" + bucket + "/labels/disputes/",
		"VERDICT_S3_POLL_INTERVAL=100ms",
		"VERDICT_S3_PATH_STYLE=true",
		"AWS_ENDPOINT_URL_S3=" + kumoURL, "AWS_ENDPOINT_URL_DYNAMODB=" + kumoURL, "AWS_ENDPOINT_URL_SQS=" + kumoURL,
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
	}, readingRules...)
	return append(env, extra...)
}

// waitRecount waits until s shows the recount for every variant and segment.
func waitRecount(t *testing.T, s *server, want map[string]cell, limit time.Duration) map[string]cell {
	t.Helper()
	var got map[string]cell
	deadline := time.Now().Add(limit)
	for {
		got, _ = metricsAPI(t, s, "")
		same := true
		for k, w := range want {
			same = same && got[k] == w
		}
		if same || time.Now().After(deadline) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestS3SourceCountsMatchRecountThroughACrash: captures of two variants and label CSV
// files are uploaded under SageMaker's layout while verdict (embedded store) follows
// the bucket; verdict is SIGKILLed in the middle; more files arrive, some late (in an
// hour folder already read, with keys sorting before the files read) and out of key
// order; after the restart every count equals the recount, and the bad lines are in
// the dead letters.
func TestS3SourceCountsMatchRecountThroughACrash(t *testing.T) {
	kumoURL := emulatortest.KumoEndpoint(t)
	c := emulatortest.S3Client(t)
	bucket := emulatortest.CreateBucket(t, c)
	sc := newScenario(6, 1200)
	want := sc.recount(0.5)
	total := want["v5"].Pred + want["v6"].Pred

	// Phase 1: half the labels, then most capture files, in key order. Phase 2 (after
	// the kill): the other capture files, named to sort before the ones read, uploaded
	// in reverse key order, and the other labels, plus two bad lines.
	early, late, labelsA, labelsB := sc.phaseFiles(len(sc.preds) * 2 / 3)
	at := sc.preds[0].Time.UTC()
	bad := []s3File{
		{fmt.Sprintf("datacapture/fraud-ep/AllTraffic/%s/00-00-000-bad.jsonl", at.Format("2006/01/02/15")),
			[]string{strings.Replace(captureRecord(tPred{ID: "bad-1", Cat: "fuel", Score: 0.5, Time: at}), `"data":"0.5"`, `"data":"1.5"`, 1)}},
		{"labels/disputes/disputes-9999.csv", []string{"txn_id,outcome,resolved_at,system", "bad-2,perhaps," + at.Format(time.RFC3339) + ",disputes"}},
	}

	dir := t.TempDir()
	env := s3Env(bucket, kumoURL)
	upload(t, c, bucket, labelsA)
	s := startServer(t, dir, env...)
	upload(t, c, bucket, early)
	var before int64
	waitFor(t, 60*time.Second, func() bool {
		got, _ := metricsAPI(t, s, "")
		before = got["v5"].Pred + got["v6"].Pred
		return before > 0
	})
	s.kill()
	if before >= total {
		t.Errorf("the kill came after everything was read (%d of %d predictions): the test proves nothing", before, total)
	}
	t.Logf("predictions counted just before the kill: %d of %d", before, total)

	upload(t, c, bucket, late)
	upload(t, c, bucket, labelsB)
	upload(t, c, bucket, bad)
	s = startServer(t, dir, env...)
	got := waitRecount(t, s, want, 90*time.Second)
	compareCounts(t, "S3 source after SIGKILL, restart and late files", got, want)
	pc, _ := prometheusCounts(t, s)
	compareCounts(t, "/metrics", pc, want)

	// The bad lines are dead letters with their reasons, one file per object.
	var letters []string
	filepath.WalkDir(filepath.Join(dir, "sources", "dead-letters"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			letters = append(letters, strings.Split(strings.TrimSpace(string(b)), "\n")...)
		}
		return nil
	})
	if len(letters) != 2 || !strings.Contains(strings.Join(letters, "\n"), "score 1.5 is outside [0, 1]") ||
		!strings.Contains(strings.Join(letters, "\n"), `\"perhaps\" is not one of the label values`) {
		t.Errorf("dead letters: %q, want the two bad lines with their reasons", letters)
	}
	_, other := prometheusCounts(t, s)
	if other["verdict_objects_behind"] != 0 || other["verdict_objects_partitions_followed"] != 3 {
		t.Errorf("objects behind %v, partitions followed %v; want 0 and 3 (two variant folders, one label prefix)",
			other["verdict_objects_behind"], other["verdict_objects_partitions_followed"])
	}
	s.stop()
}

// TestTwoInstancesShareS3PrefixesExactly: two verdict processes share one DynamoDB
// join store and the bucket's folders through leases (all on kumo); one is SIGKILLed
// mid-way and more files arrive, late and out of order; the survivor takes its
// folders over from their checkpoints and both show exactly the recount.
func TestTwoInstancesShareS3PrefixesExactly(t *testing.T) {
	kumoURL := emulatortest.KumoEndpoint(t)
	c := emulatortest.S3Client(t)
	bucket := emulatortest.CreateBucket(t, c)
	dc := emulatortest.DynamoDBClient(t)
	join := emulatortest.TableName(t, dc, "join")
	leases := emulatortest.TableName(t, dc, "s3leases")
	dead := emulatortest.TableName(t, dc, "dead")

	sc := newScenario(7, 800)
	want := sc.recount(0.5)
	early, late, labelsA, labelsB := sc.phaseFiles(len(sc.preds) / 2)
	at := sc.preds[0].Time.UTC()
	bad := s3File{fmt.Sprintf("datacapture/fraud-ep/Shadow/%s/00-00-000-bad.jsonl", at.Format("2006/01/02/15")), []string{`{"captureData":{}}`}}

	envFor := func(worker string) []string {
		return s3Env(bucket, kumoURL,
			"VERDICT_STORE=dynamodb", "VERDICT_DYNAMODB_TABLE="+join, "VERDICT_WORKER_ID="+worker,
			"VERDICT_REFRESH_EVERY=300ms", "VERDICT_S3_LEASE_TABLE="+leases, "VERDICT_S3_LEASE_DURATION=2s",
			"VERDICT_DEAD_LETTER_TABLE="+dead)
	}
	// A first file per variant makes the folders exist; both instances start and
	// share the three partitions (two variant folders, one label prefix) before the
	// bulk arrives.
	upload(t, c, bucket, labelsA)
	upload(t, c, bucket, early[:1])
	upload(t, c, bucket, early[len(early)-1:])
	a := startServer(t, t.TempDir(), envFor("w1")...)
	b := startServer(t, t.TempDir(), envFor("w2")...)
	followed := func(s *server) float64 {
		_, other := prometheusCounts(t, s)
		return other["verdict_objects_partitions_followed"]
	}
	waitFor(t, 60*time.Second, func() bool { return followed(a) >= 1 && followed(b) >= 1 && followed(a)+followed(b) == 3 })
	upload(t, c, bucket, early[1:len(early)-1])
	waitFor(t, 60*time.Second, func() bool {
		_, other := prometheusCounts(t, b)
		return other["verdict_objects_read_total"] > 1
	})
	b.kill()
	upload(t, c, bucket, late)
	upload(t, c, bucket, labelsB)
	upload(t, c, bucket, []s3File{bad})

	got := waitRecount(t, a, want, 90*time.Second)
	compareCounts(t, "survivor after the other instance was killed", got, want)
	b = startServer(t, t.TempDir(), envFor("w2")...)
	got = waitRecount(t, b, want, 30*time.Second)
	compareCounts(t, "restarted instance (shared store)", got, want)

	out, err := dc.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(dead)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 1 {
		t.Errorf("dead-letter table holds %d items, want 1 (the bad capture line)", len(out.Items))
	}
	a.stop()
	b.stop()
}

// writeFiles writes objects under root as aws s3 sync would lay them out.
func writeFiles(t *testing.T, root string, files []s3File) {
	t.Helper()
	for _, f := range files {
		path := filepath.Join(root, filepath.FromSlash(f.key))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, f.body(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReplayOfSyncedDirectoriesGivesTheRecount: a local copy of the bucket (capture
// files with the variant in their path, label CSV files) replayed twice with
// `verdict replay --captures --label-dir`, then served: the recount.
func TestReplayOfSyncedDirectoriesGivesTheRecount(t *testing.T) {
	dir := t.TempDir()
	sc := newScenario(8, 600)
	writeFiles(t, filepath.Join(dir, "sync"), captureFiles(sc.preds, 25, func(i int) int { return i % 60 }))
	// Label files sorted as written, so ties resolve as in the recount.
	writeFiles(t, filepath.Join(dir, "sync"), labelFiles(sc.labels, 50, 0))
	data := filepath.Join(dir, "store")
	env := append(os.Environ(), "VERDICT_DATA_DIR="+data, "VERDICT_SEGMENT_KEYS=merchant_category")
	env = append(env, readingRules...)
	for run := range 2 {
		cmd := exec.Command(verdictBinary(t), "replay", "--captures", filepath.Join(dir, "sync", "datacapture"),
			"--label-dir", filepath.Join(dir, "sync", "labels"), "--quiet")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("replay run %d: %v\n%s", run, err, out)
		}
		if !strings.Contains(string(out), fmt.Sprintf("%d accepted", len(sc.preds))) {
			t.Errorf("replay run %d output lacks %d accepted predictions:\n%s", run, len(sc.preds), out)
		}
		if run == 1 && !strings.Contains(string(out), fmt.Sprintf("%d accepted (%d duplicates)", len(sc.preds), len(sc.preds))) {
			t.Errorf("second replay should find every prediction a duplicate:\n%s", out)
		}
	}
	s := startServer(t, data)
	got, _ := metricsAPI(t, s, "")
	compareCounts(t, "after replaying the synced directories twice", got, sc.recount(0.5))
}
