package main

// Fault tests with real processes: the binary is built once (or taken from
// AUTONOMOS_BIN), run as `autonomos serve`, killed, starved of Postgres and
// restarted. They are long, so `go test -short` skips them; each stays
// under about a minute.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber"
	"github.com/autonomos/autonomos/subscriber/subscribertest"
)

// testBinary is a binary the tests build once per run (go build of pkg),
// unless the environment variable env names one already built.
type testBinary struct {
	env, name, pkg string
	once           sync.Once
	path           string
	err            error
}

func (b *testBinary) get(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(b.env); p != "" {
		return p
	}
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", b.name+"-bin")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, b.name)
		if out, err := exec.Command("go", "build", "-o", b.path, b.pkg).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// autonomosBin is this binary (no UI needed: the embedded dist falls back),
// or $AUTONOMOS_BIN.
var autonomosBinary = &testBinary{env: "AUTONOMOS_BIN", name: "autonomos", pkg: "."}

func autonomosBin(t *testing.T) string { return autonomosBinary.get(t) }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is one `autonomos serve` process on fixed addresses, so that a
// restart on the same data dir is the same system.
type proc struct {
	t        *testing.T
	bin      string
	dataDir  string
	pg       string
	http     string
	natsAddr string
	logPath  string
	args     []string // more flags (e.g. --nats-url, --roles); they win over the ones above
	cmd      *exec.Cmd
	exited   chan struct{}
}

func newProc(t *testing.T, pg string) *proc {
	return &proc{t: t, bin: autonomosBin(t), dataDir: t.TempDir(), pg: pg, http: freeAddr(t), natsAddr: freeAddr(t),
		logPath: filepath.Join(t.TempDir(), "serve.log")}
}

func (p *proc) base() string { return "http://" + p.http }

func (p *proc) start() {
	t := p.t
	t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, append([]string{"serve", "--data-dir", p.dataDir, "--http", p.http, "--nats-listen", p.natsAddr,
		"--postgres", p.pg, "--rate-write", "1000/s burst 1000", "--rate-read", "1000/s burst 1000", "--json"}, p.args...)...)
	p.cmd.Env = append(os.Environ(), "AUTONOMOS_NATS_URL=")
	p.cmd.Stderr = logf
	stdout, _ := p.cmd.StdoutPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() { p.cmd.Wait(); logf.Close(); close(p.exited) }()
	t.Cleanup(func() { p.kill() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b, _ := os.ReadFile(p.logPath)
		t.Fatalf("serve did not start: %v\n%s", err, tail(string(b), 3000))
	}
	go io.Copy(io.Discard, stdout)
	var ready struct {
		URL     string
		NATSURL string `json:"nats_url"`
	}
	json.Unmarshal([]byte(line), &ready)
	if ready.NATSURL == "" { // the URL is empty without the gateway role
		t.Fatalf("serve printed %q", line)
	}
}

func (p *proc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	}
}

// term sends SIGTERM and returns how long the process took to exit.
func (p *proc) term(limit time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return time.Since(start)
	case <-time.After(limit):
		p.t.Errorf("serve did not exit within %v of SIGTERM", limit)
		p.kill()
		return time.Since(start)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func bigCSV(t *testing.T, n int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "big.csv")
	var b strings.Builder
	b.WriteString("opportunity_id,name,stage,amount,currency,close_date,updated_at\n")
	for i := range n {
		fmt.Fprintf(&b, "OPP-%07d,Deal %d,Prospecting,%d.50,USD,2025-01-31,2024-01-01T00:00:00Z\n", i, i, i)
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pgCount(t *testing.T, pgURL, tenant string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := subscriber.OpenPostgres(ctx, pgURL)
	if err != nil {
		return -1
	}
	defer p.Close()
	n, err := p.Count(ctx, tenant, canonical.OpportunityEntity)
	if err != nil {
		return -1
	}
	return n
}

// duckCount opens the data dir's DuckDB file: the process must be stopped.
func duckCount(t *testing.T, dataDir, tenant string) int64 {
	t.Helper()
	d, err := subscriber.OpenDuckDB(filepath.Join(dataDir, "autonomos.duckdb"))
	if err != nil {
		t.Fatalf("open DuckDB: %v", err)
	}
	defer d.Close()
	n, err := d.Count(context.Background(), tenant, canonical.OpportunityEntity)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startIngest uploads n opportunities and waits until part of them is
// published, returning the job id.
func startIngest(t *testing.T, c *apiClient, path string, atLeast int64) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, _, err := c.upload(ctx, path, "opportunity", "")
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	streamstest.Eventually(t, 30*time.Second, func() error {
		j, err := c.job(ctx, id)
		if err != nil {
			return err
		}
		if j.Published < atLeast && j.Done < atLeast && j.Status != "succeeded" {
			return fmt.Errorf("job at %d published", j.Published)
		}
		return nil
	})
	return id
}

// finish waits for the job to succeed and Postgres to hold n rows, then
// stops the process and checks DuckDB; it prints the counts.
func finish(t *testing.T, p *proc, c *apiClient, id string, n int64, fault string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	j, err := c.waitJob(ctx, id, nil)
	if err != nil {
		t.Fatalf("job %s after %s: %v", id, fault, err)
	}
	if j.Status != "succeeded" || j.Rejected != 0 {
		t.Errorf("job after %s: %+v", fault, j)
	}
	streamstest.Eventually(t, 60*time.Second, func() error {
		if got := pgCount(t, p.pg, "acme"); got != n {
			return fmt.Errorf("postgres holds %d, want %d", got, n)
		}
		return nil
	})
	// Let DuckDB finish too, then stop and look.
	p.waitConsumersIdle()
	if d := p.term(20 * time.Second); d > 20*time.Second {
		t.Errorf("stop took %v", d)
	}
	pg, duck := pgCount(t, p.pg, "acme"), duckCount(t, p.dataDir, "acme")
	fmt.Printf("%s: expected=%d postgres=%d duckdb=%d job=%s published=%d\n", fault, n, pg, duck, j.Status, j.Published)
	if pg != n || duck != n {
		// DuckDB may lag behind Postgres at the stop: restart and wait.
		p.start()
		p.waitConsumersIdle()
		p.term(20 * time.Second)
		duck = duckCount(t, p.dataDir, "acme")
		fmt.Printf("%s (after one more start): expected=%d postgres=%d duckdb=%d\n", fault, n, pg, duck)
		if pg != n || duck != n {
			t.Errorf("%s: expected=%d postgres=%d duckdb=%d", fault, n, pg, duck)
		}
	}
}

func TestKill9DuringIngestLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("long fault test")
	}
	const n = 50_000
	p := newProc(t, subscribertest.PostgresURL(t))
	p.start()
	c := registered(t, p.base(), "acme")
	id := startIngest(t, c, bigCSV(t, n), 5_000)
	p.kill()
	fmt.Printf("kill -9: killed mid-ingest, postgres=%d\n", pgCount(t, p.pg, "acme"))
	p.start()
	if err := c.login(context.Background(), "acme@example.com", "password-acme"); err != nil {
		t.Fatal(err)
	}
	finish(t, p, c, id, n, "kill -9")
}

func TestSIGTERMDuringIngestIsBoundedAndLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("long fault test")
	}
	const n = 50_000
	p := newProc(t, subscribertest.PostgresURL(t))
	p.start()
	c := registered(t, p.base(), "acme")
	id := startIngest(t, c, bigCSV(t, n), 5_000)
	d := p.term(20 * time.Second)
	fmt.Printf("SIGTERM: exited after %v\n", d.Round(time.Millisecond))
	p.start()
	if err := c.login(context.Background(), "acme@example.com", "password-acme"); err != nil {
		t.Fatal(err)
	}
	finish(t, p, c, id, n, "SIGTERM")
}

// pgProxy forwards TCP to Postgres and can be cut off and restored on the
// same address.
type pgProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
}

func (x *pgProxy) up(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", x.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	x.mu.Lock()
	x.ln, x.addr = ln, ln.Addr().String()
	x.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", x.target)
			if err != nil {
				c.Close()
				continue
			}
			x.mu.Lock()
			x.conns[c], x.conns[u] = true, true
			x.mu.Unlock()
			go func() { io.Copy(u, c); u.Close(); c.Close() }()
			go func() { io.Copy(c, u); u.Close(); c.Close() }()
		}
	}()
}

func (x *pgProxy) down() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.ln.Close()
	for c := range x.conns {
		c.Close()
	}
	clear(x.conns)
}

func TestPostgresOutageDuringIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("long fault test")
	}
	const n = 50_000
	pgURL := subscribertest.PostgresURL(t)
	u, _ := url.Parse(pgURL)
	x := &pgProxy{addr: "127.0.0.1:0", target: u.Host, conns: map[net.Conn]bool{}}
	x.up(t)
	t.Cleanup(x.down)
	u.Host = x.addr
	p := newProc(t, u.String())
	p.start()
	c := registered(t, p.base(), "acme")
	id := startIngest(t, c, bigCSV(t, n), 2_000)

	x.down()
	cut := time.Now()
	logBefore := countLines(t, p.logPath, "sink failed")
	// /health says Postgres is down meanwhile.
	streamstest.Eventually(t, 15*time.Second, func() error {
		var h struct {
			Status     string
			Components []struct{ Name, Status string }
		}
		resp, err := http.Get(p.base() + "/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&h)
		for _, c := range h.Components {
			if c.Name == "postgres" && c.Status == "down" {
				return nil
			}
		}
		return fmt.Errorf("health: %+v", h)
	})
	// The ingest goes on without Postgres.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	j, err := c.waitJob(ctx, id, nil)
	if err != nil || j.Status != "succeeded" {
		t.Fatalf("job during the outage: %+v %v", j, err)
	}
	if rest := 20*time.Second - time.Since(cut); rest > 0 {
		time.Sleep(rest) // the outage itself: the thing under test is time passing
	}
	failures := countLines(t, p.logPath, "sink failed") - logBefore
	fmt.Printf("postgres outage: %v down, %d 'sink failed' log lines\n", time.Since(cut).Round(time.Second), failures)
	if failures > 30 {
		t.Errorf("%d failure log lines in %v: a hot loop", failures, time.Since(cut))
	}
	x.up(t)
	finish(t, p, c, id, n, "postgres outage")
}

func countLines(t *testing.T, path, substr string) int {
	t.Helper()
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), substr)
}

// waitConsumersIdle waits until both durable consumers have nothing pending
// and nothing unacknowledged: every event is committed in both stores.
func (p *proc) waitConsumersIdle() {
	p.t.Helper()
	waitConsumersIdle(p.t, "nats://"+p.natsAddr, "dcl-postgres", "dcl-duckdb")
}

// waitConsumersIdle waits until the durable consumers of CANONICAL named
// have nothing pending and nothing unacknowledged.
func waitConsumersIdle(t *testing.T, url string, names ...string) {
	t.Helper()
	nc, err := streams.Connect(url, "fault-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := streams.NewJetStream(nc, 0)
	streamstest.Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, name := range names {
			c, err := js.Consumer(ctx, streams.StreamCanonical, name)
			if err != nil {
				return err
			}
			ci, err := c.Info(ctx)
			if err != nil {
				return err
			}
			if ci.NumPending != 0 || ci.NumAckPending != 0 {
				return fmt.Errorf("%s: %d pending, %d unacknowledged", name, ci.NumPending, ci.NumAckPending)
			}
		}
		return nil
	})
}
