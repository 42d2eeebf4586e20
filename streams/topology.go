package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TopologyConfig sizes the streams and buckets.
type TopologyConfig struct {
	// Replicas for every stream and bucket (3 on a 3-node cluster).
	Replicas int `yaml:"replicas"`
	// DuplicateWindow is how long CANONICAL remembers message ids
	// (default DefaultDuplicateWindow). It must be longer than
	// PublishRetryFor, or a publish retried after a lost ack can store an
	// event twice. The server holds about 130 bytes per id for the window,
	// so its memory grows with publish rate × window.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// IdempotencyTTL is how long idempotency keys are kept.
	IdempotencyTTL time.Duration `yaml:"idempotency_ttl"`
}

func (c *TopologyConfig) defaults() {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.IdempotencyTTL <= 0 {
		c.IdempotencyTTL = 24 * time.Hour
	}
}

// DefaultDuplicateWindow is CANONICAL's duplicate window: PublishRetryFor
// plus room for a batch published before its Wait began and the last
// retry's backoff and ack timeout.
const DefaultDuplicateWindow = 2 * time.Minute

// RawDuplicateWindow is RAW's duplicate window, kept short (the server's
// floor is 100 ms, and 0 means its default, 2 minutes). RAW's message ids
// are content hashes and nothing relies on RAW dropping a repeated record:
// the drift observer folds a repeat into its counters without finding a
// change, and events re-derived from RAW de-duplicate on CANONICAL (and by
// the stores' version rule). A long window would only cost memory.
const RawDuplicateWindow = time.Second

// StreamConfigs returns the stream definitions of DESIGN.md.
func StreamConfigs(c TopologyConfig) []jetstream.StreamConfig {
	c.defaults()
	return []jetstream.StreamConfig{
		{Name: StreamCanonical, Subjects: []string{"canonical.>"}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Duplicates: c.DuplicateWindow, Replicas: c.Replicas, Description: "canonical events, one per record version"},
		{Name: StreamRaw, Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Duplicates: RawDuplicateWindow, Replicas: c.Replicas, Description: "source records as fetched"},
		{Name: StreamDLQ, Subjects: []string{"dlq.>"}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			MaxAge: 30 * 24 * time.Hour, Replicas: c.Replicas, Description: "messages that failed, with the reason in headers"},
		{Name: StreamDrift, Subjects: []string{"drift.>"}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Replicas: c.Replicas, Description: "drift findings and repair decisions"},
		{Name: StreamAudit, Subjects: []string{"audit.>"}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			MaxAge: 365 * 24 * time.Hour, Replicas: c.Replicas, Description: "one event per mutating API call"},
		{Name: StreamJobs, Subjects: []string{"jobs.>"}, Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy,
			Duplicates: 2 * time.Minute, Replicas: c.Replicas, Description: "ingestion jobs for connector workers"},
	}
}

// BucketConfigs returns the key-value bucket definitions.
func BucketConfigs(c TopologyConfig) []jetstream.KeyValueConfig {
	c.defaults()
	kv := func(name, desc string, history uint8, ttl time.Duration) jetstream.KeyValueConfig {
		return jetstream.KeyValueConfig{Bucket: name, Description: desc, History: history, TTL: ttl,
			Storage: jetstream.FileStorage, Replicas: c.Replicas}
	}
	return []jetstream.KeyValueConfig{
		kv(BucketConnections, "connections per tenant", 5, 0),
		kv(BucketMappings, "mapping versions", 64, 0),
		kv(BucketCursors, "connector checkpoints", 5, 0),
		kv(BucketIdempotency, "idempotency keys", 1, c.IdempotencyTTL),
		kv(BucketUsers, "users and password hashes", 1, 0),
		kv(BucketTenants, "tenants", 1, 0),
		kv(BucketJobs, "job status", 1, 30*24*time.Hour),
		kv(BucketFingerprints, "source schema fingerprints", 10, 0),
		kv(BucketSessions, "refresh tokens and revocations", 1, 30*24*time.Hour),
		// A key untouched for two days is forgotten: its bucket is full
		// again and any day-long window over.
		kv(BucketQuotas, "shared rate limits and API budgets", 1, 48*time.Hour),
	}
}

// Ensure creates or updates every stream and bucket. It is idempotent, and
// it moves an existing stream's settings (replicas, duplicate window) to the
// configured ones in place.
func Ensure(ctx context.Context, js jetstream.JetStream, c TopologyConfig) error {
	var errs []error
	for _, sc := range StreamConfigs(c) {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", sc.Name, err))
		}
	}
	for _, kc := range BucketConfigs(c) {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			errs = append(errs, fmt.Errorf("bucket %s: %w", kc.Bucket, err))
		}
	}
	if _, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: ObjectsReconcile,
		Description: "ids per connection and object found by the last full read", Replicas: c.Replicas}); err != nil {
		errs = append(errs, fmt.Errorf("object store %s: %w", ObjectsReconcile, err))
	}
	return errors.Join(errs...)
}
