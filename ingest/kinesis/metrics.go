package kinesis

import "github.com/prometheus/client_golang/prometheus"

// collector exposes the consumer's Stats at scrape time; it keeps no copy of its own.
type collector struct {
	c                                              *Consumer
	lag, records, held, leaseEvents, handlerErrors *prometheus.Desc
}

// newCollector labels every metric with the stream as a constant label, so consumers of
// several streams can share one registry.
func newCollector(c *Consumer) *collector {
	stream := prometheus.Labels{"stream": c.cfg.Stream}
	return &collector{
		c: c,
		lag: prometheus.NewDesc("verdict_kinesis_millis_behind_latest",
			"How far behind the tip of the shard the last GetRecords response was, in milliseconds.",
			[]string{"shard"}, stream),
		records: prometheus.NewDesc("verdict_kinesis_shard_records_handled",
			"Records handled successfully on the shard since this worker took its lease.",
			[]string{"shard"}, stream),
		held: prometheus.NewDesc("verdict_kinesis_leases_held",
			"Shard leases this worker holds.",
			nil, stream),
		leaseEvents: prometheus.NewDesc("verdict_kinesis_lease_events_total",
			"Lease changes by this worker: taken, stolen, lost, released, finished (shard read to its end).",
			[]string{"event"}, stream),
		handlerErrors: prometheus.NewDesc("verdict_kinesis_handler_errors_total",
			"Handle calls that returned an error (their records are delivered again).",
			nil, stream),
	}
}

func (m *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.lag, m.records, m.held, m.leaseEvents, m.handlerErrors} {
		ch <- d
	}
}

func (m *collector) Collect(ch chan<- prometheus.Metric) {
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		metric, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			metric = prometheus.NewInvalidMetric(d, err)
		}
		ch <- metric
	}
	s := m.c.Stats()
	for _, sh := range s.Shards {
		send(m.lag, prometheus.GaugeValue, float64(sh.MillisBehindLatest), sh.ShardID)
		send(m.records, prometheus.GaugeValue, float64(sh.Records), sh.ShardID)
	}
	send(m.held, prometheus.GaugeValue, float64(len(s.Shards)))
	for event, n := range map[string]uint64{
		"taken": s.LeasesTaken, "stolen": s.LeasesStolen, "lost": s.LeasesLost,
		"released": s.LeasesReleased, "finished": s.ShardsFinished,
	} {
		send(m.leaseEvents, prometheus.CounterValue, float64(n), event)
	}
	send(m.handlerErrors, prometheus.CounterValue, float64(s.HandlerErrors))
}
