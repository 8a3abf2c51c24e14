package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/kelseyhightower/envconfig"

	"github.com/verdictml/verdict/alarms"
	"github.com/verdictml/verdict/api"
	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/dashboard"
	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/ingest/objectsource/s3bucket"
	"github.com/verdictml/verdict/judge"
	"github.com/verdictml/verdict/labels"
	"github.com/verdictml/verdict/labels/dynamo"
	"github.com/verdictml/verdict/labels/embedded"
	"github.com/verdictml/verdict/window"
)

// settings is every VERDICT_* setting. It is read once, in main's commands, and its
// parts are handed to the components that need them. The settings are grouped per
// component, each group with its converters to that component's configuration. The
// groups are embedded: envconfig gives an embedded struct's fields no prefix of its
// own, so every variable keeps its VERDICT_<name>. The README's configuration table
// is generated from these tags (`verdict config`), group by group.
type settings struct {
	HTTPSettings
	IngestSettings
	KinesisSettings
	S3Settings
	StoreSettings
	JoinSettings
	WindowSettings
	JudgeSettings
	CloudWatchSettings
	LogSettings

	// storeFS, when set (tests), is the embedded store's filesystem.
	storeFS vfs.FS
}

// HTTPSettings are the settings of the HTTP listeners: ingest, the query API, the
// rollout gate (package httpingest, the service's muxes).
type HTTPSettings struct {
	Addr            string        `envconfig:"ADDR" default:"127.0.0.1:8080" desc:"HTTP listen address (ingest, query API, /metrics)"`
	APIToken        string        `envconfig:"API_TOKEN" desc:"bearer token required on /v1/* when set (surrounding whitespace, such as a secret file's newline, is ignored); required when VERDICT_ADDR is not loopback"`
	AllowNoToken    bool          `envconfig:"ALLOW_UNAUTHENTICATED" default:"false" desc:"let VERDICT_ADDR listen beyond loopback without VERDICT_API_TOKEN (only when something in front of verdict authenticates)"`
	GateAddr        string        `envconfig:"GATE_ADDR" desc:"optional second listener serving only GET/POST /v1/judge without the token, for rollout gates that cannot send one (Flagger); expose it inside the cluster only"`
	MaxBodyBytes    int64         `envconfig:"MAX_BODY_BYTES" default:"8388608" desc:"largest HTTP ingest body"`
	MaxIngest       int           `envconfig:"MAX_CONCURRENT_INGEST" default:"16" desc:"HTTP ingest requests served at once; more get 503 with Retry-After (each may hold a body and its decoded events in memory)"`
	BodyTimeout     time.Duration `envconfig:"BODY_READ_TIMEOUT" default:"20s" desc:"time a client has to send an ingest body; slower senders get 408 and nothing is committed"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"15s" desc:"how long SIGTERM waits for in-flight requests"`
}

// IngestSettings are the settings of where events come from and how they are decoded
// and validated (package ingest).
type IngestSettings struct {
	Sources        []string           `envconfig:"SOURCES" default:"http" desc:"event sources, comma separated: http, kinesis, s3 (objects under VERDICT_S3_*_PREFIXES); HTTP ingest is on only when listed"`
	Variants       []string           `envconfig:"VARIANTS" desc:"pinned variant names; predictions for others are rejected (empty: accept any)"`
	Roles          map[string]string  `envconfig:"ROLES" desc:"variant roles for events that carry none, e.g. v5:production,v6:shadow"`
	Thresholds     map[string]float64 `envconfig:"THRESHOLDS" desc:"per-variant decision thresholds, e.g. v5:0.5,v6:0.42"`
	Threshold      float64            `envconfig:"DEFAULT_THRESHOLD" default:"0.5" desc:"threshold of variants without one; predicted positive = score >= threshold"`
	Format         string             `envconfig:"INPUT_FORMAT" default:"auto" desc:"prediction format: auto, verdict or datacapture"`
	CaptureVariant string             `envconfig:"CAPTURE_VARIANT" desc:"variant of SageMaker Data Capture records received over HTTP or Kinesis (capture files read from S3 or a directory take their folder's)"`
	CaptureVarSel  string             `envconfig:"CAPTURE_VARIANT_SELECTOR" desc:"variant selector in endpointOutput (csv:N or json:path; input:... reads endpointInput) for fleets that share one variant name and capture folder (blue/green); overrides the folder and VERDICT_CAPTURE_VARIANT"`
	CaptureVarMap  []string           `envconfig:"CAPTURE_VARIANT_MAP" desc:"files (JSON lines {\"inference_id\",\"variant\"}) recording which variant served each inference, read at start: a Data Capture record whose id is listed takes that variant over the selector, the folder and VERDICT_CAPTURE_VARIANT (the application's record, for replays and backfills)"`
	CaptureScore   string             `envconfig:"CAPTURE_SCORE" desc:"score selector in endpointOutput: csv:N or json:path (empty: a single number)"`
	CaptureAttrs   selectors          `envconfig:"CAPTURE_ATTRIBUTES" desc:"attribute selectors into endpointInput, e.g. merchant_category=json:mcc,country=csv:4"`
	LabelColumns   selectors          `envconfig:"LABEL_CSV_COLUMNS" desc:"CSV label files: column of each label field, e.g. inference_id=txn_id,label=outcome,time=resolved_at,source=system (default: the field names)"`
	LabelValues    map[string]bool    `envconfig:"LABEL_VALUES" desc:"CSV label files: label column values, e.g. fraud:true,legit:false (default: true/false and 1/0)"`
	MaxLineBytes   int                `envconfig:"MAX_LINE_BYTES" default:"65536" desc:"largest input line; longer lines are rejected"`
	MaxVariants    int                `envconfig:"MAX_VARIANTS" default:"50" desc:"distinct variant names accepted when VERDICT_VARIANTS does not pin them (variants already counted included); more are rejected as limit_exceeded (0: no cap)"`
	MaxClockSkew   time.Duration      `envconfig:"MAX_CLOCK_SKEW" default:"5m" desc:"how far ahead of this server's clock an event time may be; later ones are rejected as future_time (0: no check)"`
}

// KinesisSettings are the settings of the Kinesis source (package ingest/kinesis).
type KinesisSettings struct {
	KinesisPreds    string        `envconfig:"KINESIS_PREDICTIONS_STREAM" desc:"Kinesis stream of predictions (with VERDICT_SOURCES=kinesis)"`
	KinesisLabels   string        `envconfig:"KINESIS_LABELS_STREAM" desc:"Kinesis stream of labels (with VERDICT_SOURCES=kinesis)"`
	LeaseTable      string        `envconfig:"KINESIS_LEASE_TABLE" default:"verdict-kinesis-leases" desc:"DynamoDB table of shard leases and checkpoints (created if missing)"`
	DeadLetterTable string        `envconfig:"DEAD_LETTER_TABLE" default:"verdict-dead-letters" desc:"DynamoDB table for rejected stream records with their reason (empty: count only)"`
	KinesisLease    time.Duration `envconfig:"KINESIS_LEASE_DURATION" default:"10s" desc:"how long a dead instance's shard leases last before others take them"`
	KinesisStart    string        `envconfig:"KINESIS_START" default:"trim_horizon" desc:"where shards without a checkpoint start: trim_horizon or latest"`
}

// S3Settings are the settings of the S3 source (package ingest/objectsource).
type S3Settings struct {
	S3Captures   []string          `envconfig:"S3_CAPTURE_PREFIXES" desc:"SageMaker Data Capture files to follow with VERDICT_SOURCES=s3: s3:// URLs of the capture destination, an endpoint or a variant folder, or local directories with the same layout; the variant is the folder's name"`
	S3Labels     []string          `envconfig:"S3_LABEL_PREFIXES" desc:"label files to follow with VERDICT_SOURCES=s3: s3:// URLs or local directories; *.csv (and *.csv.gz) are CSV, other files verdict JSON lines"`
	S3Variants   map[string]string `envconfig:"S3_VARIANTS" desc:"variant of a capture variant folder, e.g. AllTraffic:v5,fraud-ep/Shadow:v6 (default: the folder's name)"`
	S3Lookback   time.Duration     `envconfig:"S3_LOOKBACK" default:"3h" desc:"an object is read if it appears before its hour folder (or, for label files, its upload time) is this far behind the newest one read; later ones only through VERDICT_S3_QUEUE_URL"`
	S3Poll       time.Duration     `envconfig:"S3_POLL_INTERVAL" default:"30s" desc:"pause between listings of each followed folder"`
	S3Start      string            `envconfig:"S3_START" desc:"RFC 3339 time: objects whose hour folder (label files: upload time) is older are never read (default: everything under the prefixes)"`
	S3Queue      string            `envconfig:"S3_QUEUE_URL" desc:"SQS queue receiving the bucket's s3:ObjectCreated:* notifications, to read new objects without waiting for a listing (optional)"`
	S3LeaseTable string            `envconfig:"S3_LEASE_TABLE" default:"verdict-s3-leases" desc:"with VERDICT_STORE=dynamodb: DynamoDB table of folder leases and checkpoints (created if missing); the embedded store keeps them in VERDICT_DATA_DIR"`
	S3Lease      time.Duration     `envconfig:"S3_LEASE_DURATION" default:"10s" desc:"how long a dead instance's folder leases last before others take them"`
	S3PathStyle  bool              `envconfig:"S3_PATH_STYLE" default:"false" desc:"path-style S3 requests (http://host/bucket/key), for S3-compatible servers and emulators; AWS uses virtual-hosted style"`
}

// StoreSettings are the settings of the join store: embedded (package labels/embedded)
// or DynamoDB (labels/dynamo).
type StoreSettings struct {
	Store          string        `envconfig:"STORE" default:"embedded" desc:"join store: embedded (pebble in VERDICT_DATA_DIR) or dynamodb (shared by several instances)"`
	DataDir        string        `envconfig:"DATA_DIR" default:"verdict-data" desc:"directory of the embedded join store"`
	StoreSync      bool          `envconfig:"STORE_SYNC" default:"true" desc:"fsync each commit (false survives kill -9 but not power loss)"`
	StoreCacheMB   int64         `envconfig:"STORE_CACHE_MB" default:"512" desc:"join store block cache (MiB); size toward the records labels still arrive for"`
	StoreMinFreeMB int64         `envconfig:"STORE_MIN_FREE_MB" default:"256" desc:"free space (MiB) kept on the data directory's filesystem: below it commits are refused with 503 and /readyz turns red, so the disk never fills under the store (0: no reserve)"`
	StoreRecovery  string        `envconfig:"STORE_RECOVERY" default:"off" desc:"off: refuse to start on a damaged store; salvage: start anyway, cutting a corrupt write-ahead log at the damage (what followed is lost: resend it) - for one start, see docs/operations.md"`
	DynamoTable    string        `envconfig:"DYNAMODB_TABLE" default:"verdict-join" desc:"DynamoDB join table (created if missing) with VERDICT_STORE=dynamodb"`
	RefreshEvery   time.Duration `envconfig:"REFRESH_EVERY" default:"5s" desc:"with a shared store: how often windows reload the global tallies"`
	WorkerID       string        `envconfig:"WORKER_ID" desc:"this instance's name in lease tables (default hostname-pid)"`
	Retention      time.Duration `envconfig:"RETENTION" default:"2160h" desc:"fully resolved join records older than this are deleted, and events older than this are rejected (too_old) so a resend never counts twice (0: keep and accept forever)"`
}

// JoinSettings are the settings of how the join resolves predictions (package labels).
type JoinSettings struct {
	SegmentKeys   []string      `envconfig:"SEGMENT_KEYS" desc:"prediction attributes counted as segments, e.g. merchant_category,country"`
	MaxSegments   int           `envconfig:"MAX_SEGMENT_VALUES" default:"200" desc:"distinct values per segment key; later ones count as __other__"`
	Maturity      time.Duration `envconfig:"MATURITY" default:"720h" desc:"how long after its prediction time an unlabeled prediction matures"`
	MaturityMode  string        `envconfig:"MATURITY_MODE" default:"negative" desc:"negative: a matured prediction counts as labeled negative; unresolved: it stays pending"`
	Declined      string        `envconfig:"DECLINED" default:"negative" desc:"predictions of inferences the production-role variant flagged (declined; no dispute ever comes): negative: mature like any other, so its catches count as its own false positives; censored: never mature, left out of every ratio until a label (see VERDICT_REVIEW_SOURCES) resolves them"`
	ReviewSources []string      `envconfig:"REVIEW_SOURCES" desc:"with VERDICT_DECLINED=censored: label sources that resolve declined inferences, e.g. review (empty: any label does)"`
	MatureEvery   time.Duration `envconfig:"MATURE_EVERY" default:"10s" desc:"how often matured predictions are resolved"`
}

// WindowSettings are the settings of the sliding windows and what they report (package
// window).
type WindowSettings struct {
	Windows       []string      `envconfig:"WINDOWS" default:"1h,24h,7d" desc:"sliding windows (by prediction time) kept besides all-time"`
	Bucket        time.Duration `envconfig:"BUCKET" default:"5m" desc:"width of prediction-time buckets; windows move in these steps"`
	Coverage      float64       `envconfig:"ESTIMABLE_COVERAGE" default:"0.95" desc:"resolved share of a window's flagged predictions (censored aside) before precision and F1 are reported; below it they are null (absent on /metrics and CloudWatch) with bounds, and recall is marked early"`
	CohortHorizon time.Duration `envconfig:"COHORT_HORIZON" desc:"how far back daily cohorts are kept for /v1/coverage and min_age windows (default: VERDICT_MATURITY + the longest window)"`
}

// JudgeSettings are the settings of the comparisons of candidates with the baseline
// (package judge).
type JudgeSettings struct {
	Baseline       string   `envconfig:"BASELINE" desc:"baseline variant for comparisons (e.g. the production model)"`
	Candidates     []string `envconfig:"CANDIDATES" desc:"candidate variants judged against the baseline on /metrics (segment regressions, deltas)"`
	JudgeWindow    string   `envconfig:"JUDGE_WINDOW" default:"period" desc:"what the judge reads by default (/v1/judge, /metrics): period = the comparison period since the candidate's first prediction (decisions hold however often a gate asks), or a sliding window such as 24h (one look); CloudWatch always publishes the period (an alarm looks every minute)"`
	JudgeSince     string   `envconfig:"JUDGE_SINCE" desc:"RFC 3339 start of the comparison period (e.g. the rollout's start) instead of the candidate's first prediction, for the judge, /metrics and CloudWatch"`
	JudgeAlpha     float64  `envconfig:"JUDGE_ALPHA" default:"0.01" desc:"false-fail rate of a whole comparison period, across every metric and segment and however often it is asked"`
	JudgeBeta      float64  `envconfig:"JUDGE_BETA" default:"0.05" desc:"false-pass rate: chance of passing a candidate worse than the tolerance in a required scope"`
	JudgeTolerance float64  `envconfig:"JUDGE_TOLERANCE" default:"0.02" desc:"non-inferiority margin overall: pass needs the candidate shown worse by less than this (absolute)"`
	JudgeSegTol    float64  `envconfig:"JUDGE_SEGMENT_TOLERANCE" default:"0.05" desc:"non-inferiority margin in segments"`
	JudgeSegShare  float64  `envconfig:"JUDGE_MIN_SEGMENT_SHARE" default:"0.05" desc:"segments with at least this share of predictions or labeled positives must pass too (negative: none by share)"`
	JudgeSegments  []string `envconfig:"JUDGE_REQUIRED_SEGMENTS" desc:"segments that must pass whatever their share, e.g. merchant_category=electronics"`
	JudgeMAR       bool     `envconfig:"JUDGE_LABELS_MISSING_AT_RANDOM" default:"false" desc:"true when a prediction's label does not depend on the flags (no declines); false (fraud): a pass must hold even if every unlabeled prediction the baseline flagged was fraud the candidate missed"`
	JudgePassOn    []string `envconfig:"JUDGE_PASS_METRICS" default:"recall" desc:"metrics a required scope must show non-inferior to pass: recall, precision (any significant drop fails either way)"`
}

// CloudWatchSettings are the settings of the metric sinks, the CloudWatch publisher
// with its shift signals, and the local alarm watch (packages publish/cloudwatch,
// alarms/watch).
type CloudWatchSettings struct {
	Sinks           []string          `envconfig:"SINKS" default:"prometheus" desc:"metric sinks: prometheus (always on /metrics), cloudwatch"`
	CWNamespace     string            `envconfig:"CLOUDWATCH_NAMESPACE" default:"Verdict" desc:"CloudWatch namespace (must match the alarm spec)"`
	CWEndpoint      string            `envconfig:"CLOUDWATCH_ENDPOINT_NAME" desc:"SageMaker endpoint name: the EndpointName dimension (required with the cloudwatch sink)"`
	CWWindow        string            `envconfig:"CLOUDWATCH_WINDOW" default:"1h" desc:"window the published values are computed over"`
	CWInterval      time.Duration     `envconfig:"CLOUDWATCH_INTERVAL" default:"60s" desc:"publish interval"`
	CWHighRes       bool              `envconfig:"CLOUDWATCH_HIGH_RESOLUTION" default:"false" desc:"publish 1-second-resolution metrics (costs more)"`
	CWOmitTimestamp bool              `envconfig:"CLOUDWATCH_OMIT_TIMESTAMP" default:"false" desc:"local emulators only (kumo cannot read timestamps); never in production"`
	CWVariantNames  map[string]string `envconfig:"CLOUDWATCH_VARIANT_NAMES" desc:"VariantName dimension per variant, e.g. v5:AllTraffic,v6:AllTraffic (default: the variant id)"`
	CWTopSegments   map[string]int    `envconfig:"CLOUDWATCH_TOP_SEGMENTS" desc:"per-segment metrics for the N busiest values of a key, e.g. merchant_category:10 (custom metrics cost money)"`
	RefSince        string            `envconfig:"REFERENCE_SINCE" desc:"RFC 3339 start of the reference period (the shadow stage) the shift signals compare with; with VERDICT_REFERENCE_UNTIL, the cloudwatch sink publishes them (docs/alarms.md)"`
	RefUntil        string            `envconfig:"REFERENCE_UNTIL" desc:"RFC 3339 end of the reference period: where the shadow stage ended and the traffic shift starts"`
	ShiftMinPreds   int64             `envconfig:"SHIFT_MIN_PREDICTIONS" default:"1000" desc:"predictions each variant needs in a segment, live and in the reference, to enter the worst-segment shift signals"`
	ShiftAlpha      float64           `envconfig:"SHIFT_ALPHA" default:"0.001" desc:"chance per look that a segment of a candidate moving like the baseline is shown to shift (split over the segments)"`
	AlarmSpec       string            `envconfig:"ALARM_SPEC" desc:"alarm spec (YAML, docs/alarms.md) whose alarms the dashboard and GET /v1/alarms evaluate locally, with CloudWatch's semantics, over what the CloudWatch publisher would send every VERDICT_CLOUDWATCH_INTERVAL (no AWS needed; SageMaker's own metrics are not evaluated)"`
}

// LogSettings are the settings of the log.
type LogSettings struct {
	LogLevel  string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"text" desc:"text or json"`
}

func loadConfig() (settings, error) {
	var c settings
	if err := envconfig.Process("verdict", &c); err != nil {
		return c, fmt.Errorf("configuration: %w", err)
	}
	c.APIToken = strings.TrimSpace(c.APIToken)
	return c, c.validate()
}

// decoderVariables names the variable behind each DecoderConfig field the
// environment sets.
var decoderVariables = []struct{ field, variable string }{
	{"Format", "VERDICT_INPUT_FORMAT"},
	{"DefaultThreshold", "VERDICT_DEFAULT_THRESHOLD"},
	{"Thresholds", "VERDICT_THRESHOLDS"},
	{"Variants", "VERDICT_VARIANTS"},
	{"Roles", "VERDICT_ROLES"},
	{"MaxLineBytes", "VERDICT_MAX_LINE_BYTES"},
	{"MaxVariants", "VERDICT_MAX_VARIANTS"},
	{"MaxClockSkew", "VERDICT_MAX_CLOCK_SKEW"},
	{"MaxAge", "VERDICT_RETENTION"},
	{"DataCapture.VariantSelector", "VERDICT_CAPTURE_VARIANT_SELECTOR"}, // before its prefix DataCapture.Variant
	{"DataCapture.Variant", "VERDICT_CAPTURE_VARIANT"},
	{"DataCapture.Score", "VERDICT_CAPTURE_SCORE"},
	{"DataCapture.Attributes", "VERDICT_CAPTURE_ATTRIBUTES"},
	{"LabelCSV.Columns", "VERDICT_LABEL_CSV_COLUMNS"},
	{"LabelCSV.Values", "VERDICT_LABEL_VALUES"},
}

// decoderProblems checks the decoder settings as the decoder will, and names the
// variable of each problem.
func (c settings) decoderProblems() []string {
	_, err := ingest.NewDecoder(c.liveDecoderConfig())
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []string
	for _, e := range errs {
		ce, ok := e.(*ingest.ConfigError)
		if !ok {
			out = append(out, e.Error())
			continue
		}
		name := "VERDICT_* (" + ce.Field + ")"
		for _, dv := range decoderVariables {
			if strings.HasPrefix(ce.Field, dv.field) {
				name = dv.variable
				if rest := strings.TrimPrefix(ce.Field, dv.field); rest != "" {
					name += " " + rest
				}
				break
			}
		}
		out = append(out, name+": "+ce.Problem)
	}
	return out
}

// listenProblem says what is wrong with a listen address, or "".
func listenProblem(variable, addr string) string {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Sprintf("%s: %q is not host:port (%v)", variable, addr, err)
	}
	return ""
}

// loopback reports whether addr listens on this machine only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tokenProblem says why a bearer token cannot work, or "": after trimming it must be
// visible ASCII without spaces, or clients cannot send it in a header as it is.
func tokenProblem(token string) string {
	for i := 0; i < len(token); i++ {
		if b := token[i]; b <= ' ' || b >= 0x7f {
			return fmt.Sprintf("VERDICT_API_TOKEN: byte %d is %q; a bearer token must be visible ASCII without spaces or control characters", i, b)
		}
	}
	return ""
}

func (c settings) validate() error {
	var problems []string
	if _, err := c.spans(); err != nil {
		problems = append(problems, "VERDICT_WINDOWS: "+err.Error())
	}
	if c.Bucket < time.Second || c.Bucket%time.Second != 0 {
		problems = append(problems, fmt.Sprintf("VERDICT_BUCKET: %s must be whole seconds, at least 1s", c.Bucket))
	}
	if c.MaturityMode != "negative" && c.MaturityMode != "unresolved" {
		problems = append(problems, fmt.Sprintf("VERDICT_MATURITY_MODE: %q must be negative or unresolved", c.MaturityMode))
	}
	if c.Maturity < 0 {
		problems = append(problems, "VERDICT_MATURITY: must not be negative")
	}
	if _, err := labels.ParseDeclined(c.Declined); err != nil {
		problems = append(problems, "VERDICT_DECLINED: "+err.Error())
	} else if len(c.ReviewSources) > 0 && c.Declined != "censored" {
		problems = append(problems, "VERDICT_REVIEW_SOURCES: needs VERDICT_DECLINED=censored (with negative, every label resolves every prediction)")
	}
	if !(c.Coverage > 0 && c.Coverage <= 1) {
		problems = append(problems, fmt.Sprintf("VERDICT_ESTIMABLE_COVERAGE: %g must be in (0, 1]", c.Coverage))
	}
	if c.CohortHorizon != 0 && c.CohortHorizon < c.longest() {
		problems = append(problems, fmt.Sprintf("VERDICT_COHORT_HORIZON: %s must be at least the longest window (%s), or 0 for VERDICT_MATURITY + the longest window", c.CohortHorizon, c.longest()))
	}
	if _, err := judgeRange(c.JudgeWindow, c.JudgeSince); err != nil {
		problems = append(problems, err.Error())
	}
	if _, err := c.judgeConfig(); err != nil {
		problems = append(problems, err.Error())
	}
	if len(c.Candidates) > 0 && c.Baseline == "" {
		problems = append(problems, "VERDICT_CANDIDATES: needs VERDICT_BASELINE")
	}
	for _, src := range c.Sources {
		switch strings.TrimSpace(src) {
		case "http":
		case "kinesis":
			if c.KinesisPreds == "" && c.KinesisLabels == "" {
				problems = append(problems, "VERDICT_SOURCES=kinesis needs VERDICT_KINESIS_PREDICTIONS_STREAM and/or VERDICT_KINESIS_LABELS_STREAM")
			}
		case "s3":
			problems = append(problems, c.s3Problems()...)
		default:
			problems = append(problems, fmt.Sprintf("VERDICT_SOURCES: %q must be http, kinesis or s3", src))
		}
	}
	if c.Format == string(ingest.FormatDataCapture) && c.CaptureVariant == "" && c.CaptureVarSel == "" && (c.source("http") || c.source("kinesis")) {
		problems = append(problems, "VERDICT_INPUT_FORMAT=datacapture: Data Capture records received over HTTP or Kinesis do not name their variant; set VERDICT_CAPTURE_VARIANT or VERDICT_CAPTURE_VARIANT_SELECTOR")
	}
	for _, path := range c.CaptureVarMap {
		if _, err := os.Stat(strings.TrimSpace(path)); err != nil {
			problems = append(problems, fmt.Sprintf("VERDICT_CAPTURE_VARIANT_MAP: %v", err))
		}
	}
	switch c.Store {
	case "embedded", "dynamodb":
	default:
		problems = append(problems, fmt.Sprintf("VERDICT_STORE: %q must be embedded or dynamodb", c.Store))
	}
	for _, sink := range c.Sinks {
		switch strings.TrimSpace(sink) {
		case "prometheus":
		case "cloudwatch":
			if c.CWEndpoint == "" {
				problems = append(problems, "VERDICT_SINKS=cloudwatch needs VERDICT_CLOUDWATCH_ENDPOINT_NAME")
			}
			if err := cwmetric.CheckNamespace(c.CWNamespace); err != nil {
				problems = append(problems, "VERDICT_CLOUDWATCH_NAMESPACE: "+err.Error())
			}
			if _, err := window.ParseSpan(c.CWWindow); err != nil {
				problems = append(problems, "VERDICT_CLOUDWATCH_WINDOW: "+err.Error())
			}
		default:
			problems = append(problems, fmt.Sprintf("VERDICT_SINKS: %q must be prometheus or cloudwatch", sink))
		}
	}
	if _, _, err := c.reference(); err != nil {
		problems = append(problems, err.Error())
	}
	if c.RefSince != "" && (c.Baseline == "" || len(c.Candidates) == 0) {
		problems = append(problems, "VERDICT_REFERENCE_SINCE: the shift signals compare candidates with a baseline; set VERDICT_BASELINE and VERDICT_CANDIDATES")
	}
	if err := c.shiftConfig().Validate(); err != nil {
		problems = append(problems, "VERDICT_SHIFT_*: "+err.Error())
	}
	if c.RefreshEvery < 100*time.Millisecond {
		problems = append(problems, "VERDICT_REFRESH_EVERY: must be at least 100ms")
	}
	if c.KinesisStart != "trim_horizon" && c.KinesisStart != "latest" {
		problems = append(problems, fmt.Sprintf("VERDICT_KINESIS_START: %q must be trim_horizon or latest", c.KinesisStart))
	}
	if c.Retention != 0 && (c.Retention <= c.Maturity || c.Retention < c.longest()) {
		problems = append(problems, fmt.Sprintf("VERDICT_RETENTION: %s must exceed VERDICT_MATURITY (%s) and the longest window (0 keeps records forever)", c.Retention, c.Maturity))
	}
	if c.Store == "dynamodb" && c.Retention != 0 && c.Retention < c.tallyHorizon() {
		problems = append(problems, fmt.Sprintf("VERDICT_RETENTION: %s must cover VERDICT_COHORT_HORIZON plus a day (%s) with VERDICT_STORE=dynamodb: bucket tallies expire with it", c.Retention, c.tallyHorizon()))
	}
	if c.MaxSegments < 1 {
		problems = append(problems, "VERDICT_MAX_SEGMENT_VALUES: must be at least 1")
	}
	if c.MaxBodyBytes < 1024 {
		problems = append(problems, "VERDICT_MAX_BODY_BYTES: must be at least 1024")
	}
	for v, r := range c.Roles {
		if r != string(ingest.RoleProduction) && r != string(ingest.RoleShadow) {
			problems = append(problems, fmt.Sprintf("VERDICT_ROLES: variant %q: role %q must be production or shadow", v, r))
		}
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		problems = append(problems, "VERDICT_LOG_LEVEL: "+err.Error())
	}
	problems = append(problems, c.decoderProblems()...)
	if c.MaxLineBytes < 256 || int64(c.MaxLineBytes) > c.MaxBodyBytes {
		problems = append(problems, fmt.Sprintf("VERDICT_MAX_LINE_BYTES: %d must be between 256 and VERDICT_MAX_BODY_BYTES (%d)", c.MaxLineBytes, c.MaxBodyBytes))
	}
	if c.MaxIngest < 1 {
		problems = append(problems, fmt.Sprintf("VERDICT_MAX_CONCURRENT_INGEST: %d must be at least 1", c.MaxIngest))
	}
	if c.BodyTimeout < time.Second {
		problems = append(problems, fmt.Sprintf("VERDICT_BODY_READ_TIMEOUT: %s must be at least 1s", c.BodyTimeout))
	}
	if c.StoreCacheMB < 1 {
		problems = append(problems, fmt.Sprintf("VERDICT_STORE_CACHE_MB: %d must be at least 1", c.StoreCacheMB))
	}
	if c.MatureEvery <= 0 {
		problems = append(problems, fmt.Sprintf("VERDICT_MATURE_EVERY: %s must be positive", c.MatureEvery))
	}
	if c.ShutdownTimeout < 0 {
		problems = append(problems, fmt.Sprintf("VERDICT_SHUTDOWN_TIMEOUT: %s must not be negative", c.ShutdownTimeout))
	}
	if c.KinesisLease <= 0 {
		problems = append(problems, fmt.Sprintf("VERDICT_KINESIS_LEASE_DURATION: %s must be positive", c.KinesisLease))
	}
	if c.sink("cloudwatch") && c.CWInterval < time.Second {
		problems = append(problems, fmt.Sprintf("VERDICT_CLOUDWATCH_INTERVAL: %s must be at least 1s", c.CWInterval))
	}
	if !(c.JudgeAlpha >= 0 && c.JudgeAlpha < 1) {
		problems = append(problems, fmt.Sprintf("VERDICT_JUDGE_ALPHA: %g must be in (0, 1)", c.JudgeAlpha))
	}
	if !(c.JudgeBeta >= 0 && c.JudgeBeta < 1) {
		problems = append(problems, fmt.Sprintf("VERDICT_JUDGE_BETA: %g must be in (0, 1)", c.JudgeBeta))
	}
	if !(c.JudgeTolerance >= 0 && c.JudgeTolerance < 1) {
		problems = append(problems, fmt.Sprintf("VERDICT_JUDGE_TOLERANCE: %g must be in [0, 1)", c.JudgeTolerance))
	}
	if !(c.JudgeSegTol >= 0 && c.JudgeSegTol < 1) {
		problems = append(problems, fmt.Sprintf("VERDICT_JUDGE_SEGMENT_TOLERANCE: %g must be in [0, 1)", c.JudgeSegTol))
	}
	if why := listenProblem("VERDICT_ADDR", c.Addr); why != "" {
		problems = append(problems, why)
	} else if c.APIToken == "" && !c.AllowNoToken && !loopback(c.Addr) {
		problems = append(problems, fmt.Sprintf("VERDICT_ADDR: %s listens beyond this machine and VERDICT_API_TOKEN is not set, so anyone who reaches it could write events; "+
			"set a token, or VERDICT_ALLOW_UNAUTHENTICATED=true when something in front of verdict authenticates", c.Addr))
	}
	if c.GateAddr != "" {
		if why := listenProblem("VERDICT_GATE_ADDR", c.GateAddr); why != "" {
			problems = append(problems, why)
		}
	}
	problems = append(problems, c.alarmSpecProblems()...)
	if why := tokenProblem(c.APIToken); why != "" {
		problems = append(problems, why)
	}
	if c.StoreMinFreeMB < 0 {
		problems = append(problems, fmt.Sprintf("VERDICT_STORE_MIN_FREE_MB: %d must not be negative (0 disables the reserve)", c.StoreMinFreeMB))
	}
	if c.StoreRecovery != "off" && c.StoreRecovery != "salvage" {
		problems = append(problems, fmt.Sprintf("VERDICT_STORE_RECOVERY: %q must be off or salvage", c.StoreRecovery))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		problems = append(problems, fmt.Sprintf("VERDICT_LOG_FORMAT: %q must be text or json", c.LogFormat))
	}
	if len(problems) > 0 {
		return fmt.Errorf("configuration: %s", strings.Join(problems, "; "))
	}
	return nil
}

// spans are the configured windows plus all-time.
func (c WindowSettings) spans() ([]window.Span, error) {
	out := []window.Span{window.AllTime}
	for _, s := range c.Windows {
		sp, err := window.ParseSpan(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		if sp == window.AllTime {
			continue
		}
		if !slices.Contains(out, sp) {
			out = append(out, sp)
		}
	}
	return out, nil
}

func (c WindowSettings) longest() time.Duration {
	spans, _ := c.spans()
	var l time.Duration
	for _, s := range spans {
		l = max(l, time.Duration(s))
	}
	return l
}

// cohortHorizon is how far back the windows keep daily cohorts.
func (c settings) cohortHorizon() time.Duration {
	if c.CohortHorizon > 0 {
		return c.CohortHorizon
	}
	return c.Maturity + c.longest()
}

// tallyHorizon is how far back bucket tallies are kept and restored: the cohort
// horizon's whole first day.
func (c settings) tallyHorizon() time.Duration { return c.cohortHorizon() + 24*time.Hour }

// rule is the estimability rule of every snapshot.
func (c WindowSettings) rule() window.Rule { return window.Rule{Coverage: c.Coverage} }

// newWindows are the service's windows: the configured ones, daily cohorts to the
// cohort horizon, the estimability rule.
func (c settings) newWindows() *window.Windows {
	return window.New(c.Bucket, c.longest(), window.Cohorts(c.cohortHorizon()), window.WithRule(c.rule()))
}

// labelPolicy is how labels resolve predictions, as the API reports it.
func (c settings) labelPolicy() api.LabelPolicy {
	p := api.LabelPolicy{Declined: c.Declined, ReviewSources: c.ReviewSources, Coverage: c.Coverage}
	if c.MaturityMode == "negative" {
		p.Maturity = c.Maturity
	}
	return p
}

func (c settings) joinConfig() labels.Config {
	return c.JoinSettings.labels(c.Bucket, c.tallyHorizon())
}

// labels is the join's configuration: buckets of width bucket, tallies restored
// back to longest.
func (c JoinSettings) labels(bucket, longest time.Duration) labels.Config {
	declined, _ := labels.ParseDeclined(c.Declined) // validated
	jc := labels.Config{
		SegmentKeys:      c.SegmentKeys,
		MaxSegmentValues: c.MaxSegments,
		Bucket:           bucket,
		Longest:          longest,
		Declined:         declined,
		ReviewSources:    c.ReviewSources,
	}
	if c.MaturityMode == "negative" {
		jc.Maturity = c.Maturity
	}
	return jc
}

// judgeRange reads VERDICT_JUDGE_WINDOW and VERDICT_JUDGE_SINCE.
func judgeRange(win, since string) (judge.Range, error) {
	var r judge.Range
	if win != "period" && win != "" {
		span, err := window.ParseSpan(win)
		if err != nil {
			return r, fmt.Errorf("VERDICT_JUDGE_WINDOW: %w (or period)", err)
		}
		if since != "" {
			return r, errors.New("VERDICT_JUDGE_SINCE: starts a comparison period, but VERDICT_JUDGE_WINDOW is a sliding window; set VERDICT_JUDGE_WINDOW=period")
		}
		return judge.Sliding(span), nil
	}
	if since != "" {
		t, err := time.Parse(time.RFC3339, since)
		if err != nil {
			return r, fmt.Errorf("VERDICT_JUDGE_SINCE: %q: want an RFC 3339 time such as 2026-12-04T10:00:00Z", since)
		}
		return judge.Period(t), nil
	}
	return judge.Period(time.Time{}), nil
}

// joinSpec is the join store VERDICT_STORE names, the join's rules and windows,
// the windows the join feeds.
func (c settings) joinSpec(log *slog.Logger, windows *window.Windows) joinSpec {
	return joinSpec{
		store:        c.Store,
		dir:          c.DataDir,
		embedded:     c.StoreSettings.embedded(log, c.storeFS),
		retention:    c.Retention,
		dynamo:       c.StoreSettings.dynamo(log),
		refreshEvery: c.RefreshEvery,
		join:         c.joinConfig(),
		windows:      windows,
		log:          log,
	}
}

// embedded is the embedded store's options, on fs (nil: the operating system's).
func (c StoreSettings) embedded(log *slog.Logger, fs vfs.FS) embedded.Options {
	return embedded.Options{
		CacheBytes:   c.StoreCacheMB << 20,
		NoSync:       !c.StoreSync,
		Logger:       log,
		MinFreeBytes: c.StoreMinFreeMB << 20,
		Salvage:      c.StoreRecovery == "salvage",
		FS:           fs,
	}
}

// dynamo is the DynamoDB store's configuration; VERDICT_RETENTION=0 keeps records
// forever.
func (c StoreSettings) dynamo(log *slog.Logger) dynamo.Config {
	retention := c.Retention
	if retention == 0 {
		retention = dynamo.Forever
	}
	return dynamo.Config{Table: c.DynamoTable, WriterID: c.workerID(), Retention: retention, Logger: log}
}

// reference reads VERDICT_REFERENCE_SINCE and VERDICT_REFERENCE_UNTIL; both zero
// when unset.
func (c settings) reference() (since, until time.Time, err error) {
	if c.RefSince == "" && c.RefUntil == "" {
		return since, until, nil
	}
	if c.RefSince == "" || c.RefUntil == "" {
		return since, until, errors.New("VERDICT_REFERENCE_SINCE and VERDICT_REFERENCE_UNTIL: set both (the shadow stage's start and end) or neither")
	}
	if since, err = time.Parse(time.RFC3339, c.RefSince); err != nil {
		return since, until, fmt.Errorf("VERDICT_REFERENCE_SINCE: %q: want an RFC 3339 time such as 2026-12-01T09:00:00Z", c.RefSince)
	}
	if until, err = time.Parse(time.RFC3339, c.RefUntil); err != nil {
		return since, until, fmt.Errorf("VERDICT_REFERENCE_UNTIL: %q: want an RFC 3339 time such as 2026-12-04T09:00:00Z", c.RefUntil)
	}
	if !until.After(since.Add(c.Bucket)) {
		return since, until, fmt.Errorf("VERDICT_REFERENCE_UNTIL: %s must be more than a bucket (VERDICT_BUCKET %s) after VERDICT_REFERENCE_SINCE %s", c.RefUntil, c.Bucket, c.RefSince)
	}
	if l := c.longest(); until.Sub(since) > l {
		return since, until, fmt.Errorf("VERDICT_REFERENCE_SINCE: the reference period of %s is longer than the longest of VERDICT_WINDOWS (%s); its buckets would not be kept", until.Sub(since), l)
	}
	return since, until, nil
}

func (c CloudWatchSettings) shiftConfig() judge.ShiftConfig {
	return judge.ShiftConfig{MinPredictions: c.ShiftMinPreds, Alpha: c.ShiftAlpha}
}

func (c settings) judgeConfig() (judge.Config, error) { return c.JudgeSettings.judge(c.rule()) }

// judge is the judge's configuration, with estimable the windows' estimability rule.
func (c JudgeSettings) judge(estimable window.Rule) (judge.Config, error) {
	rng, err := judgeRange(c.JudgeWindow, c.JudgeSince)
	if err != nil {
		return judge.Config{}, err
	}
	zeroIsNone := func(v float64) float64 {
		if v == 0 {
			return -1 // judge.Config reads 0 as "default"; here 0 means none
		}
		return v
	}
	tol, segTol := zeroIsNone(c.JudgeTolerance), zeroIsNone(c.JudgeSegTol)
	jc := judge.Config{
		Alpha: c.JudgeAlpha, Beta: c.JudgeBeta,
		RecallTolerance: tol, PrecisionTolerance: tol, SegmentRecallTolerance: segTol, SegmentPrecisionTolerance: segTol,
		MinSegmentShare: zeroIsNone(c.JudgeSegShare), RequiredSegments: c.JudgeSegments, Range: rng,
		Estimable: estimable, MissingAtRandom: c.JudgeMAR,
	}
	for _, m := range c.JudgePassOn {
		jc.PassMetrics = append(jc.PassMetrics, judge.Metric(strings.TrimSpace(m)))
	}
	if err := jc.Validate(); err != nil {
		return jc, fmt.Errorf("VERDICT_JUDGE_*: %w", err)
	}
	return jc, nil
}

// judgePairs are the (baseline, candidate) comparisons /metrics carries, over the
// judge's default range.
func (c JudgeSettings) judgePairs() []judge.Pair {
	rng, _ := judgeRange(c.JudgeWindow, c.JudgeSince)
	var out []judge.Pair
	for _, cand := range c.Candidates {
		if cand != c.Baseline {
			out = append(out, judge.Pair{Baseline: c.Baseline, Candidate: cand, Range: rng})
		}
	}
	return out
}

// liveDecoderConfig is decoderConfig with the rules of a service that receives
// events as they happen: the clock skew, the retention horizon and the variant cap.
// Rehearsals and backtests replay recorded time and use decoderConfig.
func (c settings) liveDecoderConfig() ingest.DecoderConfig {
	dc := c.decoderConfig()
	dc.MaxVariants = c.MaxVariants
	dc.MaxClockSkew = c.MaxClockSkew
	dc.MaxAge = c.Retention
	return dc
}

// liveDecoder is the decoder of a service (serve, replay): liveDecoderConfig with
// the variant map of VERDICT_CAPTURE_VARIANT_MAP read from its files.
func (c settings) liveDecoder() (*ingest.Decoder, error) {
	dc := c.liveDecoderConfig()
	if len(c.CaptureVarMap) > 0 {
		fleets := ingest.VariantMap{}
		for _, path := range c.CaptureVarMap {
			if err := readVariantMapFile(strings.TrimSpace(path), fleets); err != nil {
				return nil, fmt.Errorf("VERDICT_CAPTURE_VARIANT_MAP: %w", err)
			}
		}
		dc.DataCapture.Fleets = fleets
	}
	dec, err := ingest.NewDecoder(dc)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return dec, nil
}

func readVariantMapFile(path string, into ingest.VariantMap) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return ingest.ReadVariantMap(f, path, into)
}

func (c IngestSettings) decoderConfig() ingest.DecoderConfig {
	roles := map[string]ingest.Role{}
	for v, r := range c.Roles {
		roles[v] = ingest.Role(r)
	}
	return ingest.DecoderConfig{
		Format:           ingest.Format(c.Format),
		DefaultThreshold: c.Threshold,
		Thresholds:       c.Thresholds,
		Variants:         c.Variants,
		Roles:            roles,
		MaxLineBytes:     c.MaxLineBytes,
		DataCapture: ingest.DataCaptureConfig{
			Variant:         c.CaptureVariant,
			VariantSelector: c.CaptureVarSel,
			Score:           c.CaptureScore,
			Attributes:      map[string]string(c.CaptureAttrs),
		},
		LabelCSV: ingest.LabelCSVConfig{Columns: map[string]string(c.LabelColumns), Values: c.LabelValues},
	}
}

// selectors is name=selector pairs, comma separated (selectors contain colons, so
// envconfig's name:value map syntax cannot carry them).
type selectors map[string]string

// Decode implements envconfig.Decoder.
func (s *selectors) Decode(v string) error {
	m := selectors{}
	for _, pair := range strings.Split(v, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		name, sel, ok := strings.Cut(pair, "=")
		if !ok || name == "" || sel == "" {
			return fmt.Errorf("%q: want name=selector, e.g. merchant_category=json:mcc", pair)
		}
		m[strings.TrimSpace(name)] = strings.TrimSpace(sel)
	}
	*s = m
	return nil
}

// s3Problems checks the VERDICT_S3_* settings for VERDICT_SOURCES=s3.
func (c S3Settings) s3Problems() []string {
	var problems []string
	if len(c.S3Captures) == 0 && len(c.S3Labels) == 0 {
		problems = append(problems, "VERDICT_SOURCES=s3 needs VERDICT_S3_CAPTURE_PREFIXES and/or VERDICT_S3_LABEL_PREFIXES")
	}
	for _, v := range []struct {
		name     string
		prefixes []string
	}{{"VERDICT_S3_CAPTURE_PREFIXES", c.S3Captures}, {"VERDICT_S3_LABEL_PREFIXES", c.S3Labels}} {
		for _, p := range v.prefixes {
			if _, _, err := parsePrefix(p); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", v.name, err))
			}
		}
	}
	if c.S3Lookback <= 0 {
		problems = append(problems, fmt.Sprintf("VERDICT_S3_LOOKBACK: %s must be positive", c.S3Lookback))
	}
	if c.S3Poll < 10*time.Millisecond {
		problems = append(problems, fmt.Sprintf("VERDICT_S3_POLL_INTERVAL: %s must be at least 10ms", c.S3Poll))
	}
	if c.S3Lease <= 0 {
		problems = append(problems, fmt.Sprintf("VERDICT_S3_LEASE_DURATION: %s must be positive", c.S3Lease))
	}
	if c.S3Start != "" {
		if _, err := time.Parse(time.RFC3339, c.S3Start); err != nil {
			problems = append(problems, fmt.Sprintf("VERDICT_S3_START: %q: want an RFC 3339 time such as 2026-12-01T00:00:00Z", c.S3Start))
		}
	}
	if c.S3Queue != "" && !strings.HasPrefix(c.S3Queue, "https://") && !strings.HasPrefix(c.S3Queue, "http://") {
		problems = append(problems, fmt.Sprintf("VERDICT_S3_QUEUE_URL: %q is not a queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>)", c.S3Queue))
	}
	return problems
}

// parsePrefix reads a followed prefix: an s3:// URL (bucket, key prefix) or a local
// directory (file:// URL or path; bucket "" and the directory as prefix).
func parsePrefix(p string) (bucket, prefix string, err error) {
	p = strings.TrimSpace(p)
	switch {
	case strings.HasPrefix(p, "s3://"):
		return s3bucket.ParseURL(p)
	case strings.HasPrefix(p, "file://"):
		p = strings.TrimPrefix(p, "file://")
	case strings.Contains(p, "://"):
		return "", "", fmt.Errorf("%q is neither an s3:// URL nor a local directory", p)
	}
	if p == "" {
		return "", "", errors.New("empty prefix")
	}
	return "", p, nil
}

func (c IngestSettings) source(name string) bool {
	return slices.ContainsFunc(c.Sources, func(s string) bool { return strings.TrimSpace(s) == name })
}

func (c CloudWatchSettings) sink(name string) bool {
	return slices.ContainsFunc(c.Sinks, func(s string) bool { return strings.TrimSpace(s) == name })
}

// workerID names this process in shared tables: VERDICT_WORKER_ID, else hostname-pid.
func (c StoreSettings) workerID() string {
	if c.WorkerID != "" {
		return c.WorkerID
	}
	host, err := os.Hostname()
	if err != nil {
		host = "verdict"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("%q is not a log level (debug, info, warn, error)", s)
	}
	return l, nil
}

func (c LogSettings) logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// printConfigTable writes the configuration reference as a Markdown table.
func printConfigTable(out io.Writer) error {
	return envconfig.Usagef("verdict", &settings{}, out, configTableFormat)
}

const configTableFormat = `| variable | default | meaning |
|---|---|---|
{{range .}}| ` + "`{{usage_key .}}`" + ` | {{usage_default .}} | {{usage_description .}} |
{{end}}`

// alarmSpecProblems checks VERDICT_ALARM_SPEC: the spec must load, and the alarms
// must read what this verdict would publish (namespace, endpoint, a baseline pair).
func (c settings) alarmSpecProblems() []string {
	if c.AlarmSpec == "" {
		return nil
	}
	spec, err := alarms.LoadSpec(c.AlarmSpec)
	if err != nil {
		return []string{"VERDICT_ALARM_SPEC: " + err.Error()}
	}
	var problems []string
	if spec.Namespace != c.CWNamespace {
		problems = append(problems, fmt.Sprintf("VERDICT_ALARM_SPEC: the spec's namespace %q is not VERDICT_CLOUDWATCH_NAMESPACE %q: its alarms would read metrics verdict never publishes", spec.Namespace, c.CWNamespace))
	}
	if c.CWEndpoint != "" && spec.Endpoint != c.CWEndpoint {
		problems = append(problems, fmt.Sprintf("VERDICT_ALARM_SPEC: the spec's endpoint %q is not VERDICT_CLOUDWATCH_ENDPOINT_NAME %q", spec.Endpoint, c.CWEndpoint))
	}
	if spec.Baseline.Variant != "" && len(c.judgePairs()) == 0 {
		problems = append(problems, "VERDICT_ALARM_SPEC: the spec compares against baseline "+spec.Baseline.Variant+": set VERDICT_BASELINE and VERDICT_CANDIDATES so the baseline metrics are published")
	}
	if c.CWInterval < time.Second {
		problems = append(problems, fmt.Sprintf("VERDICT_CLOUDWATCH_INTERVAL: %s must be at least 1s (the alarm watch records at this interval)", c.CWInterval))
	}
	return problems
}

// dashboardSettings is what the dashboard's page shows (GET /v1/dashboard).
func (c settings) dashboardSettings() dashboard.Settings {
	spans, _ := c.spans()
	var windows []string
	for _, sp := range spans[1:] { // all-time has no time series
		windows = append(windows, sp.String())
	}
	slices.SortFunc(windows, func(a, b string) int {
		x, _ := window.ParseSpan(a)
		y, _ := window.ParseSpan(b)
		return cmp.Compare(x, y)
	})
	var cands []string
	for _, p := range c.judgePairs() {
		cands = append(cands, p.Candidate)
	}
	return dashboard.Settings{
		Version: version, Baseline: c.Baseline, Candidates: cands, Windows: windows,
		Bucket: window.Span(c.Bucket).String(), SegmentKeys: c.SegmentKeys, Alarms: c.AlarmSpec != "",
	}
}
