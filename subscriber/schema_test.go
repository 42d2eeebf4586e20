package subscriber

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/subscriber/subscribertest"
)

// TestMigrationsMatchTheCanonicalModel guards against drift: every canonical
// field, and every column the stores write or read, exists in both stores'
// migrated tables with the promised type. A new canonical field needs a new
// migration.
func TestMigrationsMatchTheCanonicalModel(t *testing.T) {
	ctx := context.Background()
	pg, err := OpenPostgres(ctx, subscribertest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	duck, err := OpenDuckDB(filepath.Join(t.TempDir(), "schema.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()

	const q = `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position`
	columns := map[string]func(table string) map[string]string{
		"postgres": func(table string) map[string]string {
			rows, err := pg.pool.Query(ctx, q, table)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			got := map[string]string{}
			for rows.Next() {
				var a, b string
				if err := rows.Scan(&a, &b); err != nil {
					t.Fatal(err)
				}
				got[a] = b
			}
			return got
		},
		"duckdb": func(table string) map[string]string {
			rows, err := duck.db.QueryContext(ctx, q, table)
			if err != nil {
				t.Fatal(err)
			}
			return scanPairs(t, rows)
		},
	}
	want := map[kind][]string{ // accepted information_schema data types per store
		kindText:    {"text", "VARCHAR"},
		kindDecimal: {"numeric", "DECIMAL(38,9)"},
		kindPercent: {"numeric", "DECIMAL(7,4)"},
		kindInteger: {"bigint", "BIGINT"},
		kindDate:    {"date", "DATE"},
		kindJSON:    {"jsonb", "JSON"},
		kindTime:    {"timestamp with time zone", "TIMESTAMP WITH TIME ZONE"},
		kindInt32:   {"integer", "INTEGER"},
		kindBool:    {"boolean", "BOOLEAN"},
		kindHash:    {"bigint", "BIGINT"},
	}
	for store, cols := range columns {
		for _, tb := range tables {
			got := cols(tb.name)
			s, _ := canonical.SchemaOf(tb.entity)
			for _, f := range s.Fields {
				if _, ok := got[f.Name]; !ok {
					t.Errorf("%s.%s lacks canonical field %s", store, tb.name, f.Name)
				}
			}
			for _, c := range append(slices.Clone(tb.cols), column{"created_at", kindTime}, column{"updated_at", kindTime}) {
				if typ, ok := got[c.name]; !ok || !slices.Contains(want[c.kind], typ) {
					t.Errorf("%s.%s.%s: type %q, want one of %v", store, tb.name, c.name, typ, want[c.kind])
				}
			}
		}
	}
}

func scanPairs(t *testing.T, rows *sql.Rows) map[string]string {
	t.Helper()
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		got[a] = b
	}
	return got
}
