package httpx

import (
	"errors"
	"net/http"

	"github.com/autonomos/autonomos/connectors"
)

// Classify marks the failures retrying cannot fix as permanent
// (*connectors.PermanentError): a request the source rejects as malformed,
// unauthorized (after a token refresh), forbidden or unknown. Anything else
// — 429/5xx after every attempt, transport failures — stays retryable by
// the caller's job. ctx errors are returned unchanged.
func Classify(err error) error {
	var se *StatusError
	if !errors.As(err, &se) {
		return err
	}
	switch se.Status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusMethodNotAllowed, http.StatusGone, http.StatusUnprocessableEntity:
		var pe *connectors.PermanentError
		if errors.As(err, &pe) {
			return err
		}
		return &connectors.PermanentError{Err: err}
	}
	return err
}
