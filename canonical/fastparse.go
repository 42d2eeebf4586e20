package canonical

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// The fast path of ParseEvent: one pass over the bytes that reads the
// envelope's attributes and decodes the data straight into the record,
// instead of decoding the envelope into a map, the data into another map
// and then the data again into the record.
//
// It decides only the cases it can decide exactly as the general path does:
// an event the general path accepts comes out as the same value, and an
// event with anything unusual — malformed JSON, escaped or duplicate keys, a
// value of an unexpected JSON type, a field that does not decode, data_base64
// — goes to the general path, which finds and words the errors. So the fast
// path never changes what is accepted or any error message; fastparse_test
// checks the two paths against each other, on every golden and under fuzzing.

// errSlowPath sends a message to the general path.
var errSlowPath = errors.New("canonical: not on the fast path")

// maxFastDepth bounds the nesting the fast path decodes; deeper extras go to
// the general path (encoding/json's own limit is 10,000).
const maxFastDepth = 64

// scanner reads JSON from b at i. Its methods check the grammar as they go
// (RFC 8259, as encoding/json does), and report false on anything invalid.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str reads a string; raw includes the quotes. plain says it is printable
// ASCII without escapes, so raw[1:len(raw)-1] is its value.
func (s *scanner) str() (raw []byte, plain, ok bool) {
	start := s.i
	if s.peek() != '"' {
		return nil, false, false
	}
	s.i++
	plain = true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start:s.i], plain, true
		case c == '\\':
			plain = false
			s.i++
			if s.i >= len(s.b) {
				return nil, false, false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(s.b) {
					return nil, false, false
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				s.i += 5
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		case c >= 0x80:
			plain = false
			s.i++
		default:
			s.i++
		}
	}
	return nil, false, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// num reads a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) num() bool {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		for s.i++; isDigit(s.peek()); s.i++ {
		}
	default:
		return false
	}
	if s.peek() == '.' {
		s.i++
		if !isDigit(s.peek()) {
			return false
		}
		for ; isDigit(s.peek()); s.i++ {
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !isDigit(s.peek()) {
			return false
		}
		for ; isDigit(s.peek()); s.i++ {
		}
	}
	return true
}

func (s *scanner) lit(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// skip reads any value.
func (s *scanner) skip(depth int) bool {
	if depth > maxFastDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{':
		return s.object(func(_ []byte, _ bool) bool { return s.skip(depth + 1) })
	case c == '[':
		return s.array(func() bool { return s.skip(depth + 1) })
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	default:
		return s.num()
	}
}

// object reads an object, calling member with each key (raw, with quotes)
// when the scanner stands on the member's value, which member must read.
func (s *scanner) object(member func(key []byte, plain bool) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		key, plain, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if s.peek() != ':' {
			return false
		}
		s.i++
		s.ws()
		if !member(key, plain) {
			return false
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

func (s *scanner) array(elem func() bool) bool {
	if s.peek() != '[' {
		return false
	}
	s.i++
	s.ws()
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		s.ws()
		if !elem() {
			return false
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// text is the value of a string read by str, as encoding/json decodes it.
func text(raw []byte, plain bool) (string, bool) {
	if plain {
		return string(raw[1 : len(raw)-1]), true
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, true
}

// strOrNull reads a string attribute: null and a missing one are "".
func (s *scanner) strOrNull() (string, bool) {
	if s.peek() == 'n' {
		return "", s.lit("null")
	}
	raw, plain, ok := s.str()
	if !ok {
		return "", false
	}
	return text(raw, plain)
}

// anyValue decodes a value as encoding/json does into an any with
// UseNumber: objects as map[string]any, arrays as []any (empty, not nil),
// numbers as json.Number.
func (s *scanner) anyValue(depth int) (any, bool) {
	if depth > maxFastDepth {
		return nil, false
	}
	switch c := s.peek(); {
	case c == '"':
		raw, plain, ok := s.str()
		if !ok {
			return nil, false
		}
		return text(raw, plain)
	case c == '{':
		return s.anyObject(depth)
	case c == '[':
		a := make([]any, 0)
		ok := s.array(func() bool {
			v, ok := s.anyValue(depth + 1)
			a = append(a, v)
			return ok
		})
		return a, ok
	case c == 't':
		return true, s.lit("true")
	case c == 'f':
		return false, s.lit("false")
	case c == 'n':
		return nil, s.lit("null")
	default:
		start := s.i
		if !s.num() {
			return nil, false
		}
		return json.Number(s.b[start:s.i]), true
	}
}

func (s *scanner) anyObject(depth int) (map[string]any, bool) {
	m := make(map[string]any)
	ok := s.object(func(key []byte, plain bool) bool {
		k, ok := text(key, plain)
		if !ok {
			return false
		}
		v, ok := s.anyValue(depth + 1)
		m[k] = v
		return ok
	})
	return m, ok
}

// attribute bits, to find duplicates (which go to the general path).
const (
	aSpec = 1 << iota
	aID
	aSource
	aType
	aSubject
	aTime
	aContentType
	aTenant
	aTrace
	aTraceparent
	aSchema
	aSystem
	aObject
	aMapping
	aData
)

// parseFast is ParseEvent's single pass. It returns errSlowPath (possibly
// joined with others) when the general path must decide.
func parseFast(b []byte) (*Event, error) {
	env, timeText, ok := scanEnvelope(b)
	if !ok {
		return nil, errSlowPath
	}
	if timeText != "" {
		t, err := time.Parse(time.RFC3339Nano, timeText)
		if err != nil {
			return nil, errSlowPath
		}
		env.time = t
	}
	return fromEnvelope(env, decodeRecordFast)
}

// scanEnvelope reads the attributes of a structured-mode CloudEvent in one
// pass, leaving its time as text and its data (a JSON object, checked to be
// well-formed) as bytes. false means the general path must decide: escaped
// names, a repeated attribute, data_base64, trailing bytes.
func scanEnvelope(b []byte) (env envelope, timeText string, ok bool) {
	s := &scanner{b: b}
	var seen int
	var data []byte
	s.ws()
	ok = s.object(func(key []byte, plain bool) bool {
		if !plain {
			return false
		}
		var dst *string
		var bit int
		switch string(key[1 : len(key)-1]) {
		case "specversion":
			dst, bit = &env.specVersion, aSpec
		case "id":
			dst, bit = &env.id, aID
		case "source":
			dst, bit = &env.source, aSource
		case "type":
			dst, bit = &env.typ, aType
		case "subject":
			dst, bit = &env.subject, aSubject
		case "time":
			dst, bit = &timeText, aTime
		case "datacontenttype":
			dst, bit = &env.dataContentType, aContentType
		case ExtTenant:
			dst, bit = &env.tenant, aTenant
		case ExtTrace:
			dst, bit = &env.trace, aTrace
		case ExtTraceparent:
			dst, bit = &env.traceparent, aTraceparent
		case ExtSchemaVersion:
			dst, bit = &env.schemaVersion, aSchema
		case ExtSourceSystem:
			dst, bit = &env.sourceSystem, aSystem
		case ExtSourceObject:
			dst, bit = &env.sourceObject, aObject
		case ExtMappingVersion:
			if seen&aMapping != 0 {
				return false
			}
			seen |= aMapping
			start := s.i
			if !s.skip(0) {
				return false
			}
			raw := s.b[start:s.i]
			if string(raw) == "null" {
				return true
			}
			n, err := parseMappingVersion(raw)
			env.mappingVersion = n
			return err == nil
		case "data":
			if seen&aData != 0 || s.peek() != '{' {
				return false
			}
			seen |= aData
			start := s.i
			if !s.skip(0) {
				return false
			}
			data = s.b[start:s.i]
			return true
		case "data_base64":
			return false
		default:
			return s.skip(0) // an extension of no concern
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		v, ok := s.strOrNull()
		*dst = v
		return ok
	})
	if !ok || seen&aSpec == 0 || data == nil {
		return envelope{}, "", false
	}
	s.ws()
	if s.i != len(s.b) {
		return envelope{}, "", false
	}
	env.data = data
	return env, timeText, true
}

// Attributes are a canonical event's CloudEvent attributes as read by
// ScanAttributes, with the record left undecoded.
type Attributes struct {
	ID, Source, Type, Subject string
	Time                      string // as sent (RFC 3339)
	Tenant, TraceID           string
	SourceSystem              string
	SourceObject              string
	MappingVersion            int
	Data                      []byte // the record: a well-formed JSON object, not validated as a record
}

// ScanAttributes reads an event's attributes without decoding its record,
// for readers that forward events (the live view) rather than store them.
// It is fast and strict: ok is false for anything it does not read in one
// pass (an escaped attribute name, a repeated attribute, data_base64, bad
// JSON), and the caller then decodes the event the general way.
func ScanAttributes(b []byte) (a Attributes, ok bool) {
	env, timeText, ok := scanEnvelope(b)
	if !ok {
		return Attributes{}, false
	}
	return Attributes{
		ID: env.id, Source: env.source, Type: env.typ, Subject: env.subject, Time: timeText,
		Tenant: env.tenant, TraceID: env.trace, SourceSystem: env.sourceSystem, SourceObject: env.sourceObject,
		MappingVersion: env.mappingVersion, Data: env.data,
	}, true
}

// decodeRecordFast decodes data, an object, as a record of entity, as
// decodeRecord does, or returns errSlowPath.
func decodeRecordFast(entity Entity, _ string, data []byte) (Record, error) {
	sch, _ := SchemaOf(entity)
	rec, _ := NewRecord(entity)
	s := &scanner{b: data}
	var seen uint64
	var extras map[string]any
	hasExtras := false
	ok := s.object(func(key []byte, plain bool) bool {
		if !plain {
			return false
		}
		name := string(key[1 : len(key)-1])
		if name == "extras" {
			if hasExtras {
				return false
			}
			hasExtras = true
			switch s.peek() {
			case 'n':
				return s.lit("null")
			case '{':
				m, ok := s.anyObject(1)
				extras = m
				return ok
			}
			return false
		}
		fi := -1
		for i, f := range sch.Fields {
			if f.Name == name {
				fi = i
				break
			}
		}
		if fi < 0 || seen&(1<<fi) != 0 {
			return false
		}
		seen |= 1 << fi
		f := sch.Fields[fi]
		if s.peek() == 'n' {
			if !s.lit("null") {
				return false
			}
			return rec.Set(name, nil) == nil
		}
		var v any
		switch f.Type {
		case TypeDecimal:
			raw, ok := s.rawValue()
			if !ok {
				return false
			}
			var d decimal.Decimal
			if d.UnmarshalJSON(raw) != nil {
				return false
			}
			v = d
		case TypePercent:
			raw, ok := s.rawValue()
			if !ok || (raw[0] != '"' && raw[0] != '-' && !isDigit(raw[0])) {
				return false
			}
			var p Percent
			if p.UnmarshalJSON(raw) != nil {
				return false
			}
			v = p
		case TypeDate:
			raw, p, ok := s.str()
			if !ok {
				return false
			}
			t, ok := text(raw, p)
			if !ok {
				return false
			}
			d, err := ParseDate(t)
			if err != nil {
				return false
			}
			v = d
		case TypeInteger:
			start := s.i
			if !s.num() {
				return false
			}
			n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
			if err != nil {
				return false
			}
			v = n
		default:
			raw, p, ok := s.str()
			if !ok {
				return false
			}
			t, ok := text(raw, p)
			if !ok {
				return false
			}
			v = t
		}
		return rec.Set(name, v) == nil
	})
	if !ok || s.i != len(data) {
		return nil, errSlowPath
	}
	if hasExtras {
		rec.SetExtras(extras)
	}
	return rec, nil
}

// rawValue reads a string or a number and returns its bytes.
func (s *scanner) rawValue() ([]byte, bool) {
	start := s.i
	switch c := s.peek(); {
	case c == '"':
		_, _, ok := s.str()
		return s.b[start:s.i], ok
	case c == '-' || isDigit(c):
		ok := s.num()
		return s.b[start:s.i], ok
	}
	return nil, false
}
