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
	size    *prometheus.HistogramVec
	latency *prometheus.HistogramVec
}

func newSinkMetrics() *sinkMetrics {
	return &sinkMetrics{
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
	}
	return err
}
