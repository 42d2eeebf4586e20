package subscriber

import (
	"context"
	"fmt"
)

// FileID is the id of this database file, made once when the file was
// created: the owner a DuckDB subscriber binds its durable consumer to
// (Config.Owner). A copy of the file keeps the id; a new file gets a new one.
func (d *DuckDB) FileID(ctx context.Context) (string, error) {
	var id string
	if err := d.db.QueryRowContext(ctx, `SELECT id FROM store_identity`).Scan(&id); err != nil {
		return "", fmt.Errorf("duckdb file id: %w", err)
	}
	return id, nil
}
