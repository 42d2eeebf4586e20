// Package agents is AutonomOS's adaptive layer: it watches the RAW stream
// for source schema drift (agents/drift), proposes repairs with a
// built-in matcher (agents/match) and, when configured, an LLM
// (agents/llm), applies them as new mapping versions and re-derives the
// canonical events from RAW, keeps a semantic index of the ontology and
// every mapping version (agents/search), and offers the service the
// gateway calls for findings, reviews, mapping versions, previews, search
// and intelligence metrics.
//
// Contract and invariants: a repair never bypasses the canonical model —
// every proposal, from the matcher, an LLM or a person, is compiled with
// canonical.Compile before it is written. A mapping version is never
// edited: a repair or a rollback writes version N+1 (StoredMapping JSON in
// the mappings bucket, author "auto" or "user:<id>", the finding in its
// reason), then re-derives the affected RAW records with it and publishes
// their canonical events with Nats-Msg-Id "<event id>.m<version>". With
// autofix off nothing is applied without a person. With no LLM key the
// built-in matcher alone answers, never an error. Every read and write is
// scoped to one tenant.
package agents
