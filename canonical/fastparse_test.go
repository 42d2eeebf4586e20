package canonical

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// checkFastAgrees fails unless the fast path decides b as the general path
// does (or hands it over).
func checkFastAgrees(t *testing.T, b []byte) {
	t.Helper()
	checkScanAttributes(t, b)
	fast, ferr := parseFast(b)
	if errors.Is(ferr, errSlowPath) {
		return
	}
	slow, serr := parseEventSlow(b)
	if (ferr == nil) != (serr == nil) || (ferr != nil && ferr.Error() != serr.Error()) {
		t.Fatalf("fast path error %v, general path error %v\n%s", ferr, serr, b)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast path event differs:\n%#v\n%#v\n%s", fast, slow, b)
	}
}

// checkScanAttributes fails unless ScanAttributes accepts only JSON, and
// agrees with ParseEvent on every event ParseEvent accepts in one pass.
func checkScanAttributes(t *testing.T, b []byte) {
	t.Helper()
	a, ok := ScanAttributes(b)
	if ok && (!json.Valid(b) || !json.Valid(a.Data) || a.Data[0] != '{') {
		t.Fatalf("ScanAttributes accepted bad JSON (data %q)\n%s", a.Data, b)
	}
	ev, err := parseFast(b)
	if err != nil {
		return
	}
	if !ok {
		t.Fatalf("ScanAttributes refused an event the fast parse reads:\n%s", b)
	}
	want := Attributes{ID: ev.ID, Source: "/connections/" + ev.ConnectionID, Type: TypePrefix + string(ev.Entity()) + "." + string(ev.Op),
		Subject: ev.Record.Key(), Time: a.Time, Tenant: ev.Tenant, TraceID: ev.TraceID, SourceSystem: ev.SourceSystem,
		SourceObject: ev.SourceObject, MappingVersion: ev.MappingVersion, Data: a.Data}
	if tm, err := time.Parse(time.RFC3339Nano, a.Time); err != nil || !tm.Equal(ev.Time) {
		t.Fatalf("ScanAttributes time %q, event time %v", a.Time, ev.Time)
	}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("ScanAttributes = %+v\nwant %+v", a, want)
	}
}

// benchEvent is an opportunity of about 1 KB on the wire.
func benchEvent(t testing.TB) []byte {
	o := &Opportunity{OpportunityID: "006Hs0000012345678", AccountID: ptr("001Hs00000001234"), Name: "Renewal — enterprise plan, 3 years",
		Stage: ptr("Negotiation/Review"), Amount: ptr(dec("125000.50")), Currency: ptr("USD"), CloseDate: ptr(mustDate("2024-09-30")),
		OwnerID: ptr("005Hs000001AbCdEF"), Probability: &Percent{dec("65.5")},
		Extras: map[string]any{
			"Description":              "Multi-year renewal negotiated with procurement; includes premium support and a 5% uplift.",
			"LeadSource":               "Partner Referral",
			"NextStep":                 "Send the revised order form to legal for review",
			"ForecastCategory":         "Commit",
			"Type":                     "Existing Customer - Upgrade",
			"CampaignId":               "701Hs000000XyZaBCD",
			"IsPrivate":                false,
			"TotalOpportunityQuantity": json.Number("12"),
			"ExpectedRevenue":          json.Number("6881.25"),
			"LastActivityDate":         "2024-08-14",
			"Pricebook2Id":             "01sHs000000AAAAAA",
			"custom_fields":            map[string]any{"region": "EMEA", "segment": "Enterprise", "score": json.Number("87"), "tags": []any{"a", nil, true}},
		}}
	ev := Event{ID: EventID("acme", "salesforce", OpportunityEntity, o.OpportunityID, "v", OpUpsert), Tenant: "acme", Op: OpUpsert,
		ConnectionID: "conn-bench", SourceSystem: "salesforce", SourceObject: "Opportunity", Time: time.Date(2024, 9, 1, 12, 0, 0, 0, time.UTC),
		TraceID: "0123456789abcdef0123456789abcdef", MappingVersion: 1, Record: o}
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFastAgrees(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "v1", "*.json"))
	var inputs [][]byte
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, b)
	}
	b := benchEvent(t)
	inputs = append(inputs, b)
	s := string(b)
	for _, r := range [][2]string{
		{`"id":`, `"ID":`},                             // a case variant is an unknown extension
		{`"tenantid":"acme"`, `"tenantid":"ACME"`},     // invalid tenant
		{`"tenantid":"acme"`, `"tenantid":null`},       // null attribute
		{`"tenantid":"acme"`, `"tenantid":7`},          // wrong type
		{`"name":"Renewal`, `"name":"Ren\u00e9wal`},    // escape
		{`"name":"Renewal`, `"Name":"Renewal`},         // key not of the entity
		{`"amount":"125000.5"`, `"amount":125000.5`},   // number form
		{`"amount":"125000.5"`, `"amount":"12x"`},      // bad decimal
		{`"amount":"125000.5"`, `"amount":null`},       // null
		{`"probability":65.5`, `"probability":"65.5"`}, // string form
		{`"probability":65.5`, `"probability":165.5`},  // out of range
		{`"close_date":"2024-09-30"`, `"close_date":"2024-13-30"`},
		{`"currency":"USD"`, `"currency":"usd"`},
		{`"mappingversion":1`, `"mappingversion":"1"`},
		{`"mappingversion":1`, `"mappingversion":-1`},
		{`"mappingversion":1`, `"mappingversion":1.5`},
		{`"specversion":"1.0"`, `"specversion":"0.3"`},
		{`"subject":"006Hs0000012345678"`, `"subject":"other"`},
		{`"type":"com.autonomos.canonical.opportunity.upserted"`, `"type":"com.autonomos.canonical.account.upserted"`},
		{`"datacontenttype":"application/json"`, `"datacontenttype":"application/json; charset=utf-8"`},
		{`"datacontenttype":"application/json"`, `"datacontenttype":"text/plain"`},
		{`"time":"2024-09-01T12:00:00Z"`, `"time":"2024-09-01T12:00:00+02:00"`},
		{`"time":"2024-09-01T12:00:00Z"`, `"time":""`},
		{`"extras":{`, `"extras":{"dup":1,"dup":2,`},
		{`"extras":{`, `"extras":{"deep":[[[{"x":[]}]]],"e":1e5,"neg":-0.5,`},
		{`{"specversion"`, ` {"x-ext":{"a":[1,2]},"specversion"`},
		{`"sourceobject":"Opportunity"`, `"sourceobject":"Opportunity","sourceobject":"x"`},
		{`"traceid":"`, `"traceparent":"00-0123456789abcdef0123456789abcdef-00f067aa0ba902b7-01","traceid":"`},
		{`"traceid":"`, `"traceparent":"00-0123456789abcdef0123456789abcdef-00f067aa0ba902b7-01","traceparent":"x","traceid":"`},
		{`"traceid":"`, `"traceparent":null,"traceid":"`},
		{`"traceid":"`, `"traceparent":7,"traceid":"`},
		{`"traceid":"`, `"traceparent":"not a traceparent","traceid":"`},
		{`"traceid":"`, `"tracestate":"vendor=1","traceid":"`},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("the bench event has no %s", r[0])
		}
		inputs = append(inputs, []byte(strings.Replace(s, r[0], r[1], 1)))
	}
	inputs = append(inputs, []byte(s+"x"), []byte(s[:len(s)-1]), []byte(`null`), []byte(`[]`), []byte(`{}`))
	fastOK := 0
	for _, in := range inputs {
		checkFastAgrees(t, in)
		if _, err := parseFast(in); !errors.Is(err, errSlowPath) {
			fastOK++
		}
	}
	if _, err := parseFast(b); err != nil {
		t.Fatalf("the bench event is not on the fast path: %v", err)
	}
	for _, p := range files {
		b, _ := os.ReadFile(p)
		if _, err := parseFast(b); err != nil {
			t.Errorf("%s is not on the fast path: %v", p, err)
		}
	}
	t.Logf("%d of %d inputs decided on the fast path", fastOK, len(inputs))
}

func FuzzParseFast(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "v1", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(benchEvent(f))
	f.Fuzz(func(t *testing.T, b []byte) { checkFastAgrees(t, b) })
}

func BenchmarkParseEvent(b *testing.B) {
	in := benchEvent(b)
	for _, c := range []struct {
		name  string
		parse func([]byte) (*Event, error)
	}{{"fast", ParseEvent}, {"general", parseEventSlow}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.parse(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func mustDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}
