package lexicon

import "strings"

// concepts maps a word to the concepts it stands for. Words of one group
// are synonyms; a word may stand for two concepts ("headcount" is an
// employee count). Words not listed are their own concept.
var concepts = map[string][]string{}

// synonymGroups: the first word names the concept.
var synonymGroups = [][]string{
	{"amount", "value", "revenue", "price", "amt", "val", "rev", "turnover"},
	{"account", "company", "organization", "organisation", "org", "business", "firm", "customer", "client", "employer"},
	{"opportunity", "deal", "opp", "oppty"},
	{"contact", "person", "people"},
	{"stage", "status", "phase", "step"},
	{"email", "mail", "emailaddress"},
	{"phone", "telephone", "tel", "mobile", "cell", "cellphone", "mobilephone", "landline"},
	{"title", "jobtitle", "position", "designation"},
	{"close", "closing", "closed", "end"},
	{"owner", "rep", "representative", "assignee", "salesperson", "salesrep", "manager", "agent"},
	{"probability", "likelihood", "chance", "odds", "confidence"},
	{"employee", "staff", "workforce", "personnel", "worker", "fte"},
	{"count", "number", "num", "no", "nbr", "qty", "quantity"},
	{"website", "domain", "url", "homepage", "web", "site", "webpage", "link"},
	{"first", "given", "fore", "forename", "firstname", "givenname"},
	{"last", "family", "surname", "lastname", "familyname"},
	{"industry", "sector", "vertical"},
	{"currency", "curr", "ccy", "isocurrency", "currencyisocode"},
	{"date", "dt", "day"},
	{"datetime", "timestamp", "time", "ts"},
	{"modified", "updated", "changed", "modstamp", "lastmodified", "modifiedon", "updatedon"},
	{"created", "createdon", "inserted"},
	{"id", "identifier", "key", "uid", "guid", "uuid", "ref", "reference"},
	{"name", "label", "fullname", "displayname"},
	{"annual", "yearly", "year", "yr", "annum"},
	{"estimated", "expected", "forecast", "projected", "est", "planned", "target"},
	{"parent", "related", "associated", "linked"},
	{"win", "won", "success"},
	{"job", "role"},
	{"work", "office"},
}

// expansions are words that stand for several concepts at once.
var expansions = map[string][]string{
	"headcount":         {"employee", "count"},
	"employees":         {"employee", "count"},
	"numberofemployees": {"employee", "count"},
	"emailaddress1":     {"email"},
	"telephone1":        {"phone"},
	"closedate":         {"close", "date"},
	"jobtitle":          {"title"},
	"dealname":          {"opportunity", "name"},
	"dealstage":         {"opportunity", "stage"},
	"dealvalue":         {"opportunity", "amount"},
	"websiteurl":        {"website"},
}

// phrases fold two consecutive concepts into one.
var phrases = map[[2]string]string{
	{"email", "address"}:   "email",
	{"email", "addr"}:      "email",
	{"title", "title"}:     "title",
	{"job", "title"}:       "title",
	{"phone", "number"}:    "phone",
	{"phone", "count"}:     "phone",
	{"website", "website"}: "website",
	{"website", "address"}: "website",
	{"first", "name"}:      "first",
	{"last", "name"}:       "last",
	{"zip", "code"}:        "postal",
	{"postal", "code"}:     "postal",
	{"head", "count"}:      "employee",
	{"currency", "code"}:   "currency",
	{"iso", "currency"}:    "currency",
	{"currency", "iso"}:    "currency",
	{"date", "datetime"}:   "datetime",
	{"owner", "id"}:        "owner",
	{"amount", "amount"}:   "amount",
}

// weak concepts carry little meaning alone; they weigh less in a match.
var weak = map[string]float64{
	"id": 0.5, "name": 0.5, "date": 0.5, "datetime": 0.5, "count": 0.6, "code": 0.4, "type": 0.4,
	"custom": 0.2, "field": 0.2, "new": 0.2, "main": 0.3, "primary": 0.3, "default": 0.3,
	"annual": 0.6, "estimated": 0.5, "parent": 0.5, "work": 0.4, "job": 0.3, "current": 0.3,
	"c": 0.1, "x": 0.1, "flag": 0.4, "info": 0.3, "detail": 0.3, "text": 0.3, "total": 0.3, "sales": 0.3,
	"hubspot": 0.1, "size": 0.4, "full": 0.4,
}

// stopwords are dropped.
var stopwords = map[string]bool{"of": true, "the": true, "a": true, "an": true, "and": true, "for": true, "in": true, "at": true, "on": true, "to": true, "by": true, "per": true}

// units mark a scaled or converted value ("amount_in_cents"): a field that
// carries one its counterpart lacks holds another unit.
var units = map[string]bool{
	"cents": true, "cent": true, "thousands": true, "thousand": true, "k": true, "millions": true, "million": true, "mm": true,
	"pct": true, "percent": true, "percentage": true, "bps": true, "usd": true, "eur": true, "gbp": true, "converted": true, "net": true,
	"gross": true, "min": true, "max": true, "avg": true, "range": true, "band": true, "bucket": true, "tier": true,
}

// words is the dictionary for splitting run-together lower-case names
// ("numberofemployees", "hubspotownerid").
var words = map[string]bool{}

const wordList = `account accounts acme activity actual address addr amount annual annum assigned assignee associated
billing birth birthdate branch budget business buyer campaign category cell cellphone cents channel city client close closed closing
code company competitor confidence contact contract converted count country created createdon currency customer date day deal
decision department description designation discount domain email emailaddress employee employees end est estimated expected
external family fax first fiscal forecast fore forename full given gross head headcount home homepage hubspot id identifier
industry iso job key label last lastmodified lead legal level life lifecycle likelihood line linkedin list twitter handle override salutation activity opted optout reports loss lost mail main
manager margin market modified modifiedon modstamp month name net new next note notes num number object odds of office
opportunity opp org organization origin owner parent partner percent personnel phase phone pipeline position postal price primary
priority probability product projected quantity quarter rate rating reason record ref reference region related rep
representative revenue role sales salesperson score sector segment sic site size source stage stamp start state status step street
sub surname system tax telephone territory ticker tier time timestamp title total turnover type uid updated url user uuid value
vertical web website week win won work workforce year zip`

func init() {
	for _, g := range synonymGroups {
		for _, w := range g {
			if _, dup := concepts[w]; !dup {
				concepts[w] = []string{g[0]}
			}
		}
	}
	for _, w := range strings.Fields(wordList) {
		words[w] = true
	}
	for w := range concepts {
		words[w] = true
	}
	for w := range expansions {
		words[w] = true
	}
	for w := range units {
		words[w] = true
	}
}
