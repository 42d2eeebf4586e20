package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/autonomos/autonomos/streams"
)

// options are the settings shared by every subcommand that starts the
// system (serve, demo, probe, bench). Each flag has an environment twin;
// a flag given on the command line wins over the environment.
type options struct {
	HTTP       string
	DataDir    string
	NATSURL    string
	NATSListen string
	Postgres   string
	JWTSecret  string
	Roles      string
	SecretsKey string
	RateRead   string
	RateWrite  string
	JSON       bool
	WatchDir   string // the file source's watch folder; empty: none
	// StreamReplicas of every stream and bucket; 0 picks them
	// (streams.AutoReplicas).
	StreamReplicas int
	// Stores this process materializes into (subscriber role) and reads
	// (gateway): a comma list of duckdb,postgres; empty: duckdb, and
	// postgres when Postgres is set. See stores().
	Stores string

	// DuplicateWindow is how long CANONICAL remembers event ids
	// (streams.TopologyConfig.DuplicateWindow).
	DuplicateWindow time.Duration
	// MemoryLimit is the Go runtime's soft memory limit in bytes that
	// serve and demo set (runtime/debug.SetMemoryLimit); 0: leave it to
	// GOMEMLIMIT (or none).
	MemoryLimit int64
	// DuckDBMemoryLimit is DuckDB's memory_limit in bytes; 0: DuckDB's
	// own default (80% of the machine's memory).
	DuckDBMemoryLimit int64

	streamReplicas    string // the flag's text, parsed into StreamReplicas
	duplicateWindow   string // parsed into DuplicateWindow
	memoryLimit       string // parsed into MemoryLimit
	duckDBMemoryLimit string // parsed into DuckDBMemoryLimit

	Debug         bool // DEV_DEBUG
	UseFileSource bool // FEATURE_USE_FILESOURCE
	DriftAutofix  bool // FEATURE_DRIFT_AUTOFIX
	LogLevel      string

	// spans also receive every span, in tests (tracing is otherwise set
	// by the OTEL_* environment alone).
	spans []sdktrace.SpanProcessor
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}

func envBool(k string, def bool) (bool, error) {
	v, ok := os.LookupEnv(k)
	if !ok || v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def, fmt.Errorf("%s=%q: want true or false", k, v)
	}
	return b, nil
}

// bind registers the system flags on fs with defaults from the environment.
func (o *options) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.HTTP, "http", envOr("AUTONOMOS_HTTP_ADDR", "127.0.0.1:8080"), "HTTP listen address (AUTONOMOS_HTTP_ADDR)")
	fs.StringVar(&o.DataDir, "data-dir", envOr("AUTONOMOS_DATA_DIR", "./data"), "data directory: embedded JetStream store, DuckDB file, secrets (AUTONOMOS_DATA_DIR)")
	fs.StringVar(&o.NATSURL, "nats-url", envOr("AUTONOMOS_NATS_URL", ""), "NATS URL(s), comma separated; empty starts the embedded server (AUTONOMOS_NATS_URL)")
	fs.StringVar(&o.NATSListen, "nats-listen", envOr("AUTONOMOS_NATS_LISTEN", "127.0.0.1:4222"), "client address of the embedded NATS server (AUTONOMOS_NATS_LISTEN)")
	fs.StringVar(&o.Postgres, "postgres", envOr("AUTONOMOS_POSTGRES_URL", ""), "Postgres URL; empty materializes into DuckDB only (AUTONOMOS_POSTGRES_URL)")
	fs.StringVar(&o.JWTSecret, "jwt-secret", envOr("AUTONOMOS_JWT_SECRET", ""), "HS256 secret; empty: generated once and kept in the data dir (AUTONOMOS_JWT_SECRET)")
	fs.StringVar(&o.Roles, "roles", envOr("AUTONOMOS_ROLES", "all"), "roles of this process: all, or a comma list of gateway,subscriber,connectors,agents (AUTONOMOS_ROLES)")
	fs.StringVar(&o.SecretsKey, "secrets-key", envOr("AUTONOMOS_SECRETS_KEY", ""), "key that encrypts connection secrets; empty: generated once and kept in the data dir (AUTONOMOS_SECRETS_KEY)")
	fs.StringVar(&o.RateRead, "rate-read", envOr("AUTONOMOS_RATE_READ", "50/s burst 200"), "per-tenant read rate limit (AUTONOMOS_RATE_READ)")
	fs.StringVar(&o.RateWrite, "rate-write", envOr("AUTONOMOS_RATE_WRITE", "10/s burst 50"), "per-tenant write rate limit (AUTONOMOS_RATE_WRITE)")
	fs.StringVar(&o.WatchDir, "watch-dir", envOr("AUTONOMOS_WATCH_DIR", ""), "watch folder: CSVs dropped in <dir>/<tenant>/<entity>/ or <dir>/<tenant>/<system>/<entity>/ are ingested once; empty: none (AUTONOMOS_WATCH_DIR)")
	fs.StringVar(&o.streamReplicas, "stream-replicas", envOr("AUTONOMOS_STREAM_REPLICAS", "0"), "replicas of every stream and bucket, 1-5; 0: an existing CANONICAL stream's, else 3 on a NATS cluster advertising at least 3 servers, else 1 (AUTONOMOS_STREAM_REPLICAS)")
	fs.StringVar(&o.Stores, "stores", envOr("AUTONOMOS_STORES", ""), "stores this process materializes into and reads, a comma list of duckdb,postgres; empty: duckdb, and postgres when --postgres is set. One process per DuckDB file: other subscriber processes run --stores postgres (AUTONOMOS_STORES)")
	fs.StringVar(&o.duplicateWindow, "duplicate-window", envOr("AUTONOMOS_DUPLICATE_WINDOW", streams.DefaultDuplicateWindow.String()), "how long the CANONICAL stream remembers event ids to drop a republished one; longer than the publisher's one-minute retry. The embedded server holds ~130 bytes per id for the window (AUTONOMOS_DUPLICATE_WINDOW)")
	fs.StringVar(&o.memoryLimit, "memory-limit", envOr("AUTONOMOS_MEMORY_LIMIT", ""), "serve, demo: the Go runtime's soft memory limit (the GC works harder near it), e.g. 512MiB; empty: GOMEMLIMIT when set, else "+formatBytes(defaultMemoryLimit)+"; off: none but GOMEMLIMIT's (AUTONOMOS_MEMORY_LIMIT)")
	fs.StringVar(&o.duckDBMemoryLimit, "duckdb-memory-limit", envOr("AUTONOMOS_DUCKDB_MEMORY_LIMIT", formatBytes(defaultDuckDBMemoryLimit)), "DuckDB's memory_limit (its buffer pool, spilling to the data dir beyond it), e.g. 1GiB; off: DuckDB's default, 80% of the machine's memory (AUTONOMOS_DUCKDB_MEMORY_LIMIT)")
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object on one line of stdout and nothing else there")
	fs.StringVar(&o.LogLevel, "log-level", envOr("AUTONOMOS_LOG_LEVEL", "info"), "log level: debug, info, warn, error (AUTONOMOS_LOG_LEVEL)")
}

// parse parses args and reads the environment-only switches.
func (o *options) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	var errs []error
	var err error
	if o.Debug, err = envBool("DEV_DEBUG", false); err != nil {
		errs = append(errs, err)
	}
	if o.UseFileSource, err = envBool("FEATURE_USE_FILESOURCE", true); err != nil {
		errs = append(errs, err)
	}
	if o.DriftAutofix, err = envBool("FEATURE_DRIFT_AUTOFIX", false); err != nil {
		errs = append(errs, err)
	}
	roles, err := o.roles()
	if err != nil {
		errs = append(errs, err)
	}
	if r := strings.TrimSpace(o.streamReplicas); r == "" {
		o.StreamReplicas = 0 // an empty environment variable: pick
	} else if o.StreamReplicas, err = strconv.Atoi(r); err != nil || o.StreamReplicas < 0 || o.StreamReplicas > streams.MaxReplicas {
		errs = append(errs, fmt.Errorf("--stream-replicas %q: want 0 (pick) or 1..%d", o.streamReplicas, streams.MaxReplicas))
	} else if o.StreamReplicas > 1 && o.NATSURL == "" {
		errs = append(errs, fmt.Errorf("--stream-replicas %d needs a JetStream cluster (--nats-url); the embedded server keeps one copy", o.StreamReplicas))
	}
	if o.DuplicateWindow, err = time.ParseDuration(strings.TrimSpace(o.duplicateWindow)); err != nil || o.DuplicateWindow <= streams.PublishRetryFor {
		errs = append(errs, fmt.Errorf("--duplicate-window %q: want a duration longer than %v (the publisher retries for that long)", o.duplicateWindow, streams.PublishRetryFor))
	}
	if o.MemoryLimit, err = o.goMemoryLimit(); err != nil {
		errs = append(errs, fmt.Errorf("--memory-limit: %w", err))
	}
	if o.DuckDBMemoryLimit, err = parseBytes(o.duckDBMemoryLimit); err != nil {
		errs = append(errs, fmt.Errorf("--duckdb-memory-limit: %w", err))
	} else if o.DuckDBMemoryLimit > 0 && o.DuckDBMemoryLimit < minDuckDBMemoryLimit {
		// Below it a batch's merge fails with out-of-memory errors, which
		// the subscriber retries until it dead-letters the batch.
		errs = append(errs, fmt.Errorf("--duckdb-memory-limit %s: want at least %s, or off", o.duckDBMemoryLimit, formatBytes(minDuckDBMemoryLimit)))
	}
	stores, err := o.stores(roles)
	if err != nil {
		errs = append(errs, err)
	} else if roles["gateway"] && !roles["subscriber"] && !stores["postgres"] {
		// DuckDB is one process's file: only a process that fills it can read it.
		errs = append(errs, fmt.Errorf("--roles %s: the gateway of a process without the subscriber role reads the views from Postgres (set --postgres); DuckDB is read only by the process that fills it", o.Roles))
	}
	return errors.Join(errs...)
}

// Memory defaults, sized so that serve's memory stays level however large
// the file it ingests (a 1 GB CSV peaked at 654–696 MB with NATS embedded,
// docs/BENCHMARKS.md; the sizing rule is in docs/OPERATIONS.md, "Memory").
const (
	defaultMemoryLimit       = 320 << 20
	defaultDuckDBMemoryLimit = 64 << 20
	minDuckDBMemoryLimit     = 32 << 20
)

// goMemoryLimit is --memory-limit in bytes: 0 when it is off or left to
// GOMEMLIMIT (set in the environment), else the given or default limit.
func (o *options) goMemoryLimit() (int64, error) {
	v := strings.TrimSpace(o.memoryLimit)
	if v == "" {
		if os.Getenv("GOMEMLIMIT") != "" {
			return 0, nil
		}
		return defaultMemoryLimit, nil
	}
	return parseBytes(v)
}

// parseBytes reads a size as GOMEMLIMIT writes it (a number with an
// optional B, KiB, MiB, GiB or TiB), taking KB, MB, GB and TB as their
// binary twins too; "off" and "0" are 0 (no limit).
func parseBytes(v string) (int64, error) {
	s := strings.TrimSpace(v)
	if s == "off" || s == "0" {
		return 0, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = strings.TrimSpace(s[:i]), strings.ToLower(strings.TrimSpace(s[i:]))
	}
	mult := map[string]float64{"": 1, "b": 1, "kib": 1 << 10, "kb": 1 << 10, "mib": 1 << 20, "mb": 1 << 20,
		"gib": 1 << 30, "gb": 1 << 30, "tib": 1 << 40, "tb": 1 << 40}[unit]
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || n < 0 || n*mult >= 1<<62 {
		return 0, fmt.Errorf("%q: want a size such as 256MiB or 2GiB, or off", v)
	}
	return int64(n * mult), nil
}

// formatBytes writes n in the largest binary unit that divides it; "off"
// for no limit (0, or math.MaxInt64 as the runtime reports none).
func formatBytes(n int64) string {
	if n <= 0 || n == math.MaxInt64 {
		return "off"
	}
	for _, u := range []struct {
		name  string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n > 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// stores says which materialized stores this process opens: it
// materializes into them with the subscriber role and the gateway reads
// them (Postgres when open, else DuckDB). By default a process opens
// DuckDB, and Postgres when set; a process without the subscriber role
// opens only Postgres when set, since it would never fill a DuckDB file.
func (o *options) stores(roles map[string]bool) (map[string]bool, error) {
	if strings.TrimSpace(o.Stores) == "" {
		if o.Postgres != "" && !roles["subscriber"] {
			return map[string]bool{"postgres": true}, nil
		}
		return map[string]bool{"duckdb": true, "postgres": o.Postgres != ""}, nil
	}
	out := map[string]bool{}
	for _, s := range strings.Split(o.Stores, ",") {
		switch s = strings.TrimSpace(s); s {
		case "duckdb", "postgres":
			out[s] = true
		default:
			return nil, fmt.Errorf("--stores: unknown store %q (want a comma list of duckdb,postgres)", s)
		}
	}
	if out["postgres"] && o.Postgres == "" {
		return nil, errors.New("--stores postgres needs --postgres")
	}
	return out, nil
}

var allRoles = []string{"gateway", "subscriber", "connectors", "agents"}

func (o *options) roles() (map[string]bool, error) {
	out := map[string]bool{}
	for _, r := range strings.Split(o.Roles, ",") {
		r = strings.TrimSpace(r)
		switch {
		case r == "all":
			for _, a := range allRoles {
				out[a] = true
			}
		case r == "gateway" || r == "subscriber" || r == "connectors" || r == "agents":
			out[r] = true
		default:
			return nil, fmt.Errorf("--roles: unknown role %q (want all or a comma list of %s)", r, strings.Join(allRoles, ","))
		}
	}
	return out, nil
}

// secret returns the given value, or the one kept in dataDir/name,
// generating and storing it (mode 0600) the first time.
func secret(given, dataDir, name string) (string, error) {
	if given != "" {
		return given, nil
	}
	p := filepath.Join(dataDir, name)
	b, err := os.ReadFile(p)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	var k [32]byte
	if _, err := io.ReadFull(rand.Reader, k[:]); err != nil {
		return "", err
	}
	s := hex.EncodeToString(k[:])
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("store generated secret in %s: %w", p, err)
	}
	return s, nil
}
