// Package drift is the schema observer: it keeps, per tenant, connection
// and source object, a fingerprint of the fields the source sends and the
// type each field's values have (package shape), persisted in the
// fingerprints bucket, and turns each change of that schema — fields
// added, removed, renamed (a removed and an added field alike in name or
// values), or retyped — into one finding (stored in the drift_findings
// bucket, with a status open, queued, applied or rejected) and one
// drift.detected event on the DRIFT stream (drift.<tenant>.<connection>).
//
// Contract and invariants: a change is judged over a window of records
// (Config.Window, fewer once the observer has caught up), so one schema
// change is one finding however many records show it, and an unchanged
// schema yields none; a field's type is learned from its first values and
// changes only when several values in a row disagree with it. Fingerprints
// are compare-and-set and written before a record is acknowledged; a
// finding is written into its fingerprint first (an outbox) and its id and
// event id derive from the change, so a restart or a crash at any point
// neither loses a finding nor reports it twice. Severity: removed →
// critical, added and removed → high, type change → high, added → medium.
package drift
