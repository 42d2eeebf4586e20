// Package streams owns AutonomOS's JetStream topology: the embedded NATS
// server, the connection to an external one, the streams, consumers and
// key-value buckets of DESIGN.md, the subject names, and the publisher.
//
// Contract and invariants: every subject is built here, by the functions of
// subjects.go, which validate each token ([a-z0-9_-], at most 64 bytes)
// before it is put in a subject; other packages filter with wildcards and
// never parse subjects by position. Ensure is idempotent: it creates what is
// missing and updates what differs, so every instance may call it at start.
// Canonical events are published with Nats-Msg-Id set to the event id, so a
// republished record version is dropped by the stream's duplicate window.
package streams
