// Package gateway is AutonomOS's HTTP front door: an Echo server with the
// auth API (tenants, users, rotating refresh tokens in JetStream KV), the
// file upload, the job and DCL view reads, health, metrics, the OpenAPI
// document with its /docs page, and the embedded web UI. It reads and
// writes the rest of the system only through the small interfaces of Deps
// (ViewReader, FileIngester, JobReader, HealthChecker), which cmd fills in;
// it imports neither subscriber nor connectors.
//
// Contract and invariants. Every request passes, in this order, tracing
// (W3C traceparent → a server span with Deps.Tracing and its trace id,
// X-Trace-Id on every response, trace_id on every log line, TraceID(ctx)
// and the span in ctx for handlers) → auth (every route but
// /health, /docs, /openapi.json, register, login, refresh and the UI needs a
// valid HS256 Bearer token; the tenant comes from the verified token only,
// never from a parameter or body; viewers cannot call mutating routes) →
// per-tenant rate limit (token buckets per tenant and read/write class;
// unauthenticated requests never touch a tenant's bucket) → idempotency
// (Idempotency-Key judged on the request's content — canonical JSON, or
// multipart fields and file bytes hashed while streaming — stored in the
// idempotency bucket with KV Create as the lock) → audit (one CloudEvent
// per mutating call on audit.<tenant>) → handler. Every error is rendered
// by one handler as {"error": {"code", "message", "trace_id"}}: bad input
// is 4xx (422 naming the field), never 500; unknown /api/ and /dcl/ paths
// are JSON 404s, never the UI page. Uploads are streamed to
// <SpoolDir>/<tenant>/ and never held in memory. The gateway closes none of
// its Deps; Run returns nil after a graceful shutdown bounded by
// Config.ShutdownTimeout. Rate limits are per instance (see Config.RateRead).
package gateway
