-- One row naming this database file, made once when the file is created (or
-- first opened by a binary with this migration). The DuckDB subscriber binds
-- its durable consumer to this id (subscriber.Config.Owner), so that two
-- files never split one consumer's events and a new file never continues
-- where another one stopped. DuckDB only: Postgres is shared by every
-- subscriber instance.

CREATE TABLE store_identity (
    id         TEXT NOT NULL PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
INSERT INTO store_identity (id) VALUES (CAST(gen_random_uuid() AS TEXT));
