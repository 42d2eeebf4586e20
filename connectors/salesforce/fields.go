package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/httpx"
)

// mappedFields are the fields config/mappings/salesforce.yaml reads, plus
// the bookkeeping fields the connector itself needs. They are the SELECT
// list when the describe call is not available, and the list checked for
// drift (a mapped field the describe no longer reports) when it is.
var mappedFields = map[string][]string{
	"Account":     {"Id", "Name", "Industry", "AnnualRevenue", "NumberOfEmployees", "Website", "SystemModstamp", "IsDeleted"},
	"Opportunity": {"Id", "AccountId", "Name", "StageName", "Amount", "CurrencyIsoCode", "CloseDate", "OwnerId", "Probability", "SystemModstamp", "IsDeleted"},
	"Contact":     {"Id", "AccountId", "FirstName", "LastName", "Email", "Phone", "Title", "SystemModstamp", "IsDeleted"},
}

// requiredFields are those the connector cannot work without.
var requiredFields = []string{"Id", "SystemModstamp", "IsDeleted"}

// unselectable are describe field types a SELECT list leaves out: compound
// fields (their parts are selected one by one) and binary bodies.
var unselectable = map[string]bool{"address": true, "location": true, "base64": true}

// fieldSet is an object's SELECT list and what is known to be missing.
type fieldSet struct {
	names     []string
	described bool     // from a describe call (false: the static list)
	missing   []string // mapped fields the source does not have
}

func (c *Connector) fieldsOf(ctx context.Context, object string) (*fieldSet, error) {
	c.mu.Lock()
	fs := c.fields[object]
	c.mu.Unlock()
	if fs != nil {
		return fs, nil
	}
	return c.describe(ctx, object)
}

// describe learns object's fields from GET /sobjects/{object}/describe.
// When the call is refused (no permission), the static list is used.
func (c *Connector) describe(ctx context.Context, object string) (*fieldSet, error) {
	var desc struct {
		Fields []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"fields"`
	}
	err := c.api.GetJSON(ctx, c.dataURL()+"/sobjects/"+object+"/describe", nil, &desc)
	fs := &fieldSet{}
	switch status := httpx.StatusOf(err); {
	case err == nil:
		fs.described = true
		for _, f := range desc.Fields {
			if f.Name != "" && !unselectable[strings.ToLower(f.Type)] {
				fs.names = append(fs.names, f.Name)
			}
		}
	case status == http.StatusNotFound:
		return nil, &connectors.PermanentError{Err: fmt.Errorf("describe %s: no such sObject (or no access to it): %w", object, err)}
	case status == http.StatusBadRequest || status == http.StatusForbidden:
		c.log.Warn("describe refused; selecting the mapped fields only", "object", object, "error", err)
		fs.names = staticFields(object)
	default:
		return nil, fmt.Errorf("describe %s: %w", object, httpx.Classify(err))
	}
	if fs.described {
		for _, f := range staticFields(object) {
			if !containsFold(fs.names, f) {
				fs.missing = append(fs.missing, f)
			}
		}
	}
	for _, f := range requiredFields {
		if !containsFold(fs.names, f) {
			return nil, &connectors.PermanentError{Err: fmt.Errorf("%s has no %s field", object, f)}
		}
	}
	if len(fs.missing) > 0 {
		// Schema drift: the mapping reads fields the source no longer
		// has. The sync goes on without them; RAW shows what replaced them.
		c.log.Warn("mapped source fields are missing", "object", object, "missing_fields", fs.missing)
	}
	c.mu.Lock()
	c.fields[object] = fs
	c.mu.Unlock()
	return fs, nil
}

// staticFields is the fallback SELECT list of an object.
func staticFields(object string) []string {
	if fs, ok := mappedFields[object]; ok {
		return slices.Clone(fs)
	}
	return slices.Clone(requiredFields)
}

var reNoSuchColumn = regexp.MustCompile(`No such column '([^']+)'`)

// dropInvalid reacts to an INVALID_FIELD answer: it re-describes the object
// (a field was renamed or removed since the list was made) or, when the list
// is the static one, drops the column the error names. It reports whether
// the SELECT list changed.
func (c *Connector) dropInvalid(ctx context.Context, object string, fs *fieldSet, body string) (*fieldSet, bool, error) {
	if fs.described {
		nfs, err := c.describe(ctx, object)
		if err != nil {
			return nil, false, err
		}
		return nfs, !slices.Equal(nfs.names, fs.names), nil
	}
	m := reNoSuchColumn.FindStringSubmatch(body)
	if m == nil {
		return fs, false, nil
	}
	nfs := &fieldSet{missing: append(slices.Clone(fs.missing), m[1])}
	for _, f := range fs.names {
		if !strings.EqualFold(f, m[1]) {
			nfs.names = append(nfs.names, f)
		}
	}
	if len(nfs.names) == len(fs.names) || containsFold(requiredFields, m[1]) {
		return fs, false, nil
	}
	c.log.Warn("mapped source field is missing", "object", object, "missing_fields", []string{m[1]})
	c.mu.Lock()
	c.fields[object] = nfs
	c.mu.Unlock()
	return nfs, true, nil
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

// sfError is one entry of a REST API error body.
type sfError struct {
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

// errorCode returns the errorCode of a StatusError's body ("" when none).
func errorCode(err error) (code, body string) {
	var se *httpx.StatusError
	if !errors.As(err, &se) {
		return "", ""
	}
	var errs []sfError
	if json.Unmarshal([]byte(se.Body), &errs) == nil && len(errs) > 0 {
		return errs[0].ErrorCode, errs[0].Message
	}
	if m := reErrorCode.FindStringSubmatch(se.Body); m != nil { // a truncated body
		return m[1], se.Body
	}
	return "", se.Body
}

var reErrorCode = regexp.MustCompile(`"errorCode"\s*:\s*"([A-Z_]+)"`)
