package subscriber

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/telemetry"
)

// canonicalAll filters every subject of the CANONICAL stream, whatever
// tokens follow (tenant, entity, and a partition token one day).
const canonicalAll = "canonical.>"

// HeaderDLQConsumer names the durable consumer that gave a message up; both
// sinks' consumers see every message, so each may dead-letter it.
const HeaderDLQConsumer = "Autonomos-Dlq-Consumer"

// StageValidation is the DLQ stage of messages that are not valid canonical
// events; sink failures use "sink-<sink name>".
const StageValidation = "validation"

// Config tunes a Subscriber. The zero value is usable: New fills defaults.
type Config struct {
	// Durable names the consumer; default "dcl-<sink name>".
	Durable string `yaml:"durable"`
	// BatchSize is the most events applied in one sink transaction; default 1000.
	// A batch is applied as soon as no further message is buffered, so under
	// light load a single event is applied at once, and under load batches fill
	// up while the previous one commits.
	BatchSize int `yaml:"batch_size"`
	// MaxDeliver is how many deliveries a message gets; a message that failed
	// MaxDeliver-1 times goes to the DLQ and is terminated. Default 5, at least 2.
	MaxDeliver int `yaml:"max_deliver"`
	// AckWait is how long the server waits for an ack before redelivering (a
	// crashed instance's messages, and those whose acks a restarted embedded
	// server did not keep); default 10s. The batch in hand calls InProgress
	// every AckWait/3, so a slow commit is never redelivered meanwhile.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxAckPending bounds the unacknowledged messages across every instance
	// sharing the consumer; default 10 batches.
	MaxAckPending int `yaml:"max_ack_pending"`
	// Backoff is the delay before a failed batch is redelivered, indexed by
	// failures so far (the last entry repeats); default 1s, 5s, 15s, 30s.
	// After a failure the subscriber also pauses that long (at most AckWait/3)
	// before applying the next batch, so a failing store is not hammered.
	Backoff []time.Duration `yaml:"backoff"`
	// Owner, when set, binds the durable consumer to one owner — the
	// database file a DuckDB subscriber fills — through the consumer's
	// metadata: Claim and Run refuse a durable that another owner holds
	// (ErrOwned), so two files never split one consumer's events between
	// them, and a new file never silently continues where another one
	// stopped. Empty: any number of instances share the durable (Postgres).
	Owner string `yaml:"owner"`
	// OwnerNote describes the owner to an operator (host and path of the
	// file); it is kept beside Owner and shown in a refusal.
	OwnerNote string `yaml:"owner_note"`
	// Tracing, when set, traces every batch: a consume span in each trace
	// its events came from (a child of the span that made them, from their
	// traceparent extension) and an upsert span per sink transaction, never
	// a span per event. Nil: no spans.
	Tracing trace.TracerProvider `yaml:"-"`
	// Parse, when set, is shared with the process's other subscribers so
	// that each event is decoded once for all sinks. Nil: each parses.
	Parse *ParseCache `yaml:"-"`
}

// Consumer metadata keys of an owned durable.
const (
	MetaOwner     = "autonomos_owner"
	MetaOwnerNote = "autonomos_owner_note"
)

// ErrOwned is returned by Claim and Run when the durable consumer is bound
// to another owner than Config.Owner.
var ErrOwned = errors.New("the durable consumer is bound to another store")

func (c *Config) defaults(sink string) {
	if c.Durable == "" {
		c.Durable = "dcl-" + sink
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 5
	}
	if c.AckWait == 0 {
		c.AckWait = 10 * time.Second
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 10 * c.BatchSize
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second}
	}
}

func (c *Config) validate() error {
	var errs []error
	if !streams.ValidToken(strings.ToLower(c.Durable)) {
		errs = append(errs, fmt.Errorf("durable: %q is not a valid consumer name", c.Durable))
	}
	if c.BatchSize < 1 || c.BatchSize > 100_000 {
		errs = append(errs, fmt.Errorf("batch_size: must be 1..100000, got %d", c.BatchSize))
	}
	if c.MaxDeliver < 2 {
		errs = append(errs, fmt.Errorf("max_deliver: must be at least 2, got %d", c.MaxDeliver))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("ack_wait: must be at least 1s, got %v", c.AckWait))
	}
	if c.MaxAckPending < c.BatchSize {
		errs = append(errs, fmt.Errorf("max_ack_pending: must be at least batch_size (%d), got %d", c.BatchSize, c.MaxAckPending))
	}
	for i, d := range c.Backoff {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("backoff[%d]: must be positive, got %v", i, d))
		}
	}
	return errors.Join(errs...)
}

// Subscriber materializes the CANONICAL stream into one sink through a
// durable pull consumer. Several Subscribers (in one process or many) with
// the same durable share the work; that is how materialization scales out.
type Subscriber struct {
	js   jetstream.JetStream
	pub  *streams.Publisher
	sink Sink
	cfg  Config
	log  *slog.Logger
	// tracer makes the batch spans; nil when Config.Tracing is.
	tracer trace.Tracer

	applied, batches, deadLettered, failedBatches atomic.Uint64

	mu          sync.Mutex
	lastErr     string
	lastErrAt   time.Time
	lastApplied time.Time
	// failure logging: one line per backoff step, not per message
	failing    bool
	loggedStep int
	loggedAt   time.Time
	suppressed int
}

// New returns a Subscriber of sink on the CANONICAL stream. It checks cfg
// (after filling defaults) and returns one error naming every bad field; the
// consumer itself is created or updated by Run.
func New(js jetstream.JetStream, pub *streams.Publisher, sink Sink, cfg Config, log *slog.Logger) (*Subscriber, error) {
	var errs []error
	if js == nil {
		errs = append(errs, errors.New("jetstream is required"))
	}
	if pub == nil {
		errs = append(errs, errors.New("publisher is required (dead letters)"))
	}
	if sink == nil {
		return nil, errors.Join(append(errs, errors.New("sink is required"))...)
	}
	if !canonical.ValidToken(sink.Name()) {
		errs = append(errs, fmt.Errorf("sink name %q is not a valid token", sink.Name()))
	}
	cfg.defaults(sink.Name())
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("subscriber config: %w", errors.Join(errs...))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Subscriber{js: js, pub: pub, sink: sink, cfg: cfg,
		log: log.With("component", "subscriber", "sink", sink.Name(), "consumer", cfg.Durable)}
	if cfg.Tracing != nil {
		s.tracer = cfg.Tracing.Tracer(telemetry.Scope)
	}
	return s, nil
}

// Stats are a Subscriber's counters since it was created.
type Stats struct {
	Consumer      string    `json:"consumer"`
	Sink          string    `json:"sink"`
	Applied       uint64    `json:"applied"`        // events committed by the sink
	Batches       uint64    `json:"batches"`        // batches committed
	DeadLettered  uint64    `json:"dead_lettered"`  // messages sent to the DLQ and terminated
	FailedBatches uint64    `json:"failed_batches"` // sink failures (each batch is redelivered)
	Failing       bool      `json:"failing"`        // the last attempt failed
	LastError     string    `json:"last_error,omitempty"`
	LastErrorAt   time.Time `json:"last_error_at,omitzero"`
	LastAppliedAt time.Time `json:"last_applied_at,omitzero"`
}

// Stats returns the counters, for health and metrics. Safe for concurrent use.
func (s *Subscriber) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Consumer: s.cfg.Durable, Sink: s.sink.Name(),
		Applied: s.applied.Load(), Batches: s.batches.Load(),
		DeadLettered: s.deadLettered.Load(), FailedBatches: s.failedBatches.Load(),
		Failing: s.failing, LastError: s.lastErr, LastErrorAt: s.lastErrAt, LastAppliedAt: s.lastApplied,
	}
}

// consumerConfig is the durable's definition. Its BackOff paces redeliveries
// of messages never acknowledged (a crashed instance); explicit Naks carry
// their own delay.
func (s *Subscriber) consumerConfig() jetstream.ConsumerConfig {
	var backoff []time.Duration
	for i, d := 0, s.cfg.AckWait; i < min(4, s.cfg.MaxDeliver); i, d = i+1, 2*d {
		backoff = append(backoff, d)
	}
	return jetstream.ConsumerConfig{
		Durable:       s.cfg.Durable,
		Description:   "materializes canonical events into " + s.sink.Name(),
		FilterSubject: canonicalAll,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxDeliver:    s.cfg.MaxDeliver,
		MaxAckPending: s.cfg.MaxAckPending,
		BackOff:       backoff,
		Metadata:      s.metadata(),
	}
}

func (s *Subscriber) metadata() map[string]string {
	if s.cfg.Owner == "" {
		return nil
	}
	return map[string]string{MetaOwner: s.cfg.Owner, MetaOwnerNote: s.cfg.OwnerNote}
}

// Claim creates the durable consumer, or updates it when it exists, and
// returns it. With Config.Owner set, it creates the durable bound to the
// owner in one step (of two instances starting together, one creates it and
// the other finds it bound), adopts a durable that has no owner yet, and
// refuses one that another owner holds with ErrOwned, naming both. Run
// claims first on its own; calling Claim before Run makes a refusal an error
// at start rather than in the background. It may be called more than once.
func (s *Subscriber) Claim(ctx context.Context) (jetstream.Consumer, error) {
	cfg := s.consumerConfig()
	if s.cfg.Owner == "" {
		cons, err := s.js.CreateOrUpdateConsumer(ctx, streams.StreamCanonical, cfg)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", s.cfg.Durable, err)
		}
		return cons, nil
	}
	cons, err := s.js.CreateConsumer(ctx, streams.StreamCanonical, cfg)
	if err == nil {
		return cons, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerExists) {
		return nil, fmt.Errorf("consumer %s: %w", s.cfg.Durable, err)
	}
	cur, err := s.js.Consumer(ctx, streams.StreamCanonical, s.cfg.Durable)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", s.cfg.Durable, err)
	}
	md := cur.CachedInfo().Config.Metadata
	if owner := md[MetaOwner]; owner != "" && owner != s.cfg.Owner {
		return nil, fmt.Errorf("%w: consumer %s is bound to %s (%s), not to %s (%s)",
			ErrOwned, s.cfg.Durable, owner, md[MetaOwnerNote], s.cfg.Owner, s.cfg.OwnerNote)
	}
	if cons, err = s.js.UpdateConsumer(ctx, streams.StreamCanonical, cfg); err != nil {
		return nil, fmt.Errorf("consumer %s: %w", s.cfg.Durable, err)
	}
	return cons, nil
}

// Run claims the durable consumer (see Claim) and materializes batches until
// ctx is cancelled; then it finishes the batch in hand (within a grace
// period), gives buffered messages back to the server for immediate
// redelivery, and returns nil. It returns an error when the consumer cannot be
// claimed or consuming stops for another reason. Run may be called once.
func (s *Subscriber) Run(ctx context.Context) error {
	cons, err := s.Claim(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	buffered := make(chan jetstream.Msg, 2*s.cfg.BatchSize)
	cc, err := cons.Consume(func(m jetstream.Msg) { buffered <- m },
		jetstream.PullMaxMessages(2*s.cfg.BatchSize),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.Debug("consume", "error", err)
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", s.cfg.Durable, err)
	}
	closed := cc.Closed()
	s.log.Info("subscriber started", "batch_size", s.cfg.BatchSize, "max_deliver", s.cfg.MaxDeliver)
	// Two stages: this loop gathers and parses the next batch while the
	// applier commits the previous one, so the parse and the database
	// overlap. The batch in hand keeps growing (to BatchSize) until the
	// applier takes it: under load batches are as large as the commit time
	// lets them be, and a message waits for at most the commit in progress
	// before its own.
	parsed := make(chan parsedBatch)
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for pb := range parsed {
			if ctx.Err() != nil && !pb.inHand {
				for _, m := range pb.batch {
					m.Nak() // stopping: leave it to the next instance
				}
				continue
			}
			s.process(ctx, pb)
		}
	}()
	stopApplier := func() {
		close(parsed)
		<-applied
	}
	var next parsedBatch // the batch in hand; empty when next.batch is nil
	for {
		var (
			out  chan parsedBatch // the applier, once there is a batch to give it
			take = buffered       // more messages, while the batch has room
		)
		if next.batch != nil {
			out = parsed
			if len(next.batch) >= s.cfg.BatchSize {
				take = nil
			}
		}
		select {
		case <-ctx.Done():
			if next.batch != nil {
				next.inHand = true // parsed before the stop: finish it
				parsed <- next
			}
			stopApplier()
			s.drain(cc, buffered, closed)
			s.log.Info("subscriber stopped", "applied", s.applied.Load())
			return nil
		case <-closed:
			if next.batch != nil {
				parsed <- next
			}
			stopApplier()
			return fmt.Errorf("consumer %s: consuming stopped", s.cfg.Durable)
		case out <- next:
			next = parsedBatch{}
		case m := <-take:
			if ctx.Err() != nil {
				m.Nak() // stopping: leave it to the next instance
				continue
			}
			if next.batch == nil {
				next = parsedBatch{batch: make([]jetstream.Msg, 0, s.cfg.BatchSize), taken: time.Now()}
			}
			from := len(next.batch)
			next.batch = append(next.batch, m)
		fill:
			for len(next.batch) < s.cfg.BatchSize {
				select {
				case m := <-buffered:
					next.batch = append(next.batch, m)
				default:
					break fill
				}
			}
			next.events = append(next.events, parseAll(s.cfg.Parse, next.batch[from:])...)
		}
	}
}

// parsedBatch is a batch of messages with their parse results (an
// *canonical.Event or an error each). inHand marks a batch taken before
// a stop, which is still applied within the grace period; taken is when it
// was taken off the consumer.
type parsedBatch struct {
	batch  []jetstream.Msg
	events []any
	inHand bool
	taken  time.Time
}

// drain stops pulling and hands every buffered message back (Nak without
// delay) so that another instance, or the next start, gets it at once rather
// than after AckWait.
func (s *Subscriber) drain(cc jetstream.ConsumeContext, buffered chan jetstream.Msg, closed <-chan struct{}) {
	cc.Drain()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case m := <-buffered:
			m.Nak()
		case <-closed:
			for {
				select {
				case m := <-buffered:
					m.Nak()
				default:
					return
				}
			}
		case <-timeout.C:
			cc.Stop()
			return
		}
	}
}

// shutdownGrace is how long a batch in hand may still take once Run's
// context is cancelled.
const shutdownGrace = 5 * time.Second

// process parses a batch, dead-letters what is not a valid canonical event,
// and applies the rest.
func (s *Subscriber) process(ctx context.Context, pb parsedBatch) {
	batch, events := pb.batch, pb.events
	applied, deadLettered := s.applied.Load(), s.deadLettered.Load()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.AckWait)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(shutdownGrace, cancel) })
	defer stop()

	msgs := make([]jetstream.Msg, 0, len(batch))
	good := make([]*canonical.Event, 0, len(batch))
	for i, m := range batch {
		if pe, ok := events[i].(error); ok {
			s.deadLetter(actx, m, nil, StageValidation, pe.Error())
			continue
		}
		msgs = append(msgs, m)
		good = append(good, events[i].(*canonical.Event))
	}
	if len(msgs) > 0 {
		bt := s.startBatchTrace(ctx, pb.taken, good)
		s.apply(ctx, withBatchTrace(actx, bt), msgs, good, false)
		bt.end(s.applied.Load()-applied, s.deadLettered.Load()-deadLettered)
	}
}

// parseAll parses a batch (through the shared cache), on every core for large
// batches; each result is an *canonical.Event or an error.
func parseAll(cache *ParseCache, batch []jetstream.Msg) []any {
	out := make([]any, len(batch))
	parse := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ev, err := cache.Parse(batch[i].Data())
			if err != nil {
				out[i] = err
			} else {
				out[i] = ev
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(batch)/64)
	if workers <= 1 {
		parse(0, len(batch))
		return out
	}
	var wg sync.WaitGroup
	per := (len(batch) + workers - 1) / workers
	for lo := 0; lo < len(batch); lo += per {
		wg.Go(func() { parse(lo, min(lo+per, len(batch))) })
	}
	wg.Wait()
	return out
}

// apply commits events (parallel to msgs) and acks them after the commit.
//
// A permanent sink error isolates the offending event — named by the error,
// or found by applying halves of the batch — and dead-letters it; the rest
// is applied again at once. Any other error naks the batch with backoff,
// except the messages on their last attempt (MaxDeliver-1 failures): those
// are applied again in halves, so that only the ones that fail on their own
// are dead-lettered, not the innocent ones that shared a batch with them.
// final says every message of msgs is on its last attempt.
func (s *Subscriber) apply(ctx, actx context.Context, msgs []jetstream.Msg, events []*canonical.Event, final bool) {
	stop := s.keepAlive(msgs)
	end := batchTraceOf(actx).upsert(events)
	err := s.sink.Apply(actx, events)
	end(err)
	stop()
	if err == nil {
		for _, m := range msgs {
			if err := m.Ack(); err != nil {
				s.log.Debug("ack", "error", err)
			}
		}
		s.applied.Add(uint64(len(msgs)))
		s.batches.Add(1)
		s.recovered()
		return
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		if i := indexOf(events, pe.Event); i >= 0 {
			s.deadLetter(actx, msgs[i], events[i], "sink-"+s.sink.Name(), err.Error())
			if len(msgs) > 1 {
				s.apply(ctx, actx, deleteAt(msgs, i), deleteAt(events, i), final)
			}
			return
		}
		s.halve(ctx, actx, msgs, events, final, err)
		return
	}
	s.failedBatches.Add(1)
	if final {
		s.noteFailure(err, s.cfg.MaxDeliver-1, len(msgs))
		s.halve(ctx, actx, msgs, events, true, err)
		return
	}
	// Nak what may be tried again; keep the messages on their last attempt.
	var lastMsgs []jetstream.Msg
	var lastEvents []*canonical.Event
	step := 0
	for i, m := range msgs {
		n := delivered(m)
		step = max(step, n)
		if n >= s.cfg.MaxDeliver-1 {
			lastMsgs, lastEvents = append(lastMsgs, m), append(lastEvents, events[i])
			continue
		}
		if err := m.NakWithDelay(s.backoff(n)); err != nil {
			s.log.Debug("nak", "error", err)
		}
	}
	s.noteFailure(err, step, len(msgs))
	switch {
	case len(lastMsgs) == len(msgs):
		s.halve(ctx, actx, msgs, events, true, err)
	case len(lastMsgs) > 0:
		s.apply(ctx, actx, lastMsgs, lastEvents, true)
	}
	// Do not hammer a failing store: pause before the next batch.
	pause := time.NewTimer(min(s.backoff(step), s.cfg.AckWait/3))
	defer pause.Stop()
	select {
	case <-ctx.Done():
	case <-pause.C:
	}
}

// halve applies each half of a failed batch again; a single message that
// failed is dead-lettered.
func (s *Subscriber) halve(ctx, actx context.Context, msgs []jetstream.Msg, events []*canonical.Event, final bool, err error) {
	if len(msgs) == 1 {
		reason := err.Error()
		if !IsPermanent(err) {
			reason = fmt.Sprintf("gave up after %d attempts: %v", delivered(msgs[0]), err)
		}
		s.deadLetter(actx, msgs[0], events[0], "sink-"+s.sink.Name(), reason)
		return
	}
	h := len(msgs) / 2
	s.apply(ctx, actx, msgs[:h], events[:h], final)
	s.apply(ctx, actx, msgs[h:], events[h:], final)
}

func indexOf(events []*canonical.Event, ev *canonical.Event) int {
	if ev == nil {
		return -1
	}
	for i, e := range events {
		if e == ev {
			return i
		}
	}
	return -1
}

// deleteAt returns s without element i, in a new slice (s may be shared by a
// caller's other half).
func deleteAt[T any](s []T, i int) []T {
	out := make([]T, 0, len(s)-1)
	return append(append(out, s[:i]...), s[i+1:]...)
}

// keepAlive tells the server the batch is still being worked on while the
// sink is slow, so that it is not redelivered meanwhile.
func (s *Subscriber) keepAlive(msgs []jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(s.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					m.InProgress()
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (s *Subscriber) backoff(failures int) time.Duration {
	return s.cfg.Backoff[min(max(failures-1, 0), len(s.cfg.Backoff)-1)]
}

func delivered(m jetstream.Msg) int {
	md, err := m.Metadata()
	if err != nil {
		return 1
	}
	return int(md.NumDelivered)
}

// noteFailure records the error and logs it once per backoff step: when the
// step changes, or when a step's backoff has passed since the last line.
func (s *Subscriber) noteFailure(err error, step, n int) {
	now := time.Now()
	s.mu.Lock()
	s.lastErr, s.lastErrAt, s.failing = err.Error(), now, true
	logIt := step != s.loggedStep || now.Sub(s.loggedAt) >= s.backoff(step)
	suppressed := s.suppressed
	if logIt {
		s.loggedStep, s.loggedAt, s.suppressed = step, now, 0
	} else {
		s.suppressed++
	}
	s.mu.Unlock()
	if logIt {
		s.log.Warn("sink failed, batch will be redelivered", "error", err, "messages", n,
			"attempt", step, "retry_in", s.backoff(step), "suppressed_failures", suppressed)
	}
}

func (s *Subscriber) recovered() {
	s.mu.Lock()
	was := s.failing
	s.failing, s.lastApplied, s.loggedStep = false, time.Now(), 0
	s.mu.Unlock()
	if was {
		s.log.Info("sink recovered")
	}
}

// deadLetter publishes m to the DLQ with the reason and terminates it; when
// the DLQ cannot be reached, m is nak'ed to be tried again later.
func (s *Subscriber) deadLetter(ctx context.Context, m jetstream.Msg, ev *canonical.Event, stage, reason string) {
	md, _ := m.Metadata()
	d := streams.DeadLetter{Stage: stage, Reason: reason, Subject: m.Subject(), Data: m.Data(), Header: nats.Header{}}
	if md != nil {
		d.Sequence, d.Attempts = md.Sequence.Stream, int(md.NumDelivered)
	}
	for k, v := range m.Headers() {
		d.Header[k] = v
	}
	d.Header.Set(HeaderDLQConsumer, s.cfg.Durable)
	if ev != nil {
		d.Tenant, d.TraceID = ev.Tenant, ev.TraceID
	} else {
		d.Tenant, d.TraceID = tenantOf(m), traceOf(m)
	}
	log := s.log.With("subject", d.Subject, "stream_seq", d.Sequence, "tenant", d.Tenant, "stage", stage)
	if ev != nil {
		log = log.With("event_id", ev.ID, "trace_id", ev.TraceID)
	}
	if err := s.pub.PublishDLQ(ctx, d); err != nil {
		log.Error("dead letter not stored, will retry", "error", err, "reason", reason)
		m.NakWithDelay(s.backoff(d.Attempts))
		return
	}
	if err := m.TermWithReason(truncate(reason, 256)); err != nil {
		log.Debug("term", "error", err)
	}
	s.deadLettered.Add(1)
	log.Warn("message dead-lettered", "reason", reason, "attempts", d.Attempts)
}

// tenantOf finds the tenant of a message that did not parse: its tenant
// header, else the event's tenantid attribute, else "unknown".
func tenantOf(m jetstream.Msg) string {
	if t := m.Headers().Get(streams.HeaderTenant); canonical.ValidToken(t) {
		return t
	}
	var ce struct {
		Tenant string `json:"tenantid"`
	}
	if json.Unmarshal(m.Data(), &ce) == nil && canonical.ValidToken(ce.Tenant) {
		return ce.Tenant
	}
	return "unknown"
}

// traceOf reads the trace id of a W3C traceparent header.
func traceOf(m jetstream.Msg) string {
	parts := strings.Split(m.Headers().Get(streams.HeaderTraceparent), "-")
	if len(parts) == 4 && len(parts[1]) == 32 {
		return parts[1]
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
