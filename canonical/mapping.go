package canonical

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gopkg.in/yaml.v3"
)

// MappingFile is one YAML mapping file: every mapped object of one source
// system.
type MappingFile struct {
	System  string       `yaml:"system" json:"system"`
	Objects []ObjectSpec `yaml:"objects" json:"objects"`
}

// ObjectSpec maps one source object onto one canonical entity.
type ObjectSpec struct {
	Object string `yaml:"object" json:"object"`
	Entity Entity `yaml:"entity" json:"entity"`
	// VersionField carries the record's version (its modified stamp).
	VersionField string `yaml:"version_field,omitempty" json:"version_field,omitempty"`
	// VersionFormats are Go time layouts for VersionField; empty means the
	// common ISO 8601 forms and epoch milliseconds.
	VersionFormats []string `yaml:"version_formats,omitempty" json:"version_formats,omitempty"`
	// DeletedField, when true in a record, makes it a delete.
	DeletedField string      `yaml:"deleted_field,omitempty" json:"deleted_field,omitempty"`
	Fields       []FieldSpec `yaml:"fields" json:"fields"`
	// Ignore lists source fields that are neither mapped nor kept in extras
	// (for example the source's own metadata).
	Ignore []string `yaml:"ignore,omitempty" json:"ignore,omitempty"`

	line int
}

// FieldSpec fills one canonical field from the source.
type FieldSpec struct {
	Target     string      `yaml:"target" json:"target"`
	Source     string      `yaml:"source,omitempty" json:"source,omitempty"`
	Sources    []string    `yaml:"sources,omitempty" json:"sources,omitempty"` // for concat
	Transforms []Transform `yaml:"transforms,omitempty" json:"transforms,omitempty"`
	Default    *string     `yaml:"default,omitempty" json:"default,omitempty"`
	Constant   *string     `yaml:"constant,omitempty" json:"constant,omitempty"`

	line int
}

// Transform is one step applied to a source value, in order. Exactly one of
// its fields is set. In YAML a transform is a bare name (trim, lower, upper,
// digits) or a one-key map (map, date, decimal, scale, concat, replace,
// prefix_strip).
type Transform struct {
	Name string            `json:"name"`
	Map  map[string]string `json:"map,omitempty"`
	Args []string          `json:"args,omitempty"`

	line int
}

var bareTransforms = []string{"trim", "lower", "upper", "digits"}
var argTransforms = []string{"date", "decimal", "scale", "concat", "replace", "strip_prefix"}

// UnmarshalYAML reads a bare name or a one-key map.
func (t *Transform) UnmarshalYAML(n *yaml.Node) error {
	t.line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		t.Name = n.Value
		if !slices.Contains(bareTransforms, t.Name) {
			return lineErr(n.Line, "unknown transform %q (bare transforms: %s; with arguments: map, %s)", t.Name, strings.Join(bareTransforms, ", "), strings.Join(argTransforms, ", "))
		}
		return nil
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return lineErr(n.Line, "a transform is one key, got %d", len(n.Content)/2)
		}
		t.Name = n.Content[0].Value
		v := n.Content[1]
		switch {
		case t.Name == "map":
			if v.Kind != yaml.MappingNode {
				return lineErr(v.Line, "map wants a mapping of source value to canonical value")
			}
			t.Map = map[string]string{}
			for i := 0; i < len(v.Content); i += 2 {
				t.Map[v.Content[i].Value] = v.Content[i+1].Value
			}
			return nil
		case slices.Contains(argTransforms, t.Name):
			switch v.Kind {
			case yaml.ScalarNode:
				t.Args = []string{v.Value}
			case yaml.SequenceNode:
				for _, c := range v.Content {
					if c.Kind != yaml.ScalarNode {
						return lineErr(c.Line, "%s arguments must be strings", t.Name)
					}
					t.Args = append(t.Args, c.Value)
				}
			default:
				return lineErr(v.Line, "%s wants a string or a list of strings", t.Name)
			}
			return t.check()
		}
		return lineErr(n.Line, "unknown transform %q", t.Name)
	}
	return lineErr(n.Line, "a transform is a name or a one-key map")
}

// MarshalYAML writes the form UnmarshalYAML reads.
func (t Transform) MarshalYAML() (any, error) {
	switch {
	case t.Map != nil:
		return map[string]any{"map": t.Map}, nil
	case len(t.Args) == 1:
		return map[string]any{t.Name: t.Args[0]}, nil
	case len(t.Args) > 1:
		return map[string]any{t.Name: t.Args}, nil
	}
	return t.Name, nil
}

func (t *Transform) check() error {
	switch t.Name {
	case "scale":
		if len(t.Args) != 1 {
			return lineErr(t.line, "scale wants one factor")
		}
		if _, err := decimal.NewFromString(t.Args[0]); err != nil {
			return lineErr(t.line, "scale factor %q is not a number", t.Args[0])
		}
	case "decimal":
		if len(t.Args) > 2 {
			return lineErr(t.line, "decimal wants [decimal separator, thousands separator]")
		}
	case "replace":
		if len(t.Args) != 2 {
			return lineErr(t.line, "replace wants [old, new]")
		}
	case "date":
		if len(t.Args) == 0 {
			return lineErr(t.line, "date wants at least one Go time layout")
		}
	}
	return nil
}

// UnmarshalYAML reads a field spec, keeping its line for errors.
func (f *FieldSpec) UnmarshalYAML(n *yaml.Node) error {
	type plain FieldSpec
	var p plain
	if n.Kind != yaml.MappingNode {
		return lineErr(n.Line, "a field is a mapping with target and source")
	}
	if err := checkKeys(n, "target", "source", "sources", "transforms", "default", "constant"); err != nil {
		return err
	}
	if err := n.Decode(&p); err != nil {
		return err
	}
	*f = FieldSpec(p)
	f.line = n.Line
	return nil
}

// UnmarshalYAML reads an object spec, keeping its line for errors.
func (o *ObjectSpec) UnmarshalYAML(n *yaml.Node) error {
	type plain ObjectSpec
	var p plain
	if n.Kind != yaml.MappingNode {
		return lineErr(n.Line, "an object is a mapping with object, entity and fields")
	}
	if err := checkKeys(n, "object", "entity", "version_field", "version_formats", "deleted_field", "fields", "ignore"); err != nil {
		return err
	}
	if err := n.Decode(&p); err != nil {
		return err
	}
	*o = ObjectSpec(p)
	o.line = n.Line
	return nil
}

func checkKeys(n *yaml.Node, allowed ...string) error {
	for i := 0; i < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(allowed, k.Value) {
			return lineErr(k.Line, "unknown key %q (allowed: %s)", k.Value, strings.Join(allowed, ", "))
		}
	}
	return nil
}

type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

func lineErr(line int, format string, a ...any) error {
	return &lineError{line: line, msg: fmt.Sprintf(format, a...)}
}

// ParseMappingFile parses and compiles a mapping file; name is used in errors,
// which read "name:line: reason".
func ParseMappingFile(name string, b []byte) (*MappingFile, []*Mapping, error) {
	var mf MappingFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&mf); err != nil {
		var le *lineError
		if errors.As(err, &le) {
			return nil, nil, fmt.Errorf("%s:%d: %s", name, le.line, le.msg)
		}
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if !ValidToken(mf.System) {
		return nil, nil, fmt.Errorf("%s:1: system %q must be a token of [a-z0-9_-]", name, mf.System)
	}
	var ms []*Mapping
	var errs []error
	for _, o := range mf.Objects {
		m, err := Compile(mf.System, o)
		if err != nil {
			var le *lineError
			if errors.As(err, &le) {
				errs = append(errs, fmt.Errorf("%s:%d: %s", name, le.line, le.msg))
			} else {
				errs = append(errs, fmt.Errorf("%s:%d: %w", name, o.line, err))
			}
			continue
		}
		ms = append(ms, m)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return &mf, ms, nil
}

// LoadMappingDir parses every *.yaml file of dir.
func LoadMappingDir(dir string) ([]*Mapping, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var all []*Mapping
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, ms, err := ParseMappingFile(f, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, ms...)
	}
	return all, errors.Join(errs...)
}

// Mapping is a compiled ObjectSpec: it turns one source record into a
// canonical record. It is immutable and safe for concurrent use.
type Mapping struct {
	System  string
	Spec    ObjectSpec
	Version int // the mapping's version in the mappings bucket; 0 for a shipped file not yet stored

	schema  Schema
	used    map[string]bool
	layouts []string
}

// Compile checks a spec against the canonical schema.
func Compile(system string, o ObjectSpec) (*Mapping, error) {
	if o.Object == "" {
		return nil, lineErr(o.line, "object is missing")
	}
	s, ok := SchemaOf(o.Entity)
	if !ok {
		return nil, lineErr(o.line, "object %s: unknown entity %q (want account, opportunity or contact)", o.Object, o.Entity)
	}
	m := &Mapping{System: system, Spec: o, schema: s, used: map[string]bool{}, layouts: o.VersionFormats}
	if len(m.layouts) == 0 {
		m.layouts = defaultTimeLayouts
	}
	seen := map[string]bool{}
	for _, f := range o.Fields {
		if _, ok := s.Field(f.Target); !ok {
			return nil, lineErr(f.line, "object %s: %q is not a field of %s", o.Object, f.Target, o.Entity)
		}
		if seen[f.Target] {
			return nil, lineErr(f.line, "object %s: %q is mapped twice", o.Object, f.Target)
		}
		seen[f.Target] = true
		n := 0
		for _, set := range []bool{f.Source != "", len(f.Sources) > 0, f.Constant != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return nil, lineErr(f.line, "object %s: field %s needs exactly one of source, sources or constant", o.Object, f.Target)
		}
		if len(f.Sources) > 0 && !slices.ContainsFunc(f.Transforms, func(t Transform) bool { return t.Name == "concat" }) {
			return nil, lineErr(f.line, "object %s: field %s has several sources but no concat transform", o.Object, f.Target)
		}
		for _, src := range append([]string{f.Source}, f.Sources...) {
			if src != "" {
				m.used[src] = true
			}
		}
	}
	for _, f := range s.Fields {
		if f.Required && !seen[f.Name] {
			return nil, lineErr(o.line, "object %s: required field %s of %s is not mapped", o.Object, f.Name, o.Entity)
		}
	}
	for _, x := range []string{o.VersionField, o.DeletedField} {
		if x != "" {
			m.used[x] = true
		}
	}
	for _, x := range o.Ignore {
		m.used[x] = true
	}
	return m, nil
}

// Entity is the canonical entity the mapping produces.
func (m *Mapping) Entity() Entity { return m.Spec.Entity }

// Object is the source object the mapping reads.
func (m *Mapping) Object() string { return m.Spec.Object }

// SourceFields lists the source fields the mapping reads, sorted.
func (m *Mapping) SourceFields() []string {
	out := make([]string, 0, len(m.used))
	for k := range m.used {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Result is a mapped record.
type Result struct {
	Record Record
	Op     Op
	// Version identifies the source version: the version field's value, or
	// a hash of the record's content when the source has none.
	Version string
	// Time is the parsed version; zero when the source carries none.
	Time time.Time
}

var defaultTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.000-0700", // Salesforce
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	time.DateOnly,
}

// Apply maps one source record. Every problem is reported as a *FieldError
// (joined), naming the canonical and the source field.
func (m *Mapping) Apply(raw map[string]any) (Result, error) {
	rec, _ := NewRecord(m.Spec.Entity)
	var res Result
	res.Op = OpUpsert
	var errs []error
	if m.Spec.DeletedField != "" {
		if v, ok := raw[m.Spec.DeletedField]; ok {
			if s := strings.ToLower(stringOf(v)); s == "true" || s == "1" {
				res.Op = OpDelete
			}
		}
	}
	for _, f := range m.Spec.Fields {
		v, err := m.field(f, raw)
		if err == nil && v != nil {
			err = rec.Set(f.Target, v)
		}
		if err != nil {
			src := f.Source
			if src == "" {
				src = strings.Join(f.Sources, "+")
			}
			errs = append(errs, &FieldError{Field: f.Target, Source: src, Reason: err.Error()})
		}
	}
	if res.Op == OpUpsert && len(errs) == 0 {
		if err := Validate(rec); err != nil {
			errs = append(errs, m.withSources(err))
		}
	}
	if res.Op == OpDelete && rec.Key() == "" {
		errs = append(errs, &FieldError{Field: m.Spec.Entity.KeyField(), Reason: "required field is missing"})
	}
	if m.Spec.VersionField != "" {
		if v := stringOf(raw[m.Spec.VersionField]); v != "" {
			t, err := parseTime(v, m.layouts)
			if err != nil {
				errs = append(errs, &FieldError{Field: "source_updated_at", Source: m.Spec.VersionField, Reason: err.Error()})
			}
			res.Version, res.Time = v, t.UTC()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	extras := map[string]any{}
	for k, v := range raw {
		if !m.used[k] {
			extras[k] = v
		}
	}
	rec.SetExtras(extras)
	if res.Version == "" {
		res.Version = contentHash(raw)
	}
	res.Record = rec
	return res, nil
}

func (m *Mapping) withSources(err error) error {
	var out []error
	for _, e := range unjoin(err) {
		var fe *FieldError
		if errors.As(e, &fe) {
			for _, f := range m.Spec.Fields {
				if f.Target == fe.Field && fe.Source == "" {
					fe.Source = f.Source
				}
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func contentHash(raw map[string]any) string {
	b, _ := json.Marshal(raw) // map keys are sorted by encoding/json
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:12])
}

// field computes one canonical value: nil when missing.
func (m *Mapping) field(f FieldSpec, raw map[string]any) (any, error) {
	var s string
	var present bool
	switch {
	case f.Constant != nil:
		s, present = *f.Constant, true
	case len(f.Sources) > 0:
		parts := make([]string, len(f.Sources))
		for i, src := range f.Sources {
			parts[i] = strings.TrimSpace(stringOf(raw[src]))
		}
		sep := " "
		for _, t := range f.Transforms {
			if t.Name == "concat" && len(t.Args) > 0 {
				sep = t.Args[0]
			}
		}
		nonEmpty := parts[:0]
		for _, p := range parts {
			if p != "" {
				nonEmpty = append(nonEmpty, p)
			}
		}
		s = strings.Join(nonEmpty, sep)
		present = s != ""
	default:
		v, ok := raw[f.Source]
		if ok && v != nil {
			s, present = stringOf(v), true
		}
	}
	fd, _ := m.schema.Field(f.Target)
	var layouts []string
	var decSep, thouSep string
	for _, t := range f.Transforms {
		switch t.Name {
		case "trim":
			s = strings.TrimSpace(s)
		case "lower":
			s = strings.ToLower(s)
		case "upper":
			s = strings.ToUpper(s)
		case "digits":
			s = strings.Map(func(r rune) rune {
				if (r >= '0' && r <= '9') || r == '+' {
					return r
				}
				return -1
			}, s)
		case "map":
			if v, ok := t.Map[s]; ok {
				s = v
			}
		case "replace":
			s = strings.ReplaceAll(s, t.Args[0], t.Args[1])
		case "strip_prefix":
			for _, p := range t.Args {
				s = strings.TrimPrefix(s, p)
			}
		case "date":
			layouts = t.Args
		case "decimal":
			decSep, thouSep = ".", ""
			if len(t.Args) > 0 {
				decSep = t.Args[0]
			}
			if len(t.Args) > 1 {
				thouSep = t.Args[1]
			}
		}
	}
	if strings.TrimSpace(s) == "" {
		present = false
	}
	if !present {
		if f.Default == nil {
			return nil, nil
		}
		s = *f.Default
	}
	var scale *decimal.Decimal
	for _, t := range f.Transforms {
		if t.Name == "scale" {
			d, _ := decimal.NewFromString(t.Args[0])
			scale = &d
		}
	}
	return convert(fd, s, layouts, decSep, thouSep, scale)
}

func convert(fd Field, s string, layouts []string, decSep, thouSep string, scale *decimal.Decimal) (any, error) {
	switch fd.Type {
	case TypeDecimal, TypePercent, TypeInteger:
		s = strings.TrimSpace(s)
		if thouSep != "" {
			s = strings.ReplaceAll(s, thouSep, "")
		}
		if decSep != "" && decSep != "." {
			s = strings.ReplaceAll(s, decSep, ".")
		}
		d, err := decimal.NewFromString(s)
		if err != nil {
			return nil, fmt.Errorf("not a decimal number: %q", s)
		}
		if scale != nil {
			d = d.Mul(*scale)
		}
		switch fd.Type {
		case TypePercent:
			return Percent{d}, nil
		case TypeInteger:
			if !d.Equal(d.Truncate(0)) || d.Abs().GreaterThan(decimal.NewFromInt(math.MaxInt64)) {
				return nil, fmt.Errorf("not a whole number: %q", s)
			}
			return d.IntPart(), nil
		}
		return d, nil
	case TypeDate:
		if len(layouts) == 0 {
			layouts = defaultTimeLayouts
		}
		t, err := parseTime(strings.TrimSpace(s), layouts)
		if err != nil {
			return nil, err
		}
		return DateOf(t), nil
	}
	return s, nil
}

func parseTime(s string, layouts []string) (time.Time, error) {
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && len(s) >= 12 {
		return time.UnixMilli(ms).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("not a date or time in a known format (%s): %q", strings.Join(layouts, " | "), s)
}

// stringOf renders a raw source value as text: JSON numbers exactly,
// booleans as true/false, objects and arrays as JSON.
func stringOf(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case fmt.Stringer:
		return x.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
