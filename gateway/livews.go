package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
)

// liveWSPath is the WebSocket route.
const liveWSPath = "/dcl/ws"

// closeGrace is how long a closing connection waits for the peer's close
// frame before it is cut.
const closeGrace = time.Second

// liveToken runs before routing: a browser cannot set headers on a
// WebSocket, so on GET /dcl/ws only, a single ?token= becomes the
// Authorization header (unless one was sent) and the auth middleware
// verifies it exactly as any Bearer token. The parameter is removed from
// the URL so that nothing downstream logs it.
func (s *Server) liveToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.URL.Path != liveWSPath || r.Method != http.MethodGet || r.URL.RawQuery == "" {
			return next(c)
		}
		q := r.URL.Query()
		toks, ok := q["token"]
		if !ok {
			return next(c)
		}
		q.Del("token")
		r.URL.RawQuery = q.Encode()
		if len(toks) == 1 && toks[0] != "" && r.Header.Get(echo.HeaderAuthorization) == "" {
			r.Header.Set(echo.HeaderAuthorization, "Bearer "+toks[0])
		}
		return next(c)
	}
}

// handleLiveWS upgrades GET /dcl/ws to a WebSocket fed by the hub with the
// token's tenant's messages; ?since=<seq> first replays the tenant's
// canonical events after seq.
func (s *Server) handleLiveWS(c echo.Context) error {
	h := s.deps.Live
	if h == nil {
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "live updates are not available on this instance")
	}
	var since uint64
	resume := false
	for k, vs := range c.QueryParams() {
		switch {
		case k != "since":
			return invalid(k, "unknown parameter (only since, and token, are accepted)")
		case len(vs) != 1:
			return invalid(k, "give the parameter once")
		}
		n, err := strconv.ParseUint(vs[0], 10, 64)
		if err != nil {
			return invalid("since", "must be a stream sequence (a non-negative integer), got %q", clip(vs[0]))
		}
		since, resume = n, true
	}
	if !websocket.IsWebSocketUpgrade(c.Request()) {
		return newError(http.StatusBadRequest, CodeBadRequest, "expected a WebSocket upgrade (GET with Connection: Upgrade, Upgrade: websocket)")
	}
	p := stateOf(c).principal
	cl, runCtx, err := h.register(p.Tenant, resume)
	if err != nil {
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "%s", err.Error())
	}
	hdr := http.Header{HeaderTraceID: {TraceID(c.Request().Context())}}
	conn, err := h.upgrader.Upgrade(c.Response(), c.Request(), hdr)
	if err != nil {
		h.unregister(cl)
		s.log.DebugContext(c.Request().Context(), "websocket handshake refused", "error", err)
		return nil // the upgrader answered
	}
	c.Response().Status = http.StatusSwitchingProtocols
	s.log.DebugContext(c.Request().Context(), "live client connected", "tenant", p.Tenant, "resume", resume, "since", since)
	h.serve(runCtx, conn, cl, since, resume, p.Expires)
	return nil
}

// serve runs one client until it leaves or is dropped: this goroutine
// reads, one goroutine writes, and a resuming client's replay runs in a
// third. All are done when serve returns.
func (h *Hub) serve(runCtx context.Context, conn *websocket.Conn, cl *liveClient, since uint64, resume bool, expires time.Time) {
	defer h.unregister(cl)
	if h.cfg.SocketBuffer > 0 {
		if tc, ok := conn.NetConn().(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(h.cfg.SocketBuffer)
		}
	}
	ctx, cancel := context.WithCancel(runCtx)
	defer cancel()
	var closing atomic.Bool
	readDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.writeLoop(conn, cl, readDone, expires, &closing)
	}()
	if resume {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.replay(ctx, cl, since)
		}()
	}
	h.readLoop(conn, &closing)
	// The peer left, or the close handshake ended (or timed out): stop the
	// writer and the replay, and cut the connection, which also unblocks a
	// write in progress.
	closing.Store(true)
	close(readDone)
	cancel()
	cl.kick(0, "")
	conn.Close()
	wg.Wait()
}

// readLoop discards what the client sends, answers pings (gorilla's
// default) and notices a silent client by its read deadline.
func (h *Hub) readLoop(conn *websocket.Conn, closing *atomic.Bool) {
	conn.SetReadLimit(4096)
	extend := func() {
		if !closing.Load() {
			_ = conn.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
		}
	}
	extend()
	conn.SetPongHandler(func(string) error { extend(); return nil })
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
		extend()
	}
}

// writeLoop is the client's only writer: queued messages, pings, and the
// close frame when the client is kicked (slow, token expired, shutdown).
func (h *Hub) writeLoop(conn *websocket.Conn, cl *liveClient, readDone <-chan struct{}, expires time.Time, closing *atomic.Bool) {
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	var expiry <-chan time.Time
	if !expires.IsZero() {
		t := time.NewTimer(time.Until(expires))
		defer t.Stop()
		expiry = t.C
	}
	fail := func() {
		if !cl.gone() {
			h.m.dropped.WithLabelValues("write_error").Inc()
		}
		closing.Store(true)
		conn.Close() // unblocks the reader
	}
	for {
		select {
		case <-cl.kicked:
			h.closeConn(conn, cl, closing)
			return
		default:
		}
		select {
		case <-cl.kicked:
			h.closeConn(conn, cl, closing)
			return
		case <-readDone:
			return
		case m := <-cl.queue:
			_ = conn.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
			if err := conn.WriteMessage(websocket.TextMessage, m.data); err != nil {
				fail()
				return
			}
			h.m.delivered.Inc()
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout)); err != nil {
				fail()
				return
			}
		case <-expiry:
			cl.kick(websocket.ClosePolicyViolation, "access token expired")
		}
	}
}

// closeConn sends the kicked client's close frame and gives the reader
// closeGrace to see the peer's answer before the connection is cut.
func (h *Hub) closeConn(conn *websocket.Conn, cl *liveClient, closing *atomic.Bool) {
	closing.Store(true)
	if cl.code == 0 {
		return
	}
	msg := websocket.FormatCloseMessage(cl.code, cl.reason)
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(h.cfg.WriteTimeout)); err != nil {
		conn.Close()
		return
	}
	_ = conn.NetConn().SetReadDeadline(time.Now().Add(closeGrace))
}

// ResyncMessage tells a resuming client that its ?since= cannot be
// replayed (too far behind, or a sequence the stream never had); it
// continues live from now and should reload /dcl/state.
type ResyncMessage struct {
	Type    string `json:"type"` // resync
	Reason  string `json:"reason"`
	Missed  uint64 `json:"missed,omitempty"`
	LastSeq uint64 `json:"last_seq"` // the stream's last sequence when the client connected
}

// replay sends the tenant's canonical events after since from a per-client
// ordered consumer (filtered canonical.<tenant>.>), then the live messages
// that arrived meanwhile, deduplicated by sequence, and switches the client
// to live delivery: no gap, no duplicate.
func (h *Hub) replay(ctx context.Context, cl *liveClient, since uint64) {
	if err := h.replayStream(ctx, cl, since); err != nil {
		if ctx.Err() == nil && !cl.gone() {
			h.log.Warn("replay failed", "tenant", cl.tenant, "since", since, "error", err)
			cl.kick(websocket.CloseInternalServerErr, "replay failed; reconnect")
		}
		return
	}
	for {
		cl.mu.Lock()
		batch := cl.pending
		cl.pending = nil
		if len(batch) == 0 {
			cl.replaying = false
			cl.mu.Unlock()
			return
		}
		cl.mu.Unlock()
		for _, m := range batch {
			if !cl.push(ctx, m) {
				return
			}
		}
	}
}

func (h *Hub) replayStream(ctx context.Context, cl *liveClient, since uint64) error {
	st, err := h.js.Stream(ctx, streams.StreamCanonical)
	if err != nil {
		return fmt.Errorf("stream %s: %w", streams.StreamCanonical, err)
	}
	last := st.CachedInfo().State.LastSeq
	if since > last {
		// A sequence this stream never had (it was recreated): everything
		// the client holds is suspect.
		return h.resync(ctx, cl, ResyncMessage{Type: MsgResync, Reason: "unknown sequence", LastSeq: last})
	}
	cl.mu.Lock()
	cl.lastSeq = since // the client has everything up to since
	cl.mu.Unlock()
	if since == last {
		return nil
	}
	oc, err := h.js.OrderedConsumer(ctx, streams.StreamCanonical, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{streams.CanonicalFilter(cl.tenant)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: since + 1,
		InactiveThreshold: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("replay consumer: %w", err)
	}
	defer deleteOrdered(h.js, streams.StreamCanonical, oc)
	info := oc.CachedInfo()
	if info == nil {
		return errors.New("replay consumer: no info")
	}
	if info.NumPending == 0 {
		return nil
	}
	if info.NumPending > uint64(h.cfg.MaxReplay) {
		return h.resync(ctx, cl, ResyncMessage{Type: MsgResync, Reason: "too far behind to replay", Missed: info.NumPending, LastSeq: last})
	}
	mc, err := oc.Messages(jetstream.PullMaxMessages(int(min(info.NumPending, 500))))
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer mc.Stop()
	for {
		m, err := mc.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		rec, tenant, err := parseRecord(m.Subject(), md.Sequence.Stream, m.Data())
		if err == nil && tenant == cl.tenant {
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if !cl.push(ctx, outMsg{seq: rec.Seq, data: b}) {
				return nil
			}
		}
		if md.NumPending == 0 {
			return nil
		}
	}
}

// resync tells the client it missed what cannot be replayed; live
// delivery continues from the messages that arrive from now on.
func (h *Hub) resync(ctx context.Context, cl *liveClient, m ResyncMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	cl.push(ctx, outMsg{data: b})
	return nil
}

// deleteOrdered removes an ordered consumer's server-side consumer at once
// rather than after its inactivity threshold.
func deleteOrdered(js jetstream.JetStream, stream string, oc jetstream.Consumer) {
	info := oc.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = js.DeleteConsumer(ctx, stream, info.Name)
}
