package objectsource

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// partitionCounts are one partition's counters since this process started.
type partitionCounts struct {
	objects, deadObjects, failures int
	bytes                          int64
	accepted, duplicates, rejected int
}

func (s *Source) count(id string, f func(*partitionCounts)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.counts[id]
	if !ok {
		c = &partitionCounts{}
		s.counts[id] = c
	}
	f(c)
}

// collector exports the source's state at scrape time:
//
//	verdict_objects_read_total{source,partition}              objects read to their end and recorded
//	verdict_objects_read_bytes_total{source,partition}        their stored bytes
//	verdict_objects_dead_lettered_total{source,partition}     objects that could not be read whole
//	verdict_objects_read_failures_total{source,partition}     reads that failed and are retried
//	verdict_objects_behind{source,partition}                  listed objects not read yet
//	verdict_objects_behind_bytes{source,partition}            their bytes
//	verdict_objects_oldest_unread_age_seconds{source,partition}  age (since LastModified) of the oldest of them; 0 when none
//	verdict_objects_partitions_followed{source}               partitions this instance reads
//	verdict_objects_notifications_total{source}               notifications received
type collector struct {
	s *Source
}

var (
	descRead      = prometheus.NewDesc("verdict_objects_read_total", "Objects read to their end and recorded in the checkpoint.", []string{"source", "partition"}, nil)
	descReadBytes = prometheus.NewDesc("verdict_objects_read_bytes_total", "Stored bytes of the objects read.", []string{"source", "partition"}, nil)
	descDead      = prometheus.NewDesc("verdict_objects_dead_lettered_total", "Objects that could not be read whole (damaged gzip, deleted after listing); their dead letter says why.", []string{"source", "partition"}, nil)
	descFailures  = prometheus.NewDesc("verdict_objects_read_failures_total", "Object reads that failed (store, network, dead letters) and are retried.", []string{"source", "partition"}, nil)
	descBehind    = prometheus.NewDesc("verdict_objects_behind", "Listed objects not read yet.", []string{"source", "partition"}, nil)
	descBehindB   = prometheus.NewDesc("verdict_objects_behind_bytes", "Stored bytes of the listed objects not read yet.", []string{"source", "partition"}, nil)
	descOldest    = prometheus.NewDesc("verdict_objects_oldest_unread_age_seconds", "Seconds since the oldest listed unread object was written (0 when none is waiting).", []string{"source", "partition"}, nil)
	descFollowed  = prometheus.NewDesc("verdict_objects_partitions_followed", "Partitions (capture variant folders, label prefixes) this instance reads.", []string{"source"}, nil)
	descNotices   = prometheus.NewDesc("verdict_objects_notifications_total", "Object notifications received (S3 events through SQS).", []string{"source"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRead, descReadBytes, descDead, descFailures, descBehind, descBehindB, descOldest, descFollowed, descNotices} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	src := s.cfg.Source
	now := s.cfg.Now()
	s.mu.Lock()
	ids := make([]string, 0, len(s.counts))
	for id := range s.counts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		pc := s.counts[id]
		ch <- prometheus.MustNewConstMetric(descRead, prometheus.CounterValue, float64(pc.objects), src, id)
		ch <- prometheus.MustNewConstMetric(descReadBytes, prometheus.CounterValue, float64(pc.bytes), src, id)
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(pc.deadObjects), src, id)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(pc.failures), src, id)
	}
	followers := make(map[string]*follower, len(s.following))
	for id, f := range s.following {
		followers[id] = f
	}
	notices := s.notices
	s.mu.Unlock()
	for id, f := range followers {
		st := f.stats()
		age := 0.0
		if !st.oldest.IsZero() {
			age = max(0, now.Sub(st.oldest).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(descBehind, prometheus.GaugeValue, float64(st.behind), src, id)
		ch <- prometheus.MustNewConstMetric(descBehindB, prometheus.GaugeValue, float64(st.behindBytes), src, id)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age, src, id)
	}
	ch <- prometheus.MustNewConstMetric(descFollowed, prometheus.GaugeValue, float64(len(followers)), src)
	ch <- prometheus.MustNewConstMetric(descNotices, prometheus.CounterValue, float64(notices), src)
}
