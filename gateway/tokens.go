package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/autonomos/autonomos/streams"
)

// Claims are the claims of an access token: iss, aud, sub (the user id),
// exp, iat, nbf and jti, plus the tenant, the role and the session (sid)
// the token belongs to.
type Claims struct {
	TenantID  string `json:"tenant_id"`
	Role      string `json:"role"`
	SessionID string `json:"sid"`
	jwt.RegisteredClaims
}

// maxTokenLen bounds the token text parsed at all.
const maxTokenLen = 4096

// tokenKeys issues and verifies access tokens. It is immutable, so safe for
// concurrent use.
type tokenKeys struct {
	current  []byte
	previous []byte // may be nil
	issuer   string
	audience string
	ttl      time.Duration
	leeway   time.Duration
	now      func() time.Time
}

func newTokenKeys(cfg Config) *tokenKeys {
	k := &tokenKeys{
		current:  []byte(cfg.JWTSecret),
		issuer:   cfg.JWTIssuer,
		audience: cfg.JWTAudience,
		ttl:      cfg.AccessTTL,
		leeway:   cfg.ClockLeeway,
		now:      time.Now,
	}
	if cfg.JWTPreviousSecret != "" {
		k.previous = []byte(cfg.JWTPreviousSecret)
	}
	return k
}

// issue signs an access token for a user in a session.
func (k *tokenKeys) issue(userID, tenant, role, sessionID string) (string, *Claims, error) {
	now := k.now().Truncate(time.Second)
	cl := &Claims{
		TenantID:  tenant,
		Role:      role,
		SessionID: sessionID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    k.issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{k.audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(k.ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        streams.NewID(),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(k.current)
	if err != nil {
		return "", nil, fmt.Errorf("sign token: %w", err)
	}
	return s, cl, nil
}

// errBadToken is the one error every rejected token maps to; the detail is
// logged, never shown.
var errBadToken = errors.New("invalid token")

// parse verifies an access token: HS256 only, signed by the current or the
// previous secret, issuer and audience matching, exp required, nbf and iat
// not in the future (within the leeway), and well-formed custom claims.
func (k *tokenKeys) parse(s string) (*Claims, error) {
	if s == "" || len(s) > maxTokenLen {
		return nil, fmt.Errorf("%w: empty or longer than %d bytes", errBadToken, maxTokenLen)
	}
	keys := jwt.VerificationKeySet{Keys: []jwt.VerificationKey{k.current}}
	if k.previous != nil {
		keys.Keys = append(keys.Keys, k.previous)
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(k.issuer),
		jwt.WithAudience(k.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(k.leeway),
		jwt.WithTimeFunc(k.now),
		jwt.WithStrictDecoding(),
	)
	var cl Claims
	if _, err := p.ParseWithClaims(s, &cl, func(*jwt.Token) (any, error) { return keys, nil }); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadToken, err)
	}
	switch {
	case !streams.ValidToken(cl.Subject):
		return nil, fmt.Errorf("%w: bad sub", errBadToken)
	case !streams.ValidToken(cl.TenantID):
		return nil, fmt.Errorf("%w: bad tenant_id", errBadToken)
	case cl.Role != RoleAdmin && cl.Role != RoleViewer:
		return nil, fmt.Errorf("%w: bad role", errBadToken)
	case !streams.ValidToken(cl.ID):
		return nil, fmt.Errorf("%w: bad jti", errBadToken)
	case !streams.ValidToken(cl.SessionID):
		return nil, fmt.Errorf("%w: bad sid", errBadToken)
	case cl.IssuedAt == nil:
		return nil, fmt.Errorf("%w: iat missing", errBadToken)
	}
	return &cl, nil
}
