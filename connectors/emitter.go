package connectors

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// Emitter turns source records of one mapping into RAW and CANONICAL
// messages. It is a value; use it from one goroutine or copy it.
type Emitter struct {
	Tenant       string
	System       string
	ConnectionID string
	TraceID      string
	// Traceparent is the W3C traceparent of the span that maps the
	// records; every event and raw message carries it ("" for none).
	Traceparent string
	Mapping     *canonical.Mapping
	// Now stamps records whose source carries no version (default time.Now).
	Now func() time.Time
	// ContentIDs qualifies each upsert's event id by a hash of the record's
	// content: a reconciliation re-reads records whose content may have
	// changed under an unchanged version, and such an event must not be
	// taken for a duplicate of the one published before.
	ContentIDs bool
}

// Messages maps one source record (line is its position in the input, for
// errors; 0 when it has none). It returns the raw message (always, when the
// record can be encoded), the canonical event message (nil when the record is
// bad) and the record's errors.
func (s Emitter) Messages(line int, values map[string]any) (*nats.Msg, *nats.Msg, []streams.RowError) {
	return s.messages(line, values, false)
}

// DeleteMessages is Messages for a record the source reports as deleted
// (only its id, and its version when known, are read).
func (s Emitter) DeleteMessages(line int, values map[string]any) (*nats.Msg, *nats.Msg, []streams.RowError) {
	return s.messages(line, values, true)
}

func (s Emitter) messages(line int, values map[string]any, deleted bool) (*nats.Msg, *nats.Msg, []streams.RowError) {
	rawMsg, err := s.RawMsg(values)
	if err != nil {
		return nil, nil, []streams.RowError{{Line: line, Reason: err.Error()}}
	}
	var ev *canonical.Event
	var errs []streams.RowError
	if deleted {
		ev, errs = s.deleteEvent(line, values)
	} else {
		ev, errs = s.Event(line, values)
	}
	if len(errs) > 0 {
		return rawMsg, nil, errs
	}
	m, err := streams.EventMsg(ev)
	if err != nil {
		return rawMsg, nil, []streams.RowError{{Line: line, Reason: err.Error()}}
	}
	return rawMsg, m, nil
}

// Event maps one source record to its canonical event.
func (s Emitter) Event(line int, values map[string]any) (*canonical.Event, []streams.RowError) {
	res, err := s.Mapping.Apply(values)
	if err != nil {
		var out []streams.RowError
		for _, e := range flatten(err) {
			var fe *canonical.FieldError
			if errors.As(e, &fe) {
				col := fe.Source
				if col == "" {
					col = fe.Field
				}
				out = append(out, streams.RowError{Line: line, Column: col, Reason: fe.Error()})
			} else {
				out = append(out, streams.RowError{Line: line, Reason: e.Error()})
			}
		}
		return nil, out
	}
	t := res.Time
	if t.IsZero() {
		t = s.now()
	}
	ent := s.Mapping.Entity()
	version := res.Version
	if s.ContentIDs {
		b, err := json.Marshal(res.Record)
		if err != nil {
			return nil, []streams.RowError{{Line: line, Reason: err.Error()}}
		}
		sum := sha256.Sum256(b)
		version += "#" + hex.EncodeToString(sum[:8])
	}
	ev := &canonical.Event{
		ID:             canonical.EventID(s.Tenant, s.System, ent, res.Record.Key(), version, res.Op),
		Tenant:         s.Tenant,
		Op:             res.Op,
		ConnectionID:   s.ConnectionID,
		SourceSystem:   s.System,
		SourceObject:   s.Mapping.Object(),
		Time:           t.UTC(),
		TraceID:        s.TraceID,
		Traceparent:    s.Traceparent,
		MappingVersion: s.Mapping.Version,
		Record:         res.Record,
	}
	return ev, nil
}

func (s Emitter) deleteEvent(line int, values map[string]any) (*canonical.Event, []streams.RowError) {
	ent := s.Mapping.Entity()
	id := s.sourceKey(values)
	if id == "" {
		return nil, []streams.RowError{{Line: line, Column: ent.KeyField(), Reason: "a deleted record without its id"}}
	}
	rec, _ := canonical.NewRecord(ent)
	_ = rec.Set(ent.KeyField(), id)
	version := "deleted"
	t := time.Time{}
	if vf := s.Mapping.Spec.VersionField; vf != "" {
		if v, ok := values[vf].(string); ok && v != "" {
			version = v
			if res, err := s.Mapping.ParseVersion(v); err == nil {
				t = res
			}
		}
	}
	if t.IsZero() {
		t = s.now()
	}
	return &canonical.Event{
		ID:     canonical.EventID(s.Tenant, s.System, ent, id, version, canonical.OpDelete),
		Tenant: s.Tenant, Op: canonical.OpDelete, ConnectionID: s.ConnectionID, SourceSystem: s.System,
		SourceObject: s.Mapping.Object(), Time: t.UTC(), TraceID: s.TraceID, Traceparent: s.Traceparent,
		MappingVersion: s.Mapping.Version, Record: rec,
	}, nil
}

// sourceKey is the record's id as the source spells it: the value of the
// source field the mapping maps to the entity's key ("" when absent).
func (s Emitter) sourceKey(values map[string]any) string {
	key := s.Mapping.Entity().KeyField()
	var id string
	for _, f := range s.Mapping.Spec.Fields {
		if f.Target == key && f.Source != "" {
			if v, ok := values[f.Source].(string); ok {
				id = v
			}
		}
	}
	return id
}

func (s Emitter) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// RawMsg encodes a source record for the RAW stream.
func (s Emitter) RawMsg(values map[string]any) (*nats.Msg, error) {
	subj, err := streams.RawSubject(s.Tenant, s.System, s.Mapping.Object())
	if err != nil {
		return nil, err
	}
	b, err := canonical.MarshalJSONObject(values)
	if err != nil {
		return nil, fmt.Errorf("encode raw record: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(subj))
	h.Write([]byte{0})
	h.Write(b)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	m := nats.NewMsg(subj)
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, hex.EncodeToString(sum[:16]))
	m.Header.Set(streams.HeaderContentType, "application/json")
	m.Header.Set(streams.HeaderTenant, s.Tenant)
	m.Header.Set("Autonomos-Connection", s.ConnectionID)
	if s.Traceparent != "" {
		m.Header.Set(streams.HeaderTraceparent, s.Traceparent)
	} else if tp := streams.Traceparent(s.TraceID); tp != "" {
		m.Header.Set(streams.HeaderTraceparent, tp)
	}
	return m, nil
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
