-- Materialized canonical entities, the same columns as the Postgres store's
-- (see migrations/postgres). DuckDB compares text byte-wise, so keys order as
-- the Postgres "C" collation does. No secondary indexes: DuckDB scans columns
-- quickly, and every ART index slows the upserts down.

CREATE TABLE materialized_accounts (
    tenant_id         TEXT NOT NULL,
    account_id        TEXT NOT NULL,
    name              TEXT,
    industry          TEXT,
    annual_revenue    DECIMAL(38,9),
    employee_count    BIGINT,
    website           TEXT,
    extras            JSON NOT NULL DEFAULT '{}',
    source_system     TEXT NOT NULL,
    source_object     TEXT NOT NULL DEFAULT '',
    connection_id     TEXT NOT NULL,
    source_updated_at TIMESTAMPTZ NOT NULL,
    mapping_version   INT NOT NULL,
    event_id          TEXT NOT NULL,
    deleted           BOOLEAN NOT NULL DEFAULT false,
    content_hash      BIGINT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (tenant_id, account_id)
);

CREATE TABLE materialized_opportunities (
    tenant_id         TEXT NOT NULL,
    opportunity_id    TEXT NOT NULL,
    account_id        TEXT,
    name              TEXT,
    stage             TEXT,
    amount            DECIMAL(38,9),
    currency          TEXT,
    close_date        DATE,
    owner_id          TEXT,
    probability       DECIMAL(7,4),
    extras            JSON NOT NULL DEFAULT '{}',
    source_system     TEXT NOT NULL,
    source_object     TEXT NOT NULL DEFAULT '',
    connection_id     TEXT NOT NULL,
    source_updated_at TIMESTAMPTZ NOT NULL,
    mapping_version   INT NOT NULL,
    event_id          TEXT NOT NULL,
    deleted           BOOLEAN NOT NULL DEFAULT false,
    content_hash      BIGINT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (tenant_id, opportunity_id)
);

CREATE TABLE materialized_contacts (
    tenant_id         TEXT NOT NULL,
    contact_id        TEXT NOT NULL,
    account_id        TEXT,
    first_name        TEXT,
    last_name         TEXT,
    email             TEXT,
    phone             TEXT,
    title             TEXT,
    extras            JSON NOT NULL DEFAULT '{}',
    source_system     TEXT NOT NULL,
    source_object     TEXT NOT NULL DEFAULT '',
    connection_id     TEXT NOT NULL,
    source_updated_at TIMESTAMPTZ NOT NULL,
    mapping_version   INT NOT NULL,
    event_id          TEXT NOT NULL,
    deleted           BOOLEAN NOT NULL DEFAULT false,
    content_hash      BIGINT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (tenant_id, contact_id)
);
