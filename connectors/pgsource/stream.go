package pgsource

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/autonomos/autonomos/connectors"
)

// Stream timing.
const (
	// pageWait bounds how long a page with records waits for more.
	pageWait = 100 * time.Millisecond
	// linger returns a page with records once the stream was quiet this long.
	linger = 10 * time.Millisecond
	// pingEvery asks an idle server for its position this often while
	// catching up.
	pingEvery = 50 * time.Millisecond
	// statusEvery is the longest gap between standby status updates, well
	// inside the default wal_sender_timeout of 60 s.
	statusEvery = 10 * time.Second
	// idleFallback declares a pass caught up after this long without data,
	// should the server's position never reach the pass's target.
	idleFallback = time.Second
	// slotBusyWait is how long a slot held by an ending session is waited
	// for before the start counts as failed.
	slotBusyWait = 15 * time.Second
)

// relColumn is a column of a relation message.
type relColumn struct {
	name string
	oid  uint32
}

type relation struct {
	oid          uint32
	schema, name string
	cols         []relColumn
}

// txnState is the transaction being received.
type txnState struct {
	lsn lsn // commit LSN
	at  time.Time
	n   int // changes of the table being read, so far
}

// session is an open replication stream, reading for one table at a time.
// A pass is the reading of one table until it caught up; a new pass on the
// same table reuses the session, a pass on another table starts a new one
// from that table's position (the server re-sends from there).
type session struct {
	conn     *pgconn.PgConn
	object   string
	pos      pos // after the last page returned
	target   lsn // the server's flush LSN when the pass began
	passOver bool
	rels     map[uint32]*relation
	txn      *txnState
	dataAt   time.Time // last WAL data received
	statusAt time.Time // last standby status update
	pingAt   time.Time
	caughtUp bool
	activeAt time.Time // when the pass caught up, or its last record after that
	warned   bool      // a TRUNCATE was reported
}

// closeSession closes the replication connection without ceremony.
func (c *Connector) closeSession() {
	if c.sess != nil {
		closeQuietly(c.sess.conn)
		c.sess = nil
	}
}

// stopSession ends the stream cleanly (CopyDone), which releases the slot
// before the server answers, then closes the connection. (A walsender
// does not stream again after a CopyDone, so the connection is not
// reused.)
func (c *Connector) stopSession(ctx context.Context) {
	if c.sess == nil {
		return
	}
	_ = endCopy(ctx, c.sess.conn)
	c.closeSession()
}

// endCopy ends the replication stream's COPY mode and waits until the
// server is ready for the next command (the slot is then released).
func endCopy(ctx context.Context, conn *pgconn.PgConn) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn.Frontend().Send(&pgproto3.CopyDone{})
	if err := conn.Frontend().Flush(); err != nil {
		return err
	}
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			return nil
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		}
	}
}

// streamPage reads the next page of t's changes after cu.
func (c *Connector) streamPage(ctx context.Context, t *table, cu cursor) (connectors.Page, error) {
	s := c.sess
	switch {
	case s == nil || s.object != t.Object || s.pos != cu.pos():
		c.stopSession(ctx)
		var err error
		if s, err = c.startSession(ctx, t, cu); err != nil {
			return connectors.Page{}, err
		}
		if err := c.sendStatus(ctx, s, true); err != nil {
			return connectors.Page{}, err
		}
	case s.passOver:
		st, err := c.slotState(ctx)
		if err != nil {
			return connectors.Page{}, err
		}
		if err := c.checkStream(t, cu, st); err != nil {
			return connectors.Page{}, err
		}
		s.target, s.passOver, s.caughtUp = st.flush, false, false
		c.slotLSN = max(c.slotLSN, st.slotLSN)
		if err := c.sendStatus(ctx, s, true); err != nil {
			return connectors.Page{}, err
		}
	case c.confirmLSN() > c.slotLSN:
		if err := c.sendStatus(ctx, s, false); err != nil {
			return connectors.Page{}, err
		}
	}
	return c.receive(ctx, t, cu, s)
}

// startSession checks the slot and the publication and starts streaming
// from t's position.
func (c *Connector) startSession(ctx context.Context, t *table, cu cursor) (*session, error) {
	st, err := c.slotState(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.checkStream(t, cu, st); err != nil {
		return nil, err
	}
	conn, err := c.connectReplication(ctx)
	if err != nil {
		return nil, err
	}
	// A slot still held by a session that is ending (ours, closed without
	// CopyDone, or a killed process's) is released within moments.
	for wait, waited := 20*time.Millisecond, time.Duration(0); ; wait = min(2*wait, 500*time.Millisecond) {
		err = pglogrepl.StartReplication(ctx, conn, c.cfg.Slot, pglogrepl.LSN(cu.LSN), pglogrepl.StartReplicationOptions{
			Mode:       pglogrepl.LogicalReplication,
			PluginArgs: []string{"proto_version '1'", "publication_names " + quoteLiteral(c.cfg.Publication)},
		})
		var pg *pgconn.PgError
		if err == nil || !errors.As(err, &pg) || pg.Code != "55006" || waited >= slotBusyWait {
			break
		}
		if err := sleep(ctx, wait); err != nil {
			closeQuietly(conn)
			return nil, err
		}
		waited += wait
	}
	if err != nil {
		closeQuietly(conn)
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.Code == "42704" {
			return nil, permanent("replication slot %q does not exist any more (dropped?): the changes of %s after %s are lost; reset the connection's cursors to take a new snapshot (%v)", c.cfg.Slot, t.Name, cu.LSN, err)
		}
		return nil, fmt.Errorf("start replication: %w", err)
	}
	c.slotLSN = max(c.slotLSN, st.slotLSN)
	now := time.Now()
	s := &session{conn: conn, object: t.Object, pos: cu.pos(), target: st.flush, rels: map[uint32]*relation{}, dataAt: now, activeAt: now, statusAt: now}
	c.sess = s
	c.log.Debug("replication started", "object", t.Object, "slot", c.cfg.Slot, "from", cu.LSN.String(), "target", st.flush.String())
	return s, nil
}

// checkStream reports a slot or publication that can no longer give t's
// changes after cu: lost changes are a permanent error, never skipped.
func (c *Connector) checkStream(t *table, cu cursor, st slotState) error {
	reset := "reset the connection's cursors to take a new snapshot"
	switch {
	case !st.slotExists:
		return permanent("replication slot %q does not exist any more (dropped?): the changes of %s after %s are lost; %s", c.cfg.Slot, t.Name, cu.floor(), reset)
	case !st.sameDB || st.plugin != "pgoutput":
		return permanent("replication slot %q now belongs to another database or output plugin (%s); %s", c.cfg.Slot, st.plugin, reset)
	case st.slotLSN > cu.floor():
		return permanent("replication slot %q has moved past the stored position of %s (%s > %s): changes were lost (was the slot dropped and recreated, or advanced by another consumer?); %s",
			c.cfg.Slot, t.Name, st.slotLSN, cu.floor(), reset)
	case !st.pubExists:
		return permanent("publication %q does not exist any more: the changes of %s since it was dropped are lost; create it again (CREATE PUBLICATION %s FOR TABLE %s) and %s",
			c.cfg.Publication, t.Name, quoteIdent(c.cfg.Publication), t.qname, reset)
	case !st.publishes(t):
		return permanent("table %s was removed from publication %q: its changes since then are lost; add it back (ALTER PUBLICATION %s ADD TABLE %s) and %s",
			t.Name, c.cfg.Publication, quoteIdent(c.cfg.Publication), t.qname, reset)
	case !st.pubOK:
		return permanent("publication %q no longer publishes insert, update and delete: ALTER PUBLICATION %s SET (publish = 'insert, update, delete'), then %s",
			c.cfg.Publication, quoteIdent(c.cfg.Publication), reset)
	}
	return nil
}

// confirmLSN is the LSN the slot may release WAL up to: the lowest
// position any table still needs, once every table's stored cursor is
// known (until then, the slot's own). While a snapshot is open it is
// capped at the snapshot's LSN, since a table yet to be read may use it.
func (c *Connector) confirmLSN() lsn {
	if len(c.acked) < len(c.cfg.Tables) {
		return c.slotLSN
	}
	const none = ^lsn(0)
	m := none
	if c.snap != nil {
		m = c.snap.lsn
	}
	for _, cu := range c.acked {
		if cu.Phase != "" {
			m = min(m, cu.floor())
		}
	}
	if m == none {
		return c.slotLSN
	}
	return max(m, c.slotLSN)
}

// sendStatus sends a standby status update confirming confirmLSN;
// reply asks the server to answer with its position.
func (c *Connector) sendStatus(ctx context.Context, s *session, reply bool) error {
	if l := c.confirmLSN(); l > c.slotLSN {
		c.log.Debug("confirmed flush position", "lsn", l.String())
		c.slotLSN = l
	}
	err := pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pglogrepl.LSN(c.slotLSN), ReplyRequested: reply})
	if err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	s.statusAt = time.Now()
	if reply {
		s.pingAt = s.statusAt
	}
	return nil
}

// pageBuilder collects one page of a pass.
type pageBuilder struct {
	t       *table
	cu      cursor // the cursor the page follows
	p       pos    // position after the changes handled so far
	recs    []connectors.Record
	firstAt time.Time
}

// receive reads the stream until a page is due.
func (c *Connector) receive(ctx context.Context, t *table, cu cursor, s *session) (connectors.Page, error) {
	b := &pageBuilder{t: t, cu: cu, p: s.pos}
	for {
		now := time.Now()
		done := s.caughtUp && s.txn == nil && now.Sub(s.activeAt) >= c.cfg.PollInterval
		if done || len(b.recs) >= c.cfg.PageSize || len(b.recs) > 0 && (now.Sub(b.firstAt) >= pageWait || now.Sub(s.dataAt) >= linger) {
			s.pos, s.passOver = b.p, done
			if done {
				c.log.Debug("stream caught up", "object", t.Object, "lsn", b.p.LSN.String(), "records", len(b.recs))
			}
			return connectors.Page{Records: b.recs, Cursor: cu.withStream(b.p).String(), More: !done}, nil
		}
		if now.Sub(s.statusAt) >= statusEvery {
			if err := c.sendStatus(ctx, s, false); err != nil {
				return connectors.Page{}, err
			}
		}
		if !s.caughtUp && now.Sub(s.dataAt) >= pingEvery && now.Sub(s.pingAt) >= pingEvery {
			if err := c.sendStatus(ctx, s, true); err != nil {
				return connectors.Page{}, err
			}
		}
		if !s.caughtUp && s.txn == nil && now.Sub(s.dataAt) >= idleFallback {
			s.caughtUp, s.activeAt = true, now
			continue
		}
		deadline := s.statusAt.Add(statusEvery)
		if len(b.recs) > 0 {
			deadline = earliest(deadline, b.firstAt.Add(pageWait), s.dataAt.Add(linger))
		}
		if !s.caughtUp {
			deadline = earliest(deadline, now.Add(pingEvery), s.dataAt.Add(idleFallback))
		} else if len(b.recs) == 0 {
			deadline = earliest(deadline, s.activeAt.Add(c.cfg.PollInterval))
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		msg, err := s.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return connectors.Page{}, ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return connectors.Page{}, fmt.Errorf("replication stream: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return connectors.Page{}, fmt.Errorf("replication keepalive: %w", err)
				}
				// Every transaction committed before the server's sent
				// position has been received.
				if end := (pos{LSN: lsn(ka.ServerWALEnd)}); s.txn == nil && b.p.less(end) {
					b.p = end
				}
				if s.txn == nil && lsn(ka.ServerWALEnd) >= s.target && !s.caughtUp {
					s.caughtUp, s.activeAt = true, time.Now()
				}
				if ka.ReplyRequested {
					if err := c.sendStatus(ctx, s, false); err != nil {
						return connectors.Page{}, err
					}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return connectors.Page{}, fmt.Errorf("replication data: %w", err)
				}
				s.dataAt = time.Now()
				if err := c.handle(ctx, s, b, xld.WALData); err != nil {
					return connectors.Page{}, err
				}
			}
		case *pgproto3.ErrorResponse:
			err := pgconn.ErrorResponseToPgError(m)
			if err.Code == "42704" && strings.Contains(err.Message, "publication") {
				return connectors.Page{}, permanent("publication %q does not exist any more: the changes of %s since it was dropped are lost; create it again and reset the connection's cursors (%v)", c.cfg.Publication, t.Name, err)
			}
			return connectors.Page{}, fmt.Errorf("replication stream: %w", err)
		case *pgproto3.CopyDone:
			return connectors.Page{}, errors.New("replication stream: the server ended it")
		}
	}
}

func earliest(t time.Time, ts ...time.Time) time.Time {
	for _, u := range ts {
		if u.Before(t) {
			t = u
		}
	}
	return t
}

// parseMessage decodes a pgoutput message; a malformed one is an error,
// never a panic.
func parseMessage(data []byte) (m pglogrepl.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed pgoutput message: %v", p)
		}
	}()
	return pglogrepl.Parse(data)
}

// handle applies one pgoutput message to the page.
func (c *Connector) handle(ctx context.Context, s *session, b *pageBuilder, data []byte) error {
	msg, err := parseMessage(data)
	if err != nil {
		return fmt.Errorf("replication data: %w", err)
	}
	t := b.t
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		rel := &relation{oid: m.RelationID, schema: m.Namespace, name: m.RelationName}
		for _, col := range m.Columns {
			rel.cols = append(rel.cols, relColumn{name: col.Name, oid: col.DataType})
		}
		s.rels[m.RelationID] = rel
		if c.isTable(t, rel) {
			return c.noteColumns(ctx, t, rel)
		}
	case *pglogrepl.BeginMessage:
		s.txn = &txnState{lsn: lsn(m.FinalLSN), at: m.CommitTime}
	case *pglogrepl.CommitMessage:
		s.txn = nil
		if end := (pos{LSN: lsn(m.TransactionEndLSN)}); b.p.less(end) {
			b.p = end
		}
		if lsn(m.TransactionEndLSN) >= s.target && !s.caughtUp {
			s.caughtUp, s.activeAt = true, time.Now()
		}
	case *pglogrepl.InsertMessage:
		rel, err := c.relation(s, t, m.RelationID)
		if rel == nil || err != nil {
			return err
		}
		key, err := tupleKey(t, rel, m.Tuple)
		if err != nil {
			return err
		}
		vals, toasted := c.tupleValues(t, rel, m.Tuple)
		if err := c.fillToasted(ctx, t, key, vals, toasted); err != nil {
			return err
		}
		return c.emit(ctx, s, b, connectors.Record{Values: vals}, key)
	case *pglogrepl.UpdateMessage:
		rel, err := c.relation(s, t, m.RelationID)
		if rel == nil || err != nil {
			return err
		}
		key, err := tupleKey(t, rel, m.NewTuple)
		if err != nil {
			return err
		}
		if m.OldTuple != nil {
			old, err := tupleKey(t, rel, m.OldTuple)
			if err != nil {
				return err
			}
			if !slices.Equal(old, key) { // the primary key changed: the old row is gone
				if err := c.emit(ctx, s, b, connectors.Record{Values: c.deleteValues(t, rel, old, s.txn.at), Deleted: true}, old); err != nil {
					return err
				}
			}
		}
		vals, toasted := c.tupleValues(t, rel, m.NewTuple)
		if m.OldTuple != nil && len(toasted) > 0 { // REPLICA IDENTITY FULL: the old row has them
			oldVals, _ := c.tupleValues(t, rel, m.OldTuple)
			toasted = slices.DeleteFunc(toasted, func(col string) bool {
				v, ok := oldVals[col]
				if ok {
					vals[col] = v
				}
				return ok
			})
		}
		if err := c.fillToasted(ctx, t, key, vals, toasted); err != nil {
			return err
		}
		return c.emit(ctx, s, b, connectors.Record{Values: vals}, key)
	case *pglogrepl.DeleteMessage:
		rel, err := c.relation(s, t, m.RelationID)
		if rel == nil || err != nil {
			return err
		}
		if m.OldTuple == nil {
			return permanent("a delete on %s without its key: give the table REPLICA IDENTITY DEFAULT (with a primary key) or FULL", t.Name)
		}
		key, err := tupleKey(t, rel, m.OldTuple)
		if err != nil {
			return err
		}
		return c.emit(ctx, s, b, connectors.Record{Values: c.deleteValues(t, rel, key, s.txn.at), Deleted: true}, key)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if rel := s.rels[id]; rel != nil && c.isTable(t, rel) && !s.warned {
				s.warned = true
				c.log.Warn("TRUNCATE is not propagated: the table's rows stay in the views; reset the connection's cursors to read it again", "object", t.Object, "table", t.qname)
			}
		}
	}
	return nil
}

// isTable reports whether rel is t (by OID, which survives a rename, or
// by name).
func (c *Connector) isTable(t *table, rel *relation) bool {
	return rel.oid == t.oid || rel.schema == t.schema && rel.name == t.name
}

// relation returns the relation of a change when it is t's (nil for
// another table's change).
func (c *Connector) relation(s *session, t *table, id uint32) (*relation, error) {
	if s.txn == nil {
		return nil, errors.New("replication data: a change outside a transaction")
	}
	rel, ok := s.rels[id]
	if !ok {
		return nil, fmt.Errorf("replication data: a change of relation %d before its description", id)
	}
	if !c.isTable(t, rel) {
		return nil, nil
	}
	return rel, nil
}

// emit adds a change of the page's table numbered in its transaction,
// unless it is at or before the page's position, or an upsert already in
// the rows of its key range's snapshot. Deletes are never skipped for a
// snapshot: a process that died mid-snapshot may have published rows past
// its checkpoint from its older snapshot, and a row deleted before the
// resumed snapshot must leave the views all the same (a delete of a row
// never published is harmless; versions order a delete against a later
// re-insert).
func (c *Connector) emit(ctx context.Context, s *session, b *pageBuilder, r connectors.Record, key []string) error {
	s.txn.n++
	here := pos{LSN: s.txn.lsn, N: s.txn.n}
	if b.p.covers(here.LSN, here.N) {
		return nil
	}
	b.p = here
	if !r.Deleted {
		skip, err := c.inSnapshot(ctx, b.t, b.cu.Segs, here.LSN, key)
		if err != nil || skip {
			return err
		}
	}
	if len(b.recs) == 0 {
		b.firstAt = time.Now()
	}
	b.recs = append(b.recs, r)
	s.activeAt = time.Now()
	return nil
}

// inSnapshot reports whether a change committed at l to the row with key
// is already in the snapshot: the row's key range was read at a snapshot
// LSN above l. Only a table whose snapshot was resumed has several ranges.
func (c *Connector) inSnapshot(ctx context.Context, t *table, segs []segment, l lsn, key []string) (bool, error) {
	if len(segs) < 2 {
		return false, nil
	}
	top := lsn(0)
	for _, sg := range segs {
		top = max(top, sg.LSN)
	}
	if l >= top {
		return false, nil
	}
	i := 0
	for j := len(segs) - 1; j >= 1; j-- {
		cmp, err := c.compareKeys(ctx, t, key, segs[j].From)
		if err != nil {
			return false, err
		}
		if cmp > 0 {
			i = j
			break
		}
	}
	return l < segs[i].LSN, nil
}

// compareKeys orders two primary keys as the table's index does: in Go for
// integer and uuid keys, else by asking the server (collations).
func (c *Connector) compareKeys(ctx context.Context, t *table, a, b []string) (int, error) {
	simple := true
	for i, k := range t.pk {
		switch t.colOIDs[t.col(k)] {
		case oidInt2, oidInt4, oidInt8:
			x, err1 := strconv.ParseInt(a[i], 10, 64)
			y, err2 := strconv.ParseInt(b[i], 10, 64)
			if err1 != nil || err2 != nil {
				simple = false
			} else if x != y {
				return map[bool]int{true: -1, false: 1}[x < y], nil
			}
		case oidUUID:
			if d := strings.Compare(strings.ToLower(a[i]), strings.ToLower(b[i])); d != 0 {
				return d, nil
			}
		default:
			simple = false
		}
		if !simple {
			break
		}
	}
	if simple {
		return 0, nil
	}
	conn, err := c.metaConn(ctx)
	if err != nil {
		return 0, err
	}
	q := fmt.Sprintf("SELECT CASE WHEN ROW(%[1]s) < ROW(%[2]s) THEN -1 WHEN ROW(%[1]s) = ROW(%[2]s) THEN 0 ELSE 1 END", t.keyParams(1), t.keyParams(len(t.pk)+1))
	args := make([]any, 0, 2*len(t.pk))
	for _, v := range append(slices.Clone(a), b...) {
		args = append(args, v)
	}
	var out int
	if err := conn.QueryRow(ctx, q, args...).Scan(&out); err != nil {
		return 0, fmt.Errorf("compare keys of %s: %w", t.qname, err)
	}
	return out, nil
}

// tupleKey reads the primary key from a tuple.
func tupleKey(t *table, rel *relation, tup *pglogrepl.TupleData) ([]string, error) {
	if tup == nil {
		return nil, fmt.Errorf("replication data: a change of %s without a row", t.Name)
	}
	key := make([]string, len(t.pk))
	for i, k := range t.pk {
		j := slices.IndexFunc(rel.cols, func(c relColumn) bool { return c.name == k })
		if j < 0 || j >= len(tup.Columns) || tup.Columns[j].DataType != pglogrepl.TupleDataTypeText {
			return nil, permanent("a change of %s without its primary key column %s: give the table REPLICA IDENTITY DEFAULT (with a primary key) or FULL", t.Name, k)
		}
		key[i] = string(tup.Columns[j].Data)
	}
	return key, nil
}

// tupleValues turns a tuple into a record's values; unchanged TOASTed
// columns (not sent) are listed apart.
func (c *Connector) tupleValues(t *table, rel *relation, tup *pglogrepl.TupleData) (map[string]any, []string) {
	m := make(map[string]any, len(rel.cols))
	var toasted []string
	for i, col := range tup.Columns {
		if i >= len(rel.cols) {
			break
		}
		name := rel.cols[i].name
		switch col.DataType {
		case pglogrepl.TupleDataTypeNull:
			m[name] = nil
		case pglogrepl.TupleDataTypeToast:
			toasted = append(toasted, name)
		default:
			if slices.Contains(t.pk, name) {
				m[name] = string(col.Data)
			} else {
				m[name] = decode(c.baseType(rel.cols[i].oid), col.Data)
			}
		}
	}
	return m, toasted
}

// fillToasted reads the values of unchanged TOASTed columns, which the
// stream does not carry, from the table (its current row: a later change
// of the column follows in the stream anyway). A row gone meanwhile leaves
// them out; its delete follows.
func (c *Connector) fillToasted(ctx context.Context, t *table, key []string, vals map[string]any, cols []string) error {
	if len(cols) == 0 {
		return nil
	}
	conn, err := c.metaConn(ctx)
	if err != nil {
		return err
	}
	res, err := queryText(ctx, conn.PgConn(), "SELECT * FROM "+t.qname+" WHERE ("+t.keyList()+") = ("+t.keyParams(1)+")", key)
	if err != nil {
		return fmt.Errorf("read unchanged TOASTed columns of %s: %w", t.qname, err)
	}
	if len(res.rows) == 0 {
		return nil
	}
	row := c.rowValues(t, res, res.rows[0])
	for _, col := range cols {
		if v, ok := row[col]; ok {
			vals[col] = v
		}
	}
	return nil
}

// deleteValues are a delete's values: the key, and the commit time in the
// poll column when the table has one, so the delete orders after the
// row's last version.
func (c *Connector) deleteValues(t *table, rel *relation, key []string, at time.Time) map[string]any {
	m := make(map[string]any, len(key)+1)
	for i, k := range t.pk {
		m[k] = key[i]
	}
	if slices.ContainsFunc(rel.cols, func(col relColumn) bool { return col.name == c.cfg.PollColumn }) && !slices.Contains(t.pk, c.cfg.PollColumn) {
		m[c.cfg.PollColumn] = at.UTC().Format(time.RFC3339Nano)
	}
	return m
}

// noteColumns records a relation's columns, resolving unknown types, and
// logs a change of the table's columns (which then shows in the records'
// fields, for the schema observer).
func (c *Connector) noteColumns(ctx context.Context, t *table, rel *relation) error {
	var unknown []int64
	for _, col := range rel.cols {
		if _, ok := c.types[col.oid]; !ok && !knownOID(col.oid) {
			unknown = append(unknown, int64(col.oid))
		}
	}
	if len(unknown) > 0 {
		conn, err := c.metaConn(ctx)
		if err != nil {
			return err
		}
		rows, err := conn.Query(ctx, "SELECT oid::int8, (CASE WHEN typtype = 'd' THEN typbasetype ELSE oid END)::int8 FROM pg_type WHERE oid = ANY($1)", unknown)
		if err != nil {
			return fmt.Errorf("resolve column types: %w", err)
		}
		for rows.Next() {
			var oid, base int64
			if err := rows.Scan(&oid, &base); err != nil {
				rows.Close()
				return fmt.Errorf("resolve column types: %w", err)
			}
			c.types[uint32(oid)] = uint32(base)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("resolve column types: %w", err)
		}
	}
	prev := c.columns[t.Object]
	var added, dropped, retyped []string
	for _, col := range rel.cols {
		j := slices.IndexFunc(prev, func(p relColumn) bool { return p.name == col.name })
		switch {
		case j < 0:
			added = append(added, col.name)
		case prev[j].oid != col.oid:
			retyped = append(retyped, col.name)
		}
	}
	for _, p := range prev {
		if !slices.ContainsFunc(rel.cols, func(col relColumn) bool { return col.name == p.name }) {
			dropped = append(dropped, p.name)
		}
	}
	if prev != nil && len(added)+len(dropped)+len(retyped) > 0 {
		c.log.Info("source columns changed", "object", t.Object, "table", t.qname, "added", added, "dropped", dropped, "retyped", retyped)
	}
	c.columns[t.Object] = rel.cols
	return nil
}
