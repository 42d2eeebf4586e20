package canonical

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
)

// SchemaVersion is the version of the canonical model carried in every event.
const SchemaVersion = "v1"

// TypePrefix starts every canonical event type.
const TypePrefix = "com.autonomos.canonical."

// Op is what happened to a record.
type Op string

// The operations of canonical events.
const (
	OpUpsert Op = "upserted"
	OpDelete Op = "deleted"
)

// CloudEvents extension names used by canonical events.
const (
	ExtTenant         = "tenantid"
	ExtTrace          = "traceid"
	ExtSchemaVersion  = "schemaversion"
	ExtSourceSystem   = "sourcesystem"
	ExtSourceObject   = "sourceobject"
	ExtMappingVersion = "mappingversion"
)

// Event is a canonical record in its CloudEvents envelope.
type Event struct {
	ID             string    // deterministic, see EventID
	Tenant         string    // tenant token
	Op             Op        // upserted or deleted
	ConnectionID   string    // source is /connections/<ConnectionID>
	SourceSystem   string    // salesforce, hubspot, dynamics, postgres, filesource, ...
	SourceObject   string    // the source object or table the record came from
	Time           time.Time // the source record's version time (its modified stamp), UTC
	TraceID        string    // W3C trace id of the request or run that caused the event
	MappingVersion int       // version of the mapping that produced the record
	Record         Record    // the canonical entity; for deletes only its id is set
}

// Entity is the kind of the event's record.
func (e *Event) Entity() Entity { return e.Record.Entity() }

// Type is the CloudEvents type, com.autonomos.canonical.<entity>.<op>.
func (e *Event) Type() string { return TypePrefix + string(e.Entity()) + "." + string(e.Op) }

// EventID derives the deterministic id of a canonical event from the tenant,
// source system, entity, source record id, source version and operation —
// never from a job or connection — so that the same record at the same version
// always gets the same id.
func EventID(tenant, system string, entity Entity, recordID, version string, op Op) string {
	h := sha256.New()
	for _, p := range []string{tenant, system, string(entity), recordID, version, string(op)} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Validate checks the envelope and the record; it returns a joined error of
// *FieldError values.
func (e *Event) Validate() error {
	var errs []error
	bad := func(f, reason string) { errs = append(errs, &FieldError{Field: f, Reason: reason}) }
	if e.ID == "" {
		bad("id", "required attribute is missing")
	}
	if !ValidToken(e.Tenant) {
		bad(ExtTenant, fmt.Sprintf("invalid tenant %q", e.Tenant))
	}
	if !ValidToken(e.SourceSystem) {
		bad(ExtSourceSystem, fmt.Sprintf("invalid source system %q", e.SourceSystem))
	}
	if e.ConnectionID == "" {
		bad("source", "connection id is missing")
	}
	if e.Op != OpUpsert && e.Op != OpDelete {
		bad("type", fmt.Sprintf("unknown operation %q", e.Op))
	}
	if e.Time.IsZero() {
		bad("time", "required attribute is missing")
	}
	if e.Record == nil {
		bad("data", "record is missing")
		return errors.Join(errs...)
	}
	if e.Op == OpDelete {
		if e.Record.Key() == "" {
			bad(e.Entity().KeyField(), "required field is missing")
		}
	} else if err := Validate(e.Record); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CloudEvent returns the event as a CloudEvents SDK event.
func (e *Event) CloudEvent() (cloudevents.Event, error) {
	ce := cloudevents.New()
	ce.SetID(e.ID)
	ce.SetSource("/connections/" + e.ConnectionID)
	ce.SetType(e.Type())
	ce.SetSubject(e.Record.Key())
	ce.SetTime(e.Time.UTC())
	ce.SetExtension(ExtTenant, e.Tenant)
	if e.TraceID != "" {
		ce.SetExtension(ExtTrace, e.TraceID)
	}
	ce.SetExtension(ExtSchemaVersion, SchemaVersion)
	ce.SetExtension(ExtSourceSystem, e.SourceSystem)
	if e.SourceObject != "" {
		ce.SetExtension(ExtSourceObject, e.SourceObject)
	}
	ce.SetExtension(ExtMappingVersion, e.MappingVersion)
	if err := ce.SetData("application/json", e.Record); err != nil {
		return ce, fmt.Errorf("encode data: %w", err)
	}
	if err := ce.Validate(); err != nil {
		return ce, fmt.Errorf("cloudevent: %w", err)
	}
	return ce, nil
}

// MarshalJSON encodes the event in CloudEvents structured JSON mode.
func (e *Event) MarshalJSON() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	ce, err := e.CloudEvent()
	if err != nil {
		return nil, err
	}
	return json.Marshal(ce)
}

// ParseEvent decodes and validates a structured-mode CloudEvent carrying a
// canonical record. A type and a data that disagree are rejected.
func ParseEvent(b []byte) (*Event, error) {
	var ce cloudevents.Event
	if err := json.Unmarshal(b, &ce); err != nil {
		return nil, fmt.Errorf("cloudevent: %w", err)
	}
	if err := ce.Validate(); err != nil {
		return nil, fmt.Errorf("cloudevent: %w", err)
	}
	return FromCloudEvent(ce)
}

// FromCloudEvent converts a CloudEvents SDK event into a canonical Event.
func FromCloudEvent(ce cloudevents.Event) (*Event, error) {
	rest, ok := strings.CutPrefix(ce.Type(), TypePrefix)
	if !ok {
		return nil, &FieldError{Field: "type", Reason: fmt.Sprintf("not a canonical event type: %q", ce.Type())}
	}
	ent, op, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, &FieldError{Field: "type", Reason: fmt.Sprintf("want %s<entity>.<op>, got %q", TypePrefix, ce.Type())}
	}
	entity, err := ParseEntity(ent)
	if err != nil || string(entity) != ent {
		return nil, &FieldError{Field: "type", Reason: fmt.Sprintf("unknown entity %q", ent)}
	}
	conn, ok := strings.CutPrefix(ce.Source(), "/connections/")
	if !ok || conn == "" {
		return nil, &FieldError{Field: "source", Reason: fmt.Sprintf("want /connections/<id>, got %q", ce.Source())}
	}
	e := &Event{ID: ce.ID(), Op: Op(op), ConnectionID: conn, Time: ce.Time().UTC()}
	ext := ce.Extensions()
	e.Tenant = extString(ext, ExtTenant)
	e.TraceID = extString(ext, ExtTrace)
	e.SourceSystem = extString(ext, ExtSourceSystem)
	e.SourceObject = extString(ext, ExtSourceObject)
	if sv := extString(ext, ExtSchemaVersion); sv != SchemaVersion {
		return nil, &FieldError{Field: ExtSchemaVersion, Reason: fmt.Sprintf("unsupported schema version %q", sv)}
	}
	if v, ok := ext[ExtMappingVersion]; ok {
		var mv int32
		if err := ce.ExtensionAs(ExtMappingVersion, &mv); err != nil {
			return nil, &FieldError{Field: ExtMappingVersion, Reason: fmt.Sprintf("not an integer: %v", v)}
		}
		e.MappingVersion = int(mv)
	}
	rec, _ := NewRecord(entity)
	dec := json.NewDecoder(bytes.NewReader(ce.Data()))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(rec); err != nil {
		return nil, &FieldError{Field: "data", Reason: fmt.Sprintf("does not match type %s: %v", ce.Type(), err)}
	}
	e.Record = rec
	if rec.Key() != ce.Subject() {
		return nil, &FieldError{Field: "subject", Reason: fmt.Sprintf("subject %q differs from %s %q", ce.Subject(), entity.KeyField(), rec.Key())}
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

func extString(ext map[string]any, k string) string {
	v, ok := ext[k]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}
