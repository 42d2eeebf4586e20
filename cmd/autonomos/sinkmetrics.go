package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/subscriber"
)

// sinkMetrics are the upsert batch size and latency histograms of every
// store, observed around each committed (or failed) Apply.
type sinkMetrics struct {
	size     *prometheus.HistogramVec
	latency  *prometheus.HistogramVec
	consumed *prometheus.CounterVec // committed events by tenant, entity and sink
	failed   *prometheus.CounterVec // events of failed batches (retried) by tenant, entity and sink
	parse    *subscriber.ParseCache // shared by the process's subscribers
}

func newSinkMetrics() *sinkMetrics {
	return &sinkMetrics{
		// Slots for two sinks a few batches apart; a slot holds a message
		// and its parse, about 3 KB for a 1 KB event.
		parse: subscriber.NewParseCache(4096),
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "autonomos_upsert_batch_size",
			Help:    "Events per upsert batch applied to a store.",
			Buckets: []float64{1, 5, 10, 50, 100, 250, 500, 1000, 2000},
		}, []string{"sink"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "autonomos_upsert_batch_seconds",
			Help:    "Time to apply and commit one upsert batch, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"sink", "outcome"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autonomos_events_consumed_total",
			Help: "Canonical events committed to a store, by tenant, entity and sink (stage).",
		}, []string{"tenant", "entity", "sink"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autonomos_events_apply_failed_total",
			Help: "Canonical events in a batch a store failed to commit (each is redelivered; dead letters are autonomos_events_failed_total), by tenant, entity and sink.",
		}, []string{"tenant", "entity", "sink"}),
	}
}

// collectors are what the registry must hold.
func (m *sinkMetrics) collectors() []prometheus.Collector {
	parsed := func(hit bool) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "autonomos_event_parses_total",
			Help:        "Canonical events decoded by the subscribers: result=shared when another sink of the process had decoded the same message.",
			ConstLabels: prometheus.Labels{"result": map[bool]string{true: "shared", false: "decoded"}[hit]},
		}, func() float64 {
			h, m := m.parse.Stats()
			if hit {
				return float64(h)
			}
			return float64(m)
		})
	}
	return []prometheus.Collector{m.size, m.latency, m.consumed, m.failed, parsed(true), parsed(false)}
}

// countByTenantEntity adds each event to c under (tenant, entity, sink),
// one Add per distinct pair of the batch.
func countByTenantEntity(c *prometheus.CounterVec, sink string, events []*canonical.Event) {
	type key struct {
		tenant string
		entity canonical.Entity
	}
	n := map[key]int{}
	for _, ev := range events {
		if ev == nil || ev.Record == nil {
			continue
		}
		n[key{ev.Tenant, ev.Entity()}]++
	}
	for k, v := range n {
		c.WithLabelValues(k.tenant, string(k.entity), sink).Add(float64(v))
	}
}

// metered wraps a sink so each Apply is observed; errors pass through
// unchanged (the subscriber classifies them).
func (m *sinkMetrics) metered(s subscriber.Sink) subscriber.Sink { return meteredSink{s, m} }

type meteredSink struct {
	subscriber.Sink
	m *sinkMetrics
}

func (s meteredSink) Apply(ctx context.Context, events []*canonical.Event) error {
	start := time.Now()
	err := s.Sink.Apply(ctx, events)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	s.m.latency.WithLabelValues(s.Name(), outcome).Observe(time.Since(start).Seconds())
	if err == nil {
		s.m.size.WithLabelValues(s.Name()).Observe(float64(len(events)))
		countByTenantEntity(s.m.consumed, s.Name(), events)
	} else {
		countByTenantEntity(s.m.failed, s.Name(), events)
	}
	return err
}
