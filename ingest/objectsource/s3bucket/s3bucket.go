// Package s3bucket serves an S3 bucket as an objectsource.Bucket, on aws-sdk-go-v2's
// S3 client, and S3 event notifications delivered through SQS as
// objectsource.Notifications.
//
// The requests it sends are ListObjectsV2 (Prefix, StartAfter, ContinuationToken; with
// Delimiter "/" to find folders) and GetObject (Bucket, Key); notifications use SQS
// ReceiveMessage (long polling), DeleteMessage and ChangeMessageVisibility. Nothing
// else: the IAM policy needs s3:ListBucket, s3:GetObject and, for notifications,
// sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility.
package s3bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/verdictml/verdict/ingest/objectsource"
)

// API is what a Bucket needs from S3; *s3.Client implements it.
type API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Bucket is one S3 bucket.
type Bucket struct {
	api  API
	name string
}

// New serves the named bucket through api.
func New(api API, bucket string) *Bucket { return &Bucket{api: api, name: bucket} }

// ParseURL splits s3://bucket/prefix into the bucket and the key prefix, which it
// ends with "/" unless it is empty.
func ParseURL(u string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3:// URL", u)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q names no bucket", u)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return bucket, prefix, nil
}

// URL implements objectsource.Bucket.
func (b *Bucket) URL(key string) string { return "s3://" + b.name + "/" + key }

// List implements objectsource.Bucket with ListObjectsV2, 1000 keys a page.
func (b *Bucket) List(ctx context.Context, prefix, startAfter string, fn func([]objectsource.Object) error) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.name), Prefix: aws.String(prefix)}
	if startAfter != "" {
		in.StartAfter = aws.String(startAfter)
	}
	for {
		out, err := b.api.ListObjectsV2(ctx, in)
		if err != nil {
			return fmt.Errorf("list %s after %q: %w", b.URL(prefix), startAfter, err)
		}
		objs := make([]objectsource.Object, 0, len(out.Contents))
		for _, o := range out.Contents {
			objs = append(objs, objectsource.Object{
				Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ETag: strings.Trim(aws.ToString(o.ETag), `"`),
				LastModified: aws.ToTime(o.LastModified).UTC(),
			})
		}
		if len(objs) > 0 {
			if err := fn(objs); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) || aws.ToString(out.NextContinuationToken) == "" {
			return nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// Folders implements objectsource.Bucket with ListObjectsV2 and Delimiter "/".
func (b *Bucket) Folders(ctx context.Context, prefix string) ([]string, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.name), Prefix: aws.String(prefix), Delimiter: aws.String("/")}
	var out []string
	seen := map[string]bool{}
	for {
		page, err := b.api.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list folders of %s: %w", b.URL(prefix), err)
		}
		for _, p := range page.CommonPrefixes {
			if f := aws.ToString(p.Prefix); !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
		if !aws.ToBool(page.IsTruncated) || aws.ToString(page.NextContinuationToken) == "" {
			return out, nil
		}
		in.ContinuationToken = page.NextContinuationToken
	}
}

// Open implements objectsource.Bucket with GetObject.
func (b *Bucket) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := b.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.name), Key: aws.String(key)})
	var missing *types.NoSuchKey
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("get %s: %w (%w)", b.URL(key), fs.ErrNotExist, err)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", b.URL(key), err)
	}
	return out.Body, nil
}
