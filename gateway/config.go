package gateway

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Config configures the gateway. The zero value of every field but
// JWTSecret and SpoolDir has a default, applied by New.
type Config struct {
	// Addr is the host:port Run listens on (--http). Default 127.0.0.1:8080.
	Addr string `yaml:"addr"`

	// JWTSecret signs and verifies access tokens (HS256); at least 32 bytes.
	JWTSecret string `yaml:"jwt_secret"`
	// JWTPreviousSecret, when set, still verifies tokens signed before a
	// rotation; new tokens are always signed with JWTSecret.
	JWTPreviousSecret string `yaml:"jwt_previous_secret"`
	// JWTIssuer is the iss claim issued and required. Default "autonomos".
	JWTIssuer string `yaml:"jwt_issuer"`
	// JWTAudience is the aud claim issued and required. Default "autonomos-api".
	JWTAudience string `yaml:"jwt_audience"`
	// AccessTTL is the lifetime of an access token. Default 15m.
	AccessTTL time.Duration `yaml:"access_ttl"`
	// RefreshTTL is the lifetime of a refresh token. Default 7 days; at most
	// 30 days (the sessions bucket's TTL).
	RefreshTTL time.Duration `yaml:"refresh_ttl"`
	// ClockLeeway is the clock skew tolerated on exp, nbf and iat. Default 5s.
	ClockLeeway time.Duration `yaml:"clock_leeway"`

	// RateRead and RateWrite are the per-tenant token buckets of reads
	// (GET, HEAD) and writes (everything else), as "<n>/<s|m|h> burst <b>".
	// Defaults "50/s burst 200" and "10/s burst 50". They hold for all
	// gateway instances together when Deps.Limiters is SharedLimits, and per
	// instance otherwise.
	RateRead  string `yaml:"rate_read"`
	RateWrite string `yaml:"rate_write"`
	// LoginRateAccount and LoginRateAddress throttle failed logins per
	// account (e-mail) and per client address. Defaults "5/m burst 10" and
	// "30/m burst 60".
	LoginRateAccount string `yaml:"login_rate_account"`
	LoginRateAddress string `yaml:"login_rate_address"`
	// TrustedProxies are CIDRs whose X-Forwarded-For is believed for the
	// client address; empty means the TCP peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`

	// IdempotencyTTL is how long a stored response is replayed for a key.
	// Default 24h (the idempotency bucket's TTL is the upper bound).
	IdempotencyTTL time.Duration `yaml:"idempotency_ttl"`
	// IdempotencyLease is how long an in-flight request holds its key before
	// another instance may assume it died and take the key over. Default 1h.
	IdempotencyLease time.Duration `yaml:"idempotency_lease"`

	// SpoolDir receives uploaded files, under <SpoolDir>/<tenant>/. Required.
	SpoolDir string `yaml:"spool_dir"`
	// MaxUploadBytes bounds one uploaded file. Default 16 GiB.
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
	// MaxBodyBytes bounds a JSON request body. Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`

	// UI is the built web app (index.html and its assets). Paths outside
	// /api/, /dcl/ and the API routes are served from it, falling back to
	// index.html. Nil serves no UI (such paths answer 404).
	UI fs.FS `yaml:"-"`
	// MetricsPublic serves GET /metrics without a token. By default it
	// requires one, like every other non-public route; an operator who
	// scrapes without tokens mounts Server.MetricsHandler on a separate,
	// private listener instead.
	MetricsPublic bool `yaml:"metrics_public"`

	// Debug (DEV_DEBUG) registers the /api/v1/debug/ routes; they still
	// need an admin's token. Off: they do not exist (404).
	Debug bool `yaml:"debug"`

	// ShutdownTimeout bounds the graceful shutdown of Run. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s. Bodies
	// have no deadline (uploads may be several GB).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`

	// Argon2 sets the password hashing cost. Defaults: OWASP's 19 MiB,
	// 2 iterations, parallelism 1.
	Argon2 Argon2Config `yaml:"argon2"`
	// MaxConcurrentHashes bounds password hashes computed at once, so a
	// burst of logins cannot exhaust memory. Default 4.
	MaxConcurrentHashes int `yaml:"max_concurrent_hashes"`
}

// Argon2Config is the argon2id cost.
type Argon2Config struct {
	MemoryKiB   uint32 `yaml:"memory_kib"`
	Iterations  uint32 `yaml:"iterations"`
	Parallelism uint8  `yaml:"parallelism"`
}

// Defaults for Config.
const (
	DefaultAddr      = "127.0.0.1:8080"
	DefaultRateRead  = "50/s burst 200"
	DefaultRateWrite = "10/s burst 50"
)

func (c *Config) defaults() {
	setStr := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setStr(&c.Addr, DefaultAddr)
	setStr(&c.JWTIssuer, "autonomos")
	setStr(&c.JWTAudience, "autonomos-api")
	setDur(&c.AccessTTL, 15*time.Minute)
	setDur(&c.RefreshTTL, 7*24*time.Hour)
	setDur(&c.ClockLeeway, 5*time.Second)
	setStr(&c.RateRead, DefaultRateRead)
	setStr(&c.RateWrite, DefaultRateWrite)
	setStr(&c.LoginRateAccount, "5/m burst 10")
	setStr(&c.LoginRateAddress, "30/m burst 60")
	setDur(&c.IdempotencyTTL, 24*time.Hour)
	setDur(&c.IdempotencyLease, time.Hour)
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = 16 << 30
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	setDur(&c.ShutdownTimeout, 10*time.Second)
	setDur(&c.ReadHeaderTimeout, 10*time.Second)
	if c.Argon2.MemoryKiB == 0 {
		c.Argon2.MemoryKiB = 19 * 1024
	}
	if c.Argon2.Iterations == 0 {
		c.Argon2.Iterations = 2
	}
	if c.Argon2.Parallelism == 0 {
		c.Argon2.Parallelism = 1
	}
	if c.MaxConcurrentHashes == 0 {
		c.MaxConcurrentHashes = 4
	}
}

// validate names every bad field, by its yaml name.
func (c *Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("gateway config %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q is not host:port", c.Addr)
	}
	if len(c.JWTSecret) < 32 {
		bad("jwt_secret", "must be at least 32 bytes, got %d", len(c.JWTSecret))
	}
	if c.JWTPreviousSecret != "" && len(c.JWTPreviousSecret) < 32 {
		bad("jwt_previous_secret", "must be empty or at least 32 bytes, got %d", len(c.JWTPreviousSecret))
	}
	if c.AccessTTL < time.Minute || c.AccessTTL > 24*time.Hour {
		bad("access_ttl", "must be between 1m and 24h, got %v", c.AccessTTL)
	}
	if c.RefreshTTL < c.AccessTTL || c.RefreshTTL > 30*24*time.Hour {
		bad("refresh_ttl", "must be between access_ttl and 720h (the sessions bucket's TTL), got %v", c.RefreshTTL)
	}
	if c.ClockLeeway < 0 || c.ClockLeeway > time.Minute {
		bad("clock_leeway", "must be between 0 and 1m, got %v", c.ClockLeeway)
	}
	for _, r := range []struct{ name, v string }{
		{"rate_read", c.RateRead}, {"rate_write", c.RateWrite},
		{"login_rate_account", c.LoginRateAccount}, {"login_rate_address", c.LoginRateAddress},
	} {
		if _, err := ParseRate(r.v); err != nil {
			bad(r.name, "%v", err)
		}
	}
	for _, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil {
			bad("trusted_proxies", "%q is not a CIDR", p)
		}
	}
	if c.IdempotencyTTL < time.Minute || c.IdempotencyTTL > 24*time.Hour {
		bad("idempotency_ttl", "must be between 1m and 24h (the idempotency bucket's TTL), got %v", c.IdempotencyTTL)
	}
	if c.IdempotencyLease < time.Second {
		bad("idempotency_lease", "must be at least 1s, got %v", c.IdempotencyLease)
	}
	if c.SpoolDir == "" {
		bad("spool_dir", "is required")
	}
	if c.MaxUploadBytes < 0 {
		bad("max_upload_bytes", "must be positive, got %d", c.MaxUploadBytes)
	}
	if c.MaxBodyBytes < 1024 {
		bad("max_body_bytes", "must be at least 1024, got %d", c.MaxBodyBytes)
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown_timeout", "must not be negative")
	}
	if c.ReadHeaderTimeout < 0 {
		bad("read_header_timeout", "must not be negative")
	}
	if c.Argon2.MemoryKiB < 8 || c.Argon2.Iterations < 1 {
		bad("argon2", "memory_kib must be >= 8 and iterations >= 1")
	}
	if c.MaxConcurrentHashes < 1 {
		bad("max_concurrent_hashes", "must be at least 1, got %d", c.MaxConcurrentHashes)
	}
	return errors.Join(errs...)
}

// Rate is a parsed token-bucket setting.
type Rate struct {
	Limit rate.Limit // tokens per second
	Burst int
}

var rateRE = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*(?:burst\s+([0-9]+))?\s*$`)

// ParseRate parses "<n>/<unit> burst <b>" (unit s, m or h; "burst" optional,
// defaulting to n rounded up), e.g. "50/s burst 200" or "5/m burst 10".
func ParseRate(s string) (Rate, error) {
	m := rateRE.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return Rate{}, fmt.Errorf("%q is not \"<n>/<s|m|h> burst <b>\"", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) {
		return Rate{}, fmt.Errorf("%q: the rate must be a positive number", s)
	}
	per := time.Second
	switch m[2] {
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	}
	burst := int(math.Ceil(n))
	if m[3] != "" {
		b, err := strconv.Atoi(m[3])
		if err != nil || b < 1 || b > 1_000_000 {
			return Rate{}, fmt.Errorf("%q: burst must be from 1 to 1000000", s)
		}
		burst = b
	}
	return Rate{Limit: rate.Limit(n / per.Seconds()), Burst: burst}, nil
}

func mustRate(s string) Rate {
	r, err := ParseRate(s)
	if err != nil {
		panic(err) // validated by New
	}
	return r
}
