package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/autonomos/autonomos/agents"
)

// benchResult is what bench prints (one JSON line with --json). Every
// measured number is a pointer: null when the stage did not run (no
// Postgres, no /dcl/ws in this build), never a made-up zero.
type benchResult struct {
	Records    int `json:"records"`     // opportunities
	Events     int `json:"events"`      // every canonical event of the end-to-end run (opportunities, accounts, contacts)
	EventBytes int `json:"event_bytes"` // size of a typical opportunity event on the wire

	E2EEventsPerS         *float64  `json:"e2e_events_per_s"`
	BaselineJetStream     *float64  `json:"baseline_jetstream_events_per_s"`
	BaselineCopy          *float64  `json:"baseline_copy_rows_per_s"`
	BaselineUpsert        *float64  `json:"baseline_upsert_rows_per_s"`
	SinkPostgres          *float64  `json:"sink_postgres_events_per_s"`
	SinkDuckDB            *float64  `json:"sink_duckdb_events_per_s"`
	RatioE2EToSlowest     *float64  `json:"ratio_e2e_to_slowest_baseline"`
	RatioE2EToJetStream   *float64  `json:"ratio_e2e_to_jetstream"`
	RatioE2EToCopy        *float64  `json:"ratio_e2e_to_copy"`
	RatioE2EToUpsert      *float64  `json:"ratio_e2e_to_upsert"`
	LatencyRate50         *float64  `json:"latency_rate_events_per_s"`
	LatencyP50            *float64  `json:"latency_p50_ms"`
	LatencyP99            *float64  `json:"latency_p99_ms"`
	LatencyP999           *float64  `json:"latency_p999_ms"`
	LatencyRate80         *float64  `json:"latency_80_rate_events_per_s"`
	Latency80P50          *float64  `json:"latency_80_p50_ms"`
	Latency80P99          *float64  `json:"latency_80_p99_ms"`
	Latency80P999         *float64  `json:"latency_80_p999_ms"`
	CPUSPer1kEvents       *float64  `json:"cpu_s_per_1k_events"`
	CPUs                  int       `json:"cpus"`               // runtime.NumCPU: the cores the stages share
	CPUPerStage           cpuStages `json:"cpu_per_stage"`      // CPU seconds per 1,000 events of each stage, this process's and the machine's
	ParseSharedRatio      *float64  `json:"parse_shared_ratio"` // of the e2e's event parses, those one sink took from the other (subscriber.ParseCache)
	PeakRSSMB             *float64  `json:"peak_rss_mb"`
	WSDeliveriesPerS      *float64  `json:"ws_deliveries_per_s"`
	WSP99MS               *float64  `json:"ws_p99_ms"`
	WSClients             int       `json:"ws_clients"`
	Visible               bool      `json:"visible"` // every record counted in both stores and sampled through the views API
	SecondsTotal          float64   `json:"seconds_total"`
	Notes                 []string  `json:"notes"`
	postgresVersion       string
	e2eSeconds, cpuSecond float64
}

func f64(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	v = math.Round(v*1000) / 1000
	return &v
}

// cmdBench is `autonomos bench`: the performance harness (see
// docs/BENCHMARKS.md), or `autonomos bench drift`: the drift matcher's score
// on a corpus.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "drift" {
		return cmdBenchDrift(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	o.bind(fs)
	var bc benchConfig
	fs.IntVar(&bc.Records, "records", 1_000_000, "opportunities to generate (plus 2% as many accounts and 5% contacts)")
	fs.StringVar(&bc.URL, "url", "", "measure a running system at this base URL (end to end only) instead of starting one")
	fs.StringVar(&bc.Email, "email", "", "with --url: log in as this user")
	fs.StringVar(&bc.Password, "password", os.Getenv("AUTONOMOS_PASSWORD"), "with --email: the password (AUTONOMOS_PASSWORD)")
	fs.StringVar(&bc.CPUProfile, "cpuprofile", "", "write a CPU profile of the end-to-end stage to this file")
	fs.DurationVar(&bc.LatencyFor, "latency-duration", 5*time.Second, "how long each open-loop latency run sends")
	fs.IntVar(&bc.WSClients, "ws-clients", 1000, "WebSocket clients of the fan-out stage")
	fs.DurationVar(&bc.Timeout, "timeout", 30*time.Minute, "give up after this long")
	if err := o.parse(fs, args); err != nil {
		return 2
	}
	if bc.Records < 100 {
		fmt.Fprintln(stderr, "bench: --records must be at least 100")
		return 2
	}
	if !flagSet(fs, "postgres") && o.Postgres == "" {
		o.Postgres = envOr("AUTONOMOS_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
		bc.defaultPostgres = true
	}
	bc.opts = o
	began := time.Now()
	bc.progress = func(format string, a ...any) {
		fmt.Fprintf(stderr, "bench: %5.1fs "+format+"\n", append([]any{time.Since(began).Seconds()}, a...)...)
	}
	bc.log = newLogger(stderr, "error")
	ctx, cancel := context.WithTimeout(ctx, bc.Timeout)
	defer cancel()
	res, err := runBench(ctx, &bc)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		if res == nil {
			return 1
		}
		res.Notes = append(res.Notes, "failed: "+err.Error())
	}
	if o.JSON {
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
	} else {
		printBench(stdout, res)
	}
	if err != nil {
		return 1
	}
	return 0
}

func cmdBenchDrift(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench drift", flag.ContinueOnError)
	fs.SetOutput(stderr)
	corpus := fs.String("corpus", "testdata/drift", "directory of drift cases")
	asJSON := fs.Bool("json", false, "print one JSON object on one line of stdout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r, err := agents.BenchDrift(*corpus, agents.BenchConfig{})
	if err != nil {
		fmt.Fprintf(stderr, "bench drift: %v\n", err)
		return 1
	}
	if *asJSON {
		b, _ := json.Marshal(map[string]any{"cases": r.Cases, "top1": r.Top1, "auto_applied": r.AutoApplied,
			"wrong_auto_applies": r.WrongAutoApplies, "queued": r.Queued, "rejected": r.Rejected})
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	fmt.Fprintf(stdout, "cases %d  top1 %.3f  auto_applied %d  wrong_auto_applies %d  queued %d  rejected %d\n",
		r.Cases, r.Top1, r.AutoApplied, r.WrongAutoApplies, r.Queued, r.Rejected)
	return 0
}

// benchConfig is one bench run's settings.
type benchConfig struct {
	Records         int
	URL             string
	Email, Password string
	CPUProfile      string
	LatencyFor      time.Duration
	WSClients       int
	Timeout         time.Duration
	opts            options
	defaultPostgres bool
	progress        func(format string, a ...any)
	log             *slog.Logger
}

func printBench(w io.Writer, r *benchResult) {
	num := func(p *float64, unit string) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.1f%s", *p, unit)
	}
	fmt.Fprintf(w, "records %d opportunities, %d events in the end-to-end run, ~%d bytes per event\n", r.Records, r.Events, r.EventBytes)
	fmt.Fprintf(w, "  end to end (CSV → filesource → JetStream → Postgres + DuckDB, visible)  %s events/s\n", num(r.E2EEventsPerS, ""))
	fmt.Fprintf(w, "  baseline A  JetStream publish + consume (2 consumers)        %s events/s   ratio %s\n", num(r.BaselineJetStream, ""), num(r.RatioE2EToJetStream, ""))
	fmt.Fprintf(w, "  baseline B  Postgres COPY, unkeyed table                     %s rows/s     ratio %s\n", num(r.BaselineCopy, ""), num(r.RatioE2EToCopy, ""))
	fmt.Fprintf(w, "  baseline C  Postgres batched INSERT ... ON CONFLICT          %s rows/s     ratio %s\n", num(r.BaselineUpsert, ""), num(r.RatioE2EToUpsert, ""))
	fmt.Fprintf(w, "  sink alone  Postgres %s events/s, DuckDB %s events/s\n", num(r.SinkPostgres, ""), num(r.SinkDuckDB, ""))
	fmt.Fprintf(w, "  ratio e2e / slower of A and C: %s\n", num(r.RatioE2EToSlowest, ""))
	fmt.Fprintf(w, "  latency at 50%% of peak (%s/s): p50 %s  p99 %s  p99.9 %s\n", num(r.LatencyRate50, ""), num(r.LatencyP50, "ms"), num(r.LatencyP99, "ms"), num(r.LatencyP999, "ms"))
	fmt.Fprintf(w, "  latency at 80%% of peak (%s/s): p50 %s  p99 %s  p99.9 %s\n", num(r.LatencyRate80, ""), num(r.Latency80P50, "ms"), num(r.Latency80P99, "ms"), num(r.Latency80P999, "ms"))
	fmt.Fprintf(w, "  CPU %s s per 1,000 events (this process), peak RSS %s MB\n", num(r.CPUSPer1kEvents, ""), num(r.PeakRSSMB, ""))
	c := r.CPUPerStage
	cpu := func(s stageCPU) string {
		f := func(p *float64) string {
			if p == nil {
				return "n/a"
			}
			return fmt.Sprintf("%.3f", *p)
		}
		return f(s.Process) + " / " + f(s.Machine)
	}
	fmt.Fprintf(w, "  CPU s per 1,000 events, this process / the machine (%d cores):\n", r.CPUs)
	fmt.Fprintf(w, "    A %s   B %s   C %s   Postgres sink %s   DuckDB sink %s   end to end %s\n",
		cpu(c.BaselineJetStream), cpu(c.BaselineCopy), cpu(c.BaselineUpsert), cpu(c.SinkPostgres), cpu(c.SinkDuckDB), cpu(c.E2E))
	fmt.Fprintf(w, "  WebSocket fan-out to %d clients: %s deliveries/s, p99 %s\n", r.WSClients, num(r.WSDeliveriesPerS, ""), num(r.WSP99MS, "ms"))
	fmt.Fprintf(w, "  every record visible in both stores: %v   (%.0f s in all)\n", r.Visible, r.SecondsTotal)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// runBench runs every stage in one process, one after the other, so that
// the ratios compare numbers taken on the same machine at the same time.
func runBench(ctx context.Context, bc *benchConfig) (*benchResult, error) {
	began := time.Now()
	res := &benchResult{Records: bc.Records, Notes: []string{}}
	defer func() { res.SecondsTotal = math.Round(time.Since(began).Seconds()*10) / 10 }()
	dir, err := os.MkdirTemp("", "autonomos-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	// The data: one CSV file per entity, written once, read by the
	// filesource connector; the other stages regenerate the same rows.
	gen := newBenchData(bc.Records)
	files, err := gen.writeFiles(dir)
	if err != nil {
		return nil, err
	}
	res.Events = gen.total()
	bc.progress("generated %d opportunities, %d accounts, %d contacts", gen.opps, gen.accounts, gen.contacts)

	if bc.URL != "" {
		return res, benchRemote(ctx, bc, gen, files, res)
	}

	// Postgres: a fresh schema for the system (and baselines B and C), one
	// for the Postgres sink alone; both dropped at the end.
	var pg *benchPostgres
	if bc.opts.Postgres != "" {
		pg, err = openBenchPostgres(ctx, bc.opts.Postgres)
		if err != nil {
			if !bc.defaultPostgres {
				return res, fmt.Errorf("postgres: %w", err)
			}
			res.Notes = append(res.Notes, "no Postgres reachable at the default test URL: Postgres stages skipped ("+err.Error()+")")
			bc.opts.Postgres = ""
			pg = nil
		} else {
			defer pg.close()
			bc.opts.Postgres = pg.url(pg.sysSchema)
			res.postgresVersion = pg.version
		}
	}

	o := bc.opts
	o.DataDir = filepath.Join(dir, "data")
	o.HTTP = "127.0.0.1:0"
	o.NATSListen = "127.0.0.1:-1"
	o.RateRead, o.RateWrite = "1000/s burst 1000", "1000/s burst 1000"
	sysCtx, stop := context.WithCancel(ctx)
	sys, err := startSystem(sysCtx, o, bc.log)
	if err != nil {
		stop()
		return res, fmt.Errorf("start system: %w", err)
	}
	defer func() { stop(); sys.wait() }()
	client := newAPIClient("http://" + sys.httpAddr)
	tenant := "bench-" + randHex(4)
	if err := client.register(ctx, tenant, tenant+"@bench.invalid", randHex(12)); err != nil {
		return res, fmt.Errorf("register the bench tenant: %w", err)
	}
	gen.tenant = tenant
	em, err := gen.emitter(ctx, sys)
	if err != nil {
		return res, err
	}
	res.EventBytes = gen.eventBytes(em)

	// Baseline A: the bus alone.
	bc.progress("baseline A: JetStream publish and consume")
	res.CPUs = runtime.NumCPU()
	if v, err := measureCPU(&res.CPUPerStage.BaselineJetStream, gen.opps, func() (float64, error) {
		return baselineJetStream(ctx, sys, gen, em)
	}); err != nil {
		res.Notes = append(res.Notes, "baseline A failed: "+err.Error())
	} else {
		res.BaselineJetStream = f64(v)
	}
	// Baselines B and C: Postgres alone.
	if pg != nil {
		bc.progress("baseline B: Postgres COPY")
		if v, err := measureCPU(&res.CPUPerStage.BaselineCopy, gen.opps, func() (float64, error) {
			return pg.baselineCopy(ctx, gen, em)
		}); err != nil {
			res.Notes = append(res.Notes, "baseline B failed: "+err.Error())
		} else {
			res.BaselineCopy = f64(v)
		}
		bc.progress("baseline C: Postgres batched upsert")
		if v, err := measureCPU(&res.CPUPerStage.BaselineUpsert, gen.opps, func() (float64, error) {
			return pg.baselineUpsert(ctx, gen, em)
		}); err != nil {
			res.Notes = append(res.Notes, "baseline C failed: "+err.Error())
		} else {
			res.BaselineUpsert = f64(v)
		}
	} else {
		res.Notes = append(res.Notes, "baselines B and C and the Postgres sink need Postgres (--postgres)")
	}

	// End to end.
	bc.progress("end to end: %d events", gen.total())
	if err := benchE2E(ctx, bc, sys, client, gen, files, res); err != nil {
		return res, err
	}

	// Each sink alone, from the stream the end-to-end run filled.
	if pg != nil {
		bc.progress("Postgres sink alone")
		if v, err := measureCPU(&res.CPUPerStage.SinkPostgres, gen.total(), func() (float64, error) {
			return sinkAlone(ctx, sys, "postgres", pg.url(pg.sinkSchema), dir, gen.total())
		}); err != nil {
			res.Notes = append(res.Notes, "Postgres sink alone failed: "+err.Error())
		} else {
			res.SinkPostgres = f64(v)
		}
	}
	bc.progress("DuckDB sink alone")
	if v, err := measureCPU(&res.CPUPerStage.SinkDuckDB, gen.total(), func() (float64, error) {
		return sinkAlone(ctx, sys, "duckdb", "", dir, gen.total())
	}); err != nil {
		res.Notes = append(res.Notes, "DuckDB sink alone failed: "+err.Error())
	} else {
		res.SinkDuckDB = f64(v)
	}

	// Open-loop latency at 50% and 80% of the measured peak.
	if res.E2EEventsPerS != nil {
		for _, frac := range []float64{0.5, 0.8} {
			rate := *res.E2EEventsPerS * frac
			n := int(rate * bc.LatencyFor.Seconds())
			n = max(200, min(n, bc.Records))
			if err := settle(ctx, sys, time.Minute); err != nil {
				res.Notes = append(res.Notes, fmt.Sprintf("latency at %.0f%%: %v", frac*100, err))
			}
			bc.progress("open-loop latency at %.0f events/s (%.0f%% of peak), %d events", rate, frac*100, n)
			lat, err := benchLatency(ctx, sys, gen, em, rate, n, fmt.Sprintf("L%02d", int(frac*100)))
			if err != nil {
				res.Notes = append(res.Notes, fmt.Sprintf("latency at %.0f%% failed: %v", frac*100, err))
				continue
			}
			if frac == 0.5 {
				res.LatencyRate50, res.LatencyP50, res.LatencyP99, res.LatencyP999 = f64(rate), f64(lat[0]), f64(lat[1]), f64(lat[2])
			} else {
				res.LatencyRate80, res.Latency80P50, res.Latency80P99, res.Latency80P999 = f64(rate), f64(lat[0]), f64(lat[1]), f64(lat[2])
			}
		}
	}

	// WebSocket fan-out, when this build has /dcl/ws.
	res.WSClients = bc.WSClients
	if err := settle(ctx, sys, time.Minute); err != nil {
		res.Notes = append(res.Notes, "WebSocket fan-out: "+err.Error())
	}
	bc.progress("WebSocket fan-out")
	if d, p99, note := benchWebSocket(ctx, sys, client, gen, em, bc.WSClients); note != "" {
		res.Notes = append(res.Notes, note)
	} else {
		res.WSDeliveriesPerS, res.WSP99MS = f64(d), f64(p99)
	}

	// Ratios against baselines of this very run.
	ratio := func(b *float64) *float64 {
		if res.E2EEventsPerS == nil || b == nil || *b == 0 {
			return nil
		}
		return f64(*res.E2EEventsPerS / *b)
	}
	res.RatioE2EToJetStream = ratio(res.BaselineJetStream)
	res.RatioE2EToCopy = ratio(res.BaselineCopy)
	res.RatioE2EToUpsert = ratio(res.BaselineUpsert)
	var slowest *float64
	for _, b := range []*float64{res.BaselineJetStream, res.BaselineUpsert} {
		if b != nil && (slowest == nil || *b < *slowest) {
			slowest = b
		}
	}
	res.RatioE2EToSlowest = ratio(slowest)
	return res, nil
}

// benchE2E uploads the three files through the API and waits until every
// event is committed in both stores; then it checks the exact counts in each
// store and samples the views API.
func benchE2E(ctx context.Context, bc *benchConfig, sys *system, client *apiClient, gen *benchData, files map[string]string, res *benchResult) error {
	if len(sys.subs) == 0 {
		return errors.New("the system runs no subscriber")
	}
	base := make([]uint64, len(sys.subs))
	for i, s := range sys.subs {
		base[i] = s.Stats().Applied
	}
	if bc.CPUProfile != "" {
		f, err := os.Create(bc.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	resetPeakRSS()
	hits0, misses0 := sys.sinkMetrics.parse.Stats()
	cpu0, machine0 := cpuSeconds(), machineBusySeconds()
	start := time.Now()
	var jobs []string
	for _, ent := range []string{"account", "contact", "opportunity"} {
		id, _, err := client.upload(ctx, files[ent], ent, "")
		if err != nil {
			return fmt.Errorf("upload %s: %w", ent, err)
		}
		jobs = append(jobs, id)
	}
	want := uint64(gen.total())
	lastLog := time.Now()
	for {
		done := true
		for i, s := range sys.subs {
			if s.Stats().Applied-base[i] < want {
				done = false
			}
		}
		if done {
			break
		}
		if time.Since(lastLog) > 5*time.Second {
			var parts []string
			for i, s := range sys.subs {
				parts = append(parts, fmt.Sprintf("%s %d", s.Stats().Sink, s.Stats().Applied-base[i]))
			}
			bc.progress("  %s of %d after %.0fs", strings.Join(parts, ", "), want, time.Since(start).Seconds())
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("end to end: %w", ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	el := time.Since(start).Seconds()
	cpu, machine := cpuSeconds()-cpu0, machineBusySeconds()-machine0
	pprof.StopCPUProfile()
	res.CPUPerStage.E2E = stageCPU{Process: f64(cpu / float64(want) * 1000), Machine: f64(machine / float64(want) * 1000)}
	res.e2eSeconds, res.cpuSecond = el, cpu
	res.E2EEventsPerS = f64(float64(want) / el)
	res.CPUSPer1kEvents = f64(cpu / float64(want) * 1000)
	if hits, misses := sys.sinkMetrics.parse.Stats(); hits+misses > hits0+misses0 {
		res.ParseSharedRatio = f64(float64(hits-hits0) / float64(hits+misses-hits0-misses0))
	}
	res.PeakRSSMB = f64(peakRSSMB())
	for _, id := range jobs {
		j, err := client.waitJob(ctx, id, nil)
		if err != nil {
			return fmt.Errorf("job %s: %w", id, err)
		}
		if j.Status != "succeeded" || j.Rejected != 0 {
			return fmt.Errorf("job %s is %s with %d rejected: %s", id, j.Status, j.Rejected, j.Message)
		}
	}
	// Exact counts in each store, and the last record of each file through
	// the views API.
	visible := true
	for ent, n := range gen.counts() {
		for _, st := range sys.stores {
			got, err := storeCount(ctx, st, gen.tenant, ent)
			if err != nil {
				return err
			}
			if got != int64(n) {
				visible = false
				res.Notes = append(res.Notes, fmt.Sprintf("%s holds %d %s, want %d", st.Name(), got, ent, n))
			}
		}
		plural, key, id := gen.lastID(ent)
		rows, err := client.view(ctx, plural, url.Values{key: {id}})
		if err != nil || len(rows) != 1 {
			visible = false
			res.Notes = append(res.Notes, fmt.Sprintf("views API: %s %s not found (%v)", plural, id, err))
		}
	}
	res.Visible = visible
	if !visible {
		return errors.New("not every record is visible in both stores")
	}
	return nil
}

// percentiles returns p50, p99 and p99.9 of ds in milliseconds.
func percentiles(ds []time.Duration) [3]float64 {
	slices.Sort(ds)
	at := func(q float64) float64 {
		if len(ds) == 0 {
			return math.NaN()
		}
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		i = max(0, min(i, len(ds)-1))
		return float64(ds[i].Microseconds()) / 1000
	}
	return [3]float64{at(0.50), at(0.99), at(0.999)}
}
