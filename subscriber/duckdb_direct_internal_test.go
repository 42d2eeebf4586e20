package subscriber

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/autonomos/autonomos/canonical"
)

// TestDuckDBDirectAppendStoresAsSQL applies the same batches to two DuckDB
// stores, one of them sending every plain insert through the staging table
// and the SQL casts (stagedOnly), and compares every column of every table
// as text: the appender's typed values (decimals at and beyond the
// DECIMAL(18,9) boundary, percentages, dates, extras, NULLs, tombstones)
// must store exactly what the casts store, and a batch the appender cannot
// write exactly, or one meeting a stored key, must end alike (the same rows,
// the same kind of error).
func TestDuckDBDirectAppendStoresAsSQL(t *testing.T) {
	ctx := context.Background()
	open := func(name string) *DuckDB {
		d, err := OpenDuckDB(filepath.Join(t.TempDir(), name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	direct, sqlPath := open("direct.duckdb"), open("staged.duckdb")
	sqlPath.stagedOnly = true

	t0 := time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.UTC)
	seq := 0
	ev := func(op canonical.Op, rec canonical.Record, at time.Time) *canonical.Event {
		seq++
		return &canonical.Event{ID: fmt.Sprintf("ev-%d", seq), Tenant: "acme", Op: op, ConnectionID: "conn", SourceSystem: "salesforce",
			SourceObject: "Opportunity", Time: at, MappingVersion: 1, Record: rec}
	}
	dp := func(s string) *decimal.Decimal { d := decimal.RequireFromString(s); return &d }
	pp := func(s string) *canonical.Percent { return &canonical.Percent{Decimal: decimal.RequireFromString(s)} }
	dt := func(s string) *canonical.Date {
		d, err := canonical.ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return &d
	}
	str := func(s string) *string { return &s }
	i64 := func(n int64) *int64 { return &n }
	oppN := 0
	opp := func(amount, prob, close string, extras map[string]any) *canonical.Opportunity {
		oppN++
		o := &canonical.Opportunity{OpportunityID: fmt.Sprintf("O-%03d", oppN), Name: "Deal — ünïcode ✓", Extras: extras}
		if amount != "" {
			o.Amount = dp(amount)
		}
		if prob != "" {
			o.Probability = pp(prob)
		}
		if close != "" {
			o.CloseDate = dt(close)
		}
		return o
	}
	nested := map[string]any{"n": json.Number("1.50"), "e": json.Number("1e3"), "s": "tab\there \"q\" \\ é 😀 \u2028",
		"b": true, "z": nil, "list": []any{json.Number("-0"), "x", map[string]any{"k": false}}}

	type batch struct {
		name   string
		direct bool // every table of the batch takes the direct path
		events []*canonical.Event
	}
	var batches []batch
	add := func(name string, direct bool, evs ...*canonical.Event) {
		batches = append(batches, batch{name, direct, evs})
	}
	add("decimals, percents, dates, extras, NULLs", true,
		ev(canonical.OpUpsert, opp("0", "0", "2024-02-29", nil), t0),
		ev(canonical.OpUpsert, opp("1", "100", "0001-01-01", map[string]any{}), t0),
		ev(canonical.OpUpsert, opp("-1.5", "65.5", "9999-12-31", nested), t0),
		ev(canonical.OpUpsert, opp("999999999.999999999", "12.3456", "1969-12-31", nil), t0),
		ev(canonical.OpUpsert, opp("-999999999.999999999", "0.0001", "1970-01-01", nil), t0),
		ev(canonical.OpUpsert, opp("1000000000", "99.9999", "1900-03-01", nil), t0),
		ev(canonical.OpUpsert, opp("0.000000001", "1.10", "2000-01-01", nil), t0),
		ev(canonical.OpUpsert, opp("1234567890123.5", "", "", nil), t0),
		ev(canonical.OpUpsert, opp("9223372036.854775807", "", "", nil), t0),  // int64's largest, unscaled
		ev(canonical.OpUpsert, opp("9223372036.854775808", "", "", nil), t0),  // one beyond
		ev(canonical.OpUpsert, opp("-9223372036.854775808", "", "", nil), t0), // int64's smallest
		ev(canonical.OpUpsert, opp("123456789012345678.9", "", "", nil), t0),
		ev(canonical.OpUpsert, opp("99999999999999999999999999999.999999999", "", "", nil), t0),
		ev(canonical.OpUpsert, opp("-99999999999999999999999999999.999999999", "", "", nil), t0),
		ev(canonical.OpUpsert, opp("", "", "", nil), t0),
		ev(canonical.OpUpsert, &canonical.Opportunity{OpportunityID: "O-X", Name: "exponents", Amount: func() *decimal.Decimal {
			d := decimal.New(12, 3) // 12e3
			return &d
		}(), Probability: &canonical.Percent{Decimal: decimal.New(5000000, -5)}}, t0), // 50.00000
		ev(canonical.OpUpsert, &canonical.Opportunity{OpportunityID: "O-Y", Name: "trailing zeros", Amount: func() *decimal.Decimal {
			d := decimal.New(1500000000000, -12) // 1.500000000000
			return &d
		}()}, t0),
		ev(canonical.OpUpsert, &canonical.Account{AccountID: "A-1", Name: "Acme", AnnualRevenue: dp("5000000.25"), EmployeeCount: i64(-7), Website: str("")}, t0),
		ev(canonical.OpUpsert, &canonical.Account{AccountID: "A-2", Name: "Nulls"}, t0),
		ev(canonical.OpUpsert, &canonical.Contact{ContactID: "C-1", FirstName: str("Ada"), Email: str("ada@example.com")}, t0),
		// Two versions of one key: the batch keeps the newer.
		ev(canonical.OpUpsert, &canonical.Contact{ContactID: "C-2", FirstName: str("old")}, t0),
		ev(canonical.OpUpsert, &canonical.Contact{ContactID: "C-2", FirstName: str("new")}, t0.Add(time.Second)),
		// Tombstones of keys never stored.
		ev(canonical.OpDelete, &canonical.Opportunity{OpportunityID: "O-DEL"}, t0),
		ev(canonical.OpDelete, &canonical.Account{AccountID: "A-DEL"}, t0),
	)
	add("a decimal CAST rounds (more than 9 decimals)", false,
		ev(canonical.OpUpsert, opp("1.0000000005", "", "", nil), t0),
		ev(canonical.OpUpsert, opp("2", "", "", nil), t0))
	add("a percent CAST rounds (more than 4 decimals)", false,
		ev(canonical.OpUpsert, opp("", "12.34565", "", nil), t0),
		ev(canonical.OpUpsert, opp("", "1", "", nil), t0))
	add("a percent beyond DECIMAL(7,4)", false,
		ev(canonical.OpUpsert, opp("", "1000", "", nil), t0))
	add("a decimal beyond DECIMAL(38,9)", false,
		ev(canonical.OpUpsert, opp("100000000000000000000000000000", "", "", nil), t0))
	add("extras the appender would escape", false,
		ev(canonical.OpUpsert, opp("3", "", "", map[string]any{"html": "<b>Procter & Gamble</b>"}), t0))
	add("new keys and a stored one", false,
		ev(canonical.OpUpsert, opp("4", "", "", nil), t0),
		ev(canonical.OpUpsert, &canonical.Opportunity{OpportunityID: "O-001", Name: "updated", Amount: dp("7.25")}, t0.Add(time.Minute)),
		ev(canonical.OpDelete, &canonical.Account{AccountID: "A-1"}, t0.Add(time.Minute)))
	add("new keys after the general way", true,
		ev(canonical.OpUpsert, opp("5", "5", "2025-01-01", nil), t0))

	for _, b := range batches {
		groups, err := prepare(b.events)
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		if b.direct {
			for _, g := range groups {
				st, err := stage(g)
				if err != nil {
					t.Fatal(err)
				}
				if directValues(st) == nil {
					t.Fatalf("%s: %s would not take the direct path", b.name, g.t.name)
				}
			}
		}
		// The general way after a stored key is a matter of conflictSkip;
		// start every batch on the plain path.
		direct.conflictSkip, sqlPath.conflictSkip = 0, 0
		errD, errS := direct.Apply(ctx, b.events), sqlPath.Apply(ctx, b.events)
		var pD, pS *PermanentError
		if (errD == nil) != (errS == nil) || errors.As(errD, &pD) != errors.As(errS, &pS) {
			t.Errorf("%s: direct store: %v; staged store: %v", b.name, errD, errS)
		}
		compareDuckStores(t, b.name, direct, sqlPath)
	}
	if t.Failed() {
		return
	}
	// Every batch must have written something, and the stored key taken its
	// newer version in both.
	var amount string
	if err := direct.db.QueryRow(`SELECT CAST(amount AS VARCHAR) FROM materialized_opportunities WHERE opportunity_id = 'O-001'`).Scan(&amount); err != nil || amount != "7.250000000" {
		t.Errorf("O-001's amount = %q, %v; want the update's 7.250000000", amount, err)
	}
	// created_at and updated_at are the transaction's current_timestamp,
	// alike in the rows of one batch, as the SQL path writes them.
	var distinct, unequal int
	if err := direct.db.QueryRow(`SELECT count(DISTINCT created_at), count(*) FILTER (WHERE created_at <> updated_at)
		FROM materialized_opportunities WHERE opportunity_id IN ('O-002', 'O-003', 'O-DEL')`).Scan(&distinct, &unequal); err != nil || distinct != 1 || unequal != 0 {
		t.Errorf("created_at of one batch: %d distinct, %d unlike updated_at (%v); want 1 and 0", distinct, unequal, err)
	}
}

// compareDuckStores compares every materialized table of two stores,
// every column as text but created_at and updated_at (when each store wrote
// the row), which are checked for NULLs only.
func compareDuckStores(t *testing.T, name string, a, b *DuckDB) {
	t.Helper()
	for _, tb := range tables {
		cols := make([]string, 0, len(tb.cols)+2)
		for _, c := range tb.cols {
			cols = append(cols, "CAST("+c.name+" AS VARCHAR)")
		}
		cols = append(cols, "CAST(created_at IS NULL OR updated_at IS NULL AS VARCHAR)")
		q := fmt.Sprintf("SELECT %s FROM %s ORDER BY tenant_id, %s", strings.Join(cols, ", "), tb.name, tb.key)
		ra, rb := dumpRows(t, a.db, q, len(cols)), dumpRows(t, b.db, q, len(cols))
		if !slices.Equal(ra, rb) {
			t.Errorf("%s: %s differs:\ndirect: %s\nstaged: %s", name, tb.name, strings.Join(ra, "\n        "), strings.Join(rb, "\n        "))
		}
	}
}

func dumpRows(t *testing.T, db *sql.DB, q string, n int) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	vals := make([]sql.NullString, n)
	dest := make([]any, n)
	for i := range vals {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, n)
		for i, v := range vals {
			parts[i] = "NULL"
			if v.Valid {
				parts[i] = fmt.Sprintf("%q", v.String)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
