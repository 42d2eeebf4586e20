// Package match is the built-in repair matcher: given a source object's
// fields after a schema change, the mapping in force and what the change
// removed, it finds every canonical field whose source broke (its source
// field disappeared or no longer fits) or is unmapped, and ranks candidate
// source fields for each by name similarity (package lexicon), type and
// value-shape compatibility with the canonical field (checked by running
// the canonical mapping engine on sample values), agreement with the
// removed field's shape and values, and neighbours from the semantic index
// (source names once mapped to the same target). It needs no network.
//
// Contract and invariants: Match is a pure, deterministic function of its
// Input and safe for concurrent use. Confidences are in [0, 1]; each
// proposal's Decision follows the Config's thresholds (auto ≥ AutoApply,
// queue ≥ Queue, else reject), and a proposal is never "auto" when its best
// candidate is ambiguous (a runner-up within Margin), carries a unit word
// its counterpart lacks ("amount_in_cents"), or fails the canonical
// engine on any sample value. A candidate source fills at most one target.
package match
