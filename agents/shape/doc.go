// Package shape infers the type of source values — string, integer,
// decimal, boolean, date, datetime, email, url, phone, id-like, array,
// object — from what the values look like, and flattens source records into
// dotted field paths.
//
// Contract and invariants: inference is a pure function of the value. Every
// value's Mask includes String, so the intersection of any set of masks is
// never empty and a field's type is the most specific type consistent with
// every non-empty value seen (Mask.Best). Empty values (null, "", blank)
// carry no type. Text is read exactly as the canonical mapping engine reads
// it: a type is claimed only when canonical's parsers accept the form (an
// ISO date is a date, "03/01/2024" is a string), so a type change means the
// mapping's reading of the field may have changed.
package shape
