// Package pgsource is the Postgres source connector (system "postgres"):
// it reads tables of an operator's database and hands their rows to the
// Runner like any CRM connector, so each table is mapped by a mapping of
// system postgres whose object is the table's object name (the table name
// without schema unless the connection names it). The folder is pgsource,
// not postgres, so the source is never confused with subscriber's Postgres
// store. In cdc mode (the default) it takes a consistent snapshot of each
// table and then streams changes by logical replication (pgoutput protocol
// 1 through jackc/pglogrepl), deletes included; in poll mode it reads rows
// whose poll column moved, for databases where replication is not allowed.
//
// Config keys: tables (required: names, optionally schema-qualified SQL
// identifiers, or objects {table, object, entity}), mode (cdc | poll),
// publication and slot (cdc; default autonomos_<connection id>; created
// when missing, the publication with publish = insert, update, delete),
// poll_column (default updated_at), deleted_column (poll mode: a boolean
// soft-delete column), poll_interval (how long a caught-up Fetch keeps
// waiting for new changes before it reports More=false; default 0),
// page_size (default 1000); secret dsn (a URL or key=value string). The
// factory validates them without contacting the database, naming
// config.<key> or secrets.<key> and never quoting the DSN. Check verifies
// up front what the mode needs and says what to grant: wal_level =
// logical, the REPLICATION attribute, the publication (or the right to
// create or extend it), SELECT on each table, primary keys, a replica
// identity that gives deleted keys, a free replication slot.
//
// Records: column name → value; primary key columns as their text (the
// canonical id), other values decoded from Postgres's text form the same
// way whichever path read them: booleans, integers (int64), floats,
// numeric as an exact json.Number, timestamptz as RFC 3339 in UTC,
// timestamp as ISO text without zone, json as parsed JSON, everything else
// as Postgres prints it. A delete carries the key and, when the table has
// the poll column, the deleting transaction's commit time in it, so the
// delete orders after the row's last version.
//
// Cursor (opaque to the Runner, compact JSON, version 1): snapshot
// {phase, slot, segs [{from, lsn}], after}: the last primary key read and
// the snapshot LSN each key range was read at; stream {phase, slot, lsn, n}:
// every change of the table committed below lsn, and the first n changes of
// the transaction committed at lsn, have been emitted; poll {phase, at,
// key}: the last row's poll column and key, read next with
// WHERE (col, pk) > ($1, $2) ORDER BY col, pk LIMIT page_size.
//
// Snapshot → stream, with no gap and no duplicate: the slot is created
// with an exported snapshot (CREATE_REPLICATION_SLOT ... LOGICAL pgoutput
// (SNAPSHOT 'export')), imported by a REPEATABLE READ transaction (SET
// TRANSACTION SNAPSHOT) that reads the table in primary-key chunks; that
// snapshot holds exactly the transactions committed before the slot's
// consistent point, and the slot streams exactly those committed after, so
// the table's stream starts at that LSN. A snapshot interrupted by a
// restart resumes after the last stored key at a new exported snapshot (a
// temporary slot's) and records it as a new segment: a change committed
// before a key range's snapshot LSN is skipped for rows of that range,
// because that range's rows already show it (deletes excepted: a process
// killed mid-snapshot may have published rows past its checkpoint). A
// table added later, or whose cursors were reset, is snapshotted the same
// way while the others keep streaming.
//
// Position and WAL: a table's pages carry the LSN of their last change; the
// Runner stores a cursor only after JetStream acknowledged the page, and
// hands it to the next Fetch, which is when the connector confirms it to
// the server (standby status update, flush = the lowest stored position of
// all the connection's tables, once it has seen each of them), so the slot
// releases WAL only up to acknowledged events — at the latest one sync
// later. A restart resumes from the slot: the server re-sends from the
// confirmed position and changes at or before the stored cursor are
// skipped. While streaming, status updates go out every 10 s and whenever
// the server asks, well inside wal_sender_timeout. A dropped or recreated
// slot, a dropped publication or a table removed from it is a
// *connectors.PermanentError saying what was lost and what to do (reset
// the cursors), never a silent skip or a crash loop.
//
// Pages and the end of a sync: the replication stream never ends, so a
// pass over a table stops (More=false) once it has received everything
// committed before the pass began (the server's flush LSN then) and, with
// poll_interval, nothing more came for that long; a sync job thus ends and
// the next scheduled sync resumes from the slot. A stream page holds up to
// page_size records and is returned within 100 ms of its first record, or
// as soon as the stream is quiet for 10 ms. The stream is read for one
// table at a time (the Runner's order); moving to the next table restarts
// the stream at that table's position, and other tables' changes are left
// for their own pass. Relation messages give the column names and types:
// a column added, dropped or retyped at the source changes the records'
// fields (and is logged), which the schema observer sees in RAW. TRUNCATE
// is not propagated (logged). Unchanged TOASTed values are read from the
// table.
//
// Contract: see Connector for sessions, Close and concurrency. Fetch
// retries connection failures itself (1 s, 1 s, 2 s, 4 s ... about 45 s)
// and returns ctx's error within moments of its end, holding no goroutine
// after it returned. Poll mode cannot see hard deletes (deleted_column
// turns soft deletes into deletes), skips rows whose poll column is null,
// and, like any stamp-based poll, misses a row whose transaction commits
// after rows stamped later were read; use cdc where exactness matters.
package pgsource
