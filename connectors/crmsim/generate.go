package crmsim

import (
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"
)

var companyBases = []string{
	"Northwind Traders", "Contoso", "Fabrikam", "Tailspin Toys", "Adventure Works",
	"Litware", "Proseware", "Wide World Importers", "Alpine Ski House", "Coho Winery",
	"Fourth Coffee", "Lucerne Publishing", "Trey Research", "Woodgrove Bank",
	"Humongous Insurance", "Blue Yonder Airlines", "City Power & Light",
	"Consolidated Messenger", "Southridge Video", "Wingtip Toys", "VanArsdel",
	"Relecloud", "Adatum", "Graphic Design Institute", "Margie's Travel",
	"Acme", "Globex", "Initech", "Umbrella Logistics", "Vandelay Industries",
	"Hooli", "Massive Dynamic", "Soylent Foods", "Stark Manufacturing",
	"Wayne Enterprises", "Tyrell Systems", "Cyberdyne", "Gringotts Capital",
	"Dunder Mifflin", "Sterling Cooper", "Oscorp", "Nakatomi Trading",
	"Blue Sun", "Aperture Labs", "Monarch Solutions", "Pied Piper",
}

var (
	companySuffixes = []string{"Inc.", "LLC", "Ltd.", "Corp.", "Group", "GmbH", "PLC", "S.A.", ""}
	regions         = []string{"Europe", "APAC", "North America", "LATAM", "Nordics", "Iberia", "Benelux", "DACH"}
	firstNames      = []string{
		"Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Isabella", "Lucas",
		"Mia", "Mateo", "Charlotte", "Ethan", "Harper", "Hiroshi", "Aisha", "Lars", "Chloé", "Priya",
		"Diego", "Ingrid", "Mei", "Rafael", "Zoë", "Kwame", "Fatima", "Jonas", "Yuki", "Marta",
	}
	lastNames = []string{
		"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
		"Martinez", "Nguyen", "Müller", "Rossi", "Kowalski", "Tanaka", "Okafor", "Andersson", "O'Brien",
		"Dubois", "Silva", "Kim", "Patel", "Haddad", "Novak", "Jensen", "Costa", "Ivanova", "Schmidt",
	}
	titles = []string{
		"CEO", "CFO", "CTO", "VP Sales", "VP Marketing", "Head of Procurement", "IT Director",
		"Sales Manager", "Account Executive", "Operations Manager", "Data Engineer", "Buyer",
		"Finance Controller", "Product Manager", "Customer Success Lead",
	}
	departments = []string{"Sales", "Marketing", "Finance", "IT", "Operations", "Procurement", "Engineering", "Executive"}
	products    = []string{
		"Platform Expansion", "Annual Renewal", "Pilot", "Enterprise Licenses", "Support Upgrade",
		"Data Migration", "Training Package", "Analytics Add-on", "Multi-year Agreement", "Cloud Migration",
	}
	ownerNames  = []string{"Ava Thompson", "Liam Patel", "Sofia García", "Noah Kim", "Emma Schmidt"}
	sfTypes     = []string{"Customer - Direct", "Customer - Channel", "Prospect", "Partner", "Other"}
	hsLifecycle = []string{"lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer", "evangelist"}
)

type industry struct {
	sf, hs string
	dyn    int64
}

var industries = []industry{
	{"Banking", "BANKING", 16},
	{"Consulting", "MANAGEMENT_CONSULTING", 7},
	{"Manufacturing", "MACHINERY", 12},
	{"Retail", "RETAIL", 22},
	{"Insurance", "INSURANCE", 20},
	{"Healthcare", "HOSPITAL_HEALTH_CARE", 11},
	{"Transportation", "TRANSPORTATIONTRUCKINGRAILROAD", 30},
	{"Energy", "OIL_ENERGY", 24},
	{"Media", "MEDIA_PRODUCTION", 3},
	{"Utilities", "UTILITIES", 31},
	{"Technology", "COMPUTER_SOFTWARE", 6},
}

type stage struct {
	sf     string
	sfProb int64
	hs     string
	hsProb string
	step   string
	dyn    int64
	dynPr  int64
	closed bool
}

var stages = []stage{
	{"Prospecting", 10, "appointmentscheduled", "0.2", "1-Qualify", 0, 10, false},
	{"Qualification", 10, "qualifiedtobuy", "0.4", "1-Qualify", 0, 20, false},
	{"Needs Analysis", 20, "presentationscheduled", "0.6", "2-Develop", 1, 40, false},
	{"Proposal/Price Quote", 75, "decisionmakerboughtin", "0.8", "3-Propose", 2, 60, false},
	{"Negotiation/Review", 90, "contractsent", "0.9", "4-Close", 3, 80, false},
	{"Closed Won", 100, "closedwon", "1.0", "4-Close", 3, 100, true},
	{"Closed Lost", 0, "closedlost", "0.0", "4-Close", 3, 0, true},
}

type currency struct{ code, name, symbol, guid string }

var currencies = []currency{
	{"USD", "US Dollar", "$", "e5a1c9f0-4a6e-ee11-8179-000d3a1b2c01"},
	{"EUR", "Euro", "€", "e5a1c9f0-4a6e-ee11-8179-000d3a1b2c02"},
	{"GBP", "Pound Sterling", "£", "e5a1c9f0-4a6e-ee11-8179-000d3a1b2c03"},
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// sfID is an 18-character Salesforce id: key prefix, pod and counter (15
// case-sensitive characters) and the 3-character case-safe suffix.
func sfID(prefix string, n uint64) string {
	b := []byte(prefix + "5g00000")
	var num [5]byte
	for i := 4; i >= 0; i-- {
		num[i] = base62[n%62]
		n /= 62
	}
	b = append(b, num[:]...)
	const suffixChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	for chunk := 0; chunk < 3; chunk++ {
		flags := 0
		for j := 0; j < 5; j++ {
			if c := b[chunk*5+j]; c >= 'A' && c <= 'Z' {
				flags |= 1 << j
			}
		}
		b = append(b, suffixChars[flags])
	}
	return string(b)
}

func (s *Sim) newID(sys *system, t *table, rng *mrand.Rand) string {
	switch sys.name {
	case Salesforce:
		sys.nextNum++
		return sfID(t.def.prefix, sys.nextNum)
	case HubSpot:
		sys.nextNum += 1 + uint64(rng.IntN(40))
		return strconv.FormatUint(sys.nextNum, 10)
	}
	return guid(rng)
}

// generate builds one system's org: owners, then accounts, opportunities and
// contacts pointing at its accounts.
func (s *Sim) generate(name string, rng *mrand.Rand) *system {
	sys := &system{name: name, tokens: map[string]bool{}, usedNames: map[string]bool{}}
	var defs []objectDef
	switch name {
	case Salesforce:
		sys.unit = time.Second
		sys.nextNum = uint64(rng.IntN(62 * 62 * 62 * 62))
		defs = salesforceDefs()
	case HubSpot:
		sys.unit = time.Millisecond
		sys.nextNum = 10_000_000_000 + uint64(rng.IntN(1_000_000_000))
		defs = hubspotDefs()
	default:
		sys.unit = time.Second
		defs = dynamicsDefs()
	}
	for _, d := range defs {
		sys.tables = append(sys.tables, newTable(d))
	}
	for i, n := range ownerNames {
		var id string
		switch name {
		case Salesforce:
			id = sfID("005", uint64(rng.IntN(1000))*62+uint64(i))
		case HubSpot:
			id = strconv.Itoa(40_000_000 + rng.IntN(9_000_000))
		default:
			id = guid(rng)
		}
		sys.owners = append(sys.owners, owner{id: id, name: n})
	}

	now := s.now().UTC()
	year := int64(365 * 24 * time.Hour)
	accounts := sys.tableOf(kindAccount)
	for range s.cfg.Accounts {
		created := now.Add(-time.Duration(1 + rng.Int64N(year))).Truncate(sys.unit)
		s.newRecord(sys, accounts, rng, created, now, nil)
	}
	accts := accounts.live()
	for _, kind := range []string{kindOpportunity, kindContact} {
		n := s.cfg.Opportunities
		if kind == kindContact {
			n = s.cfg.Contacts
		}
		t := sys.tableOf(kind)
		for range n {
			var parent *record
			created := now.Add(-time.Duration(1 + rng.Int64N(year))).Truncate(sys.unit)
			if len(accts) > 0 {
				parent = accts[rng.IntN(len(accts))]
				if span := int64(now.Sub(parent.created)); span > 1 {
					created = parent.created.Add(time.Duration(rng.Int64N(span))).Truncate(sys.unit)
				}
			}
			s.newRecord(sys, t, rng, created, now, parent)
		}
	}
	return sys
}

// newRecord creates a record of t created at created and last modified
// between created and now; opportunities and contacts belong to parent.
func (s *Sim) newRecord(sys *system, t *table, rng *mrand.Rand, created, now time.Time, parent *record) *record {
	modified := created
	if span := int64(now.Sub(created)); span > 1 {
		modified = created.Add(time.Duration(rng.Int64N(span))).Truncate(sys.unit)
	}
	if modified.Before(created) {
		modified = created
	}
	r := &record{id: s.newID(sys, t, rng), created: created, modified: modified}
	if parent != nil {
		r.ref = parent.id
	}
	switch t.def.kind {
	case kindAccount:
		r.fields = accountFields(sys, rng)
	case kindOpportunity:
		r.fields = opportunityFields(sys, rng, parent, created)
	default:
		r.fields = contactFields(sys, rng, parent)
	}
	s.insert(sys, t, r)
	return r
}

func maybe[T any](rng *mrand.Rand, nullPct int, v T) any {
	if rng.IntN(100) < nullPct {
		return nil
	}
	return v
}

func pick[T any](rng *mrand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func money(dollars int64, cents int64) string { return fmt.Sprintf("%d.%02d", dollars, cents) }

func companyName(sys *system, rng *mrand.Rand) (name, domain string) {
	for attempt := 0; ; attempt++ {
		base := pick(rng, companyBases)
		if attempt > 20 {
			base += " " + pick(rng, regions)
		}
		if attempt > 60 {
			base += " " + strconv.Itoa(attempt)
		}
		if sys.usedNames[base] {
			continue
		}
		sys.usedNames[base] = true
		name = strings.TrimSpace(base + " " + pick(rng, companySuffixes))
		domain = strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
				return r
			case r >= 'A' && r <= 'Z':
				return r + 'a' - 'A'
			}
			return -1
		}, base) + pick(rng, []string{".com", ".com", ".io", ".co.uk", ".de", ".net"})
		return name, domain
	}
}

func accountFields(sys *system, rng *mrand.Rand) map[string]any {
	name, domain := companyName(sys, rng)
	ind := pick(rng, industries)
	rev := maybe(rng, 15, money(100_000+rng.Int64N(500_000_000), []int64{0, 0, 0, 50, rng.Int64N(100)}[rng.IntN(5)]))
	emp := maybe(rng, 10, int64(5+rng.IntN(20_000)))
	own := pick(rng, sys.owners)
	switch sys.name {
	case Salesforce:
		return map[string]any{
			"Name": name, "Type": maybe(rng, 10, pick(rng, sfTypes)), "Industry": maybe(rng, 10, ind.sf),
			"AnnualRevenue": rev, "NumberOfEmployees": emp, "Website": maybe(rng, 10, "https://www."+domain),
			"OwnerId": own.id,
		}
	case HubSpot:
		return map[string]any{
			"name": name, "industry": maybe(rng, 10, ind.hs), "annualrevenue": rev, "numberofemployees": emp,
			"domain": maybe(rng, 5, domain), "lifecyclestage": pick(rng, hsLifecycle),
		}
	}
	state := int64(0)
	if rng.IntN(10) == 0 {
		state = 1
	}
	return map[string]any{
		"name": name, "industrycode": maybe(rng, 10, ind.dyn), "revenue": rev, "numberofemployees": emp,
		"websiteurl": maybe(rng, 10, "https://www."+domain), "statecode": state, "_ownerid_value": own.id,
	}
}

// accountName is the name of an account record of sys.
func accountName(sys *system, r *record) string {
	if r == nil {
		return ""
	}
	for _, k := range []string{"Name", "name"} {
		if v, ok := r.fields[k].(string); ok {
			return v
		}
	}
	return ""
}

func accountDomain(sys *system, r *record) string {
	if r == nil {
		return ""
	}
	for _, k := range []string{"domain", "Website", "websiteurl"} {
		if v, ok := r.fields[k].(string); ok {
			return strings.TrimPrefix(v, "https://www.")
		}
	}
	return "example.com"
}

func shortName(name string) string {
	for _, suf := range companySuffixes {
		if suf != "" && strings.HasSuffix(name, " "+suf) {
			return strings.TrimSuffix(name, " "+suf)
		}
	}
	return name
}

func opportunityFields(sys *system, rng *mrand.Rand, parent *record, created time.Time) map[string]any {
	name := pick(rng, products)
	if parent != nil {
		name = shortName(accountName(sys, parent)) + " - " + name
	}
	st := stages[rng.IntN(len(stages))]
	amount := maybe(rng, 8, money(5_000+rng.Int64N(750_000), rng.Int64N(100)))
	cur := currencies[0]
	if p := rng.IntN(10); p >= 7 {
		cur = currencies[1+p%2]
	}
	closeDate := created.AddDate(0, 0, 15+rng.IntN(165))
	own := pick(rng, sys.owners)
	switch sys.name {
	case Salesforce:
		return map[string]any{
			"Name": name, "StageName": st.sf, "Amount": amount, "CurrencyIsoCode": cur.code,
			"CloseDate": closeDate.Format(time.DateOnly), "Probability": strconv.FormatInt(st.sfProb, 10),
			"OwnerId": own.id,
		}
	case HubSpot:
		return map[string]any{
			"dealname": name, "dealstage": st.hs, "pipeline": "default", "amount": amount,
			"deal_currency_code": cur.code, "closedate": closeDate.Truncate(24 * time.Hour),
			"hubspot_owner_id": maybe(rng, 10, own.id), "hs_probability": st.hsProb,
		}
	}
	return map[string]any{
		"name": name, "estimatedvalue": amount, "estimatedclosedate": closeDate.Format(time.DateOnly),
		"closeprobability": st.dynPr, "stepname": st.step, "salesstage": st.dyn,
		"_transactioncurrencyid_value": cur.guid,
	}
}

func contactFields(sys *system, rng *mrand.Rand, parent *record) map[string]any {
	first, last := pick(rng, firstNames), pick(rng, lastNames)
	local := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		case r == ' ':
			return '.'
		}
		return -1
	}, first+" "+last)
	domain := "example.com"
	if parent != nil {
		domain = accountDomain(sys, parent)
	}
	email := maybe(rng, 5, local+"@"+domain)
	phone := maybe(rng, 15, fmt.Sprintf("+1 (%03d) 555-%04d", 200+rng.IntN(700), rng.IntN(10000)))
	title := maybe(rng, 10, pick(rng, titles))
	switch sys.name {
	case Salesforce:
		return map[string]any{
			"FirstName": first, "LastName": last, "Email": email, "Phone": phone, "Title": title,
			"Department": maybe(rng, 20, pick(rng, departments)),
		}
	case HubSpot:
		return map[string]any{"firstname": first, "lastname": last, "email": email, "phone": phone, "jobtitle": title}
	}
	return map[string]any{"firstname": first, "lastname": last, "emailaddress1": email, "telephone1": phone, "jobtitle": title}
}

// evolve modifies n random live records of sys and creates some new ones.
func (s *Sim) evolve(sys *system, n int) {
	type ref struct {
		t *table
		r *record
	}
	var live []ref
	for _, t := range sys.tables {
		for _, r := range t.live() {
			live = append(live, ref{t, r})
		}
	}
	s.rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	for _, x := range live[:min(n, len(live))] {
		s.mutate(sys, x.t, x.r)
		s.touch(sys, x.r)
	}
	now := s.now().UTC()
	for range max(1, n/4) {
		kind := pick(s.rng, []string{kindAccount, kindOpportunity, kindOpportunity, kindContact})
		accts := sys.tableOf(kindAccount).live()
		if len(accts) == 0 {
			kind = kindAccount
		}
		var parent *record
		if kind != kindAccount {
			parent = accts[s.rng.IntN(len(accts))]
		}
		t := sys.tableOf(kind)
		r := s.newRecord(sys, t, s.rng, s.stamp(sys, time.Time{}), now, parent)
		r.modified = time.Time{}
		s.touch(sys, r)
		r.created = r.modified
	}
}

// mutate changes a record the way users do: head counts and revenue move,
// deals advance through their stages, people change titles and phones.
func (s *Sim) mutate(sys *system, t *table, r *record) {
	rng := s.rng
	names := map[string][3]string{ // employees, revenue / amount, title
		Salesforce: {"NumberOfEmployees", "AnnualRevenue", "Title"},
		HubSpot:    {"numberofemployees", "annualrevenue", "jobtitle"},
		Dynamics:   {"numberofemployees", "revenue", "jobtitle"},
	}[sys.name]
	switch t.def.kind {
	case kindAccount:
		emp, _ := r.fields[names[0]].(int64)
		r.fields[names[0]] = max(1, emp+int64(rng.IntN(200))-50)
		r.fields[names[1]] = scaleMoney(r.fields[names[1]], rng)
		if sys.name == HubSpot {
			r.fields["lifecyclestage"] = pick(rng, hsLifecycle)
		}
	case kindOpportunity:
		s.advanceStage(sys, r, rng)
	case kindContact:
		r.fields[names[2]] = pick(rng, titles)
		phoneField := map[string]string{Salesforce: "Phone", HubSpot: "phone", Dynamics: "telephone1"}[sys.name]
		r.fields[phoneField] = fmt.Sprintf("+1 (%03d) 555-%04d", 200+rng.IntN(700), rng.IntN(10000))
	}
}

func scaleMoney(v any, rng *mrand.Rand) any {
	x, ok := new(big.Rat).SetString(fmt.Sprint(v))
	if v == nil || !ok {
		return money(50_000+rng.Int64N(1_000_000), rng.Int64N(100))
	}
	f, _ := x.Float64()
	f *= 0.9 + rng.Float64()*0.3
	return strconv.FormatFloat(f, 'f', 2, 64)
}

func (s *Sim) advanceStage(sys *system, r *record, rng *mrand.Rand) {
	stageField := map[string]string{Salesforce: "StageName", HubSpot: "dealstage", Dynamics: "stepname"}[sys.name]
	amountField := map[string]string{Salesforce: "Amount", HubSpot: "amount", Dynamics: "estimatedvalue"}[sys.name]
	cur := -1
	for i, st := range stages {
		v := r.fields[stageField]
		if v == st.sf || v == st.hs || (v == st.step && r.fields["salesstage"] == st.dyn) {
			cur = i
			break
		}
	}
	r.fields[amountField] = scaleMoney(r.fields[amountField], rng)
	if cur >= 0 && stages[cur].closed {
		return
	}
	next := cur + 1
	if rng.IntN(5) == 0 {
		next = len(stages) - 1 // lost
	}
	if next >= len(stages) {
		next = len(stages) - 1
	}
	st := stages[next]
	switch sys.name {
	case Salesforce:
		r.fields["StageName"], r.fields["Probability"] = st.sf, strconv.FormatInt(st.sfProb, 10)
	case HubSpot:
		r.fields["dealstage"], r.fields["hs_probability"] = st.hs, st.hsProb
	default:
		r.fields["stepname"], r.fields["salesstage"], r.fields["closeprobability"] = st.step, st.dyn, st.dynPr
	}
}
