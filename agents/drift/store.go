package drift

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
)

var keyTokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Token returns s when it is safe as one KV key token, else a stable
// hashed stand-in ("x" and 16 hex digits).
func Token(s string) string {
	if keyTokenRE.MatchString(s) {
		return s
	}
	return hashToken(s)
}

// SubjectToken returns s when it is a valid subject token (streams.ValidToken),
// else a stable hashed stand-in.
func SubjectToken(s string) string {
	if streams.ValidToken(s) {
		return s
	}
	return hashToken(s)
}

func hashToken(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "x" + hex.EncodeToString(sum[:8])
}

// FingerprintKey is the key of a fingerprint in the fingerprints bucket:
// <tenant>.<connection>.<system>.<object>.
func FingerprintKey(tenant, connection, system, object string) string {
	return Token(tenant) + "." + Token(connection) + "." + Token(system) + "." + Token(object)
}

// Fingerprints reads and writes fingerprints in the fingerprints bucket.
// It is safe for concurrent use.
type Fingerprints struct{ kv jetstream.KeyValue }

// NewFingerprints binds the fingerprints bucket (streams.BucketFingerprints).
func NewFingerprints(kv jetstream.KeyValue) *Fingerprints { return &Fingerprints{kv: kv} }

// Load returns the stored fingerprint and its revision; a new empty one
// with revision 0 when there is none.
func (s *Fingerprints) Load(ctx context.Context, tenant, connection, system, object string) (*Fingerprint, uint64, error) {
	k := FingerprintKey(tenant, connection, system, object)
	e, err := s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return NewFingerprint(tenant, connection, system, object), 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get fingerprint %s: %w", k, err)
	}
	fp, err := decodeFingerprint(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("fingerprint %s: %w", k, err)
	}
	return fp, e.Revision(), nil
}

func decodeFingerprint(b []byte) (*Fingerprint, error) {
	var fp Fingerprint
	if err := json.Unmarshal(b, &fp); err != nil {
		return nil, err
	}
	if fp.Fields == nil {
		fp.Fields = map[string]*FieldState{}
	}
	return &fp, nil
}

// errConflict is a failed compare-and-set on a fingerprint.
var errConflict = errors.New("fingerprint changed since it was read")

// Save stores fp if its revision is still rev (0: it must not exist yet)
// and returns the new revision; errConflict when another writer was first.
func (s *Fingerprints) Save(ctx context.Context, fp *Fingerprint, rev uint64) (uint64, error) {
	k := FingerprintKey(fp.Tenant, fp.Connection, fp.System, fp.Object)
	b, err := json.Marshal(fp)
	if err != nil {
		return 0, fmt.Errorf("encode fingerprint: %w", err)
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = s.kv.Create(ctx, k, b)
	} else {
		nrev, err = s.kv.Update(ctx, k, b, rev)
	}
	if err != nil {
		if isConflict(err) {
			return 0, errConflict
		}
		return 0, fmt.Errorf("store fingerprint %s: %w", k, err)
	}
	return nrev, nil
}

// List returns every stored fingerprint of a tenant ("" for every tenant).
func (s *Fingerprints) List(ctx context.Context, tenant string) ([]*Fingerprint, error) {
	filter := ">"
	if tenant != "" {
		filter = Token(tenant) + ".>"
	}
	lister, err := s.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list fingerprints: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	var out []*Fingerprint
	for _, k := range keys {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get fingerprint %s: %w", k, err)
		}
		fp, err := decodeFingerprint(e.Value())
		if err != nil {
			continue
		}
		out = append(out, fp)
	}
	return out, nil
}
