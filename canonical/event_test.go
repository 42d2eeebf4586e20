package canonical

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/shopspring/decimal"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/v1")

func ptr[T any](v T) *T { return &v }

func dec(s string) decimal.Decimal { return normDecimal(decimal.RequireFromString(s)) }

// goldenEvents are the events whose wire form testdata/v1 pins.
func goldenEvents() map[string]*Event {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	event := func(system, object string, op Op, rec Record, version string) *Event {
		return &Event{
			ID:             EventID("acme", system, rec.Entity(), rec.Key(), version, op),
			Tenant:         "acme",
			Op:             op,
			ConnectionID:   "conn-7f3a",
			SourceSystem:   system,
			SourceObject:   object,
			Time:           at,
			TraceID:        trace,
			MappingVersion: 3,
			Record:         rec,
		}
	}
	return map[string]*Event{
		"account": event("salesforce", "Account", OpUpsert, &Account{
			AccountID:     "001AX00000Acme01",
			Name:          "Acme Corp",
			Industry:      ptr("Technology"),
			AnnualRevenue: ptr(dec("15000000")),
			EmployeeCount: ptr(int64(250)),
			Website:       ptr("https://acme.example"),
			Extras:        map[string]any{"BillingCity": "Berlin", "Rating": "Hot", "NumberOfLocations__c": json.Number("4")},
		}, "2024-05-01T10:00:00.000+0000"),
		"opportunity": event("hubspot", "deals", OpUpsert, &Opportunity{
			OpportunityID: "9001",
			AccountID:     ptr("5001"),
			Name:          "Acme renewal <2025> & more",
			Stage:         ptr("Closed Won"),
			Amount:        ptr(dec("125000.5")),
			Currency:      ptr("EUR"),
			CloseDate:     ptr(NewDate(2024, 6, 30)),
			OwnerID:       ptr("77"),
			Probability:   &Percent{dec("20")},
			Extras:        map[string]any{"pipeline": "default", "hs_forecast_category": nil, "tags": []any{"renewal", json.Number("2025")}},
		}, "2024-05-01T10:00:00.000Z"),
		"contact": event("dynamics", "contacts", OpUpsert, &Contact{
			ContactID: "5d0f6a3e-1b2c-4d5e-8f90-a1b2c3d4e5f6",
			AccountID: ptr("9a8b7c6d-1111-2222-3333-444455556666"),
			FirstName: ptr("Jürgen"),
			LastName:  ptr("Müller"),
			Email:     ptr("juergen.mueller@contoso.example"),
			Phone:     nil,
			Title:     ptr("Head of Procurement"),
			Extras:    map[string]any{"address1_city": "München"},
		}, "2024-05-01T10:00:00Z"),
		"opportunity_deleted": event("salesforce", "Opportunity", OpDelete, &Opportunity{
			OpportunityID: "006AX00000Opp001",
		}, "2024-05-01T10:00:00.000+0000"),
	}
}

func TestGoldenWire(t *testing.T) {
	for name, ev := range goldenEvents() {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "v1", name+".json")
			got, err := json.MarshalIndent(ev, "", "  ")
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			got = append(got, '\n')
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("wire form differs from %s (a schema change adds v2/, never edits v1/)\ngot:\n%s\nwant:\n%s", path, got, want)
			}

			// Parse the golden back: the same event, and the same bytes again.
			back, err := ParseEvent(want)
			if err != nil {
				t.Fatalf("ParseEvent(golden): %v", err)
			}
			if !reflect.DeepEqual(back, ev) {
				t.Fatalf("round trip differs:\ngot  %#v\nwant %#v", back.Record, ev.Record)
			}
			compact, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, want); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(compact, buf.Bytes()) {
				t.Fatalf("re-marshalled event differs:\n%s\n%s", compact, buf.Bytes())
			}

			// The CloudEvents SDK writes and reads the same thing.
			ce, err := ev.CloudEvent()
			if err != nil {
				t.Fatalf("CloudEvent: %v", err)
			}
			sdk, err := json.Marshal(ce)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sdk, compact) {
				t.Fatalf("SDK encoding differs from MarshalJSON:\nsdk  %s\nours %s", sdk, compact)
			}
			var parsed cloudevents.Event
			if err := json.Unmarshal(want, &parsed); err != nil {
				t.Fatalf("SDK cannot read golden: %v", err)
			}
			if err := parsed.Validate(); err != nil {
				t.Fatalf("SDK says golden is not a valid CloudEvent: %v", err)
			}
			fromSDK, err := FromCloudEvent(parsed)
			if err != nil {
				t.Fatalf("FromCloudEvent: %v", err)
			}
			if !reflect.DeepEqual(fromSDK, ev) {
				t.Fatalf("FromCloudEvent differs:\ngot  %#v\nwant %#v", fromSDK, ev)
			}
		})
	}
}

// TestTraceparentExtension: the distributed-tracing extension is written
// after traceid (extensions sorted, as the SDK writes them), read back by
// every path, and absent from events that have none (the v1 goldens).
func TestTraceparentExtension(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ev := goldenEvents()["account"]
	ev.Traceparent = tp
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte(`"traceid":"4bf92f3577b34da6a3ce929d0e0e4736","traceparent":"`+tp+`"}`)) {
		t.Fatalf("wire form %s", b)
	}
	ce, err := ev.CloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	if sdk, _ := json.Marshal(ce); !bytes.Equal(sdk, b) {
		t.Fatalf("SDK encoding differs:\nsdk  %s\nours %s", sdk, b)
	}
	for name, parse := range map[string]func([]byte) (*Event, error){
		"ParseEvent": ParseEvent, "general path": parseEventSlow, "fast path": parseFast,
		"FromCloudEvent": func(b []byte) (*Event, error) {
			var ce cloudevents.Event
			if err := json.Unmarshal(b, &ce); err != nil {
				return nil, err
			}
			return FromCloudEvent(ce)
		},
	} {
		back, err := parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(back, ev) {
			t.Fatalf("%s: %#v", name, back)
		}
	}
	for name, g := range goldenEvents() {
		b, _ := os.ReadFile(filepath.Join("testdata", "v1", name+".json"))
		if bytes.Contains(b, []byte("traceparent")) || g.Traceparent != "" {
			t.Fatalf("golden %s carries a traceparent", name)
		}
	}
}

// TestGoldenAttributes checks each golden file against the envelope DESIGN.md
// specifies, reading the JSON without this package's code.
func TestGoldenAttributes(t *testing.T) {
	idRE := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for name, ev := range goldenEvents() {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "v1", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			entity := string(ev.Entity())
			op := string(ev.Op)
			want := map[string]any{
				"specversion":     "1.0",
				"id":              ev.ID,
				"source":          "/connections/conn-7f3a",
				"type":            "com.autonomos.canonical." + entity + "." + op,
				"subject":         ev.Record.Key(),
				"time":            "2024-05-01T10:00:00Z",
				"datacontenttype": "application/json",
				"tenantid":        "acme",
				"traceid":         "4bf92f3577b34da6a3ce929d0e0e4736",
				"schemaversion":   "v1",
				"sourcesystem":    ev.SourceSystem,
				"sourceobject":    ev.SourceObject,
				"mappingversion":  json.Number("3"),
			}
			for k, v := range want {
				if !reflect.DeepEqual(m[k], v) {
					t.Errorf("%s = %#v, want %#v", k, m[k], v)
				}
			}
			for k := range m {
				if _, ok := want[k]; !ok && k != "data" {
					t.Errorf("unexpected attribute %q", k)
				}
			}
			if !idRE.MatchString(ev.ID) {
				t.Errorf("id %q is not 32 hex digits", ev.ID)
			}
			data, ok := m["data"].(map[string]any)
			if !ok {
				t.Fatalf("data is %T, want an object", m["data"])
			}
			if data[ev.Entity().KeyField()] != m["subject"] {
				t.Errorf("subject %v differs from data.%s %v", m["subject"], ev.Entity().KeyField(), data[ev.Entity().KeyField()])
			}
			s, _ := SchemaOf(ev.Entity())
			for _, f := range s.Fields {
				if _, ok := data[f.Name]; !ok {
					t.Errorf("data lacks %s (every field is written, null when missing)", f.Name)
				}
			}
			if _, ok := data["extras"]; !ok {
				t.Errorf("data lacks extras")
			}
			if ev.Op == OpDelete {
				for _, f := range s.Fields {
					if f.Name != ev.Entity().KeyField() && data[f.Name] != nil {
						t.Errorf("delete carries %s = %v; only the id is set", f.Name, data[f.Name])
					}
				}
			}
			if ev.Entity() == OpportunityEntity && ev.Op == OpUpsert {
				// Amounts are decimal strings; probability a number; dates YYYY-MM-DD.
				if data["amount"] != "125000.5" || data["probability"] != json.Number("20") || data["close_date"] != "2024-06-30" {
					t.Errorf("amount %#v, probability %#v, close_date %#v", data["amount"], data["probability"], data["close_date"])
				}
			}
		})
	}
}

// fieldsOf lists the Field of every *FieldError in err.
func fieldsOf(err error) []string {
	var out []string
	for _, e := range unjoin(err) {
		var fe *FieldError
		if errors.As(e, &fe) {
			out = append(out, fe.Field)
		} else {
			out = append(out, "<not a FieldError: "+e.Error()+">")
		}
	}
	return out
}

func TestParseEventRejects(t *testing.T) {
	golden := func(name string) map[string]any {
		t.Helper()
		b, err := json.Marshal(goldenEvents()[name])
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	data := func(m map[string]any) map[string]any { return m["data"].(map[string]any) }
	cases := []struct {
		name   string
		raw    string                 // used when set
		base   string                 // golden event to start from
		mutate func(m map[string]any) // changes to it
		field  string                 // the field the error must name
		reason string                 // and a word of its reason
	}{
		{name: "account type with opportunity data", base: "opportunity", field: "data", reason: "opportunity_id",
			mutate: func(m map[string]any) {
				m["type"] = "com.autonomos.canonical.account.upserted"
				m["subject"] = data(m)["opportunity_id"]
			}},
		{name: "contact type with account data", base: "account", field: "data", reason: "industry",
			mutate: func(m map[string]any) { m["type"] = "com.autonomos.canonical.contact.upserted" }},
		{name: "unknown entity", base: "account", field: "type", reason: "lead",
			mutate: func(m map[string]any) { m["type"] = "com.autonomos.canonical.lead.upserted" }},
		{name: "plural entity", base: "account", field: "type", reason: "accounts",
			mutate: func(m map[string]any) { m["type"] = "com.autonomos.canonical.accounts.upserted" }},
		{name: "unknown operation", base: "account", field: "type", reason: "merged",
			mutate: func(m map[string]any) { m["type"] = "com.autonomos.canonical.account.merged" }},
		{name: "foreign type", base: "account", field: "type", reason: "canonical",
			mutate: func(m map[string]any) { m["type"] = "com.example.account.upserted" }},
		{name: "missing required name", base: "account", field: "name", reason: "required",
			mutate: func(m map[string]any) { delete(data(m), "name") }},
		{name: "null required name", base: "opportunity", field: "name", reason: "required",
			mutate: func(m map[string]any) { data(m)["name"] = nil }},
		{name: "bad currency", base: "opportunity", field: "currency", reason: "ISO 4217",
			mutate: func(m map[string]any) { data(m)["currency"] = "EURO" }},
		{name: "lower-case currency", base: "opportunity", field: "currency", reason: "ISO 4217",
			mutate: func(m map[string]any) { data(m)["currency"] = "eur" }},
		{name: "probability 101", base: "opportunity", field: "probability", reason: "between 0 and 100",
			mutate: func(m map[string]any) { data(m)["probability"] = 101 }},
		{name: "probability negative", base: "opportunity", field: "probability", reason: "between 0 and 100",
			mutate: func(m map[string]any) { data(m)["probability"] = -0.5 }},
		{name: "probability not a number", base: "opportunity", field: "probability", reason: "not a number",
			mutate: func(m map[string]any) { data(m)["probability"] = "high" }},
		{name: "amount with 10 decimal places", base: "opportunity", field: "amount", reason: "after the decimal point",
			mutate: func(m map[string]any) { data(m)["amount"] = "1.0123456789" }},
		{name: "amount with 30 integer digits", base: "opportunity", field: "amount", reason: "before the decimal point",
			mutate: func(m map[string]any) { data(m)["amount"] = "1" + strings.Repeat("0", 29) }},
		{name: "amount with a huge exponent", base: "opportunity", field: "amount", reason: "exponent",
			mutate: func(m map[string]any) { data(m)["amount"] = "1e2000000000" }},
		{name: "amount with a tiny exponent", base: "opportunity", field: "amount", reason: "exponent",
			mutate: func(m map[string]any) { data(m)["amount"] = "1e-2000000000" }},
		{name: "amount with a large exponent", base: "opportunity", field: "amount", reason: "before the decimal point",
			mutate: func(m map[string]any) { data(m)["amount"] = "1e9999" }},
		{name: "delete with an amount of 9999 decimals", base: "opportunity_deleted", field: "amount", reason: "after the decimal point",
			mutate: func(m map[string]any) { data(m)["amount"] = "1e-9999" }},
		{name: "amount not a number", base: "opportunity", field: "amount", reason: "decimal",
			mutate: func(m map[string]any) { data(m)["amount"] = "lots" }},
		{name: "amount a boolean", base: "opportunity", field: "amount",
			mutate: func(m map[string]any) { data(m)["amount"] = true }},
		{name: "bad close date", base: "opportunity", field: "close_date", reason: "YYYY-MM-DD",
			mutate: func(m map[string]any) { data(m)["close_date"] = "2024-13-01" }},
		{name: "close date with time", base: "opportunity", field: "close_date", reason: "YYYY-MM-DD",
			mutate: func(m map[string]any) { data(m)["close_date"] = "2024-06-30T00:00:00Z" }},
		{name: "negative employees", base: "account", field: "employee_count", reason: "negative",
			mutate: func(m map[string]any) { data(m)["employee_count"] = -5 }},
		{name: "fractional employees", base: "account", field: "employee_count",
			mutate: func(m map[string]any) { data(m)["employee_count"] = 2.5 }},
		{name: "bad email", base: "contact", field: "email", reason: "email",
			mutate: func(m map[string]any) { data(m)["email"] = "Jürgen <j@x.example>" }},
		{name: "extras not an object", base: "contact", field: "extras",
			mutate: func(m map[string]any) { data(m)["extras"] = "x" }},
		{name: "subject differs from id", base: "account", field: "subject", reason: "differs",
			mutate: func(m map[string]any) { m["subject"] = "001OTHER" }},
		{name: "subject missing", base: "account", field: "subject",
			mutate: func(m map[string]any) { delete(m, "subject") }},
		{name: "id missing", base: "account", field: "id",
			mutate: func(m map[string]any) { delete(m, "id") }},
		{name: "source not a connection", base: "account", field: "source", reason: "/connections/",
			mutate: func(m map[string]any) { m["source"] = "/jobs/42" }},
		{name: "source with a bad connection id", base: "account", field: "source",
			mutate: func(m map[string]any) { m["source"] = "/connections/a b" }},
		{name: "time missing", base: "account", field: "time",
			mutate: func(m map[string]any) { delete(m, "time") }},
		{name: "time not RFC 3339", base: "account", field: "time",
			mutate: func(m map[string]any) { m["time"] = "May 1 2024" }},
		{name: "tenant not a token", base: "account", field: "tenantid",
			mutate: func(m map[string]any) { m["tenantid"] = "Acme Inc" }},
		{name: "tenant missing", base: "account", field: "tenantid",
			mutate: func(m map[string]any) { delete(m, "tenantid") }},
		{name: "source system not a token", base: "account", field: "sourcesystem",
			mutate: func(m map[string]any) { m["sourcesystem"] = "Sales Force" }},
		{name: "schema version 2", base: "account", field: "schemaversion",
			mutate: func(m map[string]any) { m["schemaversion"] = "v2" }},
		{name: "mapping version not a number", base: "account", field: "mappingversion",
			mutate: func(m map[string]any) { m["mappingversion"] = "three" }},
		{name: "mapping version negative", base: "account", field: "mappingversion",
			mutate: func(m map[string]any) { m["mappingversion"] = -1 }},
		{name: "mapping version fractional", base: "account", field: "mappingversion",
			mutate: func(m map[string]any) { m["mappingversion"] = 3.5 }},
		{name: "tenant a number", base: "account", field: "tenantid", reason: "string",
			mutate: func(m map[string]any) { m["tenantid"] = 7 }},
		{name: "data content type", base: "account", field: "datacontenttype",
			mutate: func(m map[string]any) { m["datacontenttype"] = "text/plain" }},
		{name: "data missing", base: "account", field: "data",
			mutate: func(m map[string]any) { delete(m, "data") }},
		{name: "data null", base: "account", field: "data",
			mutate: func(m map[string]any) { m["data"] = nil }},
		{name: "data an array", base: "account", field: "data",
			mutate: func(m map[string]any) { m["data"] = []any{1} }},
		{name: "data base64", base: "account", field: "data_base64",
			mutate: func(m map[string]any) { delete(m, "data"); m["data_base64"] = "e30=" }},
		{name: "spec version 0.3", base: "account", field: "specversion",
			mutate: func(m map[string]any) { m["specversion"] = "0.3" }},
		{name: "delete without id", base: "opportunity_deleted", field: "opportunity_id",
			mutate: func(m map[string]any) { data(m)["opportunity_id"] = ""; m["subject"] = "" }},
		{name: "delete with a bad amount", base: "opportunity_deleted", field: "amount",
			mutate: func(m map[string]any) { data(m)["amount"] = "1e40" }},
		{name: "not a CloudEvent", raw: `{"hello":"world"}`, field: "specversion"},
		{name: "a JSON array", raw: `[1,2,3]`, field: "specversion"},
		{name: "a JSON string", raw: `"event"`, field: "specversion"},
		{name: "JSON null", raw: `null`, field: "specversion"},
		{name: "not JSON", raw: `specversion: 1.0`, field: "specversion"},
		{name: "empty", raw: ``, field: "specversion"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.raw)
			if tc.base != "" {
				m := golden(tc.base)
				tc.mutate(m)
				var err error
				if in, err = json.Marshal(m); err != nil {
					t.Fatal(err)
				}
			}
			ev, err := ParseEvent(in)
			if err == nil {
				t.Fatalf("ParseEvent accepted %s: %+v", in, ev)
			}
			fields := fieldsOf(err)
			found := false
			for _, f := range fields {
				found = found || f == tc.field
			}
			if !found {
				t.Fatalf("error names %v, want %s: %v", fields, tc.field, err)
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error %q should name %q and say %q", err, tc.field, tc.reason)
			}
		})
	}
}

func TestParseEventAccepts(t *testing.T) {
	ev := goldenEvents()["opportunity"]
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	data := m["data"].(map[string]any)
	cases := []struct {
		name   string
		mutate func()
		check  func(t *testing.T, e *Event)
	}{
		{"amount as a JSON number", func() { data["amount"] = 125000.50 }, func(t *testing.T, e *Event) {
			if got := e.Record.Value("amount").(decimal.Decimal); got.String() != "125000.5" {
				t.Errorf("amount %s", got)
			}
		}},
		{"amount with trailing zeros is normalised", func() { data["amount"] = "125000.500000" }, func(t *testing.T, e *Event) {
			if got := e.Record.Value("amount").(decimal.Decimal); got.Exponent() != -1 {
				t.Errorf("amount %s exponent %d, want -1", got, got.Exponent())
			}
		}},
		{"zero amount with a huge exponent is plain zero", func() { data["amount"] = "0e9999" }, func(t *testing.T, e *Event) {
			if got := e.Record.Value("amount").(decimal.Decimal); got.Exponent() != 0 || !got.IsZero() {
				t.Errorf("amount %s exponent %d", got, got.Exponent())
			}
		}},
		{"zero amount with a tiny exponent is plain zero", func() { data["amount"] = "0e-9999" }, func(t *testing.T, e *Event) {
			if got := e.Record.Value("amount").(decimal.Decimal); got.Exponent() != 0 || !got.IsZero() {
				t.Errorf("amount %s exponent %d", got, got.Exponent())
			}
		}},
		{"probability as a string", func() { data["probability"] = "33.3333" }, func(t *testing.T, e *Event) {
			if got := e.Record.Value("probability").(Percent); got.String() != "33.3333" {
				t.Errorf("probability %s", got)
			}
		}},
		{"time with an offset becomes UTC", func() { m["time"] = "2024-05-01T12:00:00.5+02:00" }, func(t *testing.T, e *Event) {
			if want := time.Date(2024, 5, 1, 10, 0, 0, 5e8, time.UTC); !e.Time.Equal(want) || e.Time.Location() != time.UTC {
				t.Errorf("time %v, want %v", e.Time, want)
			}
		}},
		{"mapping version as a string", func() { m["mappingversion"] = "12" }, func(t *testing.T, e *Event) {
			if e.MappingVersion != 12 {
				t.Errorf("mapping version %d", e.MappingVersion)
			}
		}},
		{"content type with charset", func() { m["datacontenttype"] = "application/json; charset=utf-8" }, nil},
		{"no content type", func() { delete(m, "datacontenttype") }, nil},
		{"no trace id or source object", func() { delete(m, "traceid"); delete(m, "sourceobject") }, nil},
		{"unknown extension is ignored", func() { m["partitionkey"] = "p1" }, nil},
		{"traceparent extension is read", func() { m["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }, func(t *testing.T, e *Event) {
			if e.Traceparent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
				t.Errorf("traceparent %q", e.Traceparent)
			}
		}},
		{"a traceparent that is not one is carried, not judged", func() { m["traceparent"] = "junk" }, func(t *testing.T, e *Event) {
			if e.Traceparent != "junk" {
				t.Errorf("traceparent %q", e.Traceparent)
			}
		}},
		{"tracestate is ignored", func() { m["tracestate"] = "vendor=1" }, nil},
		{"extras null", func() { data["extras"] = nil }, nil},
		{"optional fields absent", func() {
			for _, k := range []string{"account_id", "stage", "amount", "currency", "close_date", "owner_id", "probability", "extras"} {
				delete(data, k)
			}
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			orig, _ := json.Marshal(m)
			defer func() { _ = json.Unmarshal(orig, &m); data = m["data"].(map[string]any) }()
			tc.mutate()
			in, _ := json.Marshal(m)
			e, err := ParseEvent(in)
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			if tc.check != nil {
				tc.check(t, e)
			}
			// Whatever was accepted re-marshals to something that parses
			// to the same event.
			out, err := json.Marshal(e)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			e2, err := ParseEvent(out)
			if err != nil {
				t.Fatalf("re-parse: %v", err)
			}
			out2, _ := json.Marshal(e2)
			if !bytes.Equal(out, out2) {
				t.Fatalf("not stable:\n%s\n%s", out, out2)
			}
		})
	}
}

func TestEventValidate(t *testing.T) {
	good := func() *Event { return goldenEvents()["account"] }
	cases := []struct {
		name   string
		mutate func(e *Event)
		field  string
	}{
		{"nil record", func(e *Event) { e.Record = nil }, "data"},
		{"typed nil record", func(e *Event) { e.Record = (*Account)(nil) }, "data"},
		{"zero time", func(e *Event) { e.Time = time.Time{} }, "time"},
		{"year 10000", func(e *Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "time"},
		{"mapping version too big", func(e *Event) { e.MappingVersion = 1 << 40 }, "mappingversion"},
		{"bad op", func(e *Event) { e.Op = "created" }, "type"},
		{"connection id with a slash", func(e *Event) { e.ConnectionID = "a/b" }, "source"},
		{"no id", func(e *Event) { e.ID = "" }, "id"},
		{"invalid UTF-8 name", func(e *Event) { e.Record.(*Account).Name = "Acme \xff" }, "name"},
		{"close date year 0", func(e *Event) {
			e.Record = &Opportunity{OpportunityID: "1", Name: "x", CloseDate: &Date{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}}
		}, "close_date"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := good()
			tc.mutate(e)
			err := e.Validate()
			if err == nil || !strings.Contains(strings.Join(fieldsOf(err), ","), tc.field) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.field)
			}
			if _, err := json.Marshal(e); err == nil {
				t.Fatal("MarshalJSON accepted an invalid event")
			}
		})
	}
	// Neither panics on a nil record.
	e := &Event{}
	if e.Entity() != "" || e.Type() != TypePrefix+"." {
		t.Errorf("Entity %q Type %q", e.Entity(), e.Type())
	}
	if _, err := e.CloudEvent(); err == nil {
		t.Error("CloudEvent of an event without a record succeeded")
	}
}

func TestEventUnmarshalJSON(t *testing.T) {
	want := goldenEvents()["contact"]
	b, err := json.Marshal(want) // a value Event marshals like a pointer
	if err != nil {
		t.Fatal(err)
	}
	vb, err := json.Marshal(*want)
	if err != nil || !bytes.Equal(b, vb) {
		t.Fatalf("value and pointer encodings differ: %v\n%s\n%s", err, b, vb)
	}
	var got Event
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("got %+v", got)
	}
	if err := json.Unmarshal([]byte(`{"specversion":"1.0"}`), &got); err == nil {
		t.Fatal("Unmarshal accepted a bare envelope")
	}
}

func TestEventID(t *testing.T) {
	base := []string{"acme", "salesforce", "account", "001AX", "2024-05-01T10:00:00.000+0000", "upserted"}
	id := func(p []string) string { return EventID(p[0], p[1], Entity(p[2]), p[3], p[4], Op(p[5])) }
	want := id(base)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(want) {
		t.Fatalf("id %q is not 32 hex digits", want)
	}
	if again := id(slices.Clone(base)); again != want {
		t.Fatalf("same inputs, different ids: %s %s", want, again)
	}
	seen := map[string]string{want: "base"}
	for i, alt := range []string{"acme2", "hubspot", "opportunity", "001AY", "2024-05-01T10:00:01.000+0000", "deleted"} {
		p := slices.Clone(base)
		p[i] = alt
		got := id(p)
		if prev, dup := seen[got]; dup {
			t.Errorf("changing input %d to %q gives the id of %s", i, alt, prev)
		}
		seen[got] = fmt.Sprintf("input %d=%q", i, alt)
	}
	// Inputs that only differ in where one ends and the next starts.
	pairs := [][2][]string{
		{{"a", "b", "account", "x\x00y", "v", "upserted"}, {"a", "b", "account", "x", "y\x00v", "upserted"}},
		{{"a", "b", "account", "xy", "", "upserted"}, {"a", "b", "account", "x", "y", "upserted"}},
		{{"ab", "", "account", "x", "v", "upserted"}, {"a", "b", "account", "x", "v", "upserted"}},
	}
	for _, p := range pairs {
		if id(p[0]) == id(p[1]) {
			t.Errorf("%q and %q share an id", p[0], p[1])
		}
	}
	// The op matters: the delete of a version is not its upsert.
	if EventID("t", "s", AccountEntity, "1", "v", OpUpsert) == EventID("t", "s", AccountEntity, "1", "v", OpDelete) {
		t.Error("op does not change the id")
	}
}
