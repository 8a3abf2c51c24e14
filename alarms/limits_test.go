package alarms

import (
	"fmt"
	"strings"
	"testing"

	"github.com/verdictml/verdict/internal/spectest"
)

func arns(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("arn:aws:sns:us-east-1:123456789012:page-%d", i)
	}
	return out
}

// maxDescription is the longest AlarmDescription of the spec's alarms.
func maxDescription(t *testing.T, s *Spec) int {
	t.Helper()
	n := 0
	for _, k := range s.kinds() {
		n = max(n, len(s.build(k).AlarmDescription))
	}
	return n
}

// withDescription sets baseline.variant so that the longest description is n
// characters (the baseline's id appears once in each description that names it).
func withDescription(t *testing.T, s *Spec, n int) {
	t.Helper()
	s.Baseline.Variant = "b"
	for range 5 {
		s.Baseline.Variant = strings.Repeat("b", max(1, len(s.Baseline.Variant)+n-maxDescription(t, s)))
	}
	if got := maxDescription(t, s); got != n {
		t.Fatalf("could not make a description of %d characters (got %d)", n, got)
	}
}

// Every limit of PutMetricAlarm the spec can reach, one below, at and one above
// (CloudWatch API reference, PutMetricAlarm; the limits in spec.go).
func TestSpecLimitBoundaries(t *testing.T) {
	limits := []struct {
		name, field string
		limit       int
		set         func(t *testing.T, s *Spec, n int)
	}{
		{"alarm actions", "actions.alarm", maxActions, func(_ *testing.T, s *Spec, n int) { s.Actions.Alarm = arns(n) }},
		{"OK actions", "actions.ok", maxActions, func(_ *testing.T, s *Spec, n int) { s.Actions.OK = arns(n) }},
		{"insufficient-data actions", "actions.insufficient_data", maxActions, func(_ *testing.T, s *Spec, n int) { s.Actions.InsufficientData = arns(n) }},
		{"action ARN length", "actions.alarm[0]", maxActionLen, func(_ *testing.T, s *Spec, n int) {
			s.Actions.Alarm = []string{"arn:aws:sns:us-east-1:123456789012:" + strings.Repeat("p", n-len("arn:aws:sns:us-east-1:123456789012:"))}
		}},
		{"tags in all (the spec's and verdict's 2)", "tags", maxTags, func(_ *testing.T, s *Spec, n int) {
			s.Tags = map[string]string{}
			for i := range n - 2 {
				s.Tags[fmt.Sprintf("k%02d", i)] = "v"
			}
		}},
		{"tag key length", "tags", 128, func(_ *testing.T, s *Spec, n int) { s.Tags = map[string]string{strings.Repeat("k", n): "v"} }},
		{"tag value length", "tags.team", 256, func(_ *testing.T, s *Spec, n int) { s.Tags = map[string]string{"team": strings.Repeat("v", n)} }},
		{"AlarmDescription length", "baseline.variant", maxDescriptionLen, withDescription},
		{"alarm name length", "alarm_name_prefix", maxAlarmNameLen, func(_ *testing.T, s *Spec, n int) {
			// The longest name of testdata/spec.yaml is the segment-regressions alarm's.
			s.AlarmNamePrefix = strings.Repeat("p", n-len(KindSegmentRegressions))
		}},
		{"dimension value length", "candidate.endpoint_config", 1024, func(_ *testing.T, s *Spec, n int) {
			// Only the SageMaker alarms' descriptions quote it: leave them out.
			s.Candidate.EndpointConfig = strings.Repeat("c", n)
			s.Thresholds = Thresholds{MaxSegmentRegressions: ptr(0), MinInvocations: 1}
		}},
		{"namespace length", "namespace", 255, func(_ *testing.T, s *Spec, n int) { s.Namespace = strings.Repeat("n", n) }},
	}
	for _, l := range limits {
		for _, c := range spectest.Around(l.limit) {
			t.Run(fmt.Sprintf("%s/%d", l.name, c.N), func(t *testing.T) {
				s := mustSpec(t, "testdata/spec.yaml")
				l.set(t, s, c.N)
				spectest.Limit(t, s.Validate(), l.field, c)
				if c.OK {
					if _, err := Build(s); err != nil {
						t.Fatalf("Build: %v", err)
					}
				}
			})
		}
	}
}

func TestLongVariantNamesNameTheFieldThatMadeTheDescriptionTooLong(t *testing.T) {
	s := mustSpec(t, "testdata/spec.yaml")
	s.Candidate.Variant = strings.Repeat("c", 1000)
	s.Baseline.Variant = strings.Repeat("b", 1000)
	err := s.Validate()
	if err == nil {
		t.Fatal("accepted descriptions over 1024 characters")
	}
	for _, want := range []string{"candidate.variant: its 1000 characters make the", "AlarmDescription", "at most 1024"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
