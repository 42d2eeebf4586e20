-- Row-level security on every tenant table, as defense in depth: every
-- query already says WHERE tenant_id = ..., and these policies make a query
-- that forgets to (or gets it wrong) see and touch only the rows of the
-- tenant its transaction is scoped to. The store scopes each transaction
-- with set_config('app.tenant_id', <tenant>, true); a transaction that is not
-- scoped sees no row and can write none. FORCE applies the policies to the
-- tables' owner too; superusers and BYPASSRLS roles still bypass them, which
-- is why the store does its tenant work as a role that does not (see
-- subscriber/tenancy.go and docs/OPERATIONS.md). Tables that rebuild makes
-- copy these policies from the live table.

ALTER TABLE materialized_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE materialized_accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON materialized_accounts
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE materialized_opportunities ENABLE ROW LEVEL SECURITY;
ALTER TABLE materialized_opportunities FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON materialized_opportunities
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE materialized_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE materialized_contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON materialized_contacts
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
