package pgsource

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// table is a configured table as the catalog describes it.
type table struct {
	Table
	found     bool
	oid       uint32
	schema    string
	name      string
	qname     string // "schema"."name", quoted for SQL
	kind      string // relkind: r table, p partitioned, v view, ...
	replIdent string // relreplident: d default, f full, i index, n nothing
	canSelect bool
	owned     bool // the role may alter it (add it to a publication)
	cols      []string
	colTypes  []string // format_type of each column
	colOIDs   []uint32 // base type of each column (domains resolved)
	rawOIDs   []uint32 // type of each column
	pk        []string // primary key columns, in key order
	pkTypes   []string
}

// col returns the index of a column, -1 when absent.
func (t *table) col(name string) int { return slices.Index(t.cols, name) }

// keyList is the primary key as a SQL list: "id" or "a", "b".
func (t *table) keyList() string {
	q := make([]string, len(t.pk))
	for i, c := range t.pk {
		q[i] = quoteIdent(c)
	}
	return strings.Join(q, ", ")
}

// keyParams is a row of parameters cast to the key's types, from $first.
func (t *table) keyParams(first int) string {
	q := make([]string, len(t.pk))
	for i := range t.pk {
		q[i] = fmt.Sprintf("$%d::%s", first+i, t.pkTypes[i])
	}
	return strings.Join(q, ", ")
}

const catalogSQL = `
SELECT t.ord::int, c.oid IS NOT NULL, coalesce(c.oid, 0)::int8, coalesce(n.nspname, ''), coalesce(c.relname, ''),
  coalesce(c.relkind::text, ''), coalesce(c.relreplident::text, ''),
  coalesce(has_table_privilege(c.oid, 'SELECT'), false),
  coalesce(pg_has_role(c.relowner, 'USAGE'), false),
  coalesce(array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), '{}'),
  coalesce(array(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), '{}'),
  coalesce(array(SELECT (CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END)::int8 FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), '{}'),
  coalesce(array(SELECT a.atttypid::int8 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), '{}'),
  coalesce(array(SELECT a.attname::text FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE i.indrelid = c.oid AND i.indisprimary ORDER BY k.ord), '{}')
FROM unnest($1::text[]) WITH ORDINALITY AS t(name, ord)
LEFT JOIN pg_class c ON c.oid = to_regclass(t.name)
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY t.ord`

// loadTables describes the configured tables (found false for a table the
// database does not have).
func loadTables(ctx context.Context, conn *pgx.Conn, cfg []Table) ([]*table, error) {
	names := make([]string, len(cfg))
	for i, t := range cfg {
		names[i] = t.Name
	}
	rows, err := conn.Query(ctx, catalogSQL, names)
	if err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	defer rows.Close()
	out := make([]*table, 0, len(cfg))
	for rows.Next() {
		var (
			ord           int
			oid           int64
			colOIDs, raw  []int64
			t             table
			kind, replIdn string
		)
		if err := rows.Scan(&ord, &t.found, &oid, &t.schema, &t.name, &kind, &replIdn, &t.canSelect, &t.owned,
			&t.cols, &t.colTypes, &colOIDs, &raw, &t.pk); err != nil {
			return nil, fmt.Errorf("read the catalog: %w", err)
		}
		t.Table = cfg[ord-1]
		t.oid, t.kind, t.replIdent = uint32(oid), kind, replIdn
		for i, o := range colOIDs {
			t.colOIDs = append(t.colOIDs, uint32(o))
			t.rawOIDs = append(t.rawOIDs, uint32(raw[i]))
		}
		t.qname = quoteIdent(t.schema) + "." + quoteIdent(t.name)
		for _, k := range t.pk {
			t.pkTypes = append(t.pkTypes, t.colTypes[t.col(k)])
		}
		out = append(out, &t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	return out, nil
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral quotes an SQL string literal (for the replication protocol's
// commands, which take no parameters).
func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
