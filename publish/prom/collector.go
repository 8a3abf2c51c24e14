// Package prom exposes verdict's windows as Prometheus metrics. The collector walks
// the current window snapshot at scrape time, so /metrics, the query API and
// CloudWatch read one source of truth and cannot drift apart.
package prom

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/window"
)

// Snapshots is what the collector needs from the windows.
type Snapshots interface {
	Snapshot(span window.Span) window.Snapshot
}

// UnmatchedFunc reports the labels waiting for their first prediction.
type UnmatchedFunc func(ctx context.Context) (int64, error)

// Collector is a prometheus.Collector over window snapshots.
type Collector struct {
	snaps     Snapshots
	spans     []window.Span
	unmatched UnmatchedFunc
	log       *slog.Logger

	predictions, flagged, errors, outcomes, matured *prometheus.Desc
	precision, recall, f1, precisionCI, recallCI    *prometheus.Desc
	coverage, flagRate, meanScore, unmatchedDesc    *prometheus.Desc
	pending, censored, estimable, precisionBounds   *prometheus.Desc
}

// NewCollector returns a collector of the given windows. unmatched may be nil.
func NewCollector(snaps Snapshots, spans []window.Span, unmatched UnmatchedFunc, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	series := []string{"variant", "segment_key", "segment", "window"}
	d := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc("verdict_"+name, help, append(append([]string(nil), series...), extra...), nil)
	}
	return &Collector{
		snaps: snaps, spans: spans, unmatched: unmatched, log: log,
		predictions: d("predictions", "Scored predictions in the window (by prediction time)."),
		flagged:     d("predicted_positives", "Predictions at or above their threshold in the window."),
		errors:      d("prediction_errors", "Predictions whose inference failed, in the window."),
		outcomes:    d("outcomes", "Resolved predictions in the window by confusion-matrix cell.", "outcome"),
		matured:     d("matured", "Predictions resolved negative by label maturity (subset of fp and tn)."),
		pending:     d("pending", "Predictions without an outcome yet (censored ones included)."),
		censored:    d("censored", "Pending predictions that only a (review) label resolves: the serving variant declined them (VERDICT_DECLINED=censored)."),
		precision:   d("precision", "TP / (TP + FP) over resolved predictions; absent when undefined or not estimable (verdict_statistic_estimable)."),
		recall:      d("recall", "TP / (TP + FN) over resolved predictions; absent when undefined."),
		f1:          d("f1", "Harmonic mean of precision and recall; absent when undefined or precision is not estimable."),
		estimable: d("statistic_estimable", "1 when the labels so far estimate the statistic (precision: enough of the flagged predictions resolved; "+
			"recall: a positive labeled), else 0 and the statistic has no sample.", "statistic"),
		precisionBounds: d("precision_bounds", "Bounds precision lies in whatever the open flagged predictions turn out to be.", "bound"),
		precisionCI:     d("precision_wilson", "95 % Wilson interval bound of precision.", "bound"),
		recallCI:        d("recall_wilson", "95 % Wilson interval bound of recall.", "bound"),
		coverage:        d("label_coverage", "Resolved / predictions in the window."),
		flagRate:        d("flag_rate", "Predicted-positive share of predictions in the window (needs no labels)."),
		meanScore:       d("mean_score", "Mean score of predictions in the window."),
		unmatchedDesc: prometheus.NewDesc("verdict_labels_unmatched",
			"Labels held in the join store waiting for their first prediction.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.predictions, c.flagged, c.errors, c.outcomes, c.matured,
		c.precision, c.recall, c.f1, c.precisionCI, c.recallCI, c.coverage, c.flagRate, c.meanScore, c.unmatchedDesc,
		c.pending, c.censored, c.estimable, c.precisionBounds} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, span := range c.spans {
		snap := c.snaps.Snapshot(span)
		w := span.String()
		for _, r := range snap.Rows {
			lv := []string{r.Key.Variant, r.Key.SegmentKey, r.Key.Segment, w}
			g := func(d *prometheus.Desc, v float64, extra ...string) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(lv, extra...)...)
			}
			opt := func(d *prometheus.Desc, v *float64) {
				if v != nil {
					g(d, *v)
				}
			}
			bounds := func(d *prometheus.Desc, iv *window.Interval) {
				if iv != nil {
					g(d, iv.Lower, "lower")
					g(d, iv.Upper, "upper")
				}
			}
			n := r.Counts
			g(c.predictions, float64(n.Predictions))
			g(c.flagged, float64(n.Flagged))
			g(c.errors, float64(n.Errors))
			g(c.outcomes, float64(n.TP), "tp")
			g(c.outcomes, float64(n.FP), "fp")
			g(c.outcomes, float64(n.FN), "fn")
			g(c.outcomes, float64(n.TN), "tn")
			g(c.matured, float64(n.Matured))
			g(c.pending, float64(n.Pending()))
			g(c.censored, float64(n.Censored))
			s := r.Stats
			s.Estimable.Each(func(statistic string, e window.Estimability) {
				v := 0.0
				if e.Estimable {
					v = 1
				}
				g(c.estimable, v, statistic)
			})
			bounds(c.precisionBounds, s.PrecisionBounds)
			opt(c.precision, s.Precision)
			opt(c.recall, s.Recall)
			opt(c.f1, s.F1)
			bounds(c.precisionCI, s.PrecisionCI)
			bounds(c.recallCI, s.RecallCI)
			opt(c.coverage, s.LabelCoverage)
			opt(c.flagRate, s.FlagRate)
			opt(c.meanScore, s.MeanScore)
		}
	}
	if c.unmatched != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := c.unmatched(ctx)
		if err != nil {
			c.log.Warn("read unmatched labels for /metrics", "err", err)
			ch <- prometheus.NewInvalidMetric(c.unmatchedDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(c.unmatchedDesc, prometheus.GaugeValue, float64(n))
	}
}
