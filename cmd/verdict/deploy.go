package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/verdictml/verdict/api"
	"github.com/verdictml/verdict/deploy"
)

func runDeploy(ctx context.Context, args []string, out io.Writer) error {
	return deployCommands().run(ctx, args, out)
}

// deployCommands are the deploy subcommands, each with its own flags.
func deployCommands() commandGroup {
	return commandGroup{
		name: "deploy",
		intro: `usage: verdict deploy <plan|apply|watch|promote-shadow|weights> [flags]

Builds, validates and applies the SageMaker requests of a rollout spec or of
an A/B split spec (YAML, see docs/deploy.md).

`,
		outro: `
Run "verdict deploy <command> -help" for a command's flags.
`,
		column: 18,
		subs: []subcommand{
			{"plan", "print the requests of each stage and the expected timeline\n" +
				"(a split spec: its endpoint config and traffic shares)", runDeployPlan},
			{"apply", "send one stage: -stage shadow (candidate as shadow variant)\n" +
				"or -stage shift (blue/green shift or rolling update with\n" +
				"rollback alarms);\n" +
				"a split spec: its endpoint config and the update to it", runDeployApply},
			{"watch", "follow the endpoint's deployment to roll-forward, rollback\n" +
				"(and the alarm that fired) or failure; -stage shadow (or a\n" +
				"split spec) follows an update without traffic shifting", runDeployWatch},
			{"promote-shadow", "shift traffic from production to the candidate that ran as\n" +
				"the shadow, with the rollout's routing and rollback alarms,\n" +
				"once the shadow gate (shadow.gate) lets it through", runDeployPromoteShadow},
			{"weights", "move a stable A/B split: -spec split.yaml (or -endpoint E)\n" +
				"-set v4=0.9,v5=0.1; prints the split before and after", runDeployWeights},
		},
	}
}

// deployFlags are the flags of the deploy commands; each command registers those
// it takes.
type deployFlags struct {
	*flag.FlagSet
	sub                                    string
	endpointURL, spec, stage, start, cwURL string
	interval, timeout                      time.Duration
	watch                                  bool
	gate                                   gateFlags
}

// newDeployFlags has the flag every deploy command takes: SageMaker's endpoint.
func newDeployFlags(sub string, out io.Writer) *deployFlags {
	f := &deployFlags{FlagSet: flag.NewFlagSet("deploy "+sub, flag.ContinueOnError), sub: sub}
	f.SetOutput(out)
	f.StringVar(&f.endpointURL, "endpoint-url", "", "SageMaker endpoint URL; default from the AWS environment")
	f.Usage = func() {
		fmt.Fprintf(out, "usage: verdict deploy %s [flags]\n\nflags:\n", sub)
		f.PrintDefaults()
	}
	return f
}

// rolloutSpec adds -spec, a rollout (or split) spec.
func (f *deployFlags) rolloutSpec() {
	f.StringVar(&f.spec, "spec", "", "rollout spec file (YAML); required")
}

// applying adds the flags of the commands that start a deployment: -watch, the
// shadow gate's, and the watching ones.
func (f *deployFlags) applying() {
	f.BoolVar(&f.watch, "watch", false, "watch the deployment after applying")
	f.gate.add(f.FlagSet)
	f.watching()
}

// watching adds the flags of the commands that watch a deployment.
func (f *deployFlags) watching() {
	f.DurationVar(&f.interval, "interval", 30*time.Second, "DescribeEndpoint polling interval while watching")
	f.DurationVar(&f.timeout, "timeout", 0, "give up watching after this long; default the rollout's max execution timeout plus 30m")
	f.StringVar(&f.cwURL, "cloudwatch-endpoint-url", "", "CloudWatch endpoint URL, to name the alarm that fired on rollback")
}

func runDeployPlan(ctx context.Context, args []string, out io.Writer) error {
	f := newDeployFlags("plan", out)
	f.rolloutSpec()
	f.StringVar(&f.start, "start", "", "time the traffic shift starts, HH:MM or RFC 3339, for the timeline; default now")
	return deployRollout(ctx, out, f, args)
}

func runDeployApply(ctx context.Context, args []string, out io.Writer) error {
	f := newDeployFlags("apply", out)
	f.rolloutSpec()
	f.StringVar(&f.stage, "stage", "", "stage to apply: shadow or shift; required")
	f.applying()
	return deployRollout(ctx, out, f, args)
}

func runDeployWatch(ctx context.Context, args []string, out io.Writer) error {
	f := newDeployFlags("watch", out)
	f.rolloutSpec()
	f.StringVar(&f.stage, "stage", string(deploy.StageShift), "stage being deployed: shadow (an update without traffic shifting) or shift")
	f.watching()
	return deployRollout(ctx, out, f, args)
}

func runDeployPromoteShadow(ctx context.Context, args []string, out io.Writer) error {
	f := newDeployFlags("promote-shadow", out)
	f.rolloutSpec()
	f.applying()
	return deployRollout(ctx, out, f, args)
}

func runDeployWeights(ctx context.Context, args []string, out io.Writer) error {
	f := newDeployFlags("weights", out)
	specPath := f.String("spec", "", "A/B split spec file (YAML): the endpoint and the variants -set may name")
	endpoint := f.String("endpoint", "", "endpoint name, without -spec")
	set := f.String("set", "", "desired weights, variant=weight,...; required")
	if err := f.Parse(args); err != nil {
		return err
	}
	if (*endpoint == "") == (*specPath == "") || *set == "" {
		f.Usage()
		return errors.New("-set and one of -spec and -endpoint are required")
	}
	var split *deploy.Split
	if *specPath != "" {
		var err error
		if split, err = deploy.LoadSplit(*specPath); err != nil {
			return err
		}
		*endpoint = split.Endpoint
	}
	sm, _, err := deployClients(ctx, f.endpointURL, "")
	if err != nil {
		return err
	}
	return deployWeights(ctx, out, sm, *endpoint, split, *set)
}

// deployRollout runs plan, apply, watch or promote-shadow (f.sub) on the spec f
// names: a rollout spec, or an A/B split spec (deploySplit).
func deployRollout(ctx context.Context, out io.Writer, f *deployFlags, args []string) error {
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.spec == "" {
		f.Usage()
		return errors.New("-spec is required")
	}
	kind, err := deploy.KindOf(f.spec)
	if err != nil {
		return err
	}
	if kind == deploy.KindSplit {
		return deploySplit(ctx, out, f.sub, f.spec, f.endpointURL, f.interval, f.timeout, f.watch)
	}
	r, err := deploy.LoadRollout(f.spec)
	if err != nil {
		return err
	}
	if f.sub == "plan" {
		return deployPlan(out, r, f.start)
	}
	writeWarnings(out, r)

	sm, cw, err := deployClients(ctx, f.endpointURL, f.cwURL)
	if err != nil {
		return err
	}
	var req *deploy.Requests
	switch {
	case f.sub == "watch" && f.stage == string(deploy.StageShadow):
		if r.Shadow == nil {
			return errors.New("-stage shadow: the rollout has no shadow stage")
		}
	case f.sub == "watch" && f.stage != string(deploy.StageShift):
		return fmt.Errorf("-stage %q: want shadow or shift", f.stage)
	case f.sub == "watch":
	case f.sub == "promote-shadow":
		if req, err = r.PromoteShadowRequests(); err != nil {
			return err
		}
		if err := f.gate.admit(ctx, out, r); err != nil {
			return err
		}
	case f.stage == string(deploy.StageShadow):
		if req, err = r.ShadowRequests(); err != nil {
			return err
		}
	case f.stage == string(deploy.StageShift):
		req = r.ShiftRequests()
		// A shift that follows a shadow stage is a promotion of the shadow.
		if r.Shadow != nil {
			if err := f.gate.admit(ctx, out, r); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("-stage %q: want shadow or shift", f.stage)
	}
	target := r.Candidate.EndpointConfig
	if f.sub == "watch" && f.stage == string(deploy.StageShadow) {
		target = r.Shadow.EndpointConfig
	}
	if req != nil {
		if err := deploy.Apply(ctx, sm, req); err != nil {
			return err
		}
		target = aws.ToString(req.UpdateEndpoint.EndpointConfigName)
		slog.InfoContext(ctx, "deployment started", "endpoint", r.Endpoint, "stage", req.Stage, "endpoint_config", target)
		fmt.Fprintf(out, "%s stage started: %s is updating to %s\n", req.Stage, r.Endpoint, target)
		if !f.watch {
			return nil
		}
	}
	if f.timeout == 0 {
		f.timeout = r.Traffic.MaxExecutionTimeout + 30*time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	w := &deploy.Watcher{SageMaker: sm, CloudWatch: cw, AlarmNames: r.Alarms.Names, Interval: f.interval, Out: out}
	if (req != nil && req.Stage == deploy.StageShadow) || (f.sub == "watch" && f.stage == string(deploy.StageShadow)) {
		// The shadow stage shifts no traffic and has no rollback alarms.
		return watchUpdate(wctx, w, r.Endpoint, target)
	}
	res, err := w.Watch(wctx, r.Endpoint, target)
	if err != nil {
		return err
	}
	if res.Outcome != deploy.RolledForward {
		return fmt.Errorf("deployment of %s to %s %s", r.Endpoint, target, res.Outcome)
	}
	return nil
}

// gateFlags are the shadow gate's flags of promote-shadow and apply -stage shift.
type gateFlags struct {
	server, token, since, override string
	timeout                        time.Duration
}

func (g *gateFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", "http://127.0.0.1:8080", "base URL of the running verdict whose judge the shadow gate asks (GET /v1/judge)")
	fs.StringVar(&g.token, "token", "", "API bearer token of that verdict (default $VERDICT_API_TOKEN)")
	fs.StringVar(&g.since, "since", "", "start of the shadow stage's comparison period, RFC 3339 (default: shadow.gate.since, else the candidate's first prediction)")
	fs.StringVar(&g.override, "override-shadow-gate", "", "promote although the shadow gate blocks; the value is the reason, logged and printed")
	fs.DurationVar(&g.timeout, "gate-timeout", 30*time.Second, "give up asking verdict's judge after this long")
}

// admit runs the shadow gate of r: it asks verdict's judge for the shadow stage's
// judgement, applies the gate's limits, prints the answer, and returns an error
// naming what blocked unless the gate is open or overridden.
func (g *gateFlags) admit(ctx context.Context, out io.Writer, r *deploy.Rollout) error {
	gate := r.ShadowGate()
	if gate == nil {
		return nil
	}
	var since time.Time
	switch {
	case g.since != "":
		t, err := time.Parse(time.RFC3339, g.since)
		if err != nil {
			return fmt.Errorf("-since %q: want an RFC 3339 time such as 2026-12-04T10:00:00Z (the shadow stage's start)", g.since)
		}
		since = t
	case gate.Since != nil:
		since = *gate.Since
	}
	token := g.token
	if token == "" {
		token = os.Getenv("VERDICT_API_TOKEN")
	}
	j, err := api.FetchJudgement(ctx, &http.Client{Timeout: g.timeout}, api.JudgeRequest{
		Server: g.server, Token: token, Baseline: gate.Baseline, Candidate: gate.Candidate, Since: since})
	if err != nil {
		return fmt.Errorf("shadow gate: ask verdict's judge (-server %s): %w", g.server, err)
	}
	res, err := gate.Admit(j, g.override)
	if werr := res.Write(out); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		if errors.Is(err, deploy.ErrGateBlocked) {
			return fmt.Errorf("%w; promote anyway with -override-shadow-gate REASON, or change shadow.gate in the rollout spec", err)
		}
		return err
	}
	if res.Overridden != "" {
		slog.WarnContext(ctx, "shadow gate overridden", "endpoint", r.Endpoint, "candidate", gate.Candidate, "reason", res.Overridden, "blocked_by", res.Summary())
	}
	if res.WindowStart != nil {
		// The shift alarms compare with this same shadow stage (docs/alarms.md).
		fmt.Fprintf(out, "  the shift alarms' reference period is this shadow stage: VERDICT_REFERENCE_SINCE=%s VERDICT_REFERENCE_UNTIL=%s on the verdict that publishes to CloudWatch\n",
			res.WindowStart.UTC().Format(time.RFC3339), res.WindowEnd.UTC().Truncate(time.Second).Format(time.RFC3339))
	}
	return nil
}

// watchUpdate follows an update without traffic shifting to its end.
func watchUpdate(ctx context.Context, w *deploy.Watcher, endpoint, target string) error {
	res, err := w.WatchUpdate(ctx, endpoint, target)
	if err != nil {
		return err
	}
	if res.Outcome != deploy.Updated {
		return fmt.Errorf("update of %s to %s %s: %s", endpoint, target, res.Outcome, res.Reason)
	}
	return nil
}

// deploySplit plans, applies or watches an A/B split spec.
func deploySplit(ctx context.Context, out io.Writer, sub, path, smURL string, interval, timeout time.Duration, watchAfter bool) error {
	s, err := deploy.LoadSplit(path)
	if err != nil {
		return err
	}
	switch sub {
	case "plan":
		return s.WritePlan(out)
	case "apply", "watch":
	default:
		return fmt.Errorf("deploy %s: %s is an A/B split spec; it takes plan, apply, watch and weights", sub, path)
	}
	sm, _, err := deployClients(ctx, smURL, "")
	if err != nil {
		return err
	}
	if sub == "apply" {
		req := s.Requests()
		if err := deploy.Apply(ctx, sm, req); err != nil {
			return err
		}
		slog.InfoContext(ctx, "deployment started", "endpoint", s.Endpoint, "stage", req.Stage, "endpoint_config", s.EndpointConfig)
		fmt.Fprintf(out, "split stage started: %s is updating to %s\n", s.Endpoint, s.EndpointConfig)
		if err := deploy.WriteSplit(out, s.Weights(), nil); err != nil {
			return err
		}
		if !watchAfter {
			return nil
		}
	}
	if timeout == 0 {
		timeout = time.Hour
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return watchUpdate(wctx, &deploy.Watcher{SageMaker: sm, Interval: interval, Out: out}, s.Endpoint, s.EndpointConfig)
}

// deployWeights moves an A/B split: it reads the current weights, checks the
// desired variants against the split spec (when given) and the endpoint,
// prints the split before and after, and sends the update.
func deployWeights(ctx context.Context, out io.Writer, sm deploy.SageMakerAPI, endpoint string, split *deploy.Split, set string) error {
	ws, err := deploy.ParseWeights(set)
	if err != nil {
		return err
	}
	if split != nil {
		if err := split.CheckVariants(ws); err != nil {
			return err
		}
	}
	in, err := deploy.WeightsRequest(endpoint, ws)
	if err != nil {
		return err
	}
	d, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(endpoint)})
	if err != nil {
		return fmt.Errorf("read current weights of %s: %w", endpoint, err)
	}
	if split != nil && aws.ToString(d.EndpointConfigName) != split.EndpointConfig {
		return fmt.Errorf("endpoint %s is on %s, not the split spec's %s: apply the split first",
			endpoint, aws.ToString(d.EndpointConfigName), split.EndpointConfig)
	}
	before := deploy.CurrentWeights(d)
	after, err := deploy.MoveSplit(endpoint, before, ws)
	if err != nil {
		return err
	}
	if _, err := sm.UpdateEndpointWeightsAndCapacities(ctx, in); err != nil {
		return fmt.Errorf("update weights of %s: %w", endpoint, err)
	}
	slog.InfoContext(ctx, "weights updated", "endpoint", endpoint, "set", set)
	fmt.Fprintf(out, "split of %s (before -> after):\n", endpoint)
	if err := deploy.WriteSplit(out, before, after); err != nil {
		return err
	}
	fmt.Fprintln(out, "the endpoint is Updating until the new weights take effect")
	return nil
}

// writeWarnings prints what the rollout's reviewer should know that is not an
// error (deploy.Rollout.Warnings), one line each.
func writeWarnings(out io.Writer, r *deploy.Rollout) {
	for _, w := range r.Warnings() {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
}

func deployPlan(out io.Writer, r *deploy.Rollout, startFlag string) error {
	start := time.Now().Truncate(time.Minute)
	if startFlag != "" {
		t, err := time.Parse(time.RFC3339, startFlag)
		if err != nil {
			hm, err2 := time.Parse("15:04", startFlag)
			if err2 != nil {
				return fmt.Errorf("-start %q: want HH:MM or RFC 3339", startFlag)
			}
			t = time.Date(start.Year(), start.Month(), start.Day(), hm.Hour(), hm.Minute(), 0, 0, start.Location())
		}
		start = t
	}
	writeWarnings(out, r)
	if shadow, err := r.ShadowRequests(); err == nil {
		fmt.Fprintln(out, "== stage 1: shadow (verdict deploy apply -stage shadow)")
		if err := deploy.WriteRequests(out, shadow); err != nil {
			return err
		}
		fmt.Fprintln(out, "\n== stage 2: shift (verdict deploy apply -stage shift, or promote-shadow)")
		fmt.Fprintf(out, "%s (asked of verdict's /v1/judge before the shift starts)\n", r.ShadowGate().Describe())
	} else {
		fmt.Fprintln(out, "== shift (verdict deploy apply -stage shift)")
	}
	if err := deploy.WriteRequests(out, r.ShiftRequests()); err != nil {
		return err
	}
	fmt.Fprintln(out)
	return r.WriteTimeline(out, start)
}

// deployClients builds SageMaker and CloudWatch clients from the standard AWS
// configuration chain, optionally pointed at other endpoints.
func deployClients(ctx context.Context, smURL, cwURL string) (*sagemaker.Client, *cloudwatch.Client, error) {
	cfg, err := loadAWS(ctx)
	if err != nil {
		return nil, nil, err
	}
	return sageMakerClient(cfg, smURL), cloudWatchClient(cfg, cwURL), nil
}
