package kinesis

import "github.com/verdictml/verdict/ingest/lease"

// LeaseTableAPI is what the consumer needs from DynamoDB for its lease table;
// *dynamodb.Client implements it.
type LeaseTableAPI = lease.API

// Checkpoint values that are not sequence numbers.
const (
	// CheckpointTrimHorizon: nothing read yet, start at the oldest record.
	CheckpointTrimHorizon = "TRIM_HORIZON"
	// CheckpointLatest: nothing read yet, start at records put from now on.
	CheckpointLatest = "LATEST"
	// CheckpointShardEnd: the shard was read to its end; its children may be read.
	CheckpointShardEnd = lease.Finished
)
