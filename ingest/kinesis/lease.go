package kinesis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// LeaseTableAPI is what the consumer needs from DynamoDB for its lease table;
// *dynamodb.Client implements it.
type LeaseTableAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Checkpoint values that are not sequence numbers.
const (
	// CheckpointTrimHorizon: nothing read yet, start at the oldest record.
	CheckpointTrimHorizon = "TRIM_HORIZON"
	// CheckpointLatest: nothing read yet, start at records put from now on.
	CheckpointLatest = "LATEST"
	// CheckpointShardEnd: the shard was read to its end; its children may be read.
	CheckpointShardEnd = "SHARD_END"
)

// Lease table attributes. One item per (stream, shard): the key is "<stream>/<shard>",
// so one table may hold the leases of several streams of one application.
const (
	attrKey        = "lease_key"
	attrStream     = "stream"
	attrShard      = "shard_id"
	attrParents    = "parents"
	attrOwner      = "lease_owner"
	attrCounter    = "lease_counter"
	attrCheckpoint = "checkpoint"
)

// errLeaseLost means a conditional write found the lease no longer ours (another worker
// took it, or its counter moved on): stop processing the shard, never checkpoint it.
var errLeaseLost = errors.New("lease lost")

// lease is one lease item.
type lease struct {
	ShardID    string
	Parents    []string
	Owner      string
	Counter    int64
	Checkpoint string
}

func (l lease) finished() bool { return l.Checkpoint == CheckpointShardEnd }

// leaseTable reads and writes one stream's leases. Every change of ownership bumps the
// lease counter and is conditional on the counter the writer last saw, so two workers
// can never both believe they took the same lease; renewals bump it too, which is how
// other workers tell a live owner from a dead one without trusting anyone's clock.
// Checkpoints are conditional on owner and counter and do not bump it.
type leaseTable struct {
	api    LeaseTableAPI
	table  string
	stream string
}

func (t *leaseTable) key(shardID string) string { return t.stream + "/" + shardID }

func (t *leaseTable) keyAttr(shardID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: &types.AttributeValueMemberS{Value: t.key(shardID)}}
}

// ensure creates the table (on-demand capacity) if it does not exist and waits until
// it is ACTIVE.
func (t *leaseTable) ensure(ctx context.Context) error {
	_, err := t.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.table)})
	var notFound *types.ResourceNotFoundException
	switch {
	case err == nil:
	case errors.As(err, &notFound):
		_, err = t.api.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(t.table),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeHash}},
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // in use: another worker is creating it
			return fmt.Errorf("create lease table %q: %w", t.table, err)
		}
	default:
		return fmt.Errorf("describe lease table %q: %w", t.table, err)
	}
	return waitTableActive(ctx, t.api, t.table)
}

type tableDescriber interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// waitTableActive polls DescribeTable until the table is ACTIVE. (The SDK's waiter
// starts at a 20 s delay, far too slow for emulators and tests.)
func waitTableActive(ctx context.Context, api tableDescriber, table string) error {
	delay := 50 * time.Millisecond
	for {
		out, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		var notFound *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &notFound) {
			return fmt.Errorf("describe table %q: %w", table, err)
		}
		if err == nil && out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
			return nil
		}
		if err := sleep(ctx, delay); err != nil {
			return fmt.Errorf("wait for table %q to become ACTIVE: %w", table, err)
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// list returns every lease of the stream (strongly consistent).
func (t *leaseTable) list(ctx context.Context) ([]lease, error) {
	var (
		leases []lease
		start  map[string]types.AttributeValue
	)
	for {
		out, err := t.api.Scan(ctx, &dynamodb.ScanInput{
			TableName:                 aws.String(t.table),
			ConsistentRead:            aws.Bool(true),
			FilterExpression:          aws.String("#stream = :stream"),
			ExpressionAttributeNames:  map[string]string{"#stream": attrStream},
			ExpressionAttributeValues: map[string]types.AttributeValue{":stream": &types.AttributeValueMemberS{Value: t.stream}},
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, fmt.Errorf("scan lease table %q for stream %q: %w", t.table, t.stream, err)
		}
		for _, item := range out.Items {
			l, err := decodeLease(item)
			if err != nil {
				return nil, fmt.Errorf("lease table %q: %w", t.table, err)
			}
			leases = append(leases, l)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return leases, nil
		}
		start = out.LastEvaluatedKey
	}
}

func decodeLease(item map[string]types.AttributeValue) (lease, error) {
	var l lease
	key, _ := item[attrKey].(*types.AttributeValueMemberS)
	shard, ok := item[attrShard].(*types.AttributeValueMemberS)
	if !ok {
		return l, fmt.Errorf("lease item %v has no %s", key, attrShard)
	}
	l.ShardID = shard.Value
	if v, ok := item[attrOwner].(*types.AttributeValueMemberS); ok {
		l.Owner = v.Value
	}
	if v, ok := item[attrCheckpoint].(*types.AttributeValueMemberS); ok {
		l.Checkpoint = v.Value
	}
	if v, ok := item[attrParents].(*types.AttributeValueMemberSS); ok {
		l.Parents = v.Value
	}
	if v, ok := item[attrCounter].(*types.AttributeValueMemberN); ok {
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return l, fmt.Errorf("lease for shard %q: %s %q: %w", l.ShardID, attrCounter, v.Value, err)
		}
		l.Counter = n
	}
	return l, nil
}

// create adds a free lease for a shard unless one exists already.
func (t *leaseTable) create(ctx context.Context, shardID string, parents []string, checkpoint string) error {
	item := t.keyAttr(shardID)
	item[attrStream] = &types.AttributeValueMemberS{Value: t.stream}
	item[attrShard] = &types.AttributeValueMemberS{Value: shardID}
	item[attrCounter] = &types.AttributeValueMemberN{Value: "0"}
	item[attrCheckpoint] = &types.AttributeValueMemberS{Value: checkpoint}
	if len(parents) > 0 {
		item[attrParents] = &types.AttributeValueMemberSS{Value: parents}
	}
	_, err := t.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(t.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#key)"),
		ExpressionAttributeNames: map[string]string{"#key": attrKey},
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("create lease for stream %q shard %q: %w", t.stream, shardID, err)
	}
	return nil
}

// take makes owner the lease's owner if its counter is still the one observed, and
// returns the lease as written.
func (t *leaseTable) take(ctx context.Context, observed lease, owner string) (lease, error) {
	out, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(t.table),
		Key:                      t.keyAttr(observed.ShardID),
		UpdateExpression:         aws.String("SET #owner = :me, #counter = #counter + :one"),
		ConditionExpression:      aws.String("#counter = :counter AND #checkpoint <> :end"),
		ExpressionAttributeNames: map[string]string{"#owner": attrOwner, "#counter": attrCounter, "#checkpoint": attrCheckpoint},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me":      &types.AttributeValueMemberS{Value: owner},
			":one":     &types.AttributeValueMemberN{Value: "1"},
			":counter": counterValue(observed.Counter),
			":end":     &types.AttributeValueMemberS{Value: CheckpointShardEnd},
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return lease{}, t.writeErr("take", observed.ShardID, err)
	}
	return decodeLease(out.Attributes)
}

// renew bumps the counter of a lease owner holds at counter; it returns the new counter.
func (t *leaseTable) renew(ctx context.Context, l lease) (int64, error) {
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.table),
		Key:                       t.keyAttr(l.ShardID),
		UpdateExpression:          aws.String("SET #counter = #counter + :one"),
		ConditionExpression:       aws.String("#owner = :me AND #counter = :counter"),
		ExpressionAttributeNames:  map[string]string{"#owner": attrOwner, "#counter": attrCounter},
		ExpressionAttributeValues: t.ownedValues(l, map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}),
	})
	if err != nil {
		return 0, t.writeErr("renew", l.ShardID, err)
	}
	return l.Counter + 1, nil
}

// checkpoint records how far the shard was handled, only while l is still held as seen.
func (t *leaseTable) checkpoint(ctx context.Context, l lease, checkpoint string) error {
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(t.table),
		Key:                      t.keyAttr(l.ShardID),
		UpdateExpression:         aws.String("SET #checkpoint = :checkpoint"),
		ConditionExpression:      aws.String("#owner = :me AND #counter = :counter"),
		ExpressionAttributeNames: map[string]string{"#owner": attrOwner, "#counter": attrCounter, "#checkpoint": attrCheckpoint},
		ExpressionAttributeValues: t.ownedValues(l, map[string]types.AttributeValue{
			":checkpoint": &types.AttributeValueMemberS{Value: checkpoint},
		}),
	})
	if err != nil {
		return t.writeErr("checkpoint", l.ShardID, err)
	}
	return nil
}

// release gives the lease up (owner removed, counter bumped), optionally marking the
// shard finished in the same write.
func (t *leaseTable) release(ctx context.Context, l lease, finished bool) error {
	update := "SET #counter = #counter + :one REMOVE #owner"
	names := map[string]string{"#owner": attrOwner, "#counter": attrCounter}
	values := t.ownedValues(l, map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}})
	if finished {
		update = "SET #counter = #counter + :one, #checkpoint = :end REMOVE #owner"
		names["#checkpoint"] = attrCheckpoint
		values[":end"] = &types.AttributeValueMemberS{Value: CheckpointShardEnd}
	}
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.table),
		Key:                       t.keyAttr(l.ShardID),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("#owner = :me AND #counter = :counter"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return t.writeErr("release", l.ShardID, err)
	}
	return nil
}

// remove deletes a finished lease (its shard aged out of the stream).
func (t *leaseTable) remove(ctx context.Context, shardID string) error {
	_, err := t.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(t.table),
		Key:                       t.keyAttr(shardID),
		ConditionExpression:       aws.String("#checkpoint = :end"),
		ExpressionAttributeNames:  map[string]string{"#checkpoint": attrCheckpoint},
		ExpressionAttributeValues: map[string]types.AttributeValue{":end": &types.AttributeValueMemberS{Value: CheckpointShardEnd}},
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("delete finished lease for stream %q shard %q: %w", t.stream, shardID, err)
	}
	return nil
}

func (t *leaseTable) ownedValues(l lease, extra map[string]types.AttributeValue) map[string]types.AttributeValue {
	extra[":me"] = &types.AttributeValueMemberS{Value: l.Owner}
	extra[":counter"] = counterValue(l.Counter)
	return extra
}

func (t *leaseTable) writeErr(op, shardID string, err error) error {
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return fmt.Errorf("%s lease for stream %q shard %q: %w", op, t.stream, shardID, errLeaseLost)
	}
	return fmt.Errorf("%s lease for stream %q shard %q in table %q: %w", op, t.stream, shardID, t.table, err)
}

func counterValue(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
