package pgsource

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/autonomos/autonomos/connectors"
)

// snapshot is an open REPEATABLE READ transaction that imported the
// snapshot a replication slot exported: it sees exactly the transactions
// committed before the slot's consistent point lsn, and the slot streams
// exactly those committed after it.
type snapshot struct {
	conn    *pgx.Conn
	lsn     lsn
	members map[string]bool // objects in the publication when the snapshot was taken
}

func (c *Connector) closeSnapshot() {
	if c.snap == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.snap.conn.Close(ctx)
	c.snap = nil
}

// snapshotPage reads the next primary-key chunk of t's snapshot. The page
// after the last chunk carries the stream phase's first cursor: the stream
// starts at the (lowest) snapshot LSN.
func (c *Connector) snapshotPage(ctx context.Context, t *table, cu cursor) (connectors.Page, error) {
	if cu.Phase == "" {
		if c.snap == nil || !c.snap.members[t.Object] {
			if err := c.openSnapshot(ctx, t); err != nil {
				return connectors.Page{}, err
			}
		}
		cu = cursor{Phase: phaseSnapshot, Slot: c.cfg.Slot, Segs: []segment{{LSN: c.snap.lsn}}}
		c.log.Info("table snapshot started", "object", t.Object, "table", t.qname, "lsn", c.snap.lsn.String())
	}
	last := len(cu.Segs) - 1
	if c.snap == nil || c.snap.lsn != cu.Segs[last].LSN {
		// The snapshot this table was being read at is gone (a restart or
		// a lost session): read the rest at a new one, as a new segment.
		if c.snap == nil || !c.snap.members[t.Object] {
			if err := c.openSnapshot(ctx, t); err != nil {
				return connectors.Page{}, err
			}
		}
		cu.Segs = slices.Clone(cu.Segs)
		if slices.Equal(cu.Segs[last].From, cu.After) {
			cu.Segs[last].LSN = c.snap.lsn // nothing was read at the old one
		} else {
			cu.Segs = append(cu.Segs, segment{From: cu.After, LSN: c.snap.lsn})
		}
		c.log.Info("table snapshot resumed", "object", t.Object, "table", t.qname, "lsn", c.snap.lsn.String(), "segments", len(cu.Segs))
	}
	q := "SELECT * FROM " + t.qname
	if cu.After != nil {
		q += " WHERE (" + t.keyList() + ") > (" + t.keyParams(1) + ")"
	}
	q += " ORDER BY " + t.keyList() + " LIMIT " + strconv.Itoa(c.cfg.PageSize)
	res, err := queryText(ctx, c.snap.conn.PgConn(), q, cu.After)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("read snapshot of %s: %w", t.qname, err)
	}
	page := connectors.Page{Records: make([]connectors.Record, 0, len(res.rows)), More: true}
	for _, row := range res.rows {
		page.Records = append(page.Records, connectors.Record{Values: c.rowValues(t, res, row)})
	}
	if len(res.rows) < c.cfg.PageSize {
		next := cu.withStream(pos{LSN: cu.floor()})
		page.Cursor = next.String()
		c.log.Info("table snapshot done", "object", t.Object, "table", t.qname, "stream_from", next.LSN.String())
		return page, nil
	}
	cu.After = res.key(t, res.rows[len(res.rows)-1])
	page.Cursor = cu.String()
	return page, nil
}

// openSnapshot makes sure t is published, then takes a snapshot: with the
// creation of the connection's slot when it does not exist yet, else with a
// temporary slot whose exported snapshot is imported and which is dropped
// right after.
func (c *Connector) openSnapshot(ctx context.Context, t *table) error {
	c.closeSnapshot()
	st, err := c.slotState(ctx)
	if err != nil {
		return err
	}
	if st.slotExists && (!st.sameDB || st.plugin != "pgoutput") {
		return permanent("replication slot %q exists for another database or output plugin (%s); choose another config.slot", c.cfg.Slot, st.plugin)
	}
	members, err := c.ensurePublication(ctx, t, st)
	if err != nil {
		return err
	}
	temporary := st.slotExists
	name := c.cfg.Slot
	if temporary {
		var b [4]byte
		_, _ = rand.Read(b[:])
		name = c.cfg.Slot[:min(len(c.cfg.Slot), 48)] + "_snap_" + hex.EncodeToString(b[:])
	} else {
		for obj, cu := range c.acked {
			if cu.Phase != "" {
				return permanent("replication slot %q does not exist any more (dropped?), but %s was read from it up to %s: its changes since are lost; reset the connection's cursors to take a new snapshot", c.cfg.Slot, obj, cu.floor())
			}
		}
	}
	repl, err := c.connectReplication(ctx)
	if err != nil {
		return err
	}
	defer closeQuietly(repl) // drops a temporary slot
	action := "(SNAPSHOT 'export')"
	if serverMajor(repl) < 15 {
		action = "EXPORT_SNAPSHOT"
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, name, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: temporary, SnapshotAction: action, Mode: pglogrepl.LogicalReplication})
	if err != nil {
		return fmt.Errorf("create replication slot %s: %w", name, err)
	}
	var at lsn
	if err := at.UnmarshalText([]byte(res.ConsistentPoint)); err != nil {
		return fmt.Errorf("create replication slot %s: %w", name, err)
	}
	conn, err := c.connect(ctx, map[string]string{"idle_in_transaction_session_timeout": "600000"})
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		_ = conn.Close(ctx)
		return fmt.Errorf("begin snapshot transaction: %w", err)
	}
	if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(res.SnapshotName)); err != nil {
		_ = conn.Close(ctx)
		return fmt.Errorf("import snapshot: %w", err)
	}
	c.snap = &snapshot{conn: conn, lsn: at, members: members}
	if !temporary {
		c.slotLSN = at
		c.log.Info("replication slot created", "slot", name, "lsn", at.String())
	}
	return nil
}

// slotState is what the server says about the slot, the publication and
// its WAL, in one query.
type slotState struct {
	flush      lsn // pg_current_wal_flush_lsn()
	slotExists bool
	slotLSN    lsn // confirmed_flush_lsn
	plugin     string
	sameDB     bool
	pubExists  bool
	pubOK      bool // publishes insert, update and delete
	pubAll     bool // FOR ALL TABLES
	pubOwned   bool
	pubTables  map[string]bool // "schema.table"
}

func (st slotState) publishes(t *table) bool { return st.pubAll || st.pubTables[t.schema+"."+t.name] }

const slotStateSQL = `
SELECT pg_current_wal_flush_lsn()::text, s.slot_name IS NOT NULL, coalesce(s.confirmed_flush_lsn::text, ''),
  coalesce(s.plugin::text, ''), coalesce(s.database = current_database(), false),
  p.oid IS NOT NULL, coalesce(p.pubinsert AND p.pubupdate AND p.pubdelete, false), coalesce(p.puballtables, false),
  coalesce(pg_has_role(p.pubowner, 'USAGE'), false),
  coalesce(array(SELECT pt.schemaname || '.' || pt.tablename FROM pg_publication_tables pt WHERE pt.pubname = $2), '{}')
FROM (SELECT 1) AS one
LEFT JOIN pg_replication_slots s ON s.slot_name = $1
LEFT JOIN pg_publication p ON p.pubname = $2`

func (c *Connector) slotState(ctx context.Context) (slotState, error) {
	conn, err := c.metaConn(ctx)
	if err != nil {
		return slotState{}, err
	}
	var st slotState
	var flush, confirmed string
	var tables []string
	if err := conn.QueryRow(ctx, slotStateSQL, c.cfg.Slot, c.cfg.Publication).Scan(&flush, &st.slotExists, &confirmed, &st.plugin, &st.sameDB,
		&st.pubExists, &st.pubOK, &st.pubAll, &st.pubOwned, &tables); err != nil {
		return slotState{}, fmt.Errorf("read replication state: %w", err)
	}
	if err := st.flush.UnmarshalText([]byte(flush)); err != nil {
		return slotState{}, err
	}
	if confirmed != "" {
		if err := st.slotLSN.UnmarshalText([]byte(confirmed)); err != nil {
			return slotState{}, err
		}
	}
	st.pubTables = map[string]bool{}
	for _, t := range tables {
		st.pubTables[t] = true
	}
	return st, nil
}

// ensurePublication creates the publication (with every configured table)
// when it is missing, or adds t to it; it returns the objects published.
// Only a table about to be snapshotted is ever added: a streaming table
// missing from the publication is lost changes, reported by the stream.
func (c *Connector) ensurePublication(ctx context.Context, t *table, st slotState) (map[string]bool, error) {
	conn, err := c.metaConn(ctx)
	if err != nil {
		return nil, err
	}
	with := " WITH (publish = 'insert, update, delete')"
	if serverMajor(conn.PgConn()) >= 13 {
		// Changes of a partitioned table's partitions arrive under the
		// table's own name.
		with = " WITH (publish = 'insert, update, delete', publish_via_partition_root = true)"
	}
	switch {
	case !st.pubExists:
		var names []string
		for _, o := range c.tables {
			if o.found {
				names = append(names, o.qname)
			}
		}
		slices.Sort(names)
		q := "CREATE PUBLICATION " + quoteIdent(c.cfg.Publication) + " FOR TABLE " + strings.Join(names, ", ") + with
		if _, err := conn.Exec(ctx, q); err != nil {
			return nil, c.grantHint(err, fmt.Sprintf("create the publication as the tables' owner: %s", q))
		}
		c.log.Info("publication created", "publication", c.cfg.Publication, "tables", len(names))
	case !st.pubOK:
		return nil, permanent("publication %q does not publish insert, update and delete: ALTER PUBLICATION %s SET (publish = 'insert, update, delete')",
			c.cfg.Publication, quoteIdent(c.cfg.Publication))
	case !st.publishes(t):
		q := "ALTER PUBLICATION " + quoteIdent(c.cfg.Publication) + " ADD TABLE " + t.qname
		if _, err := conn.Exec(ctx, q); err != nil {
			return nil, c.grantHint(err, fmt.Sprintf("add the table to the publication as its owner: %s", q))
		}
		c.log.Info("table added to the publication", "publication", c.cfg.Publication, "table", t.qname)
	}
	st, err = c.slotState(ctx)
	if err != nil {
		return nil, err
	}
	members := map[string]bool{}
	for obj, o := range c.tables {
		if o.found && st.publishes(o) {
			members[obj] = true
		}
	}
	return members, nil
}

// grantHint makes a privilege error permanent, with what to run instead.
func (c *Connector) grantHint(err error, hint string) error {
	if isPermanent(err) {
		return permanent("%v; %s", err, hint)
	}
	return err
}

// serverMajor is the server's major version (0 when unknown).
func serverMajor(conn *pgconn.PgConn) int {
	v := conn.ParameterStatus("server_version")
	n, _ := strconv.Atoi(strings.SplitN(strings.TrimSpace(v), ".", 2)[0])
	return n
}

// textResult is a query's rows in text format.
type textResult struct {
	names []string
	oids  []uint32
	rows  [][][]byte
}

// queryText runs q with text parameters (cast in q) and returns every row,
// values in text format.
func queryText(ctx context.Context, conn *pgconn.PgConn, q string, params []string) (*textResult, error) {
	args := make([][]byte, len(params))
	for i, p := range params {
		args[i] = []byte(p)
	}
	rr := conn.ExecParams(ctx, q, args, nil, nil, nil)
	res := &textResult{}
	for _, f := range rr.FieldDescriptions() {
		res.names = append(res.names, f.Name)
		res.oids = append(res.oids, f.DataTypeOID)
	}
	for rr.NextRow() {
		vals := rr.Values()
		row := make([][]byte, len(vals))
		for i, v := range vals {
			if v != nil {
				row[i] = bytes.Clone(v)
			}
		}
		res.rows = append(res.rows, row)
	}
	if _, err := rr.Close(); err != nil {
		return nil, err
	}
	return res, nil
}

// key returns a row's primary key as text.
func (r *textResult) key(t *table, row [][]byte) []string {
	out := make([]string, len(t.pk))
	for i, k := range t.pk {
		if j := slices.Index(r.names, k); j >= 0 {
			out[i] = string(row[j])
		}
	}
	return out
}

// text returns a column's text (ok false when absent or null).
func (r *textResult) text(row [][]byte, col string) (string, bool) {
	j := slices.Index(r.names, col)
	if j < 0 || row[j] == nil {
		return "", false
	}
	return string(row[j]), true
}

// rowValues turns a row into a record's values: primary key columns as
// their text, everything else decoded.
func (c *Connector) rowValues(t *table, r *textResult, row [][]byte) map[string]any {
	m := make(map[string]any, len(r.names))
	for i, n := range r.names {
		switch {
		case row[i] == nil:
			m[n] = nil
		case slices.Contains(t.pk, n):
			m[n] = string(row[i])
		default:
			m[n] = decode(c.baseType(r.oids[i]), row[i])
		}
	}
	return m
}

// baseType resolves a domain to its base type (as far as known).
func (c *Connector) baseType(oid uint32) uint32 {
	if knownOID(oid) {
		return oid
	}
	if b, ok := c.types[oid]; ok {
		return b
	}
	return oid
}
