// Package connectors holds what every source connector shares: the mapping
// registry (shipped mappings plus per-tenant versions in the mappings
// bucket) and, in sub-packages, one connector per source system.
//
// Contract and invariants: a connector publishes each source record to RAW
// and its canonical form to CANONICAL, and counts a record as published only
// once JetStream acknowledged it; a checkpoint (cursor) is stored only after
// the publishes it covers are acknowledged, so a crash re-reads at most what
// was not acknowledged and deterministic event ids make the re-read a no-op.
package connectors
