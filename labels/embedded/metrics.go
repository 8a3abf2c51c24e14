package embedded

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes the store's health at scrape time: how well the block cache
// serves the label path's point reads (the lever in BENCHMARKS.md), compaction debt,
// read amplification, disk use and free space, and what went wrong (failures,
// refused commits, corruption). It reads pebble's own metrics and the store's event
// counts; nothing is counted twice.
type Collector struct {
	s *Store

	cacheHits, cacheMisses, cacheBytes, diskBytes, debt, readAmp, compactions *prometheus.Desc
	free, reserve, healthy, salvaged                                          *prometheus.Desc
	failures, refusals, corruptions, backgroundErrors, reopens                *prometheus.Desc
}

// Collector returns the store's Prometheus collector.
func (s *Store) Collector() *Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("verdict_store_"+name, help, nil, nil)
	}
	return &Collector{
		s:                s,
		cacheHits:        d("block_cache_hits_total", "Join store block cache hits."),
		cacheMisses:      d("block_cache_misses_total", "Join store block cache misses: reads from files (raise VERDICT_STORE_CACHE_MB if labels lag)."),
		cacheBytes:       d("block_cache_bytes", "Bytes held by the join store block cache."),
		diskBytes:        d("disk_bytes", "Bytes the join store uses on disk (tables, WAL, manifests)."),
		debt:             d("compaction_debt_bytes", "Estimated bytes to compact before the LSM is stable."),
		readAmp:          d("read_amplification", "Files a point read may consult (L0 sublevels + non-empty levels)."),
		compactions:      d("compactions_total", "Compactions run since the store opened."),
		free:             d("free_bytes", "Bytes free on the join store's filesystem."),
		reserve:          d("min_free_bytes", "Free space below which commits are refused (VERDICT_STORE_MIN_FREE_MB)."),
		healthy:          d("writable", "1 while the join store accepts commits, 0 while it failed or the disk is below the reserve."),
		salvaged:         d("salvaged", "1 when VERDICT_STORE_RECOVERY=salvage cut damaged data at open: counts may miss acknowledged events."),
		failures:         d("failures_total", "Times the join store failed on an error pebble cannot continue from (a write-ahead log write, e.g. disk full)."),
		refusals:         d("commits_refused_total", "Commits refused because free space was below the reserve."),
		corruptions:      d("corruptions_total", "Damaged blocks or files pebble reported on reads and compactions."),
		backgroundErrors: d("background_errors_total", "Failed pebble flushes, compactions and table-stats jobs (retried)."),
		reopens:          d("reopens_total", "Times a failed join store was reopened."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cacheHits, c.cacheMisses, c.cacheBytes, c.diskBytes, c.debt, c.readAmp, c.compactions,
		c.free, c.reserve, c.healthy, c.salvaged, c.failures, c.refusals, c.corruptions, c.backgroundErrors, c.reopens} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	s.mu.RLock()
	if s.db != nil {
		m := s.db.Metrics()
		counter(c.cacheHits, m.BlockCache.Hits)
		counter(c.cacheMisses, m.BlockCache.Misses)
		gauge(c.cacheBytes, float64(m.BlockCache.Size))
		gauge(c.diskBytes, float64(m.DiskSpaceUsage()))
		gauge(c.debt, float64(m.Compact.EstimatedDebt))
		gauge(c.readAmp, float64(m.ReadAmp()))
		counter(c.compactions, m.Compact.Count)
	}
	s.mu.RUnlock()
	// One read of the free space serves both free_bytes and writable.
	free, ok := s.FreeBytes()
	if ok {
		gauge(c.free, float64(free))
	}
	gauge(c.reserve, float64(max(s.opts.MinFreeBytes, 0)))
	healthy, salvaged := 1.0, 0.0
	if s.failure() != nil || s.belowReserve(free, ok) != nil {
		healthy = 0
	}
	if s.Salvaged() != "" {
		salvaged = 1
	}
	gauge(c.healthy, healthy)
	gauge(c.salvaged, salvaged)
	counter(c.failures, s.events.failures.Load())
	counter(c.refusals, s.events.refusals.Load())
	counter(c.corruptions, s.events.corruptions.Load())
	counter(c.backgroundErrors, s.events.backgroundErrors.Load())
	counter(c.reopens, s.events.reopens.Load())
}
