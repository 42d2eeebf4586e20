package agents

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/streams"
)

// rawReader is what previews read RAW through.
type rawReader = jetstream.JetStream

// Preview limits.
const (
	DefaultPreviewRecords = 20
	MaxPreviewRecords     = 200
)

// PreviewRequest is a draft mapping to try.
type PreviewRequest struct {
	System string               `json:"system"`
	Spec   canonical.ObjectSpec `json:"spec"`
	// Rows are sample source records; when empty, the last Last raw records
	// of the tenant's system and object are read from RAW.
	Rows []map[string]any `json:"rows,omitempty"`
	// Last is how many raw records to read (default DefaultPreviewRecords,
	// at most MaxPreviewRecords).
	Last int `json:"last,omitempty"`
}

// PreviewRow is one source record through the draft.
type PreviewRow struct {
	Source map[string]any     `json:"source"`
	Seq    uint64             `json:"stream_seq,omitempty"` // RAW sequence, for raw records
	Event  json.RawMessage    `json:"event,omitempty"`      // the canonical event that would be published
	Errors []streams.RowError `json:"errors,omitempty"`
	Op     canonical.Op       `json:"op,omitempty"`
}

// PreviewResult is the draft applied to every row. Nothing is published.
type PreviewResult struct {
	System string       `json:"system"`
	Object string       `json:"object"`
	Entity string       `json:"entity"`
	Mapped int          `json:"mapped"`
	Failed int          `json:"failed"`
	Rows   []PreviewRow `json:"rows"`
}

// Preview applies a draft mapping to sample rows or the last raw records,
// showing each canonical event and each record's errors, publishing
// nothing. A draft that does not compile is a *canonical.FieldError
// (field "spec").
func (s *Service) Preview(ctx context.Context, tenant string, req PreviewRequest) (*PreviewResult, error) {
	if !streams.ValidToken(tenant) {
		return nil, streams.ErrNotFound
	}
	if !streams.ValidToken(req.System) {
		return nil, &canonical.FieldError{Field: "system", Reason: fmt.Sprintf("invalid system %q", req.System)}
	}
	m, err := canonical.Compile(req.System, req.Spec)
	if err != nil {
		return nil, &canonical.FieldError{Field: "spec", Reason: err.Error()}
	}
	if len(req.Rows) > MaxPreviewRecords {
		return nil, &canonical.FieldError{Field: "rows", Reason: fmt.Sprintf("at most %d rows", MaxPreviewRecords)}
	}
	res := &PreviewResult{System: req.System, Object: req.Spec.Object, Entity: string(req.Spec.Entity), Rows: []PreviewRow{}}
	type src struct {
		values map[string]any
		seq    uint64
		conn   string
	}
	var rows []src
	if len(req.Rows) > 0 {
		for _, r := range req.Rows {
			rows = append(rows, src{values: r, conn: "preview"})
		}
	} else {
		n := req.Last
		if n <= 0 {
			n = DefaultPreviewRecords
		}
		n = min(n, MaxPreviewRecords)
		msgs, err := lastRaw(ctx, s.js, tenant, req.System, req.Spec.Object, n)
		if err != nil {
			return nil, err
		}
		for _, rm := range msgs {
			v, err := drift.DecodeRecord(rm.Data)
			if err != nil {
				continue
			}
			conn := rm.Header.Get(drift.HeaderConnection)
			if conn == "" {
				conn = "preview"
			}
			rows = append(rows, src{values: v, seq: rm.Sequence, conn: conn})
		}
	}
	for i, r := range rows {
		em := connectors.Emitter{Tenant: tenant, System: req.System, ConnectionID: r.conn, Mapping: m, Now: s.now}
		row := PreviewRow{Source: r.values, Seq: r.seq}
		ev, errs := em.Event(i+1, r.values)
		if len(errs) > 0 {
			row.Errors = errs
			res.Failed++
		} else {
			b, err := ev.MarshalJSON()
			if err != nil {
				row.Errors = []streams.RowError{{Line: i + 1, Reason: err.Error()}}
				res.Failed++
			} else {
				row.Event, row.Op = b, ev.Op
				res.Mapped++
			}
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

// lastRaw reads the last n raw records of a tenant's system and object,
// oldest first. It reads backwards in growing windows of stream sequences,
// so a long stream is not read from its start.
func lastRaw(ctx context.Context, js jetstream.JetStream, tenant, system, object string, n int) ([]*jetstream.RawStreamMsg, error) {
	subj, err := streams.RawSubject(tenant, system, object)
	if err != nil {
		return nil, &canonical.FieldError{Field: "spec.object", Reason: err.Error()}
	}
	last, err := lastRawSeq(ctx, js, subj)
	if err != nil || last == 0 {
		return []*jetstream.RawStreamMsg{}, err
	}
	window := uint64(n) * 4
	for {
		start := uint64(1)
		if last > window {
			start = last - window + 1
		}
		var msgs []*jetstream.RawStreamMsg
		err := scanRaw(ctx, js, subj, start, last, func(msg jetstream.Msg, seq uint64) error {
			meta, _ := msg.Metadata()
			msgs = append(msgs, &jetstream.RawStreamMsg{Subject: msg.Subject(), Sequence: seq, Header: msg.Headers(), Data: msg.Data(), Time: meta.Timestamp})
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(msgs) >= n || start == 1 {
			if len(msgs) > n {
				msgs = msgs[len(msgs)-n:]
			}
			return msgs, nil
		}
		window *= 4
	}
}
