package subscriber

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// AuditEventType is the CloudEvents type the gateway gives audit records
// (gateway.AuditEventType; repeated here so the subscriber does not import
// the gateway).
const AuditEventType = "com.autonomos.audit.request"

// StageAudit is the DLQ stage of audit messages that are not audit records.
const StageAudit = "audit"

const auditAll = "audit.>"

// AuditEntry is one row of the audit_log table.
type AuditEntry struct {
	Tenant         string
	EventID        string
	Time           time.Time // microsecond precision, as both stores keep it
	User           string
	Route          string
	Method         string
	Status         int
	LatencyMS      int64
	TraceID        string
	BodySHA256     string
	IdempotencyKey string
	Outcome        string
}

// AuditSink stores audit entries. InsertAudit writes a batch in one
// transaction; an entry whose (tenant, event_id) is already stored is
// skipped, so redelivery never duplicates. It may be called concurrently
// (the stores serialise what they must); it returns ctx.Err() when ctx is
// cancelled. A *PermanentError marks entries the store will never accept.
type AuditSink interface {
	Name() string
	InsertAudit(ctx context.Context, entries []AuditEntry) error
}

var (
	_ AuditSink = (*Postgres)(nil)
	_ AuditSink = (*DuckDB)(nil)
)

// AuditConfig tunes an AuditMaterializer. The zero value is usable.
type AuditConfig struct {
	// Durable names the consumer; default "audit-<sink name>".
	Durable string `yaml:"durable"`
	// BatchSize is the most entries inserted in one transaction; default 500.
	BatchSize int `yaml:"batch_size"`
	// MaxDeliver bounds deliveries of a message whose insert keeps failing;
	// default 100 (a store outage must not drop audit records). At least 2.
	MaxDeliver int `yaml:"max_deliver"`
	// AckWait is how long the server waits for an ack; default 30s.
	AckWait time.Duration `yaml:"ack_wait"`
	// Backoff is the redelivery delay after a failed insert, indexed by
	// deliveries so far (the last entry repeats); default 1s, 5s, 15s, 30s.
	Backoff []time.Duration `yaml:"backoff"`
}

func (c *AuditConfig) defaults(sink string) {
	if c.Durable == "" {
		c.Durable = "audit-" + sink
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 100
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second}
	}
}

func (c *AuditConfig) validate() error {
	var errs []error
	if !streams.ValidToken(strings.ToLower(c.Durable)) {
		errs = append(errs, fmt.Errorf("durable: %q is not a valid consumer name", c.Durable))
	}
	if c.BatchSize < 1 || c.BatchSize > 10_000 {
		errs = append(errs, fmt.Errorf("batch_size: must be 1..10000, got %d", c.BatchSize))
	}
	if c.MaxDeliver < 2 {
		errs = append(errs, fmt.Errorf("max_deliver: must be at least 2, got %d", c.MaxDeliver))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("ack_wait: must be at least 1s, got %v", c.AckWait))
	}
	for i, d := range c.Backoff {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("backoff[%d]: must be positive, got %v", i, d))
		}
	}
	return errors.Join(errs...)
}

// AuditMaterializer writes the AUDIT stream into one store's audit_log
// through a durable pull consumer. Instances with the same durable share
// the work.
type AuditMaterializer struct {
	js   jetstream.JetStream
	pub  *streams.Publisher
	sink AuditSink
	cfg  AuditConfig
	log  *slog.Logger

	inserted, deadLettered atomic.Uint64
}

// NewAuditMaterializer returns a materializer of the AUDIT stream into
// sink. It checks cfg (after defaults) and returns one error naming every
// bad field; the consumer is created or updated by Run.
func NewAuditMaterializer(js jetstream.JetStream, pub *streams.Publisher, sink AuditSink, cfg AuditConfig, log *slog.Logger) (*AuditMaterializer, error) {
	var errs []error
	if js == nil {
		errs = append(errs, errors.New("jetstream is required"))
	}
	if pub == nil {
		errs = append(errs, errors.New("publisher is required (dead letters)"))
	}
	if sink == nil {
		return nil, fmt.Errorf("audit config: %w", errors.Join(append(errs, errors.New("sink is required"))...))
	}
	cfg.defaults(sink.Name())
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("audit config: %w", errors.Join(errs...))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AuditMaterializer{js: js, pub: pub, sink: sink, cfg: cfg,
		log: log.With("component", "audit", "sink", sink.Name(), "consumer", cfg.Durable)}, nil
}

// Inserted counts the messages acknowledged after a commit (duplicates
// skipped by the store included).
func (a *AuditMaterializer) Inserted() uint64 { return a.inserted.Load() }

// Run creates or updates the durable consumer and inserts batches until ctx
// is cancelled, then finishes the batch in hand, naks what is buffered and
// returns nil. It returns an error when the consumer cannot be created or
// consuming stops for another reason. Run may be called once.
func (a *AuditMaterializer) Run(ctx context.Context) error {
	cons, err := a.js.CreateOrUpdateConsumer(ctx, streams.StreamAudit, jetstream.ConsumerConfig{
		Durable:       a.cfg.Durable,
		Description:   "materializes audit records into " + a.sink.Name(),
		FilterSubject: auditAll,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       a.cfg.AckWait,
		MaxDeliver:    a.cfg.MaxDeliver,
		MaxAckPending: 4 * a.cfg.BatchSize,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("consumer %s: %w", a.cfg.Durable, err)
	}
	buffered := make(chan jetstream.Msg, 2*a.cfg.BatchSize)
	cc, err := cons.Consume(func(m jetstream.Msg) { buffered <- m },
		jetstream.PullMaxMessages(2*a.cfg.BatchSize),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			a.log.Debug("consume", "error", err)
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", a.cfg.Durable, err)
	}
	closed := cc.Closed()
	a.log.Info("audit materializer started", "batch_size", a.cfg.BatchSize)
	for {
		select {
		case <-ctx.Done():
			cc.Stop()
			for {
				select {
				case m := <-buffered:
					m.Nak()
				case <-closed:
					a.log.Info("audit materializer stopped", "inserted", a.inserted.Load())
					return nil
				}
			}
		case <-closed:
			return fmt.Errorf("consumer %s: consuming stopped", a.cfg.Durable)
		case m := <-buffered:
			batch := []jetstream.Msg{m}
		fill:
			for len(batch) < a.cfg.BatchSize {
				select {
				case m := <-buffered:
					batch = append(batch, m)
				default:
					break fill
				}
			}
			a.process(ctx, batch)
		}
	}
}

// process dead-letters the messages that are not audit records and inserts
// the rest, acking them after the commit. The batch is finished even when
// ctx ends meanwhile (bounded by AckWait).
func (a *AuditMaterializer) process(ctx context.Context, batch []jetstream.Msg) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.AckWait)
	defer cancel()
	var msgs []jetstream.Msg
	var entries []AuditEntry
	for _, m := range batch {
		e, err := parseAudit(m)
		if err != nil {
			a.deadLetter(actx, m, err.Error())
			continue
		}
		msgs, entries = append(msgs, m), append(entries, e)
	}
	a.insert(ctx, actx, msgs, entries)
}

// insert commits entries and acks msgs. A permanent error is narrowed down
// by inserting one at a time, so only the offending entry is dead-lettered;
// any other error naks the batch with backoff.
func (a *AuditMaterializer) insert(ctx, actx context.Context, msgs []jetstream.Msg, entries []AuditEntry) {
	if len(msgs) == 0 {
		return
	}
	err := a.sink.InsertAudit(actx, entries)
	if err == nil {
		for _, m := range msgs {
			if err := m.Ack(); err != nil {
				a.log.Debug("ack", "error", err)
			}
		}
		a.inserted.Add(uint64(len(msgs)))
		return
	}
	if IsPermanent(err) {
		if len(msgs) == 1 {
			a.deadLetter(actx, msgs[0], err.Error())
			return
		}
		for i := range msgs {
			a.insert(ctx, actx, msgs[i:i+1], entries[i:i+1])
		}
		return
	}
	n := 0
	for _, m := range msgs {
		n = max(n, delivered(m))
		m.NakWithDelay(a.backoff(delivered(m)))
	}
	a.log.Warn("audit insert failed, batch will be redelivered", "error", err, "messages", len(msgs), "attempt", n)
	pause := time.NewTimer(min(a.backoff(n), a.cfg.AckWait/3))
	defer pause.Stop()
	select {
	case <-ctx.Done():
	case <-pause.C:
	}
}

func (a *AuditMaterializer) backoff(n int) time.Duration {
	return a.cfg.Backoff[min(max(n-1, 0), len(a.cfg.Backoff)-1)]
}

// deadLetter stores m on the DLQ (stage audit) and terminates it; when the
// DLQ cannot be reached m is nak'ed to be tried again.
func (a *AuditMaterializer) deadLetter(ctx context.Context, m jetstream.Msg, reason string) {
	d := streams.DeadLetter{Stage: StageAudit, Reason: reason, Subject: m.Subject(), Data: m.Data(),
		Header: nats.Header{}, Tenant: tenantOf(m), TraceID: traceOf(m)}
	if md, err := m.Metadata(); err == nil {
		d.Sequence, d.Attempts = md.Sequence.Stream, int(md.NumDelivered)
	}
	for k, v := range m.Headers() {
		d.Header[k] = v
	}
	d.Header.Set(HeaderDLQConsumer, a.cfg.Durable)
	log := a.log.With("subject", d.Subject, "stream_seq", d.Sequence, "tenant", d.Tenant)
	if err := a.pub.PublishDLQ(ctx, d); err != nil {
		log.Error("dead letter not stored, will retry", "error", err, "reason", reason)
		m.NakWithDelay(a.backoff(d.Attempts))
		return
	}
	if err := m.TermWithReason(truncate(reason, 256)); err != nil {
		log.Debug("term", "error", err)
	}
	a.deadLettered.Add(1)
	log.Warn("audit message dead-lettered", "reason", reason)
}

// auditEvent is the part of an audit CloudEvent the materializer reads.
type auditEvent struct {
	ID     string    `json:"id"`
	Type   string    `json:"type"`
	Time   time.Time `json:"time"`
	Tenant string    `json:"tenantid"`
	Data   *struct {
		Tenant         string `json:"tenant"`
		User           string `json:"user"`
		Route          string `json:"route"`
		Method         string `json:"method"`
		Status         int    `json:"status"`
		LatencyMS      int64  `json:"latency_ms"`
		TraceID        string `json:"trace_id"`
		BodySHA256     string `json:"body_sha256"`
		IdempotencyKey string `json:"idempotency_key"`
		Outcome        string `json:"outcome"`
	} `json:"data"`
}

// parseAudit reads an audit CloudEvent (structured JSON). The tenant of the
// subject, the event and its data must agree.
func parseAudit(m jetstream.Msg) (AuditEntry, error) {
	var ev auditEvent
	if err := json.Unmarshal(m.Data(), &ev); err != nil {
		return AuditEntry{}, fmt.Errorf("not a JSON CloudEvent: %w", err)
	}
	var problems []string
	if ev.Type != AuditEventType {
		problems = append(problems, fmt.Sprintf("type %q is not %s", truncate(ev.Type, 100), AuditEventType))
	}
	if ev.ID == "" || len(ev.ID) > 200 {
		problems = append(problems, "id: want 1 to 200 characters")
	}
	if ev.Time.IsZero() {
		problems = append(problems, "time is missing")
	}
	subjTenant := strings.TrimPrefix(m.Subject(), "audit.")
	if !canonical.ValidToken(ev.Tenant) || ev.Tenant != subjTenant {
		problems = append(problems, fmt.Sprintf("tenantid %q does not match subject %s", truncate(ev.Tenant, 100), m.Subject()))
	}
	if ev.Data == nil {
		problems = append(problems, "data is missing")
	} else if ev.Data.Tenant != ev.Tenant {
		problems = append(problems, fmt.Sprintf("data.tenant %q is not tenantid %q", truncate(ev.Data.Tenant, 100), truncate(ev.Tenant, 100)))
	}
	if len(problems) > 0 {
		return AuditEntry{}, errors.New("not an audit record: " + strings.Join(problems, "; "))
	}
	d := ev.Data
	return AuditEntry{Tenant: ev.Tenant, EventID: ev.ID, Time: ev.Time.UTC().Truncate(time.Microsecond),
		User: d.User, Route: d.Route, Method: d.Method, Status: d.Status, LatencyMS: d.LatencyMS,
		TraceID: d.TraceID, BodySHA256: d.BodySHA256, IdempotencyKey: d.IdempotencyKey, Outcome: d.Outcome}, nil
}

// uniqueAudit drops entries whose key came earlier in the batch.
func uniqueAudit(entries []AuditEntry) []AuditEntry {
	seen := make(map[[2]string]bool, len(entries))
	out := entries[:0:0]
	for _, e := range entries {
		k := [2]string{e.Tenant, e.EventID}
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

const auditColumns = "tenant_id, event_id, time, user_id, route, method, status, latency_ms, trace_id, body_sha256, idempotency_key, outcome"

const pgInsertAudit = `INSERT INTO audit_log (` + auditColumns + `)
	SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
		$7::int[], $8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[])
	ON CONFLICT (tenant_id, event_id) DO NOTHING`

// InsertAudit inserts a batch in one implicit transaction, one statement per
// tenant, each scoped to its tenant (pipelined: one round trip); stored keys
// are skipped.
func (p *Postgres) InsertAudit(ctx context.Context, entries []AuditEntry) error {
	entries = uniqueAudit(entries)
	if len(entries) == 0 {
		return nil
	}
	// Tenants in byte order, entries in batch order within a tenant.
	entries = slices.Clone(entries)
	slices.SortStableFunc(entries, func(a, b AuditEntry) int { return strings.Compare(a.Tenant, b.Tenant) })
	b := &pgx.Batch{}
	for from := 0; from < len(entries); {
		to := from + 1
		for to < len(entries) && entries[to].Tenant == entries[from].Tenant {
			to++
		}
		b.Queue(scopeSQL, entries[from].Tenant)
		b.Queue(pgInsertAudit, auditArgs(entries[from:to])...)
		from = to
	}
	br := p.pool.SendBatch(ctx, b)
	for range b.Len() {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return classifyPG(fmt.Errorf("postgres insert audit_log: %w", err))
		}
	}
	if err := br.Close(); err != nil {
		return classifyPG(fmt.Errorf("postgres insert audit_log: %w", err))
	}
	return nil
}

// auditArgs are entries as the twelve column arrays of pgInsertAudit.
func auditArgs(entries []AuditEntry) []any {
	n := len(entries)
	tenants, ids, users, routes, methods := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	traces, hashes, keys, outcomes := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	times, statuses, latencies := make([]time.Time, n), make([]int32, n), make([]int64, n)
	for i, e := range entries {
		tenants[i], ids[i], times[i], users[i], routes[i], methods[i] = e.Tenant, e.EventID, e.Time, e.User, e.Route, e.Method
		statuses[i], latencies[i], traces[i], hashes[i], keys[i], outcomes[i] = int32(e.Status), e.LatencyMS, e.TraceID, e.BodySHA256, e.IdempotencyKey, e.Outcome
	}
	return []any{tenants, ids, times, users, routes, methods, statuses, latencies, traces, hashes, keys, outcomes}
}

// InsertAudit inserts a batch in one transaction on the writer; stored keys
// are skipped.
func (d *DuckDB) InsertAudit(ctx context.Context, entries []AuditEntry) (err error) {
	entries = uniqueAudit(entries)
	if len(entries) == 0 {
		return nil
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO audit_log (" + auditColumns + ") VALUES ")
	args := make([]any, 0, 12*len(entries))
	for i, e := range entries {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for j := range 12 {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("$" + strconv.Itoa(len(args)+j+1))
		}
		sb.WriteByte(')')
		args = append(args, e.Tenant, e.EventID, e.Time, e.User, e.Route, e.Method, e.Status, e.LatencyMS,
			e.TraceID, e.BodySHA256, e.IdempotencyKey, e.Outcome)
	}
	sb.WriteString(" ON CONFLICT (tenant_id, event_id) DO NOTHING")
	d.write.Lock()
	defer d.write.Unlock()
	if d.w == nil {
		return errors.New("duckdb: store is closed")
	}
	if _, err := d.w.ExecContext(ctx, sb.String(), args...); err != nil {
		return classifyDuck(fmt.Errorf("duckdb insert audit_log: %w", err))
	}
	return nil
}

// AuditLog returns a tenant's audit entries newest first, at most limit
// (1..1000), below the cursor before ("" for the first page), and the
// cursor of the next page ("" at the end). A cursor that is not one this
// store gave is a *canonical.FieldError.
func (p *Postgres) AuditLog(ctx context.Context, tenant string, limit int, before string) ([]map[string]any, string, error) {
	q, args, err := auditQuery(tenant, limit, before)
	if err != nil {
		return nil, "", err
	}
	var out []map[string]any
	var next string
	err = p.scoped(ctx, tenant, func(b *pgx.Batch) { b.Queue(q, args...) }, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		if out, next, err = readAudit(rows.Scan, rows.Next, limit); err != nil {
			return err
		}
		return rows.Err()
	})
	if err != nil {
		return nil, "", fmt.Errorf("postgres audit_log: %w", err)
	}
	return out, next, nil
}

// AuditLog is the DuckDB store's audit log; see (*Postgres).AuditLog.
func (d *DuckDB) AuditLog(ctx context.Context, tenant string, limit int, before string) ([]map[string]any, string, error) {
	q, args, err := auditQuery(tenant, limit, before)
	if err != nil {
		return nil, "", err
	}
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("duckdb audit_log: %w", err)
	}
	defer rows.Close()
	out, next, err := readAudit(rows.Scan, rows.Next, limit)
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return nil, "", fmt.Errorf("duckdb audit_log: %w", err)
	}
	return out, next, nil
}

func auditQuery(tenant string, limit int, before string) (string, []any, error) {
	if limit < 1 || limit > 1000 {
		return "", nil, &canonical.FieldError{Field: "limit", Reason: fmt.Sprintf("want 1 to 1000, got %d", limit)}
	}
	q := "SELECT " + auditColumns + " FROM audit_log WHERE tenant_id = $1"
	args := []any{tenant}
	if before != "" {
		t, id, err := decodeAuditCursor(before)
		if err != nil {
			return "", nil, err
		}
		q += " AND (time < $2 OR (time = $2 AND event_id < $3))"
		args = append(args, t, id)
	}
	q += " ORDER BY time DESC, event_id DESC LIMIT " + strconv.Itoa(limit+1)
	return q, args, nil
}

func readAudit(scan func(...any) error, next func() bool, limit int) ([]map[string]any, string, error) {
	out := []map[string]any{}
	var last AuditEntry
	for next() {
		if len(out) == limit {
			return out, encodeAuditCursor(last.Time, last.EventID), nil
		}
		var e AuditEntry
		var status int32
		if err := scan(&e.Tenant, &e.EventID, &e.Time, &e.User, &e.Route, &e.Method, &status, &e.LatencyMS,
			&e.TraceID, &e.BodySHA256, &e.IdempotencyKey, &e.Outcome); err != nil {
			return nil, "", err
		}
		e.Status = int(status)
		last = e
		out = append(out, map[string]any{
			"tenant_id": e.Tenant, "event_id": e.EventID, "time": e.Time.UTC().Format(time.RFC3339Nano),
			"user_id": e.User, "route": e.Route, "method": e.Method, "status": e.Status, "latency_ms": e.LatencyMS,
			"trace_id": e.TraceID, "body_sha256": e.BodySHA256, "idempotency_key": e.IdempotencyKey, "outcome": e.Outcome,
		})
	}
	return out, "", nil
}

// An audit cursor is base64url("<unix microseconds>:<event id>") of the
// last entry of a page.
func encodeAuditCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixMicro(), 10) + ":" + id))
}

func decodeAuditCursor(s string) (time.Time, string, error) {
	bad := &canonical.FieldError{Field: "cursor", Reason: "not a cursor of this list (use next_cursor of the previous page)"}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", bad
	}
	us, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", bad
	}
	return time.UnixMicro(n).UTC(), id, nil
}
