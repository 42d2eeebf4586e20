package filesource

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Row is one record of a file: its values by header name, and the line on
// which it starts (the header is line 1).
type Row struct {
	Line   int
	Values map[string]any
}

// Reader reads rows from a delimited file. It is used by one goroutine.
type Reader struct {
	cr     *csv.Reader
	header []string
	Comma  rune
}

// NewReader sniffs the delimiter from the header line and reads the header.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	head, _ := br.Peek(1 << 16)
	comma := sniff(head)
	cr := csv.NewReader(br)
	cr.Comma = comma
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("line 1: the file is empty (want a header line)")
	}
	if err != nil {
		return nil, fmt.Errorf("line 1: header: %w", err)
	}
	seen := map[string]bool{}
	h := make([]string, len(header))
	for i, name := range header {
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("line 1: header column %d has no name", i+1)
		}
		if seen[name] {
			return nil, fmt.Errorf("line 1: header column %q appears twice", name)
		}
		seen[name] = true
		h[i] = name
	}
	return &Reader{cr: cr, header: h, Comma: comma}, nil
}

// sniff picks the delimiter that occurs most often, outside quotes, in the
// first line.
func sniff(b []byte) rune {
	counts := map[rune]int{',': 0, ';': 0, '\t': 0}
	inQuote := false
	for _, c := range string(b) {
		if c == '"' {
			inQuote = !inQuote
			continue
		}
		if inQuote {
			continue
		}
		if c == '\n' || c == '\r' {
			break
		}
		if _, ok := counts[c]; ok {
			counts[c]++
		}
	}
	best := ','
	for _, c := range []rune{';', '\t'} {
		if counts[c] > counts[best] {
			best = c
		}
	}
	return best
}

// Header returns the column names.
func (r *Reader) Header() []string { return r.header }

// RowError is a record that could not be read; reading may go on.
type RowError struct {
	Line   int
	Column string
	Reason string
}

func (e *RowError) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("line %d, column %s: %s", e.Line, e.Column, e.Reason)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// Next returns the next row, io.EOF at the end, or a *RowError for a bad
// record after which Next may be called again. Any other error is fatal.
func (r *Reader) Next() (Row, error) {
	rec, err := r.cr.Read()
	if err == io.EOF {
		return Row{}, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return Row{}, &RowError{Line: pe.StartLine, Reason: pe.Err.Error()}
		}
		return Row{}, err
	}
	line, _ := r.cr.FieldPos(0)
	if len(rec) == 1 && rec[0] == "" && len(r.header) > 1 {
		return r.Next() // a blank line
	}
	if len(rec) != len(r.header) {
		return Row{}, &RowError{Line: line, Reason: fmt.Sprintf("has %d fields, the header has %d", len(rec), len(r.header))}
	}
	vals := make(map[string]any, len(rec))
	for i, v := range rec {
		vals[r.header[i]] = v
	}
	return Row{Line: line, Values: vals}, nil
}
