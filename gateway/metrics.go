package gateway

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.HistogramVec
	rateLimited   *prometheus.CounterVec
	auditFailures prometheus.Counter
	handler       http.Handler
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &metrics{
		reg: reg,
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "autonomos", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP requests by route template, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 120},
		}, []string{"route", "method", "status"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "autonomos", Subsystem: "gateway", Name: "rate_limited_total",
			Help: "Requests refused by the per-tenant rate limit, by route class.",
		}, []string{"class"}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "autonomos", Subsystem: "gateway", Name: "audit_publish_failures_total",
			Help: "Audit records that could not be published to the AUDIT stream.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.rateLimited, m.auditFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("gateway metrics: %w", err)
		}
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m, nil
}

// MetricsHandler serves the Prometheus metrics without authentication, for
// a separate, private metrics listener.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler }

// handleMetrics serves GET /metrics (authenticated unless MetricsPublic).
func (s *Server) handleMetrics(c echo.Context) error {
	s.metrics.handler.ServeHTTP(c.Response(), c.Request())
	return nil
}
