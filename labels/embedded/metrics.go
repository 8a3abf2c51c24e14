package embedded

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes the store's health at scrape time: how well the block cache
// serves the label path's point reads (the lever in BENCHMARKS.md), compaction debt,
// read amplification and disk use. It reads pebble's own metrics; nothing is counted
// twice.
type Collector struct {
	s *Store

	cacheHits, cacheMisses, cacheBytes, diskBytes, debt, readAmp, compactions *prometheus.Desc
}

// Collector returns the store's Prometheus collector.
func (s *Store) Collector() *Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("verdict_store_"+name, help, nil, nil)
	}
	return &Collector{
		s:           s,
		cacheHits:   d("block_cache_hits_total", "Join store block cache hits."),
		cacheMisses: d("block_cache_misses_total", "Join store block cache misses: reads from files (raise VERDICT_STORE_CACHE_MB if labels lag)."),
		cacheBytes:  d("block_cache_bytes", "Bytes held by the join store block cache."),
		diskBytes:   d("disk_bytes", "Bytes the join store uses on disk (tables, WAL, manifests)."),
		debt:        d("compaction_debt_bytes", "Estimated bytes to compact before the LSM is stable."),
		readAmp:     d("read_amplification", "Files a point read may consult (L0 sublevels + non-empty levels)."),
		compactions: d("compactions_total", "Compactions run since the store opened."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cacheHits, c.cacheMisses, c.cacheBytes, c.diskBytes, c.debt, c.readAmp, c.compactions} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	m := c.s.db.Metrics()
	ch <- prometheus.MustNewConstMetric(c.cacheHits, prometheus.CounterValue, float64(m.BlockCache.Hits))
	ch <- prometheus.MustNewConstMetric(c.cacheMisses, prometheus.CounterValue, float64(m.BlockCache.Misses))
	ch <- prometheus.MustNewConstMetric(c.cacheBytes, prometheus.GaugeValue, float64(m.BlockCache.Size))
	ch <- prometheus.MustNewConstMetric(c.diskBytes, prometheus.GaugeValue, float64(m.DiskSpaceUsage()))
	ch <- prometheus.MustNewConstMetric(c.debt, prometheus.GaugeValue, float64(m.Compact.EstimatedDebt))
	ch <- prometheus.MustNewConstMetric(c.readAmp, prometheus.GaugeValue, float64(m.ReadAmp()))
	ch <- prometheus.MustNewConstMetric(c.compactions, prometheus.CounterValue, float64(m.Compact.Count))
}
