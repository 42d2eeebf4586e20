// Package subscriber is the DCL subscriber: it materializes the CANONICAL
// stream into read models and answers the views API from them. A Subscriber
// runs a durable pull consumer (dcl-<sink>, filtered canonical.>) and hands
// batches of parsed events to a Sink; the Postgres and DuckDB stores are the
// sinks, keeping materialized_accounts, materialized_opportunities and
// materialized_contacts (one column per canonical field, extras as JSON, and
// the envelope's provenance) and serving Query and Count over them. Their
// schemas come from versioned migrations embedded in the binary.
//
// Contract and invariants. A batch is committed in one transaction and its
// messages are acknowledged only after the commit; the stores are rebuildable
// from the stream, so Apply is idempotent and safe to re-run over the whole
// stream. An event never overwrites a row whose (source_updated_at,
// mapping_version) is newer than its own; equal versions overwrite when the
// content differs. Deletes keep a tombstone row (deleted, fields cleared)
// that leaves the views and stops older upserts from resurrecting the
// record. Every query is scoped to one tenant, and tenant_id leads every key
// and index. In Postgres the scope is enforced as well: row-level security
// on every tenant table lets a transaction see and write only the rows of
// the tenant it was scoped to (a query missing its WHERE tenant_id cannot
// cross tenants, and an unscoped one sees nothing); tenant work runs as a
// role the policies bind, and only migrations and the rebuild's DDL take the
// admin path (tenancy.go). DuckDB has no row-level security: there the WHERE
// of each query is the only guard. A message that is not a valid canonical event, or that a sink
// rejects as bad data, goes to the DLQ (dlq.<tenant>.validation or
// dlq.<tenant>.sink-<name>, with the reason in headers) and is terminated;
// any other sink failure is retried with backoff, and a message that failed
// MaxDeliver-1 times is dead-lettered. Several Subscribers on one durable
// share its work; Run returns nil when its context is cancelled, after
// finishing the batch in hand and handing buffered messages back. Both
// stores render rows identically: decimals as normalised strings ("1234.5"),
// percentages as JSON numbers, dates YYYY-MM-DD, timestamps RFC 3339 UTC.
package subscriber
