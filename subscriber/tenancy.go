package subscriber

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Tenant isolation in Postgres, in depth. Every query names its tenant, and
// row-level security (migration 0003) makes a query that forgets to see and
// touch only the rows of the tenant its transaction is scoped to:
//
//   - Tenant work (every Apply, read, count, audit insert and read, and the
//     row work of a rebuild) runs on the store's pool, and each of its
//     transactions first runs scopeSQL, which sets app.tenant_id for that
//     transaction only. A transaction that is not scoped sees no row and can
//     write none: forgetting the scope fails closed.
//   - Superusers and BYPASSRLS roles bypass every policy. When the URL's role
//     is one, the pool's connections SET ROLE AppRole (created when missing,
//     granted what tenant work needs), so the policies bind them. Any other
//     role is bound already: FORCE ROW LEVEL SECURITY binds the tables' owner.
//   - The admin path is the URL's role on a connection of its own, without a
//     tenant: migrations, the grants, and the rebuild's tables and lock. It
//     never reads or writes rows of tenant tables. No operation of the store
//     spans tenants. One that must (a cross-tenant metric, say) belongs on the
//     admin path, says so, and needs the URL's role to bypass row-level
//     security: a production role, bound by the policies, sees no row there.
//
// DuckDB has no row-level security; its isolation is the WHERE tenant_id of
// every query alone.

// AppRole is the role the Postgres store does tenant work as when the URL's
// role bypasses row-level security (a superuser, or a BYPASSRLS role, which
// must then be a member of it).
const AppRole = "autonomos_app"

// scopeSQL scopes the rest of the transaction to a tenant ($1): the policies
// compare every row's tenant_id with app.tenant_id.
const scopeSQL = `SELECT set_config('app.tenant_id', $1, true)`

// tenantTables are the tables with a tenant_id, each under the policies of
// migration 0003 (TestEveryTenantTableHasRowLevelSecurity checks that no
// table with a tenant_id is missing).
func tenantTables() []string {
	out := make([]string, 0, len(tables)+1)
	for _, t := range tables {
		out = append(out, t.name)
	}
	return append(out, "audit_log")
}

// errNoTenant refuses tenant work without a tenant.
var errNoTenant = errors.New("postgres: no tenant: every read and write is scoped to one tenant")

// connectAdmin opens a connection of the admin path: the URL's role, no
// tenant, no role switch. The caller closes it.
func (p *Postgres) connectAdmin(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.ConnectConfig(ctx, p.adminCfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return c, nil
}

// tenantRole says which role the pool's connections must switch to: AppRole
// when the connection's role bypasses row-level security (creating AppRole
// when it is missing), "" when the policies bind it already.
func tenantRole(ctx context.Context, c *pgx.Conn) (string, error) {
	var user string
	var super, bypass bool
	if err := c.QueryRow(ctx, `SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&user, &super, &bypass); err != nil {
		return "", fmt.Errorf("postgres: role attributes: %w", err)
	}
	if !super && !bypass {
		return "", nil
	}
	// Roles are cluster-wide: several processes (or test schemas) may create
	// it at once, and the loser sees duplicate_object or unique_violation.
	_, err := c.Exec(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '`+AppRole+`') THEN
			CREATE ROLE `+AppRole+` NOLOGIN NOSUPERUSER NOBYPASSRLS;
		END IF;
	EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
	END $$`)
	if err != nil {
		return "", fmt.Errorf("postgres: the connection's role bypasses row-level security and role %s cannot be created (create it NOLOGIN and grant it to this role, or connect as a role without BYPASSRLS): %w", AppRole, err)
	}
	var member bool
	if err := c.QueryRow(ctx, `SELECT pg_has_role(current_user, $1, 'MEMBER')`, AppRole).Scan(&member); err != nil {
		return "", fmt.Errorf("postgres: role %s: %w", AppRole, err)
	}
	if !member {
		return "", fmt.Errorf("postgres: the connection's role bypasses row-level security and is not a member of %s: GRANT %s TO %s, or connect as a role without BYPASSRLS", AppRole, AppRole, pgx.Identifier{user}.Sanitize())
	}
	return AppRole, nil
}

// grantSQL gives role what tenant work needs of tables, and nothing else (no
// DDL, not schema_migrations).
func grantSQL(role string, tables ...string) []string {
	var out []string
	for _, t := range tables {
		out = append(out, "GRANT SELECT, INSERT, UPDATE, DELETE ON "+pgx.Identifier{t}.Sanitize()+" TO "+pgx.Identifier{role}.Sanitize())
	}
	return out
}

// grantTenantWork gives role the use of the current schema and grantSQL of
// every tenant table, unless it has them already (a GRANT rewrites catalog
// rows even when it changes nothing). It runs in the migration's
// transaction, under its lock: concurrent GRANTs on one object may fail.
func grantTenantWork(ctx context.Context, tx pgx.Tx, role string) error {
	var schema string
	var granted bool
	if err := tx.QueryRow(ctx, `SELECT current_schema(), has_schema_privilege($1, current_schema(), 'USAGE') AND
			bool_and(has_table_privilege($1, t, 'SELECT') AND has_table_privilege($1, t, 'INSERT') AND
				has_table_privilege($1, t, 'UPDATE') AND has_table_privilege($1, t, 'DELETE'))
		FROM unnest($2::text[]) AS t`, role, tenantTables()).Scan(&schema, &granted); err != nil {
		return fmt.Errorf("postgres grants: %w", err)
	}
	if granted {
		return nil
	}
	stmts := append([]string{"GRANT USAGE ON SCHEMA " + pgx.Identifier{schema}.Sanitize() + " TO " + pgx.Identifier{role}.Sanitize()},
		grantSQL(role, tenantTables()...)...)
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("postgres grants: %w", err)
		}
	}
	return nil
}

// copySecurity gives table dst the row-level security of table src: enabled
// and forced alike, the same policies, and (when role is set) the grants of
// tenant work. A table made by CREATE TABLE ... (LIKE ...) has none of it.
func copySecurity(ctx context.Context, c *pgx.Conn, dst, src, role string) error {
	var enabled, forced bool
	if err := c.QueryRow(ctx, `SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = to_regclass($1)`,
		pgx.Identifier{src}.Sanitize()).Scan(&enabled, &forced); err != nil {
		return fmt.Errorf("row-level security of %s: %w", src, err)
	}
	rows, err := c.Query(ctx, `SELECT policyname, permissive, roles::text[], cmd, qual, with_check
		FROM pg_policies WHERE schemaname = current_schema() AND tablename = $1 ORDER BY policyname`, src)
	if err != nil {
		return fmt.Errorf("policies of %s: %w", src, err)
	}
	type policy struct {
		name, permissive, cmd string
		roles                 []string
		qual, check           *string
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy, error) {
		var p policy
		return p, r.Scan(&p.name, &p.permissive, &p.roles, &p.cmd, &p.qual, &p.check)
	})
	if err != nil {
		return fmt.Errorf("policies of %s: %w", src, err)
	}
	if enabled != (len(ps) > 0) || enabled != forced {
		// Not the tables of migration 0003: refuse rather than guess.
		return fmt.Errorf("row-level security of %s: enabled %v, forced %v, %d policies: want all or none", src, enabled, forced, len(ps))
	}
	d := pgx.Identifier{dst}.Sanitize()
	var stmts []string
	if enabled {
		stmts = append(stmts, "ALTER TABLE "+d+" ENABLE ROW LEVEL SECURITY", "ALTER TABLE "+d+" FORCE ROW LEVEL SECURITY")
	}
	for _, p := range ps {
		var to []string
		for _, r := range p.roles {
			if r == "public" {
				to = append(to, "PUBLIC")
			} else {
				to = append(to, pgx.Identifier{r}.Sanitize())
			}
		}
		q := fmt.Sprintf("CREATE POLICY %s ON %s AS %s FOR %s TO %s", pgx.Identifier{p.name}.Sanitize(), d, p.permissive, p.cmd, strings.Join(to, ", "))
		if p.qual != nil {
			q += " USING (" + *p.qual + ")"
		}
		if p.check != nil {
			q += " WITH CHECK (" + *p.check + ")"
		}
		stmts = append(stmts, q)
	}
	if role != "" {
		stmts = append(stmts, grantSQL(role, dst)...)
	}
	for _, q := range stmts {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("row-level security of %s: %w", dst, err)
		}
	}
	return nil
}

// tenantGroups are a prepared batch's groups of one tenant.
type tenantGroups struct {
	tenant string
	groups []group
}

// byTenant splits prepared groups by tenant, tenants in byte order, tables
// in their order within each: a batch mixing tenants is applied tenant by
// tenant, each in its scope, in one transaction.
func byTenant(groups []group) []tenantGroups {
	if len(groups) == 0 {
		return nil
	}
	first, mixed := groups[0].events[0].Tenant, false
	for _, g := range groups {
		for _, ev := range g.events {
			if ev.Tenant != first {
				mixed = true
				break
			}
		}
	}
	if !mixed {
		return []tenantGroups{{tenant: first, groups: groups}}
	}
	at := map[string]int{}
	var out []tenantGroups
	for _, g := range groups {
		for _, ev := range g.events {
			i, ok := at[ev.Tenant]
			if !ok {
				i = len(out)
				at[ev.Tenant] = i
				out = append(out, tenantGroups{tenant: ev.Tenant})
			}
			tg := &out[i]
			if n := len(tg.groups); n == 0 || tg.groups[n-1].t != g.t {
				tg.groups = append(tg.groups, group{t: g.t})
			}
			last := &tg.groups[len(tg.groups)-1]
			last.events = append(last.events, ev)
		}
	}
	slices.SortFunc(out, func(a, b tenantGroups) int { return strings.Compare(a.tenant, b.tenant) })
	return out
}
