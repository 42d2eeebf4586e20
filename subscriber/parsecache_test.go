package subscriber_test

import (
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/subscriber"
)

func wire(t *testing.T, id string) []byte {
	t.Helper()
	b, err := upsert(t, "acme", opp(id, "Deal "+id), t0, 1).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A second parse of equal bytes (another sink's copy of the same message) is
// the first one's event; different bytes, even in the same slot, are parsed
// afresh, and every answer equals ParseEvent's.
func TestParseCacheSharesOnlyEqualBytes(t *testing.T) {
	c := subscriber.NewParseCache(1) // one slot: every message collides
	a, b := wire(t, "O-1"), wire(t, "O-2")
	check := func(data []byte) *canonical.Event {
		t.Helper()
		got, err := c.Parse(data)
		want, werr := canonical.ParseEvent(data)
		if fmt.Sprint(err) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("Parse = %+v, %v; ParseEvent = %+v, %v", got, err, want, werr)
		}
		return got
	}
	first := check(a)
	if again := check(append([]byte(nil), a...)); again != first {
		t.Error("equal bytes were parsed again instead of shared")
	}
	if other := check(b); other == first || other.Record.Key() != "O-2" {
		t.Errorf("different bytes in the same slot got %v", other.Record.Key())
	}
	bad := []byte(`{"specversion":"1.0","id":"x"}`)
	check(bad)
	check(bad)
	if hits, misses := c.Stats(); hits != 2 || misses != 3 {
		t.Errorf("stats = %d hits, %d misses; want 2, 3", hits, misses)
	}
	var none *subscriber.ParseCache
	if ev, err := none.Parse(a); err != nil || ev.Record.Key() != "O-1" {
		t.Errorf("nil cache: %v, %v", ev, err)
	}
}

// Two sinks reading the same messages at once, as the subscribers of one
// process do.
func TestParseCacheConcurrentReaders(t *testing.T) {
	c := subscriber.NewParseCache(64)
	msgs := make([][]byte, 500)
	for i := range msgs {
		msgs[i] = wire(t, fmt.Sprintf("O-%d", i))
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i, m := range msgs {
				ev, err := c.Parse(append([]byte(nil), m...))
				if err != nil || ev.Record.Key() != fmt.Sprintf("O-%d", i) {
					t.Errorf("message %d: %v, %v", i, ev, err)
				}
			}
		})
	}
	wg.Wait()
	if hits, misses := c.Stats(); hits+misses != 1000 {
		t.Errorf("%d hits + %d misses, want 1,000 parses", hits, misses)
	}
}
