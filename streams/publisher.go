package streams

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
)

// Header names carried on messages.
const (
	HeaderContentType = "Content-Type"
	HeaderTraceparent = "traceparent"
	HeaderTenant      = "Autonomos-Tenant"
	// DLQ headers.
	HeaderDLQReason   = "Autonomos-Dlq-Reason"
	HeaderDLQStage    = "Autonomos-Dlq-Stage"
	HeaderDLQSubject  = "Autonomos-Dlq-Subject"
	HeaderDLQSequence = "Autonomos-Dlq-Sequence"
	HeaderDLQAttempts = "Autonomos-Dlq-Attempts"
	HeaderDLQTrace    = "Autonomos-Dlq-Trace-Id"
	HeaderDLQTime     = "Autonomos-Dlq-Time"
	// ContentTypeCloudEvent is the structured-mode media type.
	ContentTypeCloudEvent = "application/cloudevents+json"
)

// NewJetStream returns a JetStream context whose asynchronous publishes are
// bounded to window messages in flight.
func NewJetStream(nc *nats.Conn, window int) (jetstream.JetStream, error) {
	if window <= 0 {
		window = 4096
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(window),
		// An ack lost with a stream leader that died is never answered:
		// the timeout turns it into an error that Batch.Wait retries.
		jetstream.WithPublishAsyncTimeout(asyncAckTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}

// Publisher publishes to JetStream and waits for acknowledgements. It is safe
// for concurrent use.
type Publisher struct {
	js jetstream.JetStream
}

// NewPublisher returns a publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// JetStream returns the underlying JetStream context.
func (p *Publisher) JetStream() jetstream.JetStream { return p.js }

// EventMsg encodes a canonical event as a NATS message on its subject, with
// Nats-Msg-Id = event id for de-duplication and the W3C traceparent (the
// event's own, else one made of its trace id).
func EventMsg(ev *canonical.Event) (*nats.Msg, error) {
	subj, err := CanonicalSubject(ev.Tenant, string(ev.Entity()))
	if err != nil {
		return nil, err
	}
	b, err := ev.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", ev.ID, err)
	}
	m := nats.NewMsg(subj)
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, ev.ID)
	m.Header.Set(HeaderContentType, ContentTypeCloudEvent)
	m.Header.Set(HeaderTenant, ev.Tenant)
	if ev.Traceparent != "" {
		m.Header.Set(HeaderTraceparent, ev.Traceparent)
	} else if tp := Traceparent(ev.TraceID); tp != "" {
		m.Header.Set(HeaderTraceparent, tp)
	}
	return m, nil
}

// Traceparent renders a W3C traceparent for a 32-hex trace id, with a span
// id derived from it; empty when the trace id is not valid.
func Traceparent(traceID string) string {
	if len(traceID) != 32 {
		return ""
	}
	return "00-" + traceID + "-" + traceID[:16] + "-01"
}

// Batch publishes messages asynchronously and collects their acks.
// A Batch is used by one goroutine.
type Batch struct {
	p       *Publisher
	futures []jetstream.PubAckFuture
	// failed holds messages whose publish failed for a passing reason
	// before they reached the server; Wait publishes them again.
	failed  []*nats.Msg
	failErr error
}

// NewBatch starts a batch of asynchronous publishes.
func (p *Publisher) NewBatch() *Batch { return &Batch{p: p} }

// Add publishes m without waiting; it blocks while the in-flight window is full.
// A publish that fails for a passing reason (the socket to a server that just
// died, a reconnect in progress) is kept for Wait to publish again; any other
// failure is returned.
func (b *Batch) Add(m *nats.Msg) error {
	f, err := b.p.js.PublishMsgAsync(m)
	switch {
	case err == nil:
		b.futures = append(b.futures, f)
	case retriable(err):
		b.failed, b.failErr = append(b.failed, m), err
	default:
		return fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	return nil
}

// Len is the number of messages added since the last Wait.
func (b *Batch) Len() int { return len(b.futures) + len(b.failed) }

// Wait waits for every ack of the batch. It returns the number of messages
// the stream accepted (including duplicates it dropped as already stored) and
// the first error; the batch is empty afterwards.
//
// A publish that failed for a passing reason — the connection moved to
// another server, the stream had no leader during an election, the ack never
// came — is published again with backoff for up to PublishRetryFor. That is
// safe because the message keeps its Nats-Msg-Id: if the first attempt was
// stored after all, the stream drops the second and acknowledges it as a
// duplicate. Any other error ends the wait at once.
func (b *Batch) Wait(ctx context.Context) (int, error) {
	defer func() { b.futures, b.failed, b.failErr = b.futures[:0], b.failed[:0], nil }()
	acked := 0
	futures := b.futures
	var (
		again   = append([]*nats.Msg(nil), b.failed...) // to publish again
		lastErr = b.failErr
	)
	deadline := time.Now().Add(PublishRetryFor)
	backoff := 100 * time.Millisecond
	for {
		for _, f := range futures {
			select {
			case <-f.Ok():
				acked++
			case err := <-f.Err():
				if !retriable(err) {
					return acked, fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
				}
				again, lastErr = append(again, f.Msg()), err
			case <-ctx.Done():
				return acked, ctx.Err()
			}
		}
		if len(again) == 0 {
			return acked, nil
		}
		if time.Now().After(deadline) {
			return acked, fmt.Errorf("publish %s: %d messages unacknowledged after retrying for %v: %w",
				again[0].Subject, len(again), PublishRetryFor, lastErr)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return acked, ctx.Err()
		}
		backoff = min(2*backoff, 2*time.Second)
		futures = futures[:0]
		var left []*nats.Msg
		for _, m := range again {
			f, err := b.p.js.PublishMsgAsync(m)
			switch {
			case err == nil:
				futures = append(futures, f)
			case retriable(err):
				left, lastErr = append(left, m), err
			default:
				return acked, fmt.Errorf("publish %s: %w", m.Subject, err)
			}
		}
		again = left
	}
}

// PublishRetryFor bounds how long Batch.Wait publishes a message again after
// passing failures: long enough for a stream leader election or a client
// reconnect, short enough that a cluster without quorum fails the job.
const PublishRetryFor = time.Minute

// asyncAckTimeout is how long an asynchronous publish waits for its ack.
const asyncAckTimeout = 5 * time.Second

// retriable says whether a failed publish may succeed when sent again: the
// client is between servers, the stream is between leaders, or the socket to
// a server broke under a write (nats.go returns that error from the publish
// itself when its buffer flushes inline, before it starts reconnecting).
func retriable(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, jetstream.ErrTooManyStalledMsgs)
}

// Publish publishes one message and waits for its ack.
func (p *Publisher) Publish(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	ack, err := p.js.PublishMsg(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	return ack, nil
}

// DeadLetter describes a message a stage gave up on.
type DeadLetter struct {
	Tenant   string
	Stage    string // mapping, validation, sink-postgres, ...
	Reason   string
	Subject  string // original subject, if it had one
	Sequence uint64 // original stream sequence, if it had one
	Attempts int
	TraceID  string
	Data     []byte
	Header   nats.Header // original headers, copied
}

// PublishDLQ stores a dead letter on dlq.<tenant>.<stage> and waits for the ack.
func (p *Publisher) PublishDLQ(ctx context.Context, d DeadLetter) error {
	subj, err := DLQSubject(d.Tenant, d.Stage)
	if err != nil {
		return err
	}
	m := nats.NewMsg(subj)
	m.Data = d.Data
	for k, vs := range d.Header {
		if k == jetstream.MsgIDHeader {
			continue
		}
		for _, v := range vs {
			m.Header.Add(k, v)
		}
	}
	m.Header.Set(HeaderDLQReason, truncate(d.Reason, 2000))
	m.Header.Set(HeaderDLQStage, d.Stage)
	if d.Subject != "" {
		m.Header.Set(HeaderDLQSubject, d.Subject)
	}
	if d.Sequence > 0 {
		m.Header.Set(HeaderDLQSequence, strconv.FormatUint(d.Sequence, 10))
	}
	m.Header.Set(HeaderDLQAttempts, strconv.Itoa(d.Attempts))
	if d.TraceID != "" {
		m.Header.Set(HeaderDLQTrace, d.TraceID)
	}
	m.Header.Set(HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	m.Header.Set(HeaderTenant, d.Tenant)
	_, err = p.Publish(ctx, m)
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
