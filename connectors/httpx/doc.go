// Package httpx is the HTTP plumbing the CRM connectors share: a Client
// that sends one logical request with per-attempt timeouts, retries 429 and
// 503 answers after their Retry-After (seconds or an HTTP date) and other
// transient failures after an exponential backoff with jitter, bounds its
// attempts, waits for a per-source-org request Budget (rate, window
// allowance and concurrency; SharedBudgets shares the rate and the
// allowance with every instance on one NATS),
// and attaches a cached bearer token that it refreshes once on a 401.
//
// Contract and invariants: every wait (budget, concurrency slot, backoff,
// Retry-After, token fetch, the request itself) ends as soon as ctx ends, so
// a cancelled caller gets ctx's error back within milliseconds. A Client is
// safe for concurrent use; who closes what: nothing — responses are read in
// full (up to Config.MaxBody) and closed before Do returns. Errors never
// carry a secret: Authorization headers are never quoted, URLs lose
// credential-like query parameters, and every message passes through the
// client's Redactor, which knows the configured secrets and every token the
// client was issued.
package httpx
