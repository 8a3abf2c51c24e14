package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func pred(id string) string {
	return fmt.Sprintf(`{"inference_id":%q,"variant":"v1","score":0.5,"time":"2026-03-01T12:00:00Z"}`, id)
}

type collected struct {
	ids     []string
	rejects []Rejection
	batches []Decoded[Prediction]
}

func decodeAll(t *testing.T, d *Decoder, r io.Reader, batchSize int) (collected, error) {
	t.Helper()
	var c collected
	err := d.DecodePredictions(r, batchSize, func(b Decoded[Prediction]) error {
		for _, p := range b.Events {
			c.ids = append(c.ids, p.InferenceID)
		}
		c.rejects = append(c.rejects, b.Rejections...)
		c.batches = append(c.batches, b)
		return nil
	})
	return c, err
}

type wantReject struct {
	line  int
	class RejectClass
}

func rejectsOf(rs []Rejection) []wantReject {
	out := make([]wantReject, len(rs))
	for i, r := range rs {
		out[i] = wantReject{r.Line, r.Class}
	}
	return out
}

func TestDecodePredictionsStream(t *testing.T) {
	long := `{"inference_id":"long","pad":"` + strings.Repeat("x", 300) + `"}`
	tests := []struct {
		name    string
		input   string
		ids     []string
		rejects []wantReject
	}{
		{
			name:  "LF lines with a blank line and a final line without newline",
			input: pred("a") + "\n\n" + pred("b") + "\n   \t\n" + pred("c"),
			ids:   []string{"a", "b", "c"},
		},
		{
			name:  "CRLF lines",
			input: pred("a") + "\r\n" + pred("b") + "\r\n\r\n",
			ids:   []string{"a", "b"},
		},
		{
			name:  "byte order mark on the first line is dropped",
			input: "\xEF\xBB\xBF" + pred("a") + "\n" + pred("b") + "\n",
			ids:   []string{"a", "b"},
		},
		{
			name:    "oversize line is rejected and decoding continues on the next line",
			input:   pred("a") + "\n" + long + "\n" + pred("b") + "\n",
			ids:     []string{"a", "b"},
			rejects: []wantReject{{2, ClassOversizeLine}},
		},
		{
			name:    "oversize CRLF line at the end without newline",
			input:   pred("a") + "\r\n" + long,
			ids:     []string{"a"},
			rejects: []wantReject{{2, ClassOversizeLine}},
		},
		{
			name:    "bad lines keep their line numbers",
			input:   pred("a") + "\nnot json\n\n" + pred("b") + "\n{\"inference_id\":\"c\"}\n\xff\xfe\n" + pred("d"),
			ids:     []string{"a", "b", "d"},
			rejects: []wantReject{{2, ClassMalformedJSON}, {5, ClassMissingField}, {6, ClassMalformedJSON}},
		},
		{
			name:  "empty input",
			input: "",
		},
		{
			name:  "only blank lines",
			input: "\n\r\n  \n",
		},
	}
	d := newTestDecoder(t, DecoderConfig{MaxLineBytes: 200})
	for _, tt := range tests {
		for _, reader := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{
			{"whole", func(r io.Reader) io.Reader { return r }},
			{"one byte at a time", iotest.OneByteReader},
		} {
			t.Run(tt.name+"/"+reader.name, func(t *testing.T) {
				c, err := decodeAll(t, d, reader.wrap(strings.NewReader(tt.input)), 2)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(c.ids) != fmt.Sprint(tt.ids) {
					t.Errorf("ids %v, want %v", c.ids, tt.ids)
				}
				if got := rejectsOf(c.rejects); fmt.Sprint(got) != fmt.Sprint(tt.rejects) && len(got)+len(tt.rejects) > 0 {
					t.Errorf("rejections %v, want %v", c.rejects, tt.rejects)
				}
				for _, r := range c.rejects {
					if r.Reason == "" || len(r.Raw) == 0 {
						t.Errorf("rejection %+v lacks a reason or raw line", r)
					}
				}
				if n := len(c.batches); n > 0 {
					// The last batch ends with the last non-blank line and its terminator.
					want := len(strings.TrimRight(tt.input, "\r\n\t "))
					if rest := tt.input[want:]; strings.HasPrefix(rest, "\r\n") {
						want += 2
					} else if strings.HasPrefix(rest, "\n") {
						want++
					}
					if last := c.batches[n-1]; last.Bytes != int64(want) {
						t.Errorf("last batch says %d bytes read, want %d", last.Bytes, want)
					}
				}
			})
		}
	}
}

func TestDecodePredictionsOversizeLineReport(t *testing.T) {
	d := newTestDecoder(t, DecoderConfig{MaxLineBytes: 100})
	for _, size := range []int{101, 102, 103, 150, 5000} {
		for _, eol := range []string{"\n", "\r\n", ""} {
			t.Run(fmt.Sprintf("%d bytes %q", size, eol), func(t *testing.T) {
				body := strings.Repeat("x", size)
				c, err := decodeAll(t, d, strings.NewReader(body+eol+pred("next")+"\n"), 10)
				if err != nil {
					t.Fatal(err)
				}
				if eol == "" {
					// Without a terminator the next line is part of the long one.
					if len(c.rejects) != 1 || len(c.ids) != 0 {
						t.Fatalf("got ids %v, rejections %v", c.ids, c.rejects)
					}
					return
				}
				if len(c.rejects) != 1 || c.rejects[0].Class != ClassOversizeLine {
					t.Fatalf("rejections %v, want one oversize_line", c.rejects)
				}
				want := fmt.Sprintf("line is %d bytes, over the 100-byte limit", size)
				if c.rejects[0].Reason != want {
					t.Errorf("reason %q, want %q", c.rejects[0].Reason, want)
				}
				if c.rejects[0].Size != size {
					t.Errorf("rejection says the line is %d bytes, want %d", c.rejects[0].Size, size)
				}
				if len(c.rejects[0].Raw) != min(size, RawKeepBytes) {
					t.Errorf("raw keeps %d bytes, want %d", len(c.rejects[0].Raw), min(size, RawKeepBytes))
				}
				if len(c.ids) != 1 || c.ids[0] != "next" {
					t.Errorf("ids %v, want [next]", c.ids)
				}
			})
		}
	}
}

func TestDecodePredictionsLineOfExactlyMaxBytesIsAccepted(t *testing.T) {
	line := pred("a")
	d := newTestDecoder(t, DecoderConfig{MaxLineBytes: len(line)})
	for _, eol := range []string{"\n", "\r\n"} {
		c, err := decodeAll(t, d, strings.NewReader(line+eol+line+"x"+eol), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.ids) != 1 || len(c.rejects) != 1 || c.rejects[0].Class != ClassOversizeLine || c.rejects[0].Line != 2 {
			t.Errorf("eol %q: ids %v, rejections %v; want the first line accepted and the second oversize", eol, c.ids, c.rejects)
		}
	}
	c, err := decodeAll(t, d, strings.NewReader(line), 10)
	if err != nil || len(c.ids) != 1 {
		t.Errorf("a last line of exactly the limit without newline: ids %v, rejections %v, err %v", c.ids, c.rejects, err)
	}
}

func TestDecodePredictionsBatches(t *testing.T) {
	var in bytes.Buffer
	for i := range 7 {
		fmt.Fprintln(&in, pred(fmt.Sprint(i)))
		if i%3 == 0 {
			fmt.Fprintln(&in, "bad")
		}
	}
	total := in.Len()
	d := newTestDecoder(t, DecoderConfig{})
	c, err := decodeAll(t, d, &in, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Lines: p0 bad p1 p2 p3 bad p4 p5 p6 bad: events on lines 1,3,4,5,7,8,9, bad on 2,6,10.
	var sizes []string
	for _, b := range c.batches {
		sizes = append(sizes, fmt.Sprintf("%d+%d@%d", len(b.Events), len(b.Rejections), b.Lines))
	}
	if got, want := strings.Join(sizes, " "), "2+1@3 2+0@5 2+1@8 1+1@10"; got != want {
		t.Errorf("batches %s, want %s", got, want)
	}
	if last := c.batches[len(c.batches)-1]; last.Bytes != int64(total) {
		t.Errorf("bytes %d, want %d", last.Bytes, total)
	}
}

func TestDecodePredictionsStopsOnEmitError(t *testing.T) {
	d := newTestDecoder(t, DecoderConfig{})
	stop := errors.New("sink down")
	calls := 0
	err := d.DecodePredictions(strings.NewReader(strings.Repeat(pred("a")+"\n", 10)), 3, func(Decoded[Prediction]) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("err %v after %d calls, want %v after 1", err, calls, stop)
	}
}

func TestDecodePredictionsReportsReadErrorAfterEmittingWhatWasRead(t *testing.T) {
	d := newTestDecoder(t, DecoderConfig{})
	broken := errors.New("disk gone")
	r := io.MultiReader(strings.NewReader(pred("a")+"\n"+pred("b")+"\n"), iotest.ErrReader(broken))
	c, err := decodeAll(t, d, r, 100)
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), "read line 3") {
		t.Errorf("err %v, want %v at line 3", err, broken)
	}
	if fmt.Sprint(c.ids) != "[a b]" {
		t.Errorf("ids %v, want [a b]", c.ids)
	}
}

func TestDecodeLabelsStream(t *testing.T) {
	d := newTestDecoder(t, DecoderConfig{})
	in := `{"inference_id":"a","label":true,"time":"2026-03-02T00:00:00Z"}` + "\n" +
		`{"inference_id":"b","label":"maybe","time":"2026-03-02T00:00:00Z"}` + "\n" +
		`{"inference_id":"c","label":false,"time":"2026-03-02T00:00:00Z"}`
	var labels []Label
	var rejects []Rejection
	err := d.DecodeLabels(strings.NewReader(in), 0, func(b Decoded[Label]) error {
		labels = append(labels, b.Events...)
		rejects = append(rejects, b.Rejections...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != 2 || labels[0].InferenceID != "a" || !labels[0].Positive || labels[1].InferenceID != "c" || labels[1].Positive {
		t.Errorf("labels %+v", labels)
	}
	if len(rejects) != 1 || rejects[0].Line != 2 || rejects[0].Field != "label" {
		t.Errorf("rejections %+v, want line 2 field label", rejects)
	}
}

func TestGenericDecodeMatchesTheMethods(t *testing.T) {
	d := newTestDecoder(t, DecoderConfig{})
	var n int
	err := Decode(d, strings.NewReader(`{"inference_id":"a","label":true,"time":"2026-03-02T00:00:00Z"}`), 10, func(b Decoded[Label]) error {
		n += len(b.Events)
		return nil
	})
	if err != nil || n != 1 {
		t.Errorf("Decode[Label]: %d events, err %v", n, err)
	}
	p, err := DecodeLine[Prediction](d, []byte(pred("x")))
	if err != nil || p.InferenceID != "x" {
		t.Errorf("DecodeLine[Prediction]: %+v, %v", p, err)
	}
	if KindOf[Label]() != KindLabel || KindOf[Prediction]() != KindPrediction {
		t.Error("KindOf is wrong")
	}
	if b := BatchOf([]Label{{InferenceID: "a"}}); len(b.Labels) != 1 || len(b.Predictions) != 0 {
		t.Errorf("BatchOf: %+v", b)
	}
}
