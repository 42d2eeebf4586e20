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

// The text classes are matched by hand: the regular expressions they
// replace (kept in shape_ref_test.go, which checks the two agree) cost the
// schema observer most of its time, tens of microseconds a record.
var (
	emailRE = regexp.MustCompile(`^[^\s@<>()",;]+@[^\s@<>()",;]+\.[A-Za-z]{2,}$`)
	urlRE   = regexp.MustCompile(`^(?i)(https?://[^\s/$.?#][^\s]*|www\.[^\s]+\.[a-z]{2,}[^\s]*|([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}(/[^\s]*)?)$`)
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
	if isInt(s) {
		return bit(Integer) | bit(Decimal)
	}
	if isDecimal(s) {
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
	if len(s) <= 5 {
		switch strings.ToLower(s) {
		case "true", "false":
			return m | bit(Boolean), true
		}
	}
	digits := countDigits(s)
	switch {
	case isInt(s):
		m |= bit(Integer) | bit(Decimal)
		if digits >= 7 && digits <= 15 && s[0] != '-' {
			m |= bit(Phone)
		}
		return m, true
	case isZeroLed(s):
		m |= bit(IDLike)
		if digits >= 7 && digits <= 15 {
			m |= bit(Phone)
		}
		return m, true
	case isDecimal(s):
		return m | bit(Decimal), true
	case isDateShape(s):
		if _, err := time.Parse(time.DateOnly, s); err == nil {
			return m | bit(Date) | bit(DateTime), true
		}
		return m, true
	}
	// Every layout starts 2006-01-02: four digits, a dash, two digits, a dash.
	if isDigit(s[0]) && len(s) >= 16 && s[4] == '-' && s[7] == '-' {
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
	if isUUID(s) {
		return m | bit(IDLike), true
	}
	if digits >= 7 && digits <= 15 && isPhone(s) && hasPhonePunct(s) {
		m |= bit(Phone)
		return m, true
	}
	if !strings.ContainsAny(s, " \t") && hasLetterTLD(s) && urlRE.MatchString(s) {
		return m | bit(URL), true
	}
	if digits > 0 && isIDShape(s) && hasLetter(s) && !strings.Contains(s, ".") {
		m |= bit(IDLike)
	}
	return m, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// digitsFrom is the length of the run of digits starting at s[i:].
func digitsFrom(s string, i int) int {
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	return j - i
}

func trimSign(s string) string {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		return s[1:]
	}
	return s
}

// isInt: ^[+-]?(0|[1-9][0-9]*)$
func isInt(s string) bool {
	s = trimSign(s)
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	return digitsFrom(s, 0) == len(s)
}

// isZeroLed: ^0[0-9]+$
func isZeroLed(s string) bool {
	return len(s) >= 2 && s[0] == '0' && digitsFrom(s, 1) == len(s)-1
}

// isDecimal: ^[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?$
func isDecimal(s string) bool {
	s = trimSign(s)
	i := digitsFrom(s, 0)
	whole, frac := i, 0
	if i < len(s) && s[i] == '.' {
		frac = digitsFrom(s, i+1)
		i += 1 + frac
	}
	if whole == 0 && frac == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := digitsFrom(s, i)
		if exp == 0 {
			return false
		}
		i += exp
	}
	return i == len(s)
}

// isDateShape: ^[0-9]{4}-[0-9]{2}-[0-9]{2}$
func isDateShape(s string) bool {
	return len(s) == 10 && s[4] == '-' && s[7] == '-' &&
		digitsFrom(s, 0) == 4 && digitsFrom(s, 5) == 2 && digitsFrom(s, 8) == 2
}

func isHex(c byte) bool {
	return isDigit(c) || (c|0x20) >= 'a' && (c|0x20) <= 'f'
}

// isUUID: ^(?i)\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?$
func isUUID(s string) bool {
	s = strings.TrimPrefix(s, "{")
	s = strings.TrimSuffix(s, "}")
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// isPhoneBody: [0-9 ().\-]
func isPhoneBody(c byte) bool {
	return isDigit(c) || c == ' ' || c == '(' || c == ')' || c == '.' || c == '-'
}

// isSpace: the \s of Go's regular expressions, [\t\n\f\r ].
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

// isPhone: ^\+?[0-9 ().\-]{7,24}(\s*(x|ext\.?)\s*[0-9]{1,6})?$
func isPhone(s string) bool {
	s = strings.TrimPrefix(s, "+")
	body := 0
	for body < len(s) && isPhoneBody(s[body]) {
		body++
	}
	if body == len(s) {
		return body >= 7 && body <= 24
	}
	// An extension follows; the body's trailing spaces may be its \s*.
	spaces := 0
	for spaces < body && s[body-1-spaces] == ' ' {
		spaces++
	}
	if body < 7 || body-spaces > 24 {
		return false
	}
	i := body
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	switch {
	case strings.HasPrefix(s[i:], "x"):
		i++
	case strings.HasPrefix(s[i:], "ext"):
		i += 3
		if i < len(s) && s[i] == '.' {
			i++
		}
	default:
		return false
	}
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	n := digitsFrom(s, i)
	return n >= 1 && n <= 6 && i+n == len(s)
}

// isIDShape: ^[A-Za-z0-9][A-Za-z0-9_\-:.]{4,127}$
func isIDShape(s string) bool {
	if len(s) < 5 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := isDigit(c) || (c|0x20) >= 'a' && (c|0x20) <= 'z'
		if !alnum && (i == 0 || c != '_' && c != '-' && c != ':' && c != '.') {
			return false
		}
	}
	return true
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
	return strings.HasPrefix(s, "+") || strings.Contains(s, "(") || digitRuns(s, 3) >= 3 || isLocalPhone(s)
}

// digitRuns counts the runs of digits in s, up to limit.
func digitRuns(s string, limit int) int {
	n := 0
	for i := 0; i < len(s) && n < limit; i++ {
		if isDigit(s[i]) && (i == 0 || !isDigit(s[i-1])) {
			n++
		}
	}
	return n
}

// isLocalPhone: ^[0-9]{3}[-. ][0-9]{4}$
func isLocalPhone(s string) bool {
	return len(s) == 8 && digitsFrom(s, 0) == 3 && (s[3] == '-' || s[3] == '.' || s[3] == ' ') && digitsFrom(s, 4) == 4
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
//
// A record that is flat already (no nested object, every name kept) is
// returned as it is, not copied: callers must not modify the result.
func Flatten(rec map[string]any) map[string]any {
	if isFlat(rec) {
		return rec
	}
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

// isFlat reports whether Flatten would return a copy of rec unchanged.
func isFlat(rec map[string]any) bool {
	if len(rec) > MaxFields {
		return false
	}
	for k, v := range rec {
		if k == "" || len(k) > MaxNameLen {
			return false
		}
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			return false
		}
	}
	return true
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
