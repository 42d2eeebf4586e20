// Package salesforce is the Salesforce connector: it reads Account,
// Opportunity and Contact (or any queryable sObject with a mapping) through
// the REST API's SOQL query endpoints, incrementally by SystemModstamp, and
// reports deletions from queryAll's IsDeleted rows. Config keys:
// instance_url (required), login_url (where /services/oauth2/token lives,
// default https://login.salesforce.com), api_version (default v59.0),
// objects (default Account, Opportunity, Contact; account, opportunity and
// contact are accepted), page_size (optional Sforce-Query-Options batchSize);
// secrets client_id and client_secret, plus refresh_token for the
// refresh-token grant (without it, the client-credentials grant is used).
//
// Contract and invariants: each Fetch sends one query request (plus a
// describe on first use of an object, and a token grant when needed) and
// returns the page with an opaque JSON cursor {v, phase, stamp, ids,
// overflow, last_id, next}: the highest SystemModstamp emitted, the ids
// emitted at exactly that stamp, and the nextRecordsUrl while a query's
// batches are being read, so a restart resumes inside the query. The first
// sync reads live records with /query; later syncs read /queryAll with
// "SystemModstamp >= stamp", skipping the ids already emitted at the
// boundary stamp, so a record changed later within the same second is never
// missed and no record is read twice; deleted rows (IsDeleted = true) become
// Record{Deleted: true}; Options.Settle can hold back changes younger than
// a window (SystemModstamp is taken before commit). The SELECT list is the object's describe (every
// readable field except compound and binary ones, so unmapped fields land in
// the canonical extras and new fields show in RAW); a mapped field missing
// from the describe is logged as drift and left out; a query failing with
// INVALID_FIELD (a field renamed at the source meanwhile) re-describes and
// retries, so drift never stops the sync. The connector never calls the
// source from Factory, never logs a secret, and returns within moments of
// ctx's end.
package salesforce
