package canonical

import (
	"errors"
	"fmt"

	"github.com/shopspring/decimal"
)

// Record is one canonical entity value: *Account, *Opportunity or *Contact.
type Record interface {
	// Entity names the record's kind.
	Entity() Entity
	// Key is the record's canonical id.
	Key() string
	// Value returns the named canonical field, or nil when it is missing.
	// Strings are string, decimals decimal.Decimal, integers int64, dates
	// Date and percentages Percent.
	Value(field string) any
	// Set stores a typed value (as Value returns them) into the named field.
	Set(field string, v any) error
	// ExtraFields returns the unmapped source fields.
	ExtraFields() map[string]any
	// SetExtras replaces the unmapped source fields.
	SetExtras(map[string]any)
}

var (
	_ Record = (*Account)(nil)
	_ Record = (*Opportunity)(nil)
	_ Record = (*Contact)(nil)
)

// Account is a company or organisation.
type Account struct {
	AccountID     string           `json:"account_id"`
	Name          string           `json:"name"`
	Industry      *string          `json:"industry"`
	AnnualRevenue *decimal.Decimal `json:"annual_revenue"`
	EmployeeCount *int64           `json:"employee_count"`
	Website       *string          `json:"website"`
	Extras        map[string]any   `json:"extras"`
}

// Opportunity is a deal in a sales pipeline.
type Opportunity struct {
	OpportunityID string           `json:"opportunity_id"`
	AccountID     *string          `json:"account_id"`
	Name          string           `json:"name"`
	Stage         *string          `json:"stage"`
	Amount        *decimal.Decimal `json:"amount"`
	Currency      *string          `json:"currency"`
	CloseDate     *Date            `json:"close_date"`
	OwnerID       *string          `json:"owner_id"`
	Probability   *Percent         `json:"probability"`
	Extras        map[string]any   `json:"extras"`
}

// Contact is a person.
type Contact struct {
	ContactID string         `json:"contact_id"`
	AccountID *string        `json:"account_id"`
	FirstName *string        `json:"first_name"`
	LastName  *string        `json:"last_name"`
	Email     *string        `json:"email"`
	Phone     *string        `json:"phone"`
	Title     *string        `json:"title"`
	Extras    map[string]any `json:"extras"`
}

// The records' wire forms (appendRecord): every field is written, a missing
// one as null — also an empty required string, which is how a delete (only
// the key set) reads.

// MarshalJSON writes every field, missing ones as null.
func (r Account) MarshalJSON() ([]byte, error) {
	return encodePooled(func(b []byte) ([]byte, error) { return appendRecord(b, &r) })
}

// MarshalJSON writes every field, missing ones as null.
func (r Opportunity) MarshalJSON() ([]byte, error) {
	return encodePooled(func(b []byte) ([]byte, error) { return appendRecord(b, &r) })
}

// MarshalJSON writes every field, missing ones as null.
func (r Contact) MarshalJSON() ([]byte, error) {
	return encodePooled(func(b []byte) ([]byte, error) { return appendRecord(b, &r) })
}

// NewRecord returns an empty record of entity e.
func NewRecord(e Entity) (Record, error) {
	switch e {
	case AccountEntity:
		return &Account{}, nil
	case OpportunityEntity:
		return &Opportunity{}, nil
	case ContactEntity:
		return &Contact{}, nil
	}
	return nil, fmt.Errorf("unknown entity %q", e)
}

func (*Account) Entity() Entity     { return AccountEntity }
func (*Opportunity) Entity() Entity { return OpportunityEntity }
func (*Contact) Entity() Entity     { return ContactEntity }

func (r *Account) Key() string     { return r.AccountID }
func (r *Opportunity) Key() string { return r.OpportunityID }
func (r *Contact) Key() string     { return r.ContactID }

func (r *Account) ExtraFields() map[string]any     { return r.Extras }
func (r *Opportunity) ExtraFields() map[string]any { return r.Extras }
func (r *Contact) ExtraFields() map[string]any     { return r.Extras }

func (r *Account) SetExtras(m map[string]any)     { r.Extras = m }
func (r *Opportunity) SetExtras(m map[string]any) { r.Extras = m }
func (r *Contact) SetExtras(m map[string]any)     { r.Extras = m }

func (r *Account) Value(f string) any {
	switch f {
	case "account_id":
		return nonEmpty(r.AccountID)
	case "name":
		return nonEmpty(r.Name)
	case "industry":
		return deref(r.Industry)
	case "annual_revenue":
		return deref(r.AnnualRevenue)
	case "employee_count":
		return deref(r.EmployeeCount)
	case "website":
		return deref(r.Website)
	}
	return nil
}

func (r *Opportunity) Value(f string) any {
	switch f {
	case "opportunity_id":
		return nonEmpty(r.OpportunityID)
	case "account_id":
		return deref(r.AccountID)
	case "name":
		return nonEmpty(r.Name)
	case "stage":
		return deref(r.Stage)
	case "amount":
		return deref(r.Amount)
	case "currency":
		return deref(r.Currency)
	case "close_date":
		return deref(r.CloseDate)
	case "owner_id":
		return deref(r.OwnerID)
	case "probability":
		return deref(r.Probability)
	}
	return nil
}

func (r *Contact) Value(f string) any {
	switch f {
	case "contact_id":
		return nonEmpty(r.ContactID)
	case "account_id":
		return deref(r.AccountID)
	case "first_name":
		return deref(r.FirstName)
	case "last_name":
		return deref(r.LastName)
	case "email":
		return deref(r.Email)
	case "phone":
		return deref(r.Phone)
	case "title":
		return deref(r.Title)
	}
	return nil
}

func (r *Account) Set(f string, v any) error {
	switch f {
	case "account_id":
		return setReq(&r.AccountID, v)
	case "name":
		return setReq(&r.Name, v)
	case "industry":
		return setOpt(&r.Industry, v)
	case "annual_revenue":
		return setOpt(&r.AnnualRevenue, v)
	case "employee_count":
		return setOpt(&r.EmployeeCount, v)
	case "website":
		return setOpt(&r.Website, v)
	}
	return errUnknownField(AccountEntity, f)
}

func (r *Opportunity) Set(f string, v any) error {
	switch f {
	case "opportunity_id":
		return setReq(&r.OpportunityID, v)
	case "account_id":
		return setOpt(&r.AccountID, v)
	case "name":
		return setReq(&r.Name, v)
	case "stage":
		return setOpt(&r.Stage, v)
	case "amount":
		return setOpt(&r.Amount, v)
	case "currency":
		return setOpt(&r.Currency, v)
	case "close_date":
		return setOpt(&r.CloseDate, v)
	case "owner_id":
		return setOpt(&r.OwnerID, v)
	case "probability":
		return setOpt(&r.Probability, v)
	}
	return errUnknownField(OpportunityEntity, f)
}

func (r *Contact) Set(f string, v any) error {
	switch f {
	case "contact_id":
		return setReq(&r.ContactID, v)
	case "account_id":
		return setOpt(&r.AccountID, v)
	case "first_name":
		return setOpt(&r.FirstName, v)
	case "last_name":
		return setOpt(&r.LastName, v)
	case "email":
		return setOpt(&r.Email, v)
	case "phone":
		return setOpt(&r.Phone, v)
	case "title":
		return setOpt(&r.Title, v)
	}
	return errUnknownField(ContactEntity, f)
}

func errUnknownField(e Entity, f string) error {
	return &FieldError{Field: f, Reason: fmt.Sprintf("not a field of %s", e)}
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func setReq(dst *string, v any) error {
	if v == nil {
		*dst = ""
		return nil
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("want a string, got %T", v)
	}
	*dst = s
	return nil
}

func setOpt[T any](dst **T, v any) error {
	if v == nil {
		*dst = nil
		return nil
	}
	t, ok := v.(T)
	if !ok {
		var zero T
		return fmt.Errorf("want %T, got %T", zero, v)
	}
	*dst = &t
	return nil
}

// Validate checks every field of r against its schema and returns a joined
// error of *FieldError, one per bad field, or nil.
func Validate(r Record) error { return validate(r, false) }

// validate checks r; for a delete (keyOnly) only the key is required, but
// every value that is present must still be valid.
func validate(r Record, keyOnly bool) error {
	if r == nil {
		return &FieldError{Field: "data", Reason: "record is missing"}
	}
	s, ok := SchemaOf(r.Entity())
	if !ok {
		return fmt.Errorf("unknown entity %q", r.Entity())
	}
	var errs []error
	for _, f := range s.Fields {
		v := r.Value(f.Name)
		if v == nil {
			if f.Required && (!keyOnly || f.Name == s.Entity.KeyField()) {
				errs = append(errs, &FieldError{Field: f.Name, Reason: "required field is missing"})
			}
			continue
		}
		if err := checkValue(f, v); err != nil {
			errs = append(errs, &FieldError{Field: f.Name, Reason: err.Error()})
		}
	}
	return errors.Join(errs...)
}

func checkValue(f Field, v any) error {
	switch f.Type {
	case TypeDecimal:
		return checkMoney(v.(decimal.Decimal))
	case TypeCurrency:
		return checkCurrency(v.(string))
	case TypePercent:
		return checkPercent(v.(Percent))
	case TypeDate:
		return checkDate(v.(Date))
	case TypeEmail:
		if err := checkText(v.(string)); err != nil {
			return err
		}
		return checkEmail(v.(string))
	case TypeInteger:
		if v.(int64) < 0 {
			return fmt.Errorf("must not be negative, got %d", v)
		}
	case TypeString, TypeURL:
		return checkText(v.(string))
	}
	return nil
}

// normalize puts r's decimal and percent values in their canonical form
// (see normDecimal), so equal records are equal values.
func normalize(r Record) {
	s, _ := SchemaOf(r.Entity())
	for _, f := range s.Fields {
		switch v := r.Value(f.Name).(type) {
		case decimal.Decimal:
			_ = r.Set(f.Name, normDecimal(v))
		case Percent:
			_ = r.Set(f.Name, Percent{normDecimal(v.Decimal)})
		}
	}
}

// FieldError names a field and what is wrong with it.
type FieldError struct {
	Field  string // canonical field name
	Source string // source field it came from, when known
	Reason string
}

func (e *FieldError) Error() string {
	if e.Source != "" && e.Source != e.Field {
		return fmt.Sprintf("%s (from %s): %s", e.Field, e.Source, e.Reason)
	}
	return e.Field + ": " + e.Reason
}
