package subscriber

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/shopspring/decimal"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/autonomos/autonomos/canonical"
)

// DuckDB is the DuckDB store: materialized tables in one database file,
// written through DuckDB's appender and read by the views. DuckDB allows one
// writer, so writes are serialised inside the store on one connection, which
// holds the staging tables; reads run concurrently on others. It is safe for
// concurrent use.
type DuckDB struct {
	connector *duckdb.Connector
	db        *sql.DB
	write     sync.Mutex // guards w
	w         *sql.Conn  // the writer, with a staging and a winners temp table per entity
	rebuildMu sync.Mutex // one rebuild at a time (rebuild.go)
	// conflictSkip counts the batches left that go the general way after a
	// plain insert met a stored key (see Apply); guarded by write.
	conflictSkip int
	// stagedOnly sends every plain insert through the staging table, as
	// before appendDirect (tests compare the two).
	stagedOnly bool
}

// checkpointThreshold is the WAL size at which a commit checkpoints the
// database into its file. DuckDB's default, 16 MB, made the single writer
// stop for a checkpoint of the growing tables every few thousand events:
// at 256 MB a million-row load ran 30–40% faster, at the cost of up to ~2 s
// of WAL replay when the process was killed (a clean Close checkpoints).
// But committed rows not yet checkpointed stay in DuckDB's memory, so under
// a memory_limit the threshold is a quarter of the limit (checkpointFor):
// at 32 MiB with 256 MB the inserts failed out of memory after 300,000
// rows, at a quarter they did not. See docs/OPERATIONS.md, "Memory".
const checkpointThreshold = 256 << 20

// checkpointFor is the checkpoint threshold under a memory limit of limit
// bytes (0: none).
func checkpointFor(limit int64) int64 {
	if limit <= 0 {
		return checkpointThreshold
	}
	return min(limit/4, checkpointThreshold)
}

// OpenDuckDB opens (or creates) the database file at path and brings its
// schema up to date, so a data dir written by an older binary opens with a
// newer one.
func OpenDuckDB(path string) (*DuckDB, error) {
	c, err := duckdb.NewConnector(path, nil)
	if err != nil {
		return nil, fmt.Errorf("duckdb %s: %w", path, err)
	}
	d := &DuckDB{connector: c, db: sql.OpenDB(c)}
	ctx := context.Background()
	if _, err := d.db.ExecContext(ctx, fmt.Sprintf("SET GLOBAL checkpoint_threshold = '%d bytes'", checkpointThreshold)); err != nil {
		d.Close()
		return nil, fmt.Errorf("duckdb %s: checkpoint_threshold: %w", path, err)
	}
	if err := d.migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	if d.w, err = d.db.Conn(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("duckdb %s: %w", path, err)
	}
	for _, t := range tables {
		for _, q := range []string{t.duck.staging, t.duck.winners} {
			if _, err := d.w.ExecContext(ctx, q); err != nil {
				d.Close()
				return nil, fmt.Errorf("duckdb staging: %w", err)
			}
		}
	}
	return d, nil
}

// SetMemoryLimit sets DuckDB's memory_limit for the whole database: the
// buffer pool holding table and index blocks (evicted to the file beyond
// it) and query operators (spilled to temporary files), and the checkpoint
// threshold that fits it (checkpointFor). 0 leaves DuckDB's default, 80% of
// the machine's memory.
func (d *DuckDB) SetMemoryLimit(ctx context.Context, bytes int64) error {
	if bytes <= 0 {
		return nil
	}
	if _, err := d.db.ExecContext(ctx, fmt.Sprintf("SET GLOBAL memory_limit = '%d bytes'", bytes)); err != nil {
		return fmt.Errorf("duckdb memory_limit: %w", err)
	}
	if _, err := d.db.ExecContext(ctx, fmt.Sprintf("SET GLOBAL checkpoint_threshold = '%d bytes'", checkpointFor(bytes))); err != nil {
		return fmt.Errorf("duckdb checkpoint_threshold: %w", err)
	}
	return nil
}

func (d *DuckDB) migrate(ctx context.Context) error {
	all, err := migrationsFor("duckdb")
	if err != nil {
		return err
	}
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
	d.write.Lock()
	defer d.write.Unlock()
	var errs []error
	if d.w != nil {
		errs = append(errs, d.w.Close())
		d.w = nil
	}
	return errors.Join(append(errs, d.db.Close(), d.connector.Close())...)
}

// Apply upserts a batch atomically (one transaction, one commit), with the
// version rule of the Postgres store.
//
// A batch is first tried as if all its keys were new (the plain path): per
// table, DuckDB's appender writes the rows straight into the materialized
// table with typed values (appendDirect), with no staging table, casts or
// statement; a table whose values the appender cannot write exactly as the
// SQL casts store them (see directValues) goes through the staging table
// and a plain INSERT ... SELECT instead. Either way a stored key (or a key
// twice in the batch, or a NOT NULL) fails the insert without ON CONFLICT,
// which costs DuckDB a few milliseconds a statement whatever the batch's
// size, most of a small batch's time.
//
// When the plain path meets a stored key, the transaction is rolled back and
// the batch applied again the general way, which the next conflictProbe
// batches then take at once (a stream of updates pays for one failed try in
// conflictProbe+1 batches): per table, the rows go through the appender into
// the staging table; rows with new keys are inserted through the primary
// key index (ON CONFLICT DO NOTHING), and only when some keys were already
// stored are the newer versions among them found (a join over the key,
// version and hash columns) and swapped in by delete and insert.
func (d *DuckDB) Apply(ctx context.Context, events []*canonical.Event) error {
	if len(events) == 0 {
		return nil
	}
	groups, err := prepare(events)
	if err != nil {
		return err
	}
	staged := make([]*staged, len(groups))
	for i, g := range groups {
		if staged[i], err = stage(g); err != nil {
			return err
		}
	}
	d.write.Lock()
	defer d.write.Unlock()
	if d.w == nil {
		return errors.New("duckdb: store is closed")
	}
	plain := d.conflictSkip == 0
	if !plain {
		d.conflictSkip--
	}
	err = d.applyStaged(ctx, staged, plain)
	if plain && errors.Is(err, errKeyStored) {
		d.conflictSkip = conflictProbe
		err = d.applyStaged(ctx, staged, false)
	}
	return err
}

// conflictProbe is how many batches go the general way after a plain insert
// met a stored key.
const conflictProbe = 16

// errKeyStored: a plain insert met a key already stored.
var errKeyStored = errors.New("a key of the batch is stored already")

// applyStaged writes staged tables in one transaction on the writer; plain
// inserts new keys without ON CONFLICT (see Apply). The caller holds d.write.
func (d *DuckDB) applyStaged(ctx context.Context, staged []*staged, plain bool) (err error) {
	if _, err := d.w.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("duckdb begin: %w", err)
	}
	defer func() {
		if err != nil {
			// Leave the writer outside any transaction.
			d.w.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	for _, st := range staged {
		if err := d.merge(ctx, d.w, st, plain); err != nil {
			if errors.Is(err, errKeyStored) {
				return err
			}
			return classifyDuck(err)
		}
	}
	if _, err := d.w.ExecContext(ctx, "COMMIT"); err != nil {
		return classifyDuck(fmt.Errorf("duckdb commit: %w", err))
	}
	return nil
}

// merge writes st in the transaction open on w; plain: new keys only,
// without ON CONFLICT (errKeyStored when one is stored), appended directly
// when directValues allows, else staged. The general way always stages.
func (d *DuckDB) merge(ctx context.Context, w *sql.Conn, st *staged, plain bool) error {
	if plain && !d.stagedOnly {
		// Typed on the plain path only: the general way stages.
		if rows := directValues(st); rows != nil {
			return appendDirect(ctx, w, st, rows)
		}
	}
	q := st.t.duck
	exec := func(stmt string) (int64, error) {
		res, err := w.ExecContext(ctx, stmt)
		if err != nil {
			return 0, fmt.Errorf("duckdb upsert %s: %w", st.t.name, err)
		}
		return res.RowsAffected()
	}
	if _, err := exec(q.clear); err != nil {
		return err
	}
	err := w.Raw(func(dc any) error {
		a, err := duckdb.NewAppender(dc.(driver.Conn), "temp", "main", "staged_"+st.t.entity.Plural())
		if err != nil {
			return fmt.Errorf("duckdb appender %s: %w", st.t.name, err)
		}
		row := make([]driver.Value, len(st.cols))
		for i := range st.n {
			for ci, c := range st.t.cols {
				col := &st.cols[ci]
				switch c.kind {
				case kindInteger, kindHash:
					row[ci] = nil
					if col.valid[i] {
						row[ci] = col.i64[i]
					}
				case kindTime:
					row[ci] = col.tim[i]
				case kindInt32:
					row[ci] = col.i32[i]
				case kindBool:
					row[ci] = col.bln[i]
				default:
					row[ci] = nil
					if col.valid[i] {
						row[ci] = col.str[i]
					}
				}
			}
			if err := a.AppendRow(row...); err != nil {
				a.Close()
				return fmt.Errorf("duckdb append %s: %w", st.t.name, err)
			}
		}
		if err := a.CloseWithCancel(ctx); err != nil {
			return fmt.Errorf("duckdb stage %s: %w", st.t.name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if plain {
		_, err := exec(q.insertPlain[narrow(st)])
		if de := (*duckdb.Error)(nil); errors.As(err, &de) && de.Type == duckdb.ErrorTypeConstraint {
			// A stored key, or a NOT NULL the general way meets again.
			return fmt.Errorf("%w: %w", errKeyStored, err)
		}
		return err
	}
	inserted, err := exec(q.insertNew[narrow(st)])
	if err != nil || inserted == int64(st.n) {
		return err
	}
	// Some keys were stored already: swap in the newer versions.
	winners, err := exec(q.pickWinner)
	if err != nil || winners == 0 {
		return err
	}
	if _, err := exec(q.deleteOld); err != nil {
		return err
	}
	if _, err = exec(q.insertWin[narrow(st)]); err != nil {
		return err
	}
	_, err = exec(q.clearWin)
	return err
}

// narrow indexes duckSQL's insert pairs.
func narrow(st *staged) int {
	if st.narrow {
		return 1
	}
	return 0
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

// appendDirect appends st's rows straight into the materialized table in
// the transaction open on w: the plain insert without staging table, casts
// or statements. created_at and updated_at are left to their DEFAULT,
// current_timestamp, the transaction's start, as the SQL path writes them.
// DuckDB's appender reports a stored key (or one twice in the batch, or a
// NOT NULL) as an untyped error when it flushes, so any failure of the
// append is errKeyStored: the general way then meets the same rows again
// and reports what is really wrong with them.
func appendDirect(ctx context.Context, w *sql.Conn, st *staged, rows []driver.Value) error {
	nc := len(st.t.cols)
	err := w.Raw(func(dc any) error {
		a, err := duckdb.NewAppenderWithColumns(dc.(driver.Conn), "", "main", st.t.name, st.t.colNames)
		if err != nil {
			return err
		}
		for i := range st.n {
			if err := a.AppendRow(rows[i*nc : (i+1)*nc]...); err != nil {
				a.Close()
				return err
			}
		}
		return a.CloseWithCancel(ctx)
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("duckdb append %s: %w", st.t.name, err)
	}
	return fmt.Errorf("%w: duckdb append %s: %w", errKeyStored, st.t.name, err)
}

// directValues are st's rows as appendDirect writes them, typed as the
// table's columns: decimals as their unscaled integers (int64, or *big.Int
// beyond it), percentages as int32, dates as midnight UTC, extras as JSON
// text. nil when a value would not be stored exactly as the SQL casts of
// the staged text store it (a decimal CAST would round or reject, extras
// the appender would re-escape): the batch then takes the staging table.
func directValues(st *staged) []driver.Value {
	nc := len(st.t.cols)
	out := make([]driver.Value, st.n*nc)
	for ci, c := range st.t.cols {
		col := &st.cols[ci]
		for i := range st.n {
			v := &out[i*nc+ci]
			switch c.kind {
			case kindInteger, kindHash:
				if col.valid[i] {
					*v = col.i64[i]
				}
			case kindTime:
				*v = col.tim[i]
			case kindInt32:
				*v = col.i32[i]
			case kindBool:
				*v = col.bln[i]
			case kindText:
				if col.valid[i] {
					*v = col.str[i]
				}
			case kindJSON:
				if !col.valid[i] || remarshalChanges(col.str[i]) {
					return nil
				}
				// json.Marshal only reads it: no copy.
				*v = json.RawMessage(unsafe.Slice(unsafe.StringData(col.str[i]), len(col.str[i])))
			default:
				if !col.valid[i] {
					continue
				}
				x, ok := typedValue(c.kind, fieldValue(st.events[i], c.name, st.t.key))
				if !ok {
					return nil
				}
				*v = x
			}
		}
	}
	return out
}

// remarshalChanges reports whether json.Marshal would write the compact
// JSON text s otherwise: it escapes <, > and &, and U+2028 and U+2029 (which
// appendJSON escapes already), where CAST(s AS JSON) keeps the text as it is.
func remarshalChanges(s string) bool {
	return strings.IndexAny(s, "<>&") >= 0 || strings.Contains(s, "\u2028") || strings.Contains(s, "\u2029")
}

// typedValue is a decimal, percentage or date field's value as the
// appender writes it into its DECIMAL(38,9), DECIMAL(7,4) or DATE column;
// false when CAST of its text would not store exactly that.
func typedValue(k kind, v any) (driver.Value, bool) {
	switch k {
	case kindDecimal:
		if d, ok := v.(decimal.Decimal); ok {
			return unscaled(d, canonical.MoneyScale, canonical.MoneyPrecision)
		}
	case kindPercent:
		if p, ok := v.(canonical.Percent); ok {
			u, ok := unscaled(p.Decimal, canonical.PercentScale, 7) // DECIMAL(7,4)
			if n, isInt := u.(int64); ok && isInt {
				return int32(n), true
			}
		}
	case kindDate:
		if d, ok := v.(canonical.Date); ok {
			t := d.Time()
			if t.Location() == time.UTC && t.Equal(t.Truncate(24*time.Hour)) {
				return t, true
			}
		}
	}
	return nil, false
}

// unscaled is d·10^scale, as int64 when it fits, else *big.Int, when d has
// at most scale digits after the point and precision-scale before it (what
// CAST to DECIMAL(precision, scale) stores without rounding or refusing).
func unscaled(d decimal.Decimal, scale, precision int) (driver.Value, bool) {
	i, f := canonical.DecimalDigits(d)
	if f > scale || i > precision-scale {
		return nil, false
	}
	if d.Sign() == 0 {
		return int64(0), true // whatever its exponent: BigInt would expand it
	}
	if d.NumDigits() <= 18 && i+scale <= 18 { // int64 throughout: no big.Int
		c, e := d.CoefficientInt64(), int(d.Exponent())+scale
		for ; e > 0; e-- {
			c *= 10
		}
		for ; e < 0; e++ {
			c /= 10 // drops a trailing zero: f ≤ scale
		}
		return c, true
	}
	c := d.Shift(int32(scale)).BigInt() // exact: f ≤ scale
	if c.IsInt64() {
		return c.Int64(), true
	}
	return c, true
}
