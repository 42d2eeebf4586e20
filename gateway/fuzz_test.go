package gateway

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func fuzzKeys() *tokenKeys {
	cfg := Config{JWTSecret: strings.Repeat("k", 32), JWTPreviousSecret: strings.Repeat("p", 32)}
	cfg.defaults()
	return newTokenKeys(cfg)
}

// FuzzParseToken feeds arbitrary text to the access-token parser. It must
// never panic, and whatever it accepts must be an HS256 token signed by one
// of the two secrets, with valid tenant, role and id claims.
func FuzzParseToken(f *testing.F) {
	k := fuzzKeys()
	good, _, err := k.issue("u1", "acme", RoleAdmin, "s1")
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "u1"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, s := range []string{
		good, none, "", ".", "..", "a.b.c", parts[0] + "." + parts[1] + ".",
		parts[0] + ".e30." + parts[2],
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2],
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		strings.Repeat("A", maxTokenLen+1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cl, err := k.parse(s)
		if err != nil {
			if cl != nil {
				t.Fatal("claims returned with an error")
			}
			return
		}
		segs := strings.Split(s, ".")
		if len(segs) != 3 {
			t.Fatalf("accepted a token of %d segments", len(segs))
		}
		hdr, err := base64.RawURLEncoding.DecodeString(segs[0])
		if err != nil {
			t.Fatalf("accepted a bad header: %v", err)
		}
		var h struct {
			Alg string `json:"alg"`
		}
		if json.Unmarshal(hdr, &h) != nil || h.Alg != "HS256" {
			t.Fatalf("accepted alg %q", h.Alg)
		}
		ok := false
		for _, key := range [][]byte{k.current, k.previous} {
			if jwt.SigningMethodHS256.Verify(segs[0]+"."+segs[1], mustDecodeSig(t, segs[2]), key) == nil {
				ok = true
			}
		}
		if !ok {
			t.Fatal("accepted a token no secret signed")
		}
		if cl.TenantID == "" || (cl.Role != RoleAdmin && cl.Role != RoleViewer) || cl.ID == "" || cl.Subject == "" {
			t.Fatalf("accepted bad claims %+v", cl)
		}
		if cl.ExpiresAt == nil || cl.ExpiresAt.Before(time.Now().Add(-time.Minute)) {
			t.Fatalf("accepted an expired token %+v", cl)
		}
	})
}

func mustDecodeSig(t *testing.T, s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("accepted a bad signature encoding: %v", err)
	}
	return b
}

// FuzzParseTraceparent: never panics; an accepted header yields a 32-hex,
// non-zero trace id taken from the header itself.
func FuzzParseTraceparent(f *testing.F) {
	for _, s := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "", "00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := ParseTraceparent(s)
		if !ok {
			return
		}
		if len(id) != 32 || !isHex(id) || allZero(id) || !strings.Contains(s, id) {
			t.Fatalf("ParseTraceparent(%q) = %q", s, id)
		}
	})
}

// FuzzCanonicalJSON: canonicalising is idempotent, so two spellings of one
// JSON value share an idempotency fingerprint.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1,2,{"z":null}]}`, `{ "a" : "x" }`, `[]`, `1e3`, `"s"`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c1, ok := canonicalJSON([]byte(s))
		if !ok {
			return
		}
		c2, ok := canonicalJSON(c1)
		if !ok || string(c1) != string(c2) {
			t.Fatalf("not idempotent: %q → %q → %q", s, c1, c2)
		}
	})
}

func TestTokenRoundTrip(t *testing.T) {
	k := fuzzKeys()
	tok, issued, err := k.issue("u1", "acme", RoleViewer, "s1")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := k.parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Subject != "u1" || cl.TenantID != "acme" || cl.Role != RoleViewer || cl.SessionID != "s1" ||
		cl.ID != issued.ID || cl.Issuer != "autonomos" || cl.Audience[0] != "autonomos-api" ||
		cl.ExpiresAt.Sub(cl.IssuedAt.Time) != 15*time.Minute {
		t.Fatalf("claims %+v", cl)
	}
	// Within the leeway a token is still good; beyond it, not.
	k.now = func() time.Time { return time.Now().Add(15*time.Minute + 3*time.Second) }
	if _, err := k.parse(tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	k.now = func() time.Time { return time.Now().Add(15*time.Minute + 10*time.Second) }
	if _, err := k.parse(tok); err == nil {
		t.Fatal("expired beyond the leeway, still accepted")
	}
}
