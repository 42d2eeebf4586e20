package match

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/autonomos/autonomos/agents/lexicon"
	"github.com/autonomos/autonomos/agents/shape"
	"github.com/autonomos/autonomos/canonical"
)

// Config holds the decision thresholds.
type Config struct {
	// AutoApply is the confidence from which a proposal may be applied
	// without a person (when autofix is on). Default 0.85.
	AutoApply float64 `yaml:"auto_apply"`
	// Queue is the confidence from which a proposal is queued for review;
	// below it a proposal is rejected. Default 0.60.
	Queue float64 `yaml:"queue"`
	// Margin is how close a runner-up may come to the best candidate
	// before the choice counts as ambiguous (never automatic). Default 0.05.
	Margin float64 `yaml:"margin"`
}

// Defaults fills unset thresholds.
func (c *Config) Defaults() {
	if c.AutoApply == 0 {
		c.AutoApply = 0.85
	}
	if c.Queue == 0 {
		c.Queue = 0.60
	}
	if c.Margin == 0 {
		c.Margin = 0.05
	}
}

// Validate checks the thresholds: 0 < Queue ≤ AutoApply ≤ 1, 0 ≤ Margin < 1.
func (c Config) Validate() error {
	var errs []error
	if c.AutoApply <= 0 || c.AutoApply > 1 {
		errs = append(errs, fmt.Errorf("match.auto_apply: must be in (0, 1], got %v", c.AutoApply))
	}
	if c.Queue <= 0 || c.Queue > 1 {
		errs = append(errs, fmt.Errorf("match.queue: must be in (0, 1], got %v", c.Queue))
	}
	if c.Queue > c.AutoApply {
		errs = append(errs, fmt.Errorf("match.queue: %v must not exceed match.auto_apply %v", c.Queue, c.AutoApply))
	}
	if c.Margin < 0 || c.Margin >= 1 {
		errs = append(errs, fmt.Errorf("match.margin: must be in [0, 1), got %v", c.Margin))
	}
	return errors.Join(errs...)
}

// Decision is what a proposal's confidence calls for.
type Decision string

// Decisions.
const (
	Auto   Decision = "auto"   // apply without a person (when autofix is on)
	Queue  Decision = "queue"  // a person reviews it
	Reject Decision = "reject" // too unsure to propose
)

// Decide maps a confidence to a decision.
func (c Config) Decide(conf float64) Decision {
	switch {
	case conf >= c.AutoApply:
		return Auto
	case conf >= c.Queue:
		return Queue
	}
	return Reject
}

// Field is a source field as the observer saw it.
type Field struct {
	Name    string     `json:"name"`
	Types   shape.Mask `json:"types"`             // every type consistent with all its values
	Samples []string   `json:"samples,omitempty"` // a few distinct values
	Added   bool       `json:"added,omitempty"`   // appeared in the change being repaired
}

// Type is the field's most specific type.
func (f Field) Type() shape.Type { return f.Types.Best() }

// Known is a neighbour from the semantic index: a source field name that
// a mapping (shipped, or a past version) read into Target.
type Known struct {
	Source string `json:"source"`
	Target string `json:"target"`
	System string `json:"system"`
	Object string `json:"object"`
}

// Retyped is a field whose type changed in the change being repaired.
type Retyped struct {
	Field
	From shape.Type `json:"from"`
}

// Input is what the matcher works from.
type Input struct {
	System string
	Spec   canonical.ObjectSpec // the mapping in force
	// Fields are the source object's fields now.
	Fields []Field
	// Removed are the fields the change removed, with the types and
	// samples they had.
	Removed []Field
	// Retyped are fields whose type changed.
	Retyped []Retyped
	// Known are neighbours from the semantic index (for Spec.Entity).
	Known []Known
}

// Need kinds.
const (
	NeedBroken   = "broken"   // the mapped source field disappeared
	NeedRetyped  = "retyped"  // the mapped source field's values no longer fit
	NeedUnmapped = "unmapped" // the canonical field has no source yet
)

// Need is a canonical field that wants a (new) source.
type Need struct {
	Target   string `json:"target"`
	Kind     string `json:"kind"`
	Previous string `json:"previous,omitempty"` // the source field the mapping read
}

// Candidate is one source field proposed for a need.
type Candidate struct {
	Source     string   `json:"source"`
	Confidence float64  `json:"confidence"`
	Reasons    []string `json:"reasons"`
	// Sure is false when something forbids applying it automatically.
	Sure bool `json:"-"`
}

// Proposal is the matcher's answer for one need.
type Proposal struct {
	Need
	Source     string      `json:"source,omitempty"` // the chosen candidate; "" when none
	Confidence float64     `json:"confidence"`
	Reasons    []string    `json:"reasons"`
	Decision   Decision    `json:"decision"`
	Proposer   string      `json:"proposer"`             // matcher, openai, gemini, user
	Candidates []Candidate `json:"candidates,omitempty"` // ranked, best first, at most MaxCandidates
}

// MaxCandidates bounds the candidates kept per proposal.
const MaxCandidates = 3

// Matcher ranks candidates. It is safe for concurrent use; its only state
// is a cache of the compiled trial mappings used to check sample values.
type Matcher struct {
	cfg    Config
	trials sync.Map // entity/target/transforms → *canonical.Mapping or error
}

// New returns a matcher; cfg gets its defaults, then is validated.
func New(cfg Config) (*Matcher, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Matcher{cfg: cfg}, nil
}

// Config returns the matcher's thresholds.
func (m *Matcher) Config() Config { return m.cfg }

// Needs lists the canonical fields that want a source after the change:
// mapped fields whose source was removed (broken) or whose values no
// longer fit (retyped), and — when the change added fields — canonical
// fields the mapping leaves unmapped.
func Needs(in Input) []Need { return needs(in, trialFit) }

func (m *Matcher) needs(in Input) []Need {
	return needs(in, func(e canonical.Entity, fd canonical.Field, ts []canonical.Transform, samples []string) float64 {
		return m.trialFit(e, fd, ts, samples)
	})
}

type fitFunc func(e canonical.Entity, fd canonical.Field, transforms []canonical.Transform, samples []string) float64

func needs(in Input, trialFit fitFunc) []Need {
	removed := map[string]bool{}
	for _, f := range in.Removed {
		removed[f.Name] = true
	}
	retyped := map[string]Retyped{}
	for _, r := range in.Retyped {
		retyped[r.Name] = r
	}
	schema, _ := canonical.SchemaOf(in.Spec.Entity)
	var out []Need
	mapped := map[string]bool{}
	for _, f := range in.Spec.Fields {
		mapped[f.Target] = true
		for _, src := range sourcesOf(f) {
			if removed[src] {
				out = append(out, Need{Target: f.Target, Kind: NeedBroken, Previous: src})
				break
			}
			if r, ok := retyped[src]; ok {
				if fd, ok := schema.Field(f.Target); ok && trialFit(in.Spec.Entity, fd, f.Transforms, r.Samples) < 1 {
					out = append(out, Need{Target: f.Target, Kind: NeedRetyped, Previous: src})
					break
				}
			}
		}
	}
	added := slices.ContainsFunc(in.Fields, func(f Field) bool { return f.Added })
	if added {
		for _, f := range schema.Fields {
			if !mapped[f.Name] {
				out = append(out, Need{Target: f.Name, Kind: NeedUnmapped})
			}
		}
	}
	return out
}

func sourcesOf(f canonical.FieldSpec) []string {
	if f.Source != "" {
		return []string{f.Source}
	}
	return f.Sources
}

// used lists the source fields a spec reads or ignores.
func used(spec canonical.ObjectSpec) map[string]bool {
	u := map[string]bool{}
	for _, f := range spec.Fields {
		for _, s := range sourcesOf(f) {
			u[s] = true
		}
	}
	for _, s := range []string{spec.VersionField, spec.DeletedField} {
		if s != "" {
			u[s] = true
		}
	}
	for _, s := range spec.Ignore {
		u[s] = true
	}
	return u
}

// Match proposes a source for every need, best candidates first. A
// candidate fills at most one need: the strongest pairing wins, and a need
// whose best candidate went elsewhere takes its next one.
func (m *Matcher) Match(in Input) []Proposal {
	needs := m.needs(in)
	if len(needs) == 0 {
		return nil
	}
	u := used(in.Spec)
	removed := map[string]Field{}
	for _, f := range in.Removed {
		removed[f.Name] = f
	}
	retyped := map[string]Retyped{}
	for _, r := range in.Retyped {
		retyped[r.Name] = r
	}
	ranked := make([][]Candidate, len(needs))
	for i, n := range needs {
		var prev *Field
		if f, ok := removed[n.Previous]; ok {
			prev = &f
		} else if r, ok := retyped[n.Previous]; ok {
			f := r.Field
			f.Types = shape.MaskOf(r.From)
			prev = &f
		}
		for _, c := range in.Fields {
			if u[c.Name] || c.Name == n.Previous || isParent(c.Name, u) {
				continue
			}
			if n.Kind == NeedUnmapped && !c.Added {
				continue
			}
			cand := m.score(in, n, prev, c)
			if cand.Confidence > 0 {
				ranked[i] = append(ranked[i], cand)
			}
		}
		sort.SliceStable(ranked[i], func(a, b int) bool {
			if ranked[i][a].Confidence != ranked[i][b].Confidence {
				return ranked[i][a].Confidence > ranked[i][b].Confidence
			}
			return ranked[i][a].Source < ranked[i][b].Source
		})
	}
	// Assign: strongest (need, candidate) pairs first.
	type pair struct {
		need, cand int
		conf       float64
	}
	var pairs []pair
	for i := range ranked {
		for j, c := range ranked[i] {
			pairs = append(pairs, pair{i, j, c.Confidence})
		}
	}
	sort.SliceStable(pairs, func(a, b int) bool {
		if pairs[a].conf != pairs[b].conf {
			return pairs[a].conf > pairs[b].conf
		}
		if pairs[a].need != pairs[b].need {
			return pairs[a].need < pairs[b].need
		}
		return pairs[a].cand < pairs[b].cand
	})
	chosen := make([]int, len(needs))
	for i := range chosen {
		chosen[i] = -1
	}
	taken := map[string]int{} // source → need that took it
	for _, p := range pairs {
		if chosen[p.need] >= 0 {
			continue
		}
		src := ranked[p.need][p.cand].Source
		if _, ok := taken[src]; ok {
			continue
		}
		chosen[p.need] = p.cand
		if p.conf >= m.cfg.Queue {
			taken[src] = p.need // only a proposal that will be made claims its source
		}
	}
	out := make([]Proposal, 0, len(needs))
	for i, n := range needs {
		if n.Kind == NeedUnmapped && (chosen[i] < 0 || ranked[i][chosen[i]].Confidence < m.cfg.Queue) {
			continue // an unmapped field with no good candidate is no news
		}
		p := Proposal{Need: n, Proposer: "matcher", Reasons: []string{}}
		cands := ranked[i]
		if j := chosen[i]; j >= 0 {
			c := cands[j]
			p.Source, p.Confidence, p.Reasons = c.Source, c.Confidence, slices.Clone(c.Reasons)
			// Ambiguity: a runner-up (not taken by another need) too close.
			for k, o := range cands {
				if k == j {
					continue
				}
				if t, ok := taken[o.Source]; ok && t != i {
					continue
				}
				if c.Confidence-o.Confidence < m.cfg.Margin {
					c.Sure = false
					p.Reasons = append(p.Reasons, fmt.Sprintf("ambiguous: %s scores %.2f", o.Source, o.Confidence))
				}
				break
			}
			if !c.Sure && p.Confidence >= m.cfg.AutoApply {
				p.Confidence = round(m.cfg.AutoApply - 0.01)
			}
			// Keep the chosen candidate first, then the others.
			p.Candidates = append(p.Candidates, c)
			for k, o := range cands {
				if k != j && len(p.Candidates) < MaxCandidates {
					p.Candidates = append(p.Candidates, o)
				}
			}
			p.Candidates[0].Confidence = p.Confidence
		} else {
			p.Reasons = append(p.Reasons, "no source field fits")
		}
		p.Decision = m.cfg.Decide(p.Confidence)
		if p.Source == "" {
			p.Decision = Reject
		}
		out = append(out, p)
	}
	return out
}

func isParent(name string, used map[string]bool) bool {
	for u := range used {
		if strings.HasPrefix(u, name+".") {
			return true
		}
	}
	return false
}

// score rates candidate c for need n (prev is the field the mapping read,
// when known).
func (m *Matcher) score(in Input, n Need, prev *Field, c Field) Candidate {
	entity := in.Spec.Entity
	schema, _ := canonical.SchemaOf(entity)
	fd, ok := schema.Field(n.Target)
	if !ok {
		return Candidate{Source: c.Name}
	}
	ctx := string(entity)
	var reasons []string
	sure := true

	// Type and value shape: the canonical engine must read the values.
	var transforms []canonical.Transform
	for _, f := range in.Spec.Fields {
		if f.Target == n.Target {
			transforms = f.Transforms
		}
	}
	fit := maskFit(fd, c.Types)
	if prev != nil && !prev.Types.Empty() && c.Type() == prev.Type() && c.Type() != shape.String && fit < 0.9 {
		fit = 0.9 // same shape as the field it replaces: the old transforms read it
	}
	if len(c.Samples) > 0 {
		tf := m.trialFit(entity, fd, transforms, c.Samples)
		if tf < 1 {
			sure = false
		}
		if tf == 0 {
			return Candidate{Source: c.Name, Reasons: []string{fmt.Sprintf("values such as %q do not read as %s %s", c.Samples[0], fd.Type, fd.Name)}}
		}
		fit *= tf
	}
	if fit == 0 {
		return Candidate{Source: c.Name, Reasons: []string{fmt.Sprintf("a %s field cannot fill %s (%s)", c.Type(), fd.Name, fd.Type)}}
	}

	// Names.
	var name float64
	if prev != nil || n.Previous != "" {
		if s := lexicon.SimilarityIn(n.Previous, c.Name, ctx); s > 0 {
			name = s
			reasons = append(reasons, fmt.Sprintf("name like %s, the field it replaces (%.2f)", n.Previous, s))
		}
	}
	if s := lexicon.SimilarityIn(fd.Name, c.Name, ctx); s > name {
		name = s
		reasons = append(reasons, fmt.Sprintf("name like canonical %s (%.2f)", fd.Name, s))
	}
	var bestKnown float64
	var bestK Known
	for _, k := range in.Known {
		if k.Target != n.Target {
			continue
		}
		if s := lexicon.SimilarityIn(k.Source, c.Name, ctx); s > bestKnown {
			bestKnown, bestK = s, k
		}
	}
	if s := 0.95 * bestKnown; s > name && bestKnown >= 0.5 {
		name = s
		reasons = append(reasons, fmt.Sprintf("like %s, which %s %s maps to %s (%.2f)", bestK.Source, bestK.System, bestK.Object, n.Target, bestKnown))
	}
	conf := name

	// Evidence from the change itself.
	if prev != nil && c.Added && n.Kind != NeedUnmapped {
		conf += (1 - conf) * 0.2
		reasons = append(reasons, fmt.Sprintf("appeared as %s went", n.Previous))
	}
	if prev != nil && sharesValues(prev.Samples, c.Samples) {
		conf += (1 - conf) * 0.5
		reasons = append(reasons, fmt.Sprintf("carries the values %s had", n.Previous))
	}
	conf *= 0.5 + 0.5*fit
	if fit >= 0.9 {
		reasons = append(reasons, fmt.Sprintf("%s values fit %s", c.Type(), fd.Type))
	} else {
		reasons = append(reasons, fmt.Sprintf("%s values fit %s only partly (%.2f)", c.Type(), fd.Type, fit))
	}
	if prev != nil && !prev.Types.Empty() {
		ps := shapeAgreement(prev.Type(), c.Type())
		conf *= 0.8 + 0.2*ps
		if ps < 1 {
			reasons = append(reasons, fmt.Sprintf("was %s, now %s", prev.Type(), c.Type()))
		}
	}
	if !c.Added {
		conf *= 0.85
		reasons = append(reasons, "an existing field, not a new one")
	}
	ref := n.Previous
	if ref == "" {
		ref = fd.Name
	}
	if lexicon.UnitMismatch(ref, c.Name) {
		sure = false
		reasons = append(reasons, fmt.Sprintf("unit or qualifier %v differs from %s", unitWords(ref, c.Name), ref))
	}
	if !sure && conf >= m.cfg.AutoApply {
		conf = m.cfg.AutoApply - 0.01
	}
	return Candidate{Source: c.Name, Confidence: round(math.Max(0, math.Min(1, conf))), Reasons: reasons, Sure: sure}
}

func unitWords(a, b string) []string {
	ua, ub := lexicon.Units(a), lexicon.Units(b)
	var out []string
	for _, u := range append(ua, ub...) {
		if !(slices.Contains(ua, u) && slices.Contains(ub, u)) && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

func round(x float64) float64 { return math.Round(x*1000) / 1000 }

// sharesValues reports whether two sample lists share a distinctive value
// (not a boolean, a tiny number or a one-letter code).
func sharesValues(a, b []string) bool {
	in := map[string]bool{}
	for _, v := range a {
		if distinctive(v) {
			in[strings.ToLower(strings.TrimSpace(v))] = true
		}
	}
	for _, v := range b {
		if in[strings.ToLower(strings.TrimSpace(v))] {
			return true
		}
	}
	return false
}

func distinctive(v string) bool {
	v = strings.TrimSpace(v)
	if len(v) < 3 {
		return false
	}
	switch strings.ToLower(v) {
	case "true", "false", "null", "none", "n/a", "yes", "no":
		return false
	}
	return true
}

// shapeAgreement rates how alike the old and new field's types are.
func shapeAgreement(a, b shape.Type) float64 {
	switch {
	case a == b:
		return 1
	case a.Family() == b.Family():
		return 0.7
	case a == shape.Unknown || b == shape.Unknown:
		return 0.7
	}
	return 0.3
}

// role is what a canonical string field holds, read from its name.
func role(fd canonical.Field) string {
	switch {
	case strings.HasSuffix(fd.Name, "_id"):
		return "id"
	case fd.Name == "phone":
		return "phone"
	}
	return "text"
}

// maskFit rates whether values of these types can fill a canonical field.
func maskFit(fd canonical.Field, m shape.Mask) float64 {
	if m.Empty() {
		return 0.5 // no values seen: neither for nor against
	}
	best := m.Best()
	switch fd.Type {
	case canonical.TypeDecimal, canonical.TypePercent:
		if m.Has(shape.Decimal) {
			return 1
		}
		return 0
	case canonical.TypeInteger:
		switch {
		case m.Has(shape.Integer):
			return 1
		case m.Has(shape.Decimal):
			return 0.4
		}
		return 0
	case canonical.TypeDate:
		switch {
		case m.Has(shape.Date):
			return 1
		case m.Has(shape.DateTime):
			return 0.9
		}
		return 0
	case canonical.TypeEmail:
		if m.Has(shape.Email) {
			return 1
		}
		return 0
	case canonical.TypeURL:
		switch {
		case m.Has(shape.URL):
			return 1
		case best == shape.String:
			return 0.3
		}
		return 0
	case canonical.TypeCurrency:
		if best == shape.String || best == shape.IDLike {
			return 1 // the samples decide
		}
		return 0
	}
	switch role(fd) {
	case "id":
		switch {
		case m.Has(shape.IDLike), m.Has(shape.Integer):
			return 1
		case best == shape.String:
			return 0.4
		}
		return 0.1
	case "phone":
		switch {
		case m.Has(shape.Phone):
			return 1
		case m.Has(shape.Integer):
			return 0.8
		}
		return 0.1
	}
	switch best {
	case shape.String:
		return 1
	case shape.IDLike:
		return 0.5
	case shape.Email, shape.URL, shape.Phone, shape.Integer, shape.Decimal:
		return 0.3
	case shape.Boolean, shape.Array, shape.Object:
		return 0.05
	}
	return 0.2
}

// trialFit runs the canonical engine on each sample as the value of the
// target field (with the given transforms) and returns the fraction that
// map without error. No samples is 1.
func trialFit(e canonical.Entity, fd canonical.Field, transforms []canonical.Transform, samples []string) float64 {
	m, err := trialMapping(e, fd, transforms)
	return fitWith(m, err, samples)
}

func (mt *Matcher) trialFit(e canonical.Entity, fd canonical.Field, transforms []canonical.Transform, samples []string) float64 {
	if len(samples) == 0 {
		return 1
	}
	key, _ := json.Marshal([]any{e, fd.Name, transforms})
	type compiled struct {
		m   *canonical.Mapping
		err error
	}
	v, ok := mt.trials.Load(string(key))
	if !ok {
		m, err := trialMapping(e, fd, transforms)
		v, _ = mt.trials.LoadOrStore(string(key), compiled{m, err})
	}
	c := v.(compiled)
	return fitWith(c.m, c.err, samples)
}

func fitWith(m *canonical.Mapping, err error, samples []string) float64 {
	if len(samples) == 0 {
		return 1
	}
	if err != nil {
		return 0
	}
	ok, n := 0, 0
	for _, s := range samples {
		if strings.TrimSpace(s) == "" {
			continue
		}
		n++
		if _, err := m.Apply(map[string]any{trialSource: s}); err == nil {
			ok++
		}
	}
	if n == 0 {
		return 1
	}
	return float64(ok) / float64(n)
}

const trialSource = "value"

func trialMapping(e canonical.Entity, fd canonical.Field, transforms []canonical.Transform) (*canonical.Mapping, error) {
	schema, _ := canonical.SchemaOf(e)
	x := "x"
	spec := canonical.ObjectSpec{Object: "trial", Entity: e}
	for _, f := range schema.Fields {
		if f.Required && f.Name != fd.Name {
			spec.Fields = append(spec.Fields, canonical.FieldSpec{Target: f.Name, Constant: &x})
		}
	}
	var ts []canonical.Transform
	for _, t := range transforms {
		if t.Name != "concat" {
			ts = append(ts, t)
		}
	}
	spec.Fields = append(spec.Fields, canonical.FieldSpec{Target: fd.Name, Source: trialSource, Transforms: ts})
	return canonical.Compile("trial", spec)
}

// Score rates one named source for one need — the matcher's reading of a
// proposal made elsewhere (an LLM, a person). ok is false when the source
// is not a field the object has, is read by the mapping already, or cannot
// fill the target (its values do not read as the canonical type).
func (m *Matcher) Score(in Input, n Need, source string) (c Candidate, ok bool) {
	u := used(in.Spec)
	if u[source] && source != n.Previous {
		return Candidate{Source: source, Reasons: []string{source + " is read by the mapping already"}}, false
	}
	var field *Field
	for i := range in.Fields {
		if in.Fields[i].Name == source {
			field = &in.Fields[i]
		}
	}
	if field == nil {
		return Candidate{Source: source, Reasons: []string{source + " is not a field of the object"}}, false
	}
	var prev *Field
	for _, f := range in.Removed {
		if f.Name == n.Previous {
			f := f
			prev = &f
		}
	}
	c = m.score(in, n, prev, *field)
	return c, c.Confidence > 0
}
