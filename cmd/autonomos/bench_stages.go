package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/subscriber"
)

// ---- process measurements -------------------------------------------------

// cpuSeconds is this process's user+system CPU time (getrusage).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// machineBusySeconds is the time every CPU of the machine spent not idle
// (/proc/stat: user, nice, system, irq, softirq, steal), the Postgres
// server's included; NaN where /proc/stat cannot be read.
func machineBusySeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return math.NaN()
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return math.NaN()
	}
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system _idle_ _iowait_ irq softirq steal
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return math.NaN()
		}
		busy += v
	}
	return busy / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux the
// kernel's ABI allows (it is fixed for user space).
const clockTicks = 100

// stageCPU is one stage's CPU seconds per 1,000 events: this process's
// (getrusage) and the whole machine's (machineBusySeconds: the Postgres
// server and anything else running included). Measured over the stage's
// whole call, its setup included; null where unreadable.
type stageCPU struct {
	Process *float64 `json:"process_s_per_1k"`
	Machine *float64 `json:"machine_s_per_1k"`
}

// cpuStages are the stages' stageCPU, under the keys of their rates.
type cpuStages struct {
	BaselineJetStream stageCPU `json:"baseline_jetstream"`
	BaselineCopy      stageCPU `json:"baseline_copy"`
	BaselineUpsert    stageCPU `json:"baseline_upsert"`
	SinkPostgres      stageCPU `json:"sink_postgres"`
	SinkDuckDB        stageCPU `json:"sink_duckdb"`
	E2E               stageCPU `json:"e2e"`
}

// measureCPU runs a stage of n events and records its CPU in into.
func measureCPU(into *stageCPU, n int, stage func() (float64, error)) (float64, error) {
	p0, m0 := cpuSeconds(), machineBusySeconds()
	v, err := stage()
	if err == nil && n > 0 {
		k := float64(n) / 1000
		into.Process, into.Machine = f64((cpuSeconds()-p0)/k), f64((machineBusySeconds()-m0)/k)
	}
	return v, err
}

// resetPeakRSS resets VmHWM (Linux: clear_refs 5), so the next peak is the
// stage's own; harmless where unsupported.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSSMB reads VmHWM from /proc/self/status.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// storeCount counts a tenant's live rows of an entity in a store.
func storeCount(ctx context.Context, st store, tenant string, e canonical.Entity) (int64, error) {
	c, ok := st.(interface {
		Count(context.Context, string, canonical.Entity) (int64, error)
	})
	if !ok {
		return 0, fmt.Errorf("store %s cannot count", st.Name())
	}
	return c.Count(ctx, tenant, e)
}

// ---- baseline A: the bus alone ------------------------------------------

// baselineJetStream publishes the opportunities' events (same bodies, sizes
// and headers) into a temporary stream with CANONICAL's settings, the way
// the connector publishes (async, acks collected per 1,000), while two
// durable pull consumers — as many as the end-to-end run has sinks — read and
// ack every message. It returns events/s: N over the time until both
// consumers have acknowledged all N.
func baselineJetStream(ctx context.Context, sys *system, g *benchData, em connectors.Emitter) (float64, error) {
	const ring = 1024
	bodies := make([][]byte, ring)
	for i := range bodies {
		m, err := g.oppMsg(em, "", i)
		if err != nil {
			return 0, err
		}
		bodies[i] = m.Data
	}
	nc, err := streams.Connect(sys.natsURL, "autonomos-bench")
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := streams.NewJetStream(nc, 8192)
	if err != nil {
		return 0, err
	}
	info, err := sys.js.Stream(ctx, streams.StreamCanonical)
	if err != nil {
		return 0, err
	}
	cfg := info.CachedInfo().Config
	tag := randHex(4)
	cfg.Name, cfg.Subjects, cfg.Description = "BENCH_BUS_"+strings.ToUpper(tag), []string{"benchbus." + tag + ".>"}, "bench baseline A"
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		return 0, err
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), cfg.Name)
	n := g.opps
	var got [2]atomic.Int64
	done := make(chan struct{}, 2)
	for k := range 2 {
		cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Name, jetstream.ConsumerConfig{Durable: fmt.Sprintf("bench-a%d", k),
			AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy, AckWait: 30 * time.Second, MaxAckPending: 10_000})
		if err != nil {
			return 0, err
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			m.Ack()
			if got[k].Add(1) == int64(n) {
				done <- struct{}{}
			}
		}, jetstream.PullMaxMessages(2000))
		if err != nil {
			return 0, err
		}
		defer cc.Stop()
	}
	pub := streams.NewPublisher(js)
	b := pub.NewBatch()
	subj := "benchbus." + tag + "." + g.tenant + ".opportunity"
	start := time.Now()
	for i := range n {
		m := nats.NewMsg(subj)
		m.Data = bodies[i%ring]
		m.Header.Set(jetstream.MsgIDHeader, "bench-a-"+strconv.Itoa(i))
		m.Header.Set(streams.HeaderContentType, streams.ContentTypeCloudEvent)
		m.Header.Set(streams.HeaderTenant, g.tenant)
		m.Header.Set(streams.HeaderTraceparent, streams.Traceparent(em.TraceID))
		if err := b.Add(m); err != nil {
			return 0, err
		}
		if b.Len() >= 1000 {
			if _, err := b.Wait(ctx); err != nil {
				return 0, err
			}
		}
	}
	if _, err := b.Wait(ctx); err != nil {
		return 0, err
	}
	for range 2 {
		select {
		case <-done:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Minute):
			return 0, fmt.Errorf("consumers got %d and %d of %d", got[0].Load(), got[1].Load(), n)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// ---- baselines B and C: Postgres alone -------------------------------------

// benchPostgres is the bench's Postgres: two fresh schemas, dropped at the end.
type benchPostgres struct {
	base                  string
	conn                  *pgx.Conn
	sysSchema, sinkSchema string
	version               string
}

func openBenchPostgres(ctx context.Context, base string) (*benchPostgres, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, base)
	if err != nil {
		return nil, err
	}
	tag := randHex(4)
	p := &benchPostgres{base: base, conn: conn, sysSchema: "bench_" + tag, sinkSchema: "bench_" + tag + "_sink"}
	conn.QueryRow(ctx, "SHOW server_version").Scan(&p.version)
	for _, s := range []string{p.sysSchema, p.sinkSchema} {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+s); err != nil {
			conn.Close(ctx)
			return nil, err
		}
	}
	return p, nil
}

// url is the base URL with search_path set to schema.
func (p *benchPostgres) url(schema string) string {
	sep := "?"
	if strings.Contains(p.base, "?") {
		sep = "&"
	}
	return p.base + sep + "search_path=" + schema
}

func (p *benchPostgres) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range []string{p.sysSchema, p.sinkSchema} {
		p.conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE")
	}
	p.conn.Close(ctx)
}

// pgRow is opportunity i in the materialized table's written columns.
var pgCols = []string{"tenant_id", "opportunity_id", "account_id", "name", "stage", "amount", "currency", "close_date", "owner_id",
	"probability", "extras", "source_system", "source_object", "connection_id", "source_updated_at", "mapping_version", "event_id", "deleted", "content_hash"}

func pgRow(ev *canonical.Event) ([]any, error) {
	o := ev.Record.(*canonical.Opportunity)
	x, err := json.Marshal(o.Extras)
	if err != nil {
		return nil, err
	}
	txt := func(v any) any {
		s, ok := canonicalText(v)
		if !ok {
			return nil
		}
		return s
	}
	return []any{ev.Tenant, o.OpportunityID, txt(o.Value("account_id")), o.Name, txt(o.Value("stage")), txt(o.Value("amount")),
		txt(o.Value("currency")), txt(o.Value("close_date")), txt(o.Value("owner_id")), txt(o.Value("probability")), string(x),
		ev.SourceSystem, ev.SourceObject, ev.ConnectionID, ev.Time, int32(ev.MappingVersion), ev.ID, false, int64(0)}, nil
}

// canonicalText renders a field value as text (decimals, dates as their
// canonical strings).
func canonicalText(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", false
	case string:
		return v, true
	case fmt.Stringer:
		return v.String(), true
	}
	return fmt.Sprint(v), true
}

// rowSource feeds CopyFrom from the generator.
type rowSource struct {
	g   *benchData
	em  connectors.Emitter
	i   int
	row []any
	err error
}

func (r *rowSource) Next() bool {
	if r.err != nil || r.i >= r.g.opps {
		return false
	}
	ev, err := r.g.oppEvent(r.em, r.i)
	if err == nil {
		r.row, err = pgRow(ev)
	}
	r.err = err
	r.i++
	return err == nil
}
func (r *rowSource) Values() ([]any, error) { return r.row, r.err }
func (r *rowSource) Err() error             { return r.err }

// baselineCopy loads the opportunities with COPY into an unkeyed table of
// the materialized table's columns: the server's and the disk's limit.
func (p *benchPostgres) baselineCopy(ctx context.Context, g *benchData, em connectors.Emitter) (float64, error) {
	tbl := pgx.Identifier{p.sysSchema, "bench_copy"}
	if _, err := p.conn.Exec(ctx, "CREATE TABLE "+tbl.Sanitize()+" (LIKE "+p.sysSchema+".materialized_opportunities INCLUDING DEFAULTS)"); err != nil {
		return 0, err
	}
	start := time.Now()
	n, err := p.conn.CopyFrom(ctx, tbl, pgCols, &rowSource{g: g, em: em})
	if err != nil {
		return 0, err
	}
	el := time.Since(start).Seconds()
	p.conn.Exec(ctx, "DROP TABLE "+tbl.Sanitize())
	return float64(n) / el, nil
}

// baselineUpsert upserts the opportunities with a minimal loop of batched
// multi-row INSERT ... ON CONFLICT DO UPDATE ... WHERE newer (1,000 rows per
// statement, one transaction each) into a table with the materialized
// table's keys and indexes: no bus, no parsing.
func (p *benchPostgres) baselineUpsert(ctx context.Context, g *benchData, em connectors.Emitter) (float64, error) {
	tbl := p.sysSchema + ".bench_upsert"
	if _, err := p.conn.Exec(ctx, "CREATE TABLE "+tbl+" (LIKE "+p.sysSchema+".materialized_opportunities INCLUDING ALL)"); err != nil {
		return 0, err
	}
	defer p.conn.Exec(context.WithoutCancel(ctx), "DROP TABLE "+tbl)
	const batch = 1000
	var sets []string
	for _, c := range pgCols[2:] {
		sets = append(sets, c+" = excluded."+c)
	}
	tail := " ON CONFLICT (tenant_id, opportunity_id) DO UPDATE SET " + strings.Join(sets, ", ") + ", updated_at = now()" +
		" WHERE (excluded.source_updated_at, excluded.mapping_version) > (" + tbl + ".source_updated_at, " + tbl + ".mapping_version)"
	build := func(rows int) string {
		var sb strings.Builder
		sb.WriteString("INSERT INTO " + tbl + " (" + strings.Join(pgCols, ", ") + ") VALUES ")
		k := 1
		for r := range rows {
			if r > 0 {
				sb.WriteByte(',')
			}
			sb.WriteByte('(')
			for c := range pgCols {
				if c > 0 {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, "$%d", k)
				switch pgCols[c] {
				case "amount", "probability":
					sb.WriteString("::numeric")
				case "close_date":
					sb.WriteString("::date")
				case "extras":
					sb.WriteString("::jsonb")
				}
				k++
			}
			sb.WriteByte(')')
		}
		sb.WriteString(tail)
		return sb.String()
	}
	full := build(batch)
	start := time.Now()
	args := make([]any, 0, batch*len(pgCols))
	for lo := 0; lo < g.opps; lo += batch {
		hi := min(lo+batch, g.opps)
		args = args[:0]
		for i := lo; i < hi; i++ {
			ev, err := g.oppEvent(em, i)
			if err != nil {
				return 0, err
			}
			row, err := pgRow(ev)
			if err != nil {
				return 0, err
			}
			args = append(args, row...)
		}
		q := full
		if hi-lo != batch {
			q = build(hi - lo)
		}
		if _, err := p.conn.Exec(ctx, q, args...); err != nil {
			return 0, err
		}
	}
	return float64(g.opps) / time.Since(start).Seconds(), nil
}

// ---- each sink alone --------------------------------------------------------

// sinkAlone materializes the CANONICAL stream the end-to-end run filled into
// a fresh store (a new schema, a new DuckDB file) through a Subscriber with a
// durable of its own, and returns events/s until all want are committed.
func sinkAlone(ctx context.Context, sys *system, kind, pgURL, dir string, want int) (float64, error) {
	var st store
	var err error
	if kind == "postgres" {
		st, err = subscriber.OpenPostgres(ctx, pgURL)
	} else {
		st, err = subscriber.OpenDuckDB(filepath.Join(dir, "sink-alone.duckdb"))
	}
	if err != nil {
		return 0, err
	}
	defer st.Close()
	durable := "bench-" + kind + "-" + randHex(3)
	sub, err := subscriber.New(sys.js, sys.pub, st, subscriber.Config{Durable: durable, MaxDeliver: 100}, sys.log)
	if err != nil {
		return 0, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- sub.Run(rctx) }()
	defer func() {
		cancel()
		<-done
		sys.js.DeleteConsumer(context.WithoutCancel(ctx), streams.StreamCanonical, durable)
	}()
	for sub.Stats().Applied < uint64(want) {
		select {
		case err := <-done:
			return 0, fmt.Errorf("subscriber stopped: %v", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return float64(want) / time.Since(start).Seconds(), nil
}

// settle waits, up to limit, until every durable consumer of CANONICAL and
// RAW (the sinks, the audit and schema observers) has nothing pending or
// unacknowledged, so that a stage is measured alone rather than beside the
// tail of the one before it. It returns what was still pending at the limit.
func settle(ctx context.Context, sys *system, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var busy []string
		for _, stream := range []string{streams.StreamCanonical, streams.StreamRaw} {
			s, err := sys.js.Stream(ctx, stream)
			if err != nil {
				return err
			}
			for names := s.ConsumerNames(ctx); ; {
				name, ok := <-names.Name()
				if !ok {
					break
				}
				c, err := s.Consumer(ctx, name)
				if err != nil {
					continue // deleted meanwhile
				}
				if ci := c.CachedInfo(); ci.Config.Durable != "" && (ci.NumPending > 0 || ci.NumAckPending > 0) {
					busy = append(busy, fmt.Sprintf("%s %d pending, %d unacknowledged", name, ci.NumPending, ci.NumAckPending))
				}
			}
		}
		if len(busy) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not settled after %v: %s", limit, strings.Join(busy, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ---- open-loop latency --------------------------------------------------------

// benchLatency sends n new opportunity events straight to CANONICAL (as a
// connector publishes them) at rate events/s, open loop: event i is due at
// start + i/rate and is sent then, or at once when the sender is behind;
// its latency runs from that intended time, so a stall counts against every
// event it delays. An event is visible when both stores have committed it:
// each sink's Subscriber applies the stream in order and counts an event
// only after its batch committed, so event i is committed in a store when
// that Subscriber's applied count has passed i (polled every 0.5 ms; no
// other events flow meanwhile). It returns p50, p99 and p99.9 in ms.
func benchLatency(ctx context.Context, sys *system, g *benchData, em connectors.Emitter, rate float64, n int, prefix string) ([3]float64, error) {
	var none [3]float64
	msgs := make(chan *nats.Msg, 8192)
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var genErr error
	go func() {
		defer close(msgs)
		for i := range n {
			m, err := g.oppMsg(em, prefix, i)
			if err != nil {
				genErr = err
				return
			}
			select {
			case msgs <- m:
			case <-gctx.Done():
				return
			}
		}
	}()
	// Let the generator get ahead.
	for len(msgs) < min(cap(msgs), n) && gctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	base := make([]uint64, len(sys.subs))
	for k, s := range sys.subs {
		base[k] = s.Stats().Applied
	}
	vis := make([][]time.Time, len(sys.subs))
	var wg sync.WaitGroup
	for k, s := range sys.subs {
		vis[k] = make([]time.Time, n)
		wg.Go(func() {
			seen := 0
			deadline := time.Now().Add(time.Duration(float64(n)/rate*float64(time.Second)) + time.Minute)
			for seen < n && gctx.Err() == nil && time.Now().Before(deadline) {
				a := int(s.Stats().Applied - base[k])
				now := time.Now()
				for ; seen < a && seen < n; seen++ {
					vis[k][seen] = now
				}
				time.Sleep(500 * time.Microsecond)
			}
		})
	}
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now().Add(10 * time.Millisecond)
	b := sys.pub.NewBatch()
	i := 0
	for m := range msgs {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if err := b.Add(m); err != nil {
			cancel()
			wg.Wait()
			return none, err
		}
		i++
		if b.Len() >= 4096 {
			if _, err := b.Wait(ctx); err != nil {
				cancel()
				wg.Wait()
				return none, err
			}
		}
	}
	if _, err := b.Wait(ctx); err != nil {
		cancel()
		wg.Wait()
		return none, err
	}
	if genErr != nil {
		cancel()
		wg.Wait()
		return none, genErr
	}
	wg.Wait()
	lat := make([]time.Duration, 0, n)
	for j := range n {
		var last time.Time
		for k := range vis {
			if vis[k][j].IsZero() {
				return none, fmt.Errorf("event %d of %d not visible in %s", j, n, sys.subs[k].Stats().Sink)
			}
			if vis[k][j].After(last) {
				last = vis[k][j]
			}
		}
		lat = append(lat, last.Sub(start.Add(time.Duration(j)*interval)))
	}
	return percentiles(lat), nil
}

// ---- WebSocket fan-out ------------------------------------------------------

// benchWebSocket connects clients to /dcl/ws and measures how fast record
// events reach them: deliveries/s over the run and the p99 from publish to
// receipt. It returns a note instead when this build has no /dcl/ws or it
// is not wired.
func benchWebSocket(ctx context.Context, sys *system, client *apiClient, g *benchData, em connectors.Emitter, clients int) (float64, float64, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, client.base+"/dcl/ws", nil)
	req.Header.Set("Authorization", "Bearer "+client.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, "ws: " + err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0, 0, "ws_deliveries_per_s and ws_p99_ms are null: this build has no /dcl/ws"
	}
	wsURL := "ws" + strings.TrimPrefix(client.base, "http") + "/dcl/ws?token=" + url.QueryEscape(client.token)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	first, r, err := d.DialContext(ctx, wsURL, nil)
	if err != nil {
		status := 0
		if r != nil {
			status = r.StatusCode
		}
		return 0, 0, fmt.Sprintf("ws_deliveries_per_s and ws_p99_ms are null: /dcl/ws answered HTTP %d (%v); it is not wired in this build", status, err)
	}
	const events = 100
	const rate = 20.0
	sent := make([]atomic.Int64, events) // unix nanos of each publish
	ids := map[string]int{}
	var msgs []*nats.Msg
	for i := range events {
		m, err := g.oppMsg(em, "WS", i)
		if err != nil {
			first.Close()
			return 0, 0, "ws: " + err.Error()
		}
		msgs = append(msgs, m)
		ids[m.Header.Get(jetstream.MsgIDHeader)] = i
		ids[oppID("WS", i)] = i
	}
	conns := []*websocket.Conn{first}
	for len(conns) < clients {
		c, _, err := d.DialContext(ctx, wsURL, nil)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return 0, 0, fmt.Sprintf("ws: only %d of %d clients connected: %v", len(conns), clients, err)
		}
		conns = append(conns, c)
	}
	var delivered atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var lastRecv atomic.Int64
	var wg sync.WaitGroup
	want := int64(events * clients)
	for _, c := range conns {
		wg.Go(func() {
			var local []time.Duration
			for {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, b, err := c.ReadMessage()
				if err != nil {
					break
				}
				now := time.Now()
				var f struct {
					Type string `json:"type"`
					ID   string `json:"id"`
				}
				if json.Unmarshal(b, &f) != nil {
					continue
				}
				i, ok := ids[f.ID]
				if !ok {
					continue
				}
				if t := sent[i].Load(); t > 0 {
					local = append(local, now.Sub(time.Unix(0, t)))
				}
				lastRecv.Store(now.UnixNano())
				if delivered.Add(1) >= want {
					break
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}
	start := time.Now()
	for i, m := range msgs {
		if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
		sent[i].Store(time.Now().UnixNano())
		if _, err := sys.pub.Publish(ctx, m); err != nil {
			break
		}
	}
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	if delivered.Load() == 0 {
		return 0, 0, "ws: no record event reached the clients"
	}
	el := time.Duration(lastRecv.Load() - start.UnixNano()).Seconds()
	p := percentiles(lat)
	return float64(delivered.Load()) / el, p[1], ""
}

// ---- --url: a running system ------------------------------------------------

// benchRemote measures only the end to end of a running system: it uploads
// the files and polls the views API until the last record of each file is
// visible. Counts cannot be checked from outside, and the other stages need
// the system's insides, so they stay null.
func benchRemote(ctx context.Context, bc *benchConfig, g *benchData, files map[string]string, res *benchResult) error {
	c := newAPIClient(bc.URL)
	if bc.Email != "" {
		if err := c.login(ctx, bc.Email, bc.Password); err != nil {
			return fmt.Errorf("login: %w", err)
		}
		return errors.New("--email: the bench needs a tenant of its own; omit --email to register one")
	}
	g.tenant = "bench-" + randHex(4)
	if err := c.register(ctx, g.tenant, g.tenant+"@bench.invalid", randHex(12)); err != nil {
		return fmt.Errorf("register the bench tenant: %w", err)
	}
	res.Notes = append(res.Notes, "--url: end to end only, visibility judged by the last record of each file in the views API")
	start := time.Now()
	for _, ent := range []string{"account", "contact", "opportunity"} {
		if _, _, err := c.upload(ctx, files[ent], ent, ""); err != nil {
			return fmt.Errorf("upload %s: %w", ent, err)
		}
	}
	for ent := range g.counts() {
		plural, key, id := g.lastID(ent)
		for {
			rows, err := c.view(ctx, plural, url.Values{key: {id}})
			if err == nil && len(rows) == 1 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	res.E2EEventsPerS = f64(float64(g.total()) / time.Since(start).Seconds())
	res.Visible = true
	return nil
}
