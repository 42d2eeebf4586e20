package canonical

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// shipped compiles one of the mapping files in config/mappings.
func shipped(t testing.TB, system string) map[string]*Mapping {
	t.Helper()
	path := filepath.Join("..", "config", "mappings", system+".yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mf, ms, err := ParseMappingFile(path, b)
	if err != nil {
		t.Fatalf("shipped mapping: %v", err)
	}
	if mf.System != system {
		t.Fatalf("%s declares system %q", path, mf.System)
	}
	out := map[string]*Mapping{}
	for _, m := range ms {
		out[m.Object()] = m
	}
	return out
}

// rawJSON decodes a source record the way connectors do: numbers exactly.
func rawJSON(t testing.TB, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("bad raw record: %v", err)
	}
	return m
}

type applyCase struct {
	name    string
	object  string
	raw     string
	floats  bool // decode numbers as float64 instead of json.Number
	want    Record
	op      Op
	version string
	time    time.Time
	errs    []string // when set, Apply must fail naming these canonical fields (and sources)
}

func runApply(t *testing.T, system string, cases []applyCase) {
	t.Helper()
	ms := shipped(t, system)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := ms[tc.object]
			if !ok {
				t.Fatalf("no %s mapping for object %s", system, tc.object)
			}
			raw := rawJSON(t, tc.raw)
			if tc.floats {
				raw = nil
				if err := json.Unmarshal([]byte(tc.raw), &raw); err != nil {
					t.Fatal(err)
				}
			}
			res, err := m.Apply(raw)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("Apply accepted the record: %+v", res.Record)
				}
				for _, want := range tc.errs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
				for _, e := range unjoin(err) {
					var fe *FieldError
					if !errors.As(e, &fe) {
						t.Errorf("%v is not a *FieldError", e)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if res.Op != tc.op {
				t.Errorf("op %s, want %s", res.Op, tc.op)
			}
			if res.Version != tc.version {
				t.Errorf("version %q, want %q", res.Version, tc.version)
			}
			if !res.Time.Equal(tc.time) || (!res.Time.IsZero() && res.Time.Location() != time.UTC) {
				t.Errorf("time %v, want %v UTC", res.Time, tc.time)
			}
			if !reflect.DeepEqual(res.Record, tc.want) {
				g, _ := json.Marshal(res.Record)
				w, _ := json.Marshal(tc.want)
				t.Errorf("record\n got  %s\n want %s", g, w)
			}
			// Every mapped record makes a valid event that survives the wire.
			ev := &Event{ID: EventID("t1", system, m.Entity(), res.Record.Key(), res.Version, res.Op), Tenant: "t1",
				Op: res.Op, ConnectionID: "c1", SourceSystem: system, SourceObject: m.Object(),
				Time: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Record: res.Record}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("marshal event: %v", err)
			}
			back, err := ParseEvent(b)
			if err != nil {
				t.Fatalf("parse event: %v", err)
			}
			if !reflect.DeepEqual(back.Record, res.Record) {
				t.Errorf("record changed on the wire:\n%+v\n%+v", back.Record, res.Record)
			}
		})
	}
}

var may1 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func TestApplySalesforce(t *testing.T) {
	runApply(t, "salesforce", []applyCase{
		{
			name:   "account",
			object: "Account",
			raw: `{"attributes":{"type":"Account","url":"/services/data/v59.0/sobjects/Account/001AX00000Acme01"},
				"Id":"001AX00000Acme01","Name":"  Acme Corp ","Industry":"Technology","AnnualRevenue":15000000.0,
				"NumberOfEmployees":250,"Website":"https://acme.example","IsDeleted":false,
				"SystemModstamp":"2024-05-01T10:00:00.000+0000","Rating":"Hot","BillingCity":"Berlin",
				"OwnerId":"005AX000001Own1","Description":null}`,
			want: &Account{AccountID: "001AX00000Acme01", Name: "Acme Corp", Industry: ptr("Technology"),
				AnnualRevenue: ptr(dec("15000000")), EmployeeCount: ptr(int64(250)), Website: ptr("https://acme.example"),
				Extras: map[string]any{"Rating": "Hot", "BillingCity": "Berlin", "OwnerId": "005AX000001Own1", "Description": nil}},
			op: OpUpsert, version: "2024-05-01T10:00:00.000+0000", time: may1,
		},
		{
			name:   "account decoded with float64 numbers",
			object: "Account",
			floats: true,
			raw: `{"attributes":{"type":"Account"},"Id":"001B","Name":"Beta","AnnualRevenue":1.5E7,"NumberOfEmployees":12,
				"SystemModstamp":"2024-05-01T12:00:00.000+0200","IsDeleted":false}`,
			want: &Account{AccountID: "001B", Name: "Beta", AnnualRevenue: ptr(dec("15000000")), EmployeeCount: ptr(int64(12)),
				Extras: map[string]any{}},
			op: OpUpsert, version: "2024-05-01T12:00:00.000+0200", time: may1,
		},
		{
			name:   "opportunity without currency takes the default",
			object: "Opportunity",
			raw: `{"attributes":{"type":"Opportunity","url":"/services/data/v59.0/sobjects/Opportunity/006AX00000Opp001"},
				"Id":"006AX00000Opp001","AccountId":"001AX00000Acme01","Name":"Acme - 500 seats","StageName":"Negotiation/Review",
				"Amount":125000.50,"CloseDate":"2024-06-30","OwnerId":"005AX000001Own1","Probability":90,
				"IsDeleted":false,"SystemModstamp":"2024-05-01T10:00:00.000+0000","Type":"New Business","LeadSource":"Web"}`,
			want: &Opportunity{OpportunityID: "006AX00000Opp001", AccountID: ptr("001AX00000Acme01"), Name: "Acme - 500 seats",
				Stage: ptr("Negotiation/Review"), Amount: ptr(dec("125000.5")), Currency: ptr("USD"),
				CloseDate: ptr(NewDate(2024, 6, 30)), OwnerID: ptr("005AX000001Own1"), Probability: &Percent{dec("90")},
				Extras: map[string]any{"Type": "New Business", "LeadSource": "Web"}},
			op: OpUpsert, version: "2024-05-01T10:00:00.000+0000", time: may1,
		},
		{
			name:   "opportunity with a currency and null amount",
			object: "Opportunity",
			raw: `{"attributes":{"type":"Opportunity"},"Id":"006B","Name":"B","Amount":null,"CurrencyIsoCode":"eur",
				"CloseDate":null,"Probability":null,"StageName":"Prospecting","IsDeleted":false,
				"SystemModstamp":"2024-05-01T10:00:00.000+0000"}`,
			want: &Opportunity{OpportunityID: "006B", Name: "B", Stage: ptr("Prospecting"), Currency: ptr("EUR"),
				Extras: map[string]any{}},
			op: OpUpsert, version: "2024-05-01T10:00:00.000+0000", time: may1,
		},
		{
			name:   "deleted opportunity carries only its id",
			object: "Opportunity",
			raw: `{"attributes":{"type":"Opportunity"},"Id":"006AX00000Opp001","Name":"Acme - 500 seats","Amount":"garbage",
				"IsDeleted":true,"SystemModstamp":"2024-05-01T10:00:00.000+0000"}`,
			want: &Opportunity{OpportunityID: "006AX00000Opp001"},
			op:   OpDelete, version: "2024-05-01T10:00:00.000+0000", time: may1,
		},
		{
			name:   "contact",
			object: "Contact",
			raw: `{"attributes":{"type":"Contact"},"Id":"003AX0000Cont01","AccountId":"001AX00000Acme01","FirstName":" Jane",
				"LastName":"Doe ","Email":" Jane.Doe@Example.COM ","Phone":"+49 30 1234567","Title":"CTO",
				"IsDeleted":false,"SystemModstamp":"2024-05-01T10:00:00.000+0000","MailingCity":"Berlin"}`,
			want: &Contact{ContactID: "003AX0000Cont01", AccountID: ptr("001AX00000Acme01"), FirstName: ptr("Jane"),
				LastName: ptr("Doe"), Email: ptr("jane.doe@example.com"), Phone: ptr("+49 30 1234567"), Title: ptr("CTO"),
				Extras: map[string]any{"MailingCity": "Berlin"}},
			op: OpUpsert, version: "2024-05-01T10:00:00.000+0000", time: may1,
		},
		{
			name:   "empty required name",
			object: "Account",
			raw:    `{"attributes":{"type":"Account"},"Id":"001C","Name":"   ","IsDeleted":false,"SystemModstamp":"2024-05-01T10:00:00.000+0000"}`,
			errs:   []string{"name (from Name): required field is missing"},
		},
		{
			name:   "bad modstamp",
			object: "Account",
			raw:    `{"Id":"001C","Name":"C","SystemModstamp":"yesterday"}`,
			errs:   []string{"source_updated_at (from SystemModstamp)"},
		},
		{
			name:   "every bad field is reported",
			object: "Opportunity",
			raw:    `{"Id":"006C","Name":"","Amount":"ten","CloseDate":"30/06/2024","Probability":150,"CurrencyIsoCode":"XYZ","SystemModstamp":"2024-05-01T10:00:00.000+0000"}`,
			errs:   []string{"name (from Name)", "amount (from Amount)", "close_date (from CloseDate)", "probability (from Probability)", "currency (from CurrencyIsoCode)"},
		},
	})
}

func TestApplyHubSpot(t *testing.T) {
	runApply(t, "hubspot", []applyCase{
		{
			name:   "company",
			object: "companies",
			raw: `{"hs_object_id":"5001","name":"Globex ","industry":"COMPUTER_SOFTWARE","annualrevenue":"5000000",
				"numberofemployees":"120","domain":" Globex.EXAMPLE ","createdate":"2024-01-01T09:00:00.000Z",
				"hs_lastmodifieddate":"2024-05-01T10:00:00.000Z","archived":false}`,
			want: &Account{AccountID: "5001", Name: "Globex", Industry: ptr("COMPUTER_SOFTWARE"), AnnualRevenue: ptr(dec("5000000")),
				EmployeeCount: ptr(int64(120)), Website: ptr("globex.example"),
				Extras: map[string]any{"createdate": "2024-01-01T09:00:00.000Z"}},
			op: OpUpsert, version: "2024-05-01T10:00:00.000Z", time: may1,
		},
		{
			name:   "deal",
			object: "deals",
			raw: `{"hs_object_id":"9001","dealname":"Globex renewal","dealstage":"closedwon","amount":"48000.00",
				"deal_currency_code":"eur","closedate":"2024-06-30T00:00:00.000Z","hubspot_owner_id":"77",
				"hs_probability":"0.2","associatedcompanyid":"5001","pipeline":"default",
				"hs_lastmodifieddate":"2024-05-01T10:00:00.000Z","archived":false}`,
			want: &Opportunity{OpportunityID: "9001", AccountID: ptr("5001"), Name: "Globex renewal", Stage: ptr("Closed Won"),
				Amount: ptr(dec("48000")), Currency: ptr("EUR"), CloseDate: ptr(NewDate(2024, 6, 30)), OwnerID: ptr("77"),
				Probability: &Percent{dec("20")}, Extras: map[string]any{"pipeline": "default"}},
			op: OpUpsert, version: "2024-05-01T10:00:00.000Z", time: may1,
		},
		{
			name:   "deal with empty strings is nulls",
			object: "deals",
			raw: `{"hs_object_id":"9002","dealname":"Small","dealstage":"1234567","amount":"","deal_currency_code":"",
				"closedate":"","hubspot_owner_id":"","hs_probability":"","associatedcompanyid":"",
				"hs_lastmodifieddate":"2024-05-01T10:00:00.000Z","archived":false}`,
			want: &Opportunity{OpportunityID: "9002", Name: "Small", Stage: ptr("1234567"), Extras: map[string]any{}},
			op:   OpUpsert, version: "2024-05-01T10:00:00.000Z", time: may1,
		},
		{
			name:   "archived deal is a delete",
			object: "deals",
			raw:    `{"hs_object_id":"9001","dealname":"Globex renewal","hs_lastmodifieddate":"2024-05-02T08:30:00.000Z","archived":true}`,
			want:   &Opportunity{OpportunityID: "9001"},
			op:     OpDelete, version: "2024-05-02T08:30:00.000Z", time: time.Date(2024, 5, 2, 8, 30, 0, 0, time.UTC),
		},
		{
			name:   "contact uses lastmodifieddate",
			object: "contacts",
			raw: `{"hs_object_id":"301","firstname":"Ada","lastname":"Lovelace","email":"ADA@Example.com","phone":"",
				"jobtitle":"Analyst","associatedcompanyid":"5001","lastmodifieddate":"2024-05-01T10:00:00.000Z",
				"createdate":"2024-01-01T00:00:00.000Z","archived":false}`,
			want: &Contact{ContactID: "301", AccountID: ptr("5001"), FirstName: ptr("Ada"), LastName: ptr("Lovelace"),
				Email: ptr("ada@example.com"), Title: ptr("Analyst"), Extras: map[string]any{"createdate": "2024-01-01T00:00:00.000Z"}},
			op: OpUpsert, version: "2024-05-01T10:00:00.000Z", time: may1,
		},
		{
			name:   "empty deal name",
			object: "deals",
			raw:    `{"hs_object_id":"9003","dealname":"","hs_lastmodifieddate":"2024-05-01T10:00:00.000Z","archived":false}`,
			errs:   []string{"name (from dealname): required field is missing"},
		},
		{
			name:   "probability above 1",
			object: "deals",
			raw:    `{"hs_object_id":"9004","dealname":"x","hs_probability":"1.5","hs_lastmodifieddate":"2024-05-01T10:00:00.000Z"}`,
			errs:   []string{"probability (from hs_probability): must be between 0 and 100, got 150"},
		},
		{
			name:   "fractional employees",
			object: "companies",
			raw:    `{"hs_object_id":"5002","name":"x","numberofemployees":"12.5","hs_lastmodifieddate":"2024-05-01T10:00:00.000Z"}`,
			errs:   []string{"employee_count (from numberofemployees): not a whole number"},
		},
	})
}

func TestApplyDynamics(t *testing.T) {
	runApply(t, "dynamics", []applyCase{
		{
			name:   "account",
			object: "accounts",
			raw: `{"@odata.etag":"W/\"4711\"","accountid":"9a8b7c6d-1111-2222-3333-444455556666","name":"Contoso Ltd",
				"industrycode":7,"revenue":2500000.75,"numberofemployees":300,"websiteurl":"https://contoso.example",
				"modifiedon":"2024-05-01T10:00:00Z","address1_city":"Redmond","_primarycontactid_value":null}`,
			want: &Account{AccountID: "9a8b7c6d-1111-2222-3333-444455556666", Name: "Contoso Ltd", Industry: ptr("Consulting"),
				AnnualRevenue: ptr(dec("2500000.75")), EmployeeCount: ptr(int64(300)), Website: ptr("https://contoso.example"),
				Extras: map[string]any{"address1_city": "Redmond", "_primarycontactid_value": nil}},
			op: OpUpsert, version: "2024-05-01T10:00:00Z", time: may1,
		},
		{
			name:   "account with an unknown industry code keeps it",
			object: "accounts",
			raw:    `{"accountid":"a2","name":"Fabrikam","industrycode":99,"modifiedon":"2024-05-01T10:00:00Z"}`,
			want:   &Account{AccountID: "a2", Name: "Fabrikam", Industry: ptr("99"), Extras: map[string]any{}},
			op:     OpUpsert, version: "2024-05-01T10:00:00Z", time: may1,
		},
		{
			name:   "opportunity with the expanded currency",
			object: "opportunities",
			raw: `{"@odata.etag":"W/\"99\"","opportunityid":"o-1","_parentaccountid_value":"9a8b7c6d-1111-2222-3333-444455556666",
				"name":"Contoso upgrade","stepname":"3-Propose","estimatedvalue":75000,"estimatedclosedate":"2024-06-30",
				"_ownerid_value":"u-1","closeprobability":40,"modifiedon":"2024-05-01T10:00:00Z","statecode":0,
				"transactioncurrencyid":{"isocurrencycode":"eur","transactioncurrencyid":"c-eur"}}`,
			want: &Opportunity{OpportunityID: "o-1", AccountID: ptr("9a8b7c6d-1111-2222-3333-444455556666"), Name: "Contoso upgrade",
				Stage: ptr("3-Propose"), Amount: ptr(dec("75000")), Currency: ptr("EUR"), CloseDate: ptr(NewDate(2024, 6, 30)),
				OwnerID: ptr("u-1"), Probability: &Percent{dec("40")},
				Extras: map[string]any{"statecode": json.Number("0"), "transactioncurrencyid": map[string]any{"transactioncurrencyid": "c-eur"}}},
			op: OpUpsert, version: "2024-05-01T10:00:00Z", time: may1,
		},
		{
			name:   "opportunity with the currency as a flattened key",
			object: "opportunities",
			raw: `{"opportunityid":"o-2","name":"Flat","transactioncurrencyid.isocurrencycode":"GBP",
				"_transactioncurrencyid_value":"c-gbp","modifiedon":"2024-05-01T10:00:00Z"}`,
			want: &Opportunity{OpportunityID: "o-2", Name: "Flat", Currency: ptr("GBP"),
				Extras: map[string]any{"_transactioncurrencyid_value": "c-gbp"}},
			op: OpUpsert, version: "2024-05-01T10:00:00Z", time: may1,
		},
		{
			name:   "contact",
			object: "contacts",
			raw: `{"@odata.etag":"W/\"5\"","contactid":"c-1","_parentcustomerid_value":"9a8b7c6d-1111-2222-3333-444455556666",
				"firstname":"Jürgen","lastname":"Müller","emailaddress1":"Juergen.Mueller@Contoso.example","telephone1":null,
				"jobtitle":"Head of Procurement","modifiedon":"2024-05-01T10:00:00Z"}`,
			want: &Contact{ContactID: "c-1", AccountID: ptr("9a8b7c6d-1111-2222-3333-444455556666"), FirstName: ptr("Jürgen"),
				LastName: ptr("Müller"), Email: ptr("juergen.mueller@contoso.example"), Title: ptr("Head of Procurement"),
				Extras: map[string]any{}},
			op: OpUpsert, version: "2024-05-01T10:00:00Z", time: may1,
		},
	})
}

func TestApplyFileSource(t *testing.T) {
	runApply(t, "filesource", []applyCase{
		{
			name:   "account row",
			object: "account",
			raw: `{"account_id":" A-1 ","name":"Acme","industry":"","annual_revenue":"1000.50","employee_count":" 12 ",
				"website":"  ","updated_at":"2024-05-01T10:00:00Z","region":"EMEA"}`,
			want: &Account{AccountID: "A-1", Name: "Acme", AnnualRevenue: ptr(dec("1000.5")), EmployeeCount: ptr(int64(12)),
				Extras: map[string]any{"region": "EMEA"}},
			op: OpUpsert, version: "2024-05-01T10:00:00Z", time: may1,
		},
		{
			name:   "opportunity row",
			object: "opportunity",
			raw: `{"opportunity_id":"O-1","account_id":"A-1","name":"Deal","stage":"Closed Won","amount":"99999999999999999999999999999.999999999",
				"currency":"chf","close_date":"2024-05-01","owner_id":"","probability":"35.5","updated_at":"2024-05-01 10:00:00"}`,
			want: &Opportunity{OpportunityID: "O-1", AccountID: ptr("A-1"), Name: "Deal", Stage: ptr("Closed Won"),
				Amount: ptr(dec("99999999999999999999999999999.999999999")), Currency: ptr("CHF"),
				CloseDate: ptr(NewDate(2024, 5, 1)), Probability: &Percent{dec("35.5")}, Extras: map[string]any{}},
			op: OpUpsert, version: "2024-05-01 10:00:00", time: may1,
		},
		{
			name:   "row without a version is versioned by its content",
			object: "contact",
			raw:    `{"contact_id":"P-1","first_name":"Ada","email":"ada@example.com"}`,
			want:   &Contact{ContactID: "P-1", FirstName: ptr("Ada"), Email: ptr("ada@example.com"), Extras: map[string]any{}},
			op:     OpUpsert, version: contentHash(map[string]any{"contact_id": "P-1", "first_name": "Ada", "email": "ada@example.com"}),
		},
		{
			name:   "empty required id",
			object: "opportunity",
			raw:    `{"opportunity_id":"","name":"x"}`,
			errs:   []string{"opportunity_id: required field is missing"},
		},
		{
			name:   "amount too long",
			object: "opportunity",
			raw:    `{"opportunity_id":"O-2","name":"x","amount":"123456789012345678901234567890"}`,
			errs:   []string{"amount: more than 29 digits before the decimal point"},
		},
		{
			name:   "amount with ten decimals",
			object: "opportunity",
			raw:    `{"opportunity_id":"O-2","name":"x","amount":"1.0000000001"}`,
			errs:   []string{"amount: more than 9 digits after the decimal point"},
		},
		{
			name:   "thousands separator without a decimal transform",
			object: "opportunity",
			raw:    `{"opportunity_id":"O-2","name":"x","amount":"1,234.50"}`,
			errs:   []string{`amount: not a decimal number: "1,234.50"`},
		},
		{
			name:   "bad email",
			object: "contact",
			raw:    `{"contact_id":"P-2","email":"not-an-address"}`,
			errs:   []string{"email: not an email address"},
		},
	})
}

// engine compiles one object spec written in YAML.
func engine(t testing.TB, entity, fields string) *Mapping {
	t.Helper()
	src := "system: test\nobjects:\n  - object: thing\n    entity: " + entity + "\n    version_field: stamp\n    deleted_field: gone\n    fields:\n" + fields
	_, ms, err := ParseMappingFile("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("compile:\n%s\n%v", src, err)
	}
	return ms[0]
}

func TestApplyTransforms(t *testing.T) {
	opp := func(fields string) *Mapping {
		return engine(t, "opportunity", "      - {target: opportunity_id, source: id}\n      - {target: name, source: n, default: unnamed}\n"+fields)
	}
	cases := []struct {
		name  string
		m     *Mapping
		raw   map[string]any
		field string
		want  any
		err   string
	}{
		{"decimal with comma and dot", opp(`      - {target: amount, source: a, transforms: [{decimal: [",", "."]}]}` + "\n"),
			map[string]any{"id": "1", "a": "1.234,50"}, "amount", dec("1234.5"), ""},
		{"decimal with comma only", opp(`      - {target: amount, source: a, transforms: [{decimal: ","}]}` + "\n"),
			map[string]any{"id": "1", "a": "0,75"}, "amount", dec("0.75"), ""},
		{"decimal comma rejects a dot", opp(`      - {target: amount, source: a, transforms: [{decimal: ","}]}` + "\n"),
			map[string]any{"id": "1", "a": "1.5"}, "amount", nil, `amount (from a): not a decimal number with decimal separator ","`},
		{"decimal with space thousands", opp(`      - {target: amount, source: a, transforms: [{decimal: [".", " "]}]}` + "\n"),
			map[string]any{"id": "1", "a": "1 000 000.25"}, "amount", dec("1000000.25"), ""},
		{"integer with thousands", engine(t, "account", "      - {target: account_id, source: id}\n      - {target: name, source: n}\n"+
			`      - {target: employee_count, source: e, transforms: [{decimal: [",", "."]}]}`+"\n"),
			map[string]any{"id": "1", "n": "x", "e": "1.200"}, "employee_count", int64(1200), ""},
		{"integer out of range", engine(t, "account", "      - {target: account_id, source: id}\n      - {target: name, source: n}\n      - {target: employee_count, source: e}\n"),
			map[string]any{"id": "1", "n": "x", "e": "99999999999999999999"}, "employee_count", nil, "out of range"},
		{"number with an absurd exponent", opp("      - {target: amount, source: a}\n"),
			map[string]any{"id": "1", "a": "1e9000"}, "amount", nil, "out of range"},
		{"date layouts", opp(`      - {target: close_date, source: d, transforms: [trim, {date: ["02/01/2006", "2006-01-02"]}]}` + "\n"),
			map[string]any{"id": "1", "d": " 31/05/2024 "}, "close_date", NewDate(2024, 5, 31), ""},
		{"date second layout", opp(`      - {target: close_date, source: d, transforms: [{date: ["02/01/2006", "2006-01-02"]}]}` + "\n"),
			map[string]any{"id": "1", "d": "2024-05-31"}, "close_date", NewDate(2024, 5, 31), ""},
		{"date in no layout", opp(`      - {target: close_date, source: d, transforms: [{date: "02/01/2006"}]}` + "\n"),
			map[string]any{"id": "1", "d": "May 31"}, "close_date", nil, "close_date (from d): not a date or time"},
		{"date-only value is not shifted", opp("      - {target: close_date, source: d}\n"),
			map[string]any{"id": "1", "d": "2024-05-01"}, "close_date", NewDate(2024, 5, 1), ""},
		{"date keeps the source's own day", opp("      - {target: close_date, source: d}\n"),
			map[string]any{"id": "1", "d": "2024-05-01T00:30:00+02:00"}, "close_date", NewDate(2024, 5, 1), ""},
		{"date late in a western day", opp("      - {target: close_date, source: d}\n"),
			map[string]any{"id": "1", "d": "2024-05-01T23:30:00-08:00"}, "close_date", NewDate(2024, 5, 1), ""},
		{"date from epoch milliseconds", opp("      - {target: close_date, source: d}\n"),
			map[string]any{"id": "1", "d": json.Number("1714521600000")}, "close_date", NewDate(2024, 5, 1), ""},
		{"date too far out", opp("      - {target: close_date, source: d}\n"),
			map[string]any{"id": "1", "d": json.Number("999999999999999")}, "close_date", nil, "close_date (from d): year"},
		{"concat", engine(t, "contact", "      - {target: contact_id, source: id}\n      - {target: title, sources: [role, dept], transforms: [{concat: \", \"}]}\n"),
			map[string]any{"id": "1", "role": " Head ", "dept": "Sales"}, "title", "Head, Sales", ""},
		{"concat skips empty parts", engine(t, "contact", "      - {target: contact_id, source: id}\n      - {target: title, sources: [role, dept], transforms: [concat]}\n"),
			map[string]any{"id": "1", "role": "", "dept": "Sales"}, "title", "Sales", ""},
		{"concat of nothing is null", engine(t, "contact", "      - {target: contact_id, source: id}\n      - {target: title, sources: [role, dept], transforms: [concat]}\n"),
			map[string]any{"id": "1"}, "title", nil, ""},
		{"default fills a missing value", opp("      - {target: currency, source: c, default: EUR}\n"),
			map[string]any{"id": "1"}, "currency", "EUR", ""},
		{"default fills an empty value", opp("      - {target: currency, source: c, default: EUR}\n"),
			map[string]any{"id": "1", "c": " "}, "currency", "EUR", ""},
		{"default of a required field", opp(""),
			map[string]any{"id": "1", "n": ""}, "name", "unnamed", ""},
		{"constant", opp("      - {target: stage, constant: Prospecting}\n"),
			map[string]any{"id": "1", "stage": "ignored"}, "stage", "Prospecting", ""},
		{"map", opp("      - {target: stage, source: s, transforms: [lower, {map: {won: Closed Won, lost: Closed Lost}}]}\n"),
			map[string]any{"id": "1", "s": "WON"}, "stage", "Closed Won", ""},
		{"map passes unknown values", opp("      - {target: stage, source: s, transforms: [{map: {won: Closed Won}}]}\n"),
			map[string]any{"id": "1", "s": "open"}, "stage", "open", ""},
		{"map numeric codes", opp("      - {target: stage, source: s, transforms: [{map: {\"1\": Qualify, \"2\": Develop}}]}\n"),
			map[string]any{"id": "1", "s": json.Number("2")}, "stage", "Develop", ""},
		{"scale a fraction to percent", opp("      - {target: probability, source: p, transforms: [{scale: \"100\"}]}\n"),
			map[string]any{"id": "1", "p": "0.255"}, "probability", Percent{dec("25.5")}, ""},
		{"scale cents to amount", opp("      - {target: amount, source: p, transforms: [{scale: \"0.01\"}]}\n"),
			map[string]any{"id": "1", "p": json.Number("123456")}, "amount", dec("1234.56"), ""},
		{"replace and strip_prefix", opp("      - {target: owner_id, source: o, transforms: [{strip_prefix: [\"user:\", \"u-\"]}, {replace: [\"_\", \"-\"]}]}\n"),
			map[string]any{"id": "1", "o": "user:ab_cd"}, "owner_id", "ab-cd", ""},
		{"digits", engine(t, "contact", "      - {target: contact_id, source: id}\n      - {target: phone, source: p, transforms: [digits]}\n"),
			map[string]any{"id": "1", "p": "+49 (30) 123-45"}, "phone", "+493012345", ""},
		{"upper", opp("      - {target: currency, source: c, transforms: [trim, upper]}\n"),
			map[string]any{"id": "1", "c": " usd "}, "currency", "USD", ""},
		{"invalid UTF-8 is rejected", opp("      - {target: stage, source: s}\n"),
			map[string]any{"id": "1", "s": "M\xfcller"}, "stage", nil, "stage (from s): not valid UTF-8"},
		{"nested source path", opp("      - {target: owner_id, source: owner.id}\n"),
			map[string]any{"id": "1", "owner": map[string]any{"id": "u7", "name": "Ann"}}, "owner_id", "u7", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.m.Apply(tc.raw)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Apply error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got := res.Record.Value(tc.field); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%s = %#v, want %#v", tc.field, got, tc.want)
			}
		})
	}
}

func TestApplyExtrasAndDeletes(t *testing.T) {
	m := engine(t, "contact", "      - {target: contact_id, source: id}\n      - {target: email, source: contact.email}\n      - {target: title, source: contact.job.title}\n")
	raw := map[string]any{
		"id": "1", "stamp": "2024-05-01T10:00:00Z", "gone": false, "note": "hello",
		"contact": map[string]any{"email": "a@b.example", "job": map[string]any{"title": "CTO", "since": "2020"}, "tags": []any{"x"}},
	}
	res, err := m.Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"note": "hello", "contact": map[string]any{"job": map[string]any{"since": "2020"}, "tags": []any{"x"}}}
	if got := res.Record.ExtraFields(); !reflect.DeepEqual(got, want) {
		t.Fatalf("extras %#v, want %#v", got, want)
	}
	if raw["contact"].(map[string]any)["email"] != "a@b.example" {
		t.Fatal("Apply changed its input")
	}
	// Deletes: true, "true", "1", 1.
	for _, v := range []any{true, "true", "TRUE", "1", json.Number("1"), 1.0} {
		res, err := m.Apply(map[string]any{"id": "9", "gone": v, "contact": map[string]any{"email": "broken"}})
		if err != nil || res.Op != OpDelete || res.Record.Key() != "9" || res.Record.Value("email") != nil || res.Record.ExtraFields() != nil {
			t.Errorf("gone=%#v: op %s, record %+v, err %v", v, res.Op, res.Record, err)
		}
	}
	for _, v := range []any{false, "false", "0", nil, ""} {
		res, err := m.Apply(map[string]any{"id": "9", "gone": v})
		if err != nil || res.Op != OpUpsert {
			t.Errorf("gone=%#v: op %s, err %v", v, res.Op, err)
		}
	}
	if _, err := m.Apply(map[string]any{"gone": true}); err == nil || !strings.Contains(err.Error(), "contact_id (from id): required") {
		t.Errorf("delete without an id: %v", err)
	}
}

func TestCompileSpecsFromJSON(t *testing.T) {
	// Specs stored in the mappings bucket arrive as JSON, not YAML: Compile
	// must check them as strictly, and never panic on them.
	base := func(extra string) string {
		return `{"object":"o","entity":"account","fields":[{"target":"account_id","source":"id"},{"target":"name","source":"n"}` + extra + `]}`
	}
	cases := []struct{ name, spec, err string }{
		{"scale without factor", base(`,{"target":"annual_revenue","source":"r","transforms":[{"name":"scale"}]}`), "scale wants one factor"},
		{"replace with one arg", base(`,{"target":"industry","source":"i","transforms":[{"name":"replace","args":["a"]}]}`), "replace wants [old, new]"},
		{"unknown transform", base(`,{"target":"industry","source":"i","transforms":[{"name":"bogus"}]}`), `unknown transform "bogus"`},
		{"date on a string", base(`,{"target":"industry","source":"i","transforms":[{"name":"date","args":["2006"]}]}`), "date applies to date fields"},
		{"bad default", base(`,{"target":"employee_count","source":"e","default":"many"}`), `default "many"`},
		{"empty constant", base(`,{"target":"industry","constant":""}`), "constant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var o ObjectSpec
			if err := json.Unmarshal([]byte(tc.spec), &o); err != nil {
				t.Fatal(err)
			}
			_, err := Compile("test", o)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Compile = %v, want %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "line 0") {
				t.Fatalf("error %q cites line 0", err)
			}
		})
	}
	var o ObjectSpec
	_ = json.Unmarshal([]byte(base("")), &o)
	if _, err := Compile("Not A Token", o); err == nil {
		t.Fatal("Compile accepted a system that is not a token")
	}
	m, err := Compile("test", o)
	if err != nil {
		t.Fatal(err)
	}
	o.Fields[0].Source = "changed"
	if m.Spec.Fields[0].Source != "id" {
		t.Fatal("Compile kept a reference to the caller's spec")
	}
}

func TestMalformedMappingFiles(t *testing.T) {
	const head = "system: test\nobjects:\n  - object: thing\n    entity: account\n    fields:\n" // lines 1-5
	const ok = "      - {target: account_id, source: id}\n      - {target: name, source: n}\n"   // lines 6-7
	cases := []struct {
		name string
		src  string
		line int
		msg  string
	}{
		{"unknown key at the top", "system: test\nowner: me\nobjects: []\n", 2, `unknown key "owner"`},
		{"unknown key in an object", "system: test\nobjects:\n  - object: thing\n    entity: account\n    primary_key: id\n    fields: []\n", 5, `unknown key "primary_key"`},
		{"unknown key in a field", head + ok + "      - {target: industry, src: i}\n", 8, `unknown key "src"`},
		{"unknown key in a block field", head + ok + "      - target: industry\n        source: i\n        tranforms: [trim]\n", 10, `unknown key "tranforms"`},
		{"unknown bare transform", head + ok + "      - {target: industry, source: i, transforms: [trimm]}\n", 8, `unknown transform "trimm"`},
		{"unknown transform with arguments", head + ok + "      - target: industry\n        source: i\n        transforms:\n          - frobnicate: x\n", 11, `unknown transform "frobnicate"`},
		{"unknown target field", head + ok + "      - {target: revenue, source: r}\n", 8, `"revenue" is not a field of account`},
		{"required field unmapped", head + "      - {target: account_id, source: id}\n", 3, "required field name of account is not mapped"},
		{"field mapped twice", head + ok + "      - {target: industry, source: i}\n      - {target: industry, source: j}\n", 9, `"industry" is mapped twice`},
		{"bad YAML", head + ok + "      - {target: industry, source: i\n", 8, "did not find expected ',' or '}'"},
		// yaml.v3 names the line where the broken block starts.
		{"bad indentation", "system: test\nobjects:\n  - object: thing\n   entity: account\n", 3, "did not find expected '-' indicator"},
		{"mapping value in a plain scalar", "system: test\nobjects:\n  - object: a: b\n", 3, "mapping values are not allowed"},
		{"unclosed quote", "system: test\nobjects:\n  - object: \"thing\n", 3, "found unexpected end of stream"},
		{"tab indentation", "system: test\nobjects:\n\t- object: thing\n", 3, ""},
		{"non-token system", "system: Sales Force\nobjects:\n  - object: thing\n    entity: account\n    fields:\n" + ok, 1, `system "Sales Force" must be a token`},
		{"non-token system on a later line", "# header\n\nsystem: SF!\nobjects: [{object: a, entity: account, fields: [{target: account_id, source: id}, {target: name, source: n}]}]\n", 3, "must be a token"},
		{"system missing", "objects:\n  - object: thing\n", 1, "system is missing"},
		{"no objects", "system: test\nobjects: []\n", 1, "objects is missing or empty"},
		{"unknown entity", "system: test\nobjects:\n  - object: thing\n    entity: lead\n    fields: []\n", 3, `unknown entity "lead"`},
		{"source and constant", head + ok + "      - {target: industry, source: i, constant: x}\n", 8, "exactly one of source, sources or constant"},
		{"sources without concat", head + ok + "      - {target: industry, sources: [a, b]}\n", 8, "no concat"},
		{"scale without a number", head + ok + "      - {target: annual_revenue, source: r, transforms: [{scale: lots}]}\n", 8, `scale factor "lots" is not a number`},
		{"date on a number", head + ok + "      - {target: annual_revenue, source: r, transforms: [{date: \"2006\"}]}\n", 8, "date applies to date fields"},
		{"decimal with one separator twice", head + ok + "      - {target: annual_revenue, source: r, transforms: [{decimal: [\",\", \",\"]}]}\n", 8, "thousands separator"},
		{"invalid default", head + ok + "      - target: employee_count\n        source: e\n        default: \"-3\"\n", 8, "must not be negative"},
		{"key given twice", head + ok + "      - {target: industry, source: i, source: j}\n", 8, `key "source" is given twice`},
		{"object mapped twice", head + ok + "  - object: thing\n    entity: account\n    fields:\n" + ok, 8, `object "thing" is mapped twice`},
		{"fields not a list", "system: test\nobjects:\n  - object: thing\n    entity: account\n    fields: {target: name}\n", 5, "fields must be a list"},
		{"target not a string", head + ok + "      - {target: [industry], source: i}\n", 8, "target must be a string"},
		{"map value not a string", head + ok + "      - {target: industry, source: i, transforms: [{map: {a: [b]}}]}\n", 8, "a map value must be a string"},
		{"two transforms in one map", head + ok + "      - {target: industry, source: i, transforms: [{trim: x, lower: y}]}\n", 8, "a transform is one key"},
		{"two documents", head + ok + "---\nsystem: other\n", 8, "one YAML document"},
		{"empty file", "", 1, "empty mapping file"},
		{"only a comment", "# nothing here\n", 1, "empty mapping file"},
		{"a list, not a mapping", "- system: test\n", 1, "must be a mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseMappingFile("bad.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.src)
			}
			prefix := "bad.yaml:" + itoa(tc.line) + ": "
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q, want %q...%q", err, prefix, tc.msg)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestMappingFileReportsEveryBadObject(t *testing.T) {
	src := "system: test\nobjects:\n" +
		"  - object: a\n    entity: account\n    fields:\n      - {target: account_id, source: id}\n" + // 3-6: name unmapped
		"  - object: b\n    entity: contact\n    fields:\n      - {target: contact_id, source: id}\n      - {target: mail, source: m}\n" // 7-11
	_, _, err := ParseMappingFile("two.yaml", []byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "two.yaml:3: ") || !strings.HasPrefix(lines[1], "two.yaml:11: ") {
		t.Fatalf("errors %q", lines)
	}
}

func TestMappingFileYAMLRoundTrip(t *testing.T) {
	for _, sys := range []string{"filesource", "salesforce", "hubspot", "dynamics"} {
		t.Run(sys, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "config", "mappings", sys+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			mf, ms, err := ParseMappingFile(sys, b)
			if err != nil {
				t.Fatal(err)
			}
			out := marshalYAML(t, mf)
			mf2, ms2, err := ParseMappingFile(sys, out)
			if err != nil {
				t.Fatalf("re-parse:\n%s\n%v", out, err)
			}
			if out2 := marshalYAML(t, mf2); !bytes.Equal(out, out2) {
				t.Fatalf("not stable:\n%s\n%s", out, out2)
			}
			if len(ms) != len(ms2) {
				t.Fatalf("%d mappings, then %d", len(ms), len(ms2))
			}
			// And as JSON, the form the mappings bucket stores.
			for _, m := range ms {
				j, err := json.Marshal(m.Spec)
				if err != nil {
					t.Fatal(err)
				}
				var o ObjectSpec
				if err := json.Unmarshal(j, &o); err != nil {
					t.Fatal(err)
				}
				if _, err := Compile(sys, o); err != nil {
					t.Fatalf("spec from JSON: %v", err)
				}
			}
		})
	}
}

func TestLoadMappingDir(t *testing.T) {
	ms, err := LoadMappingDir(filepath.Join("..", "config", "mappings"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 15 {
		t.Fatalf("%d mappings, want 15 (5 systems × 3 entities)", len(ms))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("system: x\nobjects: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMappingDir(dir); err == nil || !strings.Contains(err.Error(), "bad.yaml:2: objects must be a list") {
		t.Fatalf("LoadMappingDir = %v", err)
	}
}

func TestSourceFields(t *testing.T) {
	m := shipped(t, "salesforce")["Contact"]
	got := m.SourceFields()
	want := []string{"AccountId", "Email", "FirstName", "Id", "IsDeleted", "LastName", "Phone", "SystemModstamp", "Title", "attributes"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SourceFields %v, want %v", got, want)
	}
}

func marshalYAML(t testing.TB, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatalf("yaml.Marshal: %v", err)
	}
	return b
}

func TestParseVersion(t *testing.T) {
	cases := []struct {
		system, object, in string
		want               time.Time
	}{
		{"salesforce", "Account", "2024-05-01T10:00:00.000+0000", may1},
		{"salesforce", "Account", "2024-05-01T12:00:00.000+0200", may1},
		{"hubspot", "deals", "2024-05-01T10:00:00.000Z", may1},
		{"hubspot", "deals", "1714557600000", may1},
		{"dynamics", "accounts", "2024-05-01T10:00:00Z", may1},
		{"filesource", "account", "2024-05-01 10:00:00", may1},
		{"filesource", "account", "2024-05-01", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		got, err := shipped(t, tc.system)[tc.object].ParseVersion(tc.in)
		if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("%s %q: %v, %v", tc.system, tc.in, got, err)
		}
	}
	m := shipped(t, "hubspot")["deals"]
	for _, bad := range []string{"", "yesterday", "999999999999999999"} {
		if _, err := m.ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
}

func TestMappingYAMLUnmarshalers(t *testing.T) {
	// yaml.Unmarshal into the spec types applies the same checks.
	var mf MappingFile
	if err := yaml.Unmarshal([]byte("system: s\nobjects:\n  - object: o\n    entity: contact\n    fields: [{target: contact_id, source: id}]\n"), &mf); err != nil {
		t.Fatal(err)
	}
	if mf.System != "s" || len(mf.Objects) != 1 || mf.Objects[0].Fields[0].Source != "id" {
		t.Fatalf("%+v", mf)
	}
	var o ObjectSpec
	if err := yaml.Unmarshal([]byte("object: o\nentity: contact\nfields: []\nextra: 1\n"), &o); err == nil || !strings.Contains(err.Error(), `line 4: unknown key "extra"`) {
		t.Fatalf("ObjectSpec: %v", err)
	}
	var fs []FieldSpec
	if err := yaml.Unmarshal([]byte("- {target: a, source: b, transforms: [{scale: x}]}\n"), &fs); err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Fatalf("FieldSpec: %v", err)
	}
	var ts []Transform
	if err := yaml.Unmarshal([]byte("[trim, {map: {a: b}}, {date: [\"2006\"]}, concat]\n"), &ts); err != nil || len(ts) != 4 || ts[1].Map["a"] != "b" || ts[2].Args[0] != "2006" {
		t.Fatalf("Transform: %+v %v", ts, err)
	}
}

func TestMappingFileAliases(t *testing.T) {
	// Anchors and aliases work...
	src := "system: t\nobjects:\n  - object: a\n    entity: account\n    fields: &f\n      - {target: account_id, source: id}\n      - {target: name, source: n}\n  - object: b\n    entity: account\n    fields: *f\n"
	if _, ms, err := ParseMappingFile("a.yaml", []byte(src)); err != nil || len(ms) != 2 {
		t.Fatalf("aliases: %d mappings, %v", len(ms), err)
	}
	// ...but cannot blow a small file up into a huge one: 100 objects of
	// 100 fields of 100 transforms each, written in a few kilobytes.
	hundred := func(s string) string { return "[" + strings.TrimSuffix(strings.Repeat(s+", ", 100), ", ") + "]" }
	bomb := "system: t\nobjects:\n  - &o\n    object: a\n    entity: account\n" +
		"    fields: [&f {target: name, source: n, transforms: " + hundred("trim") + "}, " + strings.Repeat("*f, ", 99) + "*f]\n" +
		strings.Repeat("  - *o\n", 99)
	start := time.Now()
	_, _, err := ParseMappingFile("bomb.yaml", []byte(bomb))
	if err == nil || !strings.Contains(err.Error(), "file too large") {
		t.Fatalf("YAML bomb: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("YAML bomb took %v", d)
	}
}

func TestParseEntity(t *testing.T) {
	for in, want := range map[string]Entity{"account": AccountEntity, "accounts": AccountEntity, "opportunities": OpportunityEntity, "contact": ContactEntity} {
		if got, err := ParseEntity(in); err != nil || got != want {
			t.Errorf("ParseEntity(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseEntity("lead"); err == nil {
		t.Error("ParseEntity accepted lead")
	}
	if OpportunityEntity.Plural() != "opportunities" || ContactEntity.Plural() != "contacts" || AccountEntity.KeyField() != "account_id" {
		t.Error("Plural or KeyField")
	}
}
