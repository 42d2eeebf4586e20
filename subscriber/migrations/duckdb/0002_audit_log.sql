-- The audit log: one row per audit CloudEvent of the AUDIT stream (see
-- gateway.AuditRecord), written by the audit materializer and read newest
-- first per tenant by GET /api/v1/audit. The same columns as the Postgres
-- store's.

CREATE TABLE audit_log (
    tenant_id       TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    time            TIMESTAMPTZ NOT NULL,
    user_id         TEXT NOT NULL DEFAULT '',
    route           TEXT NOT NULL DEFAULT '',
    method          TEXT NOT NULL DEFAULT '',
    status          INT NOT NULL,
    latency_ms      BIGINT NOT NULL DEFAULT 0,
    trace_id        TEXT NOT NULL DEFAULT '',
    body_sha256     TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT NOT NULL DEFAULT '',
    outcome         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, event_id)
);

CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, time DESC);
