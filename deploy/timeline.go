package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/verdictml/verdict/internal/numfmt"
	"github.com/verdictml/verdict/internal/wirejson"
)

// WriteTimeline prints the expected course of the shift if it starts shifting
// traffic at start (after SageMaker has provisioned the new fleet, which takes
// minutes and is not predictable: traffic.provisioning is what the plan allows).
// A rolling update provisions batch by batch, so its times assume each batch's
// instances are up when the previous bake ends.
func (r *Rollout) WriteTimeline(w io.Writer, start time.Time) error {
	var b strings.Builder
	t := r.Traffic
	wait := t.WaitInterval
	n := r.Candidate.InstanceCount
	rolling := t.Type == Rolling
	if rolling {
		fmt.Fprintf(&b, "endpoint %s: ROLLING update of variant %s from %s to %s (%s on %d x %s), batches of %d instance(s)\n",
			r.Endpoint, r.Production.Variant, r.Production.Model, r.Candidate.Model,
			r.Candidate.EndpointConfig, n, r.Candidate.InstanceType, r.StepInstances())
	} else {
		fmt.Fprintf(&b, "endpoint %s: %s shift of variant %s from %s to %s (%s on %d x %s)\n",
			r.Endpoint, t.Type, r.Production.Variant, r.Production.Model, r.Candidate.Model,
			r.Candidate.EndpointConfig, n, r.Candidate.InstanceType)
	}
	fmt.Fprintf(&b, "rollback: any of %d alarms in ALARM during a step or bake (%s)", len(r.Alarms.Names), strings.Join(r.Alarms.Names, ", "))
	if rolling {
		if rb := t.RollbackBatch; rb != nil {
			fmt.Fprintf(&b, "; the old fleet comes back in batches of %s", sizeText(rb, n))
		} else {
			b.WriteString("; the old fleet comes back all at once")
		}
	}
	b.WriteString("\n\n")
	if rolling {
		fmt.Fprintf(&b, "  (each batch) SageMaker provisions the batch's new instances (allowed %s: traffic.provisioning), turns its traffic on, bakes, then terminates as many old instances; times below assume batch 1 takes traffic at %s and each batch's instances are up when the previous bake ends\n",
			numfmt.Duration(t.Provisioning), start.Format("15:04"))
	} else {
		fmt.Fprintf(&b, "  (before) UpdateEndpoint; SageMaker provisions the new fleet (allowed %s: traffic.provisioning); times below assume shifting starts at %s\n",
			numfmt.Duration(t.Provisioning), start.Format("15:04"))
	}
	at := start
	step := "step"
	if rolling {
		step = "batch"
	}
	for i, share := range r.Shares() {
		instances := int(share*float64(n)/100 + 0.5)
		fmt.Fprintf(&b, "  %s  %s %d: %d of %d instances, %s of traffic on the new fleet, %s on the old; bake %s\n",
			at.Format("15:04"), step, i+1, instances, n, pct(share), pct(100-share), numfmt.Duration(wait))
		at = at.Add(wait)
	}
	if rolling {
		fmt.Fprintf(&b, "  %s  update complete; endpoint InService on %s\n", at.Format("15:04"), r.Candidate.EndpointConfig)
	} else {
		fmt.Fprintf(&b, "  %s  shift complete; old fleet kept for termination wait %s\n", at.Format("15:04"), numfmt.Duration(t.TerminationWait))
		at = at.Add(t.TerminationWait)
		fmt.Fprintf(&b, "  %s  old fleet terminated; endpoint InService on %s\n", at.Format("15:04"), r.Candidate.EndpointConfig)
	}
	fmt.Fprintf(&b, "  deadline: SageMaker stops the deployment %s after it starts (max execution timeout; it can take %s: %s)\n",
		numfmt.Duration(t.MaxExecutionTimeout), numfmt.Duration(r.RequiredExecutionTime()), r.executionBreakdown())
	_, err := io.WriteString(w, b.String())
	return err
}

// sizeText describes a size in instances and share of a fleet of n.
func sizeText(s *Size, n int) string {
	if s.InstanceCount > 0 {
		return fmt.Sprintf("%d instance(s)", s.InstanceCount)
	}
	return fmt.Sprintf("%d%% (%s of %d instances)", s.CapacityPercent, fmtInstances(float64(s.CapacityPercent*n)/100), n)
}

func pct(p float64) string {
	if p == float64(int(p)) {
		return fmt.Sprintf("%d%%", int(p))
	}
	return fmt.Sprintf("%.1f%%", p)
}

// WriteRequests prints a stage's requests as JSON with SageMaker's member
// names, for review.
func WriteRequests(w io.Writer, req *Requests) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	v := struct {
		Stage                Stage
		CreateEndpointConfig any
		UpdateEndpoint       any
	}{req.Stage, wirejson.Of(req.CreateEndpointConfig), wirejson.Of(req.UpdateEndpoint)}
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("deploy: print %s requests: %w", req.Stage, err)
	}
	return nil
}
