package dynamics

import (
	"net/url"
	"strings"
	"testing"
)

// Links come from the server: a rewritten one carries exactly our $select
// and stays on the org.
func FuzzLinks(f *testing.F) {
	for _, s := range []string{
		"https://org.crm.dynamics.com/api/data/v9.2/accounts?$select=name&$deltatoken=12%2101%2F01%2F2024",
		"https://org.crm.dynamics.com/api/data/v9.2/accounts?%24select=x&%24skiptoken=%3Ccookie%3E",
		"https://evil.example.com/api?$select=a", "//evil.example.com/x", "", "?&&=", "https://org.crm.dynamics.com",
	} {
		f.Add(s)
	}
	c := &Connector{cfg: Config{BaseURL: "https://org.crm.dynamics.com"}}
	f.Fuzz(func(t *testing.T, link string) {
		out := withSelect(link, []string{"accountid", "name"})
		if u, err := url.Parse(out); err == nil {
			if q, err := url.ParseQuery(u.RawQuery); err == nil && strings.Join(q["$select"], "|") != "accountid,name" {
				t.Fatalf("withSelect(%q) = %q", link, out)
			}
		}
		if c.sameOrigin(link) == nil {
			u, err := url.Parse(link)
			if err != nil || !strings.EqualFold(u.Host, "org.crm.dynamics.com") || u.Scheme != "https" {
				t.Fatalf("sameOrigin accepts %q", link)
			}
		}
	})
}
