// Package search is the semantic index over the ontology (every canonical
// field with its description, from canonical.SchemaOf) and every mapping
// version (which source field of which system and object feeds which
// canonical field). Without a provider it ranks by a local text-vector
// method — TF-IDF over words, synonym concepts (package lexicon) and
// character trigrams, compared by cosine; with an Embedder (a provider's
// embeddings) it blends the two. The matcher reads its mapping entries as
// neighbours (Known).
//
// Contract and invariants: a tenant sees the shared entries (ontology,
// shipped mappings) and its own mapping versions, never another tenant's.
// Documents are only added, never changed (mapping versions are
// immutable). Search and Add are safe for concurrent use; Watch keeps the
// index in step with the mappings bucket across instances. A failing
// embedder degrades search to the local scores, never to an error.
package search
