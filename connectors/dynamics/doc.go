// Package dynamics is the Dynamics 365 (Dataverse) connector: it reads the
// entity sets accounts, opportunities and contacts (or any entity set with a
// mapping and change tracking enabled) through the Web API (OData v4) with an
// Entra ID client-credentials token. Config keys: base_url (the org URL,
// required), token_url (the tenant's /oauth2/v2.0/token, required), scope
// (default base_url + "/.default"), objects (default accounts,
// opportunities, contacts; account, opportunity and contact are accepted),
// page_size (Prefer: odata.maxpagesize, default 1000), api_version (default
// v9.2); secrets client_id and client_secret.
//
// Contract and invariants: every object is read with change tracking (one
// strategy for all objects). The first sync sends Prefer:
// odata.track-changes and follows @odata.nextLink to the last page, whose
// @odata.deltaLink becomes the cursor; each later sync reads that delta link:
// records created or changed since, and $deletedEntity rows, which become
// Record{Deleted: true} carrying the primary id. The cursor is opaque JSON
// {v, next, delta}: next is the nextLink while a response's pages are being
// read (a restart resumes inside them), delta the last delta link. An
// expired delta token starts a full read again (republishing is idempotent:
// same event ids); an expired paging cookie re-reads from the delta link.
// $select is the entity's readable attributes from the metadata API (lookups
// as _x_value), so unmapped fields reach the canonical extras and new
// fields show in RAW; a mapped attribute the metadata lacks is logged as
// drift and left out, and a "Could not find a property" answer (a column
// renamed meanwhile) re-reads the metadata and retries. Change tracking
// refuses $expand, so the currency's ISO code is looked up in
// transactioncurrencies and added to each record as
// transactioncurrencyid.isocurrencycode (when the org lets the connector
// read that entity set). Each Fetch sends one data request; the connector
// never calls the source from Factory, never logs a secret, and returns
// within moments of ctx's end.
package dynamics
