package httpx

import (
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// Redacted replaces a secret in text.
const Redacted = "[redacted]"

// Redactor scrubs secrets out of text: the values it was given (client
// secrets, refresh tokens, issued access tokens) and anything that looks like
// a bearer token or a credential parameter. It is safe for concurrent use;
// the zero value scrubs patterns only.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// NewRedactor returns a redactor that knows secrets (values shorter than 4
// characters are ignored: replacing them would garble every message).
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add teaches r more secrets.
func (r *Redactor) Add(secrets ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) >= 4 {
			r.secrets = append(r.secrets, s)
		}
	}
}

var (
	reBearer    = regexp.MustCompile(`(?i)\b(bearer|oauth)\s+[A-Za-z0-9._~+/=!\-]{8,}`)
	reParam     = regexp.MustCompile(`(?i)\b(access_token|refresh_token|client_secret|id_token|hapikey|api_key|apikey|password|code|assertion)=([^&\s"']+)`)
	reJSONField = regexp.MustCompile(`(?i)"(access_token|refresh_token|client_secret|id_token|password)"\s*:\s*"[^"]*"`)
)

// String returns s without secrets.
func (r *Redactor) String(s string) string {
	if r != nil {
		r.mu.RLock()
		for _, v := range r.secrets {
			s = strings.ReplaceAll(s, v, Redacted)
		}
		r.mu.RUnlock()
	}
	s = reBearer.ReplaceAllString(s, "$1 "+Redacted)
	s = reParam.ReplaceAllString(s, "$1="+Redacted)
	return reJSONField.ReplaceAllString(s, `"$1":"`+Redacted+`"`)
}

// URL renders u for an error message: without user info and with
// credential-like query parameters redacted.
func (r *Redactor) URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return r.String(raw)
	}
	u.User = nil
	return r.String(u.String())
}

// redactedError is an error whose message is scrubbed; it still unwraps to
// the original so errors.Is(err, context.Canceled) keeps working.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Error returns err with its message scrubbed by r (nil for nil).
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := r.String(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
