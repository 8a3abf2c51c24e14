package cloudwatch

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/verdictml/verdict/cwmetric"
)

// datum is a datum with n dimensions whose values are valueLen characters long.
func datum(i, n, valueLen int) types.MetricDatum {
	d := types.MetricDatum{
		MetricName:        aws.String(cwmetric.Precision),
		Timestamp:         aws.Time(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)),
		Value:             aws.Float64(0.8),
		Unit:              types.StandardUnitNone,
		StorageResolution: aws.Int32(60),
	}
	for j := range n {
		v := fmt.Sprintf("%d-%d-", i, j)
		v += strings.Repeat("x", max(0, valueLen-len(v)))
		d.Dimensions = append(d.Dimensions, types.Dimension{Name: aws.String(fmt.Sprintf("Dim%d", j)), Value: aws.String(v)})
	}
	return d
}

func datums(count, dims, valueLen int) []types.MetricDatum {
	out := make([]types.MetricDatum, count)
	for i := range out {
		out[i] = datum(i, dims, valueLen)
	}
	return out
}

func TestSplitRespectsPutMetricDataLimits(t *testing.T) {
	big := datumSize(datum(0, 30, 1024)) // ~40 KB: 30 dimensions of 1024 characters
	tests := []struct {
		name       string
		datums     []types.MetricDatum
		perRequest int
		bytes      int
		want       []int // datums per request
	}{
		{"no datums, no request", nil, maxDatums, maxBytes, nil},
		{"one datum, one request", datums(1, 2, 10), maxDatums, maxBytes, []int{1}},
		{"exactly 1000 datums fit one request", datums(1000, 2, 10), maxDatums, maxBytes, []int{1000}},
		{"1001 datums need two requests", datums(1001, 2, 10), maxDatums, maxBytes, []int{1000, 1}},
		{"2500 datums fill requests in order", datums(2500, 4, 20), maxDatums, maxBytes, []int{1000, 1000, 500}},
		{"large dimensions split by payload size before count", datums(60, 30, 1024), maxDatums, maxBytes,
			[]int{(maxBytes - requestOverhead("Verdict")) / big, 60 - (maxBytes-requestOverhead("Verdict"))/big}},
		{"a small byte budget splits small datums", datums(10, 2, 10), maxDatums, requestOverhead("Verdict") + 3*datumSize(datum(0, 2, 10)), []int{3, 3, 3, 1}},
		{"a datum larger than the budget still goes alone", datums(2, 30, 1024), maxDatums, 1000, []int{1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reqs := split("Verdict", tc.datums, tc.perRequest, tc.bytes)
			var got []int
			next := 0
			for i, r := range reqs {
				got = append(got, len(r.MetricData))
				if aws.ToString(r.Namespace) != "Verdict" {
					t.Errorf("request %d namespace %q", i, aws.ToString(r.Namespace))
				}
				size := requestOverhead("Verdict")
				for _, d := range r.MetricData {
					if d.Dimensions[0].Value != tc.datums[next].Dimensions[0].Value {
						t.Fatalf("request %d: datums out of order at %d", i, next)
					}
					next++
					size += datumSize(d)
				}
				if len(r.MetricData) > 1 && size > tc.bytes {
					t.Errorf("request %d: %d estimated bytes over the %d budget", i, size, tc.bytes)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("datums per request = %v, want %v", got, tc.want)
			}
		})
	}
}

// The size estimate must bound what the SDK really sends, or a request could pass
// the estimate and exceed CloudWatch's 1 MB.
func TestDatumSizeBoundsTheWire(t *testing.T) {
	rec := &wireRecorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	client := cloudwatch.New(cloudwatch.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1,
	}, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	withValues := datum(0, 3, 40)
	withValues.Value = nil
	withValues.Values = []float64{1, 2, 3.5}
	withValues.Counts = []float64{10, 1, 2}
	withStats := datum(0, 3, 40)
	withStats.Value = nil
	withStats.StatisticValues = &types.StatisticSet{SampleCount: aws.Float64(3), Sum: aws.Float64(2.5), Minimum: aws.Float64(0.1), Maximum: aws.Float64(1)}
	tests := []struct {
		name   string
		datums []types.MetricDatum
	}{
		{"one small datum", datums(1, 2, 10)},
		{"1000 contract-sized datums", datums(1000, 6, 24)},
		{"a full request of large dimensions", split("Verdict", datums(40, 30, 1024), maxDatums, maxBytes)[0].MetricData},
		{"values and counts arrays", []types.MetricDatum{withValues}},
		{"statistic sets", []types.MetricDatum{withStats}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &cloudwatch.PutMetricDataInput{Namespace: aws.String("Verdict"), MetricData: tc.datums}
			if _, err := client.PutMetricData(t.Context(), in); err != nil {
				t.Fatal(err)
			}
			wire := rec.all()[i].Size
			est := requestOverhead("Verdict")
			for _, d := range tc.datums {
				est += datumSize(d)
			}
			if est < wire {
				t.Errorf("estimated %d bytes, the SDK sent %d", est, wire)
			}
			if float64(est) > 1.25*float64(wire) {
				t.Errorf("estimated %d bytes for %d sent: too loose, requests would be split early", est, wire)
			}
			if wire > 1<<20 {
				t.Errorf("request body %d bytes over 1 MB", wire)
			}
		})
	}
}
