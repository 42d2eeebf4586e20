package connectors

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// sealVersion is the first byte of every sealed blob, so the format can change.
const sealVersion = 1

// ErrSealed is returned by Open for a blob that cannot be opened with this
// key for this tenant and connection (wrong key, tampered, or moved).
var ErrSealed = errors.New("connection secrets cannot be decrypted (wrong key, or sealed for another connection)")

// Sealer encrypts connection secrets at rest with AES-256-GCM. The tenant
// and connection id are bound into each blob as additional authenticated
// data, so a blob copied to another connection does not open. It is safe
// for concurrent use. It never logs, and its errors never carry a secret.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a sealer for key. A key of exactly 64 hex digits is used
// as the 32-byte AES key itself; any other non-empty string is a passphrase,
// stretched to 32 bytes with SHA-256 (fine for the generated random keys the
// binary keeps in its data dir; a human-chosen passphrase should be long).
// Changing the key makes every stored secret unreadable.
func NewSealer(key string) (*Sealer, error) {
	if strings.TrimSpace(key) == "" {
		return nil, errors.New("secrets key is empty")
	}
	var k []byte
	if len(key) == 64 {
		if b, err := hex.DecodeString(key); err == nil {
			k = b
		}
	}
	if k == nil {
		sum := sha256.Sum256([]byte(key))
		k = sum[:]
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// additionalData binds a blob to one tenant's connection.
func additionalData(tenant, connectionID string) []byte {
	return []byte("autonomos/connection-secrets/v1\x00" + tenant + "\x00" + connectionID)
}

// Seal encrypts secrets for one tenant's connection. The blob is a version
// byte, a random 12-byte nonce and the GCM ciphertext of the JSON object.
func (s *Sealer) Seal(tenant, connectionID string, secrets map[string]string) ([]byte, error) {
	if secrets == nil {
		secrets = map[string]string{}
	}
	plain, err := json.Marshal(secrets)
	if err != nil {
		return nil, errors.New("encode connection secrets")
	}
	nonce := make([]byte, s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal connection secrets: %w", err)
	}
	out := append([]byte{sealVersion}, nonce...)
	return s.aead.Seal(out, nonce, plain, additionalData(tenant, connectionID)), nil
}

// Open decrypts a blob made by Seal for the same tenant and connection; any
// other blob, or one sealed with another key, is ErrSealed.
func (s *Sealer) Open(tenant, connectionID string, blob []byte) (map[string]string, error) {
	ns := s.aead.NonceSize()
	if len(blob) < 1+ns+s.aead.Overhead() || blob[0] != sealVersion {
		return nil, ErrSealed
	}
	plain, err := s.aead.Open(nil, blob[1:1+ns], blob[1+ns:], additionalData(tenant, connectionID))
	if err != nil {
		return nil, ErrSealed
	}
	out := map[string]string{}
	if err := json.Unmarshal(plain, &out); err != nil {
		return nil, ErrSealed
	}
	return out, nil
}
