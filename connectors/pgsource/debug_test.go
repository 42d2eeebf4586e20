package pgsource_test

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/pgsource"
	"github.com/autonomos/autonomos/connectors/pgsource/pgsourcetest"
)

func TestDebugFetch(t *testing.T) {
	src := pgsourcetest.NewSource(t, pgsourcetest.SourceOptions{Cluster: logicalCluster(t)})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := pgsource.New(connectors.Connection{ID: "c1", Tenant: "t1", System: "postgres", Config: src.Config(), Secrets: src.Secrets()}, connectors.Deps{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for round := 0; round < 2; round++ {
		for _, o := range c.Objects() {
			cur := ""
			for i := 0; i < 50; i++ {
				p, err := c.Fetch(ctx, o, cur)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: %d records more=%v cursor=%s", o, len(p.Records), p.More, p.Cursor)
				cur = p.Cursor
				if !p.More {
					break
				}
			}
		}
	}
}
