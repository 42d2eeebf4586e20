// Package hubspot is the HubSpot connector: it reads the CRM v3 objects
// companies, deals and contacts, flattened to their properties plus
// hs_object_id, archived and, for deals and contacts, associatedcompanyid
// (the primary company association; deal_to_company and its _unlabeled twin
// name the same company once). Config keys: base_url (default
// https://api.hubapi.com), objects (default companies, deals, contacts;
// account, opportunity and contact are accepted), page_size (1..100, default
// 100); secrets: access_token (a private app token), or client_id,
// client_secret and refresh_token (an OAuth app, whose access token is
// refreshed on expiry).
//
// Contract and invariants: each Fetch sends one data request (plus the
// properties call on first use of an object, an association batch read for
// searched deals and contacts, and token grants) and returns the page with
// an opaque JSON cursor {v, phase, after, stamp, ids, strict, tie, tie_offset,
// archived, archived_ids, pass, pass_ids}. The first sync probes the newest
// modified stamp (search, descending), records the archived list's newest
// archivedAt as the delete watermark, then lists every live record by id
// (GET with after paging and inline associations). From then on it searches
// on hs_lastmodifieddate (contacts: lastmodifieddate) GTE the highest stamp
// emitted, ascending, skipping the ids already emitted at that stamp; every
// page restarts from the last stamp seen (keyset paging), so the search's
// offset stays at 0 and its 10,000-result cap can only be met by more than
// 10,000 records on one millisecond, when the records at that stamp are
// walked by id with the offset instead (an error beyond 10,000). The
// search only reaches changes older than a settle window (Options.Settle,
// default 15 s), because HubSpot indexes changes for search a few seconds
// late and a keyset cursor must not pass over one not indexed yet. Each sync
// ends by walking the archived list (HubSpot offers no filter on it) and
// reporting records archived after the watermark as Record{Deleted: true}.
// Records are fetched with every property the properties API lists (mapped
// ones first, within a URL budget), so unmapped fields reach the canonical
// extras and new fields show in RAW. The connector never calls the source
// from Factory, never logs a secret, and returns within moments of ctx's end.
package hubspot
