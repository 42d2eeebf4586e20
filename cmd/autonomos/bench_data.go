package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
)

// benchData generates the bench's records deterministically: row i of an
// entity is always the same, so every stage can regenerate the rows the
// CSV files hold instead of keeping a million of them in memory.
type benchData struct {
	opps, accounts, contacts int
	tenant                   string
	at                       time.Time
}

func newBenchData(records int) *benchData {
	return &benchData{opps: records, accounts: max(1, records/50), contacts: max(1, records/20),
		at: time.Date(2024, 9, 1, 12, 0, 0, 0, time.UTC)}
}

func (g *benchData) total() int { return g.opps + g.accounts + g.contacts }

func (g *benchData) counts() map[canonical.Entity]int {
	return map[canonical.Entity]int{canonical.OpportunityEntity: g.opps, canonical.AccountEntity: g.accounts, canonical.ContactEntity: g.contacts}
}

// lastID is the view, filter column and id of an entity's last record.
func (g *benchData) lastID(e canonical.Entity) (plural, key, id string) {
	switch e {
	case canonical.AccountEntity:
		return "accounts", "account_id", accountID(g.accounts - 1)
	case canonical.ContactEntity:
		return "contacts", "contact_id", fmt.Sprintf("003BNCH%010d", g.contacts-1)
	}
	return "opportunities", "opportunity_id", oppID("", g.opps-1)
}

func accountID(i int) string { return fmt.Sprintf("001BNCH%010d", i) }

func oppID(prefix string, i int) string { return fmt.Sprintf("006BNCH%s%010d", prefix, i) }

var (
	benchStages     = []string{"Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost"}
	benchSources    = []string{"Web", "Partner Referral", "Trade Show", "Outbound", "Customer Event", "Inbound Call"}
	benchRegions    = []string{"EMEA", "NA-East", "NA-West", "APAC", "LATAM"}
	benchSegments   = []string{"Enterprise", "Mid-Market", "SMB", "Public Sector"}
	benchForecast   = []string{"Pipeline", "Best Case", "Commit", "Closed", "Omitted"}
	benchTypes      = []string{"New Business", "Existing Customer - Upgrade", "Existing Customer - Renewal", "Existing Customer - Downgrade"}
	benchCurrencies = []string{"USD", "EUR", "GBP", "JPY", "CAD"}
	benchIndustries = []string{"Software", "Manufacturing", "Healthcare", "Retail", "Financial Services", "Energy"}
	benchProducts   = []string{"analytics suite", "integration platform", "premium support", "data residency add-on", "sandbox seats", "audit module"}
)

// oppHeader is the opportunity file's header: the canonical columns, the
// version, and the unmapped columns a CRM export carries (they land in
// extras), so that an event is about 1 KB.
var oppHeader = []string{"opportunity_id", "account_id", "name", "stage", "amount", "currency", "close_date", "owner_id", "probability", "updated_at",
	"description", "lead_source", "forecast_category", "type", "campaign_id", "is_private", "total_quantity", "expected_revenue",
	"last_activity_date", "pricebook_id", "synced_quote_id", "region", "segment", "territory", "competitor", "fiscal_quarter"}

// oppRow is opportunity i with id prefix p (the latency stages use their own
// ids), in oppHeader order.
func (g *benchData) oppRow(p string, i int) []string {
	amount := 5000 + (i*7919)%995000
	prob := (i * 13) % 101
	stage := benchStages[i%len(benchStages)]
	close := g.at.AddDate(0, 0, i%365).Format(time.DateOnly)
	return []string{
		oppID(p, i), accountID(i % g.accounts),
		fmt.Sprintf("%s — %s, %d seats", benchSegments[i%4], benchProducts[i%len(benchProducts)], 10+i%490),
		stage, fmt.Sprintf("%d.%02d", amount, i%100), benchCurrencies[i%len(benchCurrencies)], close,
		fmt.Sprintf("005BNCH%08d", i%977), strconv.Itoa(prob),
		g.at.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
		fmt.Sprintf("Evaluating the %s against a competing offer; procurement wants a %d%% multi-year discount.",
			benchProducts[(i/7)%len(benchProducts)], 3+i%12),
		benchSources[i%len(benchSources)],
		benchForecast[i%len(benchForecast)], benchTypes[i%len(benchTypes)], fmt.Sprintf("701BNCH%08d", i%211),
		strconv.FormatBool(i%17 == 0), strconv.Itoa(1 + i%250), fmt.Sprintf("%d.%02d", amount*prob/100, i%100),
		g.at.AddDate(0, 0, -(i % 90)).Format(time.DateOnly), "01sBNCH000000AAAAAA", fmt.Sprintf("0Q0BNCH%08d", i),
		benchRegions[i%len(benchRegions)], benchSegments[(i/3)%4], fmt.Sprintf("TERR-%03d", i%173), "Globex Corporation",
		fmt.Sprintf("FY%d-Q%d", 2024+i%2, 1+i%4),
	}
}

var accountHeader = []string{"account_id", "name", "industry", "annual_revenue", "employee_count", "website", "updated_at", "billing_city", "billing_country", "phone", "rating"}

func (g *benchData) accountRow(i int) []string {
	return []string{accountID(i), fmt.Sprintf("Account %d Holdings", i), benchIndustries[i%len(benchIndustries)],
		fmt.Sprintf("%d.00", 1_000_000+i*1337), strconv.Itoa(10 + i%20000), fmt.Sprintf("https://account%d.example.com", i),
		g.at.Add(time.Duration(i) * time.Second).Format(time.RFC3339), "Springfield", "US", "+1 555 0100", []string{"Hot", "Warm", "Cold"}[i%3]}
}

var contactHeader = []string{"contact_id", "account_id", "first_name", "last_name", "email", "phone", "title", "updated_at", "mailing_city", "lead_source", "department"}

func (g *benchData) contactRow(i int) []string {
	return []string{fmt.Sprintf("003BNCH%010d", i), accountID(i % g.accounts), "Alex", fmt.Sprintf("Nguyen%d", i),
		fmt.Sprintf("alex.nguyen%d@example.com", i), "+1 555 0199", "VP Procurement",
		g.at.Add(time.Duration(i) * time.Second).Format(time.RFC3339), "Shelbyville", benchSources[i%len(benchSources)], "Procurement"}
}

// writeFiles writes the three CSV files and returns their paths by entity.
func (g *benchData) writeFiles(dir string) (map[string]string, error) {
	out := map[string]string{}
	write := func(ent string, header []string, n int, row func(int) []string) error {
		p := filepath.Join(dir, ent+"s.csv")
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		w := csv.NewWriter(bw)
		w.Write(header)
		for i := range n {
			w.Write(row(i))
		}
		w.Flush()
		if err := w.Error(); err != nil {
			f.Close()
			return err
		}
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		out[ent] = p
		return f.Close()
	}
	if err := write("opportunity", oppHeader, g.opps, func(i int) []string { return g.oppRow("", i) }); err != nil {
		return nil, err
	}
	if err := write("account", accountHeader, g.accounts, g.accountRow); err != nil {
		return nil, err
	}
	if err := write("contact", contactHeader, g.contacts, g.contactRow); err != nil {
		return nil, err
	}
	return out, nil
}

// values is a row as the file reader hands it to the mapping.
func values(header, row []string) map[string]any {
	m := make(map[string]any, len(header))
	for i, h := range header {
		m[h] = row[i]
	}
	return m
}

// emitter is what the filesource connector uses for the bench tenant's
// opportunities: the same mapping, so the same events.
func (g *benchData) emitter(ctx context.Context, sys *system) (connectors.Emitter, error) {
	m, err := sys.mappings.ForEntity(ctx, g.tenant, "filesource", canonical.OpportunityEntity)
	if err != nil {
		return connectors.Emitter{}, err
	}
	return connectors.Emitter{Tenant: g.tenant, System: "filesource", ConnectionID: "filesource",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Mapping: m}, nil
}

// oppMsg is opportunity i (id prefix p) as its CANONICAL message.
func (g *benchData) oppMsg(em connectors.Emitter, p string, i int) (*nats.Msg, error) {
	_, m, errs := em.Messages(i+2, values(oppHeader, g.oppRow(p, i)))
	if len(errs) > 0 {
		return nil, fmt.Errorf("row %d: %s", i, errs[0].Reason)
	}
	return m, nil
}

// oppEvent is opportunity i as a canonical event.
func (g *benchData) oppEvent(em connectors.Emitter, i int) (*canonical.Event, error) {
	ev, errs := em.Event(i+2, values(oppHeader, g.oppRow("", i)))
	if len(errs) > 0 {
		return nil, fmt.Errorf("row %d: %s", i, errs[0].Reason)
	}
	return ev, nil
}

func (g *benchData) eventBytes(em connectors.Emitter) int {
	m, err := g.oppMsg(em, "", g.opps/2)
	if err != nil {
		return 0
	}
	return len(m.Data)
}
