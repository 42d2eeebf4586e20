package pgsource_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/pgsource"
	"github.com/autonomos/autonomos/connectors/pgsource/pgsourcetest"
)

// A row reads the same from the snapshot and from the replication stream,
// type by type, and an update that leaves a TOASTed column alone still
// carries its value.
func TestValuesSameInSnapshotAndStream(t *testing.T) {
	src := cdcSource(t)
	for _, q := range []string{
		"CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0)",
		`CREATE TABLE typed (id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
			fnan double precision, n numeric(30,9), nnan numeric, ts timestamp, tstz timestamptz, d date, j json, jb jsonb, u uuid,
			arr text[], dom positive_int, by bytea, t text, big text, iv interval, nul text, updated_at timestamptz DEFAULT clock_timestamp())`,
		`INSERT INTO typed SELECT 1, true, 2, 4, 9007199254740993, 1.5, 2.25, 'NaN', 12345678901234567890.123456789, 'NaN',
			'2024-05-01 10:00:00.123456', '2024-05-01 12:00:00.5+02', '2024-05-01', '{"a": 1.10}', '{"b": [1, "x"]}',
			'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{a,"b c"}', 7, '\x0102', 'hello',
			(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) AS i), '1 day 02:00:00', NULL`,
	} {
		if err := src.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c, _ := newConnector(t, src, map[string]any{"tables": []any{"typed"}})
	recs, cur := drain(t, c, "typed", "")
	if len(recs) != 1 {
		t.Fatalf("snapshot: %d records", len(recs))
	}
	snap := recs[0].Values
	want := map[string]any{
		"id": "1", "b": true, "i2": int64(2), "i4": int64(4), "i8": int64(9007199254740993), "f4": 1.5, "f8": 2.25, "fnan": "NaN",
		"n": json.Number("12345678901234567890.123456789"), "nnan": "NaN", "ts": "2024-05-01T10:00:00.123456",
		"tstz": "2024-05-01T10:00:00.5Z", "d": "2024-05-01", "j": map[string]any{"a": json.Number("1.10")},
		"jb": map[string]any{"b": []any{json.Number("1"), "x"}}, "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"arr": `{a,"b c"}`, "dom": int64(7), "by": `\x0102`, "t": "hello", "iv": "1 day 02:00:00", "nul": nil,
	}
	for k, v := range want {
		if !reflect.DeepEqual(snap[k], v) {
			t.Errorf("%s = %#v, want %#v", k, snap[k], v)
		}
	}
	big, _ := snap["big"].(string)
	if len(big) != 400*32 {
		t.Errorf("big has %d characters, want %d", len(big), 400*32)
	}

	// The same row through the stream, then an update that leaves big
	// (TOASTed) alone.
	if err := src.Exec("INSERT INTO typed SELECT 2, b, i2, i4, i8, f4, f8, fnan, n, nnan, ts, tstz, d, j, jb, u, arr, dom, by, t, big, iv, nul FROM typed WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if err := src.Exec("UPDATE typed SET t = 'changed' WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	recs, _ = drain(t, c, "typed", cur)
	if len(recs) != 2 {
		t.Fatalf("stream: %d records", len(recs))
	}
	for i, r := range recs {
		got := r.Values
		for k, v := range snap {
			if k == "id" || k == "updated_at" || i == 1 && k == "t" {
				continue
			}
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("stream record %d: %s = %#v, the snapshot read %#v", i, k, trim(got[k]), trim(v))
			}
		}
	}
	if recs[1].Values["t"] != "changed" {
		t.Errorf("the update: t = %v", recs[1].Values["t"])
	}
}

func trim(v any) any {
	if s, ok := v.(string); ok && len(s) > 40 {
		return s[:40] + "…"
	}
	return v
}

func TestCheckTellsWhatToGrant(t *testing.T) {
	ctx := context.Background()
	t.Run("wal_level replica", func(t *testing.T) {
		// The shared test server runs with wal_level = replica.
		src := pgsourcetest.NewSource(t, pgsourcetest.SourceOptions{Mode: "poll"})
		c, _ := newConnector(t, src, map[string]any{"mode": "cdc", "deleted_column": nil, "slot": "check_" + src.Schema, "publication": "check_" + src.Schema})
		err := c.Check(ctx)
		wantPermanent(t, err, "wal_level is replica", "ALTER SYSTEM SET wal_level = logical")
	})
	t.Run("a role without grants", func(t *testing.T) {
		src := cdcSource(t)
		role := "r_" + src.Database
		if err := src.Exec("CREATE ROLE " + role + " LOGIN"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = src.Exec("DROP ROLE " + role) })
		if err := src.Exec("CREATE TABLE nopk (x int)"); err != nil {
			t.Fatal(err)
		}
		cfg := src.Config()
		cfg["tables"] = []any{"accounts", "nopk", "missing"}
		dsn := strings.Replace(src.DSN, "user=postgres", "user="+role, 1)
		c, err := pgsource.New(connectors.Connection{ID: "c1", Tenant: tenant, System: pgsource.System, Config: cfg, Secrets: map[string]string{"dsn": dsn}}, connectors.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Check(ctx)
		wantPermanent(t, err,
			`may not read accounts: GRANT SELECT ON "public"."accounts" TO "`+role+`"`,
			"table nopk has no primary key",
			"table missing does not exist",
			"may not replicate: ALTER ROLE \""+role+"\" REPLICATION",
			`publication "`+src.Publication+`" does not exist and `+role+` cannot create it`)
		t.Log(err)
	})
	t.Run("poll column missing", func(t *testing.T) {
		src := pgsourcetest.NewSource(t, pgsourcetest.SourceOptions{Mode: "poll"})
		c, _ := newConnector(t, src, map[string]any{"poll_column": "modified"})
		wantPermanent(t, c.Check(ctx), `has no column "modified" (config.poll_column`)
	})
}

// Rows sharing one poll stamp are paged by the key tie-breaker: each is
// read once.
func TestPollTies(t *testing.T) {
	src := pgsourcetest.NewSource(t, pgsourcetest.SourceOptions{Mode: "poll"})
	if err := src.Exec("UPDATE accounts SET updated_at = '2024-05-01 10:00:00+00'"); err != nil {
		t.Fatal(err)
	}
	c, _ := newConnector(t, src, map[string]any{"page_size": 2})
	object := c.Objects()[0]
	recs, cur := drain(t, c, object, "")
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.Values["id"].(string)]++
	}
	if len(recs) != 12 || len(seen) != 12 {
		t.Fatalf("read %d records of %d rows, want each of 12 once", len(recs), len(seen))
	}
	if err := src.Exec("INSERT INTO accounts (id, name, updated_at) VALUES ('ACC-000013', 'Late, same stamp', '2024-05-01 10:00:00+00')"); err != nil {
		t.Fatal(err)
	}
	recs, _ = drain(t, c, object, cur)
	if len(recs) != 1 || recs[0].Values["id"] != "ACC-000013" {
		t.Errorf("after a row with the same stamp and a higher key: %v", recs)
	}
}
