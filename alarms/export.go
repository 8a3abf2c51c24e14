package alarms

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Export formats.
const (
	FormatCloudFormation = "cloudformation"
	FormatJSON           = "json"
)

// Export writes the alarms as a CloudFormation template (YAML, one
// AWS::CloudWatch::Alarm per alarm and an AWS::CloudWatch::Dashboard of their
// metrics, see DashboardBody) or as a JSON array of PutMetricAlarm inputs, each
// element one `aws cloudwatch put-metric-alarm --cli-input-json` input.
func Export(w io.Writer, s *Spec, alarms []Alarm, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(alarms); err != nil {
			return fmt.Errorf("alarms: export json: %w", err)
		}
		return nil
	case FormatCloudFormation:
		return exportCloudFormation(w, s, alarms)
	default:
		return fmt.Errorf("alarms: unknown export format %q (cloudformation or json)", format)
	}
}

type cfnTemplate struct {
	Version     string                 `yaml:"AWSTemplateFormatVersion"`
	Description string                 `yaml:"Description"`
	Resources   map[string]cfnResource `yaml:"Resources"`
	Outputs     map[string]cfnOutput   `yaml:"Outputs"`
}

type cfnResource struct {
	Type       string `yaml:"Type"`
	Properties any    `yaml:"Properties"`
}

// cfnDashboard is an AWS::CloudWatch::Dashboard's properties.
type cfnDashboard struct {
	DashboardName string            `yaml:"DashboardName"`
	DashboardBody map[string]string `yaml:"DashboardBody"`
}

type cfnOutput struct {
	Description string            `yaml:"Description"`
	Value       map[string]string `yaml:"Value"`
}

func exportCloudFormation(w io.Writer, s *Spec, alarms []Alarm) error {
	t := cfnTemplate{
		Version:     "2010-09-09",
		Description: fmt.Sprintf("verdict rollback alarms for %s on endpoint %s (alarm set %s)", s.Candidate.Variant, s.Endpoint, s.Name),
		Resources:   map[string]cfnResource{},
		Outputs:     map[string]cfnOutput{},
	}
	for _, a := range alarms {
		id := logicalID(strings.TrimPrefix(a.AlarmName, s.AlarmNamePrefix))
		t.Resources[id] = cfnResource{Type: "AWS::CloudWatch::Alarm", Properties: a}
		t.Outputs[id+"Name"] = cfnOutput{Description: "alarm name for AutoRollbackConfiguration", Value: map[string]string{"Ref": id}}
	}
	body, err := dashboardJSON(DashboardBody(s, alarms))
	if err != nil {
		return err
	}
	t.Resources[dashboardLogicalID] = cfnResource{Type: "AWS::CloudWatch::Dashboard", Properties: cfnDashboard{
		DashboardName: s.DashboardName(), DashboardBody: map[string]string{"Fn::Sub": body}}}
	t.Outputs[dashboardLogicalID+"Name"] = cfnOutput{Description: "CloudWatch dashboard of the alarms' metrics and thresholds", Value: map[string]string{"Ref": dashboardLogicalID}}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(t); err != nil {
		return fmt.Errorf("alarms: export cloudformation: %w", err)
	}
	return enc.Close()
}

// dashboardLogicalID is the dashboard's resource in the exported template.
const dashboardLogicalID = "VerdictDashboard"

// logicalID turns "recall-floor" into "VerdictRecallFloor" (CloudFormation
// logical IDs are alphanumeric).
func logicalID(kind string) string {
	var b strings.Builder
	b.WriteString("Verdict")
	up := true
	for _, r := range kind {
		switch {
		case r >= 'a' && r <= 'z' && up:
			b.WriteRune(r - 'a' + 'A')
			up = false
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
			up = false
		default:
			up = true
		}
	}
	return b.String()
}
