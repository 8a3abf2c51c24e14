// Package emulatortest connects tests to the local AWS emulators that scripts/test.sh
// installs and starts: kinesalite for Kinesis and kumo for DynamoDB (and CloudWatch).
//
// A test asks for an endpoint or a client; when the emulators are not running the test
// is skipped with a hint, unless VERDICT_REQUIRE_EMULATORS=1 (set by scripts/test.sh and
// CI), in which case it fails: CI must never pass by skipping its AWS tests.
package emulatortest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kdstypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Environment variables read by this package.
const (
	// EnvKinesisEndpoint is kinesalite's URL, e.g. http://127.0.0.1:4567.
	EnvKinesisEndpoint = "VERDICT_TEST_KINESIS_ENDPOINT"
	// EnvKumoEndpoint is kumo's URL (DynamoDB, CloudWatch, S3, SQS), e.g.
	// http://127.0.0.1:4566.
	EnvKumoEndpoint = "VERDICT_TEST_KUMO_ENDPOINT"
	// EnvRequire, when "1", turns a missing emulator into a test failure.
	EnvRequire = "VERDICT_REQUIRE_EMULATORS"
)

// Region is the region every emulator client uses; emulators ignore it in ARNs anyway.
const Region = "us-east-1"

// KinesisEndpoint returns the Kinesis emulator's URL, or skips (fails, when emulators
// are required) the test if it is not configured.
func KinesisEndpoint(t testing.TB) string {
	t.Helper()
	return endpoint(t, EnvKinesisEndpoint)
}

// KumoEndpoint returns the kumo emulator's URL (DynamoDB and CloudWatch), or skips
// (fails, when emulators are required) the test if it is not configured.
func KumoEndpoint(t testing.TB) string {
	t.Helper()
	return endpoint(t, EnvKumoEndpoint)
}

func endpoint(t testing.TB, env string) string {
	t.Helper()
	if url := strings.TrimSpace(os.Getenv(env)); url != "" {
		return url
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s is not set but %s=1: start the emulators with scripts/test.sh (or scripts/emulators.sh start and eval \"$(scripts/emulators.sh env)\")", env, EnvRequire)
	}
	t.Skipf("%s not set: run scripts/test.sh to test against the local AWS emulators", env)
	return ""
}

// Config returns an aws.Config for emulators: static dummy credentials (kinesalite
// rejects unsigned calls), region us-east-1, and the SDK's standard retries.
func Config() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("verdict-test", "verdict-test", ""),
	}
}

// KinesisClient returns a Kinesis client pointed at kinesalite.
func KinesisClient(t testing.TB) *kinesis.Client {
	t.Helper()
	url := KinesisEndpoint(t)
	return kinesis.NewFromConfig(Config(), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(url)
	})
}

// DynamoDBClient returns a DynamoDB client pointed at kumo. Response checksum
// validation is off because kumo sends no X-Amz-Crc32 header.
func DynamoDBClient(t testing.TB) *dynamodb.Client {
	t.Helper()
	url := KumoEndpoint(t)
	return dynamodb.NewFromConfig(Config(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(url)
		o.DisableValidateResponseChecksum = true
	})
}

// CloudWatchClient returns a CloudWatch client pointed at kumo.
func CloudWatchClient(t testing.TB) *cloudwatch.Client {
	t.Helper()
	url := KumoEndpoint(t)
	return cloudwatch.NewFromConfig(Config(), func(o *cloudwatch.Options) {
		o.BaseEndpoint = aws.String(url)
	})
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// UniqueName returns a name valid for Kinesis streams and DynamoDB tables
// ([a-zA-Z0-9_.-], at most 128 characters) that starts with prefix and the test's name
// and ends with a random suffix, so tests sharing one emulator never collide.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("emulatortest: random name suffix: %v", err)
	}
	name := unsafeName.ReplaceAllString(prefix+"-"+t.Name(), "-")
	if len(name) > 100 {
		name = name[:100]
	}
	return name + "-" + hex.EncodeToString(b[:])
}

// CreateStream creates a uniquely named stream with the given number of shards on
// kinesalite, waits until it is ACTIVE and deletes it when the test ends.
func CreateStream(t testing.TB, client *kinesis.Client, shards int32) string {
	t.Helper()
	ctx := context.Background()
	name := UniqueName(t, "stream")
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{
		StreamName: aws.String(name),
		ShardCount: aws.Int32(shards),
	}); err != nil {
		t.Fatalf("emulatortest: create stream %q: %v", name, err)
	}
	t.Cleanup(func() {
		_, err := client.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{
			StreamName:              aws.String(name),
			EnforceConsumerDeletion: aws.Bool(true),
		})
		var notFound *kdstypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &notFound) {
			t.Logf("emulatortest: delete stream %q: %v", name, err)
		}
	})
	WaitStreamActive(t, client, name)
	return name
}

// WaitStreamActive polls until the stream is ACTIVE (after create, split or merge).
func WaitStreamActive(t testing.TB, client *kinesis.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := client.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{
			StreamName: aws.String(name),
		})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == kdstypes.StreamStatusActive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("emulatortest: stream %q not ACTIVE after 30 s (last error: %v)", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TableName returns a unique DynamoDB table name and deletes the table, if the code
// under test created it, when the test ends.
func TableName(t testing.TB, client *dynamodb.Client, prefix string) string {
	t.Helper()
	name := UniqueName(t, prefix)
	t.Cleanup(func() {
		_, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		var notFound *dbtypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &notFound) {
			t.Logf("emulatortest: delete table %q: %v", name, err)
		}
	})
	return name
}

// S3Client returns an S3 client pointed at kumo. kumo serves S3 path-style only
// (http://host/bucket/key), so the client uses path-style addressing; production
// clients use AWS's default virtual-hosted style.
func S3Client(t testing.TB) *s3.Client {
	t.Helper()
	url := KumoEndpoint(t)
	return s3.NewFromConfig(Config(), func(o *s3.Options) {
		o.BaseEndpoint = aws.String(url)
		o.UsePathStyle = true
	})
}

// SQSClient returns an SQS client pointed at kumo.
func SQSClient(t testing.TB) *sqs.Client {
	t.Helper()
	url := KumoEndpoint(t)
	return sqs.NewFromConfig(Config(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(url)
	})
}

// CreateBucket creates a uniquely named bucket on kumo and empties and deletes it when
// the test ends.
func CreateBucket(t testing.TB, client *s3.Client) string {
	t.Helper()
	ctx := context.Background()
	name := strings.ToLower(UniqueName(t, "bucket"))
	name = strings.NewReplacer("_", "-", ".", "-").Replace(name)
	if len(name) > 63 {
		name = name[len(name)-63:]
	}
	name = strings.Trim(name, "-")
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("emulatortest: create bucket %q: %v", name, err)
	}
	t.Cleanup(func() {
		p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				t.Logf("emulatortest: list bucket %q: %v", name, err)
				return
			}
			for _, o := range page.Contents {
				client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(name), Key: o.Key})
			}
		}
		_, err := client.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String(name)})
		var missing *s3types.NoSuchBucket
		if err != nil && !errors.As(err, &missing) {
			t.Logf("emulatortest: delete bucket %q: %v", name, err)
		}
	})
	return name
}

// CreateQueue creates a uniquely named SQS queue on kumo (deleted when the test
// ends) and returns its URL and ARN.
func CreateQueue(t testing.TB, client *sqs.Client) (url, arn string) {
	t.Helper()
	ctx := context.Background()
	name := UniqueName(t, "queue")
	name = strings.ReplaceAll(name, ".", "-")
	if len(name) > 80 {
		name = name[len(name)-80:]
	}
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("emulatortest: create queue %q: %v", name, err)
	}
	t.Cleanup(func() {
		client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	})
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("emulatortest: queue %q attributes: %v", name, err)
	}
	return aws.ToString(out.QueueUrl), attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
}
