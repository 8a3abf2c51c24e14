package prom

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictml/verdict/window"
)

// Cohorts is what the cohort collector needs from the windows.
type Cohorts interface {
	Cohorts(ages []time.Duration) (window.CohortSnapshot, error)
	DefaultAges(maturity time.Duration) []time.Duration
}

// CohortCollector exposes, per variant and age class of prediction time, how many
// predictions there are and how many are resolved: label coverage by cohort age. It
// reads the current windows at scrape time, like Collector.
type CohortCollector struct {
	cohorts  Cohorts
	maturity time.Duration
	log      *slog.Logger

	predictions, coverage, resolved, pending, censored *prometheus.Desc
}

// NewCohortCollector returns the collector; maturity (VERDICT_MATURITY, 0 when
// predictions never mature) is one of the age boundaries.
func NewCohortCollector(cohorts Cohorts, maturity time.Duration, log *slog.Logger) *CohortCollector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc("verdict_cohort_"+name, help, append([]string{"variant", "age"}, extra...), nil)
	}
	return &CohortCollector{
		cohorts: cohorts, maturity: maturity, log: log,
		predictions: d("predictions", "Predictions whose age (by prediction time) is in the class."),
		coverage:    d("label_coverage", "Resolved / predictions of the age class; absent without predictions."),
		resolved: d("resolved", "Resolved predictions of the age class by how: label=positive (labeled fraud), "+
			"negative (labeled legitimate) or matured (resolved negative by maturity).", "label"),
		pending:  d("pending", "Predictions of the age class without an outcome yet."),
		censored: d("censored", "Pending predictions of the age class that only a (review) label resolves."),
	}
}

// Describe implements prometheus.Collector.
func (c *CohortCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.predictions, c.coverage, c.resolved, c.pending, c.censored} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *CohortCollector) Collect(ch chan<- prometheus.Metric) {
	snap, err := c.cohorts.Cohorts(c.cohorts.DefaultAges(c.maturity))
	if err != nil {
		c.log.Warn("age classes for /metrics", "err", err)
		ch <- prometheus.NewInvalidMetric(c.coverage, err)
		return
	}
	for _, row := range snap.Rows {
		if !row.Key.Overall() {
			continue // per variant only: segments × ages would multiply the series
		}
		for _, cl := range row.Classes {
			lv := []string{row.Key.Variant, cl.Name()}
			g := func(d *prometheus.Desc, v float64, extra ...string) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(lv, extra...)...)
			}
			n := cl.Counts
			g(c.predictions, float64(n.Predictions))
			if cl.Stats.LabelCoverage != nil {
				g(c.coverage, *cl.Stats.LabelCoverage)
			}
			g(c.resolved, float64(n.TP+n.FN), "positive")
			g(c.resolved, float64(n.FP+n.TN-n.Matured), "negative")
			g(c.resolved, float64(n.Matured), "matured")
			g(c.pending, float64(n.Pending()))
			g(c.censored, float64(n.Censored))
		}
	}
}
