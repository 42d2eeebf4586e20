package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/autonomos/autonomos/streams"
)

// Config tunes a Keeper. Zero values take the defaults noted per field.
type Config struct {
	// Instance names this process in the buckets' member lists (default:
	// the host name, the pid and a random suffix).
	Instance string `yaml:"instance"`
	// Lease bounds one lease to the tokens the rate adds in this long
	// (default 100ms); a lease also takes at most a tenth of the burst, and
	// at least one token, plus one per caller waiting for it. Longer leases
	// mean fewer KV writes and more tokens held by one process at a time.
	Lease time.Duration `yaml:"lease"`
	// Timeout bounds one lease's KV round trips (default 500ms); a lease
	// that takes longer counts as NATS being unreachable.
	Timeout time.Duration `yaml:"timeout"`
	// Retry is how long buckets decide locally after a failed lease before
	// NATS is tried again (default 2s).
	Retry time.Duration `yaml:"retry"`
	// MemberTTL is how long after its last lease an instance still counts
	// as sharing a bucket (default 30s).
	MemberTTL time.Duration `yaml:"member_ttl"`
	// IdleAfter drops the local state of a bucket unused this long, with
	// the tokens it leased and did not spend (default 1m).
	IdleAfter time.Duration `yaml:"idle_after"`
	// Connected, when set, reports whether the NATS connection is up; while
	// it is not, leases fail at once instead of waiting for Timeout. Open
	// sets it from the JetStream context's connection.
	Connected func() bool `yaml:"-"`
}

func (c *Config) defaults() {
	if c.Instance == "" {
		host, _ := os.Hostname()
		var r [3]byte
		_, _ = rand.Read(r[:])
		c.Instance = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(r[:]))
	}
	set := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	set(&c.Lease, 100*time.Millisecond)
	set(&c.Timeout, 500*time.Millisecond)
	set(&c.Retry, 2*time.Second)
	set(&c.MemberTTL, 30*time.Second)
	set(&c.IdleAfter, time.Minute)
}

// Keeper hands out the shared buckets of one process. Make one per process
// (it is the process's member identity) and share it.
type Keeper struct {
	kv  jetstream.KeyValue
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex // guards buckets, lastSweep; taken before a Bucket's
	buckets   map[string]*Bucket
	lastSweep time.Time

	hmu     sync.Mutex // guards the health fields; taken after a Bucket's
	down    bool       // the last lease failed: buckets decide locally
	retryAt time.Time  // when one bucket may try NATS again
	members int        // instances sharing the last leased bucket

	// Counters for Collect.
	leases, granted, tokens, conflicts, failures, local atomic.Uint64
	localGauge                                          atomic.Int64
}

// New returns a Keeper of the buckets kept in kv (the streams.BucketQuotas
// bucket, made by streams.Ensure). log may be nil.
func New(kv jetstream.KeyValue, cfg Config, log *slog.Logger) *Keeper {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{kv: kv, cfg: cfg, log: log.With("component", "quota", "instance", cfg.Instance),
		now: time.Now, buckets: map[string]*Bucket{}, lastSweep: time.Now(), members: 1}
}

// Open binds the streams.BucketQuotas bucket, which must exist
// (streams.Ensure), and returns its Keeper; leases fail fast while js's
// connection is down.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, log *slog.Logger) (*Keeper, error) {
	kv, err := js.KeyValue(ctx, streams.BucketQuotas)
	if err != nil {
		return nil, fmt.Errorf("quota: bucket %s: %w", streams.BucketQuotas, err)
	}
	if cfg.Connected == nil {
		if nc := js.Conn(); nc != nil {
			cfg.Connected = func() bool { return nc.Status() == nats.CONNECTED }
		}
	}
	return New(kv, cfg, log), nil
}

// Instance is this process's name in the buckets' member lists.
func (k *Keeper) Instance() string { return k.cfg.Instance }

// Bucket returns the shared bucket name, made with l on first use (a later
// call with another Limit gets the bucket as it was made). name may be any
// string; Key shows the KV key it is stored under. It panics on an invalid
// Limit, a programming error.
func (k *Keeper) Bucket(name string, l Limit) *Bucket {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if now.Sub(k.lastSweep) > k.cfg.IdleAfter/2 {
		k.lastSweep = now
		for n, b := range k.buckets {
			if b.idle(now, k.cfg.IdleAfter) {
				delete(k.buckets, n)
			}
		}
	}
	if b, ok := k.buckets[name]; ok {
		return b
	}
	if err := l.validate(); err != nil {
		panic(fmt.Sprintf("quota: bucket %q: %v", name, err))
	}
	b := newBucket(k, name, l)
	k.buckets[name] = b
	return b
}

// Local reports whether buckets currently decide locally (NATS could not
// be reached at the last try).
func (k *Keeper) Local() bool {
	k.hmu.Lock()
	defer k.hmu.Unlock()
	return k.down
}

// decideLocally reports whether a bucket must decide without NATS now. The
// first caller after the retry time is let through to try NATS (and the
// next try pushed back), so one lease at a time probes an outage.
func (k *Keeper) decideLocally(now time.Time) bool {
	k.hmu.Lock()
	defer k.hmu.Unlock()
	if !k.down {
		return false
	}
	if now.Before(k.retryAt) {
		return true
	}
	k.retryAt = now.Add(k.cfg.Retry)
	return false
}

// failed records a lease that could not reach NATS.
func (k *Keeper) failed(err error) {
	k.failures.Add(1)
	k.hmu.Lock()
	defer k.hmu.Unlock()
	k.retryAt = k.now().Add(k.cfg.Retry)
	if !k.down {
		k.down = true
		k.localGauge.Store(1)
		k.log.Warn("shared limits unreachable: deciding locally at rate/N per instance until NATS answers",
			"instances", k.members, "retry_in", k.cfg.Retry, "error", err)
	}
}

// succeeded records a lease that reached NATS and the member count it saw
// (0: none seen).
func (k *Keeper) succeeded(members int) {
	k.hmu.Lock()
	defer k.hmu.Unlock()
	if members > 0 {
		k.members = members
	}
	if k.down {
		k.down = false
		k.localGauge.Store(0)
		k.log.Info("shared limits reachable again")
	}
}

func (k *Keeper) lastMembers() int {
	k.hmu.Lock()
	defer k.hmu.Unlock()
	return k.members
}

func (k *Keeper) connected() bool { return k.cfg.Connected == nil || k.cfg.Connected() }

// errNotConnected fails a lease at once while the connection is down.
var errNotConnected = errors.New("quota: NATS connection is not connected")

var (
	descLeases = prometheus.NewDesc("autonomos_quota_leases_total",
		"Leases of shared tokens by outcome: granted (some tokens), empty (none left), conflict (a compare-and-set lost to another instance and was retried), error (NATS unreachable).",
		[]string{"outcome"}, nil)
	descTokens = prometheus.NewDesc("autonomos_quota_tokens_leased_total",
		"Tokens leased from shared buckets.", nil, nil)
	descLocal = prometheus.NewDesc("autonomos_quota_local_fallback",
		"1 while shared buckets cannot be reached and each decides locally at rate/N, else 0.", nil, nil)
	descLocalTakes = prometheus.NewDesc("autonomos_quota_local_decisions_total",
		"Decisions made by the local fallback limiter instead of the shared bucket.", nil, nil)
	descBuckets = prometheus.NewDesc("autonomos_quota_buckets",
		"Shared buckets this process holds local state for.", nil, nil)
)

var _ prometheus.Collector = (*Keeper)(nil)

// Describe implements prometheus.Collector.
func (k *Keeper) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeases, descTokens, descLocal, descLocalTakes, descBuckets} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (k *Keeper) Collect(ch chan<- prometheus.Metric) {
	leases, granted := k.leases.Load(), k.granted.Load()
	ch <- prometheus.MustNewConstMetric(descLeases, prometheus.CounterValue, float64(granted), "granted")
	ch <- prometheus.MustNewConstMetric(descLeases, prometheus.CounterValue, float64(leases-granted), "empty")
	ch <- prometheus.MustNewConstMetric(descLeases, prometheus.CounterValue, float64(k.conflicts.Load()), "conflict")
	ch <- prometheus.MustNewConstMetric(descLeases, prometheus.CounterValue, float64(k.failures.Load()), "error")
	ch <- prometheus.MustNewConstMetric(descTokens, prometheus.CounterValue, float64(k.tokens.Load()))
	ch <- prometheus.MustNewConstMetric(descLocal, prometheus.GaugeValue, float64(k.localGauge.Load()))
	ch <- prometheus.MustNewConstMetric(descLocalTakes, prometheus.CounterValue, float64(k.local.Load()))
	k.mu.Lock()
	n := len(k.buckets)
	k.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descBuckets, prometheus.GaugeValue, float64(n))
}
