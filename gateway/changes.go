package gateway

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
	"slices"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2/simplelru"
)

// changeTracker tells which fields of a record changed since the version
// this gateway instance saw before. It remembers, per tenant that has live
// clients, a hash of every field of the most recent version of up to
// perTenant records (least recently changed forgotten first). A record it
// has not seen — its first version, or one forgotten, or one that changed
// while the tenant had no clients — has unknown changes: nil, never a
// guess. Fields are the record's top-level fields and, one level down, the
// keys of extras as "extras.<key>"; a field that disappears counts as
// changed.
//
// Safe for concurrent use.
type changeTracker struct {
	perTenant int
	seed      maphash.Seed

	mu      sync.Mutex
	tenants map[string]*lru.LRU[recordKey, []fieldHash]
	names   map[string]string // interned field names
}

type recordKey struct{ entity, id string }

type fieldHash struct {
	name string
	h    uint64
}

// maxInternedNames bounds the interned field names; beyond it names are
// kept as decoded.
const maxInternedNames = 4096

func newChangeTracker(perTenant int) *changeTracker {
	return &changeTracker{perTenant: perTenant, seed: maphash.MakeSeed(),
		tenants: map[string]*lru.LRU[recordKey, []fieldHash]{}, names: map[string]string{}}
}

// observe records the new version of a record (data is the CloudEvent's
// data, a JSON object) and returns the names of the fields that differ from
// the previous version it knew, sorted; nil when it knew none (or data is
// not an object). A deleted record is forgotten: its next version is new.
func (t *changeTracker) observe(tenant, entity, id string, deleted bool, data []byte) []string {
	k := recordKey{entity, id}
	if deleted {
		t.mu.Lock()
		if c := t.tenants[tenant]; c != nil {
			c.Remove(k)
		}
		t.mu.Unlock()
		return nil
	}
	fields, ok := t.hashFields(data)
	if !ok {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.tenants[tenant]
	if c == nil {
		c, _ = lru.NewLRU[recordKey, []fieldHash](t.perTenant, nil)
		t.tenants[tenant] = c
	}
	for i := range fields {
		fields[i].name = t.intern(fields[i].name)
	}
	prev, known := c.Get(k)
	c.Add(k, fields)
	if !known {
		return nil
	}
	return diffFields(prev, fields)
}

// forget drops what is known of tenant (its last client left: versions
// that arrive meanwhile are not tracked, so what is kept would go stale).
func (t *changeTracker) forget(tenant string) {
	t.mu.Lock()
	delete(t.tenants, tenant)
	t.mu.Unlock()
}

func (t *changeTracker) intern(s string) string {
	if v, ok := t.names[s]; ok {
		return v
	}
	if len(t.names) < maxInternedNames {
		t.names[s] = s
	}
	return s
}

// hashFields decodes one level of the record object (two for extras) and
// hashes each field's raw value, sorted by name.
func (t *changeTracker) hashFields(data []byte) ([]fieldHash, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, false
	}
	out := make([]fieldHash, 0, len(obj)+8)
	for name, raw := range obj {
		if name == "extras" {
			var extras map[string]json.RawMessage
			if json.Unmarshal(raw, &extras) == nil && extras != nil {
				for k, v := range extras {
					out = append(out, fieldHash{"extras." + k, maphash.Bytes(t.seed, bytes.TrimSpace(v))})
				}
				continue
			}
		}
		out = append(out, fieldHash{name, maphash.Bytes(t.seed, bytes.TrimSpace(raw))})
	}
	slices.SortFunc(out, func(a, b fieldHash) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return out, true
}

// diffFields merges two name-sorted lists: a name in one and not the
// other, or with another hash, changed.
func diffFields(prev, cur []fieldHash) []string {
	changed := []string{}
	i, j := 0, 0
	for i < len(prev) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(prev) && prev[i].name < cur[j].name):
			changed = append(changed, prev[i].name)
			i++
		case i == len(prev) || cur[j].name < prev[i].name:
			changed = append(changed, cur[j].name)
			j++
		default:
			if prev[i].h != cur[j].h {
				changed = append(changed, cur[j].name)
			}
			i++
			j++
		}
	}
	return changed
}
