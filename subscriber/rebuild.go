package subscriber

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// ReplayOptions select what Replay and Rebuild read from the CANONICAL
// stream: one tenant's events, of one entity or all.
type ReplayOptions struct {
	Tenant string           // required
	Entity canonical.Entity // "" for every entity
	// FromSeq and Since start the replay later (Replay only: a rebuild always
	// reads the whole history).
	FromSeq uint64
	Since   time.Time
	// BatchSize is the most events per Apply; default 1000.
	BatchSize int
}

func (o *ReplayOptions) filter() (string, error) {
	if !streams.ValidToken(o.Tenant) {
		return "", fmt.Errorf("tenant %q: want 1-64 of [a-z0-9_-]", o.Tenant)
	}
	if o.Entity == "" {
		return streams.CanonicalFilter(o.Tenant), nil
	}
	if _, ok := tableOf(o.Entity); !ok {
		return "", fmt.Errorf("entity %q: want account, opportunity or contact", o.Entity)
	}
	return streams.CanonicalSubject(o.Tenant, string(o.Entity))
}

// ReplayStats say what a replay read and applied.
type ReplayStats struct {
	Events  int    `json:"events"`   // events applied
	Skipped int    `json:"skipped"`  // messages that are not valid events, or that a store refuses for good (they are in the DLQ)
	LastSeq uint64 `json:"last_seq"` // stream sequence of the last message read (0: none)
}

// Replay re-applies the selected events of the CANONICAL stream to every
// sink through Apply, in batches, with a temporary ordered consumer (the
// durable consumers are untouched). Since Apply is idempotent and never lets
// an older version overwrite a newer one, a replay may run beside the live
// subscribers. It reads up to the last event stored when it started.
func Replay(ctx context.Context, js jetstream.JetStream, sinks []Sink, o ReplayOptions) (ReplayStats, error) {
	apply := make([]func(context.Context, []*canonical.Event) error, len(sinks))
	for i, s := range sinks {
		apply[i] = s.Apply
	}
	return scanApply(ctx, js, o, apply)
}

func scanApply(ctx context.Context, js jetstream.JetStream, o ReplayOptions, apply []func(context.Context, []*canonical.Event) error) (ReplayStats, error) {
	var st ReplayStats
	filter, err := o.filter()
	if err != nil {
		return st, err
	}
	n := o.BatchSize
	if n <= 0 {
		n = 1000
	}
	batch := make([]*canonical.Event, 0, n)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		for _, f := range apply {
			skipped, err := applyIsolating(ctx, f, batch)
			if err != nil {
				return err
			}
			st.Skipped += skipped
		}
		st.Events += len(batch)
		batch = batch[:0]
		return nil
	}
	last, err := streams.ScanStream(ctx, js, streams.StreamCanonical,
		streams.ScanOptions{Filters: []string{filter}, FromSeq: o.FromSeq, Since: o.Since},
		func(m jetstream.Msg) error {
			ev, err := canonical.ParseEvent(m.Data())
			if err != nil || ev.Tenant != o.Tenant {
				st.Skipped++
				return nil
			}
			batch = append(batch, ev)
			if len(batch) == n {
				return flush()
			}
			return nil
		})
	st.LastSeq = last
	if err != nil {
		return st, fmt.Errorf("replay %s: %w", filter, err)
	}
	if err := flush(); err != nil {
		return st, fmt.Errorf("replay %s: %w", filter, err)
	}
	return st, nil
}

// applyIsolating applies a batch; when a store refuses it for good, it
// applies the events one by one and skips (counts) the refused ones, which
// the live subscriber has dead-lettered.
func applyIsolating(ctx context.Context, apply func(context.Context, []*canonical.Event) error, batch []*canonical.Event) (int, error) {
	err := apply(ctx, batch)
	if err == nil || !IsPermanent(err) {
		return 0, err
	}
	skipped := 0
	for _, ev := range batch {
		if err := apply(ctx, []*canonical.Event{ev}); err != nil {
			if !IsPermanent(err) {
				return skipped, err
			}
			skipped++
		}
	}
	return skipped, nil
}

// Rebuildable is a store whose tables can be rebuilt beside the live ones;
// *Postgres and *DuckDB are.
type Rebuildable interface {
	Sink
	beginRebuild(ctx context.Context, tenant string, entities []canonical.Entity) (rebuildTarget, error)
}

var (
	_ Rebuildable = (*Postgres)(nil)
	_ Rebuildable = (*DuckDB)(nil)
)

// rebuildTarget is one store's rebuild in progress: fresh tables
// (materialized_<plural>__rebuild) filled by apply, swapped in by swap.
type rebuildTarget interface {
	apply(ctx context.Context, events []*canonical.Event) error
	// swap replaces the tenant's rows of the live tables with the rebuilt
	// ones in one transaction.
	swap(ctx context.Context) error
	// close drops the rebuild tables and releases the rebuild lock.
	close()
}

// RebuildStats say what a rebuild did.
type RebuildStats struct {
	Tenant   string   `json:"tenant"`
	Entities []string `json:"entities"`
	Stores   []string `json:"stores"`
	Events   int      `json:"events"`    // events read into the fresh tables
	Skipped  int      `json:"skipped"`   // messages skipped (invalid or refused; they are in the DLQ)
	CaughtUp int      `json:"caught_up"` // events stored during the rebuild, re-applied after the swap
	TookMS   int64    `json:"took_ms"`
}

// Rebuild rebuilds one tenant's materialized tables (of o.Entity, or all)
// in every store from the whole CANONICAL stream: it fills fresh tables
// beside the live ones, then per store replaces the tenant's live rows with
// the rebuilt ones in one transaction, so readers see either the old rows or
// the new ones, never a half-built table. Events stored after the rebuild
// began reading (which the live subscribers may have applied before the
// swap) are then re-applied to the live tables. One rebuild runs at a time
// per store (Postgres: per schema, across processes).
func Rebuild(ctx context.Context, js jetstream.JetStream, stores []Rebuildable, o ReplayOptions) (RebuildStats, error) {
	start := time.Now()
	st := RebuildStats{Tenant: o.Tenant}
	if o.FromSeq != 0 || !o.Since.IsZero() {
		return st, errors.New("rebuild reads the whole stream: --from-seq and --since do not apply")
	}
	if _, err := o.filter(); err != nil {
		return st, err
	}
	entities := canonical.Entities
	if o.Entity != "" {
		entities = []canonical.Entity{o.Entity}
	}
	for _, e := range entities {
		st.Entities = append(st.Entities, string(e))
	}
	var targets []rebuildTarget
	defer func() {
		for _, t := range targets {
			t.close()
		}
	}()
	for _, s := range stores {
		t, err := s.beginRebuild(ctx, o.Tenant, entities)
		if err != nil {
			return st, fmt.Errorf("rebuild %s: %w", s.Name(), err)
		}
		targets = append(targets, t)
		st.Stores = append(st.Stores, s.Name())
	}
	apply := make([]func(context.Context, []*canonical.Event) error, len(targets))
	for i, t := range targets {
		apply[i] = t.apply
	}
	rs, err := scanApply(ctx, js, o, apply)
	st.Events, st.Skipped = rs.Events, rs.Skipped
	if err != nil {
		return st, fmt.Errorf("rebuild: %w", err)
	}
	for i, t := range targets {
		if err := t.swap(ctx); err != nil {
			return st, fmt.Errorf("rebuild %s: swap: %w", stores[i].Name(), err)
		}
	}
	sinks := make([]Sink, len(stores))
	for i, s := range stores {
		sinks[i] = s
	}
	co := o
	co.FromSeq = rs.LastSeq + 1
	cs, err := Replay(ctx, js, sinks, co)
	st.CaughtUp = cs.Events
	st.TookMS = time.Since(start).Milliseconds()
	if err != nil {
		return st, fmt.Errorf("rebuild: catch up: %w", err)
	}
	return st, nil
}

// rebuildTableOf is t under its rebuild name, with its statements.
func rebuildTableOf(t *table) *table {
	r := *t
	r.name = t.name + "__rebuild"
	r.pgUpsert = r.pgUpsertSQL()
	r.duck = r.duckSQL()
	return &r
}

func rebuildTables(entities []canonical.Entity) map[canonical.Entity]*table {
	out := map[canonical.Entity]*table{}
	for _, e := range entities {
		t, _ := tableOf(e)
		out[e] = rebuildTableOf(t)
	}
	return out
}

// swapSQL moves a tenant's rebuilt rows into the live table ($1 = tenant).
func swapSQL(live, rebuilt *table) []string {
	cols := live.names() + ", created_at, updated_at"
	return []string{
		"DELETE FROM " + live.name + " WHERE tenant_id = $1",
		"INSERT INTO " + live.name + " (" + cols + ") SELECT " + cols + " FROM " + rebuilt.name + " WHERE tenant_id = $1",
	}
}

// --- Postgres ---

// pgRebuild keeps the rebuild's tables and lock on a connection of the admin
// path (DDL, no rows); the rows go through the tenant path, scoped to the
// rebuild's tenant, like every other write.
type pgRebuild struct {
	p      *Postgres
	conn   *pgx.Conn // the admin path; holds the session's advisory lock
	tenant string
	tables map[canonical.Entity]*table
}

func (p *Postgres) beginRebuild(ctx context.Context, tenant string, entities []canonical.Entity) (rebuildTarget, error) {
	c, err := p.connectAdmin(ctx)
	if err != nil {
		return nil, err
	}
	r := &pgRebuild{p: p, conn: c, tenant: tenant, tables: rebuildTables(entities)}
	if _, err := r.conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('autonomos.subscriber.rebuild'), hashtext(coalesce(current_schema(), '')))`); err != nil {
		c.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("postgres rebuild lock: %w", err)
	}
	for e, rt := range r.tables {
		live, _ := tableOf(e)
		for _, q := range []string{"DROP TABLE IF EXISTS " + rt.name, "CREATE TABLE " + rt.name + " (LIKE " + live.name + " INCLUDING ALL)"} {
			if _, err := r.conn.Exec(ctx, q); err != nil {
				r.close()
				return nil, fmt.Errorf("postgres rebuild table %s: %w", rt.name, err)
			}
		}
		// LIKE copies neither row-level security nor grants.
		if err := copySecurity(ctx, r.conn, rt.name, live.name, p.role); err != nil {
			r.close()
			return nil, fmt.Errorf("postgres rebuild table %s: %w", rt.name, err)
		}
	}
	return r, nil
}

func (r *pgRebuild) apply(ctx context.Context, events []*canonical.Event) error {
	groups, err := prepare(events)
	if err != nil {
		return err
	}
	return r.p.upsert(ctx, groups, func(t *table) *table { return r.tables[t.entity] }, "postgres rebuild upsert")
}

func (r *pgRebuild) swap(ctx context.Context) error {
	return r.p.inTenant(ctx, r.tenant, func(tx pgx.Tx) error {
		for e, rt := range r.tables {
			live, _ := tableOf(e)
			for _, q := range swapSQL(live, rt) {
				if _, err := tx.Exec(ctx, q, r.tenant); err != nil {
					return fmt.Errorf("postgres swap %s: %w", live.name, err)
				}
			}
		}
		return nil
	})
}

func (r *pgRebuild) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, rt := range r.tables {
		r.conn.Exec(ctx, "DROP TABLE IF EXISTS "+rt.name)
	}
	// Closing the session releases its advisory lock as well.
	r.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('autonomos.subscriber.rebuild'), hashtext(coalesce(current_schema(), '')))`)
	r.conn.Close(ctx)
}

// --- DuckDB ---

type duckRebuild struct {
	d      *DuckDB
	conn   *rebuildConn
	tenant string
	tables map[canonical.Entity]*table
}

func (d *DuckDB) beginRebuild(ctx context.Context, tenant string, entities []canonical.Entity) (rebuildTarget, error) {
	d.rebuildMu.Lock()
	c, err := d.db.Conn(ctx)
	if err != nil {
		d.rebuildMu.Unlock()
		return nil, fmt.Errorf("duckdb: %w", err)
	}
	r := &duckRebuild{d: d, conn: &rebuildConn{c}, tenant: tenant, tables: rebuildTables(entities)}
	for e, rt := range r.tables {
		live, _ := tableOf(e)
		var ddl string
		if err := c.QueryRowContext(ctx, `SELECT sql FROM duckdb_tables() WHERE table_name = $1 AND schema_name = current_schema()`, live.name).Scan(&ddl); err != nil {
			r.close()
			return nil, fmt.Errorf("duckdb rebuild: definition of %s: %w", live.name, err)
		}
		prefix := "CREATE TABLE " + live.name
		if !strings.HasPrefix(ddl, prefix) {
			r.close()
			return nil, fmt.Errorf("duckdb rebuild: unexpected definition of %s: %.60s", live.name, ddl)
		}
		ddl = "CREATE TABLE " + rt.name + strings.TrimPrefix(ddl, prefix)
		for _, q := range []string{"DROP TABLE IF EXISTS " + rt.name, ddl, rt.duck.staging, rt.duck.winners} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				r.close()
				return nil, fmt.Errorf("duckdb rebuild table %s: %w", rt.name, err)
			}
		}
	}
	return r, nil
}

func (r *duckRebuild) apply(ctx context.Context, events []*canonical.Event) (err error) {
	groups, err := prepare(events)
	if err != nil {
		return err
	}
	var all []*staged
	for _, g := range groups {
		g.t = r.tables[g.t.entity]
		st, err := stage(g)
		if err != nil {
			return err
		}
		all = append(all, st)
	}
	c := r.conn.c
	if _, err := c.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("duckdb begin: %w", err)
	}
	defer func() {
		if err != nil {
			c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	for _, st := range all {
		if err := r.d.merge(ctx, c, st, false); err != nil {
			return classifyDuck(err)
		}
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		return classifyDuck(fmt.Errorf("duckdb commit: %w", err))
	}
	return nil
}

// swap runs on the store's writer, so it is serialised with live batches.
func (r *duckRebuild) swap(ctx context.Context) (err error) {
	d := r.d
	d.write.Lock()
	defer d.write.Unlock()
	if d.w == nil {
		return errors.New("duckdb: store is closed")
	}
	if _, err := d.w.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("duckdb begin: %w", err)
	}
	defer func() {
		if err != nil {
			d.w.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	for e, rt := range r.tables {
		live, _ := tableOf(e)
		for _, q := range swapSQL(live, rt) {
			if _, err := d.w.ExecContext(ctx, q, r.tenant); err != nil {
				return fmt.Errorf("duckdb swap %s: %w", live.name, err)
			}
		}
	}
	if _, err := d.w.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("duckdb swap commit: %w", err)
	}
	return nil
}

func (r *duckRebuild) close() {
	ctx := context.Background()
	for _, rt := range r.tables {
		r.conn.c.ExecContext(ctx, "DROP TABLE IF EXISTS "+rt.name)
	}
	r.conn.c.Close()
	r.d.rebuildMu.Unlock()
}

// rebuildConn is the rebuild's own DuckDB connection, with its own staging
// temp tables (temp tables are per connection).
type rebuildConn struct{ c *sql.Conn }
