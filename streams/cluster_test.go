package streams_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// startCluster starts n embedded JetStream servers routed into one cluster
// on loopback, and returns their client URLs, comma separated, once the
// cluster has a meta leader.
func startCluster(t *testing.T, n int) string {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var urls []string
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "streams-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Start()
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("server n%d not ready", i+1)
		}
		urls = append(urls, srv.ClientURL())
	}
	url := strings.Join(urls, ",")
	nc, err := streams.Connect(url, "cluster-wait")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := streams.NewJetStream(nc, 0)
	streamstest.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err
	})
	return url
}

func TestReplicasFollowTheCluster(t *testing.T) {
	url := startCluster(t, 3)
	nc, err := streams.Connect(url, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := streams.NewJetStream(nc, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The servers gossip each other's client URLs; wait until the
	// connection knows all three.
	streamstest.Eventually(t, 10*time.Second, func() error {
		if n := len(nc.Servers()); n < 3 {
			return fmt.Errorf("connection knows %d servers", n)
		}
		return nil
	})

	n, why, err := streams.AutoReplicas(ctx, nc, js)
	if err != nil || n != 3 {
		t.Fatalf("AutoReplicas on a fresh 3-node cluster = %d (%s), %v; want 3", n, why, err)
	}
	t.Logf("fresh cluster: %d replicas, %s", n, why)

	// A topology made at replicas 1 is moved to 3 in place, and reported.
	if changes, err := streams.Provision(ctx, js, streams.TopologyConfig{Replicas: 1}); err != nil || len(changes) != 0 {
		t.Fatalf("first Provision: %v, %v", changes, err)
	}
	if n, why, _ := streams.AutoReplicas(ctx, nc, js); n != 1 {
		t.Fatalf("AutoReplicas with CANONICAL at replicas 1 = %d (%s): an existing stream decides", n, why)
	}
	changes, err := streams.Provision(ctx, js, streams.TopologyConfig{Replicas: 3})
	if err != nil {
		t.Fatalf("Provision to 3: %v", err)
	}
	want := len(streams.StreamConfigs(streams.TopologyConfig{})) + len(streams.BucketConfigs(streams.TopologyConfig{}))
	if len(changes) != want {
		t.Errorf("Provision reported %d changes, want %d (every stream and bucket): %v", len(changes), want, changes)
	}
	for _, c := range changes {
		if c.From != 1 || c.To != 3 {
			t.Errorf("change %+v, want 1 → 3", c)
		}
	}
	for _, name := range []string{streams.StreamCanonical, "KV_" + streams.BucketJobs} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info := s.CachedInfo()
		if info.Config.Replicas != 3 {
			t.Errorf("%s: replicas %d, want 3", name, info.Config.Replicas)
		}
	}
	if n, why, _ := streams.AutoReplicas(ctx, nc, js); n != 3 {
		t.Errorf("AutoReplicas after the move = %d (%s), want 3", n, why)
	}
	if changes, err := streams.Provision(ctx, js, streams.TopologyConfig{Replicas: 3}); err != nil || len(changes) != 0 {
		t.Errorf("Provision again: %v, %v; want no change", changes, err)
	}
}

func TestReplicasOnASingleServer(t *testing.T) {
	env := streamstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, why, err := streams.AutoReplicas(ctx, env.NC, env.JS)
	if err != nil || n != 1 {
		t.Fatalf("AutoReplicas on one server = %d (%s), %v; want 1", n, why, err)
	}
	_, err = streams.Provision(ctx, env.JS, streams.TopologyConfig{Replicas: 3})
	if err == nil || !strings.Contains(err.Error(), "replicas 3 refused for "+streams.StreamCanonical+" at 1") {
		t.Fatalf("Provision to 3 on one server: %v; want an error naming the stream and the change", err)
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("error %v does not carry JetStream's answer", err)
	}
}

// A batch published while the stream cannot answer (here: it does not exist
// yet, as during a leader election no server answers for it) is published
// again until it does, and the stream keeps each message once.
func TestBatchRepublishesUntilTheStreamAnswers(t *testing.T) {
	env := streamstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := env.JS.DeleteStream(ctx, streams.StreamCanonical); err != nil {
		t.Fatal(err)
	}
	const n = 50
	b := env.Pub.NewBatch()
	for i := range n {
		m := nats.NewMsg("canonical.t1.account")
		m.Data = []byte(fmt.Sprintf(`{"i":%d}`, i))
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("id-%d", i%(n/2))) // each id twice
		if err := b.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	ensured := make(chan error, 1)
	time.AfterFunc(time.Second, func() { // the outage: a second without the stream
		ensured <- streams.Ensure(context.Background(), env.JS, streams.TopologyConfig{})
	})
	// The topology is whole before the connection closes at the end.
	defer func() {
		if err := <-ensured; err != nil {
			t.Errorf("ensure: %v", err)
		}
	}()
	acked, err := b.Wait(ctx)
	if err != nil || acked != n {
		t.Fatalf("Wait = %d, %v; want %d acknowledged", acked, err, n)
	}
	s, err := env.JS.Stream(ctx, streams.StreamCanonical)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != n/2 {
		t.Fatalf("stream holds %d messages, want %d (one per id)", got, n/2)
	}
}

// cutProxy forwards TCP connections to a server until cut, which resets every
// connection open through it; new connections are forwarded again.
type cutProxy struct {
	l     net.Listener
	conns chan net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &cutProxy{l: l, conns: make(chan net.Conn, 64)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.conns <- c
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

// cut resets the client side of every connection made so far.
func (p *cutProxy) cut() {
	for {
		select {
		case c := <-p.conns:
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close with RST: the client's next write fails
			}
			c.Close()
		default:
			return
		}
	}
}

// A connection that breaks under a burst of publishes — the server died, the
// socket reset — makes nats.go return the write error from the publish call
// itself. The batch keeps those messages and publishes them again after the
// reconnect: Add never fails the caller, and the stream keeps each once.
func TestBatchSurvivesASocketBrokenMidPublish(t *testing.T) {
	env := streamstest.Start(t)
	proxy := startCutProxy(t, strings.TrimPrefix(env.URL, "nats://"))
	nc, err := streams.Connect("nats://"+proxy.l.Addr().String(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := streams.NewJetStream(nc, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const n = 400
	body := []byte(strings.Repeat("x", 48<<10)) // larger than the client's write buffer: each publish writes to the socket
	b := streams.NewPublisher(js).NewBatch()
	for i := range n {
		if i == n/4 {
			proxy.cut()
		}
		m := nats.NewMsg("canonical.t1.account")
		m.Data = body
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("id-%d", i))
		if err := b.Add(m); err != nil {
			t.Fatalf("Add %d after the cut: %v", i, err)
		}
	}
	acked, err := b.Wait(ctx)
	if err != nil || acked != n {
		t.Fatalf("Wait = %d, %v; want %d acknowledged", acked, err, n)
	}
	if nc.Reconnects == 0 {
		t.Fatal("the client never reconnected: the cut did not break the connection")
	}
	s, err := env.JS.Stream(ctx, streams.StreamCanonical)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != n {
		t.Fatalf("stream holds %d messages, want %d (one per id)", got, n)
	}
}
