package cloudwatch

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/cwmetric"
	"github.com/verdictml/verdict/judge"
)

// bigFlush is a real flush of a candidate and its baseline with n top segments of
// merchant_category, shift signals included: with 30 segments it needs two requests.
func bigFlush(t *testing.T, segments int) []types.MetricDatum {
	t.Helper()
	ss := []series{
		{variant: "fraud-v4", counts: counts(800, 200, 200, 18800)},
		{variant: "fraud-v5", counts: counts(700, 200, 300, 18800)},
	}
	for i := range segments {
		seg := fmt.Sprintf("mcc-%02d", i)
		ss = append(ss,
			series{variant: "fraud-v4", segmentKey: "merchant_category", segment: seg, counts: counts(40, 10, 10, 940)},
			series{variant: "fraud-v5", segmentKey: "merchant_category", segment: seg, counts: counts(30, 10, 20, 940)})
	}
	w := windowsOf(ss...)
	cfg := Config{EndpointName: "fraud-detector", Pairs: []judge.Pair{{Baseline: "fraud-v4", Candidate: "fraud-v5"}},
		TopSegments: map[string]int{"merchant_category": segments}, Shift: &judge.ShiftConfig{}}.withDefaults()
	snap := w.Snapshot(cfg.Window)
	regs, err := judge.Regressions(w, cfg.Pairs, cfg.Judge)
	if err != nil {
		t.Fatal(err)
	}
	shifts, err := shifts(cfg, snap, w, FixedReference(snap))
	if err != nil {
		t.Fatal(err)
	}
	ds, skips := build(cfg, snap, regs, shifts, snap.End)
	if len(skips) > 0 {
		t.Fatalf("skipped %v", skips)
	}
	return ds
}

// requestsOfScope maps each scope to the requests holding its datums.
func requestsOfScope(reqs []*cloudwatch.PutMetricDataInput) map[string]map[int]bool {
	out := map[string]map[int]bool{}
	for i, r := range reqs {
		for _, d := range r.MetricData {
			k := scopeOf(d)
			if out[k] == nil {
				out[k] = map[int]bool{}
			}
			out[k][i] = true
		}
	}
	return out
}

func TestSplitKeepsEachScopeInOneRequest(t *testing.T) {
	// A flush whose datums, in the order build makes them, have a scope straddling
	// datum 1000: cutting at the count alone separated a ratio from its n.
	var ds []types.MetricDatum
	for segments := 28; segments < 45 && ds == nil; segments++ {
		d := bigFlush(t, segments)
		if len(d) > maxDatums && scopeOf(d[maxDatums-1]) == scopeOf(d[maxDatums]) &&
			dimension(d[maxDatums-1], cwmetric.DimVariantName) == dimension(d[maxDatums], cwmetric.DimVariantName) {
			ds = d
		}
	}
	if ds == nil {
		t.Fatal("no flush size puts one variant's scope across datum 1000")
	}
	reqs := split("Verdict", ds, maxDatums, maxBytes)
	if len(reqs) != 2 {
		t.Errorf("%d requests, want 2", len(reqs))
	}
	total := 0
	for i, r := range reqs {
		total += len(r.MetricData)
		if len(r.MetricData) > maxDatums || requestOverhead("Verdict")+groupSize(r.MetricData) > maxBytes {
			t.Errorf("request %d: %d datums, %d bytes: over PutMetricData's limits", i, len(r.MetricData), groupSize(r.MetricData))
		}
	}
	if total != len(ds) {
		t.Errorf("%d datums sent of %d", total, len(ds))
	}
	for scope, in := range requestsOfScope(reqs) {
		if len(in) != 1 {
			t.Errorf("scope %q is in %d requests", scope, len(in))
		}
	}
	// The overall scope is everything an alarm reads: each variant's ratios and
	// n's, the pair's deltas and regressions, the shift signals and their n's.
	overall := requestsOfScope(reqs)[scopeOf(types.MetricDatum{})]
	for i := range overall {
		for _, want := range []struct{ metric, variant string }{
			{cwmetric.Recall, "fraud-v5"}, {cwmetric.LabeledPositives, "fraud-v5"}, {cwmetric.Recall, "fraud-v4"},
			{cwmetric.LabeledPositives, "fraud-v4"}, {cwmetric.ShiftPredictionCount, "fraud-v5"},
			{cwmetric.ShiftPredictionCount, "fraud-v4"}, {cwmetric.FlagRateShiftVsBaseline, "fraud-v5"}, {cwmetric.SegmentRegressions, "fraud-v5"},
		} {
			found := false
			for _, d := range reqs[i].MetricData {
				if aws.ToString(d.MetricName) == want.metric && dimension(d, cwmetric.DimVariantName) == want.variant && scopeOf(d) == scopeOf(types.MetricDatum{}) {
					found = true
				}
			}
			if !found {
				t.Errorf("request %d lacks overall %s of %s", i, want.metric, want.variant)
			}
		}
	}
}

// scopeDatums is one scope's datums: per variant, `per` datums.
func scopeDatums(segment string, variants, per int) []types.MetricDatum {
	var out []types.MetricDatum
	for v := range variants {
		for m := range per {
			dims := []types.Dimension{
				{Name: aws.String(cwmetric.DimEndpointName), Value: aws.String("e")},
				{Name: aws.String(cwmetric.DimVariantName), Value: aws.String(fmt.Sprintf("v%02d", v))},
			}
			if segment != "" {
				dims = append(dims, types.Dimension{Name: aws.String(cwmetric.DimSegmentKey), Value: aws.String("k")},
					types.Dimension{Name: aws.String(cwmetric.DimSegment), Value: aws.String(segment)})
			}
			out = append(out, types.MetricDatum{MetricName: aws.String(fmt.Sprintf("M%02d", m)), Dimensions: dims,
				Value: aws.Float64(1), Unit: types.StandardUnitCount, StorageResolution: aws.Int32(60)})
		}
	}
	return out
}

// PutMetricData takes at most 1000 datums: a scope one below, at and one above.
func TestSplitScopeSizeBoundaries(t *testing.T) {
	cases := []struct {
		name     string
		datums   []types.MetricDatum
		requests int
		// variantsSplit: the scope had to be split by variant.
		variantsSplit bool
	}{
		{"a scope of 999 datums and another of 2 go in two requests", append(scopeDatums("", 37, 27), scopeDatums("s", 1, 2)...), 2, false},
		{"a scope of exactly 1000 datums fits one request", scopeDatums("", 40, 25), 1, false},
		{"a scope of 1001 datums is split by variant", append(scopeDatums("", 40, 25), scopeDatums("", 1, 1)[0]), 2, true},
		{"small scopes fill a request before a new one starts", append(scopeDatums("a", 2, 400), scopeDatums("b", 1, 200)...), 1, false},
		{"a scope that does not fit beside the others starts the next request", append(scopeDatums("a", 2, 400), scopeDatums("b", 1, 201)...), 2, false},
	}
	// Fix the third case's extra datum to a new variant of the same scope.
	cases[2].datums[len(cases[2].datums)-1].Dimensions[1].Value = aws.String("v99")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reqs := split("Verdict", tc.datums, maxDatums, maxBytes)
			if len(reqs) != tc.requests {
				t.Fatalf("%d requests, want %d", len(reqs), tc.requests)
			}
			for scope, in := range requestsOfScope(reqs) {
				if len(in) > 1 && !tc.variantsSplit {
					t.Errorf("scope %q split over %d requests", scope, len(in))
				}
			}
			// Whatever happens, a variant's datums of one scope stay together.
			where := map[string]int{}
			for i, r := range reqs {
				for _, d := range r.MetricData {
					k := scopeOf(d) + "/" + variantOf(d)
					if j, ok := where[k]; ok && j != i {
						t.Errorf("%s in requests %d and %d", k, j, i)
					}
					where[k] = i
				}
			}
		})
	}
}

// rejectFirst answers the first PutMetricData with 400 InvalidParameterValue, the
// rest with success, and records every request.
type rejectFirst struct {
	mu  sync.Mutex
	ins []*cloudwatch.PutMetricDataInput
}

func (r *rejectFirst) PutMetricData(_ context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ins = append(r.ins, in)
	if len(r.ins) == 1 {
		return nil, &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 400}},
			Err:      &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "rejected"},
		}
	}
	return &cloudwatch.PutMetricDataOutput{}, nil
}

// A rejected request does not stop the flush's others, and what those carry is
// whole: every scope they hold is complete, so no alarm reads a ratio without its n.
func TestRejectedRequestLeavesTheOthersWhole(t *testing.T) {
	ds := bigFlush(t, 40)
	reqs := split("Verdict", ds, maxDatums, maxBytes)
	api := &rejectFirst{}
	reg := prometheus.NewRegistry()
	p, err := New(Config{EndpointName: "fraud-detector", Interval: time.Hour}, Deps{Client: api, Snapshots: oneSnapshot{}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	p.deliver(t.Context(), flush{at: time.Now(), requests: reqs, datums: len(ds)})
	if len(api.ins) != len(reqs) {
		t.Fatalf("%d requests sent of %d: a rejection stopped the flush", len(api.ins), len(reqs))
	}
	if got := value(t, reg, "verdict_cloudwatch_errors_total", "reason", ReasonRejected); got != 1 {
		t.Errorf("rejected %v, want 1", got)
	}
	want := map[string]int{}
	for _, d := range ds {
		want[scopeOf(d)]++
	}
	got := map[string]int{}
	for _, in := range api.ins[1:] {
		for _, d := range in.MetricData {
			got[scopeOf(d)]++
		}
	}
	for scope, n := range got {
		if n != want[scope] {
			t.Errorf("scope %q delivered with %d of its %d datums", scope, n, want[scope])
		}
	}
}

// The namespace rules of PutMetricData, with the length one below, at and one
// above 255 (VERDICT_CLOUDWATCH_NAMESPACE is checked with the same function).
func TestCheckNamespace(t *testing.T) {
	cases := []struct {
		name, ns string
		ok       bool
	}{
		{"the default", "Verdict", true},
		{"254 characters", strings.Repeat("n", 254), true},
		{"255 characters", strings.Repeat("n", 255), true},
		{"256 characters", strings.Repeat("n", 256), false},
		{"empty", "", false},
		{"blank", "   ", false},
		{"AWS/ is reserved", "AWS/SageMaker", false},
		{"AWS without the slash is not", "AWSVerdict", true},
		{"a leading colon", ":Verdict", false},
		{"a control character", "Ver\tdict", false},
		{"not ASCII", "Verdíct", false},
		{"slashes and spaces inside", "Fraud ML/Verdict", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := cwmetric.CheckNamespace(tc.ns)
			if (err == nil) != tc.ok {
				t.Errorf("CheckNamespace(%q) = %v, want ok=%v", tc.ns, err, tc.ok)
			}
			cfgErr := Config{EndpointName: "e", Namespace: tc.ns}.Validate()
			if tc.ns != "" && (cfgErr == nil) != tc.ok {
				t.Errorf("Config.Validate with Namespace %q = %v, want ok=%v", tc.ns, cfgErr, tc.ok)
			}
			if cfgErr != nil && !strings.Contains(cfgErr.Error(), "Namespace") {
				t.Errorf("error does not name Namespace: %v", cfgErr)
			}
		})
	}
}
