package canonical

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParseViewQuery(t *testing.T) {
	cases := []struct {
		name   string
		entity Entity
		query  string
		want   ViewQuery // Tenant and Entity filled in by the test
		field  string    // when set, the error must name this parameter
	}{
		{name: "defaults", entity: AccountEntity, query: "", want: ViewQuery{Limit: DefaultViewLimit}},
		{name: "limit 1", entity: AccountEntity, query: "limit=1", want: ViewQuery{Limit: 1}},
		{name: "limit max", entity: AccountEntity, query: "limit=1000", want: ViewQuery{Limit: MaxViewLimit}},
		{name: "limit 0", entity: AccountEntity, query: "limit=0", field: "limit"},
		{name: "limit above max", entity: AccountEntity, query: "limit=1001", field: "limit"},
		{name: "limit negative", entity: AccountEntity, query: "limit=-5", field: "limit"},
		{name: "limit not a number", entity: AccountEntity, query: "limit=ten", field: "limit"},
		{name: "limit empty", entity: AccountEntity, query: "limit=", field: "limit"},
		{name: "limit huge", entity: AccountEntity, query: "limit=99999999999999999999", field: "limit"},
		{name: "filter by stage", entity: OpportunityEntity, query: "stage=Closed%20Won",
			want: ViewQuery{Limit: 100, Filters: []Filter{{"stage", "Closed Won"}}}},
		{name: "filters sorted by column", entity: OpportunityEntity, query: "stage=Won&opportunity_id=X&account_id=A",
			want: ViewQuery{Limit: 100, Filters: []Filter{{"account_id", "A"}, {"opportunity_id", "X"}, {"stage", "Won"}}}},
		{name: "meta columns", entity: ContactEntity, query: "source_system=hubspot&event_id=abc",
			want: ViewQuery{Limit: 100, Filters: []Filter{{"event_id", "abc"}, {"source_system", "hubspot"}}}},
		{name: "amount in canonical form", entity: OpportunityEntity, query: "amount=1.50e3",
			want: ViewQuery{Limit: 100, Filters: []Filter{{"amount", "1500"}}}},
		{name: "integer in canonical form", entity: AccountEntity, query: "employee_count=007",
			want: ViewQuery{Limit: 100, Filters: []Filter{{"employee_count", "7"}}}},
		{name: "date", entity: OpportunityEntity, query: "close_date=2024-06-30",
			want: ViewQuery{Limit: 100, Filters: []Filter{{"close_date", "2024-06-30"}}}},
		{name: "unknown column", entity: AccountEntity, query: "colour=red", field: "colour"},
		{name: "column of another entity", entity: AccountEntity, query: "stage=Won", field: "stage"},
		{name: "tenant is never a filter", entity: AccountEntity, query: "tenant_id=other", field: "tenant_id"},
		{name: "extras is not a filter", entity: AccountEntity, query: "extras=x", field: "extras"},
		{name: "repeated filter", entity: OpportunityEntity, query: "stage=Won&stage=Lost", field: "stage"},
		{name: "repeated limit", entity: OpportunityEntity, query: "limit=5&limit=6", field: "limit"},
		{name: "repeated cursor", entity: OpportunityEntity, query: "cursor=" + EncodeCursor("a") + "&cursor=" + EncodeCursor("b"), field: "cursor"},
		{name: "amount not a number", entity: OpportunityEntity, query: "amount=lots", field: "amount"},
		{name: "amount too precise", entity: OpportunityEntity, query: "amount=0.0000000001", field: "amount"},
		{name: "probability above 100", entity: OpportunityEntity, query: "probability=101", field: "probability"},
		{name: "date not a date", entity: OpportunityEntity, query: "close_date=tomorrow", field: "close_date"},
		{name: "employees negative", entity: AccountEntity, query: "employee_count=-1", field: "employee_count"},
		{name: "currency not ISO", entity: OpportunityEntity, query: "currency=usd", field: "currency"},
		{name: "filter too long", entity: AccountEntity, query: "name=" + strings.Repeat("x", 4097), field: "name"},
		{name: "bad cursor", entity: AccountEntity, query: "cursor=not-a-cursor!", field: "cursor"},
		{name: "cursor of another shape", entity: AccountEntity, query: "cursor=" + "eDE6YWJj", field: "cursor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseViewQuery("acme", tc.entity, q)
			if tc.field != "" {
				fields := fieldsOf(err)
				if err == nil || len(fields) != 1 || fields[0] != tc.field || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("error %v (fields %v), want one naming %s", err, fields, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseViewQuery: %v", err)
			}
			tc.want.Tenant, tc.want.Entity = "acme", tc.entity
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			again, err := ParseViewQuery("acme", tc.entity, got.Values())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("Values round trip: %+v, %v", again, err)
			}
		})
	}
	if _, err := ParseViewQuery("Not a tenant", AccountEntity, nil); err == nil {
		t.Error("accepted an invalid tenant")
	}
	if _, err := ParseViewQuery("acme", "accounts", nil); err == nil {
		t.Error("accepted a plural entity")
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, key := range []string{"", "001AX00000Acme01", "a/b?c=d&e", "Müller", "k1:nested", "\x00\xff", strings.Repeat("z", 1000)} {
		c := EncodeCursor(key)
		if strings.ContainsAny(c, "+/=") {
			t.Errorf("cursor %q is not URL-safe", c)
		}
		got, err := DecodeCursor(c)
		if err != nil || got != key {
			t.Errorf("DecodeCursor(EncodeCursor(%q)) = %q, %v", key, got, err)
		}
		vq, err := ParseViewQuery("acme", AccountEntity, url.Values{"cursor": {c}})
		if err != nil || vq.After != key {
			t.Errorf("cursor for %q: After %q, %v", key, vq.After, err)
		}
	}
	// Another encoding of the same bytes is not a cursor this server issued.
	c := EncodeCursor("a") // azE6YQ
	for _, bad := range []string{c[:len(c)-1] + "R", c + "\n", "azE6YQ==", ""} {
		if _, err := DecodeCursor(bad); err == nil {
			t.Errorf("DecodeCursor(%q) accepted", bad)
		}
	}
}
