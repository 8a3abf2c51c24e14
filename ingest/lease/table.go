// Package lease shares work between instances through leases in a DynamoDB table:
// each item is one unit of work (a Kinesis shard, an S3 prefix), owned by at most one
// live worker, with a checkpoint that only the owner may write. Ownership changes and
// renewals bump a counter and are conditional on the counter the writer last saw, so
// two workers never both believe they hold a lease, and liveness is judged by counters
// moving, not by anyone's clock. PlanTakes balances leases evenly between workers;
// Group runs a worker's share of a set of leases.
package lease

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

// API is what a lease table needs from DynamoDB; *dynamodb.Client implements it.
type API interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Finished is the checkpoint of a lease whose work is done for good (a Kinesis shard
// read to its end): it can no longer be taken.
const Finished = "SHARD_END"

// Lease table attributes. One item per (group, key): the item key is "<group>/<key>",
// so one table may hold the leases of several groups (streams, sources) of one
// application. The attribute names date from the Kinesis consumer, the first user:
// "stream" holds the group and "shard_id" the lease's key.
const (
	attrKey        = "lease_key"
	attrStream     = "stream"
	attrShard      = "shard_id"
	attrParents    = "parents"
	attrOwner      = "lease_owner"
	attrCounter    = "lease_counter"
	attrCheckpoint = "checkpoint"
)

// ErrLost means a conditional write found the lease no longer ours (another worker
// took it, or its counter moved on): stop its work at once, never checkpoint it.
var ErrLost = errors.New("lease lost")

// Lease is one lease item.
type Lease struct {
	Key        string
	Parents    []string
	Owner      string
	Counter    int64
	Checkpoint string
}

// Finished reports whether the lease's work is done for good.
func (l Lease) Finished() bool { return l.Checkpoint == Finished }

// Table reads and writes one group's leases. Every change of ownership bumps the
// lease counter and is conditional on the counter the writer last saw, so two workers
// can never both believe they took the same lease; renewals bump it too, which is how
// other workers tell a live owner from a dead one without trusting anyone's clock.
// Checkpoints are conditional on owner and counter and do not bump it.
type Table struct {
	api   API
	table string
	group string
}

// NewTable returns the leases of group in the DynamoDB table named table.
func NewTable(api API, table, group string) *Table {
	return &Table{api: api, table: table, group: group}
}

// Name is the DynamoDB table's name.
func (t *Table) Name() string { return t.table }

func (t *Table) itemKey(key string) string { return t.group + "/" + key }

func (t *Table) keyAttr(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: &types.AttributeValueMemberS{Value: t.itemKey(key)}}
}

// Ensure creates the table (on-demand capacity) if it does not exist and waits until
// it is ACTIVE.
func (t *Table) Ensure(ctx context.Context) error {
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
	return WaitTableActive(ctx, t.api, t.table)
}

// TableDescriber is what WaitTableActive needs from DynamoDB.
type TableDescriber interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// WaitTableActive polls DescribeTable until the table is ACTIVE. (The SDK's waiter
// starts at a 20 s delay, far too slow for emulators and tests.)
func WaitTableActive(ctx context.Context, api TableDescriber, table string) error {
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
		if err := Sleep(ctx, delay); err != nil {
			return fmt.Errorf("wait for table %q to become ACTIVE: %w", table, err)
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// List returns every lease of the group (strongly consistent).
func (t *Table) List(ctx context.Context) ([]Lease, error) {
	var (
		leases []Lease
		start  map[string]types.AttributeValue
	)
	for {
		out, err := t.api.Scan(ctx, &dynamodb.ScanInput{
			TableName:                 aws.String(t.table),
			ConsistentRead:            aws.Bool(true),
			FilterExpression:          aws.String("#stream = :stream"),
			ExpressionAttributeNames:  map[string]string{"#stream": attrStream},
			ExpressionAttributeValues: map[string]types.AttributeValue{":stream": &types.AttributeValueMemberS{Value: t.group}},
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, fmt.Errorf("scan lease table %q for %q: %w", t.table, t.group, err)
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

func decodeLease(item map[string]types.AttributeValue) (Lease, error) {
	var l Lease
	key, _ := item[attrKey].(*types.AttributeValueMemberS)
	shard, ok := item[attrShard].(*types.AttributeValueMemberS)
	if !ok {
		return l, fmt.Errorf("lease item %v has no %s", key, attrShard)
	}
	l.Key = shard.Value
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
			return l, fmt.Errorf("lease %q: %s %q: %w", l.Key, attrCounter, v.Value, err)
		}
		l.Counter = n
	}
	return l, nil
}

// Create adds a free lease for key, with the given parents and initial checkpoint,
// unless one exists already. The checkpoint must not be empty.
func (t *Table) Create(ctx context.Context, key string, parents []string, checkpoint string) error {
	item := t.keyAttr(key)
	item[attrStream] = &types.AttributeValueMemberS{Value: t.group}
	item[attrShard] = &types.AttributeValueMemberS{Value: key}
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
		return fmt.Errorf("create lease %q/%q: %w", t.group, key, err)
	}
	return nil
}

// Take makes owner the lease's owner if its counter is still the one observed (and it
// is not finished), and returns the lease as written. ErrLost: someone else moved it.
func (t *Table) Take(ctx context.Context, observed Lease, owner string) (Lease, error) {
	out, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(t.table),
		Key:                      t.keyAttr(observed.Key),
		UpdateExpression:         aws.String("SET #owner = :me, #counter = #counter + :one"),
		ConditionExpression:      aws.String("#counter = :counter AND #checkpoint <> :end"),
		ExpressionAttributeNames: map[string]string{"#owner": attrOwner, "#counter": attrCounter, "#checkpoint": attrCheckpoint},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me":      &types.AttributeValueMemberS{Value: owner},
			":one":     &types.AttributeValueMemberN{Value: "1"},
			":counter": counterValue(observed.Counter),
			":end":     &types.AttributeValueMemberS{Value: Finished},
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return Lease{}, t.writeErr("take", observed.Key, err)
	}
	return decodeLease(out.Attributes)
}

// Renew bumps the counter of a lease its owner holds at l.Counter; it returns the new
// counter.
func (t *Table) Renew(ctx context.Context, l Lease) (int64, error) {
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.table),
		Key:                       t.keyAttr(l.Key),
		UpdateExpression:          aws.String("SET #counter = #counter + :one"),
		ConditionExpression:       aws.String("#owner = :me AND #counter = :counter"),
		ExpressionAttributeNames:  map[string]string{"#owner": attrOwner, "#counter": attrCounter},
		ExpressionAttributeValues: t.ownedValues(l, map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}),
	})
	if err != nil {
		return 0, t.writeErr("renew", l.Key, err)
	}
	return l.Counter + 1, nil
}

// Checkpoint records how far the lease's work has come, only while l is still held
// as seen (owner and counter); it does not bump the counter.
func (t *Table) Checkpoint(ctx context.Context, l Lease, checkpoint string) error {
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(t.table),
		Key:                      t.keyAttr(l.Key),
		UpdateExpression:         aws.String("SET #checkpoint = :checkpoint"),
		ConditionExpression:      aws.String("#owner = :me AND #counter = :counter"),
		ExpressionAttributeNames: map[string]string{"#owner": attrOwner, "#counter": attrCounter, "#checkpoint": attrCheckpoint},
		ExpressionAttributeValues: t.ownedValues(l, map[string]types.AttributeValue{
			":checkpoint": &types.AttributeValueMemberS{Value: checkpoint},
		}),
	})
	if err != nil {
		return t.writeErr("checkpoint", l.Key, err)
	}
	return nil
}

// Release gives the lease up (owner removed, counter bumped), optionally marking it
// finished in the same write.
func (t *Table) Release(ctx context.Context, l Lease, finished bool) error {
	update := "SET #counter = #counter + :one REMOVE #owner"
	names := map[string]string{"#owner": attrOwner, "#counter": attrCounter}
	values := t.ownedValues(l, map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}})
	if finished {
		update = "SET #counter = #counter + :one, #checkpoint = :end REMOVE #owner"
		names["#checkpoint"] = attrCheckpoint
		values[":end"] = &types.AttributeValueMemberS{Value: Finished}
	}
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.table),
		Key:                       t.keyAttr(l.Key),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("#owner = :me AND #counter = :counter"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return t.writeErr("release", l.Key, err)
	}
	return nil
}

// Remove deletes a finished lease (its work aged out, such as a shard that left the
// stream's retention).
func (t *Table) Remove(ctx context.Context, key string) error {
	_, err := t.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(t.table),
		Key:                       t.keyAttr(key),
		ConditionExpression:       aws.String("#checkpoint = :end"),
		ExpressionAttributeNames:  map[string]string{"#checkpoint": attrCheckpoint},
		ExpressionAttributeValues: map[string]types.AttributeValue{":end": &types.AttributeValueMemberS{Value: Finished}},
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("delete finished lease %q/%q: %w", t.group, key, err)
	}
	return nil
}

func (t *Table) ownedValues(l Lease, extra map[string]types.AttributeValue) map[string]types.AttributeValue {
	extra[":me"] = &types.AttributeValueMemberS{Value: l.Owner}
	extra[":counter"] = counterValue(l.Counter)
	return extra
}

func (t *Table) writeErr(op, key string, err error) error {
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return fmt.Errorf("%s lease %q/%q: %w", op, t.group, key, ErrLost)
	}
	return fmt.Errorf("%s lease %q/%q in table %q: %w", op, t.group, key, t.table, err)
}

func counterValue(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// Sleep waits d or until ctx is done, and returns ctx's error if it ended first.
func Sleep(ctx context.Context, d time.Duration) error {
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
