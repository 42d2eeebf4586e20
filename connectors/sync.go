package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/telemetry"
)

// Runner syncs a connection: for each object it fetches pages after the
// stored cursor, publishes each record to RAW and CANONICAL, waits for every
// ack of the page, and only then stores the page's cursor. A crash between
// publish and checkpoint re-fetches the page; its event ids are the same, so
// JetStream drops the copies. It is safe for concurrent use on different
// connections.
//
// Each page is traced as three spans, children of the span in the context
// Sync is given (none when it has none): fetch (the page from the source),
// map (its records into events) and publish (to RAW and CANONICAL, until
// every ack is in). Every event carries the map span's context in its
// traceparent extension, so the subscribers' spans join the same trace.
type Runner struct {
	pub      *streams.Publisher
	cursors  jetstream.KeyValue
	mappings *Mappings
	log      *slog.Logger

	// Snapshots keeps the ids each full read found (streams.ObjectsReconcile).
	// nil: full reads keep none, and Reconcile cannot find deleted records,
	// so it refuses to run.
	Snapshots jetstream.ObjectStore
	// Now is the clock of the deletes Reconcile emits (default time.Now).
	Now func() time.Time
}

// NewRunner returns a runner.
func NewRunner(pub *streams.Publisher, cursors jetstream.KeyValue, mappings *Mappings, log *slog.Logger) *Runner {
	return &Runner{pub: pub, cursors: cursors, mappings: mappings, log: log.With("component", "sync")}
}

// SyncStats counts one sync.
type SyncStats struct {
	RowsRead  int64               `json:"rows_read"`
	Published int64               `json:"published"`
	Rejected  int64               `json:"rejected"`
	Deleted   int64               `json:"deleted"`
	Pages     int64               `json:"pages"`
	Errors    []streams.RowError  `json:"errors"`
	Objects   map[string]ObjStats `json:"objects"`
}

// ObjStats counts one object of a sync.
type ObjStats struct {
	RowsRead  int64 `json:"rows_read"`
	Published int64 `json:"published"`
	Rejected  int64 `json:"rejected"`
	Deleted   int64 `json:"deleted,omitempty"`
}

// CursorKey is the cursors-bucket key of a connection's object.
func CursorKey(tenant, connection, object string) string {
	return tenant + "." + connection + "." + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, object)
}

type storedCursor struct {
	Cursor string `json:"cursor"`
}

// Cursor returns the stored cursor of an object ("" when none).
func (r *Runner) Cursor(ctx context.Context, tenant, connection, object string) (string, error) {
	e, err := r.cursors.Get(ctx, CursorKey(tenant, connection, object))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("load cursor: %w", err)
	}
	var c storedCursor
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return "", fmt.Errorf("decode cursor: %w", err)
	}
	return c.Cursor, nil
}

// ResetCursors forgets every cursor of a connection (a full resync follows).
func (r *Runner) ResetCursors(ctx context.Context, tenant, connection string, objects []string) error {
	for _, o := range objects {
		if err := r.cursors.Delete(ctx, CursorKey(tenant, connection, o)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
	}
	return nil
}

// Sync runs one sync of conn through c. progress, if not nil, is called after
// every checkpoint with the running totals.
func (r *Runner) Sync(ctx context.Context, conn Connection, c Connector, traceID string, progress func(SyncStats)) (SyncStats, error) {
	return r.run(ctx, conn, c, traceID, progress, false)
}

func (r *Runner) run(ctx context.Context, conn Connection, c Connector, traceID string, progress func(SyncStats), full bool) (SyncStats, error) {
	st := SyncStats{Errors: []streams.RowError{}, Objects: map[string]ObjStats{}}
	for _, obj := range c.Objects() {
		if err := r.syncObject(ctx, conn, c, obj, traceID, &st, progress, full); err != nil {
			return st, fmt.Errorf("%s %s: %w", conn.System, obj, err)
		}
	}
	return st, nil
}

// syncObject syncs one object from its stored cursor, or from the
// beginning when full. A read from the beginning also collects the ids of
// the records the source has, for reconciliation (see Reconcile).
func (r *Runner) syncObject(ctx context.Context, conn Connection, c Connector, obj, traceID string, st *SyncStats, progress func(SyncStats), full bool) error {
	if traceID == "" {
		traceID = telemetry.TraceID(ctx) // a sync no request asked for has a trace of its own
	}
	m, err := r.mappings.Get(ctx, conn.Tenant, conn.System, obj)
	if err != nil {
		return &PermanentError{err}
	}
	em := Emitter{Tenant: conn.Tenant, System: conn.System, ConnectionID: conn.ID, TraceID: traceID, Mapping: m, ContentIDs: full}
	cursor, err := r.Cursor(ctx, conn.Tenant, conn.ID, obj)
	if err != nil {
		return err
	}
	if full {
		cursor = ""
	}
	var present map[string]struct{} // source ids of a read from the beginning
	if cursor == "" && r.Snapshots != nil {
		present = map[string]struct{}{}
	}
	raw, canon := r.pub.NewBatch(), r.pub.NewBatch()
	os := st.Objects[obj]
	tr := trace.SpanFromContext(ctx).TracerProvider().Tracer(telemetry.Scope)
	objAttrs := trace.WithAttributes(attribute.String("autonomos.system", conn.System), attribute.String("autonomos.object", obj))
	var rawMsgs, evMsgs []*nats.Msg
	for {
		fctx, fetch := tr.Start(ctx, "fetch", objAttrs)
		page, err := c.Fetch(fctx, obj, cursor)
		telemetry.End(fetch, err, attribute.Int("autonomos.records", len(page.Records)))
		if err != nil {
			return err
		}
		st.Pages++
		_, mapping := tr.Start(ctx, "map", objAttrs)
		em.Traceparent = telemetry.Traceparent(mapping.SpanContext())
		rawMsgs, evMsgs = rawMsgs[:0], evMsgs[:0]
		rejected := st.Rejected
		for _, rec := range page.Records {
			st.RowsRead++
			os.RowsRead++
			var rawMsg, evMsg *nats.Msg
			var errs []streams.RowError
			if rec.Deleted {
				rawMsg, evMsg, errs = em.DeleteMessages(0, rec.Values)
			} else {
				rawMsg, evMsg, errs = em.Messages(0, rec.Values)
			}
			if present != nil {
				// A rejected record is still one the source has.
				if k := em.sourceKey(rec.Values); k != "" && !rec.Deleted {
					present[k] = struct{}{}
				} else if k != "" {
					delete(present, k)
				}
			}
			if len(errs) > 0 {
				st.Rejected++
				os.Rejected++
				for _, e := range errs {
					if len(st.Errors) < streams.MaxJobErrors {
						st.Errors = append(st.Errors, e)
					}
				}
				r.deadLetter(ctx, conn, obj, traceID, rec.Values, errs)
			}
			if rawMsg != nil {
				rawMsgs = append(rawMsgs, rawMsg)
			}
			if evMsg != nil {
				if rec.Deleted {
					st.Deleted++
				}
				evMsgs = append(evMsgs, evMsg)
			}
		}
		telemetry.End(mapping, nil, attribute.Int("autonomos.records", len(page.Records)), attribute.Int64("autonomos.rejected", st.Rejected-rejected))
		pctx, publish := tr.Start(ctx, "publish", objAttrs, trace.WithSpanKind(trace.SpanKindProducer))
		n, err := publishPage(pctx, raw, canon, rawMsgs, evMsgs)
		telemetry.End(publish, err, attribute.String("messaging.system", "nats"), attribute.Int("messaging.batch.message_count", len(evMsgs)))
		st.Published += int64(n)
		os.Published += int64(n)
		if err != nil {
			return err
		}
		// Every record of the page is acknowledged: checkpoint.
		if page.Cursor != cursor {
			b, _ := json.Marshal(storedCursor{Cursor: page.Cursor})
			if _, err := r.cursors.Put(ctx, CursorKey(conn.Tenant, conn.ID, obj), b); err != nil {
				return fmt.Errorf("store cursor: %w", err)
			}
			cursor = page.Cursor
		}
		st.Objects[obj] = os
		if progress != nil {
			progress(*st)
		}
		if !page.More {
			if present == nil {
				return nil
			}
			return r.settle(ctx, conn, em, obj, present, full, canon, st, &os)
		}
	}
}

// publishPage sends a page's messages and waits for every ack, RAW's
// first; it returns how many canonical events the stream accepted.
func publishPage(ctx context.Context, raw, canon *streams.Batch, rawMsgs, evMsgs []*nats.Msg) (int, error) {
	for _, m := range rawMsgs {
		if err := raw.Add(m); err != nil {
			return 0, err
		}
	}
	for _, m := range evMsgs {
		if err := canon.Add(m); err != nil {
			return 0, err
		}
	}
	if _, err := raw.Wait(ctx); err != nil {
		return 0, err
	}
	return canon.Wait(ctx)
}

func (r *Runner) deadLetter(ctx context.Context, conn Connection, obj, traceID string, values map[string]any, errs []streams.RowError) {
	body, _ := json.Marshal(map[string]any{"connection_id": conn.ID, "object": obj, "record": values, "errors": errs})
	var reasons []string
	for _, e := range errs {
		reasons = append(reasons, e.Reason)
	}
	err := r.pub.PublishDLQ(ctx, streams.DeadLetter{Tenant: conn.Tenant, Stage: "mapping", Reason: strings.Join(reasons, "; "),
		TraceID: traceID, Data: body, Attempts: 1, Header: nats.Header{"Autonomos-Connection": []string{conn.ID}, "Autonomos-Object": []string{obj}}})
	if err != nil {
		r.log.Warn("dead-letter a bad record", "connection_id", conn.ID, "object", obj, "error", err)
	}
}
