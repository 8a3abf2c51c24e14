package kinesis

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/verdictml/verdict/internal/emulatortest"
)

// TestDeadLetterTableKeepsOneLetterPerInput writes letters to kumo twice (a redelivery)
// and finds each input once, with its reason; oversize data is truncated and flagged.
func TestDeadLetterTableKeepsOneLetterPerInput(t *testing.T) {
	ctx := context.Background()
	db := emulatortest.DynamoDBClient(t)
	table := emulatortest.TableName(t, db, "dead-letters")
	dl := NewDeadLetterTable(db, table)
	if err := dl.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	var letters []DeadLetter
	for i := range 30 { // more than one BatchWriteItem
		letters = append(letters, DeadLetter{
			Stream: "predictions", ShardID: "shardId-000000000001", SequenceNumber: "4960001", Index: i,
			PartitionKey: "txn", ArrivedAt: time.Unix(1700000000, 0),
			Data: []byte(fmt.Sprintf(`{"inference_id":%d}`, i)), Reason: "score: missing",
		})
	}
	letters = append(letters, DeadLetter{
		Stream: "predictions", ShardID: "shardId-000000000001", SequenceNumber: "4960002",
		Data: bytes.Repeat([]byte("x"), maxDeadLetterData+10), Reason: "record too large",
	})
	for range 2 {
		if err := dl.Put(ctx, letters); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	out, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("#s = :s"),
		ExpressionAttributeNames:  map[string]string{"#s": dlAttrSource},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "predictions/shardId-000000000001"}},
	})
	if err != nil {
		t.Fatalf("query dead letters: %v", err)
	}
	if len(out.Items) != len(letters) {
		t.Fatalf("%d dead letters stored, want %d (one per input, however often written)", len(out.Items), len(letters))
	}
	for _, item := range out.Items {
		pos := item[dlAttrPosition].(*types.AttributeValueMemberS).Value
		truncated := item[dlAttrTruncated].(*types.AttributeValueMemberBOOL).Value
		data := item[dlAttrData].(*types.AttributeValueMemberB).Value
		if pos == dlPosition("4960002", 0) {
			if !truncated || len(data) != maxDeadLetterData {
				t.Errorf("oversize letter: truncated=%v len=%d, want truncated to %d", truncated, len(data), maxDeadLetterData)
			}
			continue
		}
		if truncated || item[dlAttrReason].(*types.AttributeValueMemberS).Value != "score: missing" {
			t.Errorf("letter %s = %v", pos, item)
		}
	}
}
