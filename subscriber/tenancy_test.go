package subscriber

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/subscriber/subscribertest"
)

func openTenancyStore(t *testing.T, url string) *Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := OpenPostgres(ctx, url)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func tenancyEvent(tenant string, rec canonical.Record) *canonical.Event {
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	return &canonical.Event{
		ID:     canonical.EventID(tenant, "filesource", rec.Entity(), rec.Key(), at.Format(time.RFC3339), canonical.OpUpsert),
		Tenant: tenant, Op: canonical.OpUpsert, ConnectionID: "conn-1", SourceSystem: "filesource", SourceObject: "csv",
		Time: at, MappingVersion: 1, Record: rec,
	}
}

// materializeTwoTenants stores accounts, opportunities, contacts and audit
// entries of tenants a and b, in batches that mix the two.
func materializeTwoTenants(t *testing.T, p *Postgres) {
	t.Helper()
	ctx := context.Background()
	var evs []*canonical.Event
	for _, tenant := range []string{"a", "b"} {
		for i := range 3 {
			id := fmt.Sprintf("%s-%d", tenant, i)
			evs = append(evs,
				tenancyEvent(tenant, &canonical.Account{AccountID: id, Name: "Account " + id}),
				tenancyEvent(tenant, &canonical.Opportunity{OpportunityID: id, Name: "Opportunity " + id}),
				tenancyEvent(tenant, &canonical.Contact{ContactID: id}))
		}
	}
	// Interleave the tenants within the batch.
	slices.SortStableFunc(evs, func(x, y *canonical.Event) int { return strings.Compare(x.Record.Key()[2:], y.Record.Key()[2:]) })
	if err := p.Apply(ctx, evs); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var entries []AuditEntry
	for i := range 4 {
		tenant := []string{"a", "b"}[i%2]
		entries = append(entries, AuditEntry{Tenant: tenant, EventID: fmt.Sprintf("ev-%d", i), Time: time.Now().UTC().Truncate(time.Microsecond), Status: 200})
	}
	if err := p.InsertAudit(ctx, entries); err != nil {
		t.Fatalf("InsertAudit: %v", err)
	}
}

// TestUnscopedQueryReturnsOnlyTheScopedTenant proves the row-level security:
// a deliberately unscoped query (no WHERE at all) run in tenant a's
// transaction returns a's rows and none of b's, on every tenant table.
func TestUnscopedQueryReturnsOnlyTheScopedTenant(t *testing.T) {
	p := openTenancyStore(t, subscribertest.PostgresURL(t))
	materializeTwoTenants(t, p)
	ctx := context.Background()

	for _, tenant := range []string{"a", "b"} {
		for _, table := range tenantTables() {
			var got []string
			err := p.inTenant(ctx, tenant, func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, "SELECT tenant_id FROM "+table) // no WHERE, deliberately
				if err != nil {
					return err
				}
				got, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
			if err != nil {
				t.Fatalf("%s in %s's scope: %v", table, tenant, err)
			}
			if len(got) == 0 {
				t.Errorf("%s in %s's scope: no rows, want %s's", table, tenant, tenant)
			}
			for _, g := range got {
				if g != tenant {
					t.Errorf("%s in %s's scope: a row of tenant %q", table, tenant, g)
				}
			}
		}
	}

	// Outside any tenant's scope the pool sees nothing at all: forgetting
	// the scope fails closed.
	for _, table := range tenantTables() {
		var n int
		if err := p.pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s outside a tenant's scope: %d rows, want 0", table, n)
		}
	}

	// The store's own reads agree.
	for _, tenant := range []string{"a", "b"} {
		gs, err := p.CountBySource(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) != 3 || gs[0].Count != 3 {
			t.Errorf("CountBySource(%s) = %+v, want 3 of each entity", tenant, gs)
		}
		log, _, err := p.AuditLog(ctx, tenant, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 2 {
			t.Errorf("AuditLog(%s): %d entries, want 2", tenant, len(log))
		}
	}
}

// TestOtherTenantsRowsCannotBeWritten: in tenant a's scope an insert of a
// row of tenant b is refused, and an unscoped update or delete leaves b's
// rows alone.
func TestOtherTenantsRowsCannotBeWritten(t *testing.T) {
	p := openTenancyStore(t, subscribertest.PostgresURL(t))
	materializeTwoTenants(t, p)
	ctx := context.Background()

	err := p.inTenant(ctx, "a", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO materialized_accounts (tenant_id, account_id, name, source_system, connection_id, source_updated_at, mapping_version, event_id, content_hash)
			VALUES ('b', 'forged', 'Forged', 'filesource', 'conn-1', now(), 1, 'forged', 0)`)
		return err
	})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("insert of b's row in a's scope: %v, want a row-level security violation (42501)", err)
	}
	err = p.inTenant(ctx, "a", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO audit_log (tenant_id, event_id, time, status) VALUES ('b', 'forged', now(), 200)`)
		return err
	})
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("audit insert of b's row in a's scope: %v, want a row-level security violation (42501)", err)
	}
	// Moving a's row to b is refused too.
	err = p.inTenant(ctx, "a", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE materialized_accounts SET tenant_id = 'b' WHERE account_id = 'a-0'`)
		return err
	})
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("moving a's row to b in a's scope: %v, want a row-level security violation (42501)", err)
	}

	var updated, deleted int64
	err = p.inTenant(ctx, "a", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE materialized_accounts SET name = 'renamed'`) // no WHERE, deliberately
		if err != nil {
			return err
		}
		updated = tag.RowsAffected()
		tag, err = tx.Exec(ctx, `DELETE FROM materialized_contacts`) // no WHERE, deliberately
		deleted = tag.RowsAffected()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if updated != 3 || deleted != 3 {
		t.Errorf("unscoped update and delete in a's scope touched %d and %d rows, want a's 3 each", updated, deleted)
	}
	for _, e := range []canonical.Entity{canonical.AccountEntity, canonical.ContactEntity} {
		if n, err := p.Count(ctx, "b", e); err != nil || n != 3 {
			t.Errorf("b's %s after a's unscoped writes: %d (%v), want 3", e.Plural(), n, err)
		}
	}
	page, err := p.Query(ctx, canonical.ViewQuery{Tenant: "b", Entity: canonical.AccountEntity})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range page.Rows {
		if r["name"] == "renamed" {
			t.Errorf("b's account %v was renamed in a's scope", r["account_id"])
		}
	}
}

// TestScopeEndsWithItsTransaction: the tenant set for a pipelined read does
// not stay on the connection for its next user.
func TestScopeEndsWithItsTransaction(t *testing.T) {
	p := openTenancyStore(t, subscribertest.PostgresURL(t))
	materializeTwoTenants(t, p)
	ctx := context.Background()
	c, err := p.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	b := &pgx.Batch{}
	b.Queue(scopeSQL, "a")
	b.Queue("SELECT count(*) FROM materialized_accounts")
	if err := c.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	var setting string
	var n int
	if err := c.QueryRow(ctx, "SELECT coalesce(current_setting('app.tenant_id', true), ''), (SELECT count(*) FROM materialized_accounts)").Scan(&setting, &n); err != nil {
		t.Fatal(err)
	}
	if setting != "" || n != 0 {
		t.Errorf("after a scoped batch the connection has tenant %q and sees %d accounts, want none", setting, n)
	}
	if _, err := p.Count(ctx, "", canonical.AccountEntity); !errors.Is(err, errNoTenant) {
		t.Errorf("Count without a tenant: %v, want errNoTenant", err)
	}
}

// TestEveryTenantTableHasRowLevelSecurity guards new tables: every table
// with a tenant_id is in tenantTables, with row-level security enabled and
// forced and the tenant policy; and tenant work runs as a role that the
// policies bind.
func TestEveryTenantTableHasRowLevelSecurity(t *testing.T) {
	p := openTenancyStore(t, subscribertest.PostgresURL(t))
	ctx := context.Background()
	admin, err := p.connectAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	rows, err := admin.Query(ctx, `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
			coalesce((SELECT string_agg(pol.qual || ' / ' || pol.with_check, '; ') FROM pg_policies pol
				WHERE pol.schemaname = current_schema() AND pol.tablename = c.relname), '')
		FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var name, policies string
		var enabled, forced bool
		if err := rows.Scan(&name, &enabled, &forced, &policies); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		const want = "(tenant_id = current_setting('app.tenant_id'::text, true)) / (tenant_id = current_setting('app.tenant_id'::text, true))"
		if !enabled || !forced || policies != want {
			t.Errorf("%s: row-level security enabled %v, forced %v, policies %q; want enabled, forced, %q", name, enabled, forced, policies, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(tenantTables()))
	if !slices.Equal(names, want) {
		t.Errorf("tables with a tenant_id: %v, want tenantTables() %v", names, want)
	}

	var user string
	var super, bypass bool
	if err := p.pool.QueryRow(ctx, `SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&user, &super, &bypass); err != nil {
		t.Fatal(err)
	}
	if super || bypass {
		t.Errorf("tenant work runs as %s (superuser %v, bypassrls %v): the policies do not bind it", user, super, bypass)
	}
}

// TestRebuildTablesGetTheLivePolicies: the tables a rebuild fills (made with
// LIKE, which copies no policy) carry the live tables' row-level security,
// so the rebuild's rows go through the tenant path like any other.
func TestRebuildTablesGetTheLivePolicies(t *testing.T) {
	p := openTenancyStore(t, subscribertest.PostgresURL(t))
	ctx := context.Background()
	target, err := p.beginRebuild(ctx, "a", canonical.Entities)
	if err != nil {
		t.Fatal(err)
	}
	defer target.close()
	r := target.(*pgRebuild)
	security := func(table string) string {
		var s string
		err := r.conn.QueryRow(ctx, `SELECT c.relrowsecurity::text || ' ' || c.relforcerowsecurity::text || ' ' ||
				coalesce((SELECT string_agg(concat_ws(' ', policyname, permissive, roles::text, cmd, qual, with_check), '; ')
					FROM pg_policies WHERE schemaname = current_schema() AND tablename = c.relname), '') || ' ' ||
				has_table_privilege($2, c.oid, 'SELECT, INSERT, UPDATE, DELETE')::text
			FROM pg_class c WHERE c.oid = to_regclass($1)`, table, AppRole).Scan(&s)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		return s
	}
	for e, rt := range r.tables {
		live, _ := tableOf(e)
		if got, want := security(rt.name), security(live.name); got != want {
			t.Errorf("%s: row-level security %q, want the live table's %q", rt.name, got, want)
		}
	}
	// The rebuild's rows and its swap are scoped to its tenant.
	if err := target.apply(ctx, []*canonical.Event{tenancyEvent("a", &canonical.Account{AccountID: "a-1", Name: "A"})}); err != nil {
		t.Fatal(err)
	}
	err = target.apply(ctx, []*canonical.Event{tenancyEvent("b", &canonical.Account{AccountID: "b-1", Name: "B"})})
	if err != nil {
		t.Fatal(err) // b's own scope: allowed, and never swapped in for a
	}
	if err := target.swap(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Count(ctx, "a", canonical.AccountEntity); err != nil || n != 1 {
		t.Errorf("a's accounts after the swap: %d (%v), want 1", n, err)
	}
	if n, err := p.Count(ctx, "b", canonical.AccountEntity); err != nil || n != 0 {
		t.Errorf("b's accounts after a's swap: %d (%v), want 0", n, err)
	}
}

// asRole creates a NOLOGIN role that is neither superuser nor BYPASSRLS
// (when missing: roles are cluster-wide), runs grants (%s is the schema)
// and returns base connecting as that role. The test cluster's trust login
// is postgres, so the role is taken at connection start (-crole).
func asRole(t *testing.T, admin *pgx.Conn, base, role string, grants ...string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := admin.Exec(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '`+role+`') THEN
			CREATE ROLE `+role+` NOLOGIN NOSUPERUSER NOBYPASSRLS;
		END IF;
	EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
	END $$`); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := admin.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	for _, g := range grants {
		if _, err := admin.Exec(ctx, fmt.Sprintf(g, pgx.Identifier{schema}.Sanitize())+" TO "+role); err != nil {
			t.Fatal(err)
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("options", q.Get("options")+" -crole="+role)
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20") // pgx reads + literally
	return u.String()
}

// TestRolesWithoutBypassAreBound opens the store as roles that are neither
// superuser nor BYPASSRLS, with the grants docs/OPERATIONS.md asks for: the
// tables' owner (bound by FORCE ROW LEVEL SECURITY), then a role that owns
// nothing. Neither needs a role switch, isolation holds, and a rebuild works.
func TestRolesWithoutBypassAreBound(t *testing.T) {
	base := subscribertest.PostgresURL(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	owner := asRole(t, admin, base, "autonomos_test_owner", "GRANT USAGE, CREATE ON SCHEMA %s")
	user := asRole(t, admin, base, "autonomos_test_user", "GRANT USAGE, CREATE ON SCHEMA %s")

	for i, u := range []string{owner, user} {
		p := openTenancyStore(t, u) // the owner's open creates the tables
		if i == 0 {
			asRole(t, admin, base, "autonomos_test_user",
				"GRANT SELECT ON %s.schema_migrations",
				"GRANT SELECT, INSERT, UPDATE, DELETE ON %[1]s.materialized_accounts, %[1]s.materialized_opportunities, %[1]s.materialized_contacts, %[1]s.audit_log")
		}
		if p.role != "" {
			t.Errorf("store role %q, want none: the policies bind the URL's role", p.role)
		}
		materializeTwoTenants(t, p)
		var tenants []string
		err = p.inTenant(ctx, "a", func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, "SELECT DISTINCT tenant_id FROM materialized_opportunities")
			if err != nil {
				return err
			}
			tenants, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		if err != nil || !slices.Equal(tenants, []string{"a"}) {
			t.Errorf("role %d: unscoped query in a's scope: tenants %v (%v), want [a]", i, tenants, err)
		}
		target, err := p.beginRebuild(ctx, "a", canonical.Entities)
		if err != nil {
			t.Fatalf("role %d: rebuild: %v", i, err)
		}
		err = target.swap(ctx)
		target.close()
		if err != nil {
			t.Fatalf("role %d: rebuild swap: %v", i, err)
		}
		if n, err := p.Count(ctx, "b", canonical.AccountEntity); err != nil || n != 3 {
			t.Errorf("role %d: b's accounts after a's rebuild: %d (%v), want 3", i, n, err)
		}
		p.Close()
	}
}

// TestConcurrentOpensShareTheRole: stores opening at once in schemas of
// their own (the role is cluster-wide) all succeed.
func TestConcurrentOpensShareTheRole(t *testing.T) {
	urls := make([]string, 4)
	for i := range urls {
		urls[i] = subscribertest.PostgresURL(t)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(urls))
	for i, u := range urls {
		wg.Go(func() {
			p, err := OpenPostgres(context.Background(), u)
			if err == nil {
				p.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
