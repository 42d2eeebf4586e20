package subscriber

import (
	"bytes"
	"hash/maphash"
	"sync/atomic"

	"github.com/autonomos/autonomos/canonical"
)

// ParseCache lets the subscribers of one process share the parse of an
// event: every sink reads the same CANONICAL messages, and decoding one is
// the larger part of what a subscriber spends outside its store. A parse is
// found again by the message's bytes (a hash picks the slot, and the bytes
// must be equal), so a hit is exactly what ParseEvent would return; a slot
// holds the latest message that hashed to it, so a sink that lags the other
// by more than the cache's size parses on its own. Events are shared
// read-only: sinks never modify them. It is safe for concurrent use; the
// nil *ParseCache parses every time.
type ParseCache struct {
	seed   maphash.Seed
	slots  []atomic.Pointer[parsedEvent]
	hits   atomic.Int64
	misses atomic.Int64
}

type parsedEvent struct {
	data []byte
	ev   *canonical.Event
	err  error
}

// NewParseCache returns a cache of size slots (at least 1).
func NewParseCache(size int) *ParseCache {
	return &ParseCache{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[parsedEvent], max(size, 1))}
}

// Parse returns canonical.ParseEvent(data), from the cache when the same
// bytes were parsed lately. data must not be modified afterwards.
func (c *ParseCache) Parse(data []byte) (*canonical.Event, error) {
	if c == nil {
		return canonical.ParseEvent(data)
	}
	slot := &c.slots[maphash.Bytes(c.seed, data)%uint64(len(c.slots))]
	if p := slot.Load(); p != nil && bytes.Equal(p.data, data) {
		c.hits.Add(1)
		return p.ev, p.err
	}
	c.misses.Add(1)
	ev, err := canonical.ParseEvent(data)
	slot.Store(&parsedEvent{data: data, ev: ev, err: err})
	return ev, err
}

// Stats returns how many parses were found in the cache and how many were
// made.
func (c *ParseCache) Stats() (hits, misses int64) {
	if c == nil {
		return 0, 0
	}
	return c.hits.Load(), c.misses.Load()
}
