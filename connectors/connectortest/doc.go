// Package connectortest is the conformance suite every source connector
// passes, like net/http/httptest for handlers: Run drives a connector
// through the real connectors.Runner, an embedded JetStream server
// (streams/streamstest) and the shipped mappings (config.MappingFS), against
// a fresh source per case that the suite mutates through the Source
// interface. Sim adapts the CRM simulator (connectors/crmsim) to Source for
// the Salesforce, HubSpot and Dynamics connectors.
//
// Contract and invariants checked: the factory rejects bad config naming the
// field and never calls the source; Check calls the source and fails on bad
// credentials without quoting a secret; a full sync publishes every live
// record exactly once per canonical subject over several pages; a sync with
// no change reads nothing and publishes nothing, with few requests; after
// changes only the changed records are read; a deleted record yields a
// .deleted event; a token expiring mid-run and a 429/503 storm (Retry-After
// honoured) are survived; a cancelled sync returns within 5 s and nothing is
// published after it returned; a sync interrupted after its first page
// resumes from the checkpoint in a new connector and Runner, with no record
// lost or duplicated; no log line carries a secret.
package connectortest
