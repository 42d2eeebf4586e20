package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// Error codes of the error body.
const (
	CodeBadRequest        = "bad_request"
	CodeValidation        = "validation_failed"
	CodeUnauthorized      = "unauthorized"
	CodeForbidden         = "forbidden"
	CodeNotFound          = "not_found"
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeConflict          = "conflict"
	CodeIdempotencyInUse  = "idempotency_key_in_use"
	CodeIdempotencyReused = "idempotency_key_reused"
	CodeTooLarge          = "payload_too_large"
	CodeUnsupportedMedia  = "unsupported_media_type"
	CodeRateLimited       = "rate_limited"
	CodeInternal          = "internal"
	CodeUnavailable       = "unavailable"
)

// ErrorBody is the body of every error response:
// {"error": {"code", "message", "trace_id"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner object of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	TraceID string `json:"trace_id"`
}

// apiError is an error with its HTTP answer. err, when set, is logged and
// never shown to the client.
type apiError struct {
	status  int
	code    string
	message string
	err     error
}

func (e *apiError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.status, e.code, e.message, e.err)
	}
	return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message)
}

func (e *apiError) Unwrap() error { return e.err }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// invalid is a 422 naming the field.
func invalid(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, code: CodeValidation,
		message: field + ": " + fmt.Sprintf(format, args...)}
}

func unauthorized(msg string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: CodeUnauthorized, message: msg}
}

func internal(err error) *apiError {
	return &apiError{status: http.StatusInternalServerError, code: CodeInternal, message: "internal error", err: err}
}

var statusCodes = map[int]string{
	http.StatusBadRequest:            CodeBadRequest,
	http.StatusUnauthorized:          CodeUnauthorized,
	http.StatusForbidden:             CodeForbidden,
	http.StatusNotFound:              CodeNotFound,
	http.StatusMethodNotAllowed:      CodeMethodNotAllowed,
	http.StatusConflict:              CodeConflict,
	http.StatusRequestEntityTooLarge: CodeTooLarge,
	http.StatusUnsupportedMediaType:  CodeUnsupportedMedia,
	http.StatusUnprocessableEntity:   CodeValidation,
	http.StatusTooManyRequests:       CodeRateLimited,
	http.StatusServiceUnavailable:    CodeUnavailable,
}

// toAPIError classifies any error a handler or middleware returned.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code, ok := statusCodes[he.Code]
		if !ok {
			code = CodeInternal
			if he.Code < 500 {
				code = CodeBadRequest
			}
		}
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok && s != "" && he.Code < 500 {
			msg = s
		}
		if he.Code == http.StatusNotFound {
			msg = "no such route"
		}
		return &apiError{status: he.Code, code: code, message: msg, err: he.Internal}
	}
	var fe *canonical.FieldError
	if errors.As(err, &fe) {
		return &apiError{status: http.StatusUnprocessableEntity, code: CodeValidation, message: fieldErrors(err)}
	}
	if errors.Is(err, ErrConflict) {
		return &apiError{status: http.StatusConflict, code: CodeConflict, message: strings.TrimPrefix(err.Error(), ErrConflict.Error()+": ")}
	}
	if errors.Is(err, streams.ErrNotFound) {
		return &apiError{status: http.StatusNotFound, code: CodeNotFound, message: "not found"}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: "request cancelled or timed out", err: err}
	}
	return internal(err)
}

// fieldErrors lists every *canonical.FieldError of a (joined) error.
func fieldErrors(err error) string {
	var parts []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *canonical.FieldError
		if errors.As(e, &fe) {
			parts = append(parts, fe.Error())
		} else {
			parts = append(parts, e.Error())
		}
	}
	walk(err)
	return strings.Join(parts, "; ")
}

// handleError is the one Echo HTTPErrorHandler: every error response of the
// gateway is rendered here.
func (s *Server) handleError(err error, c echo.Context) {
	ae := toAPIError(err)
	ctx := c.Request().Context()
	if ae.status >= 500 {
		s.log.ErrorContext(ctx, "request failed", "method", c.Request().Method, "route", c.Path(),
			"status", ae.status, "error", err)
	} else if ae.err != nil {
		s.log.DebugContext(ctx, "request refused", "status", ae.status, "error", ae.err)
	}
	if c.Response().Committed {
		return
	}
	if ae.status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="autonomos"`)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.status)
		return
	}
	body := ErrorBody{Error: ErrorDetail{Code: ae.code, Message: ae.message, TraceID: TraceID(ctx)}}
	if werr := c.JSON(ae.status, body); werr != nil {
		s.log.DebugContext(ctx, "write error response", "error", werr)
	}
}
