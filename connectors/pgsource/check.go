package pgsource

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Check connects and verifies, up front, what the mode needs, with a
// message per problem that says what to grant or change: every table
// exists, is readable (SELECT) and has a primary key (poll mode: and the
// poll column); cdc mode: wal_level = logical, the role may replicate
// (REPLICATION or superuser), the publication exists and publishes the
// tables or can be created or extended, the tables' replica identity gives
// deleted keys, and the slot is this database's pgoutput slot or a free
// slot remains. Its problems are one *connectors.PermanentError. Check uses
// a session of its own and closes it.
func (c *Connector) Check(ctx context.Context) error {
	conn, err := c.connect(ctx, nil)
	if err != nil {
		return classify(err)
	}
	defer conn.Close(context.Background())
	tables, err := loadTables(ctx, conn, c.cfg.Tables)
	if err != nil {
		return classify(err)
	}
	var probs []string
	var role string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&role); err != nil {
		return classify(err)
	}
	grantee := quoteIdent(role)
	for _, t := range tables {
		switch {
		case !t.found:
			probs = append(probs, fmt.Sprintf("table %s does not exist or is not visible to %s (check the name, the search_path, and GRANT USAGE ON SCHEMA ... TO %s)", t.Name, role, grantee))
			continue
		case t.kind != "r" && t.kind != "p":
			probs = append(probs, fmt.Sprintf("%s is not a table (relkind %s); only tables can be read", t.Name, t.kind))
			continue
		}
		if !t.canSelect {
			probs = append(probs, fmt.Sprintf("%s may not read %s: GRANT SELECT ON %s TO %s", role, t.Name, t.qname, grantee))
		}
		if len(t.pk) == 0 {
			probs = append(probs, fmt.Sprintf("table %s has no primary key: add one (ALTER TABLE %s ADD PRIMARY KEY (...)); the connector reads, resumes and keys records by it", t.Name, t.qname))
		}
		if c.cfg.Mode == ModePoll {
			if i := t.col(c.cfg.PollColumn); i < 0 {
				probs = append(probs, fmt.Sprintf("table %s has no column %q (config.poll_column: the column holding each row's modified stamp)", t.Name, c.cfg.PollColumn))
			}
			if c.cfg.DeletedColumn != "" {
				if i := t.col(c.cfg.DeletedColumn); i < 0 || t.colOIDs[i] != oidBool {
					probs = append(probs, fmt.Sprintf("table %s has no boolean column %q (config.deleted_column)", t.Name, c.cfg.DeletedColumn))
				}
			}
			continue
		}
		switch t.replIdent {
		case "n":
			probs = append(probs, fmt.Sprintf("table %s has REPLICA IDENTITY NOTHING, so deletes carry no key: ALTER TABLE %s REPLICA IDENTITY DEFAULT", t.Name, t.qname))
		case "i":
			probs = append(probs, fmt.Sprintf("table %s's replica identity is an index other than its primary key, so deletes may lack the key: ALTER TABLE %s REPLICA IDENTITY DEFAULT (or FULL)", t.Name, t.qname))
		}
	}
	if c.cfg.Mode == ModeCDC {
		probs = append(probs, c.checkReplication(ctx, conn, tables, role)...)
	}
	if len(probs) > 0 {
		return permanent("the postgres source is not ready:\n- %s", strings.Join(probs, "\n- "))
	}
	return nil
}

const replicationSQL = `
SELECT current_setting('wal_level'), r.rolreplication, r.rolsuper,
  has_database_privilege(current_database(), 'CREATE'),
  current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_replication_slots)::int,
  current_setting('max_wal_senders')::int,
  s.slot_name IS NOT NULL, coalesce(s.plugin::text, ''), coalesce(s.database = current_database(), false), coalesce(s.slot_type = 'logical', false),
  p.oid IS NOT NULL, coalesce(p.pubinsert AND p.pubupdate AND p.pubdelete, false), coalesce(p.puballtables, false),
  coalesce(pg_has_role(p.pubowner, 'USAGE'), false),
  coalesce(array(SELECT pt.schemaname || '.' || pt.tablename FROM pg_publication_tables pt WHERE pt.pubname = $2), '{}')
FROM pg_roles r
LEFT JOIN pg_replication_slots s ON s.slot_name = $1
LEFT JOIN pg_publication p ON p.pubname = $2
WHERE r.rolname = current_user`

// checkReplication lists what keeps logical replication from working.
func (c *Connector) checkReplication(ctx context.Context, conn *pgx.Conn, tables []*table, role string) []string {
	var (
		walLevel                            string
		replication, super, canCreate       bool
		maxSlots, slots, maxSenders         int
		slotExists, slotSameDB, slotLogical bool
		plugin                              string
		pubExists, pubOK, pubAll, pubOwned  bool
		pubTables                           []string
	)
	err := conn.QueryRow(ctx, replicationSQL, c.cfg.Slot, c.cfg.Publication).Scan(&walLevel, &replication, &super, &canCreate,
		&maxSlots, &slots, &maxSenders, &slotExists, &plugin, &slotSameDB, &slotLogical, &pubExists, &pubOK, &pubAll, &pubOwned, &pubTables)
	if err != nil {
		return []string{fmt.Sprintf("reading the replication settings failed: %v", err)}
	}
	grantee := quoteIdent(role)
	var probs []string
	if walLevel != "logical" {
		probs = append(probs, fmt.Sprintf("wal_level is %s, logical replication needs logical: ALTER SYSTEM SET wal_level = logical, then restart Postgres (or use config.mode poll)", walLevel))
	}
	if !replication && !super {
		probs = append(probs, fmt.Sprintf("role %s may not replicate: ALTER ROLE %s REPLICATION (or use config.mode poll)", role, grantee))
	}
	if maxSenders < 1 {
		probs = append(probs, "max_wal_senders is 0: raise it (and restart Postgres)")
	}
	switch {
	case slotExists && (!slotLogical || plugin != "pgoutput" || !slotSameDB):
		probs = append(probs, fmt.Sprintf("replication slot %q exists but is not a pgoutput slot of this database; choose another config.slot", c.cfg.Slot))
	case !slotExists && slots >= maxSlots:
		probs = append(probs, fmt.Sprintf("all %d replication slots (max_replication_slots) are in use: raise max_replication_slots or drop an unused slot", maxSlots))
	case slotExists && slots >= maxSlots:
		probs = append(probs, fmt.Sprintf("all %d replication slots (max_replication_slots) are in use, and a snapshot needs a temporary one: raise max_replication_slots", maxSlots))
	}
	published := map[string]bool{}
	for _, t := range pubTables {
		published[t] = true
	}
	var missing, notOwned []string
	for _, t := range tables {
		if !t.found {
			continue
		}
		if !pubAll && !published[t.schema+"."+t.name] {
			missing = append(missing, t.qname)
			if !t.owned && !super {
				notOwned = append(notOwned, t.qname)
			}
		}
	}
	pub := quoteIdent(c.cfg.Publication)
	switch {
	case !pubExists && (!canCreate && !super || len(notOwned) > 0):
		probs = append(probs, fmt.Sprintf("publication %q does not exist and %s cannot create it (it needs CREATE on the database and ownership of the tables): as the tables' owner run CREATE PUBLICATION %s FOR TABLE %s WITH (publish = 'insert, update, delete')",
			c.cfg.Publication, role, pub, strings.Join(missing, ", ")))
	case pubExists && !pubOK:
		probs = append(probs, fmt.Sprintf("publication %q does not publish insert, update and delete: ALTER PUBLICATION %s SET (publish = 'insert, update, delete')", c.cfg.Publication, pub))
	case pubExists && len(missing) > 0 && (!pubOwned && !super || len(notOwned) > 0):
		probs = append(probs, fmt.Sprintf("publication %q lacks %s and %s cannot add them: as the owner run ALTER PUBLICATION %s ADD TABLE %s",
			c.cfg.Publication, strings.Join(missing, ", "), role, pub, strings.Join(missing, ", ")))
	}
	return probs
}
