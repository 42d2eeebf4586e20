package crmsim

import (
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// soqlError is a query error as Salesforce reports it: an error code and a
// message that points at the offending column.
type soqlError struct {
	code string // MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE
	msg  string
	pos  int // byte offset in the query, -1 for none
}

func (e *soqlError) Error() string { return e.code + ": " + e.msg }

// message renders the error the way the REST API does: the query line, a
// caret under the column, "ERROR at Row:r:Column:c" and the reason.
func (e *soqlError) message(q string) string {
	if e.pos < 0 || e.pos > len(q) {
		return e.msg
	}
	row, col, lineStart := 1, 1, 0
	for i := 0; i < e.pos; i++ {
		if q[i] == '\n' {
			row++
			lineStart = i + 1
		}
	}
	col = e.pos - lineStart + 1
	line := q[lineStart:]
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	return fmt.Sprintf("\n%s\n%s^\nERROR at Row:%d:Column:%d\n%s", line, strings.Repeat(" ", col-1), row, col, e.msg)
}

type sqKind int

const (
	sqEOF sqKind = iota
	sqIdent
	sqString
	sqNumber
	sqDateTime
	sqDate
	sqOp
	sqLParen
	sqRParen
	sqComma
)

type sqTok struct {
	kind sqKind
	text string
	pos  int
}

var (
	reSOQLDateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})`)
	reSOQLDate     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}`)
	reSOQLNumber   = regexp.MustCompile(`^-?\d+(\.\d+)?`)
)

func lexSOQL(q string) ([]sqTok, *soqlError) {
	var toks []sqTok
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, sqTok{sqLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, sqTok{sqRParen, ")", i})
			i++
		case c == ',':
			toks = append(toks, sqTok{sqComma, ",", i})
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(q) && q[j] != '\''; j++ {
				if q[j] == '\\' && j+1 < len(q) {
					j++
					switch q[j] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					default:
						b.WriteByte(q[j])
					}
					continue
				}
				b.WriteByte(q[j])
			}
			if j >= len(q) {
				return nil, &soqlError{"MALFORMED_QUERY", "unexpected token: <EOF>", len(q)}
			}
			toks = append(toks, sqTok{sqString, b.String(), i})
			i = j + 1
		case c == '=' || c == '<' || c == '>' || c == '!':
			op := string(c)
			if i+1 < len(q) && (q[i+1] == '=' || (c == '<' && q[i+1] == '>')) {
				op += string(q[i+1])
			}
			if op == "!" {
				return nil, &soqlError{"MALFORMED_QUERY", "unexpected token: '!'", i}
			}
			toks = append(toks, sqTok{sqOp, op, i})
			i += len(op)
		case c >= '0' && c <= '9' || (c == '-' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9'):
			rest := q[i:]
			switch {
			case reSOQLDateTime.MatchString(rest):
				m := reSOQLDateTime.FindString(rest)
				toks = append(toks, sqTok{sqDateTime, m, i})
				i += len(m)
			case reSOQLDate.MatchString(rest):
				m := reSOQLDate.FindString(rest)
				toks = append(toks, sqTok{sqDate, m, i})
				i += len(m)
			default:
				m := reSOQLNumber.FindString(rest)
				toks = append(toks, sqTok{sqNumber, m, i})
				i += len(m)
			}
		case isIdentStart(c):
			j := i + 1
			for j < len(q) && (isIdentStart(q[j]) || (q[j] >= '0' && q[j] <= '9') || q[j] == '.' || q[j] == ':') {
				j++
			}
			toks = append(toks, sqTok{sqIdent, q[i:j], i})
			i = j
		default:
			return nil, &soqlError{"MALFORMED_QUERY", fmt.Sprintf("unexpected token: '%c'", c), i}
		}
	}
	return append(toks, sqTok{sqEOF, "<EOF>", len(q)}), nil
}

func isIdentStart(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// soqlQuery is a parsed SELECT.
type soqlQuery struct {
	fields   []sqTok
	fieldsFn string // ALL, STANDARD or CUSTOM for FIELDS(...)
	object   sqTok
	where    sqNode
	order    []sqOrder
	limit    int // -1 for none
	offset   int
}

type sqOrder struct {
	field     sqTok
	desc      bool
	nullsLast bool
}

type sqNode interface{}

type sqBool struct {
	or   bool
	l, r sqNode
}

type sqNot struct{ x sqNode }

type sqCmp struct {
	field sqTok
	op    string // = != < <= > >= IN NOT IN LIKE
	vals  []sqTok
}

var soqlKeywords = map[string]bool{
	"SELECT": true, "FROM": true, "WHERE": true, "AND": true, "OR": true, "NOT": true, "IN": true,
	"LIKE": true, "ORDER": true, "BY": true, "ASC": true, "DESC": true, "NULLS": true, "LIMIT": true,
	"OFFSET": true,
}

type sqParser struct {
	toks  []sqTok
	i     int
	depth int
}

// maxNesting bounds parentheses and NOT nesting in WHERE and $filter.
const maxNesting = 64

func (p *sqParser) peek() sqTok { return p.toks[p.i] }

func (p *sqParser) next() sqTok {
	t := p.toks[p.i]
	if t.kind != sqEOF {
		p.i++
	}
	return t
}

func (p *sqParser) keyword(k string) bool {
	if t := p.peek(); t.kind == sqIdent && strings.EqualFold(t.text, k) {
		p.i++
		return true
	}
	return false
}

func unexpected(t sqTok) *soqlError {
	if t.kind == sqEOF {
		return &soqlError{"MALFORMED_QUERY", "unexpected token: <EOF>", t.pos}
	}
	return &soqlError{"MALFORMED_QUERY", fmt.Sprintf("unexpected token: '%s'", t.text), t.pos}
}

func (p *sqParser) expectKeyword(k string) *soqlError {
	if !p.keyword(k) {
		return unexpected(p.peek())
	}
	return nil
}

func (p *sqParser) ident() (sqTok, *soqlError) {
	t := p.next()
	if t.kind != sqIdent || soqlKeywords[strings.ToUpper(t.text)] {
		return t, unexpected(t)
	}
	return t, nil
}

// parseSOQL parses the subset of SOQL connectors use: SELECT fields or
// FIELDS(ALL|STANDARD|CUSTOM) FROM object, WHERE with AND/OR/NOT,
// parentheses, comparison operators, IN, NOT IN and LIKE, ORDER BY with
// ASC/DESC and NULLS FIRST/LAST, LIMIT and OFFSET.
func parseSOQL(q string) (*soqlQuery, *soqlError) {
	toks, err := lexSOQL(q)
	if err != nil {
		return nil, err
	}
	p := &sqParser{toks: toks}
	out := &soqlQuery{limit: -1}
	if err := p.expectKeyword("SELECT"); err != nil {
		return nil, err
	}
	for {
		if t := p.peek(); t.kind == sqIdent && strings.EqualFold(t.text, "FIELDS") && p.toks[p.i+1].kind == sqLParen {
			p.i += 2
			fn := p.next()
			switch strings.ToUpper(fn.text) {
			case "ALL", "STANDARD", "CUSTOM":
				out.fieldsFn = strings.ToUpper(fn.text)
			default:
				return nil, unexpected(fn)
			}
			if t := p.next(); t.kind != sqRParen {
				return nil, unexpected(t)
			}
		} else {
			f, err := p.ident()
			if err != nil {
				return nil, err
			}
			out.fields = append(out.fields, f)
		}
		if p.peek().kind != sqComma {
			break
		}
		p.next()
	}
	if err := p.expectKeyword("FROM"); err != nil {
		return nil, err
	}
	obj, err := p.ident()
	if err != nil {
		return nil, err
	}
	out.object = obj
	if p.keyword("WHERE") {
		if out.where, err = p.or(); err != nil {
			return nil, err
		}
	}
	if p.keyword("ORDER") {
		if err := p.expectKeyword("BY"); err != nil {
			return nil, err
		}
		for {
			f, err := p.ident()
			if err != nil {
				return nil, err
			}
			o := sqOrder{field: f}
			if p.keyword("DESC") {
				o.desc = true
			} else {
				p.keyword("ASC")
			}
			o.nullsLast = o.desc
			if p.keyword("NULLS") {
				switch {
				case p.keyword("FIRST"):
					o.nullsLast = false
				case p.keyword("LAST"):
					o.nullsLast = true
				default:
					return nil, unexpected(p.peek())
				}
			}
			out.order = append(out.order, o)
			if p.peek().kind != sqComma {
				break
			}
			p.next()
		}
	}
	if p.keyword("LIMIT") {
		if out.limit, err = p.count(); err != nil {
			return nil, err
		}
	}
	if p.keyword("OFFSET") {
		if out.offset, err = p.count(); err != nil {
			return nil, err
		}
	}
	if t := p.peek(); t.kind != sqEOF {
		return nil, unexpected(t)
	}
	return out, nil
}

func (p *sqParser) count() (int, *soqlError) {
	t := p.next()
	n, err := strconv.Atoi(t.text)
	if t.kind != sqNumber || err != nil || n < 0 {
		return 0, unexpected(t)
	}
	return n, nil
}

func (p *sqParser) or() (sqNode, *soqlError) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = sqBool{or: true, l: l, r: r}
	}
	return l, nil
}

func (p *sqParser) and() (sqNode, *soqlError) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = sqBool{l: l, r: r}
	}
	return l, nil
}

func (p *sqParser) unary() (sqNode, *soqlError) {
	if p.depth++; p.depth > maxNesting {
		return nil, &soqlError{"MALFORMED_QUERY", "the condition is nested too deeply", p.peek().pos}
	}
	defer func() { p.depth-- }()
	if p.keyword("NOT") {
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return sqNot{x}, nil
	}
	if p.peek().kind == sqLParen {
		p.next()
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != sqRParen {
			return nil, unexpected(t)
		}
		return x, nil
	}
	f, err := p.ident()
	if err != nil {
		return nil, err
	}
	c := sqCmp{field: f}
	switch {
	case p.keyword("NOT"):
		if err := p.expectKeyword("IN"); err != nil {
			return nil, err
		}
		c.op = "NOT IN"
	case p.keyword("IN"):
		c.op = "IN"
	case p.keyword("LIKE"):
		c.op = "LIKE"
	case p.peek().kind == sqOp:
		c.op = p.next().text
		if c.op == "<>" {
			c.op = "!="
		}
	default:
		return nil, unexpected(p.peek())
	}
	if c.op == "IN" || c.op == "NOT IN" {
		if t := p.next(); t.kind != sqLParen {
			return nil, unexpected(t)
		}
		for {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			c.vals = append(c.vals, v)
			if t := p.next(); t.kind == sqRParen {
				break
			} else if t.kind != sqComma {
				return nil, unexpected(t)
			}
		}
		return c, nil
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	c.vals = []sqTok{v}
	return c, nil
}

func (p *sqParser) value() (sqTok, *soqlError) {
	t := p.next()
	switch t.kind {
	case sqString, sqNumber, sqDateTime, sqDate:
		return t, nil
	case sqIdent:
		switch strings.ToLower(t.text) {
		case "null", "true", "false":
			t.text = strings.ToLower(t.text)
			return t, nil
		}
	}
	return t, unexpected(t)
}

// soqlPlan is a query bound to a table: the selected fields, a predicate and
// an ordering.
type soqlPlan struct {
	sel   []fieldDef
	match func(*record) bool
	less  func(a, b *record) bool
}

func noSuchColumn(t *table, tok sqTok) *soqlError {
	return &soqlError{"INVALID_FIELD", fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", tok.text, t.def.name), tok.pos}
}

func isCustom(t *table, f fieldDef) bool {
	for _, d := range t.def.fields {
		if d.name == f.name {
			return false
		}
	}
	return true
}

// plan binds q to t, checking every field name and literal type the way
// Salesforce does.
func (q *soqlQuery) plan(t *table) (*soqlPlan, *soqlError) {
	p := &soqlPlan{match: func(*record) bool { return true }}
	if q.fieldsFn != "" {
		for _, f := range t.fields {
			c := isCustom(t, f)
			if q.fieldsFn == "ALL" || (q.fieldsFn == "CUSTOM") == c {
				p.sel = append(p.sel, f)
			}
		}
	}
	seen := map[string]bool{}
	for _, f := range p.sel {
		seen[f.name] = true
	}
	for _, tok := range q.fields {
		f, ok := t.resolve(tok.text, true)
		if !ok {
			return nil, noSuchColumn(t, tok)
		}
		if seen[f.name] {
			return nil, &soqlError{"MALFORMED_QUERY", "duplicate field selected: " + t.current(f.name), tok.pos}
		}
		seen[f.name] = true
		p.sel = append(p.sel, f)
	}
	if q.where != nil {
		m, err := compileSOQL(q.where, t)
		if err != nil {
			return nil, err
		}
		p.match = m
	}
	type key struct {
		f         fieldDef
		desc      bool
		nullsLast bool
	}
	var keys []key
	for _, o := range q.order {
		f, ok := t.resolve(o.field.text, true)
		if !ok {
			return nil, noSuchColumn(t, o.field)
		}
		keys = append(keys, key{f, o.desc, o.nullsLast})
	}
	p.less = func(a, b *record) bool {
		for _, k := range keys {
			va, vb := a.value(k.f), b.value(k.f)
			switch {
			case va == nil && vb == nil:
				continue
			case va == nil:
				return !k.nullsLast
			case vb == nil:
				return k.nullsLast
			}
			c := compareSOQL(k.f.typ, va, vb)
			if c == 0 {
				continue
			}
			if k.desc {
				return c > 0
			}
			return c < 0
		}
		return false
	}
	return p, nil
}

func (p *soqlPlan) sort(rs []*record) {
	sort.SliceStable(rs, func(i, j int) bool { return p.less(rs[i], rs[j]) })
}

// compareSOQL orders store values; text compares case-insensitively, as
// Salesforce does.
func compareSOQL(t valueType, a, b any) int {
	if t == tString || t == tID {
		return strings.Compare(strings.ToLower(fmt.Sprint(a)), strings.ToLower(fmt.Sprint(b)))
	}
	return compareValues(t, a, b)
}

func compileSOQL(n sqNode, t *table) (func(*record) bool, *soqlError) {
	switch x := n.(type) {
	case sqBool:
		l, err := compileSOQL(x.l, t)
		if err != nil {
			return nil, err
		}
		r, err := compileSOQL(x.r, t)
		if err != nil {
			return nil, err
		}
		if x.or {
			return func(rec *record) bool { return l(rec) || r(rec) }, nil
		}
		return func(rec *record) bool { return l(rec) && r(rec) }, nil
	case sqNot:
		inner, err := compileSOQL(x.x, t)
		if err != nil {
			return nil, err
		}
		return func(rec *record) bool { return !inner(rec) }, nil
	case sqCmp:
		return compileCmp(x, t)
	}
	return nil, &soqlError{"MALFORMED_QUERY", "unsupported condition", -1}
}

func typeName(t valueType) string {
	switch t {
	case tDateTime:
		return "dateTime"
	case tDate:
		return "date"
	case tDecimal:
		return "double"
	case tInt, tOption:
		return "integer"
	case tBool:
		return "boolean"
	}
	return "string"
}

// literal converts a SOQL literal to a store value of f's type.
func literal(f fieldDef, name string, tok sqTok) (any, *soqlError) {
	if tok.kind == sqIdent && tok.text == "null" {
		return nil, nil
	}
	bad := func() *soqlError {
		quotes := "should not be enclosed in quotes"
		if f.typ == tString || f.typ == tID {
			quotes = "should be enclosed in quotes"
		}
		return &soqlError{"INVALID_FIELD", fmt.Sprintf("value of filter criterion for field '%s' must be of type %s and %s", name, typeName(f.typ), quotes), tok.pos}
	}
	switch f.typ {
	case tDateTime:
		if tok.kind != sqDateTime {
			return nil, bad()
		}
		v, err := parseAnyTime(tok.text)
		if err != nil {
			return nil, bad()
		}
		return v, nil
	case tDate:
		if tok.kind != sqDate {
			return nil, bad()
		}
		return tok.text, nil
	case tDecimal, tInt, tOption:
		if tok.kind != sqNumber {
			return nil, bad()
		}
		r, ok := new(big.Rat).SetString(tok.text)
		if !ok {
			return nil, bad()
		}
		return r, nil
	case tBool:
		if tok.kind != sqIdent || (tok.text != "true" && tok.text != "false") {
			return nil, bad()
		}
		return tok.text == "true", nil
	}
	if tok.kind != sqString {
		return nil, bad()
	}
	return tok.text, nil
}

// cmpLiteral compares a non-nil record value with a non-nil literal.
func cmpLiteral(t valueType, v, lit any) int {
	if r, ok := lit.(*big.Rat); ok {
		x, ok := new(big.Rat).SetString(fmt.Sprint(v))
		if !ok {
			return -1
		}
		return x.Cmp(r)
	}
	return compareSOQL(t, v, lit)
}

func likeRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)^")
	for _, r := range pattern {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func compileCmp(c sqCmp, t *table) (func(*record) bool, *soqlError) {
	f, ok := t.resolve(c.field.text, true)
	if !ok {
		return nil, noSuchColumn(t, c.field)
	}
	name := t.current(f.name)
	lits := make([]any, len(c.vals))
	for i, tok := range c.vals {
		v, err := literal(f, name, tok)
		if err != nil {
			return nil, err
		}
		lits[i] = v
	}
	switch c.op {
	case "LIKE":
		s, ok := lits[0].(string)
		if !ok || (f.typ != tString && f.typ != tID) {
			return nil, &soqlError{"INVALID_FIELD", fmt.Sprintf("invalid operator on field '%s'", name), c.field.pos}
		}
		re := likeRegexp(s)
		return func(r *record) bool {
			v, ok := r.value(f).(string)
			return ok && re.MatchString(v)
		}, nil
	case "IN", "NOT IN":
		neg := c.op == "NOT IN"
		return func(r *record) bool {
			v := r.value(f)
			for _, l := range lits {
				if (v == nil && l == nil) || (v != nil && l != nil && cmpLiteral(f.typ, v, l) == 0) {
					return !neg
				}
			}
			return neg
		}, nil
	}
	lit := lits[0]
	if lit == nil && c.op != "=" && c.op != "!=" {
		return nil, &soqlError{"MALFORMED_QUERY", fmt.Sprintf("invalid operator on null for field '%s'", name), c.field.pos}
	}
	op := c.op
	return func(r *record) bool {
		v := r.value(f)
		switch {
		case lit == nil:
			return (v == nil) == (op == "=")
		case v == nil:
			return op == "!="
		}
		n := cmpLiteral(f.typ, v, lit)
		switch op {
		case "=":
			return n == 0
		case "!=":
			return n != 0
		case "<":
			return n < 0
		case "<=":
			return n <= 0
		case ">":
			return n > 0
		}
		return n >= 0
	}, nil
}

// sfTime renders a timestamp as Salesforce does: 2024-05-01T10:00:00.000+0000.
func sfTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000+0000") }
