package canonical

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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

// FieldSpec fills one canonical field from the source. A source name with
// dots ("transactioncurrencyid.isocurrencycode") reads a key of that name
// or, when there is none, walks nested objects.
type FieldSpec struct {
	Target     string      `yaml:"target" json:"target"`
	Source     string      `yaml:"source,omitempty" json:"source,omitempty"`
	Sources    []string    `yaml:"sources,omitempty" json:"sources,omitempty"` // for concat
	Transforms []Transform `yaml:"transforms,omitempty" json:"transforms,omitempty"`
	Default    *string     `yaml:"default,omitempty" json:"default,omitempty"`
	Constant   *string     `yaml:"constant,omitempty" json:"constant,omitempty"`

	line int
}

// Transform is one step applied to a source value, in order. In YAML a
// transform is a bare name (trim, lower, upper, digits, and concat and
// decimal with their default arguments) or a one-key map:
// map (source value → canonical value), date (Go time layouts), decimal
// ([decimal separator, thousands separator]), scale (a factor), concat (the
// separator of sources), replace ([old, new]) or strip_prefix (prefixes).
type Transform struct {
	Name string            `json:"name"`
	Map  map[string]string `json:"map,omitempty"`
	Args []string          `json:"args,omitempty"`

	line int
}

var bareTransforms = []string{"trim", "lower", "upper", "digits"}
var argTransforms = []string{"date", "decimal", "scale", "concat", "replace", "strip_prefix"}

// defaultArgTransforms may also be written bare, taking their default
// arguments: concat joins with a space, decimal reads "." as the point.
var defaultArgTransforms = []string{"concat", "decimal"}

// UnmarshalYAML reads a bare name or a one-key map.
func (t *Transform) UnmarshalYAML(n *yaml.Node) error {
	v, err := newYAMLReader().transform(n)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// MarshalYAML writes the form UnmarshalYAML reads.
func (t Transform) MarshalYAML() (any, error) {
	switch {
	case t.Name == "map":
		m := t.Map
		if m == nil {
			m = map[string]string{}
		}
		return map[string]any{"map": m}, nil
	case slices.Contains(defaultArgTransforms, t.Name) && len(t.Args) == 0:
		return t.Name, nil
	case slices.Contains(argTransforms, t.Name) && len(t.Args) == 1:
		return map[string]any{t.Name: t.Args[0]}, nil
	case slices.Contains(argTransforms, t.Name):
		args := t.Args
		if args == nil {
			args = []string{}
		}
		return map[string]any{t.Name: args}, nil
	}
	return t.Name, nil
}

// check reports whether the transform is known and its arguments fit it.
func (t *Transform) check() error {
	switch {
	case t.Name == "map":
		return nil
	case slices.Contains(bareTransforms, t.Name):
		if len(t.Args) > 0 || t.Map != nil {
			return lineErr(t.line, "%s takes no arguments", t.Name)
		}
		return nil
	case !slices.Contains(argTransforms, t.Name):
		return lineErr(t.line, "unknown transform %q (bare transforms: %s; with arguments: map, %s)", t.Name, strings.Join(bareTransforms, ", "), strings.Join(argTransforms, ", "))
	}
	switch t.Name {
	case "scale":
		if len(t.Args) != 1 {
			return lineErr(t.line, "scale wants one factor")
		}
		d, err := decimal.NewFromString(t.Args[0])
		if err != nil {
			return lineErr(t.line, "scale factor %q is not a number", t.Args[0])
		}
		if i, f := DecimalDigits(d); i > 18 || f > 18 {
			return lineErr(t.line, "scale factor %q is out of range", t.Args[0])
		}
	case "decimal":
		if len(t.Args) > 2 {
			return lineErr(t.line, "decimal wants [decimal separator, thousands separator]")
		}
		if len(t.Args) > 0 && t.Args[0] == "" {
			return lineErr(t.line, "decimal separator is empty")
		}
		if len(t.Args) == 2 && (t.Args[1] == "" || t.Args[0] == t.Args[1]) {
			return lineErr(t.line, "thousands separator %q must be non-empty and differ from the decimal separator %q", t.Args[1], t.Args[0])
		}
	case "replace":
		if len(t.Args) != 2 {
			return lineErr(t.line, "replace wants [old, new]")
		}
		if t.Args[0] == "" {
			return lineErr(t.line, "replace wants a non-empty old string")
		}
	case "date":
		if len(t.Args) == 0 {
			return lineErr(t.line, "date wants at least one Go time layout")
		}
	case "concat":
		if len(t.Args) > 1 {
			return lineErr(t.line, "concat wants one separator")
		}
	}
	return nil
}

// UnmarshalYAML reads a field spec, keeping its line for errors.
func (f *FieldSpec) UnmarshalYAML(n *yaml.Node) error {
	v, err := newYAMLReader().fieldSpec(n)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// UnmarshalYAML reads an object spec, keeping its line for errors.
func (o *ObjectSpec) UnmarshalYAML(n *yaml.Node) error {
	v, err := newYAMLReader().objectSpec(n)
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// UnmarshalYAML reads a mapping file with the checks of ParseMappingFile's
// first stage (keys, types, lines); it does not compile the objects.
func (mf *MappingFile) UnmarshalYAML(n *yaml.Node) error {
	v, _, err := newYAMLReader().mappingFile(n)
	if err != nil {
		return err
	}
	*mf = v
	return nil
}

type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string {
	if e.line <= 0 {
		return e.msg // a spec built in code or read from JSON has no lines
	}
	return fmt.Sprintf("line %d: %s", e.line, e.msg)
}

func lineErr(line int, format string, a ...any) error {
	return &lineError{line: line, msg: fmt.Sprintf(format, a...)}
}

// yamlNodeBudget bounds the nodes read from one file, aliases expanded, so
// a small file cannot blow up into a huge one.
const yamlNodeBudget = 100_000

// yamlReader reads mapping files from YAML nodes by hand: every key is
// checked against the ones allowed where it stands, keys may not repeat, and
// every error carries the line it is about.
type yamlReader struct{ left int }

func newYAMLReader() *yamlReader { return &yamlReader{left: yamlNodeBudget} }

type yamlPair struct {
	key  string
	line int
	val  *yaml.Node
}

func (r *yamlReader) node(n *yaml.Node) (*yaml.Node, error) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	r.left--
	if r.left < 0 {
		return nil, lineErr(n.Line, "file too large: more than %d YAML nodes with aliases expanded", yamlNodeBudget)
	}
	return n, nil
}

// pairs reads a mapping node. Keys must be among allowed (any key when
// allowed is empty) and given once.
func (r *yamlReader) pairs(n *yaml.Node, what string, allowed ...string) ([]yamlPair, error) {
	n, err := r.node(n)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, lineErr(n.Line, "%s must be a mapping", what)
	}
	var out []yamlPair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := r.node(n.Content[i])
		if err != nil {
			return nil, err
		}
		if k.Kind != yaml.ScalarNode {
			return nil, lineErr(k.Line, "a key of %s must be a string", what)
		}
		if len(allowed) > 0 && !slices.Contains(allowed, k.Value) {
			return nil, lineErr(k.Line, "unknown key %q in %s (allowed: %s)", k.Value, what, strings.Join(allowed, ", "))
		}
		if first, dup := seen[k.Value]; dup {
			return nil, lineErr(k.Line, "key %q is given twice in %s (first on line %d)", k.Value, what, first)
		}
		seen[k.Value] = k.Line
		v, err := r.node(n.Content[i+1])
		if err != nil {
			return nil, err
		}
		out = append(out, yamlPair{key: k.Value, line: k.Line, val: v})
	}
	return out, nil
}

func (r *yamlReader) str(n *yaml.Node, what string) (string, error) {
	n, err := r.node(n)
	if err != nil {
		return "", err
	}
	var s string
	if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
		return "", lineErr(n.Line, "%s must be a string", what)
	}
	return s, nil
}

// optStr reads a string that may be null.
func (r *yamlReader) optStr(n *yaml.Node, what string) (*string, error) {
	n, err := r.node(n)
	if err != nil {
		return nil, err
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, nil
	}
	s, err := r.str(n, what)
	return &s, err
}

func (r *yamlReader) strs(n *yaml.Node, what string) ([]string, error) {
	n, err := r.node(n)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.SequenceNode {
		return nil, lineErr(n.Line, "%s must be a list of strings", what)
	}
	out := []string{}
	for _, c := range n.Content {
		s, err := r.str(c, what+" entries")
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// mappingFile reads a whole file; it also returns the line of system.
func (r *yamlReader) mappingFile(n *yaml.Node) (MappingFile, int, error) {
	var mf MappingFile
	ps, err := r.pairs(n, "a mapping file", "system", "objects")
	if err != nil {
		return mf, 0, err
	}
	sysLine, haveObjects := 0, false
	for _, p := range ps {
		switch p.key {
		case "system":
			sysLine = p.val.Line
			if mf.System, err = r.str(p.val, "system"); err != nil {
				return mf, 0, err
			}
		case "objects":
			haveObjects = true
			if p.val.Kind != yaml.SequenceNode {
				return mf, 0, lineErr(p.val.Line, "objects must be a list of objects")
			}
			for _, c := range p.val.Content {
				o, err := r.objectSpec(c)
				if err != nil {
					return mf, 0, err
				}
				mf.Objects = append(mf.Objects, o)
			}
		}
	}
	if sysLine == 0 {
		return mf, 0, lineErr(n.Line, "system is missing")
	}
	if !haveObjects || len(mf.Objects) == 0 {
		return mf, 0, lineErr(n.Line, "objects is missing or empty")
	}
	return mf, sysLine, nil
}

func (r *yamlReader) objectSpec(n *yaml.Node) (ObjectSpec, error) {
	o := ObjectSpec{line: n.Line}
	ps, err := r.pairs(n, "an object", "object", "entity", "version_field", "version_formats", "deleted_field", "fields", "ignore")
	if err != nil {
		return o, err
	}
	o.line = n.Line
	if len(n.Content) > 0 {
		o.line = n.Content[0].Line
	}
	for _, p := range ps {
		var err error
		switch p.key {
		case "object":
			o.Object, err = r.str(p.val, "object")
		case "entity":
			var s string
			s, err = r.str(p.val, "entity")
			o.Entity = Entity(s)
		case "version_field":
			o.VersionField, err = r.str(p.val, "version_field")
		case "version_formats":
			o.VersionFormats, err = r.strs(p.val, "version_formats")
		case "deleted_field":
			o.DeletedField, err = r.str(p.val, "deleted_field")
		case "ignore":
			o.Ignore, err = r.strs(p.val, "ignore")
		case "fields":
			if p.val.Kind != yaml.SequenceNode {
				return o, lineErr(p.val.Line, "fields must be a list of fields")
			}
			for _, c := range p.val.Content {
				f, err := r.fieldSpec(c)
				if err != nil {
					return o, err
				}
				o.Fields = append(o.Fields, f)
			}
		}
		if err != nil {
			return o, err
		}
	}
	return o, nil
}

func (r *yamlReader) fieldSpec(n *yaml.Node) (FieldSpec, error) {
	f := FieldSpec{line: n.Line}
	ps, err := r.pairs(n, "a field", "target", "source", "sources", "transforms", "default", "constant")
	if err != nil {
		return f, err
	}
	for _, p := range ps {
		var err error
		switch p.key {
		case "target":
			f.Target, err = r.str(p.val, "target")
		case "source":
			f.Source, err = r.str(p.val, "source")
		case "sources":
			f.Sources, err = r.strs(p.val, "sources")
		case "default":
			f.Default, err = r.optStr(p.val, "default")
		case "constant":
			f.Constant, err = r.optStr(p.val, "constant")
		case "transforms":
			if p.val.Kind != yaml.SequenceNode {
				return f, lineErr(p.val.Line, "transforms must be a list")
			}
			for _, c := range p.val.Content {
				t, err := r.transform(c)
				if err != nil {
					return f, err
				}
				f.Transforms = append(f.Transforms, t)
			}
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

func (r *yamlReader) transform(n *yaml.Node) (Transform, error) {
	n, err := r.node(n)
	if err != nil {
		return Transform{}, err
	}
	t := Transform{line: n.Line}
	switch n.Kind {
	case yaml.ScalarNode:
		t.Name = n.Value
		if !slices.Contains(bareTransforms, t.Name) && !slices.Contains(defaultArgTransforms, t.Name) {
			return t, lineErr(n.Line, "unknown transform %q (bare transforms: %s; with arguments: map, %s)", t.Name, strings.Join(bareTransforms, ", "), strings.Join(argTransforms, ", "))
		}
		return t, nil
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return t, lineErr(n.Line, "a transform is one key, got %d", len(n.Content)/2)
		}
		ps, err := r.pairs(n, "a transform")
		if err != nil {
			return t, err
		}
		t.Name = ps[0].key
		v := ps[0].val
		switch {
		case t.Name == "map":
			vs, err := r.pairs(v, "map (source value to canonical value)")
			if err != nil {
				return t, err
			}
			t.Map = map[string]string{}
			for _, p := range vs {
				if t.Map[p.key], err = r.str(p.val, "a map value"); err != nil {
					return t, err
				}
			}
			return t, nil
		case slices.Contains(argTransforms, t.Name):
			switch v.Kind {
			case yaml.ScalarNode:
				s, err := r.str(v, t.Name+" argument")
				if err != nil {
					return t, err
				}
				t.Args = []string{s}
			case yaml.SequenceNode:
				if t.Args, err = r.strs(v, t.Name+" arguments"); err != nil {
					return t, err
				}
			default:
				return t, lineErr(v.Line, "%s wants a string or a list of strings", t.Name)
			}
			return t, t.check()
		}
		return t, lineErr(n.Line, "unknown transform %q (bare transforms: %s; with arguments: map, %s)", t.Name, strings.Join(bareTransforms, ", "), strings.Join(argTransforms, ", "))
	}
	return t, lineErr(n.Line, "a transform is a name or a one-key map")
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserProblems are the problems yaml.v3's parser (not its scanner)
// reports. It numbers their lines from 0, and omits line 0.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// yamlSyntaxErr turns a YAML parser error into "name:line: reason", with
// lines counted from 1.
func yamlSyntaxErr(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(yamlParserProblems, msg) {
			line++
		}
	}
	return fmt.Errorf("%s:%d: %s", name, line, msg)
}

// ParseMappingFile parses and compiles a mapping file; name is used in errors,
// which read "name:line: reason" (several joined when several objects are
// wrong).
func ParseMappingFile(name string, b []byte) (mf *MappingFile, ms []*Mapping, err error) {
	defer func() {
		// The YAML parser is third-party code fed outside input; a panic
		// in it is a malformed file, not a crash of the caller.
		if p := recover(); p != nil {
			mf, ms, err = nil, nil, fmt.Errorf("%s:1: cannot parse YAML: %v", name, p)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%s:1: empty mapping file", name)
		}
		return nil, nil, yamlSyntaxErr(name, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, nil, fmt.Errorf("%s:%d: a mapping file holds one YAML document", name, max(more.Line, 1))
	} else if !errors.Is(err, io.EOF) {
		return nil, nil, yamlSyntaxErr(name, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, nil, fmt.Errorf("%s:1: empty mapping file", name)
	}
	file, sysLine, err := newYAMLReader().mappingFile(doc.Content[0])
	if err != nil {
		return nil, nil, locate(name, 1, err)
	}
	if !ValidToken(file.System) {
		return nil, nil, fmt.Errorf("%s:%d: system %q must be a token of [a-z0-9_-], 1..64 long", name, sysLine, file.System)
	}
	var errs []error
	seen := map[string]int{}
	for _, o := range file.Objects {
		if first, dup := seen[o.Object]; dup && o.Object != "" {
			errs = append(errs, fmt.Errorf("%s:%d: object %q is mapped twice (first on line %d)", name, o.line, o.Object, first))
			continue
		}
		seen[o.Object] = o.line
		m, err := Compile(file.System, o)
		if err != nil {
			errs = append(errs, locate(name, o.line, err))
			continue
		}
		ms = append(ms, m)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return &file, ms, nil
}

// locate writes err as "name:line: reason", with the error's own line when
// it has one.
func locate(name string, line int, err error) error {
	var le *lineError
	if errors.As(err, &le) {
		return fmt.Errorf("%s:%d: %s", name, max(le.line, 1), le.msg)
	}
	return fmt.Errorf("%s:%d: %w", name, max(line, 1), err)
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
	used    map[string]bool // source fields (paths) the mapping consumes
	parents map[string]bool // proper prefixes of dotted used paths
	layouts []string
}

// Compile checks a spec against the canonical schema: known entity and
// fields, each field mapped once from exactly one of source, sources or
// constant, every required field mapped, known transforms with fitting
// arguments that suit the field's type, and defaults and constants that are
// valid values of their field. The spec is copied, so the caller may reuse
// it.
func Compile(system string, o ObjectSpec) (*Mapping, error) {
	if !ValidToken(system) {
		return nil, lineErr(o.line, "system %q must be a token of [a-z0-9_-], 1..64 long", system)
	}
	if o.Object == "" {
		return nil, lineErr(o.line, "object is missing")
	}
	if strings.IndexFunc(o.Object, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 || !utf8.ValidString(o.Object) {
		return nil, lineErr(o.line, "object %q must be a name without spaces or control characters", o.Object)
	}
	s, ok := SchemaOf(o.Entity)
	if !ok {
		return nil, lineErr(o.line, "object %q: unknown entity %q (want account, opportunity or contact)", o.Object, o.Entity)
	}
	o = cloneSpec(o)
	m := &Mapping{System: system, Spec: o, schema: s, used: map[string]bool{}, parents: map[string]bool{}, layouts: o.VersionFormats}
	if len(m.layouts) == 0 {
		m.layouts = defaultTimeLayouts
	}
	seen := map[string]bool{}
	for _, f := range o.Fields {
		fd, ok := s.Field(f.Target)
		if !ok {
			return nil, lineErr(f.line, "object %q: %q is not a field of %s", o.Object, f.Target, o.Entity)
		}
		if seen[f.Target] {
			return nil, lineErr(f.line, "object %q: %q is mapped twice", o.Object, f.Target)
		}
		seen[f.Target] = true
		n := 0
		for _, set := range []bool{f.Source != "", len(f.Sources) > 0, f.Constant != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return nil, lineErr(f.line, "object %q: field %s needs exactly one of source, sources or constant", o.Object, f.Target)
		}
		hasConcat := slices.ContainsFunc(f.Transforms, func(t Transform) bool { return t.Name == "concat" })
		if len(f.Sources) > 0 && !hasConcat {
			return nil, lineErr(f.line, "object %q: field %s has several sources but no concat transform", o.Object, f.Target)
		}
		if slices.Contains(f.Sources, "") {
			return nil, lineErr(f.line, "object %q: field %s has an empty source name", o.Object, f.Target)
		}
		for _, t := range f.Transforms {
			if t.line == 0 {
				t.line = f.line
			}
			if err := t.check(); err != nil {
				return nil, err
			}
			if err := transformFits(t, fd, len(f.Sources) > 0); err != nil {
				return nil, lineErr(t.line, "object %q: field %s: %v", o.Object, f.Target, err)
			}
		}
		for _, src := range append([]string{f.Source}, f.Sources...) {
			m.use(src)
		}
	}
	for _, f := range s.Fields {
		if f.Required && !seen[f.Name] {
			return nil, lineErr(o.line, "object %q: required field %s of %s is not mapped", o.Object, f.Name, o.Entity)
		}
	}
	m.use(o.VersionField)
	m.use(o.DeletedField)
	for _, x := range o.Ignore {
		m.use(x)
	}
	// Constants and defaults must be valid values of their fields.
	for _, f := range o.Fields {
		if f.Constant == nil && f.Default == nil {
			continue
		}
		what, val := "default", f.Default
		if f.Constant != nil {
			what, val = "constant", f.Constant
		}
		fd, _ := s.Field(f.Target)
		v, err := m.field(f, nil)
		if err == nil && v == nil {
			err = errors.New("is empty")
		}
		if err == nil {
			err = checkValue(fd, v)
		}
		if err != nil {
			return nil, lineErr(f.line, "object %q: field %s: %s %q: %v", o.Object, f.Target, what, *val, err)
		}
	}
	return m, nil
}

// transformFits reports whether t makes sense for field fd.
func transformFits(t Transform, fd Field, concat bool) error {
	numeric := fd.Type == TypeDecimal || fd.Type == TypePercent || fd.Type == TypeInteger
	switch {
	case t.Name == "date" && fd.Type != TypeDate:
		return fmt.Errorf("date applies to date fields, not %s", fd.Type)
	case (t.Name == "decimal" || t.Name == "scale") && !numeric:
		return fmt.Errorf("%s applies to decimal, integer and percent fields, not %s", t.Name, fd.Type)
	case t.Name == "concat" && !concat:
		return fmt.Errorf("concat needs sources (a list), not source")
	}
	return nil
}

func (m *Mapping) use(path string) {
	if path == "" {
		return
	}
	m.used[path] = true
	for i := range len(path) {
		if path[i] == '.' {
			m.parents[path[:i]] = true
		}
	}
}

func cloneSpec(o ObjectSpec) ObjectSpec {
	o.VersionFormats = slices.Clone(o.VersionFormats)
	o.Ignore = slices.Clone(o.Ignore)
	o.Fields = slices.Clone(o.Fields)
	for i, f := range o.Fields {
		f.Sources = slices.Clone(f.Sources)
		f.Transforms = slices.Clone(f.Transforms)
		for j, t := range f.Transforms {
			t.Map = maps.Clone(t.Map)
			t.Args = slices.Clone(t.Args)
			f.Transforms[j] = t
		}
		if f.Default != nil {
			d := *f.Default
			f.Default = &d
		}
		if f.Constant != nil {
			c := *f.Constant
			f.Constant = &c
		}
		o.Fields[i] = f
	}
	return o
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
	// Time is the parsed version, UTC; zero when the source carries none.
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
// (joined), naming the canonical and the source field. A record whose
// deleted field is true maps to a delete that carries only the key; an
// upsert's extras hold every source field the mapping does not use.
func (m *Mapping) Apply(raw map[string]any) (Result, error) {
	rec, _ := NewRecord(m.Spec.Entity)
	res := Result{Op: OpUpsert}
	if m.Spec.DeletedField != "" {
		if v, ok := lookup(raw, m.Spec.DeletedField); ok {
			if s := strings.ToLower(strings.TrimSpace(stringOf(v))); s == "true" || s == "1" {
				res.Op = OpDelete
			}
		}
	}
	key := m.Spec.Entity.KeyField()
	var errs []error
	reported := map[string]bool{}
	for _, f := range m.Spec.Fields {
		if res.Op == OpDelete && f.Target != key {
			continue
		}
		v, err := m.field(f, raw)
		if err == nil && v != nil {
			err = rec.Set(f.Target, v)
		}
		if err != nil {
			errs = append(errs, &FieldError{Field: f.Target, Source: f.sourceName(), Reason: err.Error()})
			reported[f.Target] = true
		}
	}
	for _, e := range unjoin(validate(rec, res.Op == OpDelete)) {
		var fe *FieldError
		if errors.As(e, &fe) {
			if reported[fe.Field] {
				continue
			}
			if f, ok := m.spec(fe.Field); ok && fe.Source == "" {
				fe.Source = f.sourceName()
			}
		}
		errs = append(errs, e)
	}
	if m.Spec.VersionField != "" {
		v, _ := lookup(raw, m.Spec.VersionField)
		if s := strings.TrimSpace(stringOf(v)); s != "" {
			t, err := m.ParseVersion(s)
			if err != nil {
				errs = append(errs, &FieldError{Field: "source_updated_at", Source: m.Spec.VersionField, Reason: err.Error()})
			}
			res.Version, res.Time = s, t
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	if res.Op == OpUpsert {
		rec.SetExtras(m.extras(raw))
	}
	if res.Version == "" {
		res.Version = contentHash(raw)
	}
	res.Record = rec
	return res, nil
}

// ParseVersion reads a value of the version field as a time, with the
// mapping's version formats (or the common ISO 8601 forms and epoch
// milliseconds), in UTC.
func (m *Mapping) ParseVersion(v string) (time.Time, error) {
	t, err := parseTime(strings.TrimSpace(v), m.layouts)
	if err != nil {
		return time.Time{}, err
	}
	t = t.UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("year %d is outside 1..9999", t.Year())
	}
	return t, nil
}

// sourceName names where a field's value comes from, for errors.
func (f FieldSpec) sourceName() string {
	if f.Source != "" {
		return f.Source
	}
	return strings.Join(f.Sources, "+")
}

func (m *Mapping) spec(target string) (FieldSpec, bool) {
	for _, f := range m.Spec.Fields {
		if f.Target == target {
			return f, true
		}
	}
	return FieldSpec{}, false
}

// extras returns the source fields the mapping does not use. A nested object
// some of whose fields are used keeps the rest.
func (m *Mapping) extras(raw map[string]any) map[string]any {
	return m.prune(raw, "")
}

func (m *Mapping) prune(obj map[string]any, prefix string) map[string]any {
	out := map[string]any{}
	for k, v := range obj {
		p := prefix + k
		if m.used[p] {
			continue
		}
		if sub, ok := v.(map[string]any); ok && m.parents[p] {
			if rest := m.prune(sub, p+"."); len(rest) > 0 {
				out[k] = rest
			}
			continue
		}
		out[k] = v
	}
	return out
}

// lookup finds a source field: a key of that exact name, else, for a dotted
// path, the field of a nested object.
func lookup(raw map[string]any, path string) (any, bool) {
	if v, ok := raw[path]; ok {
		return v, true
	}
	for i := range len(path) {
		if path[i] != '.' {
			continue
		}
		if sub, ok := raw[path[:i]].(map[string]any); ok {
			if v, ok := lookup(sub, path[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

func contentHash(raw map[string]any) string {
	b, err := json.Marshal(raw) // map keys are sorted by encoding/json
	if err != nil {
		b = fmt.Appendf(nil, "%#v", raw) // fmt sorts map keys too
	}
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
		parts := make([]string, 0, len(f.Sources))
		for _, src := range f.Sources {
			v, _ := lookup(raw, src)
			if p := strings.TrimSpace(stringOf(v)); p != "" {
				parts = append(parts, p)
			}
		}
		sep := " "
		for _, t := range f.Transforms {
			if t.Name == "concat" && len(t.Args) > 0 {
				sep = t.Args[0]
			}
		}
		s = strings.Join(parts, sep)
		present = s != ""
	default:
		v, ok := lookup(raw, f.Source)
		if ok && v != nil {
			s, present = stringOf(v), true
		}
	}
	fd, _ := m.schema.Field(f.Target)
	var layouts []string
	var decSep, thouSep string
	var scale *decimal.Decimal
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
		case "scale":
			d, err := decimal.NewFromString(t.Args[0])
			if err != nil {
				return nil, fmt.Errorf("scale factor %q is not a number", t.Args[0])
			}
			scale = &d
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
	return convert(fd, s, layouts, decSep, thouSep, scale)
}

// numberLimit bounds the digits of a source number before any arithmetic, so
// an absurd exponent cannot cost time or memory (the canonical limits are
// checked later and are tighter).
const numberLimit = 64

func convert(fd Field, s string, layouts []string, decSep, thouSep string, scale *decimal.Decimal) (any, error) {
	switch fd.Type {
	case TypeDecimal, TypePercent, TypeInteger:
		d, err := parseNumber(s, decSep, thouSep)
		if err != nil {
			return nil, err
		}
		if scale != nil {
			d = normDecimal(d.Mul(*scale))
		}
		switch fd.Type {
		case TypePercent:
			return Percent{d}, nil
		case TypeInteger:
			i, f := DecimalDigits(d)
			if f > 0 {
				return nil, fmt.Errorf("not a whole number: %q", s)
			}
			if i > 19 || !d.BigInt().IsInt64() {
				return nil, fmt.Errorf("out of range for an integer: %q", s)
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
		// The date as written in the source, in the source's own offset:
		// never converted to UTC first, which would shift it a day.
		return DateOf(t), nil
	}
	return s, nil
}

// parseNumber reads a decimal number. Only "." is a decimal point unless
// the mapping's decimal transform names another separator, and thousands
// separators are accepted only when it names one: "1.234,50" with
// decimal: [",", "."] is 1234.5, and without it an error.
func parseNumber(s, decSep, thouSep string) (decimal.Decimal, error) {
	in := s
	s = strings.TrimSpace(s)
	if thouSep != "" {
		s = strings.ReplaceAll(s, thouSep, "")
	}
	if decSep != "" && decSep != "." {
		if strings.Contains(s, ".") {
			return decimal.Decimal{}, fmt.Errorf("not a decimal number with decimal separator %q: %q", decSep, in)
		}
		s = strings.ReplaceAll(s, decSep, ".")
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("not a decimal number: %q", in)
	}
	d = normDecimal(d)
	if i, f := DecimalDigits(d); i > numberLimit || f > numberLimit {
		return decimal.Decimal{}, fmt.Errorf("number out of range: %q", abbrevString(in))
	}
	return d, nil
}

func abbrevString(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
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
	return time.Time{}, fmt.Errorf("not a date or time in a known format %q: %q", layouts, abbrevString(s))
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
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
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
