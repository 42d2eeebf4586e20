package shape

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is the inferred type of a source field.
type Type string

// The inferred types, from most to least specific (see Mask.Best).
const (
	Unknown  Type = "unknown" // no non-empty value seen yet
	Boolean  Type = "boolean"
	Integer  Type = "integer"
	Decimal  Type = "decimal"
	Date     Type = "date"
	DateTime Type = "datetime"
	Email    Type = "email"
	URL      Type = "url"
	Phone    Type = "phone"
	IDLike   Type = "id-like"
	Array    Type = "array"
	Object   Type = "object"
	String   Type = "string"
)

// order is the specificity order: Best picks the first type a mask holds.
var order = []Type{Boolean, Integer, Decimal, Date, DateTime, Email, URL, Phone, IDLike, Array, Object, String}

// Mask is a set of types: the types a value (or every value of a field) is
// consistent with. The zero Mask is "no value seen".
type Mask uint16

func bit(t Type) Mask {
	for i, o := range order {
		if o == t {
			return 1 << i
		}
	}
	return 0
}

// MaskOf returns the mask holding exactly ts.
func MaskOf(ts ...Type) Mask {
	var m Mask
	for _, t := range ts {
		m |= bit(t)
	}
	return m
}

// Has reports whether t is in the mask.
func (m Mask) Has(t Type) bool { return t != Unknown && m&bit(t) != 0 }

// Empty reports whether no value contributed to the mask.
func (m Mask) Empty() bool { return m == 0 }

// Meet is the intersection of two masks, treating the empty mask as "no
// information" (the other mask wins). The result is never empty when either
// is not, because every value's mask holds String.
func (m Mask) Meet(o Mask) Mask {
	switch {
	case m == 0:
		return o
	case o == 0:
		return m
	}
	r := m & o
	if r == 0 {
		return bit(String)
	}
	return r
}

// Best is the most specific type in the mask (Unknown for an empty mask).
func (m Mask) Best() Type {
	for i, t := range order {
		if m&(1<<i) != 0 {
			return t
		}
	}
	return Unknown
}

// Types lists the mask's types, most specific first.
func (m Mask) Types() []Type {
	var out []Type
	for i, t := range order {
		if m&(1<<i) != 0 {
			out = append(out, t)
		}
	}
	return out
}

// MarshalJSON writes the mask as a list of type names.
func (m Mask) MarshalJSON() ([]byte, error) {
	ts := m.Types()
	if ts == nil {
		ts = []Type{}
	}
	return json.Marshal(ts)
}

// UnmarshalJSON reads a list of type names; unknown names are an error.
func (m *Mask) UnmarshalJSON(b []byte) error {
	var ts []Type
	if err := json.Unmarshal(b, &ts); err != nil {
		return err
	}
	var r Mask
	for _, t := range ts {
		bt := bit(t)
		if bt == 0 {
			return fmt.Errorf("unknown type %q", t)
		}
		r |= bt
	}
	*m = r
	return nil
}

// Family groups types whose values a mapping reads alike: numbers, time,
// text, boolean, structure.
func (t Type) Family() string {
	switch t {
	case Integer, Decimal:
		return "number"
	case Date, DateTime:
		return "time"
	case Boolean:
		return "boolean"
	case Array, Object:
		return "structure"
	case Unknown:
		return "unknown"
	}
	return "text"
}

var (
	intRE     = regexp.MustCompile(`^[+-]?(0|[1-9][0-9]*)$`)
	zeroLedRE = regexp.MustCompile(`^0[0-9]+$`)
	decRE     = regexp.MustCompile(`^[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?$`)
	dateRE    = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	emailRE   = regexp.MustCompile(`^[^\s@<>()",;]+@[^\s@<>()",;]+\.[A-Za-z]{2,}$`)
	urlRE     = regexp.MustCompile(`^(?i)(https?://[^\s/$.?#][^\s]*|www\.[^\s]+\.[a-z]{2,}[^\s]*|([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}(/[^\s]*)?)$`)
	phoneRE   = regexp.MustCompile(`^\+?[0-9 ().\-]{7,24}(\s*(x|ext\.?)\s*[0-9]{1,6})?$`)
	localRE   = regexp.MustCompile(`^[0-9]{3}[-. ][0-9]{4}$`)
	digitRun  = regexp.MustCompile(`[0-9]+`)
	idRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_\-:.]{4,127}$`)
	uuidRE    = regexp.MustCompile(`^(?i)\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?$`)
)

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.000-0700",
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// maxText bounds the text inspected by the regular expressions.
const maxText = 512

// Infer returns the mask of one source value and whether the value is
// non-empty. nil, blank strings carry no type (ok false).
func Infer(v any) (m Mask, ok bool) {
	str := bit(String)
	switch x := v.(type) {
	case nil:
		return 0, false
	case bool:
		return bit(Boolean) | str, true
	case json.Number:
		return inferNumber(x.String()) | str, true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return str, true
		}
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return bit(Integer) | bit(Decimal) | str, true
		}
		return bit(Decimal) | str, true
	case float32:
		return Infer(float64(x))
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return bit(Integer) | bit(Decimal) | str, true
	case string:
		return InferText(x)
	case map[string]any:
		return bit(Object) | str, true
	case []any:
		return bit(Array) | str, true
	}
	return str, true
}

// Present reports whether v is non-empty — Infer's ok — without inferring
// its type.
func Present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return strings.TrimSpace(x) != ""
	}
	return true
}

func inferNumber(s string) Mask {
	if intRE.MatchString(s) {
		return bit(Integer) | bit(Decimal)
	}
	if decRE.MatchString(s) {
		return bit(Decimal)
	}
	return 0
}

// InferText returns the mask of a text value (ok false when blank).
func InferText(s string) (Mask, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	m := bit(String)
	if len(s) > maxText || !utf8.ValidString(s) {
		return m, true
	}
	switch strings.ToLower(s) {
	case "true", "false":
		return m | bit(Boolean), true
	}
	digits := countDigits(s)
	switch {
	case intRE.MatchString(s):
		m |= bit(Integer) | bit(Decimal)
		if digits >= 7 && digits <= 15 && s[0] != '-' {
			m |= bit(Phone)
		}
		return m, true
	case zeroLedRE.MatchString(s):
		m |= bit(IDLike)
		if digits >= 7 && digits <= 15 {
			m |= bit(Phone)
		}
		return m, true
	case decRE.MatchString(s):
		return m | bit(Decimal), true
	case dateRE.MatchString(s):
		if _, err := time.Parse(time.DateOnly, s); err == nil {
			return m | bit(Date) | bit(DateTime), true
		}
		return m, true
	}
	if s[0] >= '0' && s[0] <= '9' && len(s) >= 16 {
		for _, l := range timeLayouts {
			if _, err := time.Parse(l, s); err == nil {
				return m | bit(DateTime), true
			}
		}
	}
	if strings.Contains(s, "@") {
		if emailRE.MatchString(s) {
			m |= bit(Email)
		}
		return m, true
	}
	if uuidRE.MatchString(s) {
		return m | bit(IDLike), true
	}
	if phoneRE.MatchString(s) && digits >= 7 && digits <= 15 && hasPhonePunct(s) {
		m |= bit(Phone)
		return m, true
	}
	if !strings.ContainsAny(s, " \t") && urlRE.MatchString(s) && hasLetterTLD(s) {
		return m | bit(URL), true
	}
	if idRE.MatchString(s) && digits > 0 && hasLetter(s) && !strings.Contains(s, ".") {
		m |= bit(IDLike)
	}
	return m, true
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

func hasLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c >= 'a' && c <= 'z' {
			return true
		}
	}
	return false
}

// hasPhonePunct tells a formatted phone number from a range or a code:
// a leading +, a parenthesised area code, three or more digit groups, or a
// local 555-0123.
func hasPhonePunct(s string) bool {
	return strings.HasPrefix(s, "+") || strings.Contains(s, "(") || len(digitRun.FindAllString(s, 4)) >= 3 || localRE.MatchString(s)
}

// hasLetterTLD rejects "1.5.3"-like strings that the host pattern admits.
func hasLetterTLD(s string) bool {
	if strings.Contains(s, "://") {
		return true
	}
	host := s
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	i := strings.LastIndexByte(host, '.')
	if i < 0 || i == len(host)-1 {
		return false
	}
	for _, c := range host[i+1:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Text renders a value as the mapping engine reads it: JSON numbers
// exactly, booleans as true/false, objects and arrays as JSON. Nil is "".
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// MaxDepth bounds how deep Flatten descends into nested objects.
const MaxDepth = 4

// MaxFields bounds the fields Flatten returns for one record.
const MaxFields = 1000

// MaxNameLen bounds a flattened field name.
const MaxNameLen = 256

// Flatten turns a record into leaf fields keyed by dotted path
// ("transactioncurrencyid.isocurrencycode"). Non-empty nested objects are
// descended into (up to MaxDepth); arrays, empty objects and scalars are
// leaves. At most MaxFields fields are returned (names sorted, so the cut
// is stable); names longer than MaxNameLen are dropped.
func Flatten(rec map[string]any) map[string]any {
	out := map[string]any{}
	flatten(out, rec, "", 1)
	if len(out) <= MaxFields {
		return out
	}
	names := make([]string, 0, len(out))
	for k := range out {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names[MaxFields:] {
		delete(out, k)
	}
	return out
}

func flatten(out map[string]any, obj map[string]any, prefix string, depth int) {
	for k, v := range obj {
		name := prefix + k
		if len(name) > MaxNameLen || k == "" {
			continue
		}
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 && depth < MaxDepth {
			flatten(out, sub, name+".", depth+1)
			continue
		}
		out[name] = v
		if len(out) > 4*MaxFields {
			return
		}
	}
}

// MaxSampleLen bounds one kept sample value.
const MaxSampleLen = 80

// Sample renders a value for keeping as an example: its text, trimmed and
// cut to MaxSampleLen bytes on a rune boundary ("" for an empty value).
func Sample(v any) string {
	s := strings.TrimSpace(Text(v))
	if len(s) <= MaxSampleLen {
		return s
	}
	cut := MaxSampleLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
