package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/agents/search"
	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/config"
	"github.com/autonomos/autonomos/connectors"
)

// BenchCase is one labelled drift case (a JSON file of the corpus; see
// testdata/drift/README.md).
type BenchCase struct {
	ID          string                `json:"id"`
	Description string                `json:"description"`
	Kind        string                `json:"kind"` // rename, case, prefix, type, split, merge, custom, removal
	System      string                `json:"system"`
	Object      string                `json:"object"`
	Entity      canonical.Entity      `json:"entity"`
	Mapping     *canonical.ObjectSpec `json:"mapping,omitempty"` // nil: the shipped mapping of system and object
	Old         []map[string]any      `json:"old"`
	New         []map[string]any      `json:"new"`
	// Expected maps each new source field to the canonical field it should
	// fill; empty ("none" in the file) when nothing should be mapped.
	Expected map[string]string `json:"-"`
}

// UnmarshalJSON reads a case, accepting "none" for expected and a single
// record for old and new.
func (c *BenchCase) UnmarshalJSON(b []byte) error {
	type plain BenchCase
	var raw struct {
		plain
		Old      json.RawMessage `json:"old"`
		New      json.RawMessage `json:"new"`
		Expected json.RawMessage `json:"expected"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = BenchCase(raw.plain)
	var err error
	if c.Old, err = records(raw.Old); err != nil {
		return fmt.Errorf("old: %w", err)
	}
	if c.New, err = records(raw.New); err != nil {
		return fmt.Errorf("new: %w", err)
	}
	var none string
	if json.Unmarshal(raw.Expected, &none) == nil {
		if none != "none" {
			return fmt.Errorf(`expected: want an object or "none", got %q`, none)
		}
		c.Expected = map[string]string{}
		return nil
	}
	if err := json.Unmarshal(raw.Expected, &c.Expected); err != nil || c.Expected == nil {
		return fmt.Errorf(`expected: want an object or "none"`)
	}
	return nil
}

func records(b json.RawMessage) ([]map[string]any, error) {
	if len(b) == 0 {
		return nil, errors.New("missing")
	}
	var one map[string]any
	if err := drift.UnmarshalRecords(b, &one); err == nil && one != nil {
		return []map[string]any{one}, nil
	}
	var many []map[string]any
	if err := drift.UnmarshalRecords(b, &many); err != nil {
		return nil, err
	}
	if len(many) == 0 {
		return nil, errors.New("no records")
	}
	return many, nil
}

// BenchConfig configures BenchDrift.
type BenchConfig struct {
	Match match.Config `yaml:"match"`
	// Verbose fills BenchResult.Details with every case's outcome.
	Verbose bool `yaml:"-"`
}

// BenchResult is the score of the built-in matcher on a corpus. Proposal
// counts are per proposal (one per canonical field that wants a source).
type BenchResult struct {
	Cases int `json:"cases"`
	// Top1 is the fraction of cases whose proposals at or above the queue
	// threshold are exactly the expected mapping (none for "none").
	Top1             float64 `json:"top1"`
	AutoApplied      int     `json:"auto_applied"`       // proposals at or above the auto threshold
	WrongAutoApplies int     `json:"wrong_auto_applies"` // of those, not in the expected mapping
	Queued           int     `json:"queued"`             // proposals between the thresholds
	Rejected         int     `json:"rejected"`           // proposals below the queue threshold (or without a source)
	// Details, with BenchConfig.Verbose: every case.
	Details []BenchDetail `json:"details,omitempty"`
}

// BenchDetail is one case's outcome.
type BenchDetail struct {
	ID        string            `json:"id"`
	Correct   bool              `json:"correct"`
	Expected  map[string]string `json:"expected"`
	Got       map[string]string `json:"got"` // source → target of proposals at or above the queue threshold
	Proposals []match.Proposal  `json:"proposals"`
}

// LoadBenchCases reads every *.json case of dir, sorted by file name.
func LoadBenchCases(dir string) ([]BenchCase, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.json cases in %s", dir)
	}
	sort.Strings(files)
	var out []BenchCase
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var c BenchCase
		if err := json.Unmarshal(b, &c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		if c.ID == "" {
			c.ID = strings.TrimSuffix(filepath.Base(f), ".json")
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// BenchDrift scores the built-in matcher on the corpus in dir: each case's
// old and new samples go through the observer's change detection
// (drift.Compare), then the matcher proposes against the case's mapping
// (or the shipped one) with the shipped mappings of every system as its
// semantic neighbours.
func BenchDrift(dir string, cfg BenchConfig) (BenchResult, error) {
	cases, err := LoadBenchCases(dir)
	if err != nil {
		return BenchResult{}, err
	}
	m, err := match.New(cfg.Match)
	if err != nil {
		return BenchResult{}, err
	}
	shipped, err := connectors.NewMappings(config.MappingFS(), nil)
	if err != nil {
		return BenchResult{}, fmt.Errorf("shipped mappings: %w", err)
	}
	index := search.New(shipped.Shipped(), nil, nil) // the live neighbours: shipped mappings, no tenant history
	res := BenchResult{Cases: len(cases)}
	correct := 0
	for _, c := range cases {
		spec, err := caseSpec(shipped, c)
		if err != nil {
			return res, fmt.Errorf("case %s: %w", c.ID, err)
		}
		props := BenchPropose(m, c, spec, index.Known("", spec.Entity))
		got := map[string]string{}
		for _, p := range props {
			switch p.Decision {
			case match.Auto:
				res.AutoApplied++
				if c.Expected[p.Source] != p.Target {
					res.WrongAutoApplies++
				}
			case match.Queue:
				res.Queued++
			default:
				res.Rejected++
			}
			if p.Decision != match.Reject {
				got[p.Source] = p.Target
			}
		}
		ok := equalMaps(got, c.Expected)
		if ok {
			correct++
		}
		if cfg.Verbose {
			res.Details = append(res.Details, BenchDetail{ID: c.ID, Correct: ok, Expected: c.Expected, Got: got, Proposals: props})
		}
	}
	if res.Cases > 0 {
		res.Top1 = float64(correct) / float64(res.Cases)
	}
	return res, nil
}

func caseSpec(shipped *connectors.Mappings, c BenchCase) (canonical.ObjectSpec, error) {
	if c.Mapping != nil {
		spec := *c.Mapping
		if spec.Entity == "" {
			spec.Entity = c.Entity
		}
		if spec.Object == "" {
			spec.Object = c.Object
		}
		if _, err := canonical.Compile(c.System, spec); err != nil {
			return spec, fmt.Errorf("mapping: %w", err)
		}
		return spec, nil
	}
	mp, err := shipped.Get(context.Background(), "", c.System, c.Object)
	if err != nil {
		return canonical.ObjectSpec{}, err
	}
	if c.Entity != "" && mp.Entity() != c.Entity {
		return canonical.ObjectSpec{}, fmt.Errorf("entity %s, but the shipped mapping of %s %s makes %s", c.Entity, c.System, c.Object, mp.Entity())
	}
	return mp.Spec, nil
}

// BenchPropose runs one case through change detection and the matcher.
func BenchPropose(m *match.Matcher, c BenchCase, spec canonical.ObjectSpec, known []match.Known) []match.Proposal {
	fp, ch := drift.Compare(c.Old, c.New)
	if ch == nil {
		return nil
	}
	return m.Match(MatchInput(c.System, spec, fp, ch.Added, ch.Removed, ch.TypeChanged, known))
}

// MatchInput builds the matcher's input from a fingerprint after a change.
func MatchInput(system string, spec canonical.ObjectSpec, fp *drift.Fingerprint, added, removed []match.Field, retyped []drift.TypeChange, known []match.Known) match.Input {
	addedSet := map[string]bool{}
	for _, a := range added {
		addedSet[a.Name] = true
	}
	return MatchInputFields(system, spec, fp.MatchFields(addedSet), removed, retyped, known)
}

// MatchInputFields builds the matcher's input from a field list.
func MatchInputFields(system string, spec canonical.ObjectSpec, fields, removed []match.Field, retyped []drift.TypeChange, known []match.Known) match.Input {
	in := match.Input{System: system, Spec: spec, Fields: fields, Removed: removed, Known: known}
	byName := map[string]match.Field{}
	for _, f := range fields {
		byName[f.Name] = f
	}
	for _, t := range retyped {
		f, ok := byName[t.Field]
		if !ok {
			continue
		}
		in.Retyped = append(in.Retyped, match.Retyped{Field: f, From: t.From})
	}
	return in
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
