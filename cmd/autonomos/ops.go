package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/subscriber"
)

// rebuildService serves POST /api/v1/dcl/rebuild with the process's stores.
type rebuildService struct{ s *system }

func (r rebuildService) Rebuild(ctx context.Context, tenant string, e canonical.Entity) (any, error) {
	return subscriber.Rebuild(ctx, r.s.js, r.s.rebuildables(), subscriber.ReplayOptions{Tenant: tenant, Entity: e})
}

func (s *system) rebuildables() []subscriber.Rebuildable {
	var out []subscriber.Rebuildable
	if s.duck != nil {
		out = append(out, s.duck)
	}
	if s.pg != nil {
		out = append(out, s.pg)
	}
	return out
}

// parseInterleaved parses flags and positional arguments in any order.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func natsURLFlags(fs *flag.FlagSet) func() string {
	url := fs.String("nats-url", envOr("AUTONOMOS_NATS_URL", ""), "NATS URL of the running system; default nats://<--nats-listen> (AUTONOMOS_NATS_URL)")
	listen := fs.String("nats-listen", envOr("AUTONOMOS_NATS_LISTEN", "127.0.0.1:4222"), "client address of the running system's embedded NATS (AUTONOMOS_NATS_LISTEN)")
	return func() string {
		if *url != "" {
			return *url
		}
		return "nats://" + *listen
	}
}

const dlqUsage = `usage: autonomos dlq ls [--tenant T] [--limit N] [--cursor SEQ]
       autonomos dlq show SEQ [--tenant T]
       autonomos dlq redrive (--all | SEQ...) [--tenant T]
Works against a running system's NATS (--nats-url, default nats://<--nats-listen>).
Without --tenant, operators see and act on every tenant's dead letters.
`

// cmdDLQ lists, shows and redrives dead letters straight on the bus.
func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "ls" && args[0] != "show" && args[0] != "redrive") {
		fmt.Fprint(stderr, dlqUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("dlq "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := natsURLFlags(fs)
	tenant := fs.String("tenant", "", "only this tenant's dead letters (default: every tenant)")
	limit := fs.Int("limit", 100, "ls: most dead letters to list")
	cursor := fs.Uint64("cursor", 0, "ls: list dead letters below this DLQ sequence (the previous page's next_cursor)")
	all := fs.Bool("all", false, "redrive: every dead letter (of --tenant, or of every tenant)")
	asJSON := fs.Bool("json", false, "print one JSON object on one line")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return 2
	}
	var seqs []uint64
	for _, p := range pos {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || n == 0 {
			fmt.Fprintf(stderr, "dlq %s: %q is not a DLQ sequence\n", sub, p)
			return 2
		}
		seqs = append(seqs, n)
	}
	switch {
	case sub == "ls" && len(seqs) > 0, sub == "show" && len(seqs) != 1, sub == "redrive" && *all == (len(seqs) > 0):
		fmt.Fprint(stderr, dlqUsage)
		return 2
	}
	nc, err := streams.Connect(natsURL(), "autonomos-dlq")
	if err != nil {
		fmt.Fprintln(stderr, "dlq:", err)
		return 1
	}
	defer nc.Close()
	js, err := streams.NewJetStream(nc, 0)
	if err != nil {
		fmt.Fprintln(stderr, "dlq:", err)
		return 1
	}
	// Mapping-stage dead letters need the mapping registry to be redriven:
	// POST /api/v1/dcl/dlq/redrive does that; here they are reported.
	q := streams.NewDLQ(js, nil)
	out := func(v any) {
		json.NewEncoder(stdout).Encode(v)
	}
	switch sub {
	case "ls":
		items, next, err := q.List(ctx, *tenant, *limit, *cursor)
		if err != nil {
			fmt.Fprintln(stderr, "dlq ls:", err)
			return 1
		}
		if *asJSON {
			var nc any
			if next > 0 {
				nc = strconv.FormatUint(next, 10)
			}
			out(map[string]any{"data": items, "next_cursor": nc})
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTENANT\tSTAGE\tSUBJECT\tSEQUENCE\tATTEMPTS\tTIME\tREASON")
		for _, e := range items {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", e.Seq, e.Tenant, e.Stage, e.Subject, e.Sequence, e.Attempts, e.Time.Format(time.RFC3339), clipText(e.Reason, 80))
		}
		tw.Flush()
		if next > 0 {
			fmt.Fprintf(stdout, "more: --cursor %d\n", next)
		}
	case "show":
		e, err := q.Get(ctx, *tenant, seqs[0])
		if errors.Is(err, streams.ErrNotFound) {
			fmt.Fprintf(stderr, "dlq show: no dead letter %d\n", seqs[0])
			return 1
		}
		if err != nil {
			fmt.Fprintln(stderr, "dlq show:", err)
			return 1
		}
		if *asJSON {
			out(e)
			return 0
		}
		b, _ := json.MarshalIndent(e, "", "  ")
		fmt.Fprintln(stdout, string(b))
	case "redrive":
		res, err := q.Redrive(ctx, *tenant, seqs, *all)
		if err != nil {
			fmt.Fprintln(stderr, "dlq redrive:", err)
			return 1
		}
		if *asJSON {
			out(res)
		} else {
			fmt.Fprintf(stdout, "redriven: %d, failed: %d\n", res.Redriven, len(res.Failed))
			for _, f := range res.Failed {
				fmt.Fprintf(stdout, "  %d: %s\n", f.Seq, f.Reason)
			}
		}
		if len(res.Failed) > 0 {
			return 1
		}
	}
	return 0
}

func clipText(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// cmdReplay re-applies the CANONICAL stream to the stores, or rebuilds them.
//
// DuckDB allows one process per file. Without --nats-url the command opens
// the data dir itself (the DuckDB file and the embedded JetStream store), so
// the system must be stopped; it says so when the file is in use. Against a
// running system use POST /api/v1/dcl/rebuild, or --nats-url with
// --stores postgres.
func cmdReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "tenant to replay (required)")
	entity := fs.String("entity", "", "account, opportunity or contact (default: every entity)")
	since := fs.Duration("since", 0, "replay events stored in the last DURATION (e.g. 2h)")
	fromSeq := fs.Uint64("from-seq", 0, "replay from this CANONICAL stream sequence")
	rebuild := fs.Bool("rebuild", false, "build fresh tables from the whole stream beside the live ones and swap them in atomically")
	pg := fs.String("postgres", envOr("AUTONOMOS_POSTGRES_URL", ""), "Postgres URL (AUTONOMOS_POSTGRES_URL)")
	dataDir := fs.String("data-dir", envOr("AUTONOMOS_DATA_DIR", "./data"), "data dir: DuckDB file and embedded JetStream store (AUTONOMOS_DATA_DIR)")
	natsURL := fs.String("nats-url", envOr("AUTONOMOS_NATS_URL", ""), "NATS URL; empty opens the data dir's JetStream store (the system must be stopped)")
	storesFlag := fs.String("stores", "", "comma list of duckdb,postgres (default: duckdb, and postgres when --postgres is set)")
	batch := fs.Int("batch", 1000, "events per store transaction")
	asJSON := fs.Bool("json", false, "print one JSON object on one line")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "replay: "+format+"\n", a...)
		return code
	}
	if !streams.ValidToken(*tenant) {
		return fail(2, "--tenant: required, 1-64 of [a-z0-9_-]")
	}
	if *since != 0 && *fromSeq != 0 {
		return fail(2, "give --since or --from-seq, not both")
	}
	if *rebuild && (*since != 0 || *fromSeq != 0) {
		return fail(2, "--rebuild reads the whole stream: --since and --from-seq do not apply")
	}
	want := map[string]bool{"duckdb": true, "postgres": *pg != ""}
	if *storesFlag != "" {
		want = map[string]bool{}
		for _, s := range strings.Split(*storesFlag, ",") {
			s = strings.TrimSpace(s)
			if s != "duckdb" && s != "postgres" {
				return fail(2, "--stores: unknown store %q", s)
			}
			want[s] = true
		}
	}
	if want["postgres"] && *pg == "" {
		return fail(2, "--stores postgres needs --postgres")
	}
	if *natsURL == "" && !want["duckdb"] {
		// The DuckDB file is the lock that proves the system is stopped.
		want["duckdb"] = true
	}
	var stores []subscriber.Rebuildable
	if want["duckdb"] {
		d, err := subscriber.OpenDuckDB(filepath.Join(*dataDir, "autonomos.duckdb"))
		if err != nil {
			return fail(1, "%v\n(is the system running on %s? stop it first, or use POST /api/v1/dcl/rebuild, or --nats-url with --stores postgres)", err, *dataDir)
		}
		defer d.Close()
		stores = append(stores, d)
	}
	if want["postgres"] {
		p, err := subscriber.OpenPostgres(ctx, *pg)
		if err != nil {
			return fail(1, "%v", err)
		}
		defer p.Close()
		stores = append(stores, p)
	}
	url := *natsURL
	if url == "" {
		emb, err := streams.StartEmbedded(streams.EmbeddedConfig{Listen: "127.0.0.1:-1", StoreDir: filepath.Join(*dataDir, "jetstream")})
		if err != nil {
			return fail(1, "%v", err)
		}
		defer emb.Shutdown()
		url = emb.ClientURL()
	}
	nc, err := streams.Connect(url, "autonomos-replay")
	if err != nil {
		return fail(1, "%v", err)
	}
	defer nc.Close()
	js, err := streams.NewJetStream(nc, 0)
	if err != nil {
		return fail(1, "%v", err)
	}
	o := subscriber.ReplayOptions{Tenant: *tenant, Entity: canonical.Entity(*entity), FromSeq: *fromSeq, BatchSize: *batch}
	if *since > 0 {
		o.Since = time.Now().Add(-*since)
	}
	var result any
	if *rebuild {
		result, err = subscriber.Rebuild(ctx, js, stores, o)
	} else {
		sinks := make([]subscriber.Sink, len(stores))
		for i, s := range stores {
			sinks[i] = s
		}
		result, err = subscriber.Replay(ctx, js, sinks, o)
	}
	if err != nil {
		return fail(1, "%v", err)
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(result)
	} else {
		b, _ := json.Marshal(result)
		fmt.Fprintf(stdout, "replay done: %s\n", b)
	}
	return 0
}
