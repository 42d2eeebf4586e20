package subscriber

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/autonomos/autonomos/canonical"
	"time"
)

func TestZZDuckScale(t *testing.T) {
	d, err := OpenDuckDB(filepath.Join(t.TempDir(), "x.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	// Pre-fill 300k rows directly.
	if _, err := d.db.ExecContext(ctx, `INSERT INTO materialized_opportunities (tenant_id, opportunity_id, name, extras, source_system, connection_id, source_updated_at, mapping_version, event_id)
		SELECT 't', printf('006Hs00000%08d', i), 'x', '{"Description":"Multi-year renewal negotiated with procurement; includes premium support"}', 's', 'c', TIMESTAMPTZ '2024-01-01 00:00:00+00', 1, 'e' FROM range(1000000, 2000000) r(i)`); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 8; round++ {
		base := round * 1000
		kind := "new keys"
		if round%2 == 1 {
			base = 1000000 + round*37000
			kind = "existing keys"
		}
		evs := benchLike(base)
		if round >= 2 {
			kind += " random"
			for i, ev := range evs {
				o := ev.Record.(*canonical.Opportunity)
				o.OpportunityID = fmt.Sprintf("006Hs00000%08d", 1000000+(i*7919+round*131)%300000)
				if round%2 == 0 {
					o.OpportunityID = fmt.Sprintf("006Hs00000%08dz", 1000000+(i*7919+round*131)%300000)
				}
				ev.ID = o.OpportunityID
			}
		}
		c0, w0 := cpuNow(), time.Now()
		if err := d.Apply(ctx, evs); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: cpu %v wall %v", kind, cpuNow()-c0, time.Since(w0))
	}
	fmt.Print()
}
