package canonical

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// SchemaVersion is the version of the canonical model carried in every event.
const SchemaVersion = "v1"

// TypePrefix starts every canonical event type.
const TypePrefix = "com.autonomos.canonical."

// SpecVersion is the CloudEvents version of canonical events.
const SpecVersion = "1.0"

// DataContentType is the content type of a canonical event's data.
const DataContentType = "application/json"

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
	ExtTraceparent    = "traceparent" // distributed tracing: the span that made the event (optional)
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
	ConnectionID   string    // source is /connections/<ConnectionID>; letters, digits, '.', '_', '~', '-'
	SourceSystem   string    // salesforce, hubspot, dynamics, postgres, filesource, ...
	SourceObject   string    // the source object or table the record came from
	Time           time.Time // the source record's version time (its modified stamp), UTC
	TraceID        string    // W3C trace id of the request or run that caused the event
	Traceparent    string    // W3C traceparent of the span that made the event; optional, carried as it is
	MappingVersion int       // version of the mapping that produced the record, 0..MaxInt32
	Record         Record    // the canonical entity; for deletes only its id is set
}

// Entity is the kind of the event's record ("" when it has none).
func (e *Event) Entity() Entity {
	if e.Record == nil {
		return ""
	}
	return e.Record.Entity()
}

// Type is the CloudEvents type, com.autonomos.canonical.<entity>.<op>.
func (e *Event) Type() string { return TypePrefix + string(e.Entity()) + "." + string(e.Op) }

// EventID derives the deterministic id of a canonical event from the tenant,
// source system, entity, source record id, source version and operation —
// never from a job or connection — so that the same record at the same version
// always gets the same id, and any difference in an input gives another id.
func EventID(tenant, system string, entity Entity, recordID, version string, op Op) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, p := range []string{tenant, system, string(entity), recordID, version, string(op)} {
		// Length-prefixed, so no two input lists encode alike (a separator
		// byte could also occur inside a record id or version).
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// validConnectionID says whether id is 1..128 of A-Z a-z 0-9 . _ ~ -.
func validConnectionID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-') {
			return false
		}
	}
	return true
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
	} else if !validConnectionID(e.ConnectionID) {
		bad("source", fmt.Sprintf("invalid connection id %q (want 1..128 of A-Z a-z 0-9 . _ ~ -)", e.ConnectionID))
	}
	if e.Op != OpUpsert && e.Op != OpDelete {
		bad("type", fmt.Sprintf("unknown operation %q", e.Op))
	}
	switch {
	case e.Time.IsZero():
		bad("time", "required attribute is missing")
	case e.Time.UTC().Year() < 1 || e.Time.UTC().Year() > 9999:
		bad("time", fmt.Sprintf("year %d is outside 1..9999", e.Time.UTC().Year()))
	}
	if e.MappingVersion < 0 || e.MappingVersion > math.MaxInt32 {
		bad(ExtMappingVersion, fmt.Sprintf("must be from 0 to %d, got %d", math.MaxInt32, e.MappingVersion))
	}
	switch r := e.Record.(type) {
	case nil:
		bad("data", "record is missing")
		return errors.Join(errs...)
	case *Account:
		if r == nil {
			bad("data", "record is missing")
			return errors.Join(errs...)
		}
	case *Opportunity:
		if r == nil {
			bad("data", "record is missing")
			return errors.Join(errs...)
		}
	case *Contact:
		if r == nil {
			bad("data", "record is missing")
			return errors.Join(errs...)
		}
	default:
		bad("data", fmt.Sprintf("unsupported record type %T", e.Record))
		return errors.Join(errs...)
	}
	if err := validate(e.Record, e.Op == OpDelete); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CloudEvent returns the event as a CloudEvents SDK event. Marshalled with
// encoding/json it is byte for byte what MarshalJSON writes.
func (e *Event) CloudEvent() (cloudevents.Event, error) {
	ce := cloudevents.New()
	if e.Record == nil {
		return ce, &FieldError{Field: "data", Reason: "record is missing"}
	}
	ce.SetID(e.ID)
	ce.SetSource("/connections/" + e.ConnectionID)
	ce.SetType(e.Type())
	ce.SetSubject(e.Record.Key())
	ce.SetTime(e.Time.UTC())
	var errs []error
	setExt := func(k string, v any) { errs = append(errs, ce.Context.SetExtension(k, v)) }
	setExt(ExtTenant, e.Tenant)
	if e.TraceID != "" {
		setExt(ExtTrace, e.TraceID)
	}
	if e.Traceparent != "" {
		setExt(ExtTraceparent, e.Traceparent)
	}
	setExt(ExtSchemaVersion, SchemaVersion)
	setExt(ExtSourceSystem, e.SourceSystem)
	if e.SourceObject != "" {
		setExt(ExtSourceObject, e.SourceObject)
	}
	setExt(ExtMappingVersion, e.MappingVersion)
	if err := errors.Join(errs...); err != nil {
		return ce, fmt.Errorf("cloudevent extensions: %w", err)
	}
	if err := ce.SetData(DataContentType, e.Record); err != nil {
		return ce, fmt.Errorf("encode data: %w", err)
	}
	if err := ce.Validate(); err != nil {
		return ce, fmt.Errorf("cloudevent: %w", err)
	}
	return ce, nil
}

// MarshalJSON validates the event and encodes it in CloudEvents structured
// JSON mode (see AppendJSON). The output is deterministic: the context
// attributes in a fixed order (specversion, id, source, type, subject,
// datacontenttype, time), then data, then the extensions sorted by name,
// time in UTC — the order the CloudEvents SDK writes.
func (e Event) MarshalJSON() ([]byte, error) {
	return encodePooled(e.AppendJSON)
}

// UnmarshalJSON is ParseEvent into e.
func (e *Event) UnmarshalJSON(b []byte) error {
	ev, err := ParseEvent(b)
	if err != nil {
		return err
	}
	*e = *ev
	return nil
}

// envelope is a CloudEvent's attributes as read from the wire or the SDK,
// before they are checked.
type envelope struct {
	specVersion     string
	id              string
	source          string
	typ             string
	subject         string
	time            time.Time
	dataContentType string
	tenant          string
	trace           string
	traceparent     string
	schemaVersion   string
	sourceSystem    string
	sourceObject    string
	mappingVersion  int
	data            []byte
}

// ParseEvent decodes and validates a structured-mode CloudEvent (1.0)
// carrying a canonical record. A type and a data that disagree are
// rejected. Errors are *FieldError values (joined when several) naming the
// attribute or the record field at fault.
func ParseEvent(b []byte) (*Event, error) {
	if ev, err := parseFast(b); !errors.Is(err, errSlowPath) {
		return ev, err
	}
	return parseEventSlow(b)
}

// parseEventSlow is the general path of ParseEvent: it decides every input,
// and words every error.
func parseEventSlow(b []byte) (*Event, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, &FieldError{Field: "specversion", Reason: "not a CloudEvent: want a JSON object with specversion 1.0"}
	}
	var errs []error
	bad := func(f, reason string) { errs = append(errs, &FieldError{Field: f, Reason: reason}) }
	str := func(k string) string {
		raw, ok := m[k]
		if !ok || string(raw) == "null" {
			return ""
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			bad(k, fmt.Sprintf("must be a string, got %s", abbrevJSON(raw)))
		}
		return s
	}
	var env envelope
	if _, ok := m["specversion"]; !ok {
		return nil, &FieldError{Field: "specversion", Reason: "required attribute is missing: not a CloudEvent"}
	}
	env.specVersion = str("specversion")
	env.id = str("id")
	env.source = str("source")
	env.typ = str("type")
	env.subject = str("subject")
	if ts := str("time"); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			bad("time", fmt.Sprintf("not an RFC 3339 timestamp: %q", ts))
		}
		env.time = t
	}
	env.dataContentType = str("datacontenttype")
	env.tenant = str(ExtTenant)
	env.trace = str(ExtTrace)
	env.traceparent = str(ExtTraceparent)
	env.schemaVersion = str(ExtSchemaVersion)
	env.sourceSystem = str(ExtSourceSystem)
	env.sourceObject = str(ExtSourceObject)
	if raw, ok := m[ExtMappingVersion]; ok && string(raw) != "null" {
		n, err := parseMappingVersion(raw)
		if err != nil {
			bad(ExtMappingVersion, err.Error())
		}
		env.mappingVersion = n
	}
	if _, ok := m["data_base64"]; ok {
		bad("data_base64", "not supported: a canonical event carries its data as JSON")
	}
	if raw, ok := m["data"]; ok {
		env.data = raw
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return fromEnvelope(env, decodeRecord)
}

// parseMappingVersion reads the mappingversion extension: a JSON integer or
// the CloudEvents string form of one.
func parseMappingVersion(raw json.RawMessage) (int, error) {
	s := string(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("not an integer: %s", abbrevJSON(raw))
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("not an integer from 0 to %d: %s", math.MaxInt32, abbrevJSON(raw))
	}
	return int(n), nil
}

func abbrevJSON(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// FromCloudEvent converts a CloudEvents SDK event into a canonical Event,
// with the checks of ParseEvent.
func FromCloudEvent(ce cloudevents.Event) (*Event, error) {
	env := envelope{
		specVersion:     ce.SpecVersion(),
		id:              ce.ID(),
		source:          ce.Source(),
		typ:             ce.Type(),
		subject:         ce.Subject(),
		time:            ce.Time(),
		dataContentType: ce.DataContentType(),
		data:            ce.Data(),
	}
	ext := ce.Extensions()
	env.tenant = extString(ext, ExtTenant)
	env.trace = extString(ext, ExtTrace)
	env.traceparent = extString(ext, ExtTraceparent)
	env.schemaVersion = extString(ext, ExtSchemaVersion)
	env.sourceSystem = extString(ext, ExtSourceSystem)
	env.sourceObject = extString(ext, ExtSourceObject)
	if v, ok := ext[ExtMappingVersion]; ok {
		mv, err := types.ToInteger(v)
		if err != nil {
			return nil, &FieldError{Field: ExtMappingVersion, Reason: fmt.Sprintf("not an integer: %v", v)}
		}
		env.mappingVersion = int(mv)
	}
	return fromEnvelope(env, decodeRecord)
}

// fromEnvelope checks the attributes, decodes the data as the record the
// type names (with decode), and validates the result.
func fromEnvelope(env envelope, decode func(Entity, string, []byte) (Record, error)) (*Event, error) {
	var errs []error
	bad := func(f, reason string) { errs = append(errs, &FieldError{Field: f, Reason: reason}) }
	if env.specVersion != SpecVersion {
		return nil, &FieldError{Field: "specversion", Reason: fmt.Sprintf("unsupported CloudEvents version %q (want %s)", env.specVersion, SpecVersion)}
	}
	if env.dataContentType != "" && env.dataContentType != DataContentType {
		if mt, _, err := mime.ParseMediaType(env.dataContentType); err != nil || mt != DataContentType {
			bad("datacontenttype", fmt.Sprintf("want %s, got %q", DataContentType, env.dataContentType))
		}
	}
	if env.schemaVersion != SchemaVersion {
		bad(ExtSchemaVersion, fmt.Sprintf("unsupported schema version %q (want %s)", env.schemaVersion, SchemaVersion))
	}
	e := &Event{
		ID:             env.id,
		Tenant:         env.tenant,
		TraceID:        env.trace,
		Traceparent:    env.traceparent,
		SourceSystem:   env.sourceSystem,
		SourceObject:   env.sourceObject,
		MappingVersion: env.mappingVersion,
		Time:           env.time.UTC(),
	}
	if env.source != "" {
		conn, ok := strings.CutPrefix(env.source, "/connections/")
		if !ok {
			bad("source", fmt.Sprintf("want /connections/<id>, got %q", env.source))
		}
		e.ConnectionID = conn
	}
	entity, op, err := parseType(env.typ)
	if err != nil {
		errs = append(errs, err)
		return nil, errors.Join(errs...)
	}
	e.Op = op
	rec, err := decode(entity, env.typ, env.data)
	if err != nil {
		errs = append(errs, err)
		return nil, errors.Join(errs...)
	}
	e.Record = rec
	if rec.Key() != env.subject {
		bad("subject", fmt.Sprintf("subject %q differs from %s %q", env.subject, entity.KeyField(), rec.Key()))
	}
	normalize(rec)
	if err := e.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return e, nil
}

// parseType splits com.autonomos.canonical.<entity>.<op>.
func parseType(typ string) (Entity, Op, error) {
	if typ == "" {
		return "", "", &FieldError{Field: "type", Reason: "required attribute is missing"}
	}
	rest, ok := strings.CutPrefix(typ, TypePrefix)
	if !ok {
		return "", "", &FieldError{Field: "type", Reason: fmt.Sprintf("not a canonical event type: %q", typ)}
	}
	ent, op, ok := strings.Cut(rest, ".")
	if !ok {
		return "", "", &FieldError{Field: "type", Reason: fmt.Sprintf("want %s<entity>.<op>, got %q", TypePrefix, typ)}
	}
	entity := Entity(ent)
	if _, ok := SchemaOf(entity); !ok {
		return "", "", &FieldError{Field: "type", Reason: fmt.Sprintf("unknown entity %q (want account, opportunity or contact)", ent)}
	}
	if Op(op) != OpUpsert && Op(op) != OpDelete {
		return "", "", &FieldError{Field: "type", Reason: fmt.Sprintf("unknown operation %q (want %s or %s)", op, OpUpsert, OpDelete)}
	}
	return entity, Op(op), nil
}

// decodeRecord decodes data as a record of entity. Every key must be a field
// of the entity (or extras): data of another entity than the type says is
// rejected. Errors name the field.
func decodeRecord(entity Entity, typ string, data []byte) (Record, error) {
	s, _ := SchemaOf(entity)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &FieldError{Field: "data", Reason: "required attribute is missing"}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, &FieldError{Field: "data", Reason: fmt.Sprintf("want a JSON object (a %s), got %s", entity, abbrevJSON(data))}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		if _, ok := s.Field(k); !ok && k != "extras" {
			errs = append(errs, &FieldError{Field: "data", Reason: fmt.Sprintf("%q is not a field of %s, which type %s says the data is", k, entity, typ)})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rec, _ := NewRecord(entity)
	if decodeJSON(data, rec) == nil {
		return rec, nil
	}
	// Find the fields at fault, one by one.
	for _, k := range keys {
		one, _ := json.Marshal(map[string]json.RawMessage{k: m[k]})
		probe, _ := NewRecord(entity)
		if err := decodeJSON(one, probe); err != nil {
			var te *json.UnmarshalTypeError
			reason := err.Error()
			if errors.As(err, &te) {
				reason = fmt.Sprintf("want %s, got JSON %s", jsonKind(s, k), te.Value)
			}
			errs = append(errs, &FieldError{Field: k, Reason: reason})
		}
	}
	if len(errs) == 0 {
		errs = append(errs, &FieldError{Field: "data", Reason: "does not decode as " + string(entity)})
	}
	return nil, errors.Join(errs...)
}

func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// jsonKind says what JSON a field takes.
func jsonKind(s Schema, field string) string {
	f, ok := s.Field(field)
	if !ok {
		return "an object" // extras
	}
	switch f.Type {
	case TypeDecimal:
		return "a decimal string"
	case TypeInteger:
		return "an integer"
	case TypePercent:
		return "a number"
	case TypeDate:
		return "a YYYY-MM-DD string"
	}
	return "a string"
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
