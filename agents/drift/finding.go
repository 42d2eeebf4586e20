package drift

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/streams"
)

// Status is where a finding stands.
type Status string

// Finding statuses. A finding is open when detected (and when nothing in it
// calls for a repair), queued while a proposal waits for a person, applied
// once a repair was written, rejected when every proposal was turned down
// (by the thresholds or a person).
const (
	StatusOpen     Status = "open"
	StatusQueued   Status = "queued"
	StatusApplied  Status = "applied"
	StatusRejected Status = "rejected"
)

// ParseStatus accepts a status name ("" is no filter).
func ParseStatus(s string) (Status, error) {
	switch Status(s) {
	case "", StatusOpen, StatusQueued, StatusApplied, StatusRejected:
		return Status(s), nil
	}
	return "", fmt.Errorf("unknown status %q (want open, queued, applied or rejected)", s)
}

// Proposal is a matcher (or LLM, or person) proposal with where it stands.
type Proposal struct {
	match.Proposal
	Status Status `json:"status"` // queued, applied, rejected
}

// Rederive records a re-derivation of canonical events after a repair.
type Rederive struct {
	Version    int        `json:"mapping_version"`
	FromSeq    uint64     `json:"from_seq"`
	Records    int        `json:"records"`   // raw records read
	Published  int        `json:"published"` // canonical events accepted by the stream
	Errors     int        `json:"errors"`    // records the new mapping could not map
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Error      string     `json:"error,omitempty"`
}

// Finding is one detected schema change of a tenant's source object and
// what was done about it.
type Finding struct {
	ID           string        `json:"id"`
	Tenant       string        `json:"tenant_id"`
	ConnectionID string        `json:"connection_id"`
	System       string        `json:"system"`
	Object       string        `json:"object"`
	Entity       string        `json:"entity,omitempty"` // the canonical entity the object maps to, once known
	Severity     Severity      `json:"severity"`
	Added        []match.Field `json:"added"`
	Removed      []match.Field `json:"removed"`
	TypeChanged  []TypeChange  `json:"type_changed"`
	Renames      []Rename      `json:"renames"`
	// Fields are the object's fields after the change.
	Fields        []match.Field `json:"fields"`
	SchemaVersion int           `json:"schema_version"`
	FirstSeq      uint64        `json:"first_seq"` // RAW sequence of the first record showing the change
	DetectedAt    time.Time     `json:"detected_at"`

	Status         Status     `json:"status"`
	Proposals      []Proposal `json:"proposals"`
	MappingVersion int        `json:"mapping_version,omitempty"` // version in force when proposals were made
	AppliedVersion int        `json:"applied_version,omitempty"` // version the repair wrote
	DecidedBy      string     `json:"decided_by,omitempty"`      // auto, user:<id>
	DecidedAt      *time.Time `json:"decided_at,omitempty"`
	Note           string     `json:"note,omitempty"`
	Rederive       *Rederive  `json:"rederive,omitempty"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// Confidence is the mean confidence of the finding's proposals that name a
// source, and whether there is any.
func (f *Finding) Confidence() (float64, bool) {
	var sum float64
	n := 0
	for _, p := range f.Proposals {
		if p.Source != "" {
			sum += p.Confidence
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// RecomputeStatus derives the finding's status from its proposals: queued
// while any waits, else applied when any was applied, else rejected when
// there are proposals, else open.
func (f *Finding) RecomputeStatus() {
	queued, applied := false, false
	for _, p := range f.Proposals {
		switch p.Status {
		case StatusQueued:
			queued = true
		case StatusApplied:
			applied = true
		}
	}
	switch {
	case queued:
		f.Status = StatusQueued
	case applied:
		f.Status = StatusApplied
	case len(f.Proposals) > 0:
		f.Status = StatusRejected
	default:
		f.Status = StatusOpen
	}
}

// FindingID derives a finding's id from what identifies the change, so a
// change judged twice (a crash before the acknowledgement) has one id.
func FindingID(tenant, connection, system, object string, version int, firstSeq uint64) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, p := range []string{tenant, connection, system, object, strconv.Itoa(version), strconv.FormatUint(firstSeq, 10)} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	return "drf" + hex.EncodeToString(h.Sum(nil)[:10])
}

// NewFinding describes a change of fp as an open finding.
func NewFinding(fp *Fingerprint, ch *Change, now time.Time) *Finding {
	added := map[string]bool{}
	for _, a := range ch.Added {
		added[a.Name] = true
	}
	return &Finding{
		ID:     FindingID(fp.Tenant, fp.Connection, fp.System, fp.Object, ch.Version, ch.FirstSeq),
		Tenant: fp.Tenant, ConnectionID: fp.Connection, System: fp.System, Object: fp.Object,
		Severity: ch.Severity, Added: nonNil(ch.Added), Removed: nonNil(ch.Removed), TypeChanged: nonNil(ch.TypeChanged),
		Renames: nonNil(ch.Renames), Fields: fp.MatchFields(added), SchemaVersion: ch.Version, FirstSeq: ch.FirstSeq,
		DetectedAt: now.UTC(), Status: StatusOpen, Proposals: []Proposal{}, UpdatedAt: now.UTC(),
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// BucketFindings is the KV bucket of findings, one key per finding
// (<tenant>.<id>). OpenStore creates it when missing.
const BucketFindings = "drift_findings"

// Store keeps findings in the drift_findings bucket. It is safe for
// concurrent use; updates are compare-and-set.
type Store struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// OpenStore creates the findings bucket if needed (idempotent) and returns
// the store.
func OpenStore(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	if replicas <= 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketFindings,
		Description: "drift findings and repair decisions", History: 1, Storage: jetstream.FileStorage, Replicas: replicas})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketFindings, err)
	}
	return &Store{kv: kv, now: time.Now}, nil
}

func findingKey(tenant, id string) (string, error) {
	if !streams.ValidToken(tenant) || !streams.ValidToken(id) {
		return "", streams.ErrNotFound
	}
	return tenant + "." + id, nil
}

// Create stores a new finding; created is false when it already exists
// (it is then left as it is).
func (s *Store) Create(ctx context.Context, f *Finding) (created bool, err error) {
	k, err := findingKey(f.Tenant, f.ID)
	if err != nil {
		return false, fmt.Errorf("finding %q: invalid tenant or id", f.ID)
	}
	b, err := json.Marshal(f)
	if err != nil {
		return false, fmt.Errorf("encode finding: %w", err)
	}
	if _, err := s.kv.Create(ctx, k, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil
		}
		return false, fmt.Errorf("store finding %s: %w", f.ID, err)
	}
	return true, nil
}

// Get returns a tenant's finding; streams.ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, tenant, id string) (*Finding, error) {
	f, _, err := s.get(ctx, tenant, id)
	return f, err
}

func (s *Store) get(ctx context.Context, tenant, id string) (*Finding, uint64, error) {
	k, err := findingKey(tenant, id)
	if err != nil {
		return nil, 0, err
	}
	e, err := s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, streams.ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get finding %s: %w", id, err)
	}
	var f Finding
	if err := json.Unmarshal(e.Value(), &f); err != nil {
		return nil, 0, fmt.Errorf("decode finding %s: %w", id, err)
	}
	if f.Tenant != tenant {
		return nil, 0, streams.ErrNotFound
	}
	return &f, e.Revision(), nil
}

// ErrConflict is returned by an update whose precondition does not hold
// (approving a finding that is not waiting, ...). The API answers 409.
var ErrConflict = errors.New("conflict")

// Update applies fn to the stored finding with compare-and-set, retrying
// when another writer got there first. fn may return an error to abort.
func (s *Store) Update(ctx context.Context, tenant, id string, fn func(*Finding) error) (*Finding, error) {
	for attempt := 0; ; attempt++ {
		f, rev, err := s.get(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if err := fn(f); err != nil {
			return nil, err
		}
		f.UpdatedAt = s.now().UTC()
		b, err := json.Marshal(f)
		if err != nil {
			return nil, fmt.Errorf("encode finding: %w", err)
		}
		k, _ := findingKey(tenant, id)
		if _, err := s.kv.Update(ctx, k, b, rev); err != nil {
			if isConflict(err) && attempt < 50 {
				continue
			}
			return nil, fmt.Errorf("update finding %s: %w", id, err)
		}
		return f, nil
	}
}

// Filter selects findings.
type Filter struct {
	Status Status    // "" is any
	Since  time.Time // detected at or after; zero is any
	Limit  int       // at most; 0 is all
}

// List returns a tenant's findings, newest first.
func (s *Store) List(ctx context.Context, tenant string, flt Filter) ([]*Finding, error) {
	out := []*Finding{}
	if !streams.ValidToken(tenant) {
		return out, nil
	}
	lister, err := s.kv.ListKeysFiltered(ctx, tenant+".>")
	if err != nil {
		return nil, fmt.Errorf("list findings: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get finding %s: %w", k, err)
		}
		var f Finding
		if err := json.Unmarshal(e.Value(), &f); err != nil || f.Tenant != tenant {
			continue
		}
		if flt.Status != "" && f.Status != flt.Status {
			continue
		}
		if !flt.Since.IsZero() && f.DetectedAt.Before(flt.Since) {
			continue
		}
		out = append(out, &f)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].DetectedAt.Equal(out[j].DetectedAt) {
			return out[i].DetectedAt.After(out[j].DetectedAt)
		}
		return out[i].ID < out[j].ID
	})
	if flt.Limit > 0 && len(out) > flt.Limit {
		out = out[:flt.Limit]
	}
	return out, nil
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
