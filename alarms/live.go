package alarms

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// StateReader is what live status needs from CloudWatch; *cloudwatch.Client
// implements it.
type StateReader interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
	ListTagsForResource(ctx context.Context, in *cloudwatch.ListTagsForResourceInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.ListTagsForResourceOutput, error)
}

// LiveState is one alarm's state as CloudWatch reports it.
type LiveState struct {
	Alarm string
	// State is OK, ALARM or INSUFFICIENT_DATA; empty when Missing.
	State State
	// Reason is CloudWatch's StateReason.
	Reason string
	// Updated is when the state last changed (StateUpdatedTimestamp).
	Updated time.Time
	// Missing: the spec defines the alarm but CloudWatch has no alarm of this
	// set by that name (not applied yet, or someone else's alarm is in the way).
	Missing bool
	// Undefined: an alarm of this set that the spec no longer defines (apply
	// deletes it).
	Undefined bool
}

// LiveStatus reads the states of the spec's alarm set from CloudWatch: the
// metric alarms with the spec's prefix that carry this set's verdict tags, in
// the spec's order, then the set's alarms the spec no longer defines. Alarms
// with the prefix but without the tags are someone else's and left out.
func LiveStatus(ctx context.Context, api StateReader, s *Spec) ([]LiveState, error) {
	names := s.AlarmNames()
	found := map[string]LiveState{}
	var extra []string
	p := cloudwatch.NewDescribeAlarmsPaginator(api, &cloudwatch.DescribeAlarmsInput{
		AlarmNamePrefix: aws.String(s.AlarmNamePrefix),
		AlarmTypes:      []types.AlarmType{types.AlarmTypeMetricAlarm},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("alarms: status of set %s: describe alarms with prefix %q: %w", s.Name, s.AlarmNamePrefix, err)
		}
		for _, m := range page.MetricAlarms {
			tags, err := listTags(ctx, api, aws.ToString(m.AlarmArn))
			if err != nil {
				return nil, err
			}
			if notManaged(tags, s.Name) != "" {
				continue
			}
			n := aws.ToString(m.AlarmName)
			found[n] = LiveState{
				Alarm:   n,
				State:   State(m.StateValue),
				Reason:  aws.ToString(m.StateReason),
				Updated: aws.ToTime(m.StateUpdatedTimestamp),
			}
			if !slices.Contains(names, n) {
				extra = append(extra, n)
			}
		}
	}
	out := make([]LiveState, 0, len(names)+len(extra))
	for _, n := range names {
		st, ok := found[n]
		if !ok {
			st = LiveState{Alarm: n, Missing: true}
		}
		out = append(out, st)
	}
	slices.Sort(extra)
	for _, n := range extra {
		st := found[n]
		st.Undefined = true
		out = append(out, st)
	}
	return out, nil
}

// WriteLiveStatus prints one line per alarm: name, state, when it entered the
// state, and CloudWatch's reason.
func WriteLiveStatus(w io.Writer, states []LiveState) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALARM\tSTATE\tSINCE\tREASON")
	for _, st := range states {
		switch {
		case st.Missing:
			fmt.Fprintf(tw, "%s\t-\t-\tnot in CloudWatch as this set's alarm (run verdict alarms plan)\n", st.Alarm)
		default:
			since := "-"
			if !st.Updated.IsZero() {
				since = st.Updated.UTC().Format(time.RFC3339)
			}
			reason := st.Reason
			if reason == "" {
				reason = "-"
			}
			if st.Undefined {
				reason = "(no longer in the spec; apply deletes it) " + reason
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", st.Alarm, st.State, since, reason)
		}
	}
	return tw.Flush()
}
