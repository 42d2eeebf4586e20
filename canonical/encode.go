package canonical

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// This file is the hand-written encoder of canonical events. It writes
// exactly the bytes encoding/json writes for the wire structs (wireEvent and
// the records' *JSON forms) — HTML-safe string escapes, map keys sorted,
// floats in encoding/json's format — without reflection and without
// encoding/json re-validating and compacting the record it already wrote.
// The tests hold it byte for byte to the reflective encoding.

// AppendJSON validates the event and appends its CloudEvents structured JSON
// encoding (the bytes MarshalJSON returns) to dst.
func (e *Event) AppendJSON(dst []byte) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return dst, err
	}
	start := len(dst)
	b := append(dst, `{"specversion":"`+SpecVersion+`","id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"source":`...)
	b = appendString2(b, "/connections/", e.ConnectionID)
	b = append(b, `,"type":"`+TypePrefix...)
	b = appendStringBody(b, string(e.Record.Entity()), &safeHTML)
	b = append(b, '.')
	b = appendStringBody(b, string(e.Op), &safeHTML)
	b = append(b, `","subject":`...)
	b = appendString(b, e.Record.Key())
	b = append(b, `,"datacontenttype":"`+DataContentType+`","time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	b, err := appendRecord(b, e.Record)
	if err != nil {
		return dst[:start], fmt.Errorf("encode data: %w", err)
	}
	b = append(b, `,"mappingversion":`...)
	b = strconv.AppendInt(b, int64(e.MappingVersion), 10)
	b = append(b, `,"schemaversion":"`+SchemaVersion+`"`...)
	if e.SourceObject != "" {
		b = append(b, `,"sourceobject":`...)
		b = appendString(b, e.SourceObject)
	}
	b = append(b, `,"sourcesystem":`...)
	b = appendString(b, e.SourceSystem)
	b = append(b, `,"tenantid":`...)
	b = appendString(b, e.Tenant)
	if e.TraceID != "" {
		b = append(b, `,"traceid":`...)
		b = appendString(b, e.TraceID)
	}
	if e.Traceparent != "" {
		b = append(b, `,"traceparent":`...)
		b = appendString(b, e.Traceparent)
	}
	return append(b, '}'), nil
}

// scratch buffers for encodings whose result must be a slice of its own:
// the bytes are written into a pooled buffer and copied out at their exact
// size (as encoding/json does), so a 1.2 KB event does not hold a 2.3 KB
// slice grown by doubling while it waits for its publish ack.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func encodePooled(enc func([]byte) ([]byte, error)) ([]byte, error) {
	bp := scratch.Get().(*[]byte)
	b, err := enc((*bp)[:0])
	var out []byte
	if err == nil {
		out = make([]byte, len(b))
		copy(out, b)
	}
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		scratch.Put(bp)
	}
	return out, err
}

// MarshalJSONObject is AppendJSONObject into a new slice of the exact size.
func MarshalJSONObject(m map[string]any) ([]byte, error) {
	return encodePooled(func(b []byte) ([]byte, error) { return appendObject(b, m) })
}

// appendRecord appends the record's wire form: every field, a missing one
// (and an empty required string) as null.
func appendRecord(b []byte, r Record) ([]byte, error) {
	var err error
	switch r := r.(type) {
	case *Account:
		b = append(b, `{"account_id":`...)
		b = appendReq(b, r.AccountID)
		b = append(b, `,"name":`...)
		b = appendReq(b, r.Name)
		b = append(b, `,"industry":`...)
		b = appendOpt(b, r.Industry)
		b = append(b, `,"annual_revenue":`...)
		b = appendDecimal(b, r.AnnualRevenue)
		b = append(b, `,"employee_count":`...)
		if r.EmployeeCount == nil {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendInt(b, *r.EmployeeCount, 10)
		}
		b = append(b, `,"website":`...)
		b = appendOpt(b, r.Website)
		b = append(b, `,"extras":`...)
		b, err = appendObject(b, r.Extras)
	case *Opportunity:
		b = append(b, `{"opportunity_id":`...)
		b = appendReq(b, r.OpportunityID)
		b = append(b, `,"account_id":`...)
		b = appendOpt(b, r.AccountID)
		b = append(b, `,"name":`...)
		b = appendReq(b, r.Name)
		b = append(b, `,"stage":`...)
		b = appendOpt(b, r.Stage)
		b = append(b, `,"amount":`...)
		b = appendDecimal(b, r.Amount)
		b = append(b, `,"currency":`...)
		b = appendOpt(b, r.Currency)
		b = append(b, `,"close_date":`...)
		if r.CloseDate == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '"')
			b = r.CloseDate.t.AppendFormat(b, time.DateOnly)
			b = append(b, '"')
		}
		b = append(b, `,"owner_id":`...)
		b = appendOpt(b, r.OwnerID)
		b = append(b, `,"probability":`...)
		if r.Probability == nil {
			b = append(b, "null"...)
		} else {
			p, perr := r.Probability.MarshalJSON()
			if perr != nil {
				return b, perr
			}
			b = append(b, p...)
		}
		b = append(b, `,"extras":`...)
		b, err = appendObject(b, r.Extras)
	case *Contact:
		b = append(b, `{"contact_id":`...)
		b = appendReq(b, r.ContactID)
		b = append(b, `,"account_id":`...)
		b = appendOpt(b, r.AccountID)
		b = append(b, `,"first_name":`...)
		b = appendOpt(b, r.FirstName)
		b = append(b, `,"last_name":`...)
		b = appendOpt(b, r.LastName)
		b = append(b, `,"email":`...)
		b = appendOpt(b, r.Email)
		b = append(b, `,"phone":`...)
		b = appendOpt(b, r.Phone)
		b = append(b, `,"title":`...)
		b = appendOpt(b, r.Title)
		b = append(b, `,"extras":`...)
		b, err = appendObject(b, r.Extras)
	default:
		return b, fmt.Errorf("unsupported record type %T", r)
	}
	if err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendReq(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

func appendOpt(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// appendDecimal writes a decimal as shopspring/decimal's MarshalJSON does
// (a quoted string).
func appendDecimal(b []byte, d *decimal.Decimal) []byte {
	if d == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = append(b, d.String()...)
	return append(b, '"')
}

// AppendJSONObject appends m as encoding/json's Marshal would write it (keys
// sorted, HTML-safe escapes; nil as null), without its reflection for the
// common value types.
func AppendJSONObject(b []byte, m map[string]any) ([]byte, error) {
	return appendObject(b, m)
}

func appendObject(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	if len(m) == 0 {
		return append(b, "{}"...), nil
	}
	var stack [32]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	// encoding/json sorts the keys as strings after it has made them valid
	// UTF-8; an invalid key is rare, so leave that case to it.
	for _, k := range keys {
		if !utf8.ValidString(k) {
			return appendMarshal(b, m)
		}
	}
	slices.Sort(keys)
	b = append(b, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, m[k]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendValue writes one JSON value of a map[string]any tree; types other
// than the ones encoding/json decodes into go through json.Marshal.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		return appendFloat(b, v)
	case json.Number:
		if v == "" {
			return append(b, '0'), nil
		}
		if !validNumber(string(v)) {
			return appendMarshal(b, v) // the error encoding/json gives
		}
		return append(b, v...), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case map[string]any:
		return appendObject(b, v)
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		var err error
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendValue(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	}
	return appendMarshal(b, v)
}

// validNumber says whether s is a JSON number.
func validNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	return s == ""
}

func appendMarshal(b []byte, v any) ([]byte, error) {
	out, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, out...), nil
}

// appendFloat writes f as encoding/json does (ES6 number formatting).
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return appendMarshal(b, f) // the error encoding/json gives
	}
	abs := math.Abs(f)
	fmtc := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmtc = 'e'
	}
	b = strconv.AppendFloat(b, f, fmtc, -1, 64)
	if fmtc == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// appendString writes s as a JSON string with encoding/json's escapes:
// HTML-safe (<, >, & as \u003c ...), U+2028 and U+2029 escaped, invalid
// UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendStringBody(b, s, &safeHTML)
	return append(b, '"')
}

func appendString2(b []byte, prefix, s string) []byte {
	b = append(b, '"')
	b = appendStringBody(b, prefix, &safeHTML)
	b = appendStringBody(b, s, &safeHTML)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// AppendQuoted appends s as a JSON string with encoding/json's escapes
// (U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD), and its HTML-safe
// escapes of <, > and & when escapeHTML is set (as json.Marshal does; an
// Encoder with SetEscapeHTML(false) does not).
func AppendQuoted(b []byte, s string, escapeHTML bool) []byte {
	safe := &safePlain
	if escapeHTML {
		safe = &safeHTML
	}
	b = append(b, '"')
	b = appendStringBody(b, s, safe)
	return append(b, '"')
}

// appendStringBody writes s escaped, without quotes; safe marks the ASCII
// bytes written as they are.
func appendStringBody(b []byte, s string, safe *[utf8.RuneSelf]bool) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// safeHTML marks the ASCII bytes encoding/json writes as they are in its
// HTML-safe mode; safePlain, without HTML escaping.
var safeHTML, safePlain = func() (html, plain [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		plain[c] = c != '"' && c != '\\'
		html[c] = plain[c] && c != '<' && c != '>' && c != '&'
	}
	return html, plain
}()
