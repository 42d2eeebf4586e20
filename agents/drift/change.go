package drift

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/autonomos/autonomos/agents/lexicon"
	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/agents/shape"
)

// Severity ranks a change.
type Severity string

// Severities: removed → critical, added+removed → high, type change → high,
// added → medium.
const (
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// TypeChange is a field whose inferred type changed.
type TypeChange struct {
	Field   string     `json:"field"`
	From    shape.Type `json:"from"`
	To      shape.Type `json:"to"`
	Samples []string   `json:"samples,omitempty"` // values of the new type
}

// Rename is a likely rename: a removed and an added field with similar
// names or value shapes.
type Rename struct {
	From  string  `json:"from"`
	To    string  `json:"to"`
	Score float64 `json:"score"`
}

// Change is one schema change of a source object.
type Change struct {
	Added       []match.Field `json:"added"`
	Removed     []match.Field `json:"removed"`
	TypeChanged []TypeChange  `json:"type_changed"`
	Renames     []Rename      `json:"renames"`
	Severity    Severity      `json:"severity"`
	Version     int           `json:"schema_version"` // the fingerprint's version after the change
	FirstSeq    uint64        `json:"first_seq"`      // RAW sequence of the first record showing it
	Started     time.Time     `json:"-"`
}

// Empty reports whether nothing changed.
func (c *Change) Empty() bool {
	return len(c.Added) == 0 && len(c.Removed) == 0 && len(c.TypeChanged) == 0
}

func (c *Change) severity() Severity {
	switch {
	case len(c.Removed) > 0 && len(c.Added) == 0:
		return SeverityCritical
	case len(c.Removed) > 0, len(c.TypeChanged) > 0:
		return SeverityHigh
	}
	return SeverityMedium
}

// Renames pairs removed and added fields that are likely the same field
// renamed: names alike, or the same shape (and values) when the change
// removed and added one field each. Each field is paired at most once, the
// strongest pairs first.
func Renames(removed, added []match.Field) []Rename {
	type cand struct {
		r, a  int
		score float64
	}
	var cs []cand
	oneForOne := len(removed) == 1 && len(added) == 1
	for i, r := range removed {
		for j, a := range added {
			name := lexicon.Similarity(r.Name, a.Name)
			sh := 0.0
			rt, at := r.Types.Best(), a.Types.Best()
			switch {
			case rt == at && rt != shape.Unknown:
				sh = 1
			case rt.Family() == at.Family() && rt != shape.Unknown:
				sh = 0.6
			}
			score := 0.65*name + 0.35*sh
			if sharedValue(r.Samples, a.Samples) {
				score += 0.25
			}
			if oneForOne && sh >= 0.6 {
				score += 0.15
			}
			score = math.Min(1, score)
			if score >= 0.5 {
				cs = append(cs, cand{i, j, math.Round(score*100) / 100})
			}
		}
	}
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].score > cs[b].score })
	usedR, usedA := map[int]bool{}, map[int]bool{}
	out := []Rename{}
	for _, c := range cs {
		if usedR[c.r] || usedA[c.a] {
			continue
		}
		usedR[c.r], usedA[c.a] = true, true
		out = append(out, Rename{From: removed[c.r].Name, To: added[c.a].Name, Score: c.score})
	}
	return out
}

func sharedValue(a, b []string) bool {
	in := map[string]bool{}
	for _, v := range a {
		if len(strings.TrimSpace(v)) >= 3 {
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

// Compare learns a fingerprint from old sample records, then observes the
// new ones against it and judges the change at once — the observer's own
// logic, for benchmarks and previews. Every old value counts as settled
// history, and a single new value against a settled type is a type change.
// It returns the fingerprint after the change and the change (nil when
// the new records fit the old schema).
func Compare(old, new []map[string]any) (*Fingerprint, *Change) {
	now := time.Unix(0, 0).UTC()
	fp := NewFingerprint("bench", "bench", "bench", "bench")
	learnCfg := Config{Window: 1 << 30, MinRecords: 1, TypeEvidence: 1 << 30, LearnValues: 1 << 30, Samples: 5}
	for _, r := range old {
		fp.Observe(r, 0, now, learnCfg)
	}
	judge := Config{Window: len(new) + 1, MinRecords: 1, TypeEvidence: 1, LearnValues: 1, Samples: 5}
	for _, r := range new {
		fp.Observe(r, 0, now, judge)
	}
	return fp, fp.Flush(now, 1, judge)
}
