package deploy

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/verdictml/verdict/internal/spectest"
	"github.com/verdictml/verdict/internal/wirejson"
)

// specLimit is a size-limited input of both spec kinds: its field, limit and how to
// set it on the tags and data capture every spec kind shares.
type specLimit struct {
	name, field string
	limit       int
	set         func(tags *map[string]string, dc *DataCapture, n int)
}

var sharedLimits = []specLimit{
	{"tags in all (the spec's and verdict:managed)", "tags", maxResourceTags, func(tags *map[string]string, _ *DataCapture, n int) {
		*tags = map[string]string{}
		for i := range n - 1 {
			(*tags)[fmt.Sprintf("k%02d", i)] = "v"
		}
	}},
	{"tag key length", "tags", maxTagKeyLen, func(tags *map[string]string, _ *DataCapture, n int) {
		*tags = map[string]string{strings.Repeat("k", n): "v"}
	}},
	{"tag value length", "tags.team", maxTagValueLen, func(tags *map[string]string, _ *DataCapture, n int) {
		*tags = map[string]string{"team": strings.Repeat("v", n)}
	}},
	{"capture destination length", "data_capture.destination", maxCaptureDestinationLen, func(_ *map[string]string, dc *DataCapture, n int) {
		dc.Destination = "s3://fraud-ml-capture/" + strings.Repeat("p", n-len("s3://fraud-ml-capture/"))
	}},
	{"KMS key id length", "data_capture.kms_key_id", maxKMSKeyIDLen, func(_ *map[string]string, dc *DataCapture, n int) {
		dc.KMSKeyID = "alias/" + strings.Repeat("k", n-len("alias/"))
	}},
	{"capture options", "data_capture.capture", maxCaptureOptions, func(_ *map[string]string, dc *DataCapture, n int) {
		dc.Capture = nil
		for i := range n {
			dc.Capture = append(dc.Capture, []string{"Input", "Output"}[i%2])
		}
	}},
}

// Every CreateEndpointConfig limit a rollout or split spec can reach, one below, at
// and one above (SageMaker API reference; the limits in spec.go).
func TestSpecLimitBoundaries(t *testing.T) {
	for _, l := range sharedLimits {
		for _, c := range spectest.Around(l.limit) {
			t.Run(fmt.Sprintf("rollout/%s/%d", l.name, c.N), func(t *testing.T) {
				r := mustRollout(t)
				if r.DataCapture == nil {
					r.DataCapture = &DataCapture{Destination: "s3://b/p", SamplingPercentage: new(int), Capture: []string{"Input", "Output"}}
				}
				l.set(&r.Tags, r.DataCapture, c.N)
				spectest.Limit(t, r.Validate(), l.field, c)
			})
			t.Run(fmt.Sprintf("split/%s/%d", l.name, c.N), func(t *testing.T) {
				s := mustSplit(t)
				l.set(&s.Tags, s.DataCapture, c.N)
				spectest.Limit(t, s.Validate(), l.field, c)
			})
		}
	}
}

func TestTagAndCaptureRules(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(tags *map[string]string, dc *DataCapture)
		wantErr string
	}{
		{"aws: keys are AWS's", func(tags *map[string]string, _ *DataCapture) { *tags = map[string]string{"aws:cost": "x"} }, "tags.aws:cost: keys starting with aws: are reserved"},
		{"in any case", func(tags *map[string]string, _ *DataCapture) { *tags = map[string]string{"AWS:Cost": "x"} }, "tags.AWS:Cost: keys starting with aws:"},
		{"verdict: keys are verdict's", func(tags *map[string]string, _ *DataCapture) { *tags = map[string]string{"verdict:managed": "false"} }, "tags.verdict:managed: keys starting with verdict:"},
		{"a key with a character SageMaker refuses", func(tags *map[string]string, _ *DataCapture) { *tags = map[string]string{"team#1": "x"} }, "tags: key \"team#1\" may hold only"},
		{"a value with a character SageMaker refuses", func(tags *map[string]string, _ *DataCapture) { *tags = map[string]string{"team": "fraud;ml"} }, "tags.team: value \"fraud;ml\" may hold only"},
		{"letters, spaces and symbols SageMaker takes", func(tags *map[string]string, _ *DataCapture) {
			*tags = map[string]string{"cost center": "Zürich/fraud_ml-1 +x=@y.z:"}
		}, ""},
		{"capture mode InputAndOutput", func(_ *map[string]string, dc *DataCapture) { dc.Capture = []string{"InputAndOutput"} }, ""},
		{"an unknown capture mode", func(_ *map[string]string, dc *DataCapture) { dc.Capture = []string{"Both"} }, "data_capture.capture[0]: \"Both\" must be Input, Output or InputAndOutput"},
		{"an https destination verdict cannot follow", func(_ *map[string]string, dc *DataCapture) { dc.Destination = "https://bucket/x" }, "data_capture.destination"},
		{"a KMS key with a space", func(_ *map[string]string, dc *DataCapture) { dc.KMSKeyID = "alias/my key" }, "data_capture.kms_key_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSplit(t)
			tc.edit(&s.Tags, s.DataCapture)
			spectest.Err(t, s.Validate(), tc.wantErr)
		})
	}
}

// A data capture of InputAndOutput, 49 tags of SageMaker's longest keys and values
// and the longest destination: accepted by validation, by the SDK's own validation,
// and on the wire as built.
func TestLimitSizedEndpointConfigOnTheWire(t *testing.T) {
	r := mustRollout(t)
	r.DataCapture.Capture = []string{"InputAndOutput"}
	r.DataCapture.Destination = "s3://fraud-ml-capture/" + strings.Repeat("p", maxCaptureDestinationLen-len("s3://fraud-ml-capture/"))
	r.Tags = map[string]string{}
	for i := range maxResourceTags - 1 {
		r.Tags[fmt.Sprintf("%03d", i)+strings.Repeat("k", maxTagKeyLen-3)] = strings.Repeat("v", maxTagValueLen)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	req := r.ShiftRequests()
	if n := len(req.CreateEndpointConfig.Tags); n != maxResourceTags {
		t.Fatalf("%d tags sent, want %d", n, maxResourceTags)
	}
	sm, rec := recordingSageMaker(t)
	if err := Apply(context.Background(), sm, req); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.requests[0].Body, wirejson.Of(req.CreateEndpointConfig); !reflect.DeepEqual(got, want) {
		t.Errorf("wire body %v\nwant %v", got, want)
	}
	body := rec.requests[0].Body.(map[string]any)
	mode := body["DataCaptureConfig"].(map[string]any)["CaptureOptions"].([]any)[0].(map[string]any)["CaptureMode"]
	if mode != "InputAndOutput" {
		t.Errorf("CaptureMode %v", mode)
	}
}
