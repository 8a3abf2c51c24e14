package kinesis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/verdictml/verdict/ingest/lease"
)

// DeadLetter is an input that could not be turned into an event, kept with the reason
// so nothing bad is silently dropped.
type DeadLetter struct {
	Stream         string
	ShardID        string
	SequenceNumber string
	// Index is the bad event's position in the record (its NDJSON line, from 0); 0 for
	// a record that holds one event.
	Index        int
	PartitionKey string
	// ArrivedAt is when Kinesis accepted the record.
	ArrivedAt time.Time
	// Data is the rejected input (the line, for NDJSON).
	Data []byte
	// Reason says which field is wrong and why.
	Reason string
}

// DeadLetters stores rejected inputs. Put must be durable when it returns nil (a
// handler calls it before returning, so before the checkpoint moves) and idempotent:
// redelivered records yield the same letters again.
type DeadLetters interface {
	Put(ctx context.Context, letters []DeadLetter) error
}

// DeadLetterTableAPI is what DeadLetterTable needs from DynamoDB; *dynamodb.Client
// implements it.
type DeadLetterTableAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// Dead-letter table attributes: one item per rejected input, keyed by where it came
// from, so a redelivered record overwrites its own letters instead of adding more.
const (
	dlAttrSource       = "source"   // hash key: "<stream>/<shard>"
	dlAttrPosition     = "position" // range key: "<sequence number>#<index, 6 digits>"
	dlAttrPartitionKey = "partition_key"
	dlAttrArrivedAt    = "arrived_at"
	dlAttrRecordedAt   = "recorded_at"
	dlAttrData         = "data"
	dlAttrTruncated    = "data_truncated"
	dlAttrReason       = "reason"
	// maxDeadLetterData keeps items far below DynamoDB's 400 KB item limit.
	maxDeadLetterData = 64 << 10
	batchWriteMax     = 25
)

// DeadLetterTable keeps dead letters in a DynamoDB table.
type DeadLetterTable struct {
	api   DeadLetterTableAPI
	table string
	now   func() time.Time
}

// NewDeadLetterTable returns a DeadLetters writing to table; call Ensure once at start
// to create the table if it is missing.
func NewDeadLetterTable(api DeadLetterTableAPI, table string) *DeadLetterTable {
	return &DeadLetterTable{api: api, table: table, now: time.Now}
}

// Ensure creates the table (on-demand capacity) if it does not exist and waits until
// it is ACTIVE.
func (d *DeadLetterTable) Ensure(ctx context.Context) error {
	_, err := d.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(d.table)})
	var notFound *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("describe dead-letter table %q: %w", d.table, err)
	}
	if err != nil {
		_, err = d.api.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:   aws.String(d.table),
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(dlAttrSource), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(dlAttrPosition), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(dlAttrSource), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(dlAttrPosition), KeyType: types.KeyTypeRange},
			},
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create dead-letter table %q: %w", d.table, err)
		}
	}
	return lease.WaitTableActive(ctx, d.api, d.table)
}

// Put writes the letters in batches of 25, retrying unprocessed items with backoff.
func (d *DeadLetterTable) Put(ctx context.Context, letters []DeadLetter) error {
	// DynamoDB rejects a batch naming one key twice; the last letter for a key wins.
	byKey := make(map[string]int, len(letters))
	var requests []types.WriteRequest
	for _, l := range letters {
		item := d.item(l)
		key := l.Stream + "/" + l.ShardID + "|" + dlPosition(l.SequenceNumber, l.Index)
		req := types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}
		if i, ok := byKey[key]; ok {
			requests[i] = req
			continue
		}
		byKey[key] = len(requests)
		requests = append(requests, req)
	}
	for start := 0; start < len(requests); start += batchWriteMax {
		batch := requests[start:min(start+batchWriteMax, len(requests))]
		if err := d.write(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

func (d *DeadLetterTable) write(ctx context.Context, batch []types.WriteRequest) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err := d.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{d.table: batch},
		})
		if err != nil {
			return fmt.Errorf("write %d dead letters to table %q: %w", len(batch), d.table, err)
		}
		batch = out.UnprocessedItems[d.table]
		if len(batch) == 0 {
			return nil
		}
		if attempt == 8 {
			return fmt.Errorf("write dead letters to table %q: %d items still unprocessed after %d attempts", d.table, len(batch), attempt)
		}
		if err := lease.Sleep(ctx, backoff); err != nil {
			return fmt.Errorf("write dead letters to table %q: %w", d.table, err)
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (d *DeadLetterTable) item(l DeadLetter) map[string]types.AttributeValue {
	data, truncated := l.Data, false
	if len(data) > maxDeadLetterData {
		data, truncated = data[:maxDeadLetterData], true
	}
	if data == nil {
		data = []byte{}
	}
	item := map[string]types.AttributeValue{
		dlAttrSource:     &types.AttributeValueMemberS{Value: l.Stream + "/" + l.ShardID},
		dlAttrPosition:   &types.AttributeValueMemberS{Value: dlPosition(l.SequenceNumber, l.Index)},
		dlAttrRecordedAt: &types.AttributeValueMemberS{Value: d.now().UTC().Format(time.RFC3339Nano)},
		dlAttrData:       &types.AttributeValueMemberB{Value: data},
		dlAttrTruncated:  &types.AttributeValueMemberBOOL{Value: truncated},
		dlAttrReason:     &types.AttributeValueMemberS{Value: l.Reason},
	}
	if l.PartitionKey != "" {
		item[dlAttrPartitionKey] = &types.AttributeValueMemberS{Value: l.PartitionKey}
	}
	if !l.ArrivedAt.IsZero() {
		item[dlAttrArrivedAt] = &types.AttributeValueMemberS{Value: l.ArrivedAt.UTC().Format(time.RFC3339Nano)}
	}
	return item
}

// dlPosition is a letter's range key: its record's sequence number and its index.
func dlPosition(seq string, index int) string { return fmt.Sprintf("%s#%06d", seq, index) }
