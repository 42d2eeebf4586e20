package drift

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// DecodeRecord decodes a raw record body (a JSON object), keeping numbers
// exact (json.Number), as encoding/json's Decoder with UseNumber does: the
// first JSON value of b, which must be an object.
//
// A flat object whose strings need no unescaping (the shape connectors
// publish) is read by a scanner of its own, several times faster than
// encoding/json; anything else (nested values, escapes, control or invalid
// UTF-8 bytes, bad syntax, trailing data) is decoded by encoding/json, so
// results and errors are the same either way (FuzzDecodeRecord checks it).
func DecodeRecord(b []byte) (map[string]any, error) {
	if rec, ok := decodeFlat(b); ok {
		return rec, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, errors.New("null record")
	}
	return rec, nil
}

// decodeFlat is DecodeRecord's fast path; ok false hands b to encoding/json.
func decodeFlat(b []byte) (map[string]any, bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	rec := make(map[string]any, 32)
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return rec, skipWS(b, i+1) == len(b)
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return nil, false
		}
		i = skipWS(b, j)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return nil, false
		}
		var v any
		switch c := b[i]; {
		case c == '"':
			s, j, ok := plainString(b, i)
			if !ok {
				return nil, false
			}
			v, i = s, j
		case c == '-' || c >= '0' && c <= '9':
			j := numberEnd(b, i)
			if j < 0 {
				return nil, false
			}
			v, i = json.Number(b[i:j]), j
		case bytes.HasPrefix(b[i:], []byte("true")):
			v, i = true, i+4
		case bytes.HasPrefix(b[i:], []byte("false")):
			v, i = false, i+5
		case bytes.HasPrefix(b[i:], []byte("null")):
			v, i = nil, i+4
		default:
			return nil, false // an object, an array, or bad syntax
		}
		rec[key] = v
		i = skipWS(b, i)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return rec, skipWS(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads the string starting at b[i] ('"') when it holds no
// escape, no control byte and only valid UTF-8; it returns the index after
// the closing quote.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	end := bytes.IndexByte(b[i+1:], '"')
	if end < 0 {
		return "", 0, false
	}
	s := b[i+1 : i+1+end]
	ascii := true
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return "", 0, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(s) {
		return "", 0, false
	}
	return string(s), i + 2 + end, true
}

// numberEnd returns the end of the JSON number at b[i:] (-?(0|[1-9][0-9]*)
// (\.[0-9]+)?([eE][+-]?[0-9]+)?), or -1.
func numberEnd(b []byte, i int) int {
	digits := func(i int) int {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j - i
	}
	if b[i] == '-' {
		i++
	}
	n := digits(i)
	if n == 0 || (b[i] == '0' && n > 1) {
		return -1
	}
	i += n
	if i < len(b) && b[i] == '.' {
		n = digits(i + 1)
		if n == 0 {
			return -1
		}
		i += 1 + n
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		n = digits(i)
		if n == 0 {
			return -1
		}
		i += n
	}
	return i
}
