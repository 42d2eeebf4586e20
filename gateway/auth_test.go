package gateway_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/gateway/gatewaytest"
)

const pw = "correct horse battery"

func TestRegisterLoginMe(t *testing.T) {
	env := gatewaytest.Start(t)
	reg := env.Register(t, "acme", "Admin@Acme.example", pw)
	if reg.User.TenantID != "acme" || reg.User.Role != gateway.RoleAdmin || reg.User.ID == "" ||
		reg.User.Email != "admin@acme.example" {
		t.Fatalf("register user = %+v", reg.User)
	}
	if reg.TokenType != "bearer" || reg.ExpiresIn != 900 || reg.AccessToken == "" || reg.RefreshToken == "" {
		t.Fatalf("register tokens = %+v", reg)
	}

	// Login is case-insensitive on the e-mail.
	login := env.Login(t, "admin@acme.EXAMPLE", pw)
	if login.AccessToken == "" || login.RefreshToken == "" || login.TokenType != "bearer" || login.ExpiresIn != 900 {
		t.Fatalf("login = %+v", login)
	}
	res := env.Do(t, http.MethodGet, "/api/v1/auth/me", login.AccessToken, nil)
	gatewaytest.MustStatus(t, res, http.StatusOK)
	var me gateway.UserView
	gatewaytest.Decode(t, res, &me)
	if me != reg.User {
		t.Fatalf("me = %+v, want %+v", me, reg.User)
	}

	// The access token's claims are the ones the design names.
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(login.AccessToken, claims); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"iss", "aud", "sub", "tenant_id", "role", "exp", "iat", "nbf", "jti"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("access token lacks claim %q: %v", c, claims)
		}
	}
	if claims["sub"] != reg.User.ID || claims["tenant_id"] != "acme" || claims["role"] != "admin" {
		t.Errorf("claims = %v", claims)
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	env := gatewaytest.Start(t)
	env.Register(t, "acme", "admin@acme.example", pw)
	cases := []struct {
		name, email, password string
	}{
		{"wrong password", "admin@acme.example", "not the password"},
		{"unknown email", "nobody@acme.example", pw},
	}
	var messages []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := env.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": tc.email, "password": tc.password})
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", res.StatusCode)
			}
			messages = append(messages, gatewaytest.ErrorOf(t, res).Message)
		})
	}
	if len(messages) == 2 && messages[0] != messages[1] {
		t.Errorf("unknown e-mail and wrong password answer differently: %q vs %q", messages[0], messages[1])
	}
}

func TestRegisterConflicts(t *testing.T) {
	env := gatewaytest.Start(t)
	env.Register(t, "acme", "admin@acme.example", pw)
	cases := []struct {
		name          string
		tenant, email string
	}{
		{"same tenant", "acme", "other@acme.example"},
		{"same email", "globex", "admin@acme.example"},
		{"same email other case", "initech", "ADMIN@acme.example"},
		{"both", "acme", "admin@acme.example"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := env.Do(t, http.MethodPost, "/api/v1/auth/register", "", map[string]string{
				"tenant": tc.tenant, "email": tc.email, "password": pw})
			if res.StatusCode != http.StatusConflict {
				t.Fatalf("status %d, want 409", res.StatusCode)
			}
			if e := gatewaytest.ErrorOf(t, res); e.Code != gateway.CodeConflict {
				t.Fatalf("code %q", e.Code)
			}
		})
	}
	// A tenant claimed by a registration that lost on its e-mail was released.
	env.Register(t, "globex", "boss@globex.example", pw)
}

func TestRegisterValidation(t *testing.T) {
	env := gatewaytest.Start(t)
	cases := []struct {
		name        string
		body        string
		contentType string
		status      int
		field       string // the message must name it
	}{
		{"bad tenant", `{"tenant":"Acme Corp","email":"a@acme.example","password":"longenough"}`, "", 422, "tenant"},
		{"empty tenant", `{"tenant":"","email":"a@acme.example","password":"longenough"}`, "", 422, "tenant"},
		{"long tenant", `{"tenant":"` + strings.Repeat("a", 65) + `","email":"a@acme.example","password":"longenough"}`, "", 422, "tenant"},
		{"bad email", `{"tenant":"acme","email":"not-an-email","password":"longenough"}`, "", 422, "email"},
		{"display-name email", `{"tenant":"acme","email":"Bob <bob@acme.example>","password":"longenough"}`, "", 422, "email"},
		{"short password", `{"tenant":"acme","email":"a@acme.example","password":"short"}`, "", 422, "password"},
		{"unknown field", `{"tenant":"acme","email":"a@acme.example","password":"longenough","role":"admin"}`, "", 422, "role"},
		{"wrong type", `{"tenant":1,"email":"a@acme.example","password":"longenough"}`, "", 422, "tenant"},
		{"not json", `tenant=acme`, "", 422, "body"},
		{"empty body", ``, "", 422, "body"},
		{"two objects", `{"tenant":"acme"}{"tenant":"b"}`, "", 422, "body"},
		{"form content type", `tenant=acme`, "application/x-www-form-urlencoded", 415, "Content-Type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			res := env.DoRaw(t, http.MethodPost, "/api/v1/auth/register", "", strings.NewReader(tc.body), "Content-Type", ct)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if e := gatewaytest.ErrorOf(t, res); !strings.Contains(e.Message, tc.field) {
				t.Fatalf("message %q does not name %q", e.Message, tc.field)
			}
		})
	}
}

func TestConcurrentRegistration(t *testing.T) {
	env := gatewaytest.Start(t)
	cases := []struct {
		name string
		body func(i int) map[string]string
	}{
		{"same tenant", func(i int) map[string]string {
			return map[string]string{"tenant": "race", "email": fmt.Sprintf("u%d@race.example", i), "password": pw}
		}},
		{"same email", func(i int) map[string]string {
			return map[string]string{"tenant": fmt.Sprintf("race-%d", i), "email": "one@race.example", "password": pw}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const n = 12
			codes := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res := env.Do(t, http.MethodPost, "/api/v1/auth/register", "", tc.body(i))
					res.Body.Close()
					codes[i] = res.StatusCode
				}()
			}
			wg.Wait()
			created, conflicts := 0, 0
			for _, c := range codes {
				switch c {
				case http.StatusCreated:
					created++
				case http.StatusConflict:
					conflicts++
				}
			}
			if created != 1 || conflicts != n-1 {
				t.Fatalf("codes %v: %d created, %d conflicts; want exactly one 201", codes, created, conflicts)
			}
		})
	}
}

// signed makes a token with the given claims, method and key.
func signed(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBadTokens(t *testing.T) {
	env := gatewaytest.Start(t)
	reg := env.Register(t, "acme", "admin@acme.example", pw)
	base := func() jwt.MapClaims {
		now := time.Now()
		return jwt.MapClaims{
			"iss": "autonomos", "aud": "autonomos-api", "sub": reg.User.ID, "tenant_id": "acme",
			"role": "admin", "sid": "s1", "jti": fmt.Sprintf("j%d", now.UnixNano()),
			"exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := base()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	hs := func(c jwt.MapClaims) string { return signed(t, jwt.SigningMethodHS256, []byte(gatewaytest.Secret), c) }
	good := hs(base())
	parts := strings.Split(good, ".")
	otherPayload := strings.Split(hs(with("tenant_id", "globex")), ".")[1]

	cases := []struct {
		name   string
		header string
		status int
	}{
		{"valid", "Bearer " + good, 200},
		{"previous secret accepted", "Bearer " + signed(t, jwt.SigningMethodHS256, []byte(gatewaytest.PreviousSecret), base()), 200},
		{"no header", "", 401},
		{"not bearer", "Basic " + good, 401},
		{"garbage", "Bearer not.a.token", 401},
		{"alg none", "Bearer " + signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, base()), 401},
		{"RS256", "Bearer " + signed(t, jwt.SigningMethodRS256, rsaKey, base()), 401},
		{"HS512 with the secret", "Bearer " + signed(t, jwt.SigningMethodHS512, []byte(gatewaytest.Secret), base()), 401},
		{"tampered payload", "Bearer " + parts[0] + "." + otherPayload + "." + parts[2], 401},
		{"tampered signature", "Bearer " + parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), 401},
		{"expired", "Bearer " + hs(with("exp", time.Now().Add(-time.Minute).Unix())), 401},
		{"no exp", "Bearer " + hs(with("exp", nil)), 401},
		{"nbf in the future", "Bearer " + hs(with("nbf", time.Now().Add(time.Hour).Unix())), 401},
		{"iat in the future", "Bearer " + hs(with("iat", time.Now().Add(time.Hour).Unix())), 401},
		{"wrong aud", "Bearer " + hs(with("aud", "someone-else")), 401},
		{"no aud", "Bearer " + hs(with("aud", nil)), 401},
		{"wrong iss", "Bearer " + hs(with("iss", "evil")), 401},
		{"wrong secret", "Bearer " + signed(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef012345"), base()), 401},
		{"bad role", "Bearer " + hs(with("role", "root")), 401},
		{"bad tenant", "Bearer " + hs(with("tenant_id", "../x")), 401},
		{"no jti", "Bearer " + hs(with("jti", nil)), 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.header != "" {
				hdr = []string{"Authorization", tc.header}
			}
			res := env.DoRaw(t, http.MethodGet, "/api/v1/aoa/jobs", "", nil, hdr...)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.status == 401 {
				if e := gatewaytest.ErrorOf(t, res); e.Code != gateway.CodeUnauthorized {
					t.Fatalf("code %q", e.Code)
				}
				if res.Header.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
			} else {
				res.Body.Close()
			}
		})
	}
}

func TestViewerCannotMutate(t *testing.T) {
	env := gatewaytest.Start(t)
	admin := env.Register(t, "acme", "admin@acme.example", pw)
	viewer := env.Invite(t, admin.AccessToken, "viewer@acme.example", pw, "viewer")
	if viewer.AccessToken == "" {
		t.Fatal("viewer did not log in")
	}
	body, ct := gatewaytest.Multipart(t, "", gatewaytest.FormPart{Name: "entity", Content: []byte("account")},
		gatewaytest.FormPart{Name: "file", FileName: "a.csv", Content: []byte("account_id,name\n1,A\n")})
	cases := []struct {
		name   string
		do     func() *http.Response
		status int
	}{
		{"upload", func() *http.Response { return env.Upload(t, viewer.AccessToken, body, ct) }, 403},
		{"invite", func() *http.Response {
			return env.Do(t, http.MethodPost, "/api/v1/auth/users", viewer.AccessToken,
				map[string]string{"email": "x@acme.example", "password": pw, "role": "admin"})
		}, 403},
		{"read jobs", func() *http.Response { return env.Do(t, http.MethodGet, "/api/v1/aoa/jobs", viewer.AccessToken, nil) }, 200},
		{"read view", func() *http.Response {
			return env.Do(t, http.MethodGet, "/api/v1/dcl/views/accounts", viewer.AccessToken, nil)
		}, 200},
		{"me", func() *http.Response { return env.Do(t, http.MethodGet, "/api/v1/auth/me", viewer.AccessToken, nil) }, 200},
		{"logout (own session)", func() *http.Response {
			return env.Do(t, http.MethodPost, "/api/v1/auth/logout", viewer.AccessToken, nil)
		}, 204},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.do()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.status == 403 {
				if e := gatewaytest.ErrorOf(t, res); e.Code != gateway.CodeForbidden {
					t.Fatalf("code %q", e.Code)
				}
			} else {
				res.Body.Close()
			}
		})
	}
	if n := len(env.Ingester.Calls()); n != 0 {
		t.Fatalf("viewer upload reached the ingester %d times", n)
	}
}

func TestInviteJoinsOwnTenant(t *testing.T) {
	env := gatewaytest.Start(t)
	admin := env.Register(t, "acme", "admin@acme.example", pw)
	env.Register(t, "globex", "admin@globex.example", pw)
	res := env.Do(t, http.MethodPost, "/api/v1/auth/users", admin.AccessToken,
		map[string]string{"email": "new@acme.example", "password": pw, "role": "admin", "tenant": "globex"})
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a tenant in the body: status %d, want 422", res.StatusCode)
	}
	res.Body.Close()
	u := env.Invite(t, admin.AccessToken, "new@acme.example", pw, "admin")
	res = env.Do(t, http.MethodGet, "/api/v1/auth/me", u.AccessToken, nil)
	var me gateway.UserView
	gatewaytest.Decode(t, res, &me)
	if me.TenantID != "acme" || me.Role != "admin" {
		t.Fatalf("invited user = %+v", me)
	}
	res = env.Do(t, http.MethodPost, "/api/v1/auth/users", admin.AccessToken,
		map[string]string{"email": "admin@globex.example", "password": pw})
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("inviting an existing e-mail: status %d, want 409", res.StatusCode)
	}
	res.Body.Close()
}

func TestRefreshRotationAndLogout(t *testing.T) {
	env := gatewaytest.Start(t)
	reg := env.Register(t, "acme", "admin@acme.example", pw)
	refresh := func(tok string) (*http.Response, gatewaytest.Tokens) {
		res := env.Do(t, http.MethodPost, "/api/v1/auth/refresh", "", map[string]string{"refresh_token": tok})
		var out gatewaytest.Tokens
		if res.StatusCode == http.StatusOK {
			gatewaytest.Decode(t, res, &out)
		} else {
			res.Body.Close()
		}
		return res, out
	}
	res, t1 := refresh(reg.RefreshToken)
	if res.StatusCode != 200 || t1.RefreshToken == reg.RefreshToken || t1.AccessToken == "" {
		t.Fatalf("first refresh: %d %+v", res.StatusCode, t1)
	}
	if r := env.Do(t, http.MethodGet, "/api/v1/auth/me", t1.AccessToken, nil); r.StatusCode != 200 {
		t.Fatalf("refreshed access token: %d", r.StatusCode)
	}
	// Reusing the spent token fails and revokes the session: the new one dies too.
	if res, _ := refresh(reg.RefreshToken); res.StatusCode != 401 {
		t.Fatalf("reused refresh token: %d, want 401", res.StatusCode)
	}
	if res, _ := refresh(t1.RefreshToken); res.StatusCode != 401 {
		t.Fatalf("refresh after reuse detection: %d, want 401", res.StatusCode)
	}
	if res, _ := refresh("made-up"); res.StatusCode != 401 {
		t.Fatalf("unknown refresh token: %d, want 401", res.StatusCode)
	}

	// Logout revokes the access token and the session's refresh tokens.
	login := env.Login(t, "admin@acme.example", pw)
	r := env.Do(t, http.MethodPost, "/api/v1/auth/logout", login.AccessToken, nil)
	gatewaytest.MustStatus(t, r, http.StatusNoContent)
	r.Body.Close()
	r = env.Do(t, http.MethodGet, "/api/v1/auth/me", login.AccessToken, nil)
	if r.StatusCode != 401 {
		t.Fatalf("access token after logout: %d, want 401", r.StatusCode)
	}
	r.Body.Close()
	if res, _ := refresh(login.RefreshToken); res.StatusCode != 401 {
		t.Fatalf("refresh token after logout: %d, want 401", res.StatusCode)
	}
	// Another session of the same user is untouched.
	other := env.Login(t, "admin@acme.example", pw)
	r = env.Do(t, http.MethodGet, "/api/v1/auth/me", other.AccessToken, nil)
	gatewaytest.MustStatus(t, r, http.StatusOK)
	r.Body.Close()
}

func TestLoginThrottle(t *testing.T) {
	env := gatewaytest.Start(t, func(c *gateway.Config) {
		c.LoginRateAccount = "1/h burst 3"
		c.LoginRateAddress = "1/h burst 6"
	})
	env.Register(t, "acme", "admin@acme.example", pw)
	env.Register(t, "globex", "admin@globex.example", pw)
	login := func(email, password string) *http.Response {
		return env.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": email, "password": password})
	}
	// Successes cost nothing.
	for range 5 {
		r := login("admin@acme.example", pw)
		gatewaytest.MustStatus(t, r, 200)
		r.Body.Close()
	}
	for i := range 3 {
		r := login("admin@acme.example", "wrong password")
		if r.StatusCode != 401 {
			t.Fatalf("failure %d: status %d, want 401", i, r.StatusCode)
		}
		r.Body.Close()
	}
	// The account is throttled, even for the right password.
	r := login("admin@acme.example", pw)
	if r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("throttled account: status %d Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if e := gatewaytest.ErrorOf(t, r); e.Code != gateway.CodeRateLimited {
		t.Fatalf("code %q", e.Code)
	}
	// The address has 3 failures left: guessing other accounts runs out too.
	for i := range 3 {
		r := login(fmt.Sprintf("nobody%d@acme.example", i), "guess")
		if r.StatusCode != 401 {
			t.Fatalf("address failure %d: status %d, want 401", i, r.StatusCode)
		}
		r.Body.Close()
	}
	r = login("admin@globex.example", pw)
	if r.StatusCode != 429 {
		t.Fatalf("throttled address: status %d, want 429", r.StatusCode)
	}
	r.Body.Close()
}

func TestAddUserForOperators(t *testing.T) {
	env := gatewaytest.Start(t)
	ctx := context.Background()
	u, err := gateway.AddUser(ctx, env.NATS.JS, "ops", "Root@Ops.example", pw, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if u.TenantID != "ops" || u.Email != "root@ops.example" || u.Role != "admin" {
		t.Fatalf("user = %+v", u)
	}
	// A second user joins the existing tenant; the API sees both.
	if _, err := gateway.AddUser(ctx, env.NATS.JS, "ops", "viewer@ops.example", pw, "viewer"); err != nil {
		t.Fatal(err)
	}
	tok := env.Login(t, "viewer@ops.example", pw)
	res := env.Do(t, http.MethodGet, "/api/v1/auth/me", tok.AccessToken, nil)
	var me gateway.UserView
	gatewaytest.Decode(t, res, &me)
	if me.TenantID != "ops" || me.Role != "viewer" {
		t.Fatalf("me = %+v", me)
	}
	// Registering the tenant through the API now conflicts.
	res = env.Do(t, http.MethodPost, "/api/v1/auth/register", "", map[string]string{"tenant": "ops", "email": "x@y.example", "password": pw})
	res.Body.Close()
	if res.StatusCode != 409 {
		t.Fatalf("register of an operator-made tenant: %d", res.StatusCode)
	}
	cases := []struct {
		name, tenant, email, password, role string
		want                                string
	}{
		{"existing email", "ops", "root@ops.example", pw, "admin", "already registered"},
		{"bad tenant", "Ops!", "a@ops.example", pw, "admin", "tenant"},
		{"bad everything", "", "nope", "short", "owner", "role"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway.AddUser(ctx, env.NATS.JS, tc.tenant, tc.email, tc.password, tc.role)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := gateway.AddUser(ctx, env.NATS.JS, "ops", "root@ops.example", pw, "admin"); !errors.Is(err, gateway.ErrEmailExists) {
		t.Fatalf("err = %v, want ErrEmailExists", err)
	}
}
