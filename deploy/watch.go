package deploy

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// EndpointDescriber is what watch needs from SageMaker.
type EndpointDescriber interface {
	DescribeEndpoint(ctx context.Context, in *sagemaker.DescribeEndpointInput, optFns ...func(*sagemaker.Options)) (*sagemaker.DescribeEndpointOutput, error)
}

// AlarmReader is what watch needs from CloudWatch to name the alarm that rolled
// a deployment back; *cloudwatch.Client implements it.
type AlarmReader interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
}

// Outcome is how a watched deployment ended.
type Outcome string

// Outcomes.
const (
	RolledForward Outcome = "rolled forward"
	// Updated: an update without traffic shifting (shadow stage, A/B split)
	// is InService on its new endpoint config.
	Updated    Outcome = "updated"
	RolledBack Outcome = "rolled back"
	Failed     Outcome = "failed"
)

// Result is the end of a watched deployment.
type Result struct {
	Outcome Outcome
	// Config is the endpoint config the endpoint ended on.
	Config string
	// Reason is SageMaker's FailureReason, if any.
	Reason string
	// FiredAlarms are the rollback alarms in ALARM when a rollback was seen.
	FiredAlarms []string
}

// Watcher follows a deployment by polling DescribeEndpoint, printing each
// change of status, traffic weights and new-fleet variant status.
type Watcher struct {
	SageMaker EndpointDescriber
	// CloudWatch and AlarmNames, when set, name the alarms that fired on rollback.
	CloudWatch AlarmReader
	AlarmNames []string
	Interval   time.Duration
	Out        io.Writer
	// Now stamps the printed lines; time.Now when nil.
	Now func() time.Time
}

// Watch follows the blue/green shift of endpoint to newConfig until it rolls
// forward (InService on newConfig), rolls back (InService again on the endpoint
// config it started from) or fails, or ctx ends.
func (w *Watcher) Watch(ctx context.Context, endpoint, newConfig string) (Result, error) {
	return w.watch(ctx, endpoint, newConfig, true)
}

// WatchUpdate follows an UpdateEndpoint without a DeploymentConfig, which
// shifts no traffic step by step and has no rollback alarms: the shadow stage,
// or the move to an A/B split's endpoint config. Updating, then InService on
// newConfig, is Updated; Failed (or any end state with FailureReason set, which
// is how SageMaker reports an update it abandoned while the endpoint keeps
// serving on its old config) is Failed with SageMaker's reason.
func (w *Watcher) WatchUpdate(ctx context.Context, endpoint, newConfig string) (Result, error) {
	return w.watch(ctx, endpoint, newConfig, false)
}

func (w *Watcher) watch(ctx context.Context, endpoint, newConfig string, shift bool) (Result, error) {
	now := w.Now
	if now == nil {
		now = time.Now
	}
	var (
		old       string
		updating  bool
		last      string
		rollingBk bool
	)
	for first := true; ; first = false {
		if !first {
			t := time.NewTimer(w.Interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return Result{}, fmt.Errorf("deploy: watch %s: %w", endpoint, ctx.Err())
			case <-t.C:
			}
		}
		d, err := w.SageMaker.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
		if err != nil {
			return Result{}, fmt.Errorf("deploy: watch %s: describe endpoint: %w", endpoint, err)
		}
		config := aws.ToString(d.EndpointConfigName)
		if first {
			old = config
			if d.EndpointStatus == types.EndpointStatusInService && config != newConfig {
				return Result{}, fmt.Errorf("deploy: watch %s: no deployment in progress (InService on %s, not %s)", endpoint, config, newConfig)
			}
		}
		if line := summarize(d); line != last {
			fmt.Fprintf(w.Out, "%s  %s\n", now().UTC().Format("15:04:05"), line)
			last = line
		}
		switch d.EndpointStatus {
		case types.EndpointStatusUpdating, types.EndpointStatusCreating, types.EndpointStatusSystemUpdating:
			updating = true
		case types.EndpointStatusRollingBack:
			updating, rollingBk = true, true
		case types.EndpointStatusInService:
			switch {
			case config == newConfig && !shift:
				res := Result{Outcome: Updated, Config: config}
				fmt.Fprintf(w.Out, "updated: %s is InService on %s\n", endpoint, config)
				return res, nil
			case config == newConfig:
				res := Result{Outcome: RolledForward, Config: config}
				fmt.Fprintf(w.Out, "rolled forward: %s is InService on %s\n", endpoint, config)
				return res, nil
			case (updating || rollingBk) && config != old:
				res := Result{Outcome: Failed, Config: config, Reason: aws.ToString(d.FailureReason)}
				fmt.Fprintf(w.Out, "failed: %s ended InService on %s, neither the old %s nor the new %s\n", endpoint, config, old, newConfig)
				return res, nil
			case !shift && (updating || rollingBk):
				res := Result{Outcome: Failed, Config: config, Reason: aws.ToString(d.FailureReason)}
				fmt.Fprintf(w.Out, "failed: the update of %s to %s did not complete; it is InService again on %s: %s\n",
					endpoint, newConfig, config, orDash(res.Reason))
				return res, nil
			case updating || rollingBk:
				res := Result{Outcome: RolledBack, Config: config, Reason: aws.ToString(d.FailureReason)}
				res.FiredAlarms = w.firedAlarms(ctx)
				fmt.Fprintf(w.Out, "rolled back: %s is InService again on %s (not %s)", endpoint, config, newConfig)
				if len(res.FiredAlarms) > 0 {
					fmt.Fprintf(w.Out, "; alarms in ALARM: %s", strings.Join(res.FiredAlarms, ", "))
				}
				if res.Reason != "" {
					fmt.Fprintf(w.Out, "; SageMaker: %s", res.Reason)
				}
				fmt.Fprintln(w.Out)
				return res, nil
			}
		case types.EndpointStatusFailed, types.EndpointStatusUpdateRollbackFailed, types.EndpointStatusOutOfService, types.EndpointStatusDeleting:
			res := Result{Outcome: Failed, Config: config, Reason: aws.ToString(d.FailureReason)}
			fmt.Fprintf(w.Out, "failed: %s is %s on %s: %s\n", endpoint, d.EndpointStatus, config, orDash(res.Reason))
			return res, nil
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// firedAlarms returns the rollout's alarms now in ALARM; errors only lose the
// detail, never the outcome.
func (w *Watcher) firedAlarms(ctx context.Context) []string {
	if w.CloudWatch == nil || len(w.AlarmNames) == 0 {
		return nil
	}
	out, err := w.CloudWatch.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{
		AlarmNames: w.AlarmNames,
		StateValue: cwtypes.StateValueAlarm,
	})
	if err != nil {
		fmt.Fprintf(w.Out, "(could not read alarm states: %v)\n", err)
		return nil
	}
	var names []string
	for _, a := range out.MetricAlarms {
		names = append(names, aws.ToString(a.AlarmName))
	}
	sort.Strings(names)
	return names
}

// summarize describes an endpoint's deployment state in one line.
func summarize(d *sagemaker.DescribeEndpointOutput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s", d.EndpointStatus, aws.ToString(d.EndpointConfigName))
	for _, v := range d.ProductionVariants {
		fmt.Fprintf(&b, "; %s weight %s%s", aws.ToString(v.VariantName), weight(v.CurrentWeight), instances(v.CurrentInstanceCount))
	}
	for _, v := range d.ShadowProductionVariants {
		fmt.Fprintf(&b, "; shadow %s weight %s", aws.ToString(v.VariantName), weight(v.CurrentWeight))
	}
	if p := d.PendingDeploymentSummary; p != nil {
		fmt.Fprintf(&b, "; new fleet %s:", aws.ToString(p.EndpointConfigName))
		for _, v := range p.ProductionVariants {
			fmt.Fprintf(&b, " %s weight %s%s", aws.ToString(v.VariantName), weight(v.CurrentWeight), instances(v.CurrentInstanceCount))
			if st := variantStatus(v.VariantStatus); st != "" {
				fmt.Fprintf(&b, " [%s]", st)
			}
		}
		for _, v := range p.ShadowProductionVariants {
			fmt.Fprintf(&b, " shadow %s weight %s", aws.ToString(v.VariantName), weight(v.CurrentWeight))
			if st := variantStatus(v.VariantStatus); st != "" {
				fmt.Fprintf(&b, " [%s]", st)
			}
		}
	}
	if r := aws.ToString(d.FailureReason); r != "" {
		fmt.Fprintf(&b, "; reason: %s", r)
	}
	return b.String()
}

func weight(w *float32) string {
	if w == nil {
		return "?"
	}
	return fmt.Sprintf("%g", *w)
}

// instances describes a variant's instance count when SageMaker reports it: a
// rolling update moves instances batch by batch.
func instances(n *int32) string {
	if n == nil {
		return ""
	}
	if *n == 1 {
		return " (1 instance)"
	}
	return fmt.Sprintf(" (%d instances)", *n)
}

func variantStatus(ss []types.ProductionVariantStatus) string {
	var st []string
	for _, s := range ss {
		x := string(s.Status)
		if m := aws.ToString(s.StatusMessage); m != "" {
			x += " (" + m + ")"
		}
		st = append(st, x)
	}
	return strings.Join(st, ", ")
}
