package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// sessionStore keeps refresh tokens and revocations in the sessions bucket:
//
//	rt.<sha256 hex of the refresh token> → refreshRecord JSON
//	sid.<session id>                     → revoked session (logout, reuse)
//	jti.<token id>                       → revoked access token
//
// Only hashes of refresh tokens are stored. Each refresh consumes its token
// (a compare-and-set on the record's revision) and issues a new one in the
// same session; presenting a consumed token again revokes the session, as
// a stolen token being replayed would. Safe for concurrent use.
type sessionStore struct {
	kv jetstream.KeyValue
}

type refreshRecord struct {
	UserID    string     `json:"user_id"`
	Tenant    string     `json:"tenant_id"`
	SessionID string     `json:"sid"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
}

type revocation struct {
	Until time.Time `json:"until"`
	Why   string    `json:"why"`
}

var (
	errBadRefresh     = errors.New("invalid refresh token")
	errSessionRevoked = errors.New("session revoked")
)

func refreshKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "rt." + hex.EncodeToString(sum[:])
}

// newRefresh stores and returns a new refresh token for the session.
func (ss *sessionStore) newRefresh(ctx context.Context, userID, tenant, sid string, ttl time.Duration) (string, error) {
	var b [32]byte
	rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	rec := refreshRecord{UserID: userID, Tenant: tenant, SessionID: sid, ExpiresAt: time.Now().Add(ttl).UTC()}
	v, _ := json.Marshal(rec)
	if _, err := ss.kv.Create(ctx, refreshKey(tok), v); err != nil {
		return "", fmt.Errorf("store refresh token: %w", err)
	}
	return tok, nil
}

// consume spends a refresh token and returns its record. A consumed or
// unknown token is errBadRefresh; a consumed one also revokes its session.
func (ss *sessionStore) consume(ctx context.Context, tok string) (*refreshRecord, error) {
	if tok == "" || len(tok) > 256 {
		return nil, errBadRefresh
	}
	k := refreshKey(tok)
	e, err := ss.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, errBadRefresh
	}
	if err != nil {
		return nil, fmt.Errorf("get refresh token: %w", err)
	}
	var rec refreshRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, fmt.Errorf("decode refresh token: %w", err)
	}
	now := time.Now()
	if rec.UsedAt != nil {
		// Reuse of a spent token: someone holds a copy. End the session.
		if err := ss.revokeSession(ctx, rec.SessionID, now.Add(30*24*time.Hour), "refresh token reused"); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: reused; session %s revoked", errBadRefresh, rec.SessionID)
	}
	if now.After(rec.ExpiresAt) {
		return nil, fmt.Errorf("%w: expired", errBadRefresh)
	}
	if revoked, err := ss.sessionRevoked(ctx, rec.SessionID); err != nil {
		return nil, err
	} else if revoked {
		return nil, fmt.Errorf("%w: %w", errBadRefresh, errSessionRevoked)
	}
	used := now.UTC()
	rec.UsedAt = &used
	v, _ := json.Marshal(rec)
	if _, err := ss.kv.Update(ctx, k, v, e.Revision()); err != nil {
		// Another request spent it first (a client racing itself).
		return nil, fmt.Errorf("%w: spent concurrently", errBadRefresh)
	}
	return &rec, nil
}

func (ss *sessionStore) revokeSession(ctx context.Context, sid string, until time.Time, why string) error {
	v, _ := json.Marshal(revocation{Until: until.UTC(), Why: why})
	if _, err := ss.kv.Put(ctx, "sid."+sid, v); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

func (ss *sessionStore) revokeToken(ctx context.Context, jti string, until time.Time) error {
	v, _ := json.Marshal(revocation{Until: until.UTC(), Why: "logout"})
	if _, err := ss.kv.Put(ctx, "jti."+jti, v); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

func (ss *sessionStore) sessionRevoked(ctx context.Context, sid string) (bool, error) {
	return ss.exists(ctx, "sid."+sid)
}

func (ss *sessionStore) tokenRevoked(ctx context.Context, jti string) (bool, error) {
	return ss.exists(ctx, "jti."+jti)
}

func (ss *sessionStore) exists(ctx context.Context, k string) (bool, error) {
	_, err := ss.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check revocation: %w", err)
	}
	return true, nil
}
