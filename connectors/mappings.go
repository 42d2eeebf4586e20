package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// StoredMapping is one version of a tenant's mapping in the mappings bucket.
type StoredMapping struct {
	System  string               `json:"system"`
	Spec    canonical.ObjectSpec `json:"spec"`
	Version int                  `json:"version"`
	Author  string               `json:"author"` // shipped, user:<id>, auto
	Reason  string               `json:"reason,omitempty"`
}

// Mappings resolves the mapping of a tenant's source object: the newest
// version in the mappings bucket, else the shipped mapping (version 1).
// It is safe for concurrent use.
type Mappings struct {
	kv      jetstream.KeyValue
	shipped map[string]*canonical.Mapping // system/object

	mu    sync.Mutex
	cache map[string]cachedMapping // tenant.system.object → compiled at revision
}

type cachedMapping struct {
	rev uint64
	m   *canonical.Mapping
}

// NewMappings loads the shipped mapping files from fsys (*.yaml at its root)
// and binds the mappings bucket (kv may be nil: shipped mappings only).
func NewMappings(fsys fs.FS, kv jetstream.KeyValue) (*Mappings, error) {
	files, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, err
	}
	r := &Mappings{kv: kv, shipped: map[string]*canonical.Mapping{}, cache: map[string]cachedMapping{}}
	var errs []error
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, ms, err := canonical.ParseMappingFile(f, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, m := range ms {
			m.Version = 1
			r.shipped[m.System+"/"+m.Object()] = m
		}
	}
	return r, errors.Join(errs...)
}

// Shipped returns every shipped mapping.
func (r *Mappings) Shipped() []*canonical.Mapping {
	out := make([]*canonical.Mapping, 0, len(r.shipped))
	for _, m := range r.shipped {
		out = append(out, m)
	}
	return out
}

func mappingKey(tenant, system, object string) string { return tenant + "." + system + "." + object }

// Get returns the current mapping of a tenant's system and source object.
func (r *Mappings) Get(ctx context.Context, tenant, system, object string) (*canonical.Mapping, error) {
	if r.kv != nil && streams.ValidToken(tenant) && streams.ValidToken(system) {
		k := mappingKey(tenant, system, object)
		e, err := r.kv.Get(ctx, k)
		switch {
		case err == nil:
			r.mu.Lock()
			c, ok := r.cache[k]
			r.mu.Unlock()
			if ok && c.rev == e.Revision() {
				return c.m, nil
			}
			var sm StoredMapping
			if err := json.Unmarshal(e.Value(), &sm); err != nil {
				return nil, fmt.Errorf("mapping %s: %w", k, err)
			}
			m, err := canonical.Compile(sm.System, sm.Spec)
			if err != nil {
				return nil, fmt.Errorf("mapping %s version %d: %w", k, sm.Version, err)
			}
			m.Version = sm.Version
			r.mu.Lock()
			r.cache[k] = cachedMapping{rev: e.Revision(), m: m}
			r.mu.Unlock()
			return m, nil
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, fmt.Errorf("mapping %s: %w", k, err)
		}
	}
	if m, ok := r.shipped[system+"/"+object]; ok {
		return m, nil
	}
	return nil, fmt.Errorf("no mapping for system %q object %q", system, object)
}

// ForEntity returns the mapping of a system whose object produces entity e,
// preferring an object named like the entity (the file source's convention).
func (r *Mappings) ForEntity(ctx context.Context, tenant, system string, e canonical.Entity) (*canonical.Mapping, error) {
	if m, err := r.Get(ctx, tenant, system, string(e)); err == nil {
		return m, nil
	}
	for _, m := range r.shipped {
		if m.System == system && m.Entity() == e {
			return r.Get(ctx, tenant, system, m.Object())
		}
	}
	return nil, fmt.Errorf("no mapping for system %q to entity %s", system, e)
}
