package subscriber

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/autonomos/autonomos/canonical"
)

// kind is how a column is written, cast and read.
type kind int

const (
	kindText    kind = iota // strings of every flavour (text, currency, email, url)
	kindDecimal             // DECIMAL(38,9), written and read as a decimal string
	kindPercent             // DECIMAL(7,4), written as a string, read as a JSON number
	kindInteger             // BIGINT
	kindDate                // DATE, written as YYYY-MM-DD
	kindJSON                // extras: JSONB in Postgres, JSON in DuckDB
	kindTime                // TIMESTAMPTZ
	kindInt32               // INT (mapping_version)
	kindBool                // BOOLEAN (deleted)
	kindHash                // BIGINT content_hash
)

func kindOf(t canonical.FieldType) kind {
	switch t {
	case canonical.TypeDecimal:
		return kindDecimal
	case canonical.TypePercent:
		return kindPercent
	case canonical.TypeInteger:
		return kindInteger
	case canonical.TypeDate:
		return kindDate
	}
	return kindText
}

type column struct {
	name string
	kind kind
}

// table describes the materialized table of one entity. Tables are built once
// from canonical.SchemaOf and never change.
type table struct {
	entity   canonical.Entity
	name     string   // materialized_<plural>
	key      string   // <entity>_id
	cols     []column // written columns, in order: tenant_id, the fields, extras, provenance, deleted, content_hash
	colNames []string // the names of cols
	nField   int      // cols[1 : 1+nField] are the canonical fields
	// Statements built from the columns.
	pgUpsert   string  // Postgres: the whole batch in one statement
	duck       duckSQL // DuckDB: the staged merge, in steps
	selectList string  // view rows, shared by both stores
}

// Provenance columns written after the fields and extras.
var provenance = []column{
	{"source_system", kindText},
	{"source_object", kindText},
	{"connection_id", kindText},
	{"source_updated_at", kindTime},
	{"mapping_version", kindInt32},
	{"event_id", kindText},
	{"deleted", kindBool},
	{"content_hash", kindHash},
}

// tables are the materialized tables in canonical.Entities order.
var tables = func() []*table {
	var out []*table
	for _, e := range canonical.Entities {
		s, _ := canonical.SchemaOf(e)
		t := &table{entity: e, name: "materialized_" + e.Plural(), key: e.KeyField(), nField: len(s.Fields)}
		t.cols = append(t.cols, column{"tenant_id", kindText})
		for _, f := range s.Fields {
			t.cols = append(t.cols, column{f.Name, kindOf(f.Type)})
		}
		t.cols = append(t.cols, column{"extras", kindJSON})
		t.cols = append(t.cols, provenance...)
		for _, c := range t.cols {
			t.colNames = append(t.colNames, c.name)
		}
		t.pgUpsert = t.pgUpsertSQL()
		t.duck = t.duckSQL()
		t.selectList = t.selectSQL()
		out = append(out, t)
	}
	return out
}()

func tableOf(e canonical.Entity) (*table, bool) {
	for _, t := range tables {
		if t.entity == e {
			return t, true
		}
	}
	return nil, false
}

func tableIndex(e canonical.Entity) int {
	for i, t := range tables {
		if t.entity == e {
			return i
		}
	}
	return -1
}

type dialect int

const (
	pgDialect dialect = iota
	duckDialect
	// duckNarrowDialect is DuckDB for a batch whose decimals all fit
	// DECIMAL(18,9) exactly (see duckSQL).
	duckNarrowDialect
)

func (t *table) names() string { return strings.Join(t.colNames, ", ") }

// casts lists the staged columns of alias s cast to the table's types.
func (t *table) casts(d dialect, s string) string {
	parts := make([]string, len(t.cols))
	for i, c := range t.cols {
		parts[i] = castExpr(d, s+"."+c.name, c.kind)
	}
	return strings.Join(parts, ", ")
}

// newer is the version rule as SQL: the row of alias s replaces the row of
// alias t when its (source_updated_at, mapping_version) is newer, or equal
// and its content differs (re-derivation). An equal version with equal
// content is left alone, so replays write nothing.
func newerSQL(s, t string) string {
	return fmt.Sprintf("(%[1]s.source_updated_at > %[2]s.source_updated_at"+
		" OR (%[1]s.source_updated_at = %[2]s.source_updated_at AND %[1]s.mapping_version > %[2]s.mapping_version)"+
		" OR (%[1]s.source_updated_at = %[2]s.source_updated_at AND %[1]s.mapping_version = %[2]s.mapping_version"+
		" AND %[1]s.content_hash IS DISTINCT FROM %[2]s.content_hash))", s, t)
}

// pgUpsertSQL is the Postgres merge of a whole batch: rows come from
// unnest($1::text[], ...), one array per column, and ON CONFLICT ... DO
// UPDATE ... WHERE applies the version rule.
func (t *table) pgUpsertSQL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s, created_at, updated_at)\nSELECT %s, now(), now()\nFROM unnest(", t.name, t.names(), t.casts(pgDialect, "s"))
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d::%s[]", i+1, pgArrayType(c.kind))
	}
	fmt.Fprintf(&b, ") AS s(%s)\nON CONFLICT (tenant_id, %s) DO UPDATE SET ", t.names(), t.key)
	var sets []string
	for _, c := range t.cols[1:] {
		if c.name != t.key {
			sets = append(sets, c.name+" = excluded."+c.name)
		}
	}
	sets = append(sets, "updated_at = excluded.updated_at")
	b.WriteString(strings.Join(sets, ", "))
	b.WriteString("\nWHERE " + newerSQL("excluded", t.name))
	return b.String()
}

// duckSQL are the DuckDB statements of one table's merge. DuckDB plans
// INSERT ... ON CONFLICT DO UPDATE as a join over the whole table followed
// by in-place column updates, which costs about a second per 1,000 random
// updates at a million rows; so the merge inserts new keys through the
// primary key index, and replaces newer versions of stored rows by delete
// and insert (cheap in a column store), scanning only narrow columns.
//
// DuckDB parses text into DECIMAL(38,9) about fifty times slower than into
// DECIMAL(18,9) (10 µs a value: the 128-bit path), which made that one cast
// most of a batch's cost. So each insert comes twice: one for batches whose
// decimals all fit DECIMAL(18,9) exactly (staged.narrow), cast through it, and
// one for the rest.
//
// The common case, a batch of new keys only, uses none of these: its rows
// are appended to the table itself with typed values (DuckDB.appendDirect).
// insertPlain serves the plain path only for tables the appender cannot
// write exactly (see directValues); the rest serve the general way.
type duckSQL struct {
	staging     string    // CREATE TEMP TABLE of the staged rows
	winners     string    // CREATE TEMP TABLE of staged rows that replace stored ones
	clear       string    // empties the staging table (the winners table is emptied after each use)
	clearWin    string    // empties the winners table
	insertNew   [2]string // INSERT ... ON CONFLICT DO NOTHING: rows with new keys; [narrow]
	insertPlain [2]string // INSERT of staged rows all of whose keys are new; [narrow]
	pickWinner  string    // staged rows newer than the stored row of their key
	deleteOld   string    // the stored rows being replaced
	insertWin   [2]string // their replacements, keeping created_at; [narrow]
}

func (t *table) duckSQL() duckSQL {
	var defs []string
	for _, c := range t.cols {
		defs = append(defs, c.name+" "+duckStagedType(c.kind))
	}
	st, win := "staged_"+t.entity.Plural(), "winners_"+t.entity.Plural()
	on := fmt.Sprintf("t.tenant_id = s.tenant_id AND t.%[1]s = s.%[1]s", t.key)
	var insertNew, insertPlain, insertWin [2]string
	for i, d := range []dialect{duckDialect, duckNarrowDialect} {
		insertPlain[i] = fmt.Sprintf("INSERT INTO %s (%s, created_at, updated_at) SELECT %s, current_timestamp, current_timestamp FROM %s AS s",
			t.name, t.names(), t.casts(d, "s"), st)
		insertNew[i] = insertPlain[i] + " ON CONFLICT DO NOTHING"
		insertWin[i] = fmt.Sprintf("INSERT INTO %s (%s, created_at, updated_at) SELECT %s, s.old_created_at, current_timestamp FROM %s AS s",
			t.name, t.names(), t.casts(d, "s"), win)
	}
	return duckSQL{
		staging:   fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s (%s)", st, strings.Join(defs, ", ")),
		winners:   fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s (%s, old_rowid BIGINT, old_created_at TIMESTAMPTZ)", win, strings.Join(defs, ", ")),
		clear:     "DELETE FROM " + st,
		clearWin:  "DELETE FROM " + win,
		insertNew: insertNew, insertPlain: insertPlain,
		pickWinner: fmt.Sprintf("INSERT INTO %s SELECT s.*, t.rowid, t.created_at FROM %s AS s JOIN %s AS t ON %s WHERE %s",
			win, st, t.name, on, newerSQL("s", "t")),
		deleteOld: fmt.Sprintf("DELETE FROM %s WHERE rowid IN (SELECT old_rowid FROM %s)", t.name, win),
		insertWin: insertWin,
	}
}

func duckStagedType(k kind) string {
	switch k {
	case kindInteger, kindHash:
		return "BIGINT"
	case kindTime:
		return "TIMESTAMPTZ"
	case kindInt32:
		return "INTEGER"
	case kindBool:
		return "BOOLEAN"
	}
	return "VARCHAR"
}

// castExpr turns a staged value (text for decimals, dates and JSON) into the
// column's type.
func castExpr(d dialect, expr string, k kind) string {
	switch k {
	case kindDecimal:
		if d == duckNarrowDialect {
			return "CAST(CAST(" + expr + " AS DECIMAL(18,9)) AS DECIMAL(38,9))"
		}
		return "CAST(" + expr + " AS DECIMAL(38,9))"
	case kindPercent:
		return "CAST(" + expr + " AS DECIMAL(7,4))"
	case kindDate:
		return "CAST(" + expr + " AS DATE)"
	case kindJSON:
		if d == pgDialect {
			return "CAST(" + expr + " AS JSONB)"
		}
		return "CAST(" + expr + " AS JSON)"
	}
	return expr
}

func pgArrayType(k kind) string {
	switch k {
	case kindInteger, kindHash:
		return "int8"
	case kindTime:
		return "timestamptz"
	case kindInt32:
		return "int4"
	case kindBool:
		return "bool"
	}
	return "text"
}

// selectSQL lists the columns a view row is read from; decimals and JSON are
// read as text so that both stores hand the same strings to render.
func (t *table) selectSQL() string {
	var parts []string
	for _, c := range t.viewCols() {
		switch c.kind {
		case kindDecimal, kindPercent, kindJSON:
			parts = append(parts, "CAST("+c.name+" AS VARCHAR)")
		default:
			parts = append(parts, c.name)
		}
	}
	return strings.Join(parts, ", ")
}

// viewCols are the columns of a view row: the fields, extras, then the meta
// columns of canonical.MetaColumns.
func (t *table) viewCols() []column {
	cols := slices.Clone(t.cols[1 : 1+t.nField+1])
	for _, m := range canonical.MetaColumns {
		k := kindText
		if strings.HasSuffix(m, "_at") {
			k = kindTime
		}
		cols = append(cols, column{m, k})
	}
	return cols
}

// filterable reports the kind of a column a view may be filtered by: a
// canonical field or one of the filterable meta columns.
func (t *table) filterable(name string) (kind, bool) {
	for _, c := range t.cols[1 : 1+t.nField] {
		if c.name == name {
			return c.kind, true
		}
	}
	if name == "source_system" || name == "event_id" {
		return kindText, true
	}
	return 0, false
}

// errNoMatch says a filter value cannot equal any stored value (an amount
// that is not a number, say): the page is empty.
var errNoMatch = errors.New("no row can match")

// viewSQL builds the query of one page. Column names come only from the
// table's schema; every value is a parameter ($n, understood by both stores).
func (t *table) viewSQL(q canonical.ViewQuery) (string, []any, error) {
	args := []any{q.Tenant}
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s FROM %s WHERE tenant_id = $1 AND NOT deleted", t.selectList, t.name)
	if q.After != "" {
		args = append(args, q.After)
		fmt.Fprintf(&b, " AND %s > $%d", t.key, len(args))
	}
	for _, f := range q.Filters {
		k, ok := t.filterable(f.Column)
		if !ok {
			return "", nil, &canonical.FieldError{Field: f.Column, Reason: fmt.Sprintf("not a filterable column of %s", t.entity.Plural())}
		}
		if f.Value == "" {
			fmt.Fprintf(&b, " AND %s IS NULL", f.Column)
			continue
		}
		v, err := filterValue(k, f.Value)
		if err != nil {
			return "", nil, err
		}
		args = append(args, v)
		switch k {
		case kindInteger:
			fmt.Fprintf(&b, " AND %s = $%d", f.Column, len(args))
		case kindText:
			fmt.Fprintf(&b, " AND %s = $%d", f.Column, len(args))
		default:
			fmt.Fprintf(&b, " AND %s = %s", f.Column, castExpr(pgDialect, fmt.Sprintf("CAST($%d AS VARCHAR)", len(args)), k))
		}
	}
	args = append(args, int64(limitOf(q)+1))
	fmt.Fprintf(&b, " ORDER BY %s LIMIT $%d", t.key, len(args))
	return b.String(), args, nil
}

func limitOf(q canonical.ViewQuery) int {
	switch {
	case q.Limit <= 0:
		return canonical.DefaultViewLimit
	case q.Limit > canonical.MaxViewLimit:
		return canonical.MaxViewLimit
	}
	return q.Limit
}

// filterValue brings a filter value to the column's canonical form, so that
// comparing it with the stored value is comparing the two renderings of a
// view row: ?amount=100.50 matches the amount rendered "100.5", and
// ?close_date=2024-01-31 the date rendered so.
func filterValue(k kind, v string) (any, error) {
	switch k {
	case kindDecimal, kindPercent:
		d, err := decimal.NewFromString(v)
		if err != nil {
			return nil, errNoMatch
		}
		scale, intDigits := int32(canonical.MoneyScale), canonical.MoneyPrecision-canonical.MoneyScale
		if k == kindPercent {
			scale, intDigits = 4, 3
		}
		if !d.Equal(d.Truncate(scale)) || len(d.Abs().Truncate(0).String()) > intDigits {
			return nil, errNoMatch
		}
		return d.String(), nil
	case kindInteger:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, errNoMatch
		}
		return n, nil
	case kindDate:
		d, err := canonical.ParseDate(v)
		if err != nil || d.String() != v {
			return nil, errNoMatch
		}
		return v, nil
	}
	return v, nil
}

// scanner is what pgx.Rows and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

// rowReader scans view rows of one table and renders them. Both stores scan
// into the same database/sql null types, so the rendering is shared.
type rowReader struct {
	cols []column
	dest []any
	str  []sql.NullString
	num  []sql.NullInt64
	tim  []sql.NullTime
}

func newRowReader(t *table) *rowReader {
	cols := t.viewCols()
	r := &rowReader{cols: cols, dest: make([]any, len(cols)),
		str: make([]sql.NullString, len(cols)), num: make([]sql.NullInt64, len(cols)), tim: make([]sql.NullTime, len(cols))}
	for i, c := range cols {
		switch c.kind {
		case kindInteger:
			r.dest[i] = &r.num[i]
		case kindDate, kindTime:
			r.dest[i] = &r.tim[i]
		default:
			r.dest[i] = &r.str[i]
		}
	}
	return r
}

// read scans the current row and renders it as a view row: canonical fields
// by name (decimals as normalised strings, percentages as JSON numbers, dates
// YYYY-MM-DD, missing values nil), extras as an object, timestamps RFC 3339
// in UTC. It also returns the row's key.
func (r *rowReader) read(s scanner, key string) (map[string]any, string, error) {
	if err := s.Scan(r.dest...); err != nil {
		return nil, "", err
	}
	row := make(map[string]any, len(r.cols))
	var k string
	for i, c := range r.cols {
		var v any
		switch c.kind {
		case kindInteger:
			if r.num[i].Valid {
				v = r.num[i].Int64
			}
		case kindDate:
			if r.tim[i].Valid {
				v = r.tim[i].Time.Format(time.DateOnly)
			}
		case kindTime:
			if r.tim[i].Valid {
				v = r.tim[i].Time.UTC().Format(time.RFC3339Nano)
			}
		case kindDecimal, kindPercent:
			if r.str[i].Valid {
				d, err := decimal.NewFromString(r.str[i].String)
				if err != nil {
					return nil, "", fmt.Errorf("column %s: %w", c.name, err)
				}
				if c.kind == kindPercent {
					v = json.Number(d.String())
				} else {
					v = d.String()
				}
			}
		case kindJSON:
			m := map[string]any{}
			if r.str[i].Valid && r.str[i].String != "" {
				dec := json.NewDecoder(strings.NewReader(r.str[i].String))
				dec.UseNumber()
				var x any
				if err := dec.Decode(&x); err != nil {
					return nil, "", fmt.Errorf("column %s: %w", c.name, err)
				}
				if obj, ok := normaliseJSON(x).(map[string]any); ok {
					m = obj
				}
			}
			v = m
		default:
			if r.str[i].Valid {
				v = r.str[i].String
			}
		}
		row[c.name] = v
		if c.name == key {
			k, _ = v.(string)
		}
	}
	return row, k, nil
}

// normaliseJSON renders every number of a decoded JSON value the way decimals
// are rendered (1.50 → 1.5, 1e3 → 1000), since Postgres' JSONB keeps numbers
// as NUMERIC and DuckDB's JSON keeps the text as written.
func normaliseJSON(x any) any {
	switch v := x.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = normaliseJSON(e)
		}
	case []any:
		for i, e := range v {
			v[i] = normaliseJSON(e)
		}
	case json.Number:
		if d, err := decimal.NewFromString(string(v)); err == nil {
			return json.Number(d.String())
		}
	}
	return x
}

// group is the reduced batch rows of one table.
type group struct {
	t      *table
	events []*canonical.Event
}

// prepare reduces a batch to the newest event per (tenant, entity, key) —
// newest by (source time, mapping version), the later one in the batch on a
// tie — checks that every event can be stored, and groups the survivors by
// table in canonical.Entities order. A set-based upsert may not touch one row
// twice, hence the reduction.
func prepare(events []*canonical.Event) ([]group, error) {
	type rk struct {
		tenant string
		entity canonical.Entity
		key    string
	}
	best := make(map[rk]int, len(events))
	for i, ev := range events {
		if err := storable(ev); err != nil {
			return nil, &PermanentError{Event: ev, Err: err}
		}
		k := rk{ev.Tenant, ev.Entity(), ev.Record.Key()}
		if j, ok := best[k]; !ok || !newer(events[j], ev) {
			best[k] = i
		}
	}
	groups := make([]group, len(tables))
	for i, t := range tables {
		groups[i].t = t
	}
	for i, ev := range events {
		if best[rk{ev.Tenant, ev.Entity(), ev.Record.Key()}] != i {
			continue
		}
		g := &groups[tableIndex(ev.Entity())]
		g.events = append(g.events, ev)
	}
	out := groups[:0]
	for _, g := range groups {
		if len(g.events) > 0 {
			out = append(out, g)
		}
	}
	return out, nil
}

// newer reports whether a is strictly newer than b.
func newer(a, b *canonical.Event) bool {
	if c := storedTime(a.Time).Compare(storedTime(b.Time)); c != 0 {
		return c > 0
	}
	return a.MappingVersion > b.MappingVersion
}

// storedTime is t as both stores keep it: UTC, microseconds.
func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// storable rejects what one of the stores could not hold, in both stores
// alike so that they never disagree: NUL characters (Postgres text and JSONB
// refuse them), years before 1 or after 9999, mapping versions beyond INT.
func storable(ev *canonical.Event) error {
	if _, ok := tableOf(ev.Entity()); !ok {
		return fmt.Errorf("unknown entity %q", ev.Entity())
	}
	if y := ev.Time.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("time: year %d out of range", y)
	}
	if ev.MappingVersion < 0 || ev.MappingVersion > 1<<31-1 {
		return fmt.Errorf("mapping version %d out of range", ev.MappingVersion)
	}
	for _, s := range []string{ev.Tenant, ev.SourceSystem, ev.SourceObject, ev.ConnectionID, ev.ID} {
		if strings.IndexByte(s, 0) >= 0 {
			return errors.New("NUL character in an attribute")
		}
	}
	if ev.Op == canonical.OpDelete {
		if strings.IndexByte(ev.Record.Key(), 0) >= 0 {
			return errors.New("NUL character in the key")
		}
		return nil
	}
	s, _ := canonical.SchemaOf(ev.Entity())
	for _, f := range s.Fields {
		switch v := ev.Record.Value(f.Name).(type) {
		case string:
			if strings.IndexByte(v, 0) >= 0 {
				return fmt.Errorf("%s: NUL character", f.Name)
			}
		case canonical.Date:
			if y := v.Time().Year(); y < 1 || y > 9999 {
				return fmt.Errorf("%s: year %d out of range", f.Name, y)
			}
		}
	}
	if x := ev.Record.ExtraFields(); len(x) > 0 && hasNUL(x) {
		return errors.New("extras: NUL character")
	}
	return nil
}

func hasNUL(x any) bool {
	switch v := x.(type) {
	case string:
		return strings.IndexByte(v, 0) >= 0
	case map[string]any:
		for k, e := range v {
			if strings.IndexByte(k, 0) >= 0 || hasNUL(e) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(v, hasNUL)
	}
	return false
}
