package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/gateway/gatewaytest"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// liveEnv is a gateway with a running hub.
type liveEnv struct {
	*gatewaytest.Env
	Hub *gateway.Hub
}

// startLive starts a gateway whose Deps.Live is a running hub; deps may
// add more dependencies. The hub stops at cleanup (after the HTTP server).
func startLive(t *testing.T, cfg gateway.HubConfig, deps func(*gateway.Deps)) *liveEnv {
	t.Helper()
	var hub *gateway.Hub
	env := gatewaytest.StartDeps(t, func(d *gateway.Deps) {
		h, err := gateway.NewHub(d.JetStream, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		hub = h
		d.Live = h
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("hub.Run: %v", err)
			}
		})
		select {
		case <-h.Ready():
		case <-time.After(10 * time.Second):
			t.Fatal("hub not ready")
		}
		if deps != nil {
			deps(d)
		}
	})
	return &liveEnv{Env: env, Hub: hub}
}

// wsURL is the WebSocket URL of the gateway's /dcl/ws with a query.
func (e *liveEnv) wsURL(query string) string {
	u := "ws" + strings.TrimPrefix(e.URL, "http") + "/dcl/ws"
	if query != "" {
		u += "?" + query
	}
	return u
}

// dial opens /dcl/ws with the token in ?token= (plus query), failing t on
// a refused handshake.
func (e *liveEnv) dial(t *testing.T, token, query string) *websocket.Conn {
	t.Helper()
	return e.dialWith(t, websocket.DefaultDialer, token, query)
}

func (e *liveEnv) dialWith(t *testing.T, d *websocket.Dialer, token, query string) *websocket.Conn {
	t.Helper()
	q := "token=" + token
	if query != "" {
		q += "&" + query
	}
	conn, res, err := d.Dial(e.wsURL(q), nil)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial /dcl/ws: %v (status %d)", err, status)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// slowDialer dials with a small kernel receive buffer, so that a client
// that stops reading backs the server up quickly.
func slowDialer() *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4096)
			}
			return c, nil
		},
	}
}

// frame is one decoded WebSocket message.
type frame struct {
	Type    string          `json:"type"`
	Seq     uint64          `json:"seq"`
	Entity  string          `json:"entity"`
	ID      string          `json:"id"`
	EventID string          `json:"event_id"`
	System  string          `json:"source_system"`
	TraceID string          `json:"trace_id"`
	Job     json.RawMessage `json:"job"`
	Raw     map[string]any  `json:"-"`
	At      time.Time       `json:"-"`
}

// readFrame reads one message within d.
func readFrame(conn *websocket.Conn, d time.Duration) (frame, error) {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, b, err := conn.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("frame %s: %w", b, err)
	}
	_ = json.Unmarshal(b, &f.Raw)
	f.At = time.Now()
	return f, nil
}

// readRecords reads frames until n record events arrived (skipping
// other types), failing t after timeout.
func readRecords(t *testing.T, conn *websocket.Conn, n int, timeout time.Duration) []frame {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var out []frame
	for len(out) < n {
		f, err := readFrame(conn, time.Until(deadline))
		if err != nil {
			t.Fatalf("after %d of %d record events: %v", len(out), n, err)
		}
		if strings.HasPrefix(f.Type, "record.") {
			out = append(out, f)
		}
	}
	return out
}

// readUntilType reads frames until one of type typ arrives and returns
// every frame read, that one last.
func readUntilType(t *testing.T, conn *websocket.Conn, typ string, timeout time.Duration) []frame {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var out []frame
	for {
		f, err := readFrame(conn, time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for %s after %d frames: %v", typ, len(out), err)
		}
		out = append(out, f)
		if f.Type == typ {
			return out
		}
	}
}

// event builds a canonical event of tenant from system.
func event(tenant, system string, e canonical.Entity, id string, version time.Time, op canonical.Op, extras map[string]any) *canonical.Event {
	var rec canonical.Record
	switch e {
	case canonical.AccountEntity:
		rec = &canonical.Account{AccountID: id}
	case canonical.ContactEntity:
		rec = &canonical.Contact{ContactID: id}
	case canonical.OpportunityEntity:
		rec = &canonical.Opportunity{OpportunityID: id}
	}
	if op == canonical.OpUpsert {
		switch r := rec.(type) {
		case *canonical.Account:
			r.Name, r.Extras = "Account "+id, extras
		case *canonical.Contact:
			first := "Ann"
			r.FirstName, r.Extras = &first, extras
		case *canonical.Opportunity:
			r.Name, r.Extras = "Deal "+id, extras
		}
	}
	v := version.UTC().Format(time.RFC3339Nano)
	return &canonical.Event{
		ID: canonical.EventID(tenant, system, e, id, v, op), Tenant: tenant, Op: op,
		ConnectionID: "conn-" + system, SourceSystem: system, SourceObject: system + "_" + string(e),
		Time: version, TraceID: strings.Repeat("ab", 16), MappingVersion: 1, Record: rec,
	}
}

// publish stores events on CANONICAL and returns their sequences.
func publish(t *testing.T, n *streamstest.Env, evs ...*canonical.Event) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var seqs []uint64
	for _, ev := range evs {
		m, err := streams.EventMsg(ev)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := n.Pub.Publish(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

// accounts makes n upserted accounts of tenant, ids prefix-0..n-1.
func accounts(tenant, system, prefix string, n int) []*canonical.Event {
	var out []*canonical.Event
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := range n {
		out = append(out, event(tenant, system, canonical.AccountEntity, fmt.Sprintf("%s-%d", prefix, i), t0.Add(time.Duration(i)*time.Second), canonical.OpUpsert, nil))
	}
	return out
}

// metricsText fetches /metrics.
func metricsText(t *testing.T, e *gatewaytest.Env, token string) string {
	t.Helper()
	res := e.Do(t, http.MethodGet, "/metrics", token, nil)
	gatewaytest.MustStatus(t, res, 200)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return string(b)
}

// closeCode is the close code of a WebSocket read error (0 if none).
func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// recorder collects a client's record frames in a goroutine.
type recorder struct {
	mu     sync.Mutex
	frames []frame
	err    error
	done   chan struct{}
}

func record(conn *websocket.Conn) *recorder {
	r := &recorder{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			f, err := readFrame(conn, time.Minute)
			r.mu.Lock()
			if err != nil {
				r.err = err
				r.mu.Unlock()
				return
			}
			if strings.HasPrefix(f.Type, "record.") {
				r.frames = append(r.frames, f)
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) snapshot() []frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]frame(nil), r.frames...)
}
