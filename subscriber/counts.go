package subscriber

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/autonomos/autonomos/canonical"
)

// GroupCount is how many live (not deleted) rows a tenant has of one entity
// from one source system and object.
type GroupCount struct {
	Entity       canonical.Entity
	SourceSystem string
	SourceObject string
	Count        int64
}

// groupCountSQL counts one table's live rows of a tenant by source.
func groupCountSQL(table string) string {
	return "SELECT source_system, coalesce(source_object, ''), count(*) FROM " + table +
		" WHERE tenant_id = $1 AND NOT deleted GROUP BY 1, 2 ORDER BY 1, 2"
}

// CountBySource counts a tenant's live rows per entity, source system and
// source object, in one query per table (pipelined: one round trip).
func (p *Postgres) CountBySource(ctx context.Context, tenant string) ([]GroupCount, error) {
	var out []GroupCount
	err := p.scoped(ctx, tenant, func(b *pgx.Batch) {
		for _, e := range canonical.Entities {
			t, _ := tableOf(e)
			b.Queue(groupCountSQL(t.name), tenant)
		}
	}, func(br pgx.BatchResults) error {
		for _, e := range canonical.Entities {
			rows, err := br.Query()
			if err != nil {
				return fmt.Errorf("%s: %w", e.Plural(), err)
			}
			gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (GroupCount, error) {
				g := GroupCount{Entity: e}
				return g, r.Scan(&g.SourceSystem, &g.SourceObject, &g.Count)
			})
			if err != nil {
				return fmt.Errorf("%s: %w", e.Plural(), err)
			}
			out = append(out, gs...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres count: %w", err)
	}
	return out, nil
}

// CountBySource counts a tenant's live rows per entity, source system and
// source object, in one query per table.
func (d *DuckDB) CountBySource(ctx context.Context, tenant string) ([]GroupCount, error) {
	var out []GroupCount
	for _, e := range canonical.Entities {
		t, _ := tableOf(e)
		gs, err := scanGroups(d.db.QueryContext(ctx, groupCountSQL(t.name), tenant))
		if err != nil {
			return nil, fmt.Errorf("duckdb count %s: %w", t.name, err)
		}
		for i := range gs {
			gs[i].Entity = e
		}
		out = append(out, gs...)
	}
	return out, nil
}

func scanGroups(rows *sql.Rows, err error) ([]GroupCount, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []GroupCount
	for rows.Next() {
		var g GroupCount
		if err := rows.Scan(&g.SourceSystem, &g.SourceObject, &g.Count); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
