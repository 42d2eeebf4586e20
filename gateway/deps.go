package gateway

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// ViewReader answers the DCL views from a materialized store (Postgres or
// DuckDB). The query's Tenant is always the verified token's tenant; the
// reader must return only that tenant's rows. Query is called concurrently;
// it stops and returns ctx.Err() when ctx is cancelled (the client left). A
// *canonical.FieldError result answers 422. The gateway never closes it.
type ViewReader interface {
	Query(ctx context.Context, q canonical.ViewQuery) (canonical.ViewPage, error)
}

// FileIngest is one uploaded file handed to the ingester.
type FileIngest struct {
	Tenant  string           // from the verified token
	Entity  canonical.Entity // the entity every row of the file maps to
	System  string           // source system token, "filesource" by default
	Path    string           // the spooled file; see FileIngester for ownership
	Name    string           // the client's file name (base name only, for display)
	Size    int64            // bytes spooled
	TraceID string           // the request's trace id, for the events' traceid
}

// FileIngester starts ingesting a spooled file and returns the id of the job
// that follows it (readable through JobReader). IngestFile must return
// quickly — the work runs in the background, outliving the request, so it
// must not use ctx beyond the call. On a nil error the ingester owns
// req.Path and removes it when done; on an error the gateway removes it.
// Called concurrently. The gateway never closes it.
type FileIngester interface {
	IngestFile(ctx context.Context, req FileIngest) (jobID string, err error)
}

// JobReader reads ingestion jobs. Get returns streams.ErrNotFound for a job
// that does not exist or belongs to another tenant. List returns a tenant's
// jobs newest first, at most limit. Called concurrently; *streams.JobStore
// fits. The gateway never closes it.
type JobReader interface {
	Get(ctx context.Context, tenant, id string) (*streams.Job, error)
	List(ctx context.Context, tenant string, limit int) ([]*streams.Job, error)
}

// Component health statuses.
const (
	StatusOK       = "ok"
	StatusDegraded = "degraded"
	StatusDown     = "down"
)

// ComponentHealth is the state of one dependency as GET /health reports it.
type ComponentHealth struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, degraded or down
	Detail string `json:"detail,omitempty"`
}

// HealthChecker reports the truth about every component the system runs
// (NATS, Postgres, DuckDB, ...). Check honours ctx's deadline (the gateway
// gives it 5s) and is called concurrently; a component it cannot reach is
// "down", never omitted.
type HealthChecker interface {
	Check(ctx context.Context) []ComponentHealth
}

// Deps are what the gateway reads and writes through. The caller (cmd)
// creates them, keeps them open while Run runs, and closes them after Run
// returns; the gateway closes none of them.
type Deps struct {
	Views ViewReader
	// Ingester takes uploads. Nil when this process does not ingest files
	// (FEATURE_USE_FILESOURCE=false, or no connectors role): the upload
	// route then answers 503.
	Ingester FileIngester
	Jobs     JobReader
	Health   HealthChecker
	// JetStream holds the gateway's KV buckets (users, tenants, sessions,
	// idempotency), which must exist (streams.Ensure), and receives the
	// audit events on the AUDIT stream. The gateway neither creates nor
	// deletes streams or buckets.
	JetStream jetstream.JetStream
	// Metrics, when set, receives the gateway's collectors and is what
	// GET /metrics serves (so cmd can add other packages' collectors to it).
	// Nil: a registry of the gateway's own with the Go and process collectors.
	Metrics *prometheus.Registry
	// Connections, when set, serves /api/v1/aam/connections (optional: a
	// process without the connectors role has none).
	Connections ConnectionService
	// JobCancel, when set, serves POST /api/v1/aoa/jobs/{id}/cancel.
	JobCancel JobCanceller
	// Live, when set, feeds GET /dcl/ws (cmd runs its Run with the
	// gateway). Nil: /dcl/ws answers 503.
	Live *Hub
	// Counts, when set, counts the records of the store that answers the
	// views, for /dcl/state and /dcl/graph (StoreCounts fits any store).
	// Nil: counts are null in /dcl/state and /dcl/graph answers 503.
	Counts RecordCounter
	// Coverage, when set, gives /dcl/graph's links their mapped fields.
	// Nil: mapped_fields is null.
	Coverage MappingCoverage
	// ConnMonitor, when set, feeds the AAM metrics, events and connection
	// health. Nil (no connectors role): their connection parts are null and
	// connection health answers 503.
	ConnMonitor ConnectionMonitor
	// Drift, when set, gives drift figures (open findings, detections,
	// repairs, reviews, confidence, repair time). Nil: they are null.
	Drift DriftReporter
	// Repairs, when set, serves drift findings and their repair proposals,
	// mapping versions, search and the intelligence routes.
	Repairs DriftService
	// Ontology, when set, serves /api/v1/dcl/source-schemas and
	// /api/v1/dcl/preview and adds the sources to /api/v1/dcl/ontology.
	Ontology OntologyService
	// AOA, when set, serves /api/v1/aoa/run, state and reset.
	AOA AOAService
	// FileSource, when set, serves /api/v1/filesource/discover, replay and
	// status.
	FileSource FileSourceService
	// FileSourceOff (FEATURE_USE_FILESOURCE=false) removes every
	// /api/v1/filesource route, the upload included: they answer 404.
	FileSourceOff bool
	// DeadLetters, when set, serves /api/v1/dcl/dlq (list, get, redrive).
	DeadLetters DeadLetters
	// Rebuilder, when set, serves POST /api/v1/dcl/rebuild.
	Rebuilder Rebuilder
	// Audit, when set, serves GET /api/v1/audit (admins) from the
	// materialized audit log.
	Audit AuditReader
	// Tracing, when set, gives every request an OpenTelemetry server span
	// (its trace id is X-Trace-Id); handlers pass the span on in the
	// context, so the jobs and events a request causes join its trace.
	// Nil: no spans; the trace id is taken or made as before.
	Tracing trace.TracerProvider
	// Limiters, when set, makes the per-tenant rate limiters of reads and
	// writes (SharedLimits shares them with every instance on one NATS).
	// Nil: each instance keeps buckets of its own, so N instances behind a
	// balancer admit up to N times the configured rates.
	Limiters LimiterFactory
}

func (d Deps) validate() error {
	var errs []error
	if d.Views == nil {
		errs = append(errs, errors.New("gateway deps: Views is required"))
	}
	if d.Jobs == nil {
		errs = append(errs, errors.New("gateway deps: Jobs is required"))
	}
	if d.Health == nil {
		errs = append(errs, errors.New("gateway deps: Health is required"))
	}
	if d.JetStream == nil {
		errs = append(errs, errors.New("gateway deps: JetStream is required"))
	}
	return errors.Join(errs...)
}

var _ JobReader = (*streams.JobStore)(nil)
