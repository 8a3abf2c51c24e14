// Package judge decides whether a candidate model variant is worse than its
// baseline, from window snapshots: recall and precision compared overall and per
// segment with Wilson intervals, one-sided pooled two-proportion z-tests, a Holm
// correction across every test of a judgement, a minimum-n rule and a practical
// tolerance; beside them the label-free early signals (flag-rate difference and
// score-distribution PSI). Each comparison ends as pass, fail or inconclusive with
// the numbers behind it and a reason; docs/decisions.md explains the rules.
//
// The package also serves the decisions: a Prometheus collector (segment
// regressions, deltas, the current decision), the rollout-gate handler
// (GET /v1/judge, shaped for Argo Rollouts' web metric provider and Flagger
// webhooks) and the analyst's shadow comparison (GET /v1/compare). All of them read
// window snapshots through the one-method Snapshots interface at request or scrape
// time and keep no state of their own.
package judge
