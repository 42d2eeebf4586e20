package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/agents"
	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/streams"
)

// ontologyService adapts the mappings, the agents' mapping versions and
// fingerprints, the connection registry and RAW to the gateway's
// OntologyService.
type ontologyService struct {
	js       jetstream.JetStream
	mappings *connectors.Mappings
	agents   *agents.Service
	fps      *drift.Fingerprints
	conns    *connectors.Connections // nil without connectors: preview knows filesource only
}

var _ gateway.OntologyService = ontologyService{}

func (o ontologyService) Sources(ctx context.Context, tenant string) (map[canonical.Entity][]gateway.OntologySource, error) {
	objs, err := o.agents.MappingObjects(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := map[canonical.Entity][]gateway.OntologySource{}
	for _, obj := range objs {
		m, err := o.mappings.Get(ctx, tenant, obj.System, obj.Object)
		if err != nil {
			return nil, err
		}
		src := gateway.OntologySource{System: m.System, Object: m.Object(), MappingVersion: max(m.Version, 1), Fields: []gateway.OntologyFieldFeed{}}
		for _, f := range m.Spec.Fields {
			tr := f.Transforms
			if tr == nil {
				tr = []canonical.Transform{}
			}
			src.Fields = append(src.Fields, gateway.OntologyFieldFeed{Target: f.Target, Source: f.Source, Sources: f.Sources,
				Constant: f.Constant, Default: f.Default, Transforms: tr})
		}
		out[m.Entity()] = append(out[m.Entity()], src)
	}
	return out, nil
}

// SourceField is one observed source field.
type SourceField struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Values  int64    `json:"values"` // non-empty values seen
	Samples []string `json:"samples,omitempty"`
}

// SourceSchema is the observed schema of one connection's source object.
type SourceSchema struct {
	ConnectionID string        `json:"connection_id"`
	System       string        `json:"system"`
	Object       string        `json:"object"`
	Version      int           `json:"version"`
	Records      int64         `json:"records"`
	Fields       []SourceField `json:"fields"`
	UpdatedAt    time.Time     `json:"updated_at"`
}

func (o ontologyService) SourceSchemas(ctx context.Context, tenant string) (any, error) {
	out := []SourceSchema{}
	if !streams.ValidToken(tenant) {
		return out, nil
	}
	fps, err := o.fps.List(ctx, tenant)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, err
	}
	for _, fp := range fps {
		if fp.Tenant != tenant {
			continue
		}
		sc := SourceSchema{ConnectionID: fp.Connection, System: fp.System, Object: fp.Object, Version: fp.Version,
			Records: fp.Records, Fields: []SourceField{}, UpdatedAt: fp.UpdatedAt}
		for _, name := range fp.Names() {
			st := fp.Fields[name]
			sc.Fields = append(sc.Fields, SourceField{Name: name, Type: fmt.Sprint(st.Type()), Values: st.Values, Samples: st.Samples})
		}
		out = append(out, sc)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].ConnectionID != out[b].ConnectionID {
			return out[a].ConnectionID < out[b].ConnectionID
		}
		return out[a].Object < out[b].Object
	})
	return out, nil
}

// PreviewRecord is one raw record beside its canonical form.
type PreviewRecord struct {
	Seq       uint64             `json:"stream_seq"`
	Time      time.Time          `json:"time"`
	Raw       map[string]any     `json:"raw"`
	Canonical json.RawMessage    `json:"canonical,omitempty"`
	Errors    []streams.RowError `json:"errors,omitempty"`
}

// Preview reads the last limit raw records of a connection's object (RAW
// raw.<tenant>.<system>.<object>, those carrying the connection) and maps
// each through the tenant's current mapping. It publishes nothing.
func (o ontologyService) Preview(ctx context.Context, tenant, connection, object string, limit int) (any, error) {
	system := "filesource"
	if connection != "filesource" {
		if o.conns == nil {
			return nil, streams.ErrNotFound
		}
		c, err := o.conns.Get(ctx, tenant, connection)
		if err != nil {
			return nil, err
		}
		system = c.System
	}
	subj, err := streams.RawSubject(tenant, system, object)
	if err != nil {
		return nil, &canonical.FieldError{Field: "object", Reason: err.Error()}
	}
	m, err := o.mappings.Get(ctx, tenant, system, object)
	if err != nil {
		return nil, &canonical.FieldError{Field: "object", Reason: err.Error()}
	}
	msgs, err := lastRawOf(ctx, o.js, subj, connection, limit)
	if err != nil {
		return nil, err
	}
	em := connectors.Emitter{Tenant: tenant, System: system, ConnectionID: connection, Mapping: m}
	recs := []PreviewRecord{}
	for i := len(msgs) - 1; i >= 0; i-- { // newest first
		rm := msgs[i]
		v, err := drift.DecodeRecord(rm.Data)
		if err != nil {
			continue
		}
		pr := PreviewRecord{Seq: rm.Sequence, Time: rm.Time, Raw: v}
		if ev, errs := em.Event(0, v); len(errs) > 0 {
			pr.Errors = errs
		} else if b, err := ev.MarshalJSON(); err != nil {
			pr.Errors = []streams.RowError{{Reason: err.Error()}}
		} else {
			pr.Canonical = b
		}
		recs = append(recs, pr)
	}
	return map[string]any{"connection_id": connection, "system": system, "object": object, "entity": m.Entity(),
		"mapping_version": max(m.Version, 1), "records": recs}, nil
}

// lastRawOf returns up to n of the newest messages of subj in RAW carrying
// the connection (drift.HeaderConnection), oldest first. It reads backwards
// in growing windows.
func lastRawOf(ctx context.Context, js jetstream.JetStream, subj, connection string, n int) ([]*jetstream.RawStreamMsg, error) {
	st, err := js.Stream(ctx, streams.StreamRaw)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", streams.StreamRaw, err)
	}
	last, err := st.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("last of %s: %w", subj, err)
	}
	end := last.Sequence
	var out []*jetstream.RawStreamMsg
	window := uint64(max(4*n, 256))
	for round := 0; len(out) < n && end > 0 && round < 10; round++ {
		start := uint64(1)
		if end > window {
			start = end - window + 1
		}
		got, err := readRaw(ctx, js, subj, start, end)
		if err != nil {
			return nil, err
		}
		var keep []*jetstream.RawStreamMsg
		for _, m := range got {
			if m.Header.Get(drift.HeaderConnection) == connection {
				keep = append(keep, m)
			}
		}
		out = append(keep, out...)
		end = start - 1
		window *= 4
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

// readRaw reads subj's RAW messages with sequences from start to end.
func readRaw(ctx context.Context, js jetstream.JetStream, subj string, start, end uint64) ([]*jetstream.RawStreamMsg, error) {
	oc, err := js.OrderedConsumer(ctx, streams.StreamRaw, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start, InactiveThreshold: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", subj, err)
	}
	var out []*jetstream.RawStreamMsg
	for {
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second))
		cancel()
		_ = nctx
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				return out, nil
			}
			return nil, fmt.Errorf("read %s: %w", subj, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, err
		}
		if md.Sequence.Stream > end {
			return out, nil
		}
		out = append(out, &jetstream.RawStreamMsg{Subject: m.Subject(), Sequence: md.Sequence.Stream, Header: m.Headers(), Data: m.Data(), Time: md.Timestamp})
		if md.NumPending == 0 || md.Sequence.Stream == end {
			return out, nil
		}
	}
}
