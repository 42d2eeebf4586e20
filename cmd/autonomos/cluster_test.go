package main

// Scale-out tests with real processes (DESIGN.md, "The scale path"): a
// 3-node JetStream cluster of nats-server processes that loses a node
// mid-ingest, and subscriber processes that share the durable consumers.
// They are long, so `go test -short` skips them; each stays under about a
// minute.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber/subscribertest"
)

// natsServerBinary is nats-server built from the module this binary embeds
// (the same version), or $AUTONOMOS_NATS_SERVER_BIN.
var natsServerBinary = &testBinary{env: "AUTONOMOS_NATS_SERVER_BIN", name: "nats-server", pkg: "github.com/nats-io/nats-server/v2"}

func natsServerBin(t *testing.T) string { return natsServerBinary.get(t) }

// natsNode is one nats-server process of a test cluster.
type natsNode struct {
	name, client, monitor string
	logPath               string
	cmd                   *exec.Cmd
	exited                chan struct{}
}

// startNATSCluster starts n nats-server processes with JetStream, routed
// into one cluster on loopback ports, and waits until every node sees a
// meta leader of an n-node cluster. It returns the nodes and the client
// URLs, comma separated.
func startNATSCluster(t *testing.T, n int) ([]*natsNode, string) {
	t.Helper()
	bin := natsServerBin(t)
	routes := make([]string, n)
	for i := range routes {
		routes[i] = "nats://" + freeAddr(t)
	}
	var nodes []*natsNode
	var urls []string
	for i := range n {
		nd := &natsNode{name: fmt.Sprintf("n%d", i+1), client: freeAddr(t), monitor: freeAddr(t), exited: make(chan struct{})}
		host, port := splitAddr(t, nd.client)
		_, mport := splitAddr(t, nd.monitor) // the monitor listens on the client host
		nd.logPath = filepath.Join(t.TempDir(), nd.name+".log")
		logf, err := os.Create(nd.logPath)
		if err != nil {
			t.Fatal(err)
		}
		nd.cmd = exec.Command(bin, "-a", host, "-p", port, "-n", nd.name, "-js", "-sd", t.TempDir(),
			"--http_port", mport,
			"--cluster_name", "autonomos-test", "--cluster", routes[i], "--routes", strings.Join(routes, ","))
		nd.cmd.Stdout, nd.cmd.Stderr = logf, logf
		if err := nd.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { nd.cmd.Wait(); logf.Close(); close(nd.exited) }()
		t.Cleanup(nd.kill)
		nodes = append(nodes, nd)
		urls = append(urls, "nats://"+nd.client)
	}
	for _, nd := range nodes {
		streamstest.Eventually(t, 30*time.Second, func() error {
			select {
			case <-nd.exited:
				b, _ := os.ReadFile(nd.logPath)
				t.Fatalf("nats-server %s exited:\n%s", nd.name, tail(string(b), 2000))
			default:
			}
			jz, err := nd.jsz()
			if err != nil {
				return err
			}
			if jz.Meta.Leader == "" || jz.Meta.Size != n {
				return fmt.Errorf("%s: meta leader %q of a %d-node cluster", nd.name, jz.Meta.Leader, jz.Meta.Size)
			}
			return nil
		})
	}
	return nodes, strings.Join(urls, ",")
}

func splitAddr(t *testing.T, addr string) (string, string) {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		t.Fatalf("address %q", addr)
	}
	return addr[:i], addr[i+1:]
}

type jsz struct {
	Meta struct {
		Leader string `json:"leader"`
		Size   int    `json:"cluster_size"`
	} `json:"meta_cluster"`
}

// jsz reads the node's JetStream monitoring page.
func (nd *natsNode) jsz() (jsz, error) {
	var out jsz
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + nd.monitor + "/jsz")
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// kill sends SIGKILL: the node gets no chance to hand its leaderships over.
func (nd *natsNode) kill() {
	if nd.cmd.Process != nil {
		nd.cmd.Process.Signal(syscall.SIGKILL)
		<-nd.exited
	}
}

// storeCounts are the opportunities of a tenant in one store: rows and
// distinct ids.
type storeCounts struct{ rows, ids int64 }

func pgOpportunities(t *testing.T, pgURL, tenant string) storeCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var c storeCounts
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT opportunity_id) FROM materialized_opportunities WHERE tenant_id = $1`,
		tenant).Scan(&c.rows, &c.ids); err != nil {
		t.Fatal(err)
	}
	return c
}

// duckOpportunities opens a data dir's DuckDB file: its process must be stopped.
func duckOpportunities(t *testing.T, dataDir, tenant string) storeCounts {
	t.Helper()
	db, err := sql.Open("duckdb", filepath.Join(dataDir, "autonomos.duckdb")+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var c storeCounts
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT opportunity_id) FROM materialized_opportunities WHERE tenant_id = $1`,
		tenant).Scan(&c.rows, &c.ids); err != nil {
		t.Fatal(err)
	}
	return c
}

// checkExactlyOnce fails unless the store holds n rows with n distinct ids.
func checkExactlyOnce(t *testing.T, store string, c storeCounts, n int64) {
	t.Helper()
	if c.rows != n || c.ids != n {
		t.Errorf("%s: %d rows with %d distinct ids, want %d of each", store, c.rows, c.ids, n)
	}
}

func TestClusterNodeKilledMidIngestLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("long cluster test")
	}
	const n = 30_000
	autonomosBin(t) // built (or found) before the clock starts
	natsServerBin(t)
	began := time.Now()
	nodes, natsURL := startNATSCluster(t, 3)
	fmt.Printf("cluster: 3 nats-server processes with a meta leader after %v\n", time.Since(began).Round(100*time.Millisecond))
	p := newProc(t, subscribertest.PostgresURL(t))
	// No --stream-replicas: the process picks 3 from the cluster it finds.
	p.args = []string{"--nats-url", natsURL}
	p.start()
	fmt.Printf("cluster: autonomos serve ready after %v\n", time.Since(began).Round(100*time.Millisecond))
	if c := countLines(t, p.logPath, `msg="JetStream topology" replicas=3`); c != 1 {
		b, _ := os.ReadFile(p.logPath)
		t.Fatalf("the topology was not made at replicas 3:\n%s", tail(string(b), 2000))
	}

	nc, err := streams.Connect(natsURL, "cluster-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := streams.NewJetStream(nc, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info := func(name string) *jetstream.StreamInfo {
		t.Helper()
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		si, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return si
	}
	for _, name := range []string{streams.StreamCanonical, streams.StreamRaw, "KV_" + streams.BucketJobs} {
		if si := info(name); si.Config.Replicas != 3 || si.Cluster == nil || len(si.Cluster.Replicas) != 2 {
			t.Fatalf("%s: replicas %d, cluster %+v; want a leader and 2 replicas", name, si.Config.Replicas, si.Cluster)
		}
	}

	c := registered(t, p.base(), "acme")
	id := startIngest(t, c, bigCSV(t, n), n/5)
	ingestStart := time.Now()
	streamstest.Eventually(t, 30*time.Second, func() error { // mid-ingest: a quarter published
		j, err := c.job(ctx, id)
		if err == nil && j.Published < n/4 {
			err = fmt.Errorf("job at %d published", j.Published)
		}
		return err
	})

	// The node to kill: the CANONICAL stream's leader. It orders and
	// acknowledges every canonical write, so killing it mid-ingest forces a
	// leader election under load: acknowledged events must survive on the
	// two replicas, and the ones in flight must be published again and
	// stored once.
	leader := info(streams.StreamCanonical).Cluster.Leader
	consumerLeader := func(name string) string {
		cons, err := js.Consumer(ctx, streams.StreamCanonical, name)
		if err != nil {
			return "?"
		}
		if ci := cons.CachedInfo(); ci.Cluster != nil {
			return ci.Cluster.Leader
		}
		return "?"
	}
	var victim *natsNode
	for _, nd := range nodes {
		if nd.name == leader {
			victim = nd
		}
	}
	if victim == nil {
		t.Fatalf("CANONICAL leader %q is none of the nodes", leader)
	}
	jz, _ := victim.jsz()
	j, _ := c.job(ctx, id)
	fmt.Printf("cluster: kill -9 %s (CANONICAL leader; meta leader %s; dcl-postgres leader %s, dcl-duckdb leader %s) at %d of %d published\n",
		victim.name, jz.Meta.Leader, consumerLeader("dcl-postgres"), consumerLeader("dcl-duckdb"), j.Published, n)
	victim.kill()
	killed := time.Now()

	// The longest stretch in which the job published nothing: the
	// election and the republishing after the kill.
	var stall time.Duration
	last, lastAt := j.Published, killed
	j, unavailable, err := waitJobThroughFailover(ctx, c, id, func(j *jobView) {
		if j.Published != last {
			stall = max(stall, time.Since(lastAt))
			last, lastAt = j.Published, time.Now()
		}
	})
	if err != nil {
		b, _ := os.ReadFile(p.logPath)
		t.Fatalf("job after the kill: %v\n%s", err, tail(string(b), 3000))
	}
	if j.Status != "succeeded" || j.RowsRead != n || j.Published != n || j.Rejected != 0 {
		b, _ := os.ReadFile(p.logPath)
		t.Fatalf("job after the kill: %+v\n%s", j, tail(string(b), 3000))
	}
	fmt.Printf("cluster: job %s in %v (%v after the kill; publishing stalled at most %v; %d job polls answered 503 meanwhile), rows_read=%d published=%d; new CANONICAL leader %s\n",
		j.Status, time.Since(ingestStart).Round(100*time.Millisecond), time.Since(killed).Round(100*time.Millisecond), stall.Round(100*time.Millisecond),
		unavailable, j.RowsRead, j.Published, info(streams.StreamCanonical).Cluster.Leader)
	idleFrom := time.Now()
	waitConsumersIdle(t, natsURL, "dcl-postgres", "dcl-duckdb")
	fmt.Printf("cluster: both durable consumers idle %v after the job\n", time.Since(idleFrom).Round(100*time.Millisecond))
	if si := info(streams.StreamCanonical); si.State.Msgs != n {
		t.Errorf("CANONICAL holds %d messages, want %d (one per record)", si.State.Msgs, n)
	}
	if si := info(streams.StreamDLQ); si.State.Msgs != 0 {
		t.Errorf("DLQ holds %d messages, want none", si.State.Msgs)
	}
	if d := p.term(20 * time.Second); d > 20*time.Second {
		t.Errorf("stop took %v", d)
	}
	fmt.Printf("cluster: autonomos stopped after %v\n", time.Since(began).Round(100*time.Millisecond))
	pg, duck := pgOpportunities(t, p.pg, "acme"), duckOpportunities(t, p.dataDir, "acme")
	fmt.Printf("cluster: expected=%d postgres=%d (distinct %d) duckdb=%d (distinct %d)\n", n, pg.rows, pg.ids, duck.rows, duck.ids)
	checkExactlyOnce(t, "postgres", pg, n)
	checkExactlyOnce(t, "duckdb", duck, n)
	fmt.Printf("cluster: %v in all\n", time.Since(began).Round(100*time.Millisecond))
}

// waitJobThroughFailover polls a job until it finishes, as a client would
// while the cluster elects new leaders: a 503 (the gateway could not reach
// a bucket in time) is counted and polled again, any other error ends it.
func waitJobThroughFailover(ctx context.Context, c *apiClient, id string, progress func(*jobView)) (*jobView, int, error) {
	unavailable := 0
	for {
		j, err := c.job(ctx, id)
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable:
			unavailable++
		case err != nil:
			return nil, unavailable, err
		default:
			progress(j)
			if j.Status != "queued" && j.Status != "running" {
				return j, unavailable, nil
			}
		}
		select {
		case <-ctx.Done():
			return j, unavailable, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// appliedRE reads the events a subscriber applied from its stop line.
var appliedRE = regexp.MustCompile(`msg="subscriber stopped" .*sink=(\w+) .*applied=(\d+)`)

// appliedBySink sums the "subscriber stopped" lines of a process log.
func appliedBySink(t *testing.T, logPath string) map[string]int64 {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, m := range appliedRE.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseInt(m[2], 10, 64)
		out[m[1]] += v
	}
	return out
}

func TestSubscriberProcessesShareTheDurableConsumers(t *testing.T) {
	if testing.Short() {
		t.Skip("long scale-out test")
	}
	const n = 30_000
	srv, err := streams.StartEmbedded(streams.EmbeddedConfig{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	natsURL := srv.ClientURL()
	pgURL := subscribertest.PostgresURL(t)

	// The topology of README "Scaling out": the gateway with the
	// connectors (uploads are spooled to its data dir), one subscriber
	// process that fills its DuckDB file and shares dcl-postgres, and more
	// that share dcl-postgres only.
	gw := newProc(t, pgURL)
	gw.args = []string{"--nats-url", natsURL, "--roles", "gateway,connectors"}
	sub1 := newProc(t, pgURL)
	sub1.args = []string{"--nats-url", natsURL, "--roles", "subscriber"}
	sub2 := newProc(t, pgURL)
	sub2.args = []string{"--nats-url", natsURL, "--roles", "subscriber", "--stores", "postgres"}
	sub1.start()
	sub2.start()
	gw.start()

	// A second DuckDB file on the same durable is refused at start.
	bad := exec.Command(autonomosBin(t), "serve", "--data-dir", t.TempDir(), "--nats-url", natsURL, "--roles", "subscriber",
		"--postgres", pgURL, "--json")
	out, err := bad.CombinedOutput()
	if code := bad.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "--stores postgres") {
		t.Fatalf("a second DuckDB subscriber process: exit %d, %v\n%s", code, err, out)
	}
	refusal := string(out)
	if i := strings.Index(refusal, "serve: "); i >= 0 {
		refusal, _, _ = strings.Cut(refusal[i:], "\n")
	}
	fmt.Printf("scale-out: a second DuckDB subscriber process is refused: %s\n", refusal)

	c := registered(t, gw.base(), "acme")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	id, _, err := c.upload(ctx, bigCSV(t, n), "opportunity", "")
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.waitJob(ctx, id, nil)
	if err != nil || j.Status != "succeeded" || j.Published != n {
		t.Fatalf("job: %+v, %v", j, err)
	}
	waitConsumersIdle(t, natsURL, "dcl-postgres", "dcl-duckdb")
	sub1.term(20 * time.Second)
	sub2.term(20 * time.Second)
	gw.term(20 * time.Second)

	a1, a2 := appliedBySink(t, sub1.logPath), appliedBySink(t, sub2.logPath)
	pg, duck := pgOpportunities(t, pgURL, "acme"), duckOpportunities(t, sub1.dataDir, "acme")
	fmt.Printf("scale-out: expected=%d postgres=%d (distinct %d) duckdb=%d (distinct %d); dcl-postgres applied %d by process 1 + %d by process 2, dcl-duckdb %d by process 1\n",
		n, pg.rows, pg.ids, duck.rows, duck.ids, a1["postgres"], a2["postgres"], a1["duckdb"])
	checkExactlyOnce(t, "postgres", pg, n)
	checkExactlyOnce(t, "duckdb", duck, n)
	if a1["postgres"] == 0 || a2["postgres"] == 0 {
		t.Errorf("dcl-postgres: process 1 applied %d, process 2 %d; want both to take part", a1["postgres"], a2["postgres"])
	}
	if a1["postgres"]+a2["postgres"] < n {
		t.Errorf("dcl-postgres: %d + %d applied, fewer than the %d events", a1["postgres"], a2["postgres"], n)
	}
	if a2["duckdb"] != 0 || a1["duckdb"] < n {
		t.Errorf("dcl-duckdb: process 1 applied %d, process 2 %d; want all by process 1", a1["duckdb"], a2["duckdb"])
	}
}
