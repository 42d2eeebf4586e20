// Package quota keeps token buckets that every AutonomOS process on one
// NATS shares: the gateway's per-tenant rate limits and the request budgets
// of the source orgs the connectors call. Each bucket is one key of the
// streams.BucketQuotas KV bucket holding the bucket's state (tokens, the
// time they were counted, the use of the current window, the instances that
// drew on it lately). A process does not ask NATS for every request: it
// leases a few tokens at a time with a compare-and-set update (kv.Update at
// the revision it read) and spends them locally, so the KV cost is one read
// and one write per lease. A lease takes at most the tokens the rate adds in
// Config.Lease (100ms by default) and at most a tenth of the burst, plus one
// for each caller of the process already waiting for it, so a busy process
// is not held to one lease's worth per round trip.
//
// Contract and invariants: the shared bucket never grants more than Burst
// plus Rate times the elapsed time, nor more than PerWindow in one window,
// summed over every process; tokens leased but not yet spent stay with the
// process that leased them (at most one lease per process and key), and
// leased tokens of a window that ended are dropped. Every process sharing a
// key must use the same Limit, and the processes' clocks must agree (NTP):
// a clock behind the last writer's refills nothing until it catches up, so
// skew makes the limit stricter, never looser. When the KV bucket cannot be
// reached the Keeper fails soft, not open and not closed: each bucket decides
// locally with golang.org/x/time/rate at Rate/N and Burst/N, N being the
// number of instances last seen sharing the key, logs the switch once (and
// the recovery), and reports it in the autonomos_quota_local_fallback gauge;
// it tries NATS again after Config.Retry. A Keeper and its Buckets are safe
// for concurrent use; a Keeper owns no goroutine and needs no closing.
package quota
