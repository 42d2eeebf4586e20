package subscriber

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/autonomos/autonomos/canonical"
)

// duckStaging names the appender's staged rows in the DuckDB upsert.
const duckStaging = "staged"

// DuckDB is the DuckDB store: materialized tables in one database file,
// written through DuckDB's appender and read by the views. DuckDB allows one
// writer, so writes are serialised inside the store; reads run concurrently.
// It is safe for concurrent use.
type DuckDB struct {
	connector *duckdb.Connector
	db        *sql.DB
	write     sync.Mutex
	types     map[kind]duckdb.TypeInfo
}

// OpenDuckDB opens (or creates) the database file at path and brings its
// schema up to date, so a data dir written by an older binary opens with a
// newer one.
func OpenDuckDB(path string) (*DuckDB, error) {
	c, err := duckdb.NewConnector(path, nil)
	if err != nil {
		return nil, fmt.Errorf("duckdb %s: %w", path, err)
	}
	d := &DuckDB{connector: c, db: sql.OpenDB(c), types: map[kind]duckdb.TypeInfo{}}
	for k, t := range map[kind]duckdb.Type{
		kindText: duckdb.TYPE_VARCHAR, kindInteger: duckdb.TYPE_BIGINT, kindTime: duckdb.TYPE_TIMESTAMP_TZ,
		kindInt32: duckdb.TYPE_INTEGER, kindBool: duckdb.TYPE_BOOLEAN,
	} {
		ti, err := duckdb.NewTypeInfo(t)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("duckdb type: %w", err)
		}
		d.types[k] = ti
	}
	if err := d.migrate(context.Background()); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *DuckDB) migrate(ctx context.Context) error {
	all, err := migrationsFor("duckdb")
	if err != nil {
		return err
	}
	d.write.Lock()
	defer d.write.Unlock()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("duckdb migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)`); err != nil {
		return fmt.Errorf("duckdb migrate: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("duckdb migrate: %w", err)
	}
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("duckdb migrate: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("duckdb migrate: %w", err)
	}
	for _, m := range pending(all, applied) {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("duckdb migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return fmt.Errorf("duckdb migration %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("duckdb migrate: %w", err)
	}
	return nil
}

// Name is "duckdb".
func (d *DuckDB) Name() string { return "duckdb" }

// Ping checks that the database answers.
func (d *DuckDB) Ping(ctx context.Context) error {
	if err := d.db.PingContext(ctx); err != nil {
		return fmt.Errorf("duckdb: %w", err)
	}
	return nil
}

// Close closes the database (DuckDB checkpoints its WAL into the file).
func (d *DuckDB) Close() error {
	return errors.Join(d.db.Close(), d.connector.Close())
}

// Apply upserts a batch atomically (one transaction, one commit): each
// table's rows go through a query appender into a staged relation and one
// INSERT ... ON CONFLICT DO UPDATE ... WHERE merges them. The version rule is
// the Postgres store's.
func (d *DuckDB) Apply(ctx context.Context, events []*canonical.Event) (err error) {
	if len(events) == 0 {
		return nil
	}
	groups, err := prepare(events)
	if err != nil {
		return err
	}
	d.write.Lock()
	defer d.write.Unlock()
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("duckdb: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("duckdb begin: %w", err)
	}
	defer func() {
		if err != nil {
			// The connection goes back to the pool: leave it outside a transaction.
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	err = conn.Raw(func(dc any) error {
		for _, g := range groups {
			if err := d.appendGroup(ctx, dc.(driver.Conn), g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return classifyDuck(err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return classifyDuck(fmt.Errorf("duckdb commit: %w", err))
	}
	return nil
}

func (d *DuckDB) appendGroup(ctx context.Context, dc driver.Conn, g group) error {
	names := make([]string, len(g.t.cols))
	types := make([]duckdb.TypeInfo, len(g.t.cols))
	for i, c := range g.t.cols {
		names[i] = c.name
		k := c.kind
		switch k {
		case kindInteger, kindTime, kindInt32, kindBool:
		default:
			k = kindText
		}
		types[i] = d.types[k]
	}
	a, err := duckdb.NewQueryAppender(dc, g.t.duckUpsert, duckStaging, types, names)
	if err != nil {
		return fmt.Errorf("duckdb appender %s: %w", g.t.name, err)
	}
	row := make([]driver.Value, len(g.t.cols))
	for _, ev := range g.events {
		for i, c := range g.t.cols {
			switch c.kind {
			case kindInteger:
				if v, ok := fieldValue(ev, c.name, g.t.key).(int64); ok {
					row[i] = v
				} else {
					row[i] = nil
				}
			case kindTime:
				row[i] = storedTime(ev.Time)
			case kindInt32:
				row[i] = int32(ev.MappingVersion)
			case kindBool:
				row[i] = ev.Op == canonical.OpDelete
			default:
				s, ok, err := textValue(ev, c, g.t.key)
				if err != nil {
					a.Close()
					return err
				}
				if ok {
					row[i] = s
				} else {
					row[i] = nil
				}
			}
		}
		if err := a.AppendRow(row...); err != nil {
			a.Close()
			return fmt.Errorf("duckdb append %s: %w", g.t.name, err)
		}
	}
	if err := a.CloseWithCancel(ctx); err != nil {
		return fmt.Errorf("duckdb upsert %s: %w", g.t.name, err)
	}
	return nil
}

// classifyDuck marks data errors permanent.
func classifyDuck(err error) error {
	var de *duckdb.Error
	if errors.As(err, &de) {
		switch de.Type {
		case duckdb.ErrorTypeConversion, duckdb.ErrorTypeOutOfRange, duckdb.ErrorTypeDecimal,
			duckdb.ErrorTypeInvalidInput, duckdb.ErrorTypeConstraint, duckdb.ErrorTypeMismatchType:
			return &PermanentError{Err: err}
		}
	}
	return err
}

// Query returns one page of a tenant's non-deleted rows, ordered by key.
func (d *DuckDB) Query(ctx context.Context, q canonical.ViewQuery) (canonical.ViewPage, error) {
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
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return canonical.ViewPage{}, fmt.Errorf("duckdb query %s: %w", t.name, err)
	}
	defer rows.Close()
	page, err := readPage(rows, t, limitOf(q), rows.Next)
	if err != nil {
		return page, fmt.Errorf("duckdb query %s: %w", t.name, err)
	}
	if err := rows.Err(); err != nil {
		return canonical.ViewPage{}, fmt.Errorf("duckdb query %s: %w", t.name, err)
	}
	return page, nil
}

// Count returns the number of a tenant's non-deleted rows of an entity.
func (d *DuckDB) Count(ctx context.Context, tenant string, e canonical.Entity) (int64, error) {
	t, ok := tableOf(e)
	if !ok {
		return 0, fmt.Errorf("unknown entity %q", e)
	}
	var n int64
	if err := d.db.QueryRowContext(ctx, "SELECT count(*) FROM "+t.name+" WHERE tenant_id = $1 AND NOT deleted", tenant).Scan(&n); err != nil {
		return 0, fmt.Errorf("duckdb count %s: %w", t.name, err)
	}
	return n, nil
}
