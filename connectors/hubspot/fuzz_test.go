package hubspot

import (
	"testing"
	"time"
)

// HubSpot timestamps come from the server (ISO 8601 or epoch millis).
func FuzzParseStamp(f *testing.F) {
	for _, s := range []string{"2024-05-01T10:00:00.000Z", "1714557600000", "2024-05-01T10:00:00Z", "", "x", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := parseStamp(s)
		if err != nil {
			return
		}
		again, err := parseStamp(formatStamp(ts))
		if err != nil || !again.Equal(ts.Truncate(time.Millisecond)) {
			t.Fatalf("%q → %v → %q → %v, %v", s, ts, formatStamp(ts), again, err)
		}
	})
}

func FuzzCursor(f *testing.F) {
	for _, s := range []string{"", `{"v":1,"phase":"search","stamp":"2024-05-01T10:00:00.000Z","ids":["1"]}`, `{"v":2}`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			return
		}
		if _, err := decodeCursor(c.encode()); err != nil {
			t.Fatalf("a cursor does not survive a round trip: %q: %v", c.encode(), err)
		}
	})
}
