// Package alarms turns a reviewed alarm spec into the CloudWatch metric alarms
// that a SageMaker endpoint's AutoRollbackConfiguration watches during a traffic
// shift, shows and applies the difference against what exists, exports the
// alarms as CloudFormation or JSON, and evaluates them locally with CloudWatch's
// alarm semantics over verdict's own metric history.
//
// alarms consumes verdict's published metric names (package cwmetric, also written
// down in docs/alarms.md), never the window package's structs.
package alarms

// Tags verdict puts on every alarm it manages. apply touches only alarms that
// carry TagManaged=true and TagAlarmSet=<the spec's name>.
const (
	TagManaged  = "verdict:managed"
	TagAlarmSet = "verdict:alarm-set"
)
