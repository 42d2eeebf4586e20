package gateway

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// liveRoutes are the routes of the live view: the WebSocket, the DCL
// snapshot and graph, and the AAM monitor.
func liveRoutes(s *Server) []*route {
	return []*route{
		{http.MethodGet, liveWSPath, s.handleLiveWS, accessViewer, docLiveWS},
		{http.MethodGet, "/dcl/state", s.handleDCLState, accessViewer, docDCLState},
		{http.MethodGet, "/dcl/graph", s.handleDCLGraph, accessViewer, docDCLGraph},
		{http.MethodGet, "/api/v1/aam/status", s.handleAAMStatus, accessViewer, docAAMStatus},
		{http.MethodGet, "/api/v1/aam/metrics", s.handleAAMMetrics, accessViewer, docAAMMetrics},
		{http.MethodGet, "/api/v1/aam/events", s.handleAAMEvents, accessViewer, docAAMEvents},
		{http.MethodGet, "/api/v1/aam/connections/:id/health", s.handleConnectionHealth, accessViewer, docConnHealth},
	}
}

// initLive registers the live view's collectors: the hub's (when there is
// one) and the JetStream collector that reads consumer lag, stalled
// consumers and DLQ depth at each scrape.
func (s *Server) initLive() error {
	cs := []prometheus.Collector{newJSCollector(s.deps.JetStream)}
	if s.deps.Live != nil {
		cs = append(cs, s.deps.Live.m.collectors()...)
	}
	for _, c := range cs {
		if err := s.metrics.reg.Register(c); err != nil {
			return fmt.Errorf("gateway metrics: %w", err)
		}
	}
	return nil
}

var (
	docLiveWS = opDoc{tag: "dcl", summary: "Live events of the token's tenant (WebSocket)",
		description: "A WebSocket fed from the bus, never by polling a database. Authenticate with Authorization: Bearer, or ?token=<access token> " +
			"(browsers cannot set headers on a WebSocket). Text frames, one JSON object each, with a type: " +
			"record.upserted / record.deleted {seq, entity, id, event_id, source_system, source_object, connection_id, trace_id, time, mapping_version, changed_fields} (changed_fields: the fields, and extras.<key>, that differ from the version this instance delivered before; null when that version is unknown here — first version, changed while the tenant had no client, or replayed), " +
			"job.updated {job} (progress of long work: rows_read, published, done/total), connection.status, drift.* {drift_seq, finding_id, connection_id, system, object, severity, time}, " +
			"dlq.added {dlq_seq, stage, reason, subject, sequence, attempts, trace_id, time}, " +
			"stats {interval_ms, records, counts: [{entity, source_system, count}], dlq, drift} (events since the last stats, at most one per 100 ms, none while idle), " +
			"and resync {reason, missed, last_seq}. Only record events carry seq (their CANONICAL stream sequence): reconnect with ?since=<last seq> " +
			"to receive exactly what was missed, then live (a client too far behind gets resync and should reload /dcl/state). " +
			"The server pings; a client that stops reading is dropped with close code 1013 (try again later); 1008 when the access token expires; 1001 on shutdown.",
		params: []paramDoc{
			{name: "since", in: "query", description: "resume after this CANONICAL sequence", schema: map[string]any{"type": "integer", "minimum": 0}},
			{name: "token", in: "query", description: "the access token, for clients that cannot send Authorization", schema: str},
		},
		status: http.StatusSwitchingProtocols, errors: []int{400, 503}}
	docDCLState = opDoc{tag: "dcl", summary: "Snapshot of the tenant's pipeline for a dashboard's first paint",
		description: "counts: live records per entity and source system from the store that answers the views (source_system null when the store could not break an entity down); " +
			"recent_events: the last 50 record events on CANONICAL, oldest first; consumers: every durable consumer's lag (system-wide; stalled when ack_pending reached max_ack_pending); " +
			"dlq_depth, active_jobs, open_drift. A part that could not be read is null and named in problems (status degraded); a part with no source on this instance is null.",
		status: 200, result: "DCLState"}
	docDCLGraph = opDoc{tag: "dcl", summary: "Sankey of the tenant's records: source system → source object → entity → table → views API",
		description: "d3-sankey's shape. Values are the store's record counts; the object level appears when the store can tell objects apart. " +
			"On links into an entity, mapped_fields counts the canonical fields the mapping in force fills and extras_fields the distinct source fields kept in extras among a sample of up to 200 rows. " +
			"503 when the store does not answer.",
		status: 200, result: "Graph", errors: []int{503}}
	docAAMStatus = opDoc{tag: "aam", summary: "Health of every component (system-wide)",
		description: "NATS, JetStream, each durable consumer (degraded when stalled; its waiting pulls show whether workers are attached), the stores, the live fan-out. status is ok only when every component is.",
		status:      200, result: "AAMStatus"}
	docAAMMetrics = opDoc{tag: "aam", summary: "Connection, drift and repair figures of the tenant",
		description: "Computed from the connection registry, the drift store, the DLQ stream and the job store. A figure with no source on this instance, or no data behind it, is null; a source that failed is named in problems.",
		status:      200, result: "AAMMetrics"}
	docAAMEvents = opDoc{tag: "aam", summary: "Recent connection, job, drift and dead-letter events of the tenant, newest first",
		description: "Each source's newest 200 items merged by time. 503 when a source does not answer.",
		params: []paramDoc{
			{name: "limit", in: "query", description: fmt.Sprintf("1 to %d, default %d", maxEventLimit, defaultEventLimit),
				schema: map[string]any{"type": "integer", "minimum": 1, "maximum": maxEventLimit, "default": defaultEventLimit}},
			{name: "cursor", in: "query", description: "next_cursor of the previous page", schema: str},
		},
		status: 200, result: "AAMEventPage", errors: []int{503}}
	docConnHealth = opDoc{tag: "aam", summary: "One connection's health: status, last job, status changes and drift events",
		params: []paramDoc{{name: "id", in: "path", required: true, schema: str}},
		status: 200, result: "ConnectionHealth", errors: []int{404, 503}}
)

// liveSchemas are the OpenAPI schemas of the live view's bodies.
func liveSchemas() map[string]any {
	integer := map[string]any{"type": "integer"}
	nullInt := map[string]any{"type": []any{"integer", "null"}}
	nullNum := map[string]any{"type": []any{"number", "null"}}
	ts := map[string]any{"type": "string", "format": "date-time"}
	tsNull := map[string]any{"type": []any{"string", "null"}, "format": "date-time"}
	nullArray := func(items map[string]any) map[string]any {
		return map[string]any{"type": []any{"array", "null"}, "items": items}
	}
	status := map[string]any{"type": "string", "enum": []any{StatusOK, StatusDegraded}}
	problems := map[string]any{"type": "array", "items": ref("Problem")}
	record := obj(map[string]any{
		"type": map[string]any{"type": "string", "enum": []any{MsgRecordUpserted, MsgRecordDeleted}},
		"seq":  integer, "entity": str, "id": str, "event_id": str, "source_system": str, "source_object": str,
		"connection_id": str, "trace_id": str, "time": ts, "mapping_version": integer,
	}, "type", "seq", "entity", "id", "event_id", "source_system", "time")
	consumer := obj(map[string]any{
		"stream": str, "name": str, "pending": integer, "ack_pending": integer, "redelivered": integer,
		"max_ack_pending": integer, "waiting": integer, "stalled": map[string]any{"type": "boolean"}, "last_delivery": tsNull,
	}, "stream", "name", "pending", "ack_pending", "redelivered", "max_ack_pending", "stalled")
	drift := obj(map[string]any{"type": str, "drift_seq": integer, "finding_id": str, "connection_id": str,
		"system": str, "object": str, "entity": str, "severity": str, "time": ts}, "type", "drift_seq", "time")
	connEvent := obj(map[string]any{"status_seq": integer, "connection_id": str, "status": str, "previous": str,
		"reason": str, "time": ts}, "status_seq", "connection_id", "status", "time")
	return map[string]any{
		"Problem":       obj(map[string]any{"part": str, "detail": str}, "part", "detail"),
		"RecordEvent":   record,
		"ConsumerState": consumer,
		"DriftEvent":    drift,
		"DCLState": obj(map[string]any{
			"status": status,
			"counts": nullArray(obj(map[string]any{"entity": str, "source_system": map[string]any{"type": []any{"string", "null"}},
				"count": integer}, "entity", "source_system", "count")),
			"recent_events": nullArray(ref("RecordEvent")),
			"consumers":     nullArray(ref("ConsumerState")),
			"dlq_depth":     nullInt, "active_jobs": nullInt, "open_drift": nullInt,
			"problems": problems,
		}, "status", "counts", "recent_events", "consumers", "dlq_depth", "active_jobs", "open_drift", "problems"),
		"Graph": obj(map[string]any{
			"nodes": map[string]any{"type": "array", "items": obj(map[string]any{"id": str, "label": str,
				"kind": map[string]any{"type": "string", "enum": []any{"system", "object", "entity", "table", "consumer"}}}, "id", "label", "kind")},
			"links": map[string]any{"type": "array", "items": obj(map[string]any{"source": str, "target": str, "value": integer,
				"mapped_fields": nullInt, "extras_fields": nullInt}, "source", "target", "value", "mapped_fields", "extras_fields")},
		}, "nodes", "links"),
		"AAMStatus": obj(map[string]any{
			"status":     status,
			"components": map[string]any{"type": "array", "items": ref("ComponentHealth")},
			"consumers":  nullArray(ref("ConsumerState")),
		}, "status", "components", "consumers"),
		"AAMMetrics": obj(map[string]any{
			"status": status, "total_connections": nullInt, "active_connections": nullInt,
			"drift_detections_24h": nullInt, "successful_repairs_24h": nullInt, "manual_reviews_pending": nullInt,
			"average_confidence": nullNum, "average_repair_time_ms": nullNum, "dlq_depth": nullInt, "active_jobs": nullInt,
			"problems": problems,
		}, "status", "total_connections", "active_connections", "drift_detections_24h", "successful_repairs_24h",
			"manual_reviews_pending", "average_confidence", "average_repair_time_ms", "problems"),
		"AAMEventPage": obj(map[string]any{
			"data": map[string]any{"type": "array", "items": obj(map[string]any{
				"id": str, "type": str, "source": map[string]any{"type": "string", "enum": []any{"connection", "job", "drift", "dlq"}},
				"connection_id": str, "message": str, "time": ts, "detail": map[string]any{"type": "object"},
			}, "id", "type", "source", "message", "time")},
			"next_cursor": map[string]any{"type": []any{"string", "null"}},
		}, "data", "next_cursor"),
		"ConnectionHealth": obj(map[string]any{
			"id": str, "name": str, "system": str, "status": str, "status_reason": str, "last_sync_at": tsNull,
			"last_error": str, "last_job_id": str,
			"health":        map[string]any{"type": "string", "enum": []any{StatusOK, "paused", StatusDegraded, StatusDown}},
			"last_job":      map[string]any{"oneOf": []any{ref("Job"), map[string]any{"type": "null"}}},
			"recent_events": map[string]any{"type": "array", "items": connEvent},
			"drift_events":  map[string]any{"type": "array", "items": ref("DriftEvent")},
		}, "id", "name", "system", "status", "health", "last_job", "recent_events", "drift_events"),
	}
}
