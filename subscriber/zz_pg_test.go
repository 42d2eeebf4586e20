package subscriber

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestZZPgExplain(t *testing.T) {
	url := os.Getenv("ZZURL")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS zz")
	conn.Close(ctx)
	p, err := OpenPostgres(ctx, url+"&options=-csearch_path%3Dzz")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for round := 0; round < 4; round++ {
		groups, _ := prepare(zzBatch(round * 1000))
		args, _ := pgColumns(groups[0])
		rows, err := p.pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, TIMING) "+groups[0].t.pgUpsert, args...)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			rows.Scan(&s)
			if round == 3 {
				t.Log(s)
			}
		}
		rows.Close()
	}
	c2, _ := pgx.Connect(ctx, url)
	c2.Exec(ctx, "DROP SCHEMA zz CASCADE")
}
