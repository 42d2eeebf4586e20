package drift

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/agents/shape"
)

// Config tunes when a schema change is believed. Every count is in records
// (or non-empty values) of one tenant's connection and source object.
type Config struct {
	// Window is how many records a suspected change is watched over before
	// it is judged (fewer when the observer has caught up). Default 5.
	Window int `yaml:"window"`
	// MinRecords is the least records a suspected change is judged on when
	// the observer has caught up with the stream. Default 2.
	MinRecords int `yaml:"min_records"`
	// TypeEvidence is how many consecutive non-empty values must disagree
	// with a field's settled type before its type is said to have
	// changed. Default 3.
	TypeEvidence int `yaml:"type_evidence"`
	// LearnValues is how many non-empty values a field's type is learned
	// from, silently widening, before it is settled. Default 5.
	LearnValues int `yaml:"learn_values"`
	// Samples is how many distinct example values are kept per field.
	// Default 5.
	Samples int `yaml:"samples"`
}

// Defaults fills unset values.
func (c *Config) Defaults() {
	if c.Window == 0 {
		c.Window = 5
	}
	if c.MinRecords == 0 {
		c.MinRecords = 2
	}
	if c.TypeEvidence == 0 {
		c.TypeEvidence = 3
	}
	if c.LearnValues == 0 {
		c.LearnValues = 5
	}
	if c.Samples == 0 {
		c.Samples = 5
	}
}

// Validate checks the values, naming every bad one.
func (c Config) Validate() error {
	var errs []error
	pos := func(name string, v int) {
		if v < 1 {
			errs = append(errs, fmt.Errorf("drift.%s: must be at least 1, got %d", name, v))
		}
	}
	pos("window", c.Window)
	pos("min_records", c.MinRecords)
	pos("type_evidence", c.TypeEvidence)
	pos("learn_values", c.LearnValues)
	pos("samples", c.Samples)
	if c.MinRecords > c.Window {
		errs = append(errs, fmt.Errorf("drift.min_records: %d must not exceed drift.window %d", c.MinRecords, c.Window))
	}
	return errors.Join(errs...)
}

// FieldState is what is known of one source field.
type FieldState struct {
	// Types holds every type consistent with all the field's settled
	// values; its Best is the field's type.
	Types   shape.Mask `json:"types"`
	Values  int64      `json:"values"` // non-empty values seen
	Samples []string   `json:"samples,omitempty"`
	// Streak counts consecutive non-empty values that disagree with the
	// settled type; StreakTypes and StreakSamples describe them.
	Streak        int        `json:"streak,omitempty"`
	StreakTypes   shape.Mask `json:"streak_types,omitempty"`
	StreakSamples []string   `json:"streak_samples,omitempty"`
}

// Type is the field's inferred type.
func (s *FieldState) Type() shape.Type { return s.Types.Best() }

// Pending is a suspected change being watched.
type Pending struct {
	StartSeq  uint64                 `json:"start_seq"` // RAW sequence of its first record
	StartedAt time.Time              `json:"started_at"`
	Records   int                    `json:"records"`
	Absent    map[string]int         `json:"absent,omitempty"` // known field → window records without it
	New       map[string]*FieldState `json:"new,omitempty"`    // fields not in the fingerprint
}

// Fingerprint is the learned schema of one tenant's connection and source
// object: field names and inferred types.
type Fingerprint struct {
	Tenant     string                 `json:"tenant_id"`
	Connection string                 `json:"connection_id"`
	System     string                 `json:"system"`
	Object     string                 `json:"object"`
	Version    int                    `json:"version"` // 1 for the first shape, +1 per reported change
	Hash       string                 `json:"hash"`    // of field names and types
	Records    int64                  `json:"records"`
	LastSeq    uint64                 `json:"last_seq"` // RAW sequence of the last record observed
	Fields     map[string]*FieldState `json:"fields"`
	Pending    *Pending               `json:"pending,omitempty"`
	// Outbox is a finding stored with the change that produced it and not
	// yet published; see Observer.
	Outbox    *Finding  `json:"outbox,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	ChangedAt time.Time `json:"changed_at"`
}

// NewFingerprint returns an empty fingerprint.
func NewFingerprint(tenant, connection, system, object string) *Fingerprint {
	return &Fingerprint{Tenant: tenant, Connection: connection, System: system, Object: object, Fields: map[string]*FieldState{}}
}

// Names lists the field names, sorted.
func (fp *Fingerprint) Names() []string {
	out := make([]string, 0, len(fp.Fields))
	for k := range fp.Fields {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// MatchFields returns the fields as the matcher sees them, sorted by name;
// names in added are marked Added.
func (fp *Fingerprint) MatchFields(added map[string]bool) []match.Field {
	out := make([]match.Field, 0, len(fp.Fields))
	for _, k := range fp.Names() {
		st := fp.Fields[k]
		out = append(out, match.Field{Name: k, Types: st.Types, Samples: slices.Clone(st.Samples), Added: added[k]})
	}
	return out
}

func (fp *Fingerprint) rehash() {
	h := sha256.New()
	for _, k := range fp.Names() {
		fmt.Fprintf(h, "%s\x00%s\n", k, fp.Fields[k].Type())
	}
	fp.Hash = hex.EncodeToString(h.Sum(nil)[:8])
}

func addSample(list []string, v any, limit int) ([]string, bool) {
	if len(list) >= limit {
		return list, false
	}
	s := shape.Sample(v)
	if s == "" || slices.Contains(list, s) {
		return list, false
	}
	return append(list, s), true
}

// learn folds a value into a field still learning its type.
func learn(st *FieldState, v any, cfg Config) bool {
	m, ok := shape.Infer(v)
	if !ok {
		return false
	}
	changed := false
	if nt := st.Types.Meet(m); nt != st.Types {
		st.Types, changed = nt, true
	}
	st.Values++
	var added bool
	st.Samples, added = addSample(st.Samples, v, cfg.Samples)
	return changed || added
}

// textOnly is the mask of a field whose values share no type but String.
var textOnly = shape.MaskOf(shape.String)

// Observe folds one record (at RAW sequence seq) into the fingerprint. It
// reports whether the fingerprint changed in a way that must be stored
// before the record is acknowledged (counters alone need not be), and the
// change when a watched window closed with one.
//
// The first record sets the baseline. A record that adds a field, lacks a
// known one, or completes a streak of values against a field's settled type
// opens a window; after Window records the window closes: fields seen in
// it are added, known fields absent from all of it are removed, fields
// whose streak reached TypeEvidence change type. A record with very few
// fields and nothing new (a delete marker) is no evidence of removals. A
// record at or below LastSeq was already observed and is skipped.
func (fp *Fingerprint) Observe(rec map[string]any, seq uint64, now time.Time, cfg Config) (save bool, ch *Change) {
	if seq != 0 && seq <= fp.LastSeq {
		return false, nil
	}
	if seq != 0 {
		fp.LastSeq = seq
	}
	fp.Records++
	fp.UpdatedAt = now
	flat := shape.Flatten(rec)
	if fp.Version == 0 {
		for k, v := range flat {
			st := &FieldState{}
			learn(st, v, cfg)
			fp.Fields[k] = st
		}
		fp.Version, fp.CreatedAt, fp.ChangedAt = 1, now, now
		fp.rehash()
		return true, nil
	}
	var newNames []string
	trigger := false
	for k, v := range flat {
		st, known := fp.Fields[k]
		if !known {
			newNames = append(newNames, k)
			continue
		}
		if st.Values < int64(cfg.LearnValues) || st.Types.Empty() {
			if learn(st, v, cfg) {
				save = true
			}
			continue
		}
		var (
			m  shape.Mask
			ok bool
		)
		if st.Types == textOnly {
			// Every non-empty value's mask holds String, so a field settled
			// as plain text agrees with any of them and cannot narrow: the
			// inference (regular expressions per value) is skipped.
			if !shape.Present(v) {
				continue
			}
			m = textOnly
		} else if m, ok = shape.Infer(v); !ok {
			continue
		}
		if m.Has(st.Type()) {
			st.Values++
			if nt := st.Types.Meet(m); nt != st.Types {
				st.Types, save = nt, true
			}
			if st.Streak > 0 {
				st.Streak, st.StreakTypes, st.StreakSamples, save = 0, 0, nil, true
			}
			var added bool
			if st.Samples, added = addSample(st.Samples, v, cfg.Samples); added {
				save = true
			}
			continue
		}
		st.Streak++
		st.StreakTypes = st.StreakTypes.Meet(m)
		st.StreakSamples, _ = addSample(st.StreakSamples, v, cfg.Samples)
		save = true
		if st.Streak >= cfg.TypeEvidence {
			trigger = true
		}
	}
	sort.Strings(newNames)
	var missing []string
	if len(flat) >= max(3, len(fp.Fields)/3) || len(newNames) > 0 {
		for k := range fp.Fields {
			if _, ok := flat[k]; !ok {
				missing = append(missing, k)
			}
		}
	}
	if fp.Pending == nil && (len(newNames) > 0 || len(missing) > 0 || trigger) {
		fp.Pending = &Pending{StartSeq: seq, StartedAt: now, Absent: map[string]int{}, New: map[string]*FieldState{}}
	}
	p := fp.Pending
	if p == nil {
		return save, nil
	}
	p.Records++
	for _, k := range newNames {
		st := p.New[k]
		if st == nil {
			st = &FieldState{}
			p.New[k] = st
		}
		learn(st, flat[k], cfg)
	}
	for _, k := range missing {
		p.Absent[k]++
	}
	if p.Records >= cfg.Window {
		return true, fp.close(now, cfg)
	}
	return true, nil
}

// Flush judges the watched window now, if it has at least minRecords
// records (the observer calls it when it has caught up with the stream).
func (fp *Fingerprint) Flush(now time.Time, minRecords int, cfg Config) *Change {
	if fp.Pending == nil || fp.Pending.Records < minRecords {
		return nil
	}
	return fp.close(now, cfg)
}

func (fp *Fingerprint) close(now time.Time, cfg Config) *Change {
	p := fp.Pending
	fp.Pending = nil
	ch := &Change{FirstSeq: p.StartSeq, Started: p.StartedAt}
	for _, k := range sortedKeys(p.Absent) {
		if p.Absent[k] < p.Records {
			continue
		}
		st := fp.Fields[k]
		if st == nil {
			continue
		}
		ch.Removed = append(ch.Removed, match.Field{Name: k, Types: st.Types, Samples: slices.Clone(st.Samples)})
		delete(fp.Fields, k)
	}
	for _, k := range sortedKeys(p.New) {
		st := p.New[k]
		ch.Added = append(ch.Added, match.Field{Name: k, Types: st.Types, Samples: slices.Clone(st.Samples), Added: true})
		fp.Fields[k] = st
	}
	for _, k := range fp.Names() {
		st := fp.Fields[k]
		if st.Streak < cfg.TypeEvidence {
			continue
		}
		ch.TypeChanged = append(ch.TypeChanged, TypeChange{Field: k, From: st.Type(), To: st.StreakTypes.Best(), Samples: slices.Clone(st.StreakSamples)})
		st.Types, st.Samples, st.Values = st.StreakTypes, st.StreakSamples, int64(st.Streak)
		st.Streak, st.StreakTypes, st.StreakSamples = 0, 0, nil
	}
	if ch.Empty() {
		return nil
	}
	ch.Renames = Renames(ch.Removed, ch.Added)
	ch.Severity = ch.severity()
	fp.Version++
	fp.ChangedAt = now
	fp.rehash()
	ch.Version = fp.Version
	return ch
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
