// Package judge decides whether a candidate model variant is worse than its
// baseline, from window snapshots: recall and precision compared overall and per
// segment with Wilson intervals, one-sided pooled two-proportion z-tests, a Holm
// correction across every test of a judgement, a minimum-n rule and a practical
// tolerance; beside them the label-free early signals (flag-rate difference and
// score-distribution PSI). Each comparison ends as pass, fail or inconclusive with
// the numbers behind it and a reason; docs/decisions.md explains the rules.
//
// Beside the decisions it keeps a Prometheus collector (segment regressions,
// deltas, the current decision) that judges at scrape time. The decisions are
// served over HTTP by package api (GET /v1/judge, /v1/compare) and rendered for
// people by package report; everything here reads window snapshots through the
// Snapshots interface and keeps no state of its own.
package judge
