package labels

import (
	"fmt"
	"slices"

	"github.com/verdictml/verdict/ingest"
	"github.com/verdictml/verdict/tally"
)

// Declined says how the predictions of an inference that the serving variant declined
// are resolved. A serving prediction is one with role production; verdict takes one
// that is flagged (score >= threshold) as declined, so the transaction never happened
// and no dispute will ever label it (selective labels).
type Declined uint8

const (
	// DeclinedNegative resolves them like any other prediction: by a label, else as
	// negative at maturity. The serving model's catches then mature as its own false
	// positives, and a shadow that flags the same inferences is charged alike.
	DeclinedNegative Declined = iota
	// DeclinedCensored never matures them: they stay pending, counted as censored and
	// left out of every ratio, until a label resolves them; with review sources
	// configured, only a label from one of those does. A shadow variant's prediction
	// of the same inference is censored alike: its label never comes either.
	DeclinedCensored
)

// ParseDeclined reads "negative" or "censored".
func ParseDeclined(s string) (Declined, error) {
	switch s {
	case "negative":
		return DeclinedNegative, nil
	case "censored":
		return DeclinedCensored, nil
	}
	return 0, fmt.Errorf("%q: want negative or censored", s)
}

func (d Declined) String() string {
	if d == DeclinedCensored {
		return "censored"
	}
	return "negative"
}

// declined reports whether a serving (production-role) prediction of rec is flagged.
// Predictions are never replaced, so once true it stays true.
func declined(rec *Record) bool {
	for _, p := range rec.Preds {
		if !p.Shadow && !p.Errored && p.Flagged {
			return true
		}
	}
	return false
}

// censoring reports whether declined inferences are censored rather than matured.
func (j *Join) censoring() bool { return j.cfg.Declined == DeclinedCensored }

// reviewSource reports whether labels from source are review labels.
func (j *Join) reviewSource(source string) bool {
	return slices.Contains(j.cfg.ReviewSources, source)
}

// resolvingLabel is the label that resolves rec's predictions: the label in force,
// except that when censoring with review sources configured a declined inference is
// resolved only by its latest review label.
func (j *Join) resolvingLabel(rec *Record) *LabelState {
	if j.censoring() && len(j.cfg.ReviewSources) > 0 && declined(rec) {
		return rec.Review
	}
	return rec.Label
}

// labelCensoring applies a label when censoring: the label in force and the latest
// review label are each kept by the usual rule (latest time wins, ties to the one
// received last), then every prediction settles. It reports false when the label
// changes neither.
func (g *group) labelCensoring(l ingest.Label) bool {
	rec := g.records[l.InferenceID]
	t := l.Time.UnixNano()
	supersedes := func(cur *LabelState) bool {
		return cur == nil || t > cur.Time || (t == cur.Time && l.Positive != cur.Positive)
	}
	inForce := supersedes(rec.Label)
	review := len(g.j.cfg.ReviewSources) > 0 && g.j.reviewSource(l.Source) && supersedes(rec.Review)
	if !inForce && !review {
		return false
	}
	rc := g.change(rec.ID)
	state := &LabelState{Positive: l.Positive, Time: t, Seq: g.j.nextSeq(), Source: l.Source}
	if inForce {
		if rec.Label == nil && len(rec.Preds) == 0 {
			rc.Unmatched++
		}
		rec.Label = state
	}
	if review {
		rec.Review = state
	}
	g.settle(rec, rc)
	rc.dirty = true
	return true
}

// settle moves every prediction of rec to the state censoring gives it, with the
// tally deltas of each move: resolved by the resolving label if there is one, else
// censored if the inference was declined, else as it was (pending or matured). It is
// a function of the record alone, so the order in which predictions, labels and
// maturity arrive cannot change the result. Without censoring it does nothing.
func (g *group) settle(rec *Record, rc *recordChange) {
	if !g.j.censoring() {
		return
	}
	dec := declined(rec)
	l := g.j.resolvingLabel(rec)
	for i := range rec.Preds {
		ps := &rec.Preds[i]
		if ps.Errored {
			continue
		}
		next := *ps
		switch {
		case l != nil:
			next.Outcome, next.Matured, next.Censored = tally.OutcomeOf(ps.Flagged, l.Positive), false, false
		case dec:
			next.Outcome, next.Matured, next.Censored = tally.Pending, false, true
		}
		if next.Outcome == ps.Outcome && next.Matured == ps.Matured && next.Censored == ps.Censored {
			continue
		}
		if ps.Open() && g.j.cfg.Maturity > 0 {
			// Leaving the maturity index: resolved, or censored (never matures).
			rc.Undue = append(rc.Undue, DueRef{ID: rec.ID, Variant: ps.Variant, Time: ps.Time})
		}
		d := resolution(next)
		d.Sub(resolution(*ps))
		ps.Outcome, ps.Matured, ps.Censored = next.Outcome, next.Matured, next.Censored
		rc.add(g.j, ps, d)
		rc.dirty = true
	}
}

// resolution is what a prediction's state contributes to the counts besides its
// arrival (Predictions, Flagged, score): its outcome cell, Matured and Censored.
func resolution(p PredState) tally.Counts {
	var c tally.Counts
	c.AddOutcome(p.Outcome, 1)
	if p.Matured {
		c.Matured = 1
	}
	if p.Censored {
		c.Censored = 1
		if p.Flagged {
			c.CensoredFlagged = 1
		}
	}
	return c
}
