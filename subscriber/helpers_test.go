package subscriber_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/subscriber"
	"github.com/autonomos/autonomos/subscriber/subscribertest"
)

// store is what the tests use of both stores.
type store interface {
	subscriber.Sink
	Query(ctx context.Context, q canonical.ViewQuery) (canonical.ViewPage, error)
	Count(ctx context.Context, tenant string, e canonical.Entity) (int64, error)
	Ping(ctx context.Context) error
	Close() error
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openPostgres(t testing.TB) *subscriber.Postgres {
	t.Helper()
	url := subscribertest.PostgresURL(t)
	p, err := subscriber.OpenPostgres(testCtx(t), url)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func openDuckDB(t testing.TB) *subscriber.DuckDB {
	t.Helper()
	d, err := subscriber.OpenDuckDB(filepath.Join(t.TempDir(), "test.duckdb"))
	if err != nil {
		t.Fatalf("OpenDuckDB: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// bothStores opens a fresh Postgres schema and a fresh DuckDB file.
func bothStores(t testing.TB) []store {
	t.Helper()
	return []store{openPostgres(t), openDuckDB(t)}
}

var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func dec(s string) *decimal.Decimal {
	d := decimal.RequireFromString(s)
	return &d
}

func pct(s string) *canonical.Percent {
	return &canonical.Percent{Decimal: decimal.RequireFromString(s)}
}

func date(s string) *canonical.Date {
	d, err := canonical.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return &d
}

// event wraps a record in an envelope and sends it through the wire format
// (MarshalJSON, ParseEvent), as the subscriber receives it.
func event(t testing.TB, tenant string, op canonical.Op, rec canonical.Record, at time.Time, mv int) *canonical.Event {
	t.Helper()
	ev := &canonical.Event{
		Tenant: tenant, Op: op, ConnectionID: "conn-1", SourceSystem: "filesource", SourceObject: "csv",
		Time: at, TraceID: "0123456789abcdef0123456789abcdef", MappingVersion: mv, Record: rec,
	}
	ev.ID = canonical.EventID(tenant, ev.SourceSystem, rec.Entity(), rec.Key(), fmt.Sprintf("%s/%d", at.Format(time.RFC3339Nano), mv), op)
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatalf("marshal %s: %v", rec.Key(), err)
	}
	out, err := canonical.ParseEvent(b)
	if err != nil {
		t.Fatalf("parse %s: %v", rec.Key(), err)
	}
	return out
}

func upsert(t testing.TB, tenant string, rec canonical.Record, at time.Time, mv int) *canonical.Event {
	t.Helper()
	return event(t, tenant, canonical.OpUpsert, rec, at, mv)
}

func deletion(t testing.TB, tenant string, e canonical.Entity, id string, at time.Time, mv int) *canonical.Event {
	t.Helper()
	rec, _ := canonical.NewRecord(e)
	if err := rec.Set(e.KeyField(), id); err != nil {
		t.Fatal(err)
	}
	return event(t, tenant, canonical.OpDelete, rec, at, mv)
}

func opp(id, name string) *canonical.Opportunity {
	return &canonical.Opportunity{OpportunityID: id, Name: name}
}

// all reads every row of a tenant's entity through Query, following cursors.
func all(t testing.TB, s store, tenant string, e canonical.Entity, limit int, filters ...canonical.Filter) []map[string]any {
	t.Helper()
	var rows []map[string]any
	q := canonical.ViewQuery{Tenant: tenant, Entity: e, Limit: limit, Filters: filters}
	for range 10_000 {
		page, err := s.Query(testCtx(t), q)
		if err != nil {
			t.Fatalf("%s: query %+v: %v", s.Name(), q, err)
		}
		rows = append(rows, page.Rows...)
		if page.NextCursor == "" {
			return rows
		}
		if q.After, err = canonical.DecodeCursor(page.NextCursor); err != nil {
			t.Fatalf("%s: cursor: %v", s.Name(), err)
		}
	}
	t.Fatalf("%s: paging did not end", s.Name())
	return nil
}

func get(t testing.TB, s store, tenant string, e canonical.Entity, id string) map[string]any {
	t.Helper()
	rows := all(t, s, tenant, e, 10, canonical.Filter{Column: e.KeyField(), Value: id})
	switch len(rows) {
	case 0:
		return nil
	case 1:
		return rows[0]
	}
	t.Fatalf("%s: %d rows for %s %s", s.Name(), len(rows), e, id)
	return nil
}

func apply(t testing.TB, s store, events ...*canonical.Event) {
	t.Helper()
	if err := s.Apply(testCtx(t), events); err != nil {
		t.Fatalf("%s: Apply: %v", s.Name(), err)
	}
}

func count(t testing.TB, s store, tenant string, e canonical.Entity) int64 {
	t.Helper()
	n, err := s.Count(testCtx(t), tenant, e)
	if err != nil {
		t.Fatalf("%s: Count: %v", s.Name(), err)
	}
	return n
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withoutStoreTimes drops created_at and updated_at: they are when each store
// wrote the row, so they legitimately differ between stores.
func withoutStoreTimes(rows []map[string]any) []map[string]any {
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		c := make(map[string]any, len(r))
		for k, v := range r {
			if k != "created_at" && k != "updated_at" {
				c[k] = v
			}
		}
		out[i] = c
	}
	return out
}
