// Package rehearsal replays recorded predictions and labels on simulated (event)
// time: a rollout rehearsal (a SageMaker traffic shift with its rollback alarms
// evaluated locally) and a backtest (when the judge and the alarms would have
// caught a regression, and whether they cry wolf on a good model).
//
// The engine (Replay) applies events in event-time order to a join over a
// temporary embedded store, in steps of simulated time, and hands each step's
// windows to a callback. Windows run on the simulated clock; nothing here reads
// the wall clock, so a replay's result depends only on its input.
package rehearsal
