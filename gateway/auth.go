package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/autonomos/autonomos/streams"
)

// auth is the second middleware: on every route that is not public it
// requires a valid, unrevoked Bearer access token, puts its identity in the
// request state (the tenant of every later step comes from here only), and
// refuses non-admins on admin routes. Unknown routes pass through to their
// 404.
func (s *Server) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		st := stateOf(c)
		if st.route == nil || st.route.access == accessPublic {
			return next(c)
		}
		tok, ok := bearerToken(c.Request())
		if !ok {
			return unauthorized("a Bearer access token is required")
		}
		cl, err := s.tokens.parse(tok)
		if err != nil {
			return &apiError{status: http.StatusUnauthorized, code: CodeUnauthorized,
				message: "invalid or expired access token", err: err}
		}
		ctx := c.Request().Context()
		if revoked, err := s.revoked(ctx, cl); err != nil {
			return &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable,
				message: "cannot verify the token right now", err: err}
		} else if revoked {
			return unauthorized("access token revoked")
		}
		st.principal = &principal{UserID: cl.Subject, Tenant: cl.TenantID, Role: cl.Role,
			TokenID: cl.ID, SessionID: cl.SessionID, Expires: cl.ExpiresAt.Time}
		if st.route.access == accessAdmin && cl.Role != RoleAdmin {
			return newError(http.StatusForbidden, CodeForbidden, "this action needs the admin role")
		}
		return next(c)
	}
}

func (s *Server) revoked(ctx context.Context, cl *Claims) (bool, error) {
	if r, err := s.sessions.tokenRevoked(ctx, cl.ID); err != nil || r {
		return r, err
	}
	return s.sessions.sessionRevoked(ctx, cl.SessionID)
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get(echo.HeaderAuthorization)
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// TokenResponse is the body of register, login and refresh.
type TokenResponse struct {
	User         *UserView `json:"user,omitempty"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	TokenType    string    `json:"token_type"`
	ExpiresIn    int       `json:"expires_in"`
}

// startSession issues an access and a refresh token for u in session sid
// (a new session when sid is "").
func (s *Server) startSession(ctx context.Context, u *userRecord, sid string) (*TokenResponse, error) {
	if sid == "" {
		sid = streams.NewID()
	}
	access, _, err := s.tokens.issue(u.ID, u.TenantID, u.Role, sid)
	if err != nil {
		return nil, err
	}
	refresh, err := s.sessions.newRefresh(ctx, u.ID, u.TenantID, sid, s.cfg.RefreshTTL)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: access, RefreshToken: refresh, TokenType: "bearer",
		ExpiresIn: int(s.cfg.AccessTTL / time.Second)}, nil
}

func subjectOf(u *userRecord) *principal {
	return &principal{UserID: u.ID, Tenant: u.TenantID, Role: u.Role}
}

type registerRequest struct {
	Tenant   string `json:"tenant"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// handleRegister creates a tenant and its first user, an admin.
func (s *Server) handleRegister(c echo.Context) error {
	var req registerRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	var problems []string
	if !streams.ValidToken(req.Tenant) {
		problems = append(problems, fmt.Sprintf("tenant: want 1-64 of [a-z0-9_-], got %q", clip(req.Tenant)))
	}
	if err := validEmail(req.Email); err != nil {
		problems = append(problems, "email: "+err.Error())
	}
	if err := validPassword(req.Password); err != nil {
		problems = append(problems, "password: "+err.Error())
	}
	if len(problems) > 0 {
		return newError(http.StatusUnprocessableEntity, CodeValidation, "%s", strings.Join(problems, "; "))
	}
	ctx := c.Request().Context()
	hash, err := s.hashPassword(ctx, req.Password)
	if err != nil {
		return err
	}
	u := &userRecord{ID: streams.NewID(), Email: strings.ToLower(req.Email), TenantID: req.Tenant,
		Role: RoleAdmin, PasswordHash: hash, CreatedAt: time.Now().UTC()}
	rev, err := s.users.createTenant(ctx, tenantRecord{ID: req.Tenant, CreatedAt: u.CreatedAt, CreatedBy: u.ID})
	if errors.Is(err, ErrTenantExists) {
		return newError(http.StatusConflict, CodeConflict, "tenant %q already exists", req.Tenant)
	}
	if err != nil {
		return err
	}
	if err := s.users.createUser(ctx, u); err != nil {
		if derr := s.users.dropTenant(context.WithoutCancel(ctx), req.Tenant, rev); derr != nil {
			s.log.ErrorContext(ctx, "could not release tenant after failed registration", "tenant", req.Tenant, "error", derr)
		}
		if errors.Is(err, ErrEmailExists) {
			return newError(http.StatusConflict, CodeConflict, "email is already registered")
		}
		return err
	}
	stateOf(c).subject = subjectOf(u)
	resp, err := s.startSession(ctx, u, "")
	if err != nil {
		return err
	}
	v := u.view()
	resp.User = &v
	s.log.InfoContext(ctx, "tenant registered", "tenant", u.TenantID, "user_id", u.ID)
	return c.JSON(http.StatusCreated, resp)
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// handleLogin checks a password. Unknown e-mail and wrong password get the
// same answer after the same work; failures are throttled per account and
// per client address.
func (s *Server) handleLogin(c echo.Context) error {
	var req loginRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Email == "" {
		return invalid("email", "is required")
	}
	if req.Password == "" {
		return invalid("password", "is required")
	}
	if len(req.Email) > maxEmail || len(req.Password) > maxPassword {
		return unauthorized("invalid email or password")
	}
	now := time.Now()
	byAddr := s.loginAddress.get(c.RealIP()).ReserveN(now, 1)
	byAcct := s.loginAccount.get(emailKey(req.Email)).ReserveN(now, 1)
	if wait := max(byAddr.DelayFrom(now), byAcct.DelayFrom(now)); wait > 0 {
		byAddr.CancelAt(now)
		byAcct.CancelAt(now)
		secs := ceilSeconds(wait)
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return newError(http.StatusTooManyRequests, CodeRateLimited, "too many failed logins; retry in %d s", secs)
	}
	ctx := c.Request().Context()
	u, err := s.users.byEmail(ctx, req.Email)
	if err != nil && !errors.Is(err, errNoUser) {
		byAddr.CancelAt(now)
		byAcct.CancelAt(now)
		return err
	}
	hash := ""
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err := s.checkPassword(ctx, req.Password, hash)
	if err != nil {
		return err
	}
	if u != nil {
		stateOf(c).subject = subjectOf(u) // failed logins of an account are audited to its tenant
	}
	if !ok || u == nil {
		s.log.InfoContext(ctx, "login failed", "client", c.RealIP())
		return unauthorized("invalid email or password")
	}
	// A success gives its tokens back: only failures are throttled.
	byAddr.CancelAt(now)
	byAcct.CancelAt(now)
	resp, err := s.startSession(ctx, u, "")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// handleRefresh spends a refresh token for a new access and refresh token.
func (s *Server) handleRefresh(c echo.Context) error {
	var req refreshRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return invalid("refresh_token", "is required")
	}
	ctx := c.Request().Context()
	rec, err := s.sessions.consume(ctx, req.RefreshToken)
	if errors.Is(err, errBadRefresh) {
		return &apiError{status: http.StatusUnauthorized, code: CodeUnauthorized, message: "invalid refresh token", err: err}
	}
	if err != nil {
		return err
	}
	u, err := s.users.byID(ctx, rec.UserID)
	if errors.Is(err, errNoUser) || err == nil && u.TenantID != rec.Tenant {
		return unauthorized("invalid refresh token")
	}
	if err != nil {
		return err
	}
	stateOf(c).subject = subjectOf(u)
	resp, err := s.startSession(ctx, u, rec.SessionID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

// handleMe returns the token's user.
func (s *Server) handleMe(c echo.Context) error {
	p := stateOf(c).principal
	u, err := s.users.byID(c.Request().Context(), p.UserID)
	if errors.Is(err, errNoUser) || err == nil && u.TenantID != p.Tenant {
		return unauthorized("the token's user no longer exists")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u.view())
}

// handleLogout revokes the access token (until it expires) and its session,
// so no refresh token of the session works any more.
func (s *Server) handleLogout(c echo.Context) error {
	p := stateOf(c).principal
	ctx := c.Request().Context()
	if err := s.sessions.revokeToken(ctx, p.TokenID, p.Expires); err != nil {
		return err
	}
	if err := s.sessions.revokeSession(ctx, p.SessionID, time.Now().Add(s.cfg.RefreshTTL), "logout"); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type inviteRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

// InviteResponse is the body of POST /api/v1/auth/users.
type InviteResponse struct {
	User UserView `json:"user"`
}

// handleInvite lets an admin add a user to the admin's own tenant.
func (s *Server) handleInvite(c echo.Context) error {
	var req inviteRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Role == "" {
		req.Role = RoleViewer
	}
	var problems []string
	if err := validEmail(req.Email); err != nil {
		problems = append(problems, "email: "+err.Error())
	}
	if err := validPassword(req.Password); err != nil {
		problems = append(problems, "password: "+err.Error())
	}
	if req.Role != RoleAdmin && req.Role != RoleViewer {
		problems = append(problems, fmt.Sprintf("role: want admin or viewer, got %q", clip(req.Role)))
	}
	if len(problems) > 0 {
		return newError(http.StatusUnprocessableEntity, CodeValidation, "%s", strings.Join(problems, "; "))
	}
	p := stateOf(c).principal
	ctx := c.Request().Context()
	hash, err := s.hashPassword(ctx, req.Password)
	if err != nil {
		return err
	}
	u := &userRecord{ID: streams.NewID(), Email: strings.ToLower(req.Email), TenantID: p.Tenant,
		Role: req.Role, PasswordHash: hash, CreatedAt: time.Now().UTC()}
	if err := s.users.createUser(ctx, u); errors.Is(err, ErrEmailExists) {
		return newError(http.StatusConflict, CodeConflict, "email is already registered")
	} else if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "user invited", "tenant", p.Tenant, "user_id", u.ID, "role", u.Role)
	return c.JSON(http.StatusCreated, InviteResponse{User: u.view()})
}

// decodeJSON decodes a JSON body strictly: the media type must be JSON,
// unknown fields and trailing data are refused, and every problem is a 422
// naming the field.
func (s *Server) decodeJSON(c echo.Context, v any) error {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json") {
			return newError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type: want application/json")
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), req.Body, s.cfg.MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return invalid("body", "must hold exactly one JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var big *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return invalid("body", "a JSON object is required")
	case errors.As(err, &big):
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "body: larger than %d bytes", big.Limit)
	case errors.As(err, &syn):
		return invalid("body", "invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return invalid(field, "want a JSON %s", typ.Type.Kind())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return invalid(clip(name), "unknown field")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body", "truncated JSON")
	}
	return invalid("body", "invalid JSON")
}

// clip shortens client text echoed in an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func ceilSeconds(d time.Duration) int {
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}
