package dynamics

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/httpx"
)

// mappedAttributes are the columns config/mappings/dynamics.yaml reads
// (with lookups as _x_value) and the record version: the $select when the
// metadata API is not available, and the list checked for drift when it is.
var mappedAttributes = map[string][]string{
	"accounts":      {"accountid", "name", "industrycode", "revenue", "numberofemployees", "websiteurl", "modifiedon"},
	"opportunities": {"opportunityid", "_parentaccountid_value", "name", "stepname", "estimatedvalue", "_transactioncurrencyid_value", "estimatedclosedate", "_ownerid_value", "closeprobability", "modifiedon"},
	"contacts":      {"contactid", "_parentcustomerid_value", "firstname", "lastname", "emailaddress1", "telephone1", "jobtitle", "modifiedon"},
}

// lookupTypes are attribute types read as _<name>_value.
var lookupTypes = map[string]bool{"Lookup": true, "Owner": true, "Customer": true}

// unreadable are attribute types that cannot be in a $select.
var unreadable = map[string]bool{"Virtual": true, "EntityName": true, "ManagedProperty": true, "CalendarRules": true, "PartyList": true}

// selectList is an entity set's $select.
type selectList struct {
	names    []string
	fromMeta bool
}

// selectOf returns the $select of set, reading the table's attributes from
// the metadata API on first use (or again with refresh).
func (c *Connector) selectOf(ctx context.Context, set string, refresh bool) (*selectList, error) {
	c.mu.Lock()
	sl := c.selects[set]
	c.mu.Unlock()
	if sl != nil && !refresh {
		return sl, nil
	}
	var res struct {
		Value []struct {
			LogicalName    string  `json:"LogicalName"`
			AttributeType  string  `json:"AttributeType"`
			AttributeOf    *string `json:"AttributeOf"`
			IsValidForRead *bool   `json:"IsValidForRead"`
		} `json:"value"`
	}
	u := c.apiURL() + "/EntityDefinitions(LogicalName='" + logicalName(set) + "')/Attributes?$select=LogicalName,AttributeType,AttributeOf,IsValidForRead"
	err := c.api.GetJSON(ctx, u, odataHeader(), &res)
	sl = &selectList{}
	switch status := httpx.StatusOf(err); {
	case err == nil:
		sl.fromMeta = true
		for _, a := range res.Value {
			switch {
			case a.LogicalName == "", unreadable[a.AttributeType],
				a.AttributeOf != nil && *a.AttributeOf != "", a.IsValidForRead != nil && !*a.IsValidForRead:
				continue
			case lookupTypes[a.AttributeType]:
				sl.names = append(sl.names, "_"+a.LogicalName+"_value")
			default:
				sl.names = append(sl.names, a.LogicalName)
			}
		}
	case status == http.StatusForbidden || status == http.StatusNotFound:
		c.log.Warn("table metadata refused; selecting the mapped columns only", "object", set, "error", err)
		sl.names = slices.Clone(mappedAttributes[set])
		if len(sl.names) == 0 {
			sl.names = []string{primaryKey(set), "modifiedon"}
		}
	default:
		return nil, fmt.Errorf("attributes of %s: %w", set, httpx.Classify(err))
	}
	var missing []string
	for _, a := range mappedAttributes[set] {
		if !slices.Contains(sl.names, a) {
			missing = append(missing, a)
		}
	}
	if sl.fromMeta && len(missing) > 0 {
		// Schema drift: the mapping reads columns the table no longer has.
		c.log.Warn("mapped source fields are missing", "object", set, "missing_fields", missing)
	}
	if !slices.Contains(sl.names, primaryKey(set)) {
		return nil, &connectors.PermanentError{Err: fmt.Errorf("%s has no %s column (columns: %s)", set, primaryKey(set), strings.Join(sl.names, ","))}
	}
	c.mu.Lock()
	c.selects[set] = sl
	c.mu.Unlock()
	return sl, nil
}
