package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// requestBody is the body of a mutating request, with two digests:
//
//   - raw: SHA-256 of the bytes received (body_sha256 of the audit record);
//   - content: what makes two requests "the same" for Idempotency-Key. For a
//     JSON body it is the canonicalised JSON (keys sorted, insignificant
//     white space dropped); for multipart/form-data it is each part's form
//     name, file name and bytes — hashed while the parts stream by, order
//     independent, ignoring the boundary and part headers; otherwise the
//     raw bytes.
//
// A non-multipart body is read up front (bounded by MaxBodyBytes) and
// replayed to the handler; a multipart body is never buffered: the handler
// reads its parts through Parts, and Drain hashes whatever it left.
type requestBody struct {
	raw       hash.Hash
	multipart bool
	complete  bool
	content   string // set once complete

	// multipart state
	req   *http.Request
	mr    *multipart.Reader
	cur   *part
	parts []string // digest of each finished part
	eof   bool
}

func isMultipart(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	return err == nil && mt == "multipart/form-data"
}

// readBody prepares the body of a mutating request.
func (s *Server) readBody(c echo.Context) (*requestBody, error) {
	req := c.Request()
	b := &requestBody{raw: sha256.New()}
	if isMultipart(req) {
		b.multipart = true
		b.req = req
		return b, nil
	}
	data, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, s.cfg.MaxBodyBytes))
	var big *http.MaxBytesError
	if errors.As(err, &big) {
		return nil, newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "body: larger than %d bytes", big.Limit)
	}
	if err != nil {
		return nil, newError(http.StatusBadRequest, CodeBadRequest, "body: cannot be read")
	}
	req.Body = io.NopCloser(bytes.NewReader(data))
	b.raw.Write(data)
	b.content = contentDigest(req.Header.Get(echo.HeaderContentType), data)
	b.complete = true
	return b, nil
}

// contentDigest canonicalises a JSON body (when it is valid JSON); other
// bodies are taken as they are.
func contentDigest(contentType string, data []byte) string {
	h := sha256.New()
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == echo.MIMEApplicationJSON || strings.HasSuffix(mt, "+json") || mt == "" {
		if canon, ok := canonicalJSON(data); ok {
			h.Write([]byte("json\x00"))
			h.Write(canon)
			return hex.EncodeToString(h.Sum(nil))
		}
	}
	h.Write([]byte("raw\x00"))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

func canonicalJSON(data []byte) ([]byte, bool) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	out, err := json.Marshal(v) // maps marshal with sorted keys
	return out, err == nil
}

// maxParts bounds the parts of one multipart body.
const maxParts = 1000

// part is one part of a multipart body whose bytes are hashed into the
// request's content digest as they are read.
type part struct {
	*multipart.Part
	h hash.Hash
}

func (p *part) Read(b []byte) (int, error) {
	n, err := p.Part.Read(b)
	p.h.Write(b[:n])
	return n, err
}

// NextPart returns the next part of a multipart body (io.EOF after the
// last), after hashing what was left unread of the previous one.
func (b *requestBody) NextPart() (*part, error) {
	if !b.multipart {
		return nil, errors.New("not a multipart body")
	}
	if b.eof {
		return nil, io.EOF
	}
	if b.mr == nil {
		_, params, _ := mime.ParseMediaType(b.req.Header.Get(echo.HeaderContentType))
		boundary := params["boundary"]
		if boundary == "" {
			return nil, newError(http.StatusBadRequest, CodeBadRequest, "Content-Type: multipart boundary missing")
		}
		b.mr = multipart.NewReader(io.TeeReader(b.req.Body, b.raw), boundary)
	}
	if err := b.finishPart(); err != nil {
		return nil, err
	}
	p, err := b.mr.NextPart()
	if errors.Is(err, io.EOF) {
		b.eof = true
		b.complete = true
		b.content = b.partsDigest()
		return nil, io.EOF
	}
	if err != nil {
		return nil, newError(http.StatusBadRequest, CodeBadRequest, "multipart body: %v", err)
	}
	if len(b.parts) >= maxParts {
		return nil, newError(http.StatusBadRequest, CodeBadRequest, "multipart body: more than %d parts", maxParts)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%q\x00%q\x00", p.FormName(), p.FileName())
	b.cur = &part{Part: p, h: h}
	return b.cur, nil
}

func (b *requestBody) finishPart() error {
	if b.cur == nil {
		return nil
	}
	if _, err := io.Copy(io.Discard, b.cur); err != nil {
		return newError(http.StatusBadRequest, CodeBadRequest, "multipart body: %v", err)
	}
	b.parts = append(b.parts, hex.EncodeToString(b.cur.h.Sum(nil)))
	b.cur = nil
	return nil
}

func (b *requestBody) partsDigest() string {
	ps := slices.Clone(b.parts)
	slices.Sort(ps)
	h := sha256.New()
	h.Write([]byte("multipart\x00"))
	for _, p := range ps {
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Drain reads and hashes the rest of a multipart body, completing its
// digests. It is a no-op for other bodies.
func (b *requestBody) Drain() error {
	if b.complete {
		return nil
	}
	for {
		if _, err := b.NextPart(); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// rawSHA256 is the hex SHA-256 of the raw body bytes read, "" while the body
// was not read to its end.
func (b *requestBody) rawSHA256() string {
	if b == nil || !b.complete {
		return ""
	}
	return hex.EncodeToString(b.raw.Sum(nil))
}
