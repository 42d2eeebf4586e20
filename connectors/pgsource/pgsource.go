package pgsource

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
)

// System is the connector's system name (and its mapping file's).
const System = "postgres"

// applicationName names the connector's sessions in pg_stat_activity when
// the DSN does not.
const applicationName = "autonomos-pgsource"

// Connector reads the tables of one Postgres database, by logical
// replication (cdc) or by polling.
//
// Check, Objects, Fetch and Close may not be called concurrently (the
// Runner calls one at a time); Close waits for a running Fetch, which ends
// within moments of its ctx's end. Within a sync, between Fetch calls, the
// connector keeps its sessions open: a regular one, in cdc mode the
// snapshot transaction while tables are being snapshotted and the
// replication session. It releases them all when a Fetch fails and when
// the last object's Fetch reports More=false (the end of a sync), so a
// connector that finished its sync holds nothing. Whoever made the
// connector calls Close when done with it (it implements io.Closer) to
// release them after a sync that ended early (cancelled, or failed
// publishing). A connector dropped without Close loses nothing either: its
// sessions end when the server times them out (wal_sender_timeout for the
// replication session, idle_in_transaction_session_timeout of 10 minutes
// for the snapshot) or when the garbage collector closes their sockets,
// and the next connector resumes from the stored cursors.
type Connector struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	byObj   map[string]Table
	tables  map[string]*table // by object, from the catalog (nil until loaded)
	meta    *pgx.Conn
	metaAt  time.Time // last use of meta
	snap    *snapshot
	sess    *session
	acked   map[string]cursor // cdc: the cursor the Runner last handed in, per object
	latest  map[string]cursor // cdc: the newest cursor known per object (acked or returned)
	columns map[string][]relColumn
	types   map[uint32]uint32 // type OID → base type OID
	slotLSN lsn               // the slot's confirmed_flush_lsn as last seen or sent
}

var (
	_ connectors.Connector = (*Connector)(nil)
	_ io.Closer            = (*Connector)(nil)
)

// Factory builds a Postgres connector; it validates the connection without
// contacting the database.
func Factory(c connectors.Connection, d connectors.Deps) (connectors.Connector, error) {
	return New(c, d)
}

// New validates c and returns its connector; it does not contact the
// database.
func New(c connectors.Connection, d connectors.Deps) (*Connector, error) {
	cfg, err := ParseConfig(c)
	if err != nil {
		return nil, err
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	con := &Connector{cfg: cfg, byObj: map[string]Table{}, acked: map[string]cursor{}, latest: map[string]cursor{},
		columns: map[string][]relColumn{}, types: map[uint32]uint32{},
		log: log.With("component", "connector", "system", System, "connection_id", c.ID, "mode", cfg.Mode)}
	for _, t := range cfg.Tables {
		con.byObj[t.Object] = t
	}
	return con, nil
}

// Objects lists the configured tables' object names, in order.
func (c *Connector) Objects() []string {
	out := make([]string, len(c.cfg.Tables))
	for i, t := range c.cfg.Tables {
		out[i] = t.Object
	}
	return out
}

// Entity returns the canonical entity configured for an object, if any.
func (c *Connector) Entity(object string) (canonical.Entity, bool) {
	t, ok := c.byObj[object]
	return t.Entity, ok && t.Entity != ""
}

// Config returns the connector's validated config.
func (c *Connector) Config() Config { return c.cfg }

// Fetch returns the page of object that follows cursor. In cdc mode the
// first pages are the table's snapshot, in primary-key chunks; the pages
// after it are changes from the replication stream, and More is false once
// the stream has delivered every change committed before the pass began
// (and, with poll_interval, none came for that long). In poll mode pages
// follow the poll column. Connection failures are retried inside Fetch with
// backoff (1 s, 1 s, 2 s, ... about 45 s in all); ctx's end returns ctx's
// error within moments.
func (c *Connector) Fetch(ctx context.Context, object, cur string) (connectors.Page, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return connectors.Page{}, err
	}
	if _, ok := c.byObj[object]; !ok {
		return connectors.Page{}, permanent("unknown object %q (configured: %v)", object, c.Objects())
	}
	cu, err := parseCursor(cur)
	if err != nil {
		return connectors.Page{}, permanent("the stored cursor of %s: %v (reset the connection's cursors to read the table again)", object, err)
	}
	switch {
	case cu.Phase == phasePoll && c.cfg.Mode != ModePoll, cu.Phase != "" && cu.Phase != phasePoll && c.cfg.Mode == ModePoll:
		return connectors.Page{}, permanent("the stored cursor of %s is of the other mode than config.mode %s (reset the connection's cursors to read the table again)", object, c.cfg.Mode)
	case cu.Slot != "" && cu.Slot != c.cfg.Slot:
		return connectors.Page{}, permanent("the stored cursor of %s belongs to replication slot %q, but config.slot is %q (reset the connection's cursors to take a new snapshot)", object, cu.Slot, c.cfg.Slot)
	}
	if c.cfg.Mode == ModeCDC {
		c.acked[object], c.latest[object] = cu, cu
	}
	for attempt := 0; ; attempt++ {
		page, err := c.fetch(ctx, object, cu)
		if err == nil {
			if c.cfg.Mode == ModeCDC {
				next, _ := parseCursor(page.Cursor)
				c.latest[object] = next
				c.afterPage()
			}
			if !page.More && object == c.cfg.Tables[len(c.cfg.Tables)-1].Object {
				// The end of a sync: hold nothing until the next one.
				c.stopSession(ctx)
				c.release()
			}
			return page, nil
		}
		c.release()
		if ctx.Err() != nil {
			return connectors.Page{}, ctx.Err()
		}
		if isPermanent(err) || attempt >= len(retryDelays) {
			return connectors.Page{}, classify(err)
		}
		c.log.Warn("fetch failed; retrying", "object", object, "attempt", attempt+1, "retry_in", retryDelays[attempt], "error", err)
		if err := sleep(ctx, retryDelays[attempt]); err != nil {
			return connectors.Page{}, err
		}
	}
}

func (c *Connector) fetch(ctx context.Context, object string, cu cursor) (connectors.Page, error) {
	t, err := c.table(ctx, object)
	if err != nil {
		return connectors.Page{}, err
	}
	if c.cfg.Mode == ModePoll {
		return c.pollPage(ctx, t, cu)
	}
	switch cu.Phase {
	case "", phaseSnapshot:
		return c.snapshotPage(ctx, t, cu)
	default:
		return c.streamPage(ctx, t, cu)
	}
}

// afterPage closes the snapshot transaction once no table can need it:
// every table's newest cursor is in the stream phase.
func (c *Connector) afterPage() {
	if c.snap == nil || len(c.latest) < len(c.cfg.Tables) {
		return
	}
	for _, cu := range c.latest {
		if cu.Phase != phaseStream {
			return
		}
	}
	c.closeSnapshot()
}

// Close releases the connector's connections. The connector may be used
// again afterwards (it reconnects).
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release()
	return nil
}

// release closes every connection.
func (c *Connector) release() {
	c.closeSession()
	c.closeSnapshot()
	if c.meta != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = c.meta.Close(ctx)
		cancel()
		c.meta = nil
	}
	c.tables = nil
}

// table returns the catalog description of an object's table, loading the
// catalog when the metadata session is new.
func (c *Connector) table(ctx context.Context, object string) (*table, error) {
	conn, err := c.metaConn(ctx)
	if err != nil {
		return nil, err
	}
	if c.tables == nil {
		ts, err := loadTables(ctx, conn, c.cfg.Tables)
		if err != nil {
			return nil, err
		}
		c.tables = map[string]*table{}
		for _, t := range ts {
			c.tables[t.Object] = t
			for i, o := range t.colOIDs {
				c.types[t.rawOIDs[i]] = o
			}
			if _, seen := c.columns[t.Object]; !seen {
				cols := make([]relColumn, len(t.cols))
				for i := range t.cols {
					cols[i] = relColumn{name: t.cols[i], oid: t.rawOIDs[i]}
				}
				c.columns[t.Object] = cols
			}
		}
	}
	t := c.tables[object]
	switch {
	case !t.found:
		return nil, permanent("table %s does not exist (or is not on the search_path of the DSN's user)", t.Name)
	case len(t.pk) == 0:
		return nil, permanent("table %s has no primary key; add one (the connector reads and resumes by it)", t.Name)
	}
	return t, nil
}

// metaIdle is how long the metadata session may sit unused before it is
// replaced rather than trusted.
const metaIdle = 5 * time.Minute

// metaConn returns the regular session, connecting when needed.
func (c *Connector) metaConn(ctx context.Context) (*pgx.Conn, error) {
	if c.meta != nil && (c.meta.IsClosed() || time.Since(c.metaAt) > metaIdle) {
		_ = c.meta.Close(ctx)
		c.meta, c.tables = nil, nil
	}
	if c.meta == nil {
		conn, err := c.connect(ctx, nil)
		if err != nil {
			return nil, err
		}
		c.meta = conn
	}
	c.metaAt = time.Now()
	return c.meta, nil
}

// sessionParams are set on every session so values print the same way in
// queries and in the replication stream.
var sessionParams = map[string]string{
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
}

// connConfig returns the DSN's config with the session parameters and
// extra added.
func (c *Connector) connConfig(extra map[string]string) (*pgx.ConnConfig, error) {
	cc, err := pgx.ParseConfig(c.cfg.DSN)
	if err != nil {
		return nil, permanent("secrets.dsn is not a valid Postgres connection string")
	}
	delete(cc.RuntimeParams, "replication") // only the replication session replicates
	for k, v := range sessionParams {
		cc.RuntimeParams[k] = v
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = applicationName
	}
	for k, v := range extra {
		cc.RuntimeParams[k] = v
	}
	return cc, nil
}

// connect opens a regular session.
func (c *Connector) connect(ctx context.Context, extra map[string]string) (*pgx.Conn, error) {
	cc, err := c.connConfig(extra)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return conn, nil
}

// connectReplication opens a replication session (replication=database).
func (c *Connector) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	cc, err := c.connConfig(map[string]string{"replication": "database"})
	if err != nil {
		return nil, err
	}
	conn, err := pgconn.ConnectConfig(ctx, &cc.Config)
	if err != nil {
		return nil, fmt.Errorf("connect for replication: %w", err)
	}
	return conn, nil
}

// closeQuietly closes a connection without waiting long for a clean end.
func closeQuietly(conn *pgconn.PgConn) {
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx) // the socket is gone either way
}
