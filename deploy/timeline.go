package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/verdictml/verdict/internal/wirejson"
)

// WriteTimeline prints the expected course of the shift if it starts shifting
// traffic at start (after SageMaker has provisioned the new fleet, which takes
// minutes and is not predictable).
func (r *Rollout) WriteTimeline(w io.Writer, start time.Time) error {
	var b strings.Builder
	t := r.Traffic
	wait := t.WaitInterval
	fmt.Fprintf(&b, "endpoint %s: %s shift of variant %s from %s to %s (%s on %d x %s)\n",
		r.Endpoint, t.Type, r.Production.Variant, r.Production.Model, r.Candidate.Model,
		r.Candidate.EndpointConfig, r.Candidate.InstanceCount, r.Candidate.InstanceType)
	fmt.Fprintf(&b, "rollback: any of %d alarms in ALARM during a step or bake (%s)\n\n", len(r.Alarms.Names), strings.Join(r.Alarms.Names, ", "))
	fmt.Fprintf(&b, "  (before) UpdateEndpoint; SageMaker provisions the new fleet; times below assume shifting starts at %s\n", start.Format("15:04"))
	at := start
	for i, share := range r.Shares() {
		fmt.Fprintf(&b, "  %s  step %d: %s of traffic on the new fleet, %s on the old; bake %s\n",
			at.Format("15:04"), i+1, pct(share), pct(100-share), fmtDuration(wait))
		at = at.Add(wait)
	}
	fmt.Fprintf(&b, "  %s  shift complete; old fleet kept for termination wait %s\n", at.Format("15:04"), fmtDuration(t.TerminationWait))
	at = at.Add(t.TerminationWait)
	fmt.Fprintf(&b, "  %s  old fleet terminated; endpoint InService on %s\n", at.Format("15:04"), r.Candidate.EndpointConfig)
	fmt.Fprintf(&b, "  deadline: SageMaker stops the deployment %s after it starts (max execution timeout; total waits %s)\n",
		fmtDuration(t.MaxExecutionTimeout), fmtDuration(r.TotalWait()))
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(p float64) string {
	if p == float64(int(p)) {
		return fmt.Sprintf("%d%%", int(p))
	}
	return fmt.Sprintf("%.1f%%", p)
}

func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
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
