package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/streams"
)

// MappingVersion is one version of a tenant's mapping of a source object:
// the StoredMapping JSON connectors read, plus when it was written, the
// finding it repairs and the RAW sequence re-derivation starts from
// (fields connectors ignore).
type MappingVersion struct {
	StoredVersion
	Tenant string `json:"tenant_id,omitempty"`
	// Current is true for the version in force (not stored).
	Current bool `json:"current"`
}

// StoredVersion is what the mappings bucket holds for one version: the
// StoredMapping JSON connectors read, plus fields they ignore.
type StoredVersion struct {
	connectors.StoredMapping
	CreatedAt time.Time `json:"created_at"`
	FindingID string    `json:"finding_id,omitempty"`
	// FromSeq is the first RAW sequence this version changes the reading
	// of (0: every record).
	FromSeq uint64 `json:"from_seq,omitempty"`
	// RollbackOf is the version whose spec this one restores.
	RollbackOf int `json:"rollback_of,omitempty"`
}

// Versions reads and writes mapping versions in the mappings bucket (key
// <tenant>.<system>.<object>, the key connectors.Mappings reads; version 1
// is the shipped mapping until a tenant stores one). Safe for concurrent
// use; writes are compare-and-set.
type Versions struct {
	kv      jetstream.KeyValue
	shipped *connectors.Mappings
	now     func() time.Time
}

// NewVersions binds the mappings bucket and the shipped mappings.
func NewVersions(kv jetstream.KeyValue, shipped *connectors.Mappings) *Versions {
	return &Versions{kv: kv, shipped: shipped, now: time.Now}
}

var objectTokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

func versionKey(tenant, system, object string) (string, error) {
	if !streams.ValidToken(tenant) || !streams.ValidToken(system) || !objectTokenRE.MatchString(object) {
		return "", streams.ErrNotFound
	}
	return tenant + "." + system + "." + object, nil
}

func (v *Versions) shippedVersion(system, object string) (MappingVersion, bool) {
	for _, m := range v.shipped.Shipped() {
		if m.System == system && m.Object() == object {
			return MappingVersion{StoredVersion: StoredVersion{StoredMapping: connectors.StoredMapping{System: system, Spec: m.Spec, Version: max(m.Version, 1), Author: "shipped"}}}, true
		}
	}
	return MappingVersion{}, false
}

// Current returns the version in force and its bucket revision (0 when
// the shipped mapping is in force). streams.ErrNotFound when the object has
// no mapping at all.
func (v *Versions) Current(ctx context.Context, tenant, system, object string) (MappingVersion, uint64, error) {
	k, err := versionKey(tenant, system, object)
	if err != nil {
		return MappingVersion{}, 0, err
	}
	e, err := v.kv.Get(ctx, k)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		sv, ok := v.shippedVersion(system, object)
		if !ok {
			return MappingVersion{}, 0, streams.ErrNotFound
		}
		sv.Tenant, sv.Current = tenant, true
		return sv, 0, nil
	case err != nil:
		return MappingVersion{}, 0, fmt.Errorf("mapping %s: %w", k, err)
	}
	mv, err := decodeVersion(e)
	if err != nil {
		return MappingVersion{}, 0, fmt.Errorf("mapping %s: %w", k, err)
	}
	mv.Tenant, mv.Current = tenant, true
	return mv, e.Revision(), nil
}

func decodeVersion(e jetstream.KeyValueEntry) (MappingVersion, error) {
	var mv MappingVersion
	if err := json.Unmarshal(e.Value(), &mv.StoredVersion); err != nil {
		return mv, err
	}
	if mv.CreatedAt.IsZero() {
		mv.CreatedAt = e.Created().UTC()
	}
	return mv, nil
}

// List returns every version still held (the bucket keeps 64), oldest
// first; the shipped mapping is version 1 when no stored version is.
func (v *Versions) List(ctx context.Context, tenant, system, object string) ([]MappingVersion, error) {
	k, err := versionKey(tenant, system, object)
	if err != nil {
		return nil, err
	}
	var out []MappingVersion
	hist, err := v.kv.History(ctx, k)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("mapping history %s: %w", k, err)
	}
	for _, e := range hist {
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		mv, err := decodeVersion(e)
		if err != nil {
			continue
		}
		mv.Tenant = tenant
		out = append(out, mv)
	}
	if sv, ok := v.shippedVersion(system, object); ok && (len(out) == 0 || out[0].Version > sv.Version) {
		sv.Tenant = tenant
		out = append([]MappingVersion{sv}, out...)
	}
	if len(out) == 0 {
		return nil, streams.ErrNotFound
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	out[len(out)-1].Current = true
	return out, nil
}

// Get returns one version; streams.ErrNotFound when it is not held.
func (v *Versions) Get(ctx context.Context, tenant, system, object string, version int) (MappingVersion, error) {
	all, err := v.List(ctx, tenant, system, object)
	if err != nil {
		return MappingVersion{}, err
	}
	for _, mv := range all {
		if mv.Version == version {
			return mv, nil
		}
	}
	return MappingVersion{}, streams.ErrNotFound
}

// errStale is a write that lost a compare-and-set race.
var errStale = errors.New("the mapping changed since it was read")

// Write stores next as the new current version, if the bucket revision is
// still rev (0: no stored version yet). The spec must compile.
func (v *Versions) Write(ctx context.Context, tenant string, next MappingVersion, rev uint64) error {
	k, err := versionKey(tenant, next.System, next.Spec.Object)
	if err != nil {
		return err
	}
	if _, err := canonical.Compile(next.System, next.Spec); err != nil {
		return &canonical.FieldError{Field: "spec", Reason: err.Error()}
	}
	if next.CreatedAt.IsZero() {
		next.CreatedAt = v.now().UTC()
	}
	b, err := json.Marshal(next.StoredVersion)
	if err != nil {
		return fmt.Errorf("encode mapping: %w", err)
	}
	if rev == 0 {
		_, err = v.kv.Create(ctx, k, b)
	} else {
		_, err = v.kv.Update(ctx, k, b, rev)
	}
	if err != nil {
		if isConflict(err) {
			return errStale
		}
		return fmt.Errorf("store mapping %s: %w", k, err)
	}
	return nil
}

// MappingObject summarises the mapping of one source object.
type MappingObject struct {
	System    string    `json:"system"`
	Object    string    `json:"object"`
	Entity    string    `json:"entity"`
	Version   int       `json:"version"`
	Author    string    `json:"author"`
	Reason    string    `json:"reason,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	Fields    int       `json:"fields"`
}

// Objects lists every mapped source object a tenant has: the shipped ones
// and those with stored versions, sorted by system and object.
func (v *Versions) Objects(ctx context.Context, tenant string) ([]MappingObject, error) {
	if !streams.ValidToken(tenant) {
		return []MappingObject{}, nil
	}
	type so struct{ system, object string }
	set := map[so]bool{}
	for _, m := range v.shipped.Shipped() {
		set[so{m.System, m.Object()}] = true
	}
	lister, err := v.kv.ListKeysFiltered(ctx, tenant+".>")
	if err != nil {
		return nil, fmt.Errorf("list mappings: %w", err)
	}
	for k := range lister.Keys() {
		parts := strings.SplitN(k, ".", 3)
		if len(parts) == 3 {
			set[so{parts[1], parts[2]}] = true
		}
	}
	keys := make([]so, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b so) int { return strings.Compare(a.system+"/"+a.object, b.system+"/"+b.object) })
	out := []MappingObject{}
	for _, k := range keys {
		cur, _, err := v.Current(ctx, tenant, k.system, k.object)
		if err != nil {
			continue
		}
		out = append(out, MappingObject{System: k.system, Object: k.object, Entity: string(cur.Spec.Entity), Version: cur.Version,
			Author: cur.Author, Reason: cur.Reason, UpdatedAt: cur.CreatedAt, Fields: len(cur.Spec.Fields)})
	}
	return out, nil
}

// FieldChange is one canonical field whose mapping differs between two
// versions.
type FieldChange struct {
	Target string               `json:"target"`
	Change string               `json:"change"` // added, removed, changed
	From   *canonical.FieldSpec `json:"from,omitempty"`
	To     *canonical.FieldSpec `json:"to,omitempty"`
}

// MappingDiff is what changed between two versions.
type MappingDiff struct {
	System  string        `json:"system"`
	Object  string        `json:"object"`
	From    int           `json:"from"`
	To      int           `json:"to"`
	Fields  []FieldChange `json:"fields"`
	Changed []string      `json:"changed"` // object settings that differ: version_field, deleted_field, ignore, entity
}

// Diff compares two versions' specs field by field.
func Diff(system string, from, to MappingVersion) MappingDiff {
	d := MappingDiff{System: system, Object: to.Spec.Object, From: from.Version, To: to.Version, Fields: []FieldChange{}, Changed: []string{}}
	idx := func(s canonical.ObjectSpec) map[string]canonical.FieldSpec {
		m := map[string]canonical.FieldSpec{}
		for _, f := range s.Fields {
			m[f.Target] = f
		}
		return m
	}
	a, b := idx(from.Spec), idx(to.Spec)
	var targets []string
	for t := range a {
		targets = append(targets, t)
	}
	for t := range b {
		if _, ok := a[t]; !ok {
			targets = append(targets, t)
		}
	}
	sort.Strings(targets)
	for _, t := range targets {
		fa, inA := a[t]
		fb, inB := b[t]
		switch {
		case inA && !inB:
			d.Fields = append(d.Fields, FieldChange{Target: t, Change: "removed", From: &fa})
		case !inA && inB:
			d.Fields = append(d.Fields, FieldChange{Target: t, Change: "added", To: &fb})
		default:
			ja, _ := json.Marshal(fa)
			jb, _ := json.Marshal(fb)
			if string(ja) != string(jb) {
				d.Fields = append(d.Fields, FieldChange{Target: t, Change: "changed", From: &fa, To: &fb})
			}
		}
	}
	if from.Spec.VersionField != to.Spec.VersionField {
		d.Changed = append(d.Changed, "version_field")
	}
	if from.Spec.DeletedField != to.Spec.DeletedField {
		d.Changed = append(d.Changed, "deleted_field")
	}
	if !slices.Equal(from.Spec.Ignore, to.Spec.Ignore) {
		d.Changed = append(d.Changed, "ignore")
	}
	if from.Spec.Entity != to.Spec.Entity {
		d.Changed = append(d.Changed, "entity")
	}
	return d
}

// isConflict reports whether err is a failed compare-and-set.
func isConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
