package crmsim

import "strings"

// The systems a Sim serves, as used by FailNext, Requests, Delete, Put and
// RenameField.
const (
	Salesforce = "salesforce"
	HubSpot    = "hubspot"
	Dynamics   = "dynamics"
)

// Entity kinds, shared by every system. Put, Delete and RenameField accept
// either a kind or the system's own object name ("Account", "companies",
// "accounts").
const (
	kindAccount     = "account"
	kindOpportunity = "opportunity"
	kindContact     = "contact"
)

// valueType is how a field's value is held in the store; each system renders
// it in its own wire form.
type valueType int

const (
	tString   valueType = iota // string
	tID                        // string: an id or GUID
	tDecimal                   // string holding an exact decimal ("1234.50")
	tInt                       // int64
	tOption                    // int64 with labels (Dynamics option sets)
	tBool                      // bool
	tDateTime                  // time.Time (UTC)
	tDate                      // string "2006-01-02"
)

// role says where a field's value comes from: stored data, or the record's
// bookkeeping (id, parent account, stamps, deletion).
type role int

const (
	roleData role = iota
	roleID
	roleRef
	roleCreated
	roleModified
	roleDeleted
)

type fieldDef struct {
	name    string // original name; renames are kept per table
	typ     valueType
	native  string // the system's own type name (describe, properties, metadata)
	role    role
	options map[int64]string // labels of an option set
	lookup  string           // Dynamics: logical name of the lookup target
	nav     string           // Dynamics: navigation property of a lookup
}

type objectDef struct {
	kind     string
	name     string // native object (Salesforce sObject, HubSpot object type, Dynamics entity set)
	logical  string // Dynamics logical name; Salesforce label
	prefix   string // Salesforce key prefix
	fields   []fieldDef
	defaults []string // HubSpot: properties returned when none are asked for
}

var (
	industryCodes = map[int64]string{
		3: "Broadcasting Printing and Publishing", 6: "Business Services", 7: "Consulting",
		11: "Doctor's Offices and Clinics", 12: "Durable Manufacturing", 16: "Financial",
		20: "Insurance", 22: "Non-Durable Merchandise Retail", 24: "Petrochemical Extraction and Distribution",
		30: "Transportation", 31: "Utility Creation and Distribution",
	}
	stateCodes = map[int64]string{0: "Active", 1: "Inactive"}
	salesStage = map[int64]string{0: "Qualify", 1: "Develop", 2: "Propose", 3: "Close"}
)

func salesforceDefs() []objectDef {
	stamps := []fieldDef{
		{name: "CreatedDate", typ: tDateTime, native: "datetime", role: roleCreated},
		{name: "LastModifiedDate", typ: tDateTime, native: "datetime", role: roleModified},
		{name: "SystemModstamp", typ: tDateTime, native: "datetime", role: roleModified},
		{name: "IsDeleted", typ: tBool, native: "boolean", role: roleDeleted},
	}
	return []objectDef{
		{kind: kindAccount, name: "Account", logical: "Account", prefix: "001", fields: append([]fieldDef{
			{name: "Id", typ: tID, native: "id", role: roleID},
			{name: "Name", typ: tString, native: "string"},
			{name: "Type", typ: tString, native: "picklist"},
			{name: "Industry", typ: tString, native: "picklist"},
			{name: "AnnualRevenue", typ: tDecimal, native: "currency"},
			{name: "NumberOfEmployees", typ: tInt, native: "int"},
			{name: "Website", typ: tString, native: "url"},
			{name: "OwnerId", typ: tID, native: "reference"},
		}, stamps...)},
		{kind: kindOpportunity, name: "Opportunity", logical: "Opportunity", prefix: "006", fields: append([]fieldDef{
			{name: "Id", typ: tID, native: "id", role: roleID},
			{name: "Name", typ: tString, native: "string"},
			{name: "AccountId", typ: tID, native: "reference", role: roleRef},
			{name: "StageName", typ: tString, native: "picklist"},
			{name: "Amount", typ: tDecimal, native: "currency"},
			{name: "CurrencyIsoCode", typ: tString, native: "picklist"},
			{name: "CloseDate", typ: tDate, native: "date"},
			{name: "Probability", typ: tDecimal, native: "percent"},
			{name: "OwnerId", typ: tID, native: "reference"},
		}, stamps...)},
		{kind: kindContact, name: "Contact", logical: "Contact", prefix: "003", fields: append([]fieldDef{
			{name: "Id", typ: tID, native: "id", role: roleID},
			{name: "AccountId", typ: tID, native: "reference", role: roleRef},
			{name: "FirstName", typ: tString, native: "string"},
			{name: "LastName", typ: tString, native: "string"},
			{name: "Email", typ: tString, native: "email"},
			{name: "Phone", typ: tString, native: "phone"},
			{name: "Title", typ: tString, native: "string"},
			{name: "Department", typ: tString, native: "string"},
		}, stamps...)},
	}
}

func hubspotDefs() []objectDef {
	return []objectDef{
		{kind: kindAccount, name: "companies", logical: "company", fields: []fieldDef{
			{name: "hs_object_id", typ: tID, native: "number", role: roleID},
			{name: "name", typ: tString, native: "string"},
			{name: "industry", typ: tString, native: "enumeration"},
			{name: "annualrevenue", typ: tDecimal, native: "number"},
			{name: "numberofemployees", typ: tInt, native: "number"},
			{name: "domain", typ: tString, native: "string"},
			{name: "lifecyclestage", typ: tString, native: "enumeration"},
			{name: "createdate", typ: tDateTime, native: "datetime", role: roleCreated},
			{name: "hs_lastmodifieddate", typ: tDateTime, native: "datetime", role: roleModified},
		}, defaults: []string{"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"}},
		{kind: kindOpportunity, name: "deals", logical: "deal", fields: []fieldDef{
			{name: "hs_object_id", typ: tID, native: "number", role: roleID},
			{name: "dealname", typ: tString, native: "string"},
			{name: "dealstage", typ: tString, native: "enumeration"},
			{name: "pipeline", typ: tString, native: "enumeration"},
			{name: "amount", typ: tDecimal, native: "number"},
			{name: "deal_currency_code", typ: tString, native: "enumeration"},
			{name: "closedate", typ: tDateTime, native: "datetime"},
			{name: "hubspot_owner_id", typ: tID, native: "enumeration"},
			{name: "hs_probability", typ: tDecimal, native: "number"},
			{name: "createdate", typ: tDateTime, native: "datetime", role: roleCreated},
			{name: "hs_lastmodifieddate", typ: tDateTime, native: "datetime", role: roleModified},
		}, defaults: []string{"amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id", "pipeline"}},
		{kind: kindContact, name: "contacts", logical: "contact", fields: []fieldDef{
			{name: "hs_object_id", typ: tID, native: "number", role: roleID},
			{name: "firstname", typ: tString, native: "string"},
			{name: "lastname", typ: tString, native: "string"},
			{name: "email", typ: tString, native: "string"},
			{name: "phone", typ: tString, native: "string"},
			{name: "jobtitle", typ: tString, native: "string"},
			{name: "createdate", typ: tDateTime, native: "datetime", role: roleCreated},
			{name: "lastmodifieddate", typ: tDateTime, native: "datetime", role: roleModified},
		}, defaults: []string{"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"}},
	}
}

func dynamicsDefs() []objectDef {
	return []objectDef{
		{kind: kindAccount, name: "accounts", logical: "account", fields: []fieldDef{
			{name: "accountid", typ: tID, native: "Uniqueidentifier", role: roleID},
			{name: "name", typ: tString, native: "String"},
			{name: "industrycode", typ: tOption, native: "Picklist", options: industryCodes},
			{name: "revenue", typ: tDecimal, native: "Money"},
			{name: "numberofemployees", typ: tInt, native: "Integer"},
			{name: "websiteurl", typ: tString, native: "String"},
			{name: "statecode", typ: tOption, native: "State", options: stateCodes},
			{name: "createdon", typ: tDateTime, native: "DateTime", role: roleCreated},
			{name: "modifiedon", typ: tDateTime, native: "DateTime", role: roleModified},
			{name: "_ownerid_value", typ: tID, native: "Owner", lookup: "systemuser", nav: "ownerid"},
		}},
		{kind: kindOpportunity, name: "opportunities", logical: "opportunity", fields: []fieldDef{
			{name: "opportunityid", typ: tID, native: "Uniqueidentifier", role: roleID},
			{name: "name", typ: tString, native: "String"},
			{name: "estimatedvalue", typ: tDecimal, native: "Money"},
			{name: "estimatedclosedate", typ: tDate, native: "DateTime"},
			{name: "closeprobability", typ: tInt, native: "Integer"},
			{name: "stepname", typ: tString, native: "String"},
			{name: "salesstage", typ: tOption, native: "Picklist", options: salesStage},
			{name: "_parentaccountid_value", typ: tID, native: "Lookup", role: roleRef, lookup: "account", nav: "parentaccountid"},
			{name: "_transactioncurrencyid_value", typ: tID, native: "Lookup", lookup: "transactioncurrency", nav: "transactioncurrencyid"},
			{name: "modifiedon", typ: tDateTime, native: "DateTime", role: roleModified},
			{name: "createdon", typ: tDateTime, native: "DateTime", role: roleCreated},
		}},
		{kind: kindContact, name: "contacts", logical: "contact", fields: []fieldDef{
			{name: "contactid", typ: tID, native: "Uniqueidentifier", role: roleID},
			{name: "firstname", typ: tString, native: "String"},
			{name: "lastname", typ: tString, native: "String"},
			{name: "emailaddress1", typ: tString, native: "String"},
			{name: "telephone1", typ: tString, native: "String"},
			{name: "jobtitle", typ: tString, native: "String"},
			{name: "_parentcustomerid_value", typ: tID, native: "Customer", role: roleRef, lookup: "account", nav: "parentcustomerid_account"},
			{name: "modifiedon", typ: tDateTime, native: "DateTime", role: roleModified},
			{name: "createdon", typ: tDateTime, native: "DateTime", role: roleCreated},
		}},
	}
}

// table is one object of one system: its schema (which can grow and be
// renamed) and its records, deleted ones included.
type table struct {
	def     objectDef
	fields  []fieldDef
	renames map[string]string // original name → current name
	recs    map[string]*record
	order   []string // ids in creation order
}

func newTable(def objectDef) *table {
	return &table{
		def:     def,
		fields:  append([]fieldDef(nil), def.fields...),
		renames: map[string]string{},
		recs:    map[string]*record{},
	}
}

// current is the name a field is served under now.
func (t *table) current(orig string) string {
	if n, ok := t.renames[orig]; ok {
		return n
	}
	return orig
}

// resolve finds a field by the name it is served under now. Salesforce field
// names are case-insensitive (fold); HubSpot and Dynamics names are not.
func (t *table) resolve(name string, fold bool) (fieldDef, bool) {
	for _, f := range t.fields {
		cur := t.current(f.name)
		if cur == name || (fold && strings.EqualFold(cur, name)) {
			return f, true
		}
	}
	return fieldDef{}, false
}

// byRole returns the first field with role r.
func (t *table) byRole(r role) (fieldDef, bool) {
	for _, f := range t.fields {
		if f.role == r {
			return f, true
		}
	}
	return fieldDef{}, false
}

// live returns the records not deleted, in creation order.
func (t *table) live() []*record {
	out := make([]*record, 0, len(t.order))
	for _, id := range t.order {
		if r := t.recs[id]; !r.deleted {
			out = append(out, r)
		}
	}
	return out
}

// all returns every record, deleted ones included, in creation order.
func (t *table) all() []*record {
	out := make([]*record, 0, len(t.order))
	for _, id := range t.order {
		out = append(out, t.recs[id])
	}
	return out
}
