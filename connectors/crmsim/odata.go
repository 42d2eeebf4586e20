package crmsim

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// odataError is a Dataverse query error (400 with an OData error body).
type odataError struct{ code, msg string }

func (e *odataError) Error() string { return e.msg }

const odataQueryError = "0x80060888"

type odKind int

const (
	odEOF odKind = iota
	odIdent
	odString
	odNumber
	odDateTime
	odDate
	odGUID
	odLParen
	odRParen
)

type odTok struct {
	kind odKind
	text string
	pos  int
}

var (
	reODGUID     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	reODDateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})`)
	reODDate     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}`)
	reODNumber   = regexp.MustCompile(`^-?\d+(\.\d+)?([eE][+-]?\d+)?[mMdDfFlL]?`)
	reODIdent    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)
)

func syntaxError(src string, pos int) *odataError {
	return &odataError{odataQueryError, fmt.Sprintf("Syntax error at position %d in '%s'.", pos, src)}
}

func lexOData(src string) ([]odTok, *odataError) {
	var toks []odTok
	for i := 0; i < len(src); {
		c := src[i]
		rest := src[i:]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(':
			toks = append(toks, odTok{odLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, odTok{odRParen, ")", i})
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(src) {
					return nil, &odataError{odataQueryError, fmt.Sprintf("There is an unterminated string literal at position %d in '%s'.", i, src)}
				}
				if src[j] == '\'' {
					if j+1 < len(src) && src[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(src[j])
				j++
			}
			toks = append(toks, odTok{odString, b.String(), i})
			i = j + 1
		case reODGUID.MatchString(rest):
			m := reODGUID.FindString(rest)
			toks = append(toks, odTok{odGUID, strings.ToLower(m), i})
			i += len(m)
		case reODDateTime.MatchString(rest):
			m := reODDateTime.FindString(rest)
			toks = append(toks, odTok{odDateTime, m, i})
			i += len(m)
		case reODDate.MatchString(rest):
			m := reODDate.FindString(rest)
			toks = append(toks, odTok{odDate, m, i})
			i += len(m)
		case reODNumber.MatchString(rest):
			m := reODNumber.FindString(rest)
			toks = append(toks, odTok{odNumber, strings.TrimRight(m, "mMdDfFlL"), i})
			i += len(m)
		case reODIdent.MatchString(rest):
			m := reODIdent.FindString(rest)
			toks = append(toks, odTok{odIdent, m, i})
			i += len(m)
		default:
			return nil, syntaxError(src, i)
		}
	}
	return append(toks, odTok{odEOF, "", len(src)}), nil
}

type odParser struct {
	src   string
	toks  []odTok
	i     int
	t     *table
	depth int
}

func (p *odParser) peek() odTok { return p.toks[p.i] }

func (p *odParser) next() odTok {
	t := p.toks[p.i]
	if t.kind != odEOF {
		p.i++
	}
	return t
}

func (p *odParser) word(w string) bool {
	if t := p.peek(); t.kind == odIdent && t.text == w {
		p.i++
		return true
	}
	return false
}

// compileFilter compiles a $filter expression of comparisons (eq ne gt ge lt
// le) joined by and, or, not and parentheses against t.
func compileFilter(t *table, src string) (func(*record) bool, *odataError) {
	toks, err := lexOData(src)
	if err != nil {
		return nil, err
	}
	p := &odParser{src: src, toks: toks, t: t}
	m, err := p.or()
	if err != nil {
		return nil, err
	}
	if tok := p.peek(); tok.kind != odEOF {
		return nil, syntaxError(src, tok.pos)
	}
	return m, nil
}

func (p *odParser) or() (func(*record) bool, *odataError) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.word("or") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		a := l
		l = func(rec *record) bool { return a(rec) || r(rec) }
	}
	return l, nil
}

func (p *odParser) and() (func(*record) bool, *odataError) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.word("and") {
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		a := l
		l = func(rec *record) bool { return a(rec) && r(rec) }
	}
	return l, nil
}

var odOps = map[string]bool{"eq": true, "ne": true, "gt": true, "ge": true, "lt": true, "le": true}

func (p *odParser) unary() (func(*record) bool, *odataError) {
	if p.depth++; p.depth > maxNesting {
		return nil, &odataError{odataQueryError, "The $filter expression is nested too deeply."}
	}
	defer func() { p.depth-- }()
	if p.word("not") {
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(r *record) bool { return !x(r) }, nil
	}
	if p.peek().kind == odLParen {
		p.next()
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if tok := p.next(); tok.kind != odRParen {
			return nil, syntaxError(p.src, tok.pos)
		}
		return x, nil
	}
	name := p.next()
	if name.kind != odIdent {
		return nil, syntaxError(p.src, name.pos)
	}
	if p.peek().kind == odLParen {
		return nil, &odataError{odataQueryError, fmt.Sprintf("crmsim: the function '%s' is not supported in $filter.", name.text)}
	}
	f, ok := p.t.resolve(name.text, false)
	if !ok {
		return nil, noSuchProperty(p.t, name.text)
	}
	op := p.next()
	if op.kind != odIdent || !odOps[op.text] {
		return nil, syntaxError(p.src, op.pos)
	}
	lit := p.next()
	val, err := p.operand(f, lit)
	if err != nil {
		return nil, err
	}
	return odCompare(f, op.text, val), nil
}

func noSuchProperty(t *table, name string) *odataError {
	return &odataError{odataQueryError, fmt.Sprintf("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.", name, t.def.logical)}
}

func edmType(t valueType) string {
	switch t {
	case tDateTime:
		return "Edm.DateTimeOffset"
	case tDate:
		return "Edm.Date"
	case tDecimal:
		return "Edm.Decimal"
	case tInt, tOption:
		return "Edm.Int32"
	case tBool:
		return "Edm.Boolean"
	case tID:
		return "Edm.Guid"
	}
	return "Edm.String"
}

func litEdm(k odKind) string {
	return map[odKind]string{
		odString: "Edm.String", odNumber: "Edm.Int32", odDateTime: "Edm.DateTimeOffset",
		odDate: "Edm.Date", odGUID: "Edm.Guid", odIdent: "Edm.Boolean",
	}[k]
}

// operand converts a literal to a store value of f's type; nil is null.
func (p *odParser) operand(f fieldDef, tok odTok) (any, *odataError) {
	if tok.kind == odIdent && tok.text == "null" {
		return nil, nil
	}
	mismatch := &odataError{odataQueryError, fmt.Sprintf("A binary operator with incompatible types was detected. Found operand types '%s' and '%s' for operator kind 'Equal'.", edmType(f.typ), litEdm(tok.kind))}
	switch f.typ {
	case tDateTime:
		if tok.kind != odDateTime && tok.kind != odDate {
			return nil, mismatch
		}
		t, err := parseAnyTime(tok.text)
		if err != nil {
			return nil, mismatch
		}
		return t, nil
	case tDate:
		if tok.kind != odDate && tok.kind != odDateTime {
			return nil, mismatch
		}
		return tok.text[:10], nil
	case tDecimal, tInt, tOption:
		r, ok := new(big.Rat).SetString(tok.text)
		if tok.kind != odNumber || !ok {
			return nil, mismatch
		}
		return r, nil
	case tBool:
		if tok.kind != odIdent || (tok.text != "true" && tok.text != "false") {
			return nil, mismatch
		}
		return tok.text == "true", nil
	case tID:
		if tok.kind != odGUID && tok.kind != odString {
			return nil, mismatch
		}
		return strings.ToLower(tok.text), nil
	}
	if tok.kind != odString {
		return nil, mismatch
	}
	return tok.text, nil
}

func odCompare(f fieldDef, op string, lit any) func(*record) bool {
	return func(r *record) bool {
		v := r.value(f)
		switch {
		case lit == nil:
			return (v == nil) == (op == "eq")
		case v == nil:
			return op == "ne"
		}
		if s, ok := v.(string); ok && f.typ == tID {
			v = strings.ToLower(s)
		}
		c := cmpLiteral(f.typ, v, lit)
		switch op {
		case "eq":
			return c == 0
		case "ne":
			return c != 0
		case "gt":
			return c > 0
		case "ge":
			return c >= 0
		case "lt":
			return c < 0
		}
		return c <= 0
	}
}
