// Package canonical defines AutonomOS's canonical data model — Account,
// Opportunity and Contact — the CloudEvents 1.0 envelope every record
// travels in, validation of both, and the mapping engine that turns a source
// system's record into a canonical one.
//
// Contract and invariants: canonical imports none of the project's other
// packages. Money is decimal (at most 38 digits, 9 after the point), never
// float, held in a canonical form (no trailing zeros, no positive exponent).
// Dates are calendar dates that never shift with a time zone. An empty
// source value is a missing value: null for an optional field, an error for
// a required one. Every source field a mapping does not use lands in Extras,
// so nothing is lost; a delete carries only the record's id. Event ids are
// deterministic: a hash of tenant, source system, entity, source record id,
// source version and operation, so republishing the same record version is a
// no-op under JetStream's de-duplication. An event's wire form is
// deterministic (testdata/v1 pins it), and ParseEvent accepts exactly what
// MarshalJSON could have written: a type and a data that disagree are
// rejected. Validation errors are *FieldError values (or a joined list of
// them) naming the field and the reason; mapping-file errors read
// "file:line: reason".
package canonical
