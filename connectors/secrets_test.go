package connectors

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSealer(t *testing.T) {
	hexKey := strings.Repeat("0f", 32)
	secrets := map[string]string{"client_secret": "s3cr3t-value", "refresh_token": "rt-123456"}
	tests := []struct {
		name       string
		sealKey    string
		openKey    string
		openTenant string
		openConn   string
		mutate     func([]byte) []byte
		wantErr    bool
	}{
		{"hex key round trip", hexKey, hexKey, "acme", "c1", nil, false},
		{"passphrase round trip", "correct horse battery staple", "correct horse battery staple", "acme", "c1", nil, false},
		{"another key", hexKey, strings.Repeat("f0", 32), "acme", "c1", nil, true},
		{"hex key is not its passphrase", hexKey, "x" + hexKey[1:], "acme", "c1", nil, true},
		{"moved to another connection", hexKey, hexKey, "acme", "c2", nil, true},
		{"moved to another tenant", hexKey, hexKey, "globex", "c1", nil, true},
		{"tampered", hexKey, hexKey, "acme", "c1", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, true},
		{"truncated", hexKey, hexKey, "acme", "c1", func(b []byte) []byte { return b[:10] }, true},
		{"unknown version", hexKey, hexKey, "acme", "c1", func(b []byte) []byte { b[0] = 9; return b }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSealer(tc.sealKey)
			if err != nil {
				t.Fatal(err)
			}
			blob, err := s.Seal("acme", "c1", secrets)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(blob, []byte("s3cr3t")) {
				t.Fatal("the blob holds the plaintext")
			}
			if tc.mutate != nil {
				blob = tc.mutate(blob)
			}
			o, err := NewSealer(tc.openKey)
			if err != nil {
				t.Fatal(err)
			}
			got, err := o.Open(tc.openTenant, tc.openConn, blob)
			if tc.wantErr {
				if !errors.Is(err, ErrSealed) {
					t.Fatalf("opened: %v", err)
				}
				return
			}
			if err != nil || !mapsEqual(got, secrets) {
				t.Fatalf("open: %v (%d keys)", err, len(got))
			}
		})
	}
	if _, err := NewSealer(" "); err == nil {
		t.Fatal("an empty key was accepted")
	}
	s, _ := NewSealer(hexKey)
	a, _ := s.Seal("acme", "c1", secrets)
	b, _ := s.Seal("acme", "c1", secrets)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same secrets are equal: the nonce is not random")
	}
}

func FuzzSealerOpen(f *testing.F) {
	s, _ := NewSealer("fuzz key")
	good, _ := s.Seal("t", "c", map[string]string{"k": "v"})
	f.Add(good)
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, blob []byte) {
		m, err := s.Open("t", "c", blob)
		if err != nil && !errors.Is(err, ErrSealed) {
			t.Fatalf("error not ErrSealed: %v", err)
		}
		if err == nil && m == nil {
			t.Fatal("nil map without an error")
		}
	})
}

func ExampleSealer() {
	s, err := NewSealer("a long random key kept in the data dir")
	if err != nil {
		panic(err)
	}
	blob, _ := s.Seal("acme", "conn1", map[string]string{"access_token": "pat-na1-..."})
	secrets, _ := s.Open("acme", "conn1", blob)
	_, err = s.Open("acme", "conn2", blob) // the blob is bound to acme's conn1
	fmt.Println(secrets["access_token"], errors.Is(err, ErrSealed))
	// Output: pat-na1-... true
}
