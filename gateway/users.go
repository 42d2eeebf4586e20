package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
)

// userRecord is a stored user. PasswordHash is an argon2id PHC string.
type userRecord struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	TenantID     string    `json:"tenant_id"`
	Role         string    `json:"role"`
	PasswordHash string    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

// UserView is a user as the API shows it.
type UserView struct {
	ID       string `json:"id"`
	Email    string `json:"email"`
	TenantID string `json:"tenant_id"`
	Role     string `json:"role"`
}

func (u *userRecord) view() UserView {
	return UserView{ID: u.ID, Email: u.Email, TenantID: u.TenantID, Role: u.Role}
}

// tenantRecord is a stored tenant.
type tenantRecord struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// Errors of user creation.
var (
	ErrTenantExists = errors.New("tenant already exists")
	ErrEmailExists  = errors.New("email is already registered")
	errNoUser       = errors.New("no such user")
)

// AddUser adds a user to a tenant, creating the tenant when it does not
// exist yet — for operators (autonomos user add), without going through
// HTTP. It validates like the API (tenant token, e-mail, password of at
// least 8 characters, role admin or viewer) and hashes with the default
// argon2id cost. An e-mail already registered is ErrEmailExists. The users
// and tenants buckets must exist (streams.Ensure).
func AddUser(ctx context.Context, js jetstream.JetStream, tenant, email, password, role string) (UserView, error) {
	var problems []error
	if !streams.ValidToken(tenant) {
		problems = append(problems, fmt.Errorf("tenant: want 1-64 of [a-z0-9_-], got %q", tenant))
	}
	if err := validEmail(email); err != nil {
		problems = append(problems, fmt.Errorf("email: %w", err))
	}
	if err := validPassword(password); err != nil {
		problems = append(problems, fmt.Errorf("password: %w", err))
	}
	if role != RoleAdmin && role != RoleViewer {
		problems = append(problems, fmt.Errorf("role: want admin or viewer, got %q", role))
	}
	if err := errors.Join(problems...); err != nil {
		return UserView{}, err
	}
	users, err := js.KeyValue(ctx, streams.BucketUsers)
	if err != nil {
		return UserView{}, fmt.Errorf("users bucket: %w", err)
	}
	tenants, err := js.KeyValue(ctx, streams.BucketTenants)
	if err != nil {
		return UserView{}, fmt.Errorf("tenants bucket: %w", err)
	}
	st := &userStore{users: users, tenants: tenants}
	var cfg Config
	cfg.defaults()
	hash, err := argon2id.CreateHash(password, cfg.Argon2.params())
	if err != nil {
		return UserView{}, fmt.Errorf("hash password: %w", err)
	}
	u := &userRecord{ID: streams.NewID(), Email: strings.ToLower(email), TenantID: tenant, Role: role,
		PasswordHash: hash, CreatedAt: time.Now().UTC()}
	rev, err := st.createTenant(ctx, tenantRecord{ID: tenant, CreatedAt: u.CreatedAt, CreatedBy: u.ID})
	created := err == nil
	if err != nil && !errors.Is(err, ErrTenantExists) {
		return UserView{}, err
	}
	if err := st.createUser(ctx, u); err != nil {
		if created {
			st.dropTenant(context.WithoutCancel(ctx), tenant, rev)
		}
		return UserView{}, err
	}
	return u.view(), nil
}

// userStore keeps users and tenants in their KV buckets:
//
//	users:   <sha256 hex of the lower-cased e-mail> → User JSON
//	         id.<user id>                           → the e-mail key
//	tenants: <tenant>                               → Tenant JSON
//
// KV Create makes each write conditional, so two concurrent registrations of
// one tenant or e-mail cannot both succeed. Safe for concurrent use.
type userStore struct {
	users   jetstream.KeyValue
	tenants jetstream.KeyValue
}

// emailKey is the users-bucket key of an e-mail address.
func emailKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// createTenant claims a tenant id; ErrTenantExists when taken.
func (st *userStore) createTenant(ctx context.Context, t tenantRecord) (uint64, error) {
	b, _ := json.Marshal(t)
	rev, err := st.tenants.Create(ctx, t.ID, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, ErrTenantExists
	}
	if err != nil {
		return 0, fmt.Errorf("create tenant %s: %w", t.ID, err)
	}
	return rev, nil
}

// dropTenant undoes createTenant (when the first user could not be made).
func (st *userStore) dropTenant(ctx context.Context, id string, rev uint64) error {
	if err := st.tenants.Delete(ctx, id, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("drop tenant %s: %w", id, err)
	}
	return nil
}

// createUser stores a new user; ErrEmailExists when the e-mail is taken.
func (st *userStore) createUser(ctx context.Context, u *userRecord) error {
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	k := emailKey(u.Email)
	if _, err := st.users.Create(ctx, k, b); errors.Is(err, jetstream.ErrKeyExists) {
		return ErrEmailExists
	} else if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	if _, err := st.users.Put(ctx, "id."+u.ID, []byte(k)); err != nil {
		return fmt.Errorf("index user %s: %w", u.ID, err)
	}
	return nil
}

func (st *userStore) byEmail(ctx context.Context, email string) (*userRecord, error) {
	return st.get(ctx, emailKey(email))
}

func (st *userStore) byID(ctx context.Context, id string) (*userRecord, error) {
	if !streams.ValidToken(id) {
		return nil, errNoUser
	}
	e, err := st.users.Get(ctx, "id."+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, errNoUser
	}
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", id, err)
	}
	u, err := st.get(ctx, string(e.Value()))
	if err == nil && u.ID != id {
		return nil, errNoUser // the e-mail was re-registered by someone else
	}
	return u, err
}

func (st *userStore) get(ctx context.Context, key string) (*userRecord, error) {
	e, err := st.users.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, errNoUser
	}
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	var u userRecord
	if err := json.Unmarshal(e.Value(), &u); err != nil {
		return nil, fmt.Errorf("decode user: %w", err)
	}
	return &u, nil
}

// Input rules.
const (
	minPassword = 8
	maxPassword = 1024
	maxEmail    = 254
)

// validEmail checks an e-mail address: one plain address, no display name.
func validEmail(s string) error {
	if s == "" {
		return errors.New("is required")
	}
	if len(s) > maxEmail {
		return fmt.Errorf("longer than %d bytes", maxEmail)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return errors.New("not a valid e-mail address")
	}
	if domain := s[strings.LastIndexByte(s, '@')+1:]; !strings.Contains(domain, ".") && domain != "localhost" {
		return errors.New("not a valid e-mail address: the domain has no dot")
	}
	return nil
}

func validPassword(s string) error {
	if utf8.RuneCountInString(s) < minPassword {
		return fmt.Errorf("must be at least %d characters", minPassword)
	}
	if len(s) > maxPassword {
		return fmt.Errorf("must be at most %d bytes", maxPassword)
	}
	return nil
}

// hashPassword hashes with argon2id, bounded by the hashing semaphore.
func (s *Server) hashPassword(ctx context.Context, pw string) (string, error) {
	if err := s.acquireHash(ctx); err != nil {
		return "", err
	}
	defer s.releaseHash()
	h, err := argon2id.CreateHash(pw, s.cfg.Argon2.params())
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// dummyHash is verified against when the e-mail is unknown, so an unknown
// account costs as much time as a wrong password.
func (s *Server) checkPassword(ctx context.Context, pw, hash string) (bool, error) {
	if err := s.acquireHash(ctx); err != nil {
		return false, err
	}
	defer s.releaseHash()
	if hash == "" {
		hash = s.dummyHash()
	}
	ok, err := argon2id.ComparePasswordAndHash(pw, hash)
	if err != nil {
		return false, fmt.Errorf("check password: %w", err)
	}
	return ok, nil
}

func (a Argon2Config) params() *argon2id.Params {
	return &argon2id.Params{
		Memory:      a.MemoryKiB,
		Iterations:  a.Iterations,
		Parallelism: a.Parallelism,
		SaltLength:  16,
		KeyLength:   32,
	}
}

func (s *Server) dummyHash() string {
	s.dummyOnce.Do(func() {
		s.dummy, _ = argon2id.CreateHash(streams.NewID(), s.cfg.Argon2.params())
	})
	return s.dummy
}

func (s *Server) acquireHash(ctx context.Context) error {
	select {
	case s.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) releaseHash() { <-s.hashSem }
