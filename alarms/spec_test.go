package alarms

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/internal/spectest"
)

func TestParseSpecAppliesDefaults(t *testing.T) {
	s, err := ParseSpec([]byte(`
name: fraud-v5
endpoint: fraud-detector
candidate: {variant: fraud-v5}
thresholds: {recall_floor: 0.7}
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Namespace != cwmetric.DefaultNamespace || s.AlarmNamePrefix != "verdict-fraud-v5-" ||
		s.Evaluation.Period != DefaultPeriod || s.Evaluation.EvaluationPeriods != 3 ||
		s.Evaluation.DatapointsToAlarm != 2 || s.MinN != DefaultMinN {
		t.Errorf("defaults not applied: %+v", s)
	}
}

func TestSpecValidation(t *testing.T) {
	base, err := os.ReadFile("testdata/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Each case edits the valid example spec and names the error it expects.
	cases := []struct {
		name    string
		edit    func(s *Spec)
		wantErr string
	}{
		{"valid example passes", func(*Spec) {}, ""},
		{"missing name", func(s *Spec) { s.Name = "" }, "name: \"\" must be"},
		{"name with spaces", func(s *Spec) { s.Name = "fraud v5" }, "name: \"fraud v5\""},
		{"missing endpoint", func(s *Spec) { s.Endpoint = "" }, "endpoint: is required"},
		{"missing candidate variant", func(s *Spec) { s.Candidate.Variant = "" }, "candidate.variant: is required"},
		{"latency alarm needs the SageMaker variant", func(s *Spec) { s.Candidate.SageMakerVariant = "" }, "candidate.sagemaker_variant: is required"},
		{"drop alarms need a baseline", func(s *Spec) { s.Baseline.Variant = "" }, "baseline.variant: is required"},
		{"baseline equal to candidate", func(s *Spec) { s.Baseline.Variant = "fraud-v5" }, "baseline.variant: \"fraud-v5\" is the candidate itself"},
		{"AWS namespace refused", func(s *Spec) { s.Namespace = "AWS/SageMaker" }, "namespace:"},
		// Namespaces the publisher refuses (cwmetric.CheckNamespace) are refused here too:
		// the alarms would read a namespace nothing publishes into.
		{"namespace with a leading colon", func(s *Spec) { s.Namespace = ":Verdict" }, "namespace: \":Verdict\" starts with ':'"},
		{"blank namespace", func(s *Spec) { s.Namespace = "   " }, "namespace: is empty or blank"},
		{"namespace of 256 characters", func(s *Spec) { s.Namespace = strings.Repeat("n", 256) }, "namespace: is 256 characters"},
		{"namespace with spaces and slashes", func(s *Spec) { s.Namespace = "Fraud ML/Verdict" }, ""},
		{"recall floor above 1", func(s *Spec) { s.Thresholds.RecallFloor = ptr(1.2) }, "thresholds.recall_floor: 1.2 must be a fraction"},
		{"precision floor zero", func(s *Spec) { s.Thresholds.PrecisionFloor = ptr(0.0) }, "thresholds.precision_floor: 0 must be a fraction"},
		{"negative drop", func(s *Spec) { s.Thresholds.MaxRecallDrop = ptr(-0.1) }, "thresholds.max_recall_drop"},
		{"5xx rate above 1", func(s *Spec) { s.Thresholds.Max5XXRate = ptr(5.0) }, "thresholds.max_5xx_rate"},
		{"negative segment regressions", func(s *Spec) { s.Thresholds.MaxSegmentRegressions = ptr(-1) }, "thresholds.max_segment_regressions: -1"},
		{"zero latency", func(s *Spec) { s.Thresholds.LatencyP99Ms = ptr(0.0) }, "thresholds.latency_p99_ms: 0"},
		{"no thresholds at all", func(s *Spec) { s.Thresholds = Thresholds{MinInvocations: 1} }, "thresholds: no alarm configured"},
		{"min n zero", func(s *Spec) { s.MinN = -1 }, "min_n: -1 must be at least 1"},
		{"period not a multiple of 60s", func(s *Spec) { s.Evaluation.Period = 90 * time.Second }, "evaluation.period: 1m30s: CloudWatch accepts"},
		{"sub-minute period refused for standard resolution", func(s *Spec) { s.Evaluation.Period = 30 * time.Second }, "sub-minute periods need high-resolution"},
		{"fractional seconds", func(s *Spec) { s.Evaluation.Period = 1500 * time.Millisecond }, "whole number of seconds"},
		{"datapoints above evaluation periods", func(s *Spec) { s.Evaluation.DatapointsToAlarm = 4 }, "evaluation.datapoints_to_alarm: 4 must be between 1 and evaluation_periods (3)"},
		{"evaluation range over one day for sub-hour periods", func(s *Spec) { s.Evaluation.EvaluationPeriods = 300 }, "exceeds CloudWatch's limit of 24h0m0s"},
		{"hourly periods may span a week", func(s *Spec) { s.Evaluation.Period = time.Hour; s.Evaluation.EvaluationPeriods = 168 }, ""},
		{"flag-rate shift is a fold above 1", func(s *Spec) { s.Thresholds.MaxFlagRateShift = ptr(0.7) }, "thresholds.max_flag_rate_shift: 0.7 must be a fold change above 1"},
		{"segment flag-rate shift of exactly 1", func(s *Spec) { s.Thresholds.MaxSegmentFlagRateShift = ptr(1.0) }, "thresholds.max_segment_flag_rate_shift: 1 must be a fold change above 1"},
		{"score shift must be positive", func(s *Spec) { s.Thresholds.MaxScoreShift = ptr(0.0) }, "thresholds.max_score_shift: 0 must be a positive PSI"},
		{"segment score shift must be positive", func(s *Spec) { s.Thresholds.MaxSegmentScoreShift = ptr(-0.2) }, "thresholds.max_segment_score_shift: -0.2 must be a positive PSI"},
		{"shift alarms need a baseline", func(s *Spec) {
			s.Baseline.Variant = ""
			s.Thresholds = Thresholds{MaxScoreShift: ptr(0.1), MinInvocations: 1}
		}, "baseline.variant: is required"},
		{"min predictions zero", func(s *Spec) { s.MinPredictions = -5 }, "min_predictions: -5 must be at least 1"},
		{"hourly periods over a week", func(s *Spec) { s.Evaluation.Period = time.Hour; s.Evaluation.EvaluationPeriods = 169 }, "limit of 168h0m0s"},
		{"unknown kind in treat_missing_data", func(s *Spec) { s.TreatMissingData = map[Kind]string{"cpu": "ignore"} }, "unknown alarm kind \"cpu\""},
		{"bad treat_missing_data value", func(s *Spec) { s.TreatMissingData = map[Kind]string{KindRecallFloor: "skip"} }, "treat_missing_data.recall-floor: \"skip\""},
		{"reserved tag key", func(s *Spec) { s.Tags = map[string]string{"verdict:managed": "false"} }, "reserved"},
		{"action that is not an ARN", func(s *Spec) { s.Actions.Alarm = []string{"page-me"} }, "actions.alarm[0]: \"page-me\" is not an ARN"},
		{"alarm name too long", func(s *Spec) { s.AlarmNamePrefix = strings.Repeat("x", 250) }, "alarm_name_prefix: is 250 characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSpec(base)
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(s)
			spectest.Err(t, s.Validate(), tc.wantErr)
		})
	}
}

func TestParseSpecRejectsUnknownFields(t *testing.T) {
	_, err := ParseSpec([]byte("name: x\nendpoint: e\ncandidate: {variant: v}\nthresholds: {recal_floor: 0.7}\n"))
	if err == nil || !strings.Contains(err.Error(), "recal_floor") {
		t.Fatalf("err = %v, want it to name the unknown field recal_floor", err)
	}
}

func TestParseSpecReportsEveryProblemAtOnce(t *testing.T) {
	_, err := ParseSpec([]byte("name: x\nthresholds: {recall_floor: 2}\n"))
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"endpoint: is required", "candidate.variant: is required", "thresholds.recall_floor"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestEveryKindBuildsAlone(t *testing.T) {
	// Each threshold on its own: building one kind never reads another's.
	one := map[Kind]func(th *Thresholds){
		KindPrecisionFloor:     func(th *Thresholds) { th.PrecisionFloor = ptr(0.8) },
		KindRecallFloor:        func(th *Thresholds) { th.RecallFloor = ptr(0.7) },
		KindPrecisionDrop:      func(th *Thresholds) { th.MaxPrecisionDrop = ptr(0.05) },
		KindRecallDrop:         func(th *Thresholds) { th.MaxRecallDrop = ptr(0.05) },
		KindSegmentRegressions: func(th *Thresholds) { th.MaxSegmentRegressions = ptr(0) },
		KindLatencyP99:         func(th *Thresholds) { th.LatencyP99Ms = ptr(40.0) },
		KindErrorRate:          func(th *Thresholds) { th.Max5XXRate = ptr(0.01) },
		KindFlagRateShift:      func(th *Thresholds) { th.MaxFlagRateShift = ptr(1.5) },
		KindSegmentFlagRate:    func(th *Thresholds) { th.MaxSegmentFlagRateShift = ptr(1.5) },
		KindScoreShift:         func(th *Thresholds) { th.MaxScoreShift = ptr(0.1) },
		KindSegmentScoreShift:  func(th *Thresholds) { th.MaxSegmentScoreShift = ptr(0.2) },
	}
	for _, k := range Kinds() {
		set, ok := one[k]
		if !ok {
			t.Errorf("kind %s has no case here", k)
			continue
		}
		s := mustSpec(t, "testdata/spec.yaml")
		s.Thresholds = Thresholds{MinInvocations: 1}
		set(&s.Thresholds)
		as, err := Build(s)
		if err != nil || len(as) != 1 || as[0].AlarmName != s.AlarmName(k) {
			t.Errorf("%s alone: %d alarms, %v", k, len(as), err)
		}
	}
}
