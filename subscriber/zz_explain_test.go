package subscriber

import (
	"context"
	"database/sql/driver"
	"path/filepath"
	"strings"
	"testing"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/autonomos/autonomos/canonical"
)

func TestZZDuckExplain(t *testing.T) {
	d, err := OpenDuckDB(filepath.Join(t.TempDir(), "x.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	tb, _ := tableOf(canonical.OpportunityEntity)
	var defs []string
	for _, c := range tb.cols {
		typ := "VARCHAR"
		switch c.kind {
		case kindInteger:
			typ = "BIGINT"
		case kindTime:
			typ = "TIMESTAMPTZ"
		case kindInt32:
			typ = "INTEGER"
		case kindBool:
			typ = "BOOLEAN"
		}
		defs = append(defs, c.name+" "+typ)
	}
	conn, _ := d.db.Conn(ctx)
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "CREATE TEMP TABLE staged ("+strings.Join(defs, ", ")+")"); err != nil {
		t.Fatal(err)
	}

	for round := 0; round < 20; round++ {
		conn.ExecContext(ctx, "DELETE FROM staged")
		groups, _ := prepare(benchLike(round * 1000))
		g := groups[0]
		conn.Raw(func(dc any) error {
			a, err := duckdb.NewAppender(dc.(driver.Conn), "", "", "staged")
			if err != nil {
				t.Fatal(err)
			}
			row := make([]driver.Value, len(g.t.cols))
			for _, ev := range g.events {
				for i, c := range g.t.cols {
					switch c.kind {
					case kindInteger:
						row[i] = nil
					case kindTime:
						row[i] = storedTime(ev.Time)
					case kindInt32:
						row[i] = int32(ev.MappingVersion)
					case kindBool:
						row[i] = false
					default:
						s, ok, _ := textValue(ev, c, g.t.key)
						if ok {
							row[i] = s
						} else {
							row[i] = nil
						}
					}
				}
				a.AppendRow(row...)
			}
			return a.Close()
		})
		q := "EXPLAIN ANALYZE " + tb.duckUpsert
		rows, err := conn.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a, b string
			rows.Scan(&a, &b)
			if round == 19 {
				t.Log(b)
			}
		}
		rows.Close()
	}
}
