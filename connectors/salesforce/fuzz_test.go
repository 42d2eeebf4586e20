package salesforce

import (
	"net/url"
	"strings"
	"testing"
)

// A nextRecordsUrl comes from the server: whatever it says, the bearer
// token is only ever sent to the instance.
func FuzzSameOrigin(f *testing.F) {
	for _, s := range []string{"/services/data/v59.0/query/01g5g0000000001AAA-2000", "https://evil.example.com/x",
		"//evil.example.com/x", "services/data", "https://acme.my.salesforce.com/services/data/x", "x:y", "/\\evil"} {
		f.Add(s)
	}
	c := &Connector{cfg: Config{InstanceURL: "https://acme.my.salesforce.com"}}
	f.Fuzz(func(t *testing.T, next string) {
		out, err := c.sameOrigin(next)
		if err != nil {
			return
		}
		u, err := url.Parse(out)
		if err != nil {
			return // the request fails to build; nothing is sent
		}
		if !strings.EqualFold(u.Host, "acme.my.salesforce.com") || u.Scheme != "https" {
			t.Fatalf("sameOrigin(%q) = %q leaves the instance", next, out)
		}
	})
}

func FuzzParseStamp(f *testing.F) {
	for _, s := range []string{"2024-05-01T10:00:00.000+0000", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00+0200", "garbage"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := parseStamp(s)
		if err != nil {
			return
		}
		var c cursor
		c.advance(ts, "001")
		if !c.seen(ts, "001") || c.seen(ts, "002") {
			t.Fatalf("cursor at %v: %+v", ts, c)
		}
	})
}
