package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// tableWait bounds how long EnsureTables waits for a new table to become ACTIVE.
const tableWait = 5 * time.Minute

// EnsureTables creates the table (on-demand capacity, with the "due" index) if it is
// missing and waits until it is ACTIVE, or checks that an existing table has the key
// schema and index the store needs; then it enables TTL on expires_at. Several
// processes may call it at once.
func (s *Store) EnsureTables(ctx context.Context) error {
	desc, err := s.describe(ctx)
	if err != nil {
		return err
	}
	if desc == nil {
		if err := s.create(ctx); err != nil {
			return err
		}
	}
	if desc, err = s.waitActive(ctx); err != nil {
		return err
	}
	if err := validate(desc); err != nil {
		return fmt.Errorf("dynamo: table %s: %w", s.table, err)
	}
	return s.ensureTTL(ctx)
}

// describe returns the table's description, or nil if it does not exist.
func (s *Store) describe(ctx context.Context) (*types.TableDescription, error) {
	out, err := s.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dynamo: describe table %s: %w", s.table, err)
	}
	return out.Table, nil
}

func (s *Store) create(ctx context.Context) error {
	_, err := s.api.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(s.table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrDueShard), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String(attrDueAt), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(dueIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrDueShard), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrDueAt), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{
				ProjectionType:   types.ProjectionTypeInclude,
				NonKeyAttributes: []string{attrDue},
			},
		}},
	})
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) {
		return nil // another process is creating it
	}
	if err != nil {
		return fmt.Errorf("dynamo: create table %s: %w", s.table, err)
	}
	s.log.Info("created table")
	return nil
}

// waitActive polls until the table and its indexes are ACTIVE.
func (s *Store) waitActive(ctx context.Context) (*types.TableDescription, error) {
	deadline := time.Now().Add(tableWait)
	for attempt := 0; ; attempt++ {
		desc, err := s.describe(ctx)
		if err != nil {
			return nil, err
		}
		if desc != nil && desc.TableStatus == types.TableStatusActive && indexesActive(desc) {
			return desc, nil
		}
		if time.Now().After(deadline) {
			status := "missing"
			if desc != nil {
				status = string(desc.TableStatus)
			}
			return nil, fmt.Errorf("dynamo: table %s not ACTIVE after %v (status %s)", s.table, tableWait, status)
		}
		if err := sleep(ctx, min(attempt, 4)); err != nil {
			return nil, fmt.Errorf("dynamo: wait for table %s: %w", s.table, err)
		}
	}
}

func indexesActive(d *types.TableDescription) bool {
	for _, g := range d.GlobalSecondaryIndexes {
		if g.IndexStatus != "" && g.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}

// validate checks an existing table's keys, key types and the "due" index.
func validate(d *types.TableDescription) error {
	attrTypes := map[string]types.ScalarAttributeType{}
	for _, a := range d.AttributeDefinitions {
		attrTypes[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	if err := checkKeys("table", d.KeySchema, attrTypes, attrPK, attrSK, types.ScalarAttributeTypeS); err != nil {
		return err
	}
	i := slices.IndexFunc(d.GlobalSecondaryIndexes, func(g types.GlobalSecondaryIndexDescription) bool {
		return aws.ToString(g.IndexName) == dueIndex
	})
	if i < 0 {
		return fmt.Errorf("no global secondary index %q (%s N hash, %s N range): the maturity index needs it", dueIndex, attrDueShard, attrDueAt)
	}
	g := d.GlobalSecondaryIndexes[i]
	if err := checkKeys("index "+dueIndex, g.KeySchema, attrTypes, attrDueShard, attrDueAt, types.ScalarAttributeTypeN); err != nil {
		return err
	}
	if p := g.Projection; p != nil && p.ProjectionType != types.ProjectionTypeAll &&
		(p.ProjectionType != types.ProjectionTypeInclude || !slices.Contains(p.NonKeyAttributes, attrDue)) {
		return fmt.Errorf("index %q projects %s without attribute %q", dueIndex, p.ProjectionType, attrDue)
	}
	return nil
}

func checkKeys(what string, ks []types.KeySchemaElement, defs map[string]types.ScalarAttributeType, hash, rng string, typ types.ScalarAttributeType) error {
	want := fmt.Sprintf("%s (%s) hash key and %s (%s) range key", hash, typ, rng, typ)
	if len(ks) != 2 {
		return fmt.Errorf("%s has %d key attributes, want %s", what, len(ks), want)
	}
	for _, k := range ks {
		name := aws.ToString(k.AttributeName)
		switch {
		case k.KeyType == types.KeyTypeHash && name == hash, k.KeyType == types.KeyTypeRange && name == rng:
		default:
			return fmt.Errorf("%s has %s key %q, want %s", what, k.KeyType, name, want)
		}
		if t, ok := defs[name]; ok && t != typ {
			return fmt.Errorf("%s key %q has type %s, want %s", what, name, t, typ)
		}
	}
	return nil
}

// ensureTTL enables TTL on expires_at unless it already is; TTL on another attribute
// is an error, since records would never expire.
func (s *Store) ensureTTL(ctx context.Context) error {
	enabled, err := s.ttlEnabled(ctx)
	if err != nil || enabled {
		return err
	}
	_, err = s.api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(s.table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrExpiresAt),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		// Another process may have enabled it since (DynamoDB then rejects further
		// TTL changes for an hour): accept that.
		if enabled, derr := s.ttlEnabled(ctx); derr == nil && enabled {
			return nil
		}
		return fmt.Errorf("dynamo: enable TTL on %s.%s: %w", s.table, attrExpiresAt, err)
	}
	return nil
}

// ttlEnabled reports whether TTL is enabled (or being enabled) on expires_at.
func (s *Store) ttlEnabled(ctx context.Context) (bool, error) {
	out, err := s.api.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(s.table)})
	if err != nil {
		return false, fmt.Errorf("dynamo: describe TTL of %s: %w", s.table, err)
	}
	d := out.TimeToLiveDescription
	if d == nil {
		return false, nil
	}
	attr := aws.ToString(d.AttributeName)
	switch d.TimeToLiveStatus {
	case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
		if attr != attrExpiresAt {
			return false, fmt.Errorf("dynamo: table %s has TTL on %q, want %q", s.table, attr, attrExpiresAt)
		}
		return true, nil
	case types.TimeToLiveStatusDisabling:
		return false, fmt.Errorf("dynamo: table %s: TTL is being disabled; retry when it is DISABLED", s.table)
	}
	return false, nil
}
