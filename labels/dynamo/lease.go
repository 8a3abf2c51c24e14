package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Lease elects one holder among the processes sharing the table, for work only one of
// them should do (publishing to CloudWatch). The holder renews it every TTL/3; a
// holder that stops renewing loses it TTL after its last renewal. Expiry is judged on
// each contender's clock, so clocks must agree to well within TTL.
type Lease struct {
	api   API
	table string
	name  string
	owner string
	ttl   time.Duration
	now   func() time.Time
	held  atomic.Bool
}

// Lease returns the named lease for owner (a process's writer id). Run it to take part.
func (s *Store) Lease(name, owner string, ttl time.Duration) *Lease {
	if ttl <= 0 {
		ttl = 15 * time.Second
	}
	return &Lease{api: s.api, table: s.table, name: name, owner: owner, ttl: ttl, now: time.Now}
}

// IsLeader reports whether this process held the lease at its last renewal.
func (l *Lease) IsLeader() bool { return l.held.Load() }

// Run takes and renews the lease until ctx ends, then gives it up.
func (l *Lease) Run(ctx context.Context) error {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		ok, err := l.try(ctx)
		if err != nil && ctx.Err() == nil {
			ok = false // unknown: assume lost, never two leaders
		}
		l.held.Store(ok)
		select {
		case <-ctx.Done():
			if l.held.Swap(false) {
				l.release(context.WithoutCancel(ctx))
			}
			return nil
		case <-t.C:
		}
	}
}

// try takes the lease if it is free, expired or already ours, and extends it.
func (l *Lease) try(ctx context.Context) (bool, error) {
	now := l.now()
	_, err := l.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(l.table),
		Item: map[string]types.AttributeValue{
			attrPK:    &types.AttributeValueMemberS{Value: "lease#" + l.name},
			attrSK:    &types.AttributeValueMemberS{Value: "lease"},
			"owner":   &types.AttributeValueMemberS{Value: l.owner},
			"expires": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(l.ttl).UnixMilli(), 10)},
		},
		ConditionExpression:      aws.String("attribute_not_exists(#pk) OR #owner = :me OR #expires < :now"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#owner": "owner", "#expires": "expires"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me":  &types.AttributeValueMemberS{Value: l.owner},
			":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
		},
	})
	var held *types.ConditionalCheckFailedException
	if errors.As(err, &held) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dynamo: lease %q in %s: %w", l.name, l.table, err)
	}
	return true, nil
}

// release expires the lease now if it is still ours, so another process takes over
// without waiting for the TTL.
func (l *Lease) release(ctx context.Context) {
	_, _ = l.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(l.table),
		Item: map[string]types.AttributeValue{
			attrPK:    &types.AttributeValueMemberS{Value: "lease#" + l.name},
			attrSK:    &types.AttributeValueMemberS{Value: "lease"},
			"owner":   &types.AttributeValueMemberS{Value: ""},
			"expires": &types.AttributeValueMemberN{Value: "0"},
		},
		ConditionExpression:       aws.String("#owner = :me"),
		ExpressionAttributeNames:  map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": &types.AttributeValueMemberS{Value: l.owner}},
	})
}
