package pgsource

import (
	"context"
	"fmt"
	"strconv"

	"github.com/autonomos/autonomos/connectors"
)

// pollPage reads the rows after cu in (poll column, primary key) order:
// WHERE (col, pk) > ($1, $2) ORDER BY col, pk LIMIT page_size. Rows whose
// poll column is null are never read; hard deletes are invisible (a
// deleted_column turns soft deletes into deletes).
func (c *Connector) pollPage(ctx context.Context, t *table, cu cursor) (connectors.Page, error) {
	pc := t.col(c.cfg.PollColumn)
	if pc < 0 {
		return connectors.Page{}, permanent("table %s has no column %q (config.poll_column names the column holding each row's modified stamp)", t.Name, c.cfg.PollColumn)
	}
	del := -1
	if c.cfg.DeletedColumn != "" {
		if del = t.col(c.cfg.DeletedColumn); del < 0 || t.colOIDs[del] != oidBool {
			return connectors.Page{}, permanent("table %s has no boolean column %q (config.deleted_column)", t.Name, c.cfg.DeletedColumn)
		}
	}
	conn, err := c.metaConn(ctx)
	if err != nil {
		return connectors.Page{}, err
	}
	col := quoteIdent(c.cfg.PollColumn)
	order := col + ", " + t.keyList()
	var params []string
	q := "SELECT * FROM " + t.qname + " WHERE " + col + " IS NOT NULL"
	if cu.At != nil {
		q += " AND (" + order + ") > ($1::" + t.colTypes[pc] + ", " + t.keyParams(2) + ")"
		params = append([]string{*cu.At}, cu.Key...)
	}
	q += " ORDER BY " + order + " LIMIT " + strconv.Itoa(c.cfg.PageSize)
	waited := false
	for {
		res, err := queryText(ctx, conn.PgConn(), q, params)
		if err != nil {
			return connectors.Page{}, fmt.Errorf("poll %s: %w", t.qname, err)
		}
		if len(res.rows) == 0 && c.cfg.PollInterval > 0 && !waited {
			waited = true
			if err := sleep(ctx, c.cfg.PollInterval); err != nil {
				return connectors.Page{}, err
			}
			continue
		}
		page := connectors.Page{Cursor: cu.String(), Records: make([]connectors.Record, 0, len(res.rows))}
		if cu.Phase == "" {
			page.Cursor = ""
		}
		for _, row := range res.rows {
			vals := c.rowValues(t, res, row)
			if del >= 0 && vals[c.cfg.DeletedColumn] == true {
				key := res.key(t, row)
				dv := make(map[string]any, len(key)+1)
				for i, k := range t.pk {
					dv[k] = key[i]
				}
				dv[c.cfg.PollColumn] = vals[c.cfg.PollColumn]
				page.Records = append(page.Records, connectors.Record{Values: dv, Deleted: true})
				continue
			}
			page.Records = append(page.Records, connectors.Record{Values: vals})
		}
		if n := len(res.rows); n > 0 {
			at, _ := res.text(res.rows[n-1], c.cfg.PollColumn)
			page.Cursor = cursor{Phase: phasePoll, At: &at, Key: res.key(t, res.rows[n-1])}.String()
		}
		page.More = len(res.rows) == c.cfg.PageSize || len(res.rows) > 0 && c.cfg.PollInterval > 0
		return page, nil
	}
}
