package subscriber

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/autonomos/autonomos/canonical"
)

// Postgres is the Postgres store: materialized tables written by set-based
// upserts and read by the views. It is safe for concurrent use. Every read
// and write is scoped to one tenant twice over: by its WHERE tenant_id and by
// row-level security (see tenancy.go).
type Postgres struct {
	pool     *pgxpool.Pool   // tenant work only, each transaction scoped; runs as role
	adminCfg *pgx.ConnConfig // the admin path: the URL's role, no tenant
	role     string          // AppRole, or "" when the URL's role is bound by the policies already
}

// OpenPostgres connects to url (a libpq URL or DSN; the tables live in the
// connection's search_path) and brings the schema up to date. Migrations run
// under an advisory lock, so several processes may start at once. When the
// URL's role bypasses row-level security (a superuser), the store creates
// AppRole if it is missing, grants it the tenant tables, and does all tenant
// work as AppRole.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "autonomos-subscriber"
	p := &Postgres{adminCfg: cfg.ConnConfig.Copy()}
	p.adminCfg.RuntimeParams["application_name"] = "autonomos-subscriber-admin"
	admin, err := p.connectAdmin(ctx)
	if err != nil {
		return nil, err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if p.role, err = tenantRole(ctx, admin); err != nil {
		return nil, err
	}
	if err := p.migrate(ctx, admin); err != nil {
		return nil, err
	}
	if p.role != "" {
		setRole := "SET ROLE " + pgx.Identifier{p.role}.Sanitize()
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, setRole)
			return err
		}
	}
	if p.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return p, nil
}

// migrate applies the pending migrations and the grants of tenant work, on
// the admin path.
func (p *Postgres) migrate(ctx context.Context, c *pgx.Conn) error {
	all, err := migrationsFor("postgres")
	if err != nil {
		return err
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	// One migrator at a time per schema; the lock ends with the transaction.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('autonomos.subscriber.migrate'), hashtext(coalesce(current_schema(), '')))`); err != nil {
		return fmt.Errorf("postgres migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INT PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres migrate: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("postgres migrate: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("postgres migrate: %w", err)
	}
	applied := map[int]bool{}
	for _, v := range versions {
		applied[int(v)] = true
	}
	for _, m := range pending(all, applied) {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("postgres migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return fmt.Errorf("postgres migration %s: %w", m.name, err)
		}
	}
	if p.role != "" {
		if err := grantTenantWork(ctx, tx, p.role); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres migrate: %w", err)
	}
	return nil
}

// Name is "postgres".
func (p *Postgres) Name() string { return "postgres" }

// Ping checks that the database answers.
func (p *Postgres) Ping(ctx context.Context) error {
	if err := p.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

// Apply upserts a batch atomically (one implicit transaction, one round trip:
// the statements are pipelined). An event never overwrites a row whose
// (source_updated_at, mapping_version) is newer than its own; equal versions
// overwrite when the content differs (re-derivation). Deletes write
// tombstones under the same rule. Events for the same key within a batch are
// reduced to the newest first. A batch mixing tenants is applied tenant by
// tenant, each scoped to its tenant, in the same transaction.
func (p *Postgres) Apply(ctx context.Context, events []*canonical.Event) error {
	if len(events) == 0 {
		return nil
	}
	groups, err := prepare(events)
	if err != nil {
		return err
	}
	return p.upsert(ctx, groups, func(t *table) *table { return t }, "postgres upsert")
}

// upsert writes prepared groups, each into the table into(g.t), in one
// pipelined implicit transaction: per tenant, scopeSQL and then its groups.
func (p *Postgres) upsert(ctx context.Context, groups []group, into func(*table) *table, what string) error {
	tgs := byTenant(groups)
	b := &pgx.Batch{}
	for _, tg := range tgs {
		b.Queue(scopeSQL, tg.tenant)
		for _, g := range tg.groups {
			args, err := pgColumns(g)
			if err != nil {
				return err
			}
			b.Queue(into(g.t).pgUpsert, args...)
		}
	}
	br := p.pool.SendBatch(ctx, b)
	for _, tg := range tgs {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return classifyPG(fmt.Errorf("%s: scope %s: %w", what, tg.tenant, err))
		}
		for _, g := range tg.groups {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return classifyPG(fmt.Errorf("%s %s: %w", what, into(g.t).name, err))
			}
		}
	}
	if err := br.Close(); err != nil {
		return classifyPG(fmt.Errorf("%s: commit: %w", what, err))
	}
	return nil
}

// scoped sends queries (statements queued on a batch by queue) in one
// pipelined implicit transaction scoped to tenant, and gives read their
// results in order.
func (p *Postgres) scoped(ctx context.Context, tenant string, queue func(*pgx.Batch), read func(pgx.BatchResults) error) error {
	if tenant == "" {
		return errNoTenant
	}
	b := &pgx.Batch{}
	b.Queue(scopeSQL, tenant)
	queue(b)
	br := p.pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return err
	}
	if err := read(br); err != nil {
		br.Close()
		return err
	}
	return br.Close()
}

// inTenant runs fn in a transaction scoped to tenant and commits it when fn
// returns nil. Statements of fn see and write only the tenant's rows, even
// ones that do not say WHERE tenant_id.
func (p *Postgres) inTenant(ctx context.Context, tenant string, fn func(pgx.Tx) error) error {
	if tenant == "" {
		return errNoTenant
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, scopeSQL, tenant); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// classifyPG marks data errors (SQLSTATE classes 22 and 23) permanent.
func classifyPG(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23")) {
		return &PermanentError{Err: err}
	}
	return err
}

// pgColumns turns a group's events into one array per column, the
// arguments of the unnest upsert. Columns that are never NULL go as plain
// slices, which pgx encodes without reflection.
func pgColumns(g group) ([]any, error) {
	st, err := stage(g)
	if err != nil {
		return nil, err
	}
	args := make([]any, len(g.t.cols))
	for ci, c := range g.t.cols {
		col := st.cols[ci]
		switch c.kind {
		case kindHash:
			args[ci] = col.i64
		case kindInteger:
			a := make(pgtype.FlatArray[pgtype.Int8], st.n)
			for i := range a {
				a[i] = pgtype.Int8{Int64: col.i64[i], Valid: col.valid[i]}
			}
			args[ci] = a
		case kindTime:
			args[ci] = col.tim
		case kindInt32:
			args[ci] = col.i32
		case kindBool:
			args[ci] = col.bln
		default:
			if ci <= 1 || ci > g.t.nField {
				args[ci] = col.str // tenant, key, extras, provenance: never NULL
				continue
			}
			a := make(pgtype.FlatArray[pgtype.Text], st.n)
			for i := range a {
				a[i] = pgtype.Text{String: col.str[i], Valid: col.valid[i]}
			}
			args[ci] = a
		}
	}
	return args, nil
}

// Query returns one page of a tenant's non-deleted rows, ordered by key.
func (p *Postgres) Query(ctx context.Context, q canonical.ViewQuery) (canonical.ViewPage, error) {
	t, ok := tableOf(q.Entity)
	if !ok {
		return canonical.ViewPage{}, fmt.Errorf("unknown entity %q", q.Entity)
	}
	query, args, err := t.viewSQL(q)
	if errors.Is(err, errNoMatch) {
		return canonical.ViewPage{Rows: []map[string]any{}}, nil
	}
	if err != nil {
		return canonical.ViewPage{}, err
	}
	var page canonical.ViewPage
	err = p.scoped(ctx, q.Tenant, func(b *pgx.Batch) { b.Queue(query, args...) }, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		if page, err = readPage(rows, t, limitOf(q), rows.Next); err != nil {
			return err
		}
		return rows.Err()
	})
	if err != nil {
		return canonical.ViewPage{}, fmt.Errorf("postgres query %s: %w", t.name, err)
	}
	return page, nil
}

// readPage reads up to limit+1 rows; the extra one only says a next page
// exists.
func readPage(s scanner, t *table, limit int, next func() bool) (canonical.ViewPage, error) {
	page := canonical.ViewPage{Rows: make([]map[string]any, 0, min(limit, 128))}
	r := newRowReader(t)
	var last string
	for next() {
		if len(page.Rows) == limit {
			page.NextCursor = canonical.EncodeCursor(last)
			break
		}
		row, key, err := r.read(s, t.key)
		if err != nil {
			return canonical.ViewPage{}, err
		}
		page.Rows = append(page.Rows, row)
		last = key
	}
	return page, nil
}

// Count returns the number of a tenant's non-deleted rows of an entity.
func (p *Postgres) Count(ctx context.Context, tenant string, e canonical.Entity) (int64, error) {
	t, ok := tableOf(e)
	if !ok {
		return 0, fmt.Errorf("unknown entity %q", e)
	}
	var n int64
	err := p.scoped(ctx, tenant, func(b *pgx.Batch) {
		b.Queue("SELECT count(*) FROM "+t.name+" WHERE tenant_id = $1 AND NOT deleted", tenant)
	}, func(br pgx.BatchResults) error { return br.QueryRow().Scan(&n) })
	if err != nil {
		return 0, fmt.Errorf("postgres count %s: %w", t.name, err)
	}
	return n, nil
}
