package pgsourcetest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Proxy stands between a connector and a real Postgres: it counts the
// statements clients send (simple queries and extended-protocol
// executions: a connector's "requests"), ends the sessions going through it
// the way an administrator does (pg_terminate_backend), and refuses new
// connections with the errors a busy or restarting server gives. Use
// sslmode=disable through it.
type Proxy struct {
	ln       net.Listener
	upstream string
	admin    string // DSN of a direct session, for pg_terminate_backend

	requests atomic.Int64

	mu     sync.Mutex
	refuse int
	code   string
	conns  map[net.Conn]bool // upstream sides
	closed bool
	wg     sync.WaitGroup
}

// NewProxy listens on a free port of 127.0.0.1 and forwards to upstream
// (host:port); admin is a direct DSN to the same server.
func NewProxy(upstream, admin string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, admin: admin, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Port is the proxy's port on 127.0.0.1.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Requests counts statements sent through the proxy, and refused
// connection attempts.
func (p *Proxy) Requests() int { return int(p.requests.Load()) }

// Refusal codes for FailNext.
const (
	TooManyConnections = "53300" // sorry, too many clients already
	CannotConnectNow   = "57P03" // the database system is starting up
)

// FailNext ends every session going through the proxy and refuses the
// next n connection attempts with code (TooManyConnections or
// CannotConnectNow); n = 0 stops refusing.
func (p *Proxy) FailNext(n int, code string) error {
	p.mu.Lock()
	p.refuse, p.code = n, code
	p.mu.Unlock()
	if n == 0 {
		return nil
	}
	return p.Kill()
}

// Kill ends every session going through the proxy with
// pg_terminate_backend and waits until they are gone.
func (p *Proxy) Kill() error {
	p.mu.Lock()
	var ports []int32
	for c := range p.conns {
		ports = append(ports, int32(c.LocalAddr().(*net.TCPAddr).Port))
	}
	p.mu.Unlock()
	if len(ports) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY($1) AND client_addr = '127.0.0.1'", ports); err != nil {
		return err
	}
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY($1) AND client_addr = '127.0.0.1'", ports).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d terminated sessions are still there", n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops the proxy and drops its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse, code := p.refuse > 0, p.code
		if refuse {
			p.refuse--
		}
		p.mu.Unlock()
		p.wg.Add(1)
		if refuse {
			p.requests.Add(1)
			go func() {
				defer p.wg.Done()
				refuseConn(client, code)
			}()
			continue
		}
		go func() {
			defer p.wg.Done()
			p.serve(client)
		}()
	}
}

// refuseConn answers a connection's startup with a FATAL error.
func refuseConn(c net.Conn, code string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	be := pgproto3.NewBackend(c, c)
	msg, err := be.ReceiveStartupMessage()
	for err == nil {
		if _, ok := msg.(*pgproto3.SSLRequest); ok {
			_, _ = c.Write([]byte("N"))
		} else if _, ok := msg.(*pgproto3.GSSEncRequest); ok {
			_, _ = c.Write([]byte("N"))
		} else {
			break
		}
		msg, err = be.ReceiveStartupMessage()
	}
	if err != nil {
		return
	}
	text := "the database system is starting up"
	if code == TooManyConnections {
		text = "sorry, too many clients already"
	}
	be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: text})
	_ = be.Flush()
}

func (p *Proxy) serve(client net.Conn) {
	defer client.Close()
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		up.Close()
		return
	}
	p.conns[up] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
		up.Close()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(client, up)
		client.Close()
	}()
	_ = p.forward(up, client)
	up.Close()
	<-done
}

// forward copies the client's messages upstream, counting statements.
func (p *Proxy) forward(dst io.Writer, src io.Reader) error {
	r := bufio.NewReaderSize(src, 64<<10)
	startup := true
	var hdr [5]byte
	for {
		if startup {
			if _, err := io.ReadFull(r, hdr[:4]); err != nil {
				return err
			}
			n := int(binary.BigEndian.Uint32(hdr[:4]))
			if n < 8 || n > 1<<20 {
				return errors.New("bad startup message")
			}
			body := make([]byte, n-4)
			if _, err := io.ReadFull(r, body); err != nil {
				return err
			}
			if _, err := dst.Write(append(hdr[:4:4], body...)); err != nil {
				return err
			}
			switch binary.BigEndian.Uint32(body[:4]) {
			case 80877103, 80877104: // SSLRequest, GSSENCRequest: the startup message follows
			default:
				startup = false
			}
			continue
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[1:]))
		if n < 4 {
			return errors.New("bad message length")
		}
		if hdr[0] == 'Q' || hdr[0] == 'E' {
			p.requests.Add(1)
		}
		if _, err := dst.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := io.CopyN(dst, r, int64(n-4)); err != nil {
			return err
		}
	}
}
