-- Materialized canonical entities. One column per canonical field (names
-- from DESIGN.md), the envelope's provenance, and a tombstone flag: a deleted
-- record keeps its row (deleted = true, fields cleared) so that an older
-- upsert arriving later cannot resurrect it. content_hash is a 64-bit hash
-- of everything written but the key and version, so "same version, same
-- content" (a replay) is recognised without comparing every column. Keys use the "C" collation so
-- that ORDER BY key and keyset paging are byte-ordered, as in DuckDB.
-- tenant_id leads every key and index (Citus-style distribution by tenant).

CREATE TABLE materialized_accounts (
    tenant_id         TEXT COLLATE "C" NOT NULL,
    account_id        TEXT COLLATE "C" NOT NULL,
    name              TEXT,
    industry          TEXT,
    annual_revenue    NUMERIC(38,9),
    employee_count    BIGINT,
    website           TEXT,
    extras            JSONB NOT NULL DEFAULT '{}',
    source_system     TEXT NOT NULL,
    source_object     TEXT NOT NULL DEFAULT '',
    connection_id     TEXT NOT NULL,
    source_updated_at TIMESTAMPTZ NOT NULL,
    mapping_version   INT NOT NULL,
    event_id          TEXT NOT NULL,
    deleted           BOOLEAN NOT NULL DEFAULT false,
    content_hash      BIGINT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, account_id)
);

CREATE TABLE materialized_opportunities (
    tenant_id         TEXT COLLATE "C" NOT NULL,
    opportunity_id    TEXT COLLATE "C" NOT NULL,
    account_id        TEXT,
    name              TEXT,
    stage             TEXT,
    amount            NUMERIC(38,9),
    currency          TEXT,
    close_date        DATE,
    owner_id          TEXT,
    probability       NUMERIC(7,4),
    extras            JSONB NOT NULL DEFAULT '{}',
    source_system     TEXT NOT NULL,
    source_object     TEXT NOT NULL DEFAULT '',
    connection_id     TEXT NOT NULL,
    source_updated_at TIMESTAMPTZ NOT NULL,
    mapping_version   INT NOT NULL,
    event_id          TEXT NOT NULL,
    deleted           BOOLEAN NOT NULL DEFAULT false,
    content_hash      BIGINT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, opportunity_id)
);

CREATE TABLE materialized_contacts (
    tenant_id         TEXT COLLATE "C" NOT NULL,
    contact_id        TEXT COLLATE "C" NOT NULL,
    account_id        TEXT,
    first_name        TEXT,
    last_name         TEXT,
    email             TEXT,
    phone             TEXT,
    title             TEXT,
    extras            JSONB NOT NULL DEFAULT '{}',
    source_system     TEXT NOT NULL,
    source_object     TEXT NOT NULL DEFAULT '',
    connection_id     TEXT NOT NULL,
    source_updated_at TIMESTAMPTZ NOT NULL,
    mapping_version   INT NOT NULL,
    event_id          TEXT NOT NULL,
    deleted           BOOLEAN NOT NULL DEFAULT false,
    content_hash      BIGINT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, contact_id)
);

-- The common "records of one account" lookups of the views API.
CREATE INDEX materialized_opportunities_account ON materialized_opportunities (tenant_id, account_id);
CREATE INDEX materialized_contacts_account ON materialized_contacts (tenant_id, account_id);
