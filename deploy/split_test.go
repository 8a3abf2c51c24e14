package deploy

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/verdictml/verdict/internal/golden"
	"github.com/verdictml/verdict/internal/spectest"
)

func mustSplit(t *testing.T) *Split {
	t.Helper()
	s, err := LoadSplit("testdata/split.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSplitRequestsGoldenAndOnTheWire(t *testing.T) {
	req := mustSplit(t).Requests()
	wire := checkRequests(t, "requests_split.json", req)
	// The decoded wire request carries both weighted variants.
	body := wire[0].Body.(map[string]any)
	pvs := body["ProductionVariants"].([]any)
	if len(pvs) != 2 {
		t.Fatalf("wire ProductionVariants = %v, want 2", pvs)
	}
	for i, want := range []struct {
		name   string
		weight float64
	}{{"v4", 0.9}, {"v5", 0.1}} {
		pv := pvs[i].(map[string]any)
		if pv["VariantName"] != want.name || float32(pv["InitialVariantWeight"].(float64)) != float32(want.weight) {
			t.Errorf("wire variant %d = %v, want %s weight %v", i, pv, want.name, want.weight)
		}
	}
	if _, ok := body["DataCaptureConfig"]; !ok {
		t.Error("wire CreateEndpointConfig has no DataCaptureConfig")
	}
	if req.UpdateEndpoint.DeploymentConfig != nil {
		t.Error("split update has a DeploymentConfig; it moves the endpoint all at once")
	}
}

func TestSplitPlanGolden(t *testing.T) {
	var b bytes.Buffer
	if err := mustSplit(t).WritePlan(&b); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "plan_split.txt", b.Bytes())
}

func TestSplitValidationEnforcesSageMakerLimits(t *testing.T) {
	b, err := os.ReadFile("testdata/split.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type edit struct{ from, to string }
	cases := []struct {
		name    string
		edits   []edit
		wantErr string
	}{
		{"the example is valid", nil, ""},
		{"a zero weight is allowed", []edit{{"weight: 0.1", "weight: 0"}}, ""},
		{"negative weight", []edit{{"weight: 0.1", "weight: -0.1"}}, "variants[1].weight: -0.1 must be a number from 0"},
		{"missing weight", []edit{{"    weight: 0.1\n", ""}}, "variants[1].weight: is required"},
		{"all weights zero", []edit{{"weight: 0.9", "weight: 0"}, {"weight: 0.1", "weight: 0"}}, "every weight is 0"},
		{"duplicate variant name", []edit{{"name: v5", "name: v4"}}, `variants[1].name: "v4" is also variants[0]`},
		{"bad variant name", []edit{{"name: v5", "name: v_5"}}, `variants[1].name: "v_5" must be 1-63`},
		{"bad instance type", []edit{{"instance_type: ml.c5.xlarge\n    instance_count: 1", "instance_type: c5.xlarge\n    instance_count: 1"}}, `variants[1].instance_type: "c5.xlarge"`},
		{"no instances", []edit{{"instance_count: 1", "instance_count: 0"}}, "variants[1].instance_count: 0 must be at least 1"},
		{"missing endpoint config", []edit{{"endpoint_config: fraud-ab-v4-v5\n", ""}}, "endpoint_config: is required"},
		{"bad capture destination", []edit{{"s3://fraud-ml-capture/fraud-ab", "fraud-ml-capture"}}, "data_capture.destination"},
		{"unknown field", []edit{{"tags:", "tag:"}}, "field tag not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := string(b)
			for _, e := range tc.edits {
				if !strings.Contains(in, e.from) {
					t.Fatalf("test edit: %q not in the example", e.from)
				}
				in = strings.Replace(in, e.from, e.to, 1)
			}
			_, err := ParseSplit([]byte(in))
			spectest.Err(t, err, tc.wantErr)
		})
	}
}

func TestSplitNeedsTwoToTenVariants(t *testing.T) {
	s := mustSplit(t)
	s.Variants = s.Variants[:1]
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "1 variants; a split has 2 to 10") {
		t.Errorf("one variant: err = %v", err)
	}
	s = mustSplit(t)
	for i := range 9 {
		v := s.Variants[1]
		v.Name = "v" + string(rune('a'+i))
		s.Variants = append(s.Variants, v)
	}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "11 variants") {
		t.Errorf("eleven variants: err = %v", err)
	}
}

func TestKindOfTellsSplitFromRollout(t *testing.T) {
	for path, want := range map[string]SpecKind{"testdata/split.yaml": KindSplit, "testdata/rollout.yaml": KindRollout} {
		if got, err := KindOf(path); err != nil || got != want {
			t.Errorf("KindOf(%s) = %s, %v; want %s", path, got, err, want)
		}
	}
}

func TestMoveSplit(t *testing.T) {
	current := []Weight{{"v4", 0.9}, {"v5", 0.1}}
	cases := []struct {
		name, set string
		want      []Weight
		wantErr   string
	}{
		{"moves both weights", "v4=0.5,v5=0.5", []Weight{{"v4", 0.5}, {"v5", 0.5}}, ""},
		{"an unnamed variant keeps its weight", "v5=0.3", []Weight{{"v4", 0.9}, {"v5", 0.3}}, ""},
		{"draining one variant is allowed", "v4=0", []Weight{{"v4", 0}, {"v5", 0.1}}, ""},
		{"unknown variant", "v6=1", nil, `variant "v6" is not in endpoint fraud-ab (variants v4, v5)`},
		{"draining every variant", "v4=0,v5=0", nil, "every variant would have weight 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MoveSplit("fraud-ab", current, mustWeights(t, tc.set))
			spectest.Err(t, err, tc.wantErr)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("after = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSplitChecksWeightVariantsAgainstItsConfig(t *testing.T) {
	s := mustSplit(t)
	if err := s.CheckVariants([]Weight{{"v4", 1}, {"v5", 0}}); err != nil {
		t.Errorf("known variants: %v", err)
	}
	err := s.CheckVariants([]Weight{{"v4", 1}, {"AllTraffic", 0}})
	if err == nil || !strings.Contains(err.Error(), `variant "AllTraffic" is not in split spec fraud-ab-v4-v5`) {
		t.Errorf("unknown variant: err = %v", err)
	}
}

func TestWriteSplitShowsBeforeAndAfterShares(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSplit(&b, []Weight{{"v4", 0.9}, {"v5", 0.1}}, []Weight{{"v4", 3}, {"v5", 1}}); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "weights_before_after.txt", b.Bytes())
}

func TestCurrentWeightsReadsDescribeEndpoint(t *testing.T) {
	d := &sagemaker.DescribeEndpointOutput{ProductionVariants: []types.ProductionVariantSummary{
		{VariantName: aws.String("v4"), CurrentWeight: aws.Float32(0.9)},
		{VariantName: aws.String("v5"), DesiredWeight: aws.Float32(0.1)},
	}}
	if got, want := CurrentWeights(d), []Weight{{"v4", 0.9}, {"v5", 0.1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("CurrentWeights = %v, want %v", got, want)
	}
}
