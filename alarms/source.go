package alarms

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MetricSource is a metric history as CloudWatch aggregates it: the evaluator
// asks it for one statistic of one metric over one period. verdict's own metric
// history (a recorded file, or a rehearsal feeding replayed window snapshots)
// implements it; so could a GetMetricData reader.
type MetricSource interface {
	// Statistic aggregates the metric's samples with timestamps in [start, end)
	// by stat: Average, Sum, Minimum, Maximum, SampleCount or a percentile such
	// as p99. ok is false when there are no samples in the interval.
	Statistic(ctx context.Context, m Metric, stat string, start, end time.Time) (v float64, ok bool, err error)
}

// Samples is an in-memory MetricSource of raw samples, one per publish.
type Samples struct {
	series map[string][]sample
}

type sample struct {
	t time.Time
	v float64
}

// NewSamples returns an empty history.
func NewSamples() *Samples { return &Samples{series: map[string][]sample{}} }

// Add records one published value.
func (s *Samples) Add(m Metric, t time.Time, v float64) {
	k := metricKey(m)
	s.series[k] = append(s.series[k], sample{t, v})
}

func metricKey(m Metric) string { return fmtMetric(m) }

// Statistic implements MetricSource.
func (s *Samples) Statistic(_ context.Context, m Metric, stat string, start, end time.Time) (float64, bool, error) {
	var vs []float64
	for _, x := range s.series[metricKey(m)] {
		if !x.t.Before(start) && x.t.Before(end) {
			vs = append(vs, x.v)
		}
	}
	if len(vs) == 0 {
		return 0, false, nil
	}
	v, err := aggregate(vs, stat)
	return v, err == nil, err
}

func aggregate(vs []float64, stat string) (float64, error) {
	switch stat {
	case "Average":
		sum := 0.0
		for _, v := range vs {
			sum += v
		}
		return sum / float64(len(vs)), nil
	case "Sum":
		sum := 0.0
		for _, v := range vs {
			sum += v
		}
		return sum, nil
	case "Minimum":
		return slices.Min(vs), nil
	case "Maximum":
		return slices.Max(vs), nil
	case "SampleCount":
		return float64(len(vs)), nil
	}
	if p, ok := strings.CutPrefix(stat, "p"); ok {
		q, err := strconv.ParseFloat(p, 64)
		if err == nil && q >= 0 && q <= 100 {
			sorted := slices.Sorted(slices.Values(vs))
			// Nearest rank.
			i := int(math.Ceil(q/100*float64(len(sorted)))) - 1
			return sorted[max(i, 0)], nil
		}
	}
	return 0, fmt.Errorf("alarms: statistic %q is not supported by the local evaluator", stat)
}

// SampleRecord is one line of a metric history file (JSON lines), as verdict's
// publisher would have sent it.
type SampleRecord struct {
	Time       time.Time         `json:"time"`
	Namespace  string            `json:"namespace"`
	MetricName string            `json:"metric"`
	Dimensions map[string]string `json:"dimensions"`
	Value      float64           `json:"value"`
}

// ReadSamples reads a metric history in JSON lines.
func ReadSamples(r io.Reader) (*Samples, error) {
	s := NewSamples()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var rec SampleRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("alarms: metric history line %d: %w", line, err)
		}
		if rec.MetricName == "" || rec.Time.IsZero() {
			return nil, fmt.Errorf("alarms: metric history line %d: metric and time are required", line)
		}
		m := Metric{Namespace: rec.Namespace, MetricName: rec.MetricName}
		for k, v := range rec.Dimensions {
			m.Dimensions = append(m.Dimensions, Dimension{k, v})
		}
		s.Add(m, rec.Time, rec.Value)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("alarms: read metric history: %w", err)
	}
	return s, nil
}

// Last returns the time of the latest sample, zero when there is none.
func (s *Samples) Last() time.Time {
	var last time.Time
	for _, ss := range s.series {
		for _, x := range ss {
			if x.t.After(last) {
				last = x.t
			}
		}
	}
	return last
}
