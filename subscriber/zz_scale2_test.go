package subscriber

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
)

func TestZZDuckScale2(t *testing.T) {
	d, err := OpenDuckDB(filepath.Join(t.TempDir(), "x.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if _, err := d.db.ExecContext(ctx, `INSERT INTO materialized_opportunities (tenant_id, opportunity_id, name, extras, source_system, connection_id, source_updated_at, mapping_version, event_id)
		SELECT 't', printf('006Hs00000%08d', i), 'x', '{"Description":"Multi-year renewal negotiated with procurement; includes premium support"}', 's', 'c', TIMESTAMPTZ '2024-01-01 00:00:00+00', 1, 'e' FROM range(1000000, 2000000) r(i)`); err != nil {
		t.Fatal(err)
	}
	tb, _ := tableOf(canonical.OpportunityEntity)
	orig := tb.duckUpsert
	defer func() { tb.duckUpsert = orig }()
	variants := map[string]string{
		"current":   orig,
		"nowhere":   orig[:strings.Index(orig, "\nWHERE")],
		"donothing": orig[:strings.Index(orig, " DO UPDATE")] + " DO NOTHING",
	}
	for _, name := range []string{"current", "nowhere", "donothing", "current", "nowhere", "donothing"} {
		tb.duckUpsert = variants[name]
		for round := 0; round < 3; round++ {
			evs := benchLike(0)
			for i, ev := range evs {
				o := ev.Record.(*canonical.Opportunity)
				o.OpportunityID = fmt.Sprintf("006Hs00000%08d", 1000000+(i*7919+round*131+len(name)*17)%1000000)
				ev.ID = o.OpportunityID
				ev.Time = ev.Time.Add(time.Duration(round+1) * time.Hour)
			}
			c0, w0 := cpuNow(), time.Now()
			if err := d.Apply(ctx, evs); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: existing random: cpu %v wall %v", name, cpuNow()-c0, time.Since(w0))
		}
	}
	if _, err := d.db.ExecContext(ctx, "CREATE TEMP TABLE s2 AS SELECT * FROM materialized_opportunities LIMIT 0"); err != nil {
		t.Fatal(err)
	}
	rows, err := d.db.QueryContext(ctx, "EXPLAIN "+variants["nowhere"])
	if err == nil {
		for rows.Next() {
			var a, b string
			rows.Scan(&a, &b)
			t.Log(b)
		}
		rows.Close()
	} else {
		t.Log(err)
	}
}
