package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"
)

// Idempotency records, in the idempotency bucket under
// <tenant>.<sha256 hex of the key>.
const (
	idemPending = "pending"
	idemDone    = "done"
	// maxStoredBody bounds a response kept for replay; a larger one is not
	// kept (the key is released).
	maxStoredBody = 256 << 10
	maxKeyLen     = 255
)

type idemRecord struct {
	State       string     `json:"state"`
	Fingerprint string     `json:"fingerprint,omitempty"`
	Method      string     `json:"method"`
	Path        string     `json:"path"`
	TraceID     string     `json:"trace_id"`
	StartedAt   time.Time  `json:"started_at"`
	DoneAt      *time.Time `json:"done_at,omitempty"`
	Status      int        `json:"status,omitempty"`
	ContentType string     `json:"content_type,omitempty"`
	Body        []byte     `json:"body,omitempty"`
}

// idempotency is the fourth middleware. For a mutating request it reads the
// body's digests (see requestBody). With an Idempotency-Key on an
// authenticated request it then claims <tenant>.<hash of key> in the
// idempotency bucket with KV Create, the lock that makes concurrent
// duplicates lose:
//
//   - claimed: the request runs; a 2xx response is stored with the
//     request's content fingerprint (method, path, query, user and body
//     content), any other answer releases the key so a retry runs again;
//   - held by a request still running: 409;
//   - done, same fingerprint: the stored status and body are replayed with
//     Idempotent-Replay: true;
//   - done, different fingerprint: 422.
//
// A claim older than IdempotencyLease (its instance died) or a result older
// than IdempotencyTTL is taken over with a compare-and-set.
func (s *Server) idempotency(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		st := stateOf(c)
		if !mutating(c.Request().Method) || st.route == nil {
			return next(c) // unknown routes answer 404 without their body being read
		}
		body, err := s.readBody(c)
		if err != nil {
			return s.refuse(c, err)
		}
		st.body = body
		key := c.Request().Header.Get(HeaderIdempotencyKey)
		if key == "" || st.principal == nil {
			return next(c)
		}
		if len(key) > maxKeyLen || !printable(key) {
			return s.refuse(c, invalid(HeaderIdempotencyKey, "want 1-%d printable ASCII characters", maxKeyLen))
		}
		st.idemKey = key
		sum := sha256.Sum256([]byte(key))
		kvKey := st.principal.Tenant + "." + hex.EncodeToString(sum[:])

		ctx := c.Request().Context()
		rev, replay, err := s.claim(ctx, c, st, kvKey)
		if err != nil {
			return s.refuse(c, err)
		}
		if replay != nil {
			return s.replay(c, st, replay)
		}
		return s.runOwned(c, st, kvKey, rev, next)
	}
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// fingerprint identifies a request's content; the body must be complete.
func fingerprint(c echo.Context, st *reqState) string {
	h := sha256.New()
	r := c.Request()
	for _, s := range []string{r.Method, r.URL.Path, r.URL.Query().Encode(), st.principal.UserID, st.body.content} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// claim takes the key (returning its revision) or returns the stored
// response to replay, or the error to answer.
func (s *Server) claim(ctx context.Context, c echo.Context, st *reqState, kvKey string) (uint64, *idemRecord, error) {
	unavailable := func(err error) error {
		return &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable,
			message: "idempotency store unavailable", err: err}
	}
	for range 5 {
		rec := idemRecord{State: idemPending, Method: c.Request().Method, Path: c.Request().URL.Path,
			TraceID: st.traceID, StartedAt: time.Now().UTC()}
		if st.body.complete {
			rec.Fingerprint = fingerprint(c, st)
		}
		val, _ := json.Marshal(rec)
		rev, err := s.idem.Create(ctx, kvKey, val)
		if err == nil {
			return rev, nil, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, nil, unavailable(err)
		}
		e, err := s.idem.Get(ctx, kvKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released meanwhile: try again
		}
		if err != nil {
			return 0, nil, unavailable(err)
		}
		var old idemRecord
		stale := json.Unmarshal(e.Value(), &old) != nil
		now := time.Now()
		switch {
		case old.State == idemPending && now.Sub(old.StartedAt) > s.cfg.IdempotencyLease:
			stale = true
		case old.State == idemDone && old.DoneAt != nil && now.Sub(*old.DoneAt) > s.cfg.IdempotencyTTL:
			stale = true
		}
		if stale {
			if rev, err := s.idem.Update(ctx, kvKey, val, e.Revision()); err == nil {
				return rev, nil, nil
			}
			continue
		}
		if old.State != idemDone {
			return 0, nil, newError(http.StatusConflict, CodeIdempotencyInUse,
				"a request with this Idempotency-Key is still in progress; retry later")
		}
		if err := st.body.Drain(); err != nil {
			return 0, nil, err
		}
		if fingerprint(c, st) != old.Fingerprint {
			return 0, nil, newError(http.StatusUnprocessableEntity, CodeIdempotencyReused,
				"%s: was already used for a different request", HeaderIdempotencyKey)
		}
		return 0, &old, nil
	}
	return 0, nil, newError(http.StatusConflict, CodeIdempotencyInUse,
		"a request with this Idempotency-Key is still in progress; retry later")
}

// replay answers with a stored response.
func (s *Server) replay(c echo.Context, st *reqState, rec *idemRecord) error {
	h := c.Response().Header()
	h.Set(HeaderIdempotentReplay, "true")
	if rec.ContentType != "" {
		h.Set(echo.HeaderContentType, rec.ContentType)
	}
	c.Response().WriteHeader(rec.Status)
	if len(rec.Body) > 0 && c.Request().Method != http.MethodHead {
		_, _ = c.Response().Write(rec.Body)
	}
	s.recordAudit(c, st, "replayed")
	return nil
}

// runOwned runs the request that holds the key, then stores its response
// or releases the key.
func (s *Server) runOwned(c echo.Context, st *reqState, kvKey string, rev uint64, next echo.HandlerFunc) error {
	cw := &captureWriter{ResponseWriter: c.Response().Writer}
	c.Response().Writer = cw
	if err := next(c); err != nil {
		c.Error(err)
	}
	res := c.Response()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 5*time.Second)
	defer cancel()
	if res.Status >= 200 && res.Status < 300 && !cw.overflow {
		if err := st.body.Drain(); err == nil {
			now := time.Now().UTC()
			rec := idemRecord{State: idemDone, Fingerprint: fingerprint(c, st), Method: c.Request().Method,
				Path: c.Request().URL.Path, TraceID: st.traceID, StartedAt: st.start.UTC(), DoneAt: &now,
				Status: res.Status, ContentType: res.Header().Get(echo.HeaderContentType), Body: cw.buf}
			val, _ := json.Marshal(rec)
			if _, err := s.idem.Update(ctx, kvKey, val, rev); err != nil {
				s.log.ErrorContext(ctx, "store idempotent response", "error", err)
			}
			return nil
		}
	}
	if err := s.idem.Delete(ctx, kvKey, jetstream.LastRevision(rev)); err != nil {
		s.log.ErrorContext(ctx, "release idempotency key", "error", err)
	}
	return nil
}

// captureWriter keeps a copy of the response body, up to maxStoredBody.
type captureWriter struct {
	http.ResponseWriter
	buf      []byte
	overflow bool
}

func (w *captureWriter) Write(b []byte) (int, error) {
	if !w.overflow {
		if len(w.buf)+len(b) > maxStoredBody {
			w.overflow = true
			w.buf = nil
		} else {
			w.buf = append(w.buf, b...)
		}
	}
	return w.ResponseWriter.Write(b)
}

func (w *captureWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
