package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/agents/lexicon"
	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/canonical"
)

// Hit kinds.
const (
	KindField   = "field"   // a canonical field of the ontology
	KindMapping = "mapping" // a source field a mapping version reads into a canonical field
)

// Doc is one indexed entry.
type Doc struct {
	Kind    string
	Tenant  string // "" for what every tenant sees (ontology, shipped mappings)
	Entity  string
	Field   string // the canonical field
	System  string // mappings only
	Object  string // mappings only
	Source  string // mappings only: the source field
	Version int    // mappings only
	Text    string
}

func (d Doc) key() string {
	return strings.Join([]string{d.Kind, d.Tenant, d.Entity, d.Field, d.System, d.Object, d.Source, fmt.Sprint(d.Version)}, "\x00")
}

// Hit is one search result.
type Hit struct {
	Kind    string  `json:"kind"`
	Entity  string  `json:"entity"`
	Field   string  `json:"field"`
	System  string  `json:"system,omitempty"`
	Object  string  `json:"object,omitempty"`
	Source  string  `json:"source,omitempty"`
	Version int     `json:"version,omitempty"`
	Score   float64 `json:"score"`
	Text    string  `json:"text"`
}

// Embedder turns texts into vectors (a provider's embeddings). Embed is
// called concurrently and honours ctx; vectors of one embedder have one
// length.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

type entry struct {
	Doc
	tf   map[string]float64
	vec  []float32 // provider embedding, when computed
	norm float64
}

// Index is the semantic index: the ontology's fields and every mapping
// version's field mappings, searched by TF-IDF over words, synonym
// concepts and character trigrams — and, when an Embedder is set, by
// blending in the provider's embedding similarity. It is safe for
// concurrent use.
type Index struct {
	mu      sync.RWMutex
	entries []*entry
	byKey   map[string]int
	df      map[string]int
	emb     Embedder
	log     *slog.Logger
}

// New returns an index holding the ontology and the shipped mappings.
// emb may be nil (local text vectors only).
func New(shipped []*canonical.Mapping, emb Embedder, log *slog.Logger) *Index {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ix := &Index{byKey: map[string]int{}, df: map[string]int{}, emb: emb, log: log.With("component", "search")}
	for _, e := range canonical.Entities {
		s, _ := canonical.SchemaOf(e)
		for _, f := range s.Fields {
			req := ""
			if f.Required {
				req = ", required"
			}
			ix.Add(Doc{Kind: KindField, Entity: string(e), Field: f.Name,
				Text: fmt.Sprintf("%s.%s (%s%s): %s", e, f.Name, f.Type, req, f.Description)})
		}
	}
	for _, m := range shipped {
		ix.AddMapping("", m.System, m.Spec, m.Version)
	}
	return ix
}

// AddMapping indexes every field mapping of one mapping version.
func (ix *Index) AddMapping(tenant, system string, spec canonical.ObjectSpec, version int) {
	for _, f := range spec.Fields {
		srcs := f.Sources
		if f.Source != "" {
			srcs = []string{f.Source}
		}
		for _, s := range srcs {
			ix.Add(Doc{Kind: KindMapping, Tenant: tenant, Entity: string(spec.Entity), Field: f.Target, System: system,
				Object: spec.Object, Source: s, Version: version,
				Text: fmt.Sprintf("%s %s.%s → %s.%s (mapping version %d)", system, spec.Object, s, spec.Entity, f.Target, version)})
		}
	}
}

// features are a text's weighted terms: words, synonym concepts and
// character trigrams of each word.
func features(text string) map[string]float64 {
	tf := map[string]float64{}
	for _, tok := range strings.FieldsFunc(text, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		for _, w := range lexicon.Words(tok) {
			tf["w:"+w]++
			for _, g := range trigrams(w) {
				tf["g:"+g] += 0.3
			}
		}
		for _, c := range lexicon.Concepts(tok) {
			tf["c:"+c] += 1.5
		}
	}
	return tf
}

func trigrams(w string) []string {
	rs := []rune(" " + w + " ")
	var out []string
	for i := 0; i+3 <= len(rs); i++ {
		out = append(out, string(rs[i:i+3]))
	}
	return out
}

// Add indexes a document (an equal one is kept once).
func (ix *Index) Add(d Doc) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	k := d.key()
	if _, ok := ix.byKey[k]; ok {
		return
	}
	tf := features(d.Text + " " + d.Source + " " + d.Field)
	for t := range tf {
		ix.df[t]++
	}
	ix.byKey[k] = len(ix.entries)
	ix.entries = append(ix.entries, &entry{Doc: d, tf: tf})
}

// Len is the number of indexed documents.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.entries)
}

// MaxK bounds the hits of one search.
const MaxK = 100

// Search returns the k documents (default 10, at most MaxK) a tenant sees
// that are most like q, best first, with scores in (0, 1]. With an
// embedder, the score blends the local similarity with the embedding's;
// when the provider fails, the local score alone answers.
func (ix *Index) Search(ctx context.Context, tenant, q string, k int) ([]Hit, error) {
	if k <= 0 {
		k = 10
	}
	k = min(k, MaxK)
	q = strings.TrimSpace(q)
	if q == "" {
		return []Hit{}, nil
	}
	ix.mu.RLock()
	n := float64(len(ix.entries))
	idf := func(t string) float64 { return math.Log((n+1)/(float64(ix.df[t])+1)) + 1 }
	qtf := features(q)
	qv := map[string]float64{}
	var qn float64
	for t, w := range qtf {
		qv[t] = w * idf(t)
		qn += qv[t] * qv[t]
	}
	qn = math.Sqrt(qn)
	type scored struct {
		e     *entry
		score float64
	}
	var res []scored
	for _, e := range ix.entries {
		if e.Tenant != "" && e.Tenant != tenant {
			continue
		}
		var dot, dn float64
		for t, w := range e.tf {
			v := w * idf(t)
			dn += v * v
			if qw, ok := qv[t]; ok {
				dot += qw * v
			}
		}
		if dot == 0 || qn == 0 || dn == 0 {
			continue
		}
		res = append(res, scored{e, dot / (qn * math.Sqrt(dn))})
	}
	ix.mu.RUnlock()
	if ix.emb != nil && len(res) > 0 {
		if err := ix.blend(ctx, q, tenant, func(e *entry, s float64) {
			for i := range res {
				if res[i].e == e {
					res[i].score = 0.5*res[i].score + 0.5*s
				}
			}
		}); err != nil {
			ix.log.Warn("embedding search failed; local scores only", "error", err)
		}
	}
	sort.SliceStable(res, func(i, j int) bool {
		if res[i].score != res[j].score {
			return res[i].score > res[j].score
		}
		return res[i].e.Text < res[j].e.Text
	})
	out := []Hit{}
	for _, r := range res {
		if len(out) == k {
			break
		}
		d := r.e.Doc
		out = append(out, Hit{Kind: d.Kind, Entity: d.Entity, Field: d.Field, System: d.System, Object: d.Object,
			Source: d.Source, Version: d.Version, Score: math.Round(r.score*1000) / 1000, Text: d.Text})
	}
	return out, nil
}

// blend embeds q and every visible document not embedded yet, and calls
// set with each document's cosine similarity to q.
func (ix *Index) blend(ctx context.Context, q, tenant string, set func(*entry, float64)) error {
	ix.mu.RLock()
	var todo []*entry
	var visible []*entry
	for _, e := range ix.entries {
		if e.Tenant != "" && e.Tenant != tenant {
			continue
		}
		visible = append(visible, e)
		if e.vec == nil {
			todo = append(todo, e)
		}
	}
	ix.mu.RUnlock()
	texts := []string{q}
	for _, e := range todo {
		texts = append(texts, e.Text)
	}
	vecs, err := ix.emb.Embed(ctx, texts)
	if err != nil {
		return err
	}
	if len(vecs) != len(texts) {
		return fmt.Errorf("embedder returned %d vectors for %d texts", len(vecs), len(texts))
	}
	ix.mu.Lock()
	for i, e := range todo {
		e.vec = vecs[i+1]
		e.norm = vnorm(e.vec)
	}
	ix.mu.Unlock()
	qv, qn := vecs[0], vnorm(vecs[0])
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, e := range visible {
		if len(e.vec) != len(qv) || qn == 0 || e.norm == 0 {
			continue
		}
		var dot float64
		for i := range qv {
			dot += float64(qv[i]) * float64(e.vec[i])
		}
		set(e, math.Max(0, dot/(qn*e.norm)))
	}
	return nil
}

func vnorm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// Known lists the neighbours the matcher uses for entity: every source
// field a mapping the tenant sees (shipped, or one of its versions) reads
// into a field of entity.
func (ix *Index) Known(tenant string, entity canonical.Entity) []match.Known {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	seen := map[match.Known]bool{}
	var out []match.Known
	for _, e := range ix.entries {
		if e.Kind != KindMapping || e.Entity != string(entity) || (e.Tenant != "" && e.Tenant != tenant) {
			continue
		}
		k := match.Known{Source: e.Source, Target: e.Field, System: e.System, Object: e.Object}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// storedMapping is the part of connectors.StoredMapping the index reads.
type storedMapping struct {
	System  string               `json:"system"`
	Spec    canonical.ObjectSpec `json:"spec"`
	Version int                  `json:"version"`
}

// Watch indexes every version in the mappings bucket (its whole history)
// and then each new one, until ctx is cancelled (then it returns nil).
// Keys are <tenant>.<system>.<object>.
func (ix *Index) Watch(ctx context.Context, kv jetstream.KeyValue) error {
	w, err := kv.WatchAll(ctx, jetstream.IncludeHistory(), jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("watch mappings: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("mappings watch closed")
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			tenant, _, _ := strings.Cut(e.Key(), ".")
			var sm storedMapping
			if err := json.Unmarshal(e.Value(), &sm); err != nil {
				ix.log.Warn("a mapping version that does not decode", "key", e.Key(), "error", err)
				continue
			}
			ix.AddMapping(tenant, sm.System, sm.Spec, sm.Version)
		}
	}
}
