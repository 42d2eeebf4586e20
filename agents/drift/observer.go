package drift

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
)

// HeaderConnection carries the source connection on RAW messages (set by
// connectors.Emitter).
const HeaderConnection = "Autonomos-Connection"

// ConsumerName is the observer's durable consumer on RAW.
const ConsumerName = "schema-observer"

// ParseRawSubject splits raw.<tenant>.<system>.<object>. It is the one
// place agents read a subject by position (streams builds RAW subjects but
// offers no parser).
func ParseRawSubject(subj string) (tenant, system, object string, ok bool) {
	parts := strings.Split(subj, ".")
	if len(parts) != 4 || parts[0] != "raw" {
		return "", "", "", false
	}
	if !streams.ValidToken(parts[1]) || !streams.ValidToken(parts[2]) || parts[3] == "" {
		return "", "", "", false
	}
	return parts[1], parts[2], parts[3], true
}

// Observer is the schema observer: a durable consumer (ConsumerName) on
// RAW that keeps a fingerprint per tenant, connection and source object in
// the fingerprints bucket and, for each schema change, stores one finding
// and publishes one drift.detected event on DRIFT.
//
// Delivery: at least once. A record is acknowledged only after the
// fingerprint it changed is stored; a change is written to the fingerprint
// together with its finding (an outbox), then published and stored as a
// finding, then cleared, so a crash at any point neither loses nor repeats
// a finding (finding ids and event ids are derived from the change). Run
// processes records one at a time, in stream order; several observers may
// share the consumer (fingerprints are compare-and-set).
type Observer struct {
	js       jetstream.JetStream
	fps      *Fingerprints
	findings *Store
	cfg      Config
	log      *slog.Logger
	now      func() time.Time

	cache map[string]*cachedFP // used by Run's goroutine only
}

type cachedFP struct {
	fp      *Fingerprint
	rev     uint64
	unsaved int
	savedAt time.Time
}

// While the observer is behind the stream, a fingerprint whose shape did
// not change is stored once saveEvery records have been observed and
// saveInterval has passed since it was last stored. Each store is a KV
// update round trip: at every 64 records, under a bulk load, they held the
// observer to ~1,100 records a second. What may go unstored is counters
// (a change of shape, a finding and catching up are stored at once), so a
// crash can lose up to a second of counts, never a finding.
const (
	saveEvery    = 64
	saveInterval = time.Second
)

// NewObserver returns an observer; cfg gets its defaults, then is
// validated.
func NewObserver(js jetstream.JetStream, fps *Fingerprints, findings *Store, cfg Config, log *slog.Logger) (*Observer, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Observer{js: js, fps: fps, findings: findings, cfg: cfg, log: log.With("component", "schema_observer"),
		now: time.Now, cache: map[string]*cachedFP{}}, nil
}

// ConsumerConfig is the observer's durable consumer.
func (o *Observer) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "schema observer: source fingerprints and drift findings",
		FilterSubject: "raw.>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 1024,
	}
}

// Run consumes RAW until ctx is cancelled (then it returns nil).
func (o *Observer) Run(ctx context.Context) error {
	cons, err := o.js.CreateOrUpdateConsumer(ctx, streams.StreamRaw, o.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	if err := o.sweep(ctx); err != nil && ctx.Err() == nil {
		o.log.Warn("publish findings left in fingerprints", "error", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return fmt.Errorf("consume %s: %w", ConsumerName, err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-stop:
		}
		it.Stop()
	}()
	defer func() { close(stop); wg.Wait() }()
	o.log.Info("schema observer started")
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			o.log.Warn("next raw record", "error", err)
			continue
		}
		o.handle(ctx, msg)
	}
}

func (o *Observer) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Term()
		return
	}
	tenant, system, object, ok := ParseRawSubject(msg.Subject())
	if !ok || (msg.Headers().Get(streams.HeaderTenant) != "" && msg.Headers().Get(streams.HeaderTenant) != tenant) {
		o.log.Warn("a raw record with a bad subject or tenant header", "subject", msg.Subject(), "stream_seq", meta.Sequence.Stream)
		_ = msg.Term()
		return
	}
	conn := msg.Headers().Get(HeaderConnection)
	if conn == "" {
		conn = "unknown"
	}
	rec, err := DecodeRecord(msg.Data())
	if err != nil {
		o.log.Warn("a raw record that is not a JSON object", "subject", msg.Subject(), "stream_seq", meta.Sequence.Stream, "error", err)
		_ = msg.Term()
		return
	}
	caughtUp := meta.NumPending == 0
	for attempt := 0; ; attempt++ {
		err = o.observe(ctx, tenant, conn, system, object, rec, meta.Sequence.Stream, caughtUp)
		if errors.Is(err, errConflict) && attempt < 20 {
			continue
		}
		break
	}
	if err != nil {
		o.log.Warn("observe a raw record", "tenant", tenant, "subject", msg.Subject(), "stream_seq", meta.Sequence.Stream, "error", err)
		_ = msg.NakWithDelay(backoff(int(meta.NumDelivered)))
		return
	}
	_ = msg.Ack()
}

func backoff(delivered int) time.Duration {
	d := time.Second << min(max(delivered-1, 0), 6)
	return min(d, time.Minute)
}

func (o *Observer) observe(ctx context.Context, tenant, conn, system, object string, rec map[string]any, seq uint64, caughtUp bool) error {
	key := FingerprintKey(tenant, conn, system, object)
	c := o.cache[key]
	if c == nil {
		fp, rev, err := o.fps.Load(ctx, tenant, conn, system, object)
		if err != nil {
			return err
		}
		c = &cachedFP{fp: fp, rev: rev}
		o.cache[key] = c
	}
	now := o.now().UTC()
	save, ch := c.fp.Observe(rec, seq, now, o.cfg)
	if ch == nil && caughtUp {
		if ch = c.fp.Flush(now, o.cfg.MinRecords, o.cfg); ch != nil {
			save = true
		}
	}
	if ch != nil {
		c.fp.Outbox = NewFinding(c.fp, ch, now)
	}
	c.unsaved++
	if !save && !caughtUp && c.fp.Outbox == nil && (c.unsaved < saveEvery || now.Sub(c.savedAt) < saveInterval) {
		return nil
	}
	rev, err := o.fps.Save(ctx, c.fp, c.rev)
	if err != nil {
		delete(o.cache, key) // the stored state is the truth; reload it
		return err
	}
	c.rev, c.unsaved, c.savedAt = rev, 0, now
	if c.fp.Outbox != nil {
		return o.flushOutbox(ctx, key, c)
	}
	return nil
}

// flushOutbox publishes and stores the finding in c's outbox, then clears
// it. Publishing twice is harmless (the event's message id is derived from
// the finding), and a finding already stored was already published.
func (o *Observer) flushOutbox(ctx context.Context, key string, c *cachedFP) error {
	f := c.fp.Outbox
	_, err := o.findings.Get(ctx, f.Tenant, f.ID)
	switch {
	case errors.Is(err, streams.ErrNotFound):
		m, err := DetectedEvent(f).Msg()
		if err != nil {
			return err
		}
		if _, err := o.js.PublishMsg(ctx, m); err != nil {
			return fmt.Errorf("publish %s: %w", m.Subject, err)
		}
		if _, err := o.findings.Create(ctx, f); err != nil {
			return err
		}
		o.log.Info("schema drift detected", "tenant", f.Tenant, "connection_id", f.ConnectionID, "system", f.System,
			"object", f.Object, "finding_id", f.ID, "severity", f.Severity, "added", len(f.Added), "removed", len(f.Removed),
			"type_changed", len(f.TypeChanged))
	case err != nil:
		return err
	}
	c.fp.Outbox = nil
	rev, err := o.fps.Save(ctx, c.fp, c.rev)
	if err != nil {
		delete(o.cache, key)
		if errors.Is(err, errConflict) {
			return nil // the finding is out; the next writer clears the outbox
		}
		return err
	}
	c.rev = rev
	return nil
}

// sweep publishes findings left in outboxes by a crash.
func (o *Observer) sweep(ctx context.Context) error {
	fps, err := o.fps.List(ctx, "")
	if err != nil {
		return err
	}
	var errs []error
	for _, fp := range fps {
		if fp.Outbox == nil {
			continue
		}
		fp, rev, err := o.fps.Load(ctx, fp.Tenant, fp.Connection, fp.System, fp.Object)
		if err != nil || fp.Outbox == nil {
			continue
		}
		key := FingerprintKey(fp.Tenant, fp.Connection, fp.System, fp.Object)
		c := &cachedFP{fp: fp, rev: rev}
		o.cache[key] = c
		if err := o.flushOutbox(ctx, key, c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// UnmarshalRecords decodes JSON into v keeping numbers exact (json.Number).
func UnmarshalRecords(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
