package canonical

import (
	"fmt"
)

// Entity names a canonical entity kind. Its string form is the token used in
// subjects, event types and table names ("account", "opportunity", "contact").
type Entity string

// The canonical entities.
const (
	AccountEntity     Entity = "account"
	OpportunityEntity Entity = "opportunity"
	ContactEntity     Entity = "contact"
)

// Entities lists every canonical entity in a stable order.
var Entities = []Entity{AccountEntity, OpportunityEntity, ContactEntity}

// ParseEntity accepts an entity name in singular or plural form
// ("opportunity", "opportunities").
func ParseEntity(s string) (Entity, error) {
	switch s {
	case "account", "accounts":
		return AccountEntity, nil
	case "opportunity", "opportunities":
		return OpportunityEntity, nil
	case "contact", "contacts":
		return ContactEntity, nil
	}
	return "", fmt.Errorf("unknown entity %q (want account, opportunity or contact)", s)
}

// Plural is the entity's collection name, used by views and tables.
func (e Entity) Plural() string {
	switch e {
	case OpportunityEntity:
		return "opportunities"
	default:
		return string(e) + "s"
	}
}

// KeyField is the name of the entity's id field ("account_id", ...).
func (e Entity) KeyField() string { return string(e) + "_id" }

// ValidToken reports whether s may be used as a subject token (tenant,
// entity, system, stage): lower-case letters, digits, '_' and '-', 1..64 long.
func ValidToken(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// FieldType is the type of a canonical field.
type FieldType string

// Field types of the canonical model.
const (
	TypeString   FieldType = "string"
	TypeDecimal  FieldType = "decimal"
	TypeInteger  FieldType = "integer"
	TypeDate     FieldType = "date"
	TypeCurrency FieldType = "currency"
	TypePercent  FieldType = "percent"
	TypeEmail    FieldType = "email"
	TypeURL      FieldType = "url"
)

// Field describes one canonical field.
type Field struct {
	Name        string    `json:"name"`
	Type        FieldType `json:"type"`
	Required    bool      `json:"required"`
	Description string    `json:"description"`
}

// Schema is the ordered field list of one entity, excluding extras.
type Schema struct {
	Entity Entity  `json:"name"`
	Fields []Field `json:"fields"`
}

// Field returns the named field.
func (s Schema) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

var schemas = map[Entity]Schema{
	AccountEntity: {AccountEntity, []Field{
		{"account_id", TypeString, true, "The source system's own id of the account (company)."},
		{"name", TypeString, true, "Legal or display name of the account."},
		{"industry", TypeString, false, "Industry or sector the account operates in."},
		{"annual_revenue", TypeDecimal, false, "Annual revenue, a decimal amount."},
		{"employee_count", TypeInteger, false, "Number of employees."},
		{"website", TypeURL, false, "Website or domain of the account."},
	}},
	OpportunityEntity: {OpportunityEntity, []Field{
		{"opportunity_id", TypeString, true, "The source system's own id of the opportunity (deal)."},
		{"account_id", TypeString, false, "Id of the account the opportunity belongs to."},
		{"name", TypeString, true, "Name of the opportunity or deal."},
		{"stage", TypeString, false, "Sales stage, such as Prospecting or Closed Won."},
		{"amount", TypeDecimal, false, "Deal value or amount, a decimal in the opportunity's currency."},
		{"currency", TypeCurrency, false, "ISO 4217 currency code of the amount."},
		{"close_date", TypeDate, false, "Expected or actual close date."},
		{"owner_id", TypeString, false, "Id of the user who owns the opportunity."},
		{"probability", TypePercent, false, "Probability of winning, a percentage from 0 to 100."},
	}},
	ContactEntity: {ContactEntity, []Field{
		{"contact_id", TypeString, true, "The source system's own id of the contact (person)."},
		{"account_id", TypeString, false, "Id of the account the contact works for."},
		{"first_name", TypeString, false, "Given name."},
		{"last_name", TypeString, false, "Family name."},
		{"email", TypeEmail, false, "Email address."},
		{"phone", TypeString, false, "Phone number."},
		{"title", TypeString, false, "Job title."},
	}},
}

// SchemaOf returns the schema of an entity.
func SchemaOf(e Entity) (Schema, bool) {
	s, ok := schemas[e]
	return s, ok
}
