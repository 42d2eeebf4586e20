package subscriber_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/subscriber"
	"github.com/autonomos/autonomos/subscriber/subscribertest"
)

// tenantEvents is 25 opportunities of acme and 10 of globex, with varied
// stages, amounts, dates and sources.
func tenantEvents(t *testing.T) []*canonical.Event {
	var evs []*canonical.Event
	stages := []string{"Prospecting", "Closed Won", "Negotiation"}
	for i := range 25 {
		o := opp(fmt.Sprintf("O-%03d", i), fmt.Sprintf("Deal %d", i))
		o.Stage = ptr(stages[i%3])
		o.Amount = dec(fmt.Sprintf("%d.50", 100+i%2))
		o.AccountID = ptr(fmt.Sprintf("A-%d", i%4))
		if i%5 == 0 {
			o.CloseDate = date("2024-01-31")
		}
		evs = append(evs, upsert(t, "acme", o, t0, 1))
	}
	for i := range 10 {
		o := opp(fmt.Sprintf("O-%03d", i), fmt.Sprintf("Globex deal %d", i))
		o.Stage = ptr("Closed Won")
		o.Amount = dec("100.5")
		evs = append(evs, upsert(t, "globex", o, t0, 1))
	}
	return evs
}

func TestQueryTenantFiltersAndPaging(t *testing.T) {
	for _, s := range bothStores(t) {
		t.Run(s.Name(), func(t *testing.T) {
			apply(t, s, tenantEvents(t)...)
			if n := count(t, s, "acme", canonical.OpportunityEntity); n != 25 {
				t.Fatalf("acme count = %d, want 25", n)
			}
			if n := count(t, s, "globex", canonical.OpportunityEntity); n != 10 {
				t.Fatalf("globex count = %d, want 10", n)
			}
			if n := count(t, s, "nobody", canonical.OpportunityEntity); n != 0 {
				t.Fatalf("other tenant count = %d, want 0", n)
			}

			tests := []struct {
				name    string
				tenant  string
				filters []canonical.Filter
				want    int
			}{
				{"all of acme", "acme", nil, 25},
				{"all of globex", "globex", nil, 10},
				{"another tenant sees nothing", "initech", nil, 0},
				{"stage", "acme", []canonical.Filter{{Column: "stage", Value: "Closed Won"}}, 8},
				{"amount with other trailing zeros", "acme", []canonical.Filter{{Column: "amount", Value: "100.50"}}, 13},
				{"amount canonical", "acme", []canonical.Filter{{Column: "amount", Value: "101.5"}}, 12},
				{"amount not a number", "acme", []canonical.Filter{{Column: "amount", Value: "lots"}}, 0},
				{"close date", "acme", []canonical.Filter{{Column: "close_date", Value: "2024-01-31"}}, 5},
				{"close date missing", "acme", []canonical.Filter{{Column: "close_date", Value: ""}}, 20},
				{"close date not a date", "acme", []canonical.Filter{{Column: "close_date", Value: "31/01/2024"}}, 0},
				{"two filters", "acme", []canonical.Filter{{Column: "account_id", Value: "A-1"}, {Column: "stage", Value: "Negotiation"}}, 2},
				{"key", "acme", []canonical.Filter{{Column: "opportunity_id", Value: "O-007"}}, 1},
				{"meta column", "acme", []canonical.Filter{{Column: "source_system", Value: "filesource"}}, 25},
				{"key of the other tenant", "globex", []canonical.Filter{{Column: "opportunity_id", Value: "O-020"}}, 0},
				{"injection is a value", "acme", []canonical.Filter{{Column: "stage", Value: "x' OR '1'='1"}}, 0},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					for _, limit := range []int{1, 7, 100} {
						rows := all(t, s, tc.tenant, canonical.OpportunityEntity, limit, tc.filters...)
						if len(rows) != tc.want {
							t.Fatalf("limit %d: %d rows, want %d", limit, len(rows), tc.want)
						}
						seen := map[string]bool{}
						prev := ""
						for _, r := range rows {
							if r["tenant_id"] != tc.tenant {
								t.Fatalf("row of tenant %v returned to %s", r["tenant_id"], tc.tenant)
							}
							id := r["opportunity_id"].(string)
							if seen[id] || id <= prev {
								t.Fatalf("limit %d: row %s out of order or repeated (after %s)", limit, id, prev)
							}
							seen[id], prev = true, id
						}
					}
				})
			}

			t.Run("page shape", func(t *testing.T) {
				page, err := s.Query(testCtx(t), canonical.ViewQuery{Tenant: "acme", Entity: canonical.OpportunityEntity, Limit: 25})
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Rows) != 25 || page.NextCursor != "" {
					t.Fatalf("exactly one full page: %d rows, cursor %q", len(page.Rows), page.NextCursor)
				}
				page, err = s.Query(testCtx(t), canonical.ViewQuery{Tenant: "acme", Entity: canonical.OpportunityEntity, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				if want := canonical.EncodeCursor("O-009"); page.NextCursor != want {
					t.Fatalf("next cursor %q, want %q", page.NextCursor, want)
				}
			})
			t.Run("unknown column", func(t *testing.T) {
				_, err := s.Query(testCtx(t), canonical.ViewQuery{Tenant: "acme", Entity: canonical.OpportunityEntity,
					Filters: []canonical.Filter{{Column: "name; DROP TABLE x", Value: "1"}}})
				var fe *canonical.FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("want a *canonical.FieldError, got %v", err)
				}
			})
		})
	}
}

func TestVersionRule(t *testing.T) {
	const tn = "acme"
	named := func(name string) *canonical.Opportunity { return opp("O-1", name) }
	tests := []struct {
		name     string
		batches  [][]func(t *testing.T) *canonical.Event
		wantName string // "" means absent from the views
	}{
		{"older after newer keeps the newer", [][]func(*testing.T) *canonical.Event{
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("v2"), t0.Add(time.Hour), 1) }},
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("v1"), t0, 1) }},
		}, "v2"},
		{"older after newer in one batch", [][]func(*testing.T) *canonical.Event{{
			func(t *testing.T) *canonical.Event { return upsert(t, tn, named("v2"), t0.Add(time.Hour), 1) },
			func(t *testing.T) *canonical.Event { return upsert(t, tn, named("v1"), t0, 1) },
		}}, "v2"},
		{"newer after older", [][]func(*testing.T) *canonical.Event{
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("v1"), t0, 1) }},
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("v2"), t0.Add(time.Microsecond), 1) }},
		}, "v2"},
		{"equal version, higher mapping version overwrites", [][]func(*testing.T) *canonical.Event{
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("mapped by 1"), t0, 1) }},
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("mapped by 2"), t0, 2) }},
		}, "mapped by 2"},
		{"equal version, lower mapping version does not", [][]func(*testing.T) *canonical.Event{
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("mapped by 2"), t0, 2) }},
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("mapped by 1"), t0, 1) }},
		}, "mapped by 2"},
		{"equal versions overwrite (re-derivation)", [][]func(*testing.T) *canonical.Event{
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("first"), t0, 1) }},
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("again"), t0, 1) }},
		}, "again"},
		{"delete then older upsert stays deleted", [][]func(*testing.T) *canonical.Event{
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("v1"), t0, 1) }},
			{func(t *testing.T) *canonical.Event {
				return deletion(t, tn, canonical.OpportunityEntity, "O-1", t0.Add(2*time.Hour), 1)
			}},
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("v2"), t0.Add(time.Hour), 1) }},
		}, ""},
		{"tombstone without a row stops an older upsert", [][]func(*testing.T) *canonical.Event{
			{func(t *testing.T) *canonical.Event {
				return deletion(t, tn, canonical.OpportunityEntity, "O-1", t0.Add(time.Hour), 1)
			}},
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("v1"), t0, 1) }},
		}, ""},
		{"newer upsert after a delete brings the record back", [][]func(*testing.T) *canonical.Event{
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("v1"), t0, 1) }},
			{func(t *testing.T) *canonical.Event {
				return deletion(t, tn, canonical.OpportunityEntity, "O-1", t0.Add(time.Hour), 1)
			}},
			{func(t *testing.T) *canonical.Event { return upsert(t, tn, named("v3"), t0.Add(2*time.Hour), 1) }},
		}, "v3"},
		{"delete and older upsert in one batch", [][]func(*testing.T) *canonical.Event{{
			func(t *testing.T) *canonical.Event {
				return deletion(t, tn, canonical.OpportunityEntity, "O-1", t0.Add(time.Hour), 1)
			},
			func(t *testing.T) *canonical.Event { return upsert(t, tn, named("v1"), t0, 1) },
		}}, ""},
	}
	stores := bothStores(t)
	for i, tc := range tests {
		for _, s := range stores {
			t.Run(s.Name()+"/"+tc.name, func(t *testing.T) {
				tenant := fmt.Sprintf("vr%d", i) // each case its own tenant
				for _, b := range tc.batches {
					var evs []*canonical.Event
					for _, mk := range b {
						ev := mk(t)
						ev.Tenant = tenant
						evs = append(evs, ev)
					}
					apply(t, s, evs...)
				}
				row := get(t, s, tenant, canonical.OpportunityEntity, "O-1")
				switch {
				case tc.wantName == "" && row != nil:
					t.Fatalf("want no row, got %v", row)
				case tc.wantName != "" && (row == nil || row["name"] != tc.wantName):
					t.Fatalf("want name %q, got row %v", tc.wantName, row)
				}
				wantCount := int64(0)
				if tc.wantName != "" {
					wantCount = 1
				}
				if n := count(t, s, tenant, canonical.OpportunityEntity); n != wantCount {
					t.Fatalf("count = %d, want %d", n, wantCount)
				}
			})
		}
	}
}

// mixedEvents is a batch of every entity with nulls, awkward decimals, dates,
// nested extras, updates and deletes.
func mixedEvents(t *testing.T) []*canonical.Event {
	extras := map[string]any{
		"nested": map[string]any{"list": []any{1, "two", 3.25, nil, true}, "deep": map[string]any{"n": 1.50}},
		"big":    json.Number("12345678901234567890"),
		"text":   "héllo \"quoted\" \\ back",
		"empty":  map[string]any{},
	}
	return []*canonical.Event{
		upsert(t, "acme", &canonical.Account{AccountID: "A-1", Name: "Acme", Industry: ptr("Manufacturing"),
			AnnualRevenue: dec("12345678901234567890.123456789"), EmployeeCount: ptr(int64(250)), Website: ptr("https://acme.example"),
			Extras: extras}, t0, 1),
		upsert(t, "acme", &canonical.Account{AccountID: "A-2", Name: "Nulls Inc"}, t0, 1),
		upsert(t, "acme", &canonical.Account{AccountID: "A-3", Name: "Tiny", AnnualRevenue: dec("0.1"), EmployeeCount: ptr(int64(0))}, t0.Add(123456*time.Microsecond), 3),
		upsert(t, "acme", &canonical.Opportunity{OpportunityID: "O-1", AccountID: ptr("A-1"), Name: "Big deal", Stage: ptr("Closed Won"),
			Amount: dec("1234.50"), Currency: ptr("EUR"), CloseDate: date("2024-01-31"), OwnerID: ptr("U-9"), Probability: pct("42.5"),
			Extras: map[string]any{"hs_priority": "high", "score": 0.1}}, t0, 1),
		upsert(t, "acme", &canonical.Opportunity{OpportunityID: "O-2", Name: "Zero", Amount: dec("0"), Probability: pct("100"), CloseDate: date("1999-12-31")}, t0, 1),
		upsert(t, "acme", &canonical.Opportunity{OpportunityID: "O-3", Name: "Negative", Amount: dec("-0.000000001"), Probability: pct("0.0001")}, t0, 1),
		upsert(t, "acme", &canonical.Opportunity{OpportunityID: "O-4", Name: "Gone"}, t0, 1),
		deletion(t, "acme", canonical.OpportunityEntity, "O-4", t0.Add(time.Minute), 1),
		upsert(t, "acme", &canonical.Contact{ContactID: "C-1", AccountID: ptr("A-1"), FirstName: ptr("Ada"), LastName: ptr("Lovelace"),
			Email: ptr("ada@acme.example"), Phone: ptr("+44 20 7946 0000"), Title: ptr("CTO"), Extras: map[string]any{"languages": []any{"en", "fr"}}}, t0, 1),
		upsert(t, "acme", &canonical.Contact{ContactID: "C-2"}, t0, 1),
		upsert(t, "acme", &canonical.Contact{ContactID: "C-2", LastName: ptr("Updated")}, t0.Add(time.Second), 1),
		upsert(t, "globex", &canonical.Contact{ContactID: "C-1", FirstName: ptr("Other tenant")}, t0, 1),
	}
}

func TestStoresAnswerIdentically(t *testing.T) {
	stores := bothStores(t)
	for _, s := range stores {
		apply(t, s, mixedEvents(t)...)
	}
	for _, e := range canonical.Entities {
		for _, tenant := range []string{"acme", "globex"} {
			pg := jsonOf(t, withoutStoreTimes(all(t, stores[0], tenant, e, 2)))
			dk := jsonOf(t, withoutStoreTimes(all(t, stores[1], tenant, e, 2)))
			if pg != dk {
				t.Errorf("%s/%s differ:\npostgres: %s\nduckdb:   %s", tenant, e, pg, dk)
			}
		}
	}
	// The renderings themselves.
	for _, s := range stores {
		t.Run(s.Name(), func(t *testing.T) {
			a1 := get(t, s, "acme", canonical.AccountEntity, "A-1")
			o1 := get(t, s, "acme", canonical.OpportunityEntity, "O-1")
			checks := []struct {
				name string
				got  any
				want string // JSON
			}{
				{"big decimal", a1["annual_revenue"], `"12345678901234567890.123456789"`},
				{"employee count", a1["employee_count"], `250`},
				{"extras", a1["extras"], `{"big":12345678901234567890,"empty":{},"nested":{"deep":{"n":1.5},"list":[1,"two",3.25,null,true]},"text":"héllo \"quoted\" \\ back"}`},
				{"small decimal", get(t, s, "acme", canonical.AccountEntity, "A-3")["annual_revenue"], `"0.1"`},
				{"source time with microseconds", get(t, s, "acme", canonical.AccountEntity, "A-3")["source_updated_at"], `"2024-03-01T12:00:00.123456Z"`},
				{"missing values", get(t, s, "acme", canonical.AccountEntity, "A-2")["industry"], `null`},
				{"no extras", get(t, s, "acme", canonical.AccountEntity, "A-2")["extras"], `{}`},
				{"amount", o1["amount"], `"1234.5"`},
				{"zero", get(t, s, "acme", canonical.OpportunityEntity, "O-2")["amount"], `"0"`},
				{"tiny negative", get(t, s, "acme", canonical.OpportunityEntity, "O-3")["amount"], `"-0.000000001"`},
				{"probability", o1["probability"], `42.5`},
				{"date", o1["close_date"], `"2024-01-31"`},
				{"source time", o1["source_updated_at"], `"2024-03-01T12:00:00Z"`},
				{"tenant", o1["tenant_id"], `"acme"`},
				{"event id", o1["event_id"], fmt.Sprintf("%q", mixedEvents(t)[3].ID)},
				{"deleted is gone", get(t, s, "acme", canonical.OpportunityEntity, "O-4"), `null`},
				{"newest of a key in the batch", get(t, s, "acme", canonical.ContactEntity, "C-2")["last_name"], `"Updated"`},
			}
			for _, c := range checks {
				if got := jsonOf(t, c.got); got != c.want {
					t.Errorf("%s = %s, want %s", c.name, got, c.want)
				}
			}
			keys := map[string]bool{}
			for k := range o1 {
				keys[k] = true
			}
			for _, k := range []string{"opportunity_id", "account_id", "name", "stage", "amount", "currency", "close_date", "owner_id",
				"probability", "extras", "tenant_id", "source_system", "source_updated_at", "event_id", "created_at", "updated_at"} {
				if !keys[k] {
					t.Errorf("row lacks %s: %v", k, o1)
				}
				delete(keys, k)
			}
			if len(keys) > 0 {
				t.Errorf("row has unexpected columns %v", keys)
			}
			if _, err := time.Parse(time.RFC3339, o1["updated_at"].(string)); err != nil || !strings.HasSuffix(o1["updated_at"].(string), "Z") {
				t.Errorf("updated_at %v is not RFC 3339 UTC", o1["updated_at"])
			}
		})
	}
}

func TestReapplyChangesNothing(t *testing.T) {
	for _, s := range bothStores(t) {
		t.Run(s.Name(), func(t *testing.T) {
			evs := mixedEvents(t)
			apply(t, s, evs...)
			snapshot := func() string {
				var b strings.Builder
				for _, tenant := range []string{"acme", "globex"} {
					for _, e := range canonical.Entities {
						fmt.Fprintf(&b, "%s/%s %d %s\n", tenant, e, count(t, s, tenant, e), jsonOf(t, all(t, s, tenant, e, 1000)))
					}
				}
				return b.String()
			}
			before := snapshot()
			// The same events again: as one batch, one by one, and in reverse.
			apply(t, s, evs...)
			for _, ev := range evs {
				apply(t, s, ev)
			}
			for i := len(evs) - 1; i >= 0; i-- {
				apply(t, s, evs[i])
			}
			if after := snapshot(); after != before {
				t.Fatalf("re-applying changed the rows (updated_at included):\nbefore: %s\nafter:  %s", before, after)
			}
		})
	}
}

func TestApplyRejectsUnstorableEvent(t *testing.T) {
	for _, s := range bothStores(t) {
		t.Run(s.Name(), func(t *testing.T) {
			good := upsert(t, "acme", opp("O-1", "fine"), t0, 1)
			bad := upsert(t, "acme", opp("O-2", "nul\x00byte"), t0, 1)
			err := s.Apply(testCtx(t), []*canonical.Event{good, bad})
			var pe *subscriber.PermanentError
			if !errors.As(err, &pe) || pe.Event != bad {
				t.Fatalf("want a PermanentError naming the bad event, got %v", err)
			}
			if n := count(t, s, "acme", canonical.OpportunityEntity); n != 0 {
				t.Fatalf("a failed batch wrote %d rows", n)
			}
		})
	}
}

func TestPostgresMigrationsConcurrentAndIdempotent(t *testing.T) {
	url := subscribertest.PostgresURL(t)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			p, err := subscriber.OpenPostgres(ctx, url)
			if err == nil {
				err = p.Ping(ctx)
				p.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	p, err := subscriber.OpenPostgres(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	apply(t, p, upsert(t, "acme", opp("O-1", "kept"), t0, 1))
	p.Close()
	p, err = subscriber.OpenPostgres(ctx, url)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer p.Close()
	if n := count(t, p, "acme", canonical.OpportunityEntity); n != 1 {
		t.Fatalf("rows after reopen = %d", n)
	}
}

func TestDuckDBReopensItsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.duckdb")
	d, err := subscriber.OpenDuckDB(path)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, d, mixedEvents(t)...)
	before := jsonOf(t, all(t, d, "acme", canonical.OpportunityEntity, 100))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = subscriber.OpenDuckDB(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer d.Close()
	if after := jsonOf(t, all(t, d, "acme", canonical.OpportunityEntity, 100)); after != before {
		t.Fatalf("rows changed across reopen:\n%s\n%s", before, after)
	}
	if err := d.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// DuckDB casts a batch's decimals through DECIMAL(18,9) when every one fits it
// exactly and through DECIMAL(38,9) otherwise; either way both stores keep
// the same value. Each amount goes alone (its batch takes the path its value
// picks) and then all together (one wide value sends the batch the general
// way).
func TestDecimalsAtTheNarrowBoundary(t *testing.T) {
	amounts := []string{
		"999999999.999999999", "-999999999.999999999", "1000000000", "-1000000000.5",
		"123456789.123456789", "0.000000001", "42", "-7.25",
		"99999999999999999999999999999.999999999",
	}
	stores := bothStores(t)
	for _, s := range stores {
		for i, a := range amounts {
			apply(t, s, upsert(t, "alone", &canonical.Opportunity{OpportunityID: fmt.Sprintf("O-%d", i), Name: "n", Amount: dec(a)}, t0, 1))
		}
		var batch []*canonical.Event
		for i, a := range amounts {
			batch = append(batch, upsert(t, "together", &canonical.Opportunity{OpportunityID: fmt.Sprintf("O-%d", i), Name: "n", Amount: dec(a)}, t0, 1))
		}
		apply(t, s, batch...)
	}
	for _, s := range stores {
		for _, tenant := range []string{"alone", "together"} {
			for i, a := range amounts {
				want := strings.TrimRight(strings.TrimRight(a, "0"), ".")
				if !strings.Contains(a, ".") {
					want = a
				}
				if got := get(t, s, tenant, canonical.OpportunityEntity, fmt.Sprintf("O-%d", i))["amount"]; got != want {
					t.Errorf("%s %s: amount %s stored as %v", s.Name(), tenant, a, got)
				}
			}
		}
	}
}

// DuckDB first inserts a batch's new keys without ON CONFLICT and, when one
// is stored already, rolls back and applies the batch again the general way:
// a batch that mixes new rows in one table with an update in another ends
// with every row once, the update applied, and the new rows not doubled by
// the first try. Batches after it (the general way for a while, then the
// plain try again) keep the version rule.
func TestBatchesMixingNewAndStoredKeys(t *testing.T) {
	for _, s := range bothStores(t) {
		t.Run(s.Name(), func(t *testing.T) {
			apply(t, s, upsert(t, "mix", opp("O-1", "first"), t0, 1))
			apply(t, s,
				upsert(t, "mix", &canonical.Account{AccountID: "A-1", Name: "new account"}, t0, 1),
				upsert(t, "mix", opp("O-2", "new opportunity"), t0, 1),
				upsert(t, "mix", opp("O-1", "renamed"), t0.Add(time.Second), 1))
			for i := range 40 { // through the general-way stretch and past it
				at := t0.Add(time.Duration(i+2) * time.Second)
				apply(t, s, upsert(t, "mix", opp(fmt.Sprintf("N-%d", i), "n"), at, 1), upsert(t, "mix", opp("O-1", fmt.Sprintf("v%d", i)), at, 1))
				apply(t, s, upsert(t, "mix", opp("O-1", "older, ignored"), t0, 1))
			}
			if got := get(t, s, "mix", canonical.OpportunityEntity, "O-1")["name"]; got != "v39" {
				t.Errorf("O-1 name = %v, want v39", got)
			}
			if n := count(t, s, "mix", canonical.OpportunityEntity); n != 42 {
				t.Errorf("%d opportunities, want 42", n)
			}
			if n := count(t, s, "mix", canonical.AccountEntity); n != 1 {
				t.Errorf("%d accounts, want 1", n)
			}
			if got := get(t, s, "mix", canonical.AccountEntity, "A-1")["name"]; got != "new account" {
				t.Errorf("A-1 name = %v", got)
			}
		})
	}
}
