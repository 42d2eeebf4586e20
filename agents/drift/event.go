package drift

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/streams"
)

// Event types on the DRIFT stream.
const (
	EventDetected   = "drift.detected"           // the observer found a schema change
	EventQueued     = "drift.repair.queued"      // proposals wait for a person
	EventRejected   = "drift.repair.rejected"    // proposals were turned down
	EventApplied    = "drift.repair.applied"     // a repair wrote a mapping version; re-derivation follows
	EventRolledBack = "drift.mapping.rolledback" // a rollback wrote a mapping version; re-derivation follows
	EventRederived  = "drift.repair.rederived"   // canonical events were re-derived with a version
)

// HeaderEventType carries the event type on DRIFT messages, so consumers
// can skip events without decoding them.
const HeaderEventType = "Autonomos-Drift-Event"

// MappingsConnection is the connection token of DRIFT events about a
// mapping rather than one connection (rollbacks, manual edits).
const MappingsConnection = "mappings"

// Event is one message on the DRIFT stream (JSON).
type Event struct {
	Type         string        `json:"type"`
	ID           string        `json:"id"` // the message id (Nats-Msg-Id)
	FindingID    string        `json:"finding_id,omitempty"`
	Tenant       string        `json:"tenant_id"`
	ConnectionID string        `json:"connection_id"`
	System       string        `json:"system"`
	Object       string        `json:"object"`
	Entity       string        `json:"entity,omitempty"`
	Severity     Severity      `json:"severity,omitempty"`
	Added        []match.Field `json:"added,omitempty"`
	Removed      []match.Field `json:"removed,omitempty"`
	TypeChanged  []TypeChange  `json:"type_changed,omitempty"`
	Renames      []Rename      `json:"renames,omitempty"`
	Proposals    []Proposal    `json:"proposals,omitempty"`
	// MappingVersion is the version written (applied, rolled back) or
	// re-derived with.
	MappingVersion int       `json:"mapping_version,omitempty"`
	FromSeq        uint64    `json:"from_seq,omitempty"` // re-derive RAW from this sequence (0: from the start)
	Author         string    `json:"author,omitempty"`
	Records        int       `json:"records,omitempty"`
	Published      int       `json:"published,omitempty"`
	Errors         int       `json:"errors,omitempty"`
	Time           time.Time `json:"time"`
}

// DetectedEvent is the event announcing a finding.
func DetectedEvent(f *Finding) *Event {
	return &Event{Type: EventDetected, ID: "detected." + f.ID, FindingID: f.ID, Tenant: f.Tenant, ConnectionID: f.ConnectionID,
		System: f.System, Object: f.Object, Severity: f.Severity, Added: f.Added, Removed: f.Removed,
		TypeChanged: f.TypeChanged, Renames: f.Renames, Time: f.DetectedAt}
}

// Msg encodes the event for its subject drift.<tenant>.<connection>, with
// Nats-Msg-Id = ID so a republished event is dropped as a duplicate.
func (e *Event) Msg() (*nats.Msg, error) {
	subj, err := streams.DriftSubject(e.Tenant, SubjectToken(e.ConnectionID))
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode drift event: %w", err)
	}
	m := nats.NewMsg(subj)
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, e.ID)
	m.Header.Set(streams.HeaderContentType, "application/json")
	m.Header.Set(streams.HeaderTenant, e.Tenant)
	m.Header.Set(HeaderEventType, e.Type)
	return m, nil
}

// ParseEvent decodes a DRIFT message body.
func ParseEvent(b []byte) (*Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode drift event: %w", err)
	}
	if e.Type == "" || !streams.ValidToken(e.Tenant) {
		return nil, fmt.Errorf("drift event without a type or a valid tenant")
	}
	return &e, nil
}
