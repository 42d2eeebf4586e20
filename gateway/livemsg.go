package gateway

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// Types of the live messages (WebSocket frames, recent events, AAM events).
const (
	MsgRecordUpserted   = "record.upserted"
	MsgRecordDeleted    = "record.deleted"
	MsgDLQAdded         = "dlq.added"
	MsgStats            = "stats"
	MsgResync           = "resync"
	MsgJobUpdated       = "job.updated"
	MsgConnectionStatus = "connection.status"
)

// RecordMessage is a canonical event as the dashboard sees it: the
// envelope's attributes, never the record's data. Seq is the event's
// CANONICAL stream sequence, the token a WebSocket client resumes from
// (?since=); no other message carries a "seq".
type RecordMessage struct {
	Type           string `json:"type"` // record.upserted or record.deleted
	Seq            uint64 `json:"seq"`
	Entity         string `json:"entity"`
	ID             string `json:"id"` // the record's canonical id (the CloudEvent subject)
	EventID        string `json:"event_id"`
	SourceSystem   string `json:"source_system"`
	SourceObject   string `json:"source_object,omitempty"`
	ConnectionID   string `json:"connection_id,omitempty"`
	TraceID        string `json:"trace_id,omitempty"`
	Time           string `json:"time"` // the source version's time, RFC 3339
	MappingVersion int    `json:"mapping_version"`
	// ChangedFields names the fields that differ from the version of the
	// record this gateway instance delivered before (top-level fields, and
	// extras keys as "extras.<key>"), sorted. null when that version is not
	// known here — the record's first version, one that changed while the
	// tenant had no live client, or a replayed event — never a guess; [] when
	// the new version equals the old one.
	ChangedFields []string `json:"changed_fields"`

	data json.RawMessage // the record, for the change tracker
}

// DLQMessage is a dead letter as the dashboard sees it, read from the DLQ
// headers only. DLQSeq is its DLQ stream sequence (the handle for
// inspection and redrive); Sequence is the failed message's own sequence
// in its stream, when it had one.
type DLQMessage struct {
	Type     string `json:"type"` // dlq.added
	DLQSeq   uint64 `json:"dlq_seq"`
	Stage    string `json:"stage"`
	Reason   string `json:"reason"`
	Subject  string `json:"subject,omitempty"`
	Sequence uint64 `json:"sequence,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	TraceID  string `json:"trace_id,omitempty"`
	Time     string `json:"time"`
}

// DriftMessage is a DRIFT stream event as the dashboard sees it.
type DriftMessage struct {
	Type         string `json:"type"` // drift.detected, drift.repair.applied, ...
	DriftSeq     uint64 `json:"drift_seq"`
	FindingID    string `json:"finding_id,omitempty"`
	ConnectionID string `json:"connection_id,omitempty"`
	System       string `json:"system,omitempty"`
	Object       string `json:"object,omitempty"`
	Entity       string `json:"entity,omitempty"`
	Severity     string `json:"severity,omitempty"`
	Time         string `json:"time"`
}

// ceLite is the part of a structured-mode canonical CloudEvent the live
// view reads; data is skipped without being decoded.
type ceLite struct {
	ID             string          `json:"id"`
	Source         string          `json:"source"`
	Type           string          `json:"type"`
	Subject        string          `json:"subject"`
	Time           string          `json:"time"`
	Tenant         string          `json:"tenantid"`
	TraceID        string          `json:"traceid"`
	SourceSystem   string          `json:"sourcesystem"`
	SourceObject   string          `json:"sourceobject"`
	MappingVersion json.RawMessage `json:"mappingversion"`
	Data           json.RawMessage `json:"data"`
}

// subjectTokens splits a subject of the form <prefix>.<tenant>.<rest...>
// and returns the tenant and the first token after it. It is the one place
// the gateway reads tokens out of a subject (streams builds them).
func subjectTokens(subject, prefix string) (tenant, next string, ok bool) {
	rest, found := strings.CutPrefix(subject, prefix+".")
	if !found {
		return "", "", false
	}
	tenant, rest, _ = strings.Cut(rest, ".")
	next, _, _ = strings.Cut(rest, ".")
	if !streams.ValidToken(tenant) {
		return "", "", false
	}
	return tenant, next, true
}

// parseRecord turns a CANONICAL message into a RecordMessage and its
// tenant. The tenant is the subject's; an event whose tenantid disagrees
// with its subject, or whose type does not name the subject's entity, is
// refused (it never reaches a client).
func parseRecord(subject string, seq uint64, data []byte) (RecordMessage, string, error) {
	tenant, entity, ok := subjectTokens(subject, "canonical")
	if !ok || entity == "" {
		return RecordMessage{}, "", fmt.Errorf("subject %q is not canonical.<tenant>.<entity>", subject)
	}
	ce, err := scanCloudEvent(data)
	if err != nil {
		return RecordMessage{}, "", fmt.Errorf("seq %d: not a CloudEvent: %w", seq, err)
	}
	if ce.Tenant != tenant {
		return RecordMessage{}, "", fmt.Errorf("seq %d: tenantid %q differs from the subject's tenant %q", seq, ce.Tenant, tenant)
	}
	rest, ok := strings.CutPrefix(ce.Type, canonical.TypePrefix+entity+".")
	var typ string
	switch {
	case ok && rest == string(canonical.OpUpsert):
		typ = MsgRecordUpserted
	case ok && rest == string(canonical.OpDelete):
		typ = MsgRecordDeleted
	default:
		return RecordMessage{}, "", fmt.Errorf("seq %d: type %q does not fit subject %q", seq, ce.Type, subject)
	}
	return RecordMessage{
		Type: typ, Seq: seq, Entity: entity, ID: ce.Subject, EventID: ce.ID,
		SourceSystem: ce.SourceSystem, SourceObject: ce.SourceObject,
		ConnectionID: strings.TrimPrefix(ce.Source, "/connections/"),
		TraceID:      ce.TraceID, Time: ce.Time, MappingVersion: ce.MappingVersion, data: ce.Data,
	}, tenant, nil
}

// scanCloudEvent reads the attributes the live view forwards: in one pass
// with canonical.ScanAttributes (no copy of the record), else through
// encoding/json.
func scanCloudEvent(data []byte) (canonical.Attributes, error) {
	if a, ok := canonical.ScanAttributes(data); ok {
		return a, nil
	}
	var ce ceLite
	if err := json.Unmarshal(data, &ce); err != nil {
		return canonical.Attributes{}, err
	}
	mv, _ := strconv.Atoi(strings.Trim(string(ce.MappingVersion), `"`))
	return canonical.Attributes{
		ID: ce.ID, Source: ce.Source, Type: ce.Type, Subject: ce.Subject, Time: ce.Time, Tenant: ce.Tenant,
		TraceID: ce.TraceID, SourceSystem: ce.SourceSystem, SourceObject: ce.SourceObject, MappingVersion: mv, Data: ce.Data,
	}, nil
}

// parseDLQ reads a DLQ message's headers (the body is not needed).
func parseDLQ(subject string, seq uint64, h nats.Header, stored time.Time) (DLQMessage, string, error) {
	tenant, stage, ok := subjectTokens(subject, "dlq")
	if !ok {
		return DLQMessage{}, "", fmt.Errorf("subject %q is not dlq.<tenant>.<stage>", subject)
	}
	if t := h.Get(streams.HeaderTenant); t != "" && t != tenant {
		return DLQMessage{}, "", fmt.Errorf("dlq seq %d: tenant header %q differs from the subject's %q", seq, t, tenant)
	}
	m := DLQMessage{Type: MsgDLQAdded, DLQSeq: seq, Stage: stage, Reason: h.Get(streams.HeaderDLQReason),
		Subject: h.Get(streams.HeaderDLQSubject), TraceID: h.Get(streams.HeaderDLQTrace), Time: h.Get(streams.HeaderDLQTime)}
	if s := h.Get(streams.HeaderDLQStage); s != "" {
		m.Stage = s
	}
	m.Sequence, _ = strconv.ParseUint(h.Get(streams.HeaderDLQSequence), 10, 64)
	m.Attempts, _ = strconv.Atoi(h.Get(streams.HeaderDLQAttempts))
	if m.Time == "" && !stored.IsZero() {
		m.Time = stored.UTC().Format(time.RFC3339Nano)
	}
	return m, tenant, nil
}

// driftLite is the part of a DRIFT event the live view reads.
type driftLite struct {
	Type         string    `json:"type"`
	FindingID    string    `json:"finding_id"`
	Tenant       string    `json:"tenant_id"`
	ConnectionID string    `json:"connection_id"`
	System       string    `json:"system"`
	Object       string    `json:"object"`
	Entity       string    `json:"entity"`
	Severity     string    `json:"severity"`
	Time         time.Time `json:"time"`
}

// parseDrift reads a DRIFT message.
func parseDrift(subject string, seq uint64, data []byte, stored time.Time) (DriftMessage, string, error) {
	tenant, _, ok := subjectTokens(subject, "drift")
	if !ok {
		return DriftMessage{}, "", fmt.Errorf("subject %q is not drift.<tenant>.<connection>", subject)
	}
	var d driftLite
	if err := json.Unmarshal(data, &d); err != nil {
		return DriftMessage{}, "", fmt.Errorf("drift seq %d: %w", seq, err)
	}
	if d.Tenant != "" && d.Tenant != tenant {
		return DriftMessage{}, "", fmt.Errorf("drift seq %d: tenant_id %q differs from the subject's %q", seq, d.Tenant, tenant)
	}
	if !strings.HasPrefix(d.Type, "drift.") {
		return DriftMessage{}, "", fmt.Errorf("drift seq %d: type %q", seq, d.Type)
	}
	t := d.Time
	if t.IsZero() {
		t = stored
	}
	return DriftMessage{Type: d.Type, DriftSeq: seq, FindingID: d.FindingID, ConnectionID: d.ConnectionID,
		System: d.System, Object: d.Object, Entity: d.Entity, Severity: d.Severity,
		Time: t.UTC().Format(time.RFC3339Nano)}, tenant, nil
}

// maxLiveBytes bounds a live.<tenant>.<kind> notification forwarded.
const maxLiveBytes = 256 << 10

// parseLive checks a core-NATS notification on live.<tenant>.<kind> and
// re-encodes it for clients: it must be a JSON object with a string
// "type"; a "seq" field of its own is renamed <kind>_seq (only canonical
// sequences are called seq on the wire); a job must be the subject
// tenant's.
func parseLive(subject string, data []byte) ([]byte, string, error) {
	tenant, kind, ok := subjectTokens(subject, "live")
	if !ok || kind == "" {
		return nil, "", fmt.Errorf("subject %q is not live.<tenant>.<kind>", subject)
	}
	if len(data) > maxLiveBytes {
		return nil, "", fmt.Errorf("%s: %d bytes is more than %d", subject, len(data), maxLiveBytes)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, "", fmt.Errorf("%s: not a JSON object: %w", subject, err)
	}
	var typ string
	if err := json.Unmarshal(m["type"], &typ); err != nil || typ == "" {
		return nil, "", fmt.Errorf("%s: no type", subject)
	}
	if job, ok := m["job"]; ok {
		var j struct {
			Tenant string `json:"tenant_id"`
		}
		if err := json.Unmarshal(job, &j); err != nil || j.Tenant != tenant {
			return nil, "", fmt.Errorf("%s: job of tenant %q", subject, j.Tenant)
		}
	}
	if seq, ok := m["seq"]; ok {
		delete(m, "seq")
		m[kind+"_seq"] = seq
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, "", err
	}
	return b, tenant, nil
}
