package pgsource

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pglogrepl"
)

// cursorVersion is the version of the cursor format.
const cursorVersion = 1

// Cursor phases.
const (
	phaseSnapshot = "snapshot" // cdc: reading the table in primary-key chunks
	phaseStream   = "stream"   // cdc: reading the replication stream
	phasePoll     = "poll"     // poll mode
)

// cursor is a table's position, stored by the Runner as compact JSON:
//
//	{"v":1,"phase":"snapshot","slot":"s","segs":[{"lsn":"0/1A2B3C0"}],"after":["42"]}
//	{"v":1,"phase":"stream","slot":"s","lsn":"0/1A2C000","n":3}
//	{"v":1,"phase":"poll","at":"2024-05-01T10:00:00.123456Z","key":["42"]}
//
// A stream position {lsn, n} means: every change of the table in a
// transaction whose commit LSN is below lsn has been emitted, and so have the
// first n changes of the transaction committed at lsn. Segments record at
// which snapshot LSN each primary-key range of the table was read: a
// snapshot resumed after a restart reads the rest of the table from a new
// snapshot, so a change committed before a range's snapshot LSN is already
// in that range's rows. Segments are dropped once the stream position has
// passed all of them.
type cursor struct {
	V     int       `json:"v"`
	Phase string    `json:"phase"`
	Slot  string    `json:"slot,omitempty"`
	Segs  []segment `json:"segs,omitempty"`
	After []string  `json:"after,omitempty"` // snapshot: the last primary key read
	LSN   lsn       `json:"lsn,omitempty"`   // stream: commit LSN
	N     int       `json:"n,omitempty"`     // stream: changes emitted of the transaction at LSN
	At    *string   `json:"at,omitempty"`    // poll: the poll column's value of the last row
	Key   []string  `json:"key,omitempty"`   // poll: the primary key of the last row
}

// segment is a primary-key range (From, next segment's From] read at LSN;
// From nil is the start of the table.
type segment struct {
	From []string `json:"from,omitempty"`
	LSN  lsn      `json:"lsn"`
}

// lsn is a pglogrepl.LSN that marshals as Postgres prints it ("0/16B3748").
type lsn pglogrepl.LSN

func (l lsn) String() string { return pglogrepl.LSN(l).String() }

func (l lsn) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

func (l *lsn) UnmarshalText(b []byte) error {
	v, err := pglogrepl.ParseLSN(string(b))
	if err != nil {
		return fmt.Errorf("bad LSN %q", b)
	}
	*l = lsn(v)
	return nil
}

// pos is a position in the replication stream (see cursor).
type pos struct {
	LSN lsn
	N   int
}

func (p pos) less(q pos) bool { return p.LSN < q.LSN || p.LSN == q.LSN && p.N < q.N }

// covers reports whether the change numbered n (from 1) of the transaction
// committed at l is at or before p, i.e. was already emitted.
func (p pos) covers(l lsn, n int) bool { return l < p.LSN || l == p.LSN && n <= p.N }

func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	var c cursor
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return cursor{}, fmt.Errorf("unreadable cursor: %w", err)
	}
	if c.V != cursorVersion {
		return cursor{}, fmt.Errorf("cursor version %d, want %d", c.V, cursorVersion)
	}
	switch c.Phase {
	case phaseSnapshot:
		if len(c.Segs) == 0 {
			return cursor{}, errors.New("snapshot cursor without segments")
		}
	case phaseStream:
		if c.N < 0 {
			return cursor{}, errors.New("stream cursor with a negative change count")
		}
	case phasePoll:
		if (c.At == nil) != (len(c.Key) == 0) {
			return cursor{}, errors.New("poll cursor needs both at and key")
		}
	default:
		return cursor{}, fmt.Errorf("unknown cursor phase %q", c.Phase)
	}
	for i := 1; i < len(c.Segs); i++ {
		if len(c.Segs[i].From) == 0 {
			return cursor{}, errors.New("cursor segment without a start key")
		}
	}
	if len(c.Segs) > 0 {
		c.Segs[0].From = nil
	}
	if len(c.After) == 0 {
		c.After = nil
	}
	return c, nil
}

func (c cursor) String() string {
	c.V = cursorVersion
	b, _ := json.Marshal(c) // cannot fail: strings, ints and LSNs
	return string(b)
}

func (c cursor) pos() pos { return pos{LSN: c.LSN, N: c.N} }

// floor is the lowest LSN the table still needs from the replication slot:
// nothing of the table committed below it is pending.
func (c cursor) floor() lsn {
	switch {
	case c.Phase == phaseStream:
		return c.LSN
	case len(c.Segs) == 0: // poll, or no cursor
		return 0
	}
	m := c.Segs[0].LSN
	for _, s := range c.Segs[1:] {
		m = min(m, s.LSN)
	}
	return m
}

// withStream returns c in the stream phase at p, dropping the segments p
// has passed.
func (c cursor) withStream(p pos) cursor {
	out := cursor{Phase: phaseStream, Slot: c.Slot, LSN: p.LSN, N: p.N}
	for _, s := range c.Segs {
		if s.LSN > p.LSN {
			out.Segs = slices.Clone(c.Segs)
			break
		}
	}
	return out
}
