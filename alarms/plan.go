package alarms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// CloudWatchAPI is what plan and apply need from CloudWatch; *cloudwatch.Client
// implements it.
type CloudWatchAPI interface {
	PutMetricAlarm(ctx context.Context, in *cloudwatch.PutMetricAlarmInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricAlarmOutput, error)
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
	DeleteAlarms(ctx context.Context, in *cloudwatch.DeleteAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DeleteAlarmsOutput, error)
	ListTagsForResource(ctx context.Context, in *cloudwatch.ListTagsForResourceInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.ListTagsForResourceOutput, error)
	TagResource(ctx context.Context, in *cloudwatch.TagResourceInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.TagResourceOutput, error)
}

// Action is what apply does with one alarm.
type Action string

// Plan actions.
const (
	ActionCreate    Action = "create"
	ActionUpdate    Action = "update"
	ActionDelete    Action = "delete"
	ActionUnchanged Action = "unchanged"
	// ActionConflict: an alarm with a desired name exists but verdict does not
	// manage it (or another alarm set does). apply refuses the whole plan.
	ActionConflict Action = "conflict"
)

// Change is the plan for one alarm.
type Change struct {
	Action Action
	Name   string
	ARN    string
	// Desired is the alarm to put (create, update).
	Desired *Alarm
	// Fields are the differing fields (update) or all fields (create, delete).
	Fields []FieldChange
	// Tags are tags the existing alarm lacks or has with another value
	// (PutMetricAlarm ignores tags on update, so apply sets them with TagResource).
	Tags []Tag
	// Reason explains a conflict.
	Reason string
}

// FieldChange is one differing field; From is empty on create, To on delete.
type FieldChange struct {
	Field, From, To string
}

// Plan is the difference between an alarm spec and what exists in CloudWatch.
type Plan struct {
	Set     string
	Prefix  string
	Changes []Change
}

// Count returns how many changes have the action.
func (p *Plan) Count(a Action) int {
	n := 0
	for _, c := range p.Changes {
		if c.Action == a {
			n++
		}
	}
	return n
}

// HasChanges reports whether apply would call CloudWatch.
func (p *Plan) HasChanges() bool {
	return p.Count(ActionCreate)+p.Count(ActionUpdate)+p.Count(ActionDelete) > 0
}

// MakePlan compares the spec's alarms with the alarms in CloudWatch whose name
// starts with the spec's prefix. Only alarms tagged as this set's are updated or
// deleted; an untagged alarm in the way is a conflict.
func MakePlan(ctx context.Context, api CloudWatchAPI, s *Spec) (*Plan, error) {
	desired, err := Build(s)
	if err != nil {
		return nil, err
	}
	existing, err := describe(ctx, api, s.AlarmNamePrefix)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Set: s.Name, Prefix: s.AlarmNamePrefix}
	seen := map[string]bool{}
	for i := range desired {
		d := &desired[i]
		seen[d.AlarmName] = true
		e, ok := existing[d.AlarmName]
		if !ok {
			plan.Changes = append(plan.Changes, Change{Action: ActionCreate, Name: d.AlarmName, Desired: d, Fields: diffFields(Alarm{}, *d)})
			continue
		}
		tags, err := listTags(ctx, api, e.arn)
		if err != nil {
			return nil, err
		}
		if reason := notManaged(tags, s.Name); reason != "" {
			plan.Changes = append(plan.Changes, Change{Action: ActionConflict, Name: d.AlarmName, ARN: e.arn, Reason: reason})
			continue
		}
		c := Change{Action: ActionUnchanged, Name: d.AlarmName, ARN: e.arn, Desired: d,
			Fields: diffFields(e.alarm, *d), Tags: missingTags(tags, d.Tags)}
		if len(c.Fields) > 0 || len(c.Tags) > 0 {
			c.Action = ActionUpdate
		}
		plan.Changes = append(plan.Changes, c)
	}
	names := make([]string, 0, len(existing))
	for n := range existing {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if seen[n] {
			continue
		}
		e := existing[n]
		tags, err := listTags(ctx, api, e.arn)
		if err != nil {
			return nil, err
		}
		if notManaged(tags, s.Name) != "" {
			continue // someone else's alarm that happens to share the prefix
		}
		plan.Changes = append(plan.Changes, Change{Action: ActionDelete, Name: n, ARN: e.arn, Fields: diffFields(e.alarm, Alarm{})})
	}
	return plan, nil
}

type existingAlarm struct {
	arn   string
	alarm Alarm
}

func describe(ctx context.Context, api CloudWatchAPI, prefix string) (map[string]existingAlarm, error) {
	out := map[string]existingAlarm{}
	p := cloudwatch.NewDescribeAlarmsPaginator(api, &cloudwatch.DescribeAlarmsInput{
		AlarmNamePrefix: aws.String(prefix),
		AlarmTypes:      []types.AlarmType{types.AlarmTypeMetricAlarm},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("alarms: describe alarms with prefix %q: %w", prefix, err)
		}
		for _, m := range page.MetricAlarms {
			out[aws.ToString(m.AlarmName)] = existingAlarm{arn: aws.ToString(m.AlarmArn), alarm: FromMetricAlarm(m)}
		}
	}
	return out, nil
}

// tagLister is the part of CloudWatch that reads an alarm's tags.
type tagLister interface {
	ListTagsForResource(ctx context.Context, in *cloudwatch.ListTagsForResourceInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.ListTagsForResourceOutput, error)
}

func listTags(ctx context.Context, api tagLister, arn string) (map[string]string, error) {
	out, err := api.ListTagsForResource(ctx, &cloudwatch.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("alarms: list tags of %s: %w", arn, err)
	}
	tags := map[string]string{}
	for _, t := range out.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags, nil
}

func notManaged(tags map[string]string, set string) string {
	if tags[TagManaged] != "true" {
		return "exists without the " + TagManaged + "=true tag; verdict will not modify an alarm it did not create"
	}
	if got := tags[TagAlarmSet]; got != set {
		return fmt.Sprintf("belongs to verdict alarm set %q, not %q", got, set)
	}
	return ""
}

func missingTags(have map[string]string, want []Tag) []Tag {
	var out []Tag
	for _, t := range want {
		if v, ok := have[t.Key]; !ok || v != t.Value {
			out = append(out, t)
		}
	}
	return out
}

// ErrConflict is returned by Apply when the plan has conflicts.
var ErrConflict = errors.New("alarms: plan has conflicts")

// Apply carries out a plan: puts created and changed alarms, tags them, deletes
// this set's alarms that the spec no longer defines. Applying the same spec twice
// changes nothing the second time. A plan with conflicts is refused as a whole.
func Apply(ctx context.Context, api CloudWatchAPI, p *Plan) error {
	var conflicts []string
	for _, c := range p.Changes {
		if c.Action == ActionConflict {
			conflicts = append(conflicts, c.Name+": "+c.Reason)
		}
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("%w: %s", ErrConflict, strings.Join(conflicts, "; "))
	}
	var deletes []string
	for _, c := range p.Changes {
		switch c.Action {
		case ActionCreate, ActionUpdate:
			if c.Action == ActionCreate || len(c.Fields) > 0 {
				if _, err := api.PutMetricAlarm(ctx, c.Desired.Input()); err != nil {
					return fmt.Errorf("alarms: put alarm %s: %w", c.Name, err)
				}
			}
			if c.Action == ActionUpdate && len(c.Tags) > 0 {
				in := &cloudwatch.TagResourceInput{ResourceARN: aws.String(c.ARN)}
				for _, t := range c.Tags {
					in.Tags = append(in.Tags, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
				}
				if _, err := api.TagResource(ctx, in); err != nil {
					return fmt.Errorf("alarms: tag alarm %s: %w", c.Name, err)
				}
			}
		case ActionDelete:
			deletes = append(deletes, c.Name)
		}
	}
	// DeleteAlarms takes at most 100 names per call.
	for chunk := range slices.Chunk(deletes, 100) {
		if _, err := api.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: chunk}); err != nil {
			return fmt.Errorf("alarms: delete alarms %s: %w", strings.Join(chunk, ", "), err)
		}
	}
	return nil
}

// Write prints the plan for review, terraform style: + create, ~ update,
// - delete, ! conflict.
func (p *Plan) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "alarm set %s (prefix %q): %d to create, %d to update, %d to delete, %d unchanged",
		p.Set, p.Prefix, p.Count(ActionCreate), p.Count(ActionUpdate), p.Count(ActionDelete), p.Count(ActionUnchanged))
	if n := p.Count(ActionConflict); n > 0 {
		fmt.Fprintf(&b, ", %d in conflict (apply will refuse)", n)
	}
	b.WriteString("\n")
	for _, c := range p.Changes {
		switch c.Action {
		case ActionCreate:
			fmt.Fprintf(&b, "\n+ %s\n", c.Name)
			for _, f := range c.Fields {
				fmt.Fprintf(&b, "    %s: %s\n", f.Field, f.To)
			}
		case ActionUpdate:
			fmt.Fprintf(&b, "\n~ %s\n", c.Name)
			for _, f := range c.Fields {
				if len(f.From)+len(f.To) > 80 {
					fmt.Fprintf(&b, "    %s:\n      - %s\n      + %s\n", f.Field, orNone(f.From), orNone(f.To))
					continue
				}
				fmt.Fprintf(&b, "    %s: %s -> %s\n", f.Field, orNone(f.From), orNone(f.To))
			}
			for _, t := range c.Tags {
				fmt.Fprintf(&b, "    tag %s: -> %s\n", t.Key, t.Value)
			}
		case ActionDelete:
			fmt.Fprintf(&b, "\n- %s\n", c.Name)
			for _, f := range c.Fields {
				fmt.Fprintf(&b, "    %s: %s\n", f.Field, f.From)
			}
		case ActionConflict:
			fmt.Fprintf(&b, "\n! %s: %s\n", c.Name, c.Reason)
		case ActionUnchanged:
			fmt.Fprintf(&b, "\n  %s (unchanged)\n", c.Name)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// diffFields compares two alarms field by field in a readable, order-stable
// form. Dimension order is not significant.
func diffFields(from, to Alarm) []FieldChange {
	f, t := flatten(from), flatten(to)
	keys := slices.Clone(t.keys)
	for _, k := range f.keys {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	var out []FieldChange
	for _, k := range keys {
		if f.vals[k] != t.vals[k] {
			out = append(out, FieldChange{Field: k, From: f.vals[k], To: t.vals[k]})
		}
	}
	return out
}

type flat struct {
	keys []string
	vals map[string]string
}

func flatten(a Alarm) flat {
	f := flat{vals: map[string]string{}}
	if a.AlarmName == "" {
		return f
	}
	add := func(k, v string) {
		if v != "" {
			f.keys = append(f.keys, k)
			f.vals[k] = v
		}
	}
	add("AlarmDescription", a.AlarmDescription)
	add("ActionsEnabled", strconv.FormatBool(a.ActionsEnabled))
	if a.MetricName != "" {
		add("Metric", fmtMetric(Metric{a.Namespace, a.MetricName, a.Dimensions}))
		add("Period", strconv.Itoa(int(a.Period)))
		add("Statistic", a.Statistic)
		add("ExtendedStatistic", a.ExtendedStatistic)
	}
	for _, q := range a.Metrics {
		k := "Metrics." + q.ID
		switch {
		case q.MetricStat != nil:
			add(k, fmt.Sprintf("%s of %s per %ds", q.MetricStat.Stat, fmtMetric(q.MetricStat.Metric), q.MetricStat.Period))
		default:
			v := q.Expression
			if q.Label != "" {
				v += " (label " + strconv.Quote(q.Label) + ")"
			}
			add(k, v)
		}
		if q.ReturnData {
			add(k+".ReturnData", "true")
		}
	}
	add("Condition", a.ComparisonOperator+" "+fmtFloat(a.Threshold))
	add("DatapointsToAlarm", fmt.Sprintf("%d of %d", a.DatapointsToAlarm, a.EvaluationPeriods))
	add("TreatMissingData", a.TreatMissingData)
	add("EvaluateLowSampleCountPercentile", a.EvaluateLowSampleCountPercentile)
	add("AlarmActions", strings.Join(a.AlarmActions, ", "))
	add("OKActions", strings.Join(a.OKActions, ", "))
	add("InsufficientDataActions", strings.Join(a.InsufficientDataActions, ", "))
	return f
}

func fmtMetric(m Metric) string {
	dims := make([]string, 0, len(m.Dimensions))
	for _, d := range m.Dimensions {
		dims = append(dims, d.Name+"="+d.Value)
	}
	slices.Sort(dims)
	return m.Namespace + "/" + m.MetricName + " {" + strings.Join(dims, ", ") + "}"
}
