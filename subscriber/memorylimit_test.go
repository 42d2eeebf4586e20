package subscriber

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
)

// TestDuckDBBeyondItsMemoryLimit: with memory_limit far below the table and
// its primary-key index, inserts and version updates still succeed (DuckDB
// evicts table and ART blocks to the file) and every row is there.
func TestDuckDBBeyondItsMemoryLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, err := OpenDuckDB(filepath.Join(t.TempDir(), "limit.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const limit = 32 << 20 // 16 MiB is too little for the merge of a 2,000-event batch
	if err := d.SetMemoryLimit(ctx, limit); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := d.db.QueryRowContext(ctx, `SELECT current_setting('memory_limit')`).Scan(&got); err != nil || got != "32.0 MiB" {
		t.Fatalf("memory_limit = %q, %v; want 32.0 MiB", got, err)
	}
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	batch := func(from, to int, version time.Time, name string) []*canonical.Event {
		var out []*canonical.Event
		for i := from; i < to; i++ {
			ev := &canonical.Event{Tenant: "acme", Op: canonical.OpUpsert, ConnectionID: "conn-1", SourceSystem: "filesource",
				Time: version, MappingVersion: 1, Record: &canonical.Opportunity{OpportunityID: fmt.Sprintf("OPP-%09d", i),
					Name: fmt.Sprintf("%s %d", name, i), Extras: map[string]any{"note": fmt.Sprintf("%0200d", i)}}}
			ev.ID = canonical.EventID(ev.Tenant, ev.SourceSystem, canonical.OpportunityEntity, ev.Record.Key(), version.String(), ev.Op)
			b, err := ev.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if ev, err = canonical.ParseEvent(b); err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
		}
		return out
	}
	// checkpoint_threshold follows the limit: committed rows not yet
	// checkpointed stay in memory, and at 32 MiB with a 256 MB threshold
	// the commit after ~300,000 rows ran out of memory (and left DuckDB's
	// in-memory table corrupt). 400,000 rows pass that point.
	if err := d.db.QueryRowContext(ctx, `SELECT current_setting('checkpoint_threshold')`).Scan(&got); err != nil || got != "8.0 MiB" {
		t.Fatalf("checkpoint_threshold = %q, %v; want 8.0 MiB, a quarter of the limit", got, err)
	}
	const n, step = 400_000, 2_000 // ~160 MB of rows, a 400,000-key index
	for i := 0; i < n; i += step {
		if err := d.Apply(ctx, batch(i, i+step, at, "first")); err != nil {
			t.Fatalf("apply rows %d..: %v", i, err)
		}
	}
	if err := d.Apply(ctx, batch(0, step, at.Add(time.Hour), "newer")); err != nil { // the update path
		t.Fatalf("apply newer versions: %v", err)
	}
	if c, err := d.Count(ctx, "acme", canonical.OpportunityEntity); err != nil || c != n {
		t.Fatalf("count = %d, %v; want %d", c, err, n)
	}
	var newer int
	if err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM materialized_opportunities WHERE name LIKE 'newer %'`).Scan(&newer); err != nil || newer != step {
		t.Fatalf("%d rows carry the newer version (%v), want %d", newer, err, step)
	}
}
