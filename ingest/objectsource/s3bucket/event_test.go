package s3bucket

import (
	"strings"
	"testing"
	"time"
)

func TestParseEvent(t *testing.T) {
	// As AWS documents it: eventName without the "s3:" prefix, the key URL-encoded
	// with "+" for a space.
	aws := `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-03-01T10:05:01.123Z",` +
		`"eventName":"ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","bucket":{"name":"captures","arn":"arn:aws:s3:::captures"},` +
		`"object":{"key":"dc/ep/v5/2026/03/01/10/a+b%2Bc.jsonl","size":1024,"eTag":"0123abcd","sequencer":"0A1B2C3D4E5F678901"}}}]}`
	// As kumo sends it: "s3:" in eventName, slashes encoded too.
	kumo := `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventTime":"2026-03-01T10:05:01Z","eventName":"s3:ObjectCreated:Put",` +
		`"s3":{"bucket":{"name":"captures"},"object":{"key":"dc%2Fep%2Fv5%2F2026%2F03%2F01%2F10%2Fa+b%2Bc.jsonl","size":1024,"eTag":"0123abcd"}}}]}`
	sns := `{"Type":"Notification","MessageId":"x","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":` + quoteJSON(aws) + `}`
	want := Event{Bucket: "captures", Key: "dc/ep/v5/2026/03/01/10/a b+c.jsonl", Size: 1024, ETag: "0123abcd", Time: time.Date(2026, 3, 1, 10, 5, 1, 123e6, time.UTC)}
	tests := []struct {
		name, body string
		want       []Event
		err        string
	}{
		{"S3 event as AWS sends it", aws, []Event{want}, ""},
		{"S3 event as kumo sends it", kumo, []Event{{Bucket: "captures", Key: want.Key, Size: 1024, ETag: "0123abcd", Time: want.Time.Truncate(time.Second)}}, ""},
		{"wrapped by SNS", sns, []Event{want}, ""},
		{"test event when the notification is configured", `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-03-01T10:00:00.000Z","Bucket":"captures"}`, nil, ""},
		{"a removal is not news", strings.Replace(aws, "ObjectCreated:Put", "ObjectRemoved:Delete", 1), nil, ""},
		{"not JSON", "hello", nil, "not JSON"},
		{"JSON without records", `{"foo":1}`, nil, "no Records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvent(tt.body)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("events %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("event %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func quoteJSON(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

func TestParseURL(t *testing.T) {
	for _, tt := range []struct{ in, bucket, prefix, err string }{
		{"s3://captures/datacapture", "captures", "datacapture/", ""},
		{"s3://captures/datacapture/fraud-ep/", "captures", "datacapture/fraud-ep/", ""},
		{"s3://captures", "captures", "", ""},
		{"captures/x", "", "", "not an s3:// URL"},
		{"s3:///x", "", "", "names no bucket"},
	} {
		b, p, err := ParseURL(tt.in)
		if b != tt.bucket || p != tt.prefix || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ParseURL(%q) = %q, %q, %v", tt.in, b, p, err)
		}
	}
}
