package streams

import (
	"fmt"
	"regexp"
)

// Stream names.
const (
	StreamCanonical = "CANONICAL"
	StreamRaw       = "RAW"
	StreamDLQ       = "DLQ"
	StreamDrift     = "DRIFT"
	StreamAudit     = "AUDIT"
	StreamJobs      = "JOBS"
)

// Key-value bucket names.
const (
	BucketConnections  = "connections"
	BucketMappings     = "mappings"
	BucketCursors      = "cursors"
	BucketIdempotency  = "idempotency"
	BucketUsers        = "users"
	BucketTenants      = "tenants"
	BucketJobs         = "jobs"
	BucketFingerprints = "fingerprints"
	BucketSessions     = "sessions"
	// BucketQuotas holds the token buckets shared by every instance: the
	// gateway's per-tenant rate limits and the source orgs' API budgets
	// (see streams/quota).
	BucketQuotas = "quotas"
	// ObjectsReconcile (an object store) keeps, per connection and source
	// object, the ids a full read found, so that the next full read
	// (reconciliation) can tell which records the source no longer has.
	ObjectsReconcile = "reconcile"
)

var tokenRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// ValidToken reports whether s may be used as one subject token.
func ValidToken(s string) bool { return tokenRE.MatchString(s) }

// objectRE admits source object names as they are spelled by the source
// (Salesforce's "Opportunity", Dynamics' "accounts"), still one safe token.
var objectRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

func check(kind, v string) error {
	if !ValidToken(v) {
		return fmt.Errorf("invalid %s %q: want 1-64 of [a-z0-9_-]", kind, v)
	}
	return nil
}

// CanonicalSubject is canonical.<tenant>.<entity>.
func CanonicalSubject(tenant, entity string) (string, error) {
	if err := check("tenant", tenant); err != nil {
		return "", err
	}
	if err := check("entity", entity); err != nil {
		return "", err
	}
	return "canonical." + tenant + "." + entity, nil
}

// RawSubject is raw.<tenant>.<system>.<object>.
func RawSubject(tenant, system, object string) (string, error) {
	if err := check("tenant", tenant); err != nil {
		return "", err
	}
	if err := check("system", system); err != nil {
		return "", err
	}
	if !objectRE.MatchString(object) {
		return "", fmt.Errorf("invalid source object %q: want 1-128 of [A-Za-z0-9_-]", object)
	}
	return "raw." + tenant + "." + system + "." + object, nil
}

// DLQSubject is dlq.<tenant>.<stage>.
func DLQSubject(tenant, stage string) (string, error) {
	if err := check("tenant", tenant); err != nil {
		return "", err
	}
	if err := check("stage", stage); err != nil {
		return "", err
	}
	return "dlq." + tenant + "." + stage, nil
}

// DriftSubject is drift.<tenant>.<connection>.
func DriftSubject(tenant, connection string) (string, error) {
	if err := check("tenant", tenant); err != nil {
		return "", err
	}
	if err := check("connection", connection); err != nil {
		return "", err
	}
	return "drift." + tenant + "." + connection, nil
}

// AuditSubject is audit.<tenant>.
func AuditSubject(tenant string) (string, error) {
	if err := check("tenant", tenant); err != nil {
		return "", err
	}
	return "audit." + tenant, nil
}

// JobSubject is jobs.<tenant>.<kind>.
func JobSubject(tenant, kind string) (string, error) {
	if err := check("tenant", tenant); err != nil {
		return "", err
	}
	if err := check("job kind", kind); err != nil {
		return "", err
	}
	return "jobs." + tenant + "." + kind, nil
}

// LiveSubject is live.<tenant>.<kind>: core NATS (not persisted)
// notifications for the dashboard — job progress, connection status.
func LiveSubject(tenant, kind string) (string, error) {
	if err := check("tenant", tenant); err != nil {
		return "", err
	}
	if err := check("kind", kind); err != nil {
		return "", err
	}
	return "live." + tenant + "." + kind, nil
}

// Filters for one tenant's subjects in each stream.
func CanonicalFilter(tenant string) string { return "canonical." + tenant + ".>" }
func RawFilter(tenant string) string       { return "raw." + tenant + ".>" }
func DLQFilter(tenant string) string       { return "dlq." + tenant + ".>" }
