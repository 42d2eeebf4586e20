package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/autonomos/autonomos/agents"
	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/subscriber"
)

// wireLive gives the gateway its live view: the WebSocket hub (run in the
// gateway's group, so it stops with the gateway), record counts from the
// store that answers the views, mapping coverage, the connection monitor,
// drift figures, and a metrics registry that also reads the subscribers.
//
// GET /metrics needs a token unless the gateway's MetricsPublic is set; a
// Prometheus that scrapes without one should read Server.MetricsHandler on
// a private listener (loopback or an internal network) instead.
func (s *system) wireLive(ctx context.Context, deps *gateway.Deps) error {
	hub, err := gateway.NewHub(s.js, gateway.HubConfig{}, s.log)
	if err != nil {
		return err
	}
	deps.Live = hub
	deps.Counts = sourceCounts{s.reader()}
	deps.Coverage = mappingCoverage{s.mappings}
	if s.conns != nil && s.events != nil {
		deps.ConnMonitor = connMonitor{s.conns, s.events}
	}
	if s.agents != nil {
		deps.Drift = driftReporter{s.agents.Service}
	}
	reg := prometheus.NewRegistry()
	errs := []error{
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
		reg.Register(newSubscriberCollector(s.subs)),
		reg.Register(s.limits.keeper),
	}
	for _, c := range s.sinkMetrics.collectors() {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	deps.Metrics = reg
	s.gatewayRun.start(ctx, s.log, "live-hub", hub.Run)
	return nil
}

// mappingCoverage adapts the mapping registry to the gateway's
// MappingCoverage: the canonical fields the mapping in force fills.
type mappingCoverage struct{ m *connectors.Mappings }

var _ gateway.MappingCoverage = mappingCoverage{}

func (c mappingCoverage) MappedFields(ctx context.Context, tenant, system, object string, e canonical.Entity) ([]string, error) {
	var m *canonical.Mapping
	var err error
	if object != "" {
		m, err = c.m.Get(ctx, tenant, system, object)
	} else {
		m, err = c.m.ForEntity(ctx, tenant, system, e)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		// The registry does not tell a missing mapping from a failed read;
		// either way the gateway shows the coverage as unknown (null).
		return nil, fmt.Errorf("%w: %w", streams.ErrNotFound, err)
	}
	if m.Entity() != e {
		return nil, streams.ErrNotFound
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range m.Spec.Fields {
		if !seen[f.Target] {
			seen[f.Target] = true
			out = append(out, f.Target)
		}
	}
	return out, nil
}

// connMonitor adapts the connection registry and its event log to the
// gateway's ConnectionMonitor.
type connMonitor struct {
	conns  *connectors.Connections
	events *connectors.EventLog
}

var _ gateway.ConnectionMonitor = connMonitor{}

func (c connMonitor) MonitoredConnections(ctx context.Context, tenant string) ([]gateway.MonitoredConnection, error) {
	vs, err := c.conns.List(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.MonitoredConnection, 0, len(vs))
	for _, v := range vs {
		out = append(out, gateway.MonitoredConnection{ID: v.ID, Name: v.Name, System: v.System, Status: string(v.Status),
			StatusReason: v.StatusReason, LastSyncAt: v.LastSyncAt, LastError: v.LastError, LastJobID: v.LastJobID})
	}
	return out, nil
}

func (c connMonitor) ConnectionEvents(ctx context.Context, tenant string, limit int) ([]gateway.ConnectionEvent, error) {
	evs, err := c.events.List(ctx, tenant, limit, 0)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.ConnectionEvent, 0, len(evs))
	for _, e := range evs {
		out = append(out, gateway.ConnectionEvent{Seq: e.Seq, ConnectionID: e.ConnectionID, Status: string(e.Status),
			Previous: string(e.Previous), Reason: e.Reason, Time: e.Time})
	}
	return out, nil
}

// driftReporter adapts the agents' intelligence (computed from the stored
// findings) to the gateway's DriftReporter. Open findings are those still
// waiting: open or queued for a person.
type driftReporter struct{ svc *agents.Service }

var _ gateway.DriftReporter = driftReporter{}

func (d driftReporter) DriftSummary(ctx context.Context, tenant string) (gateway.DriftSummary, error) {
	in, err := d.svc.Intelligence(ctx, tenant)
	if err != nil {
		return gateway.DriftSummary{}, err
	}
	open := in.FindingsByStatus[drift.StatusOpen] + in.FindingsByStatus[drift.StatusQueued]
	return gateway.DriftSummary{
		OpenFindings: &open, Detections24h: &in.DriftEvents24h, Repairs24h: &in.Repairs24h,
		ManualReviewsPending: &in.ManualReviewsPending, AverageConfidence: in.AverageConfidence,
		AverageRepairSeconds: in.AverageRepairSeconds,
	}, nil
}

// subscriberCollector reads each subscriber's counters at scrape time:
// events consumed (applied), batches, dead letters and failed batches per
// durable consumer and sink.
type subscriberCollector struct {
	subs                                  []*subscriber.Subscriber
	applied, batches, dead, failed, fails *prometheus.Desc
}

func newSubscriberCollector(subs []*subscriber.Subscriber) *subscriberCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("autonomos_subscriber_"+name, help, []string{"consumer", "sink"}, nil)
	}
	return &subscriberCollector{subs: subs,
		applied: d("events_applied_total", "Canonical events committed to the sink (consumed)."),
		batches: d("batches_total", "Batches committed to the sink; events_applied_total / batches_total is the mean batch size."),
		dead:    d("dead_lettered_total", "Messages the subscriber sent to the DLQ and terminated."),
		failed:  d("failed_batches_total", "Sink failures (each batch is redelivered)."),
		fails:   d("failing", "1 while the subscriber's last attempt failed."),
	}
}

func (c *subscriberCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.applied, c.batches, c.dead, c.failed, c.fails} {
		ch <- d
	}
}

func (c *subscriberCollector) Collect(ch chan<- prometheus.Metric) {
	for _, sub := range c.subs {
		st := sub.Stats()
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), st.Consumer, st.Sink)
		}
		counter(c.applied, st.Applied)
		counter(c.batches, st.Batches)
		counter(c.dead, st.DeadLettered)
		counter(c.failed, st.FailedBatches)
		failing := 0.0
		if st.Failing {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(c.fails, prometheus.GaugeValue, failing, st.Consumer, st.Sink)
	}
}

// notifyJob publishes a job's stored state on live.<tenant>.job (core
// NATS, not persisted) as {"type":"job.updated","job":{...}}, the message
// the sync jobs send, so that an upload's progress reaches the WebSocket
// too. It reads only the job's id and tenant and publishes the state read
// back from the job store: the file source calls it once with a job its
// worker is already updating, and the stored state is the truth anyway.
func notifyJob(nc *nats.Conn, jobs *streams.JobStore, log *slog.Logger) func(*streams.Job) {
	return func(j *streams.Job) {
		tenant, id := j.Tenant, j.ID
		subj, err := streams.LiveSubject(tenant, "job")
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		stored, err := jobs.Get(ctx, tenant, id)
		if err != nil {
			log.Debug("read a job for a live update", "job_id", id, "error", err)
			return
		}
		b, err := json.Marshal(struct {
			Type string       `json:"type"`
			Job  *streams.Job `json:"job"`
		}{connectors.EventTypeJobUpdated, stored})
		if err != nil {
			return
		}
		if err := nc.Publish(subj, b); err != nil {
			log.Debug("publish a live job update", "job_id", id, "error", err)
		}
	}
}

// sourceCounts counts the view store's records by entity, source system and
// source object with one grouped query per table.
type sourceCounts struct{ st store }

func (c sourceCounts) CountRecords(ctx context.Context, tenant string) ([]gateway.RecordCount, error) {
	gs, err := c.st.CountBySource(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.RecordCount, len(gs))
	for i, g := range gs {
		out[i] = gateway.RecordCount{Entity: g.Entity, SourceSystem: g.SourceSystem, SourceObject: g.SourceObject, Count: g.Count}
	}
	return out, nil
}
