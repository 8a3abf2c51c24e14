// Package cborwire lets tests read what the AWS SDK sends to services that speak
// Smithy RPCv2 CBOR (CloudWatch): the decoded request body, in the types
// encoding/json produces, so wire requests compare directly with JSON goldens.
package cborwire

import (
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// Body reads req's CBOR body, gunzipping it when the SDK compressed it, and returns
// its uncompressed size and its value (see ToAny).
func Body(req *http.Request) (int, any, error) {
	var src io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			return 0, nil, fmt.Errorf("gunzip: %w", err)
		}
		src = zr
	}
	body, err := io.ReadAll(src)
	if err != nil {
		return 0, nil, err
	}
	v, err := cbor.Decode(body)
	if err != nil {
		return 0, nil, fmt.Errorf("decode cbor: %w", err)
	}
	return len(body), ToAny(v), nil
}

// Reply answers with an empty CBOR map, a successful response to any operation
// whose output the test ignores.
func Reply(w http.ResponseWriter) {
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	_, _ = w.Write(cbor.Encode(cbor.Map{}))
}

// ToAny converts a decoded CBOR value to the types encoding/json produces; an
// epoch-seconds timestamp (tag 1) becomes its RFC 3339 UTC string.
func ToAny(v cbor.Value) any {
	switch x := v.(type) {
	case cbor.Map:
		m := map[string]any{}
		for k, e := range x {
			m[k] = ToAny(e)
		}
		return m
	case cbor.List:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = ToAny(e)
		}
		return l
	case cbor.String:
		return string(x)
	case cbor.Uint:
		return float64(x)
	case cbor.NegInt:
		return -float64(x)
	case cbor.Float32:
		return float64(x)
	case cbor.Float64:
		return float64(x)
	case cbor.Bool:
		return bool(x)
	case *cbor.Tag:
		return tagToAny(*x)
	case cbor.Tag:
		return tagToAny(x)
	case *cbor.Nil, *cbor.Undefined:
		return nil
	default:
		return x
	}
}

func tagToAny(x cbor.Tag) any {
	if x.ID != 1 {
		return map[string]any{"tag": float64(x.ID), "value": ToAny(x.Value)}
	}
	secs, ok := ToAny(x.Value).(float64)
	if !ok {
		return map[string]any{"tag": 1.0, "value": ToAny(x.Value)}
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(math.Round(frac*1e3))*1e6).UTC().Format(time.RFC3339Nano)
}
