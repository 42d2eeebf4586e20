package lexicon

import (
	"regexp"
	"strings"
	"unicode"
)

var (
	sfNamespaceRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{1,14}__(.+)$`)
	sfSuffixRE    = regexp.MustCompile(`(?i)__(c|r|pc|s|x)$`)
	dynLookupRE   = regexp.MustCompile(`^_(.+)_value$`)
	publisherRE   = regexp.MustCompile(`^(new|[a-z]{2,8}[0-9][a-z0-9]{0,5})_(.+)$`)
	hubspotRE     = regexp.MustCompile(`(?i)^hs_(.+)$`)
	shortSuffixRE = regexp.MustCompile(`(?i)_c$`)
)

// Strip removes the decorations source systems add to field names:
// Salesforce custom suffixes ("__c") and namespaces ("acme__"), Dynamics
// lookups ("_parentaccountid_value") and publisher prefixes ("new_",
// "cr4f2_"), HubSpot's "hs_" and a trailing "_c". Each segment of a dotted
// path is stripped on its own.
func Strip(name string) string {
	if strings.Contains(name, ".") {
		parts := strings.Split(name, ".")
		for i, p := range parts {
			parts[i] = Strip(p)
		}
		return strings.Join(parts, ".")
	}
	s := name
	for range 3 {
		before := s
		if m := dynLookupRE.FindStringSubmatch(s); m != nil {
			s = m[1]
		}
		if sfSuffixRE.MatchString(s) {
			s = sfSuffixRE.ReplaceAllString(s, "")
			if m := sfNamespaceRE.FindStringSubmatch(s); m != nil {
				s = m[1]
			}
		}
		if m := hubspotRE.FindStringSubmatch(s); m != nil && len(m[1]) > 1 {
			s = m[1]
		}
		if m := publisherRE.FindStringSubmatch(s); m != nil && len(m[2]) > 1 {
			s = m[2]
		}
		if shortSuffixRE.MatchString(s) && len(s) > 3 {
			s = s[:len(s)-2]
		}
		s = strings.Trim(s, "_-. ")
		if s == before {
			break
		}
	}
	if s == "" {
		return name
	}
	return s
}

// Compact is the stripped name in lower case with only letters and digits:
// names equal under Compact differ only in case, separators or decoration.
func Compact(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(Strip(name)) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Words splits a (stripped) name into lower-case words: at separators,
// camelCase humps and letter/digit boundaries, and run-together words by
// the dictionary. Digits-only words are dropped.
func Words(name string) []string {
	var out []string
	raws := splitRaw(Strip(name))
	// Rejoin pieces a camel split tore apart ("LinkedIn", "HeadCount").
	for i := 0; i+1 < len(raws); i++ {
		if j := strings.ToLower(raws[i] + raws[i+1]); words[j] {
			raws = append(raws[:i], append([]string{j}, raws[i+2:]...)...)
		}
	}
	for _, raw := range raws {
		w := strings.ToLower(raw)
		if isDigits(w) {
			continue
		}
		for _, p := range segment(w) {
			out = append(out, singular(p))
		}
	}
	return out
}

func splitRaw(s string) []string {
	var out []string
	rs := []rune(s)
	start := -1
	flush := func(end int) {
		if start >= 0 && end > start {
			out = append(out, string(rs[start:end]))
		}
		start = -1
	}
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush(i)
			continue
		}
		if start < 0 {
			start = i
			continue
		}
		prev := rs[i-1]
		switch {
		case unicode.IsLower(prev) && unicode.IsUpper(r):
			flush(i)
			start = i
		case unicode.IsUpper(prev) && unicode.IsUpper(r) && i+1 < len(rs) && unicode.IsLower(rs[i+1]):
			flush(i)
			start = i
		case unicode.IsDigit(prev) != unicode.IsDigit(r):
			flush(i)
			start = i
		}
	}
	flush(len(rs))
	return out
}

func isDigits(s string) bool {
	for _, r := range s {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return s != ""
}

// segment splits a run-together word into dictionary words when it can be
// covered entirely by words of two letters or more, preferring the fewest
// pieces; otherwise the word stays whole.
func segment(w string) []string {
	if len(w) < 6 || words[w] || len(w) > 64 {
		return []string{w}
	}
	n := len(w)
	const inf = 1 << 30
	best := make([]int, n+1)
	prev := make([]int, n+1)
	for i := 1; i <= n; i++ {
		best[i] = inf
		for j := max(0, i-20); j <= i-2; j++ {
			if best[j] == inf || !words[w[j:i]] {
				continue
			}
			if c := best[j] + 1; c < best[i] {
				best[i], prev[i] = c, j
			}
		}
	}
	if best[n] == inf || best[n] < 2 {
		return []string{w}
	}
	var parts []string
	for i := n; i > 0; i = prev[i] {
		parts = append(parts, w[prev[i]:i])
	}
	for l, r := 0, len(parts)-1; l < r; l, r = l+1, r-1 {
		parts[l], parts[r] = parts[r], parts[l]
	}
	return parts
}

func singular(w string) string {
	if words[w] || len(w) < 4 {
		return w
	}
	if strings.HasSuffix(w, "ies") && words[w[:len(w)-3]+"y"] {
		return w[:len(w)-3] + "y"
	}
	if strings.HasSuffix(w, "s") && words[w[:len(w)-1]] {
		return w[:len(w)-1]
	}
	return w
}

// Concepts returns the concepts a name stands for, in order, without
// repeats: its words with synonyms folded ("DealValue" → opportunity,
// amount; "Telephone1" → phone) and stopwords dropped.
func Concepts(name string) []string {
	var cs []string
	for _, w := range Words(name) {
		if stopwords[w] {
			continue
		}
		if ex, ok := expansions[w]; ok {
			cs = append(cs, ex...)
			continue
		}
		if c, ok := concepts[w]; ok {
			cs = append(cs, c...)
			continue
		}
		cs = append(cs, w)
	}
	// Fold phrases, repeatedly ("job title" → title).
	for changed := true; changed; {
		changed = false
		for i := 0; i+1 < len(cs); i++ {
			if p, ok := phrases[[2]string{cs[i], cs[i+1]}]; ok {
				cs = append(cs[:i], append([]string{p}, cs[i+2:]...)...)
				changed = true
				break
			}
		}
	}
	seen := map[string]bool{}
	out := cs[:0]
	for _, c := range cs {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// Weight is how much a concept counts in a match (weak words such as "id"
// or "name" count less).
func Weight(concept string) float64 {
	if w, ok := weak[concept]; ok {
		return w
	}
	return 1
}

// Overlap is the weighted Dice coefficient of two concept lists.
func Overlap(a, b []string) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	inB := map[string]bool{}
	var wb float64
	for _, c := range b {
		inB[c] = true
		wb += Weight(c)
	}
	var wa, common float64
	for _, c := range a {
		wa += Weight(c)
		if inB[c] {
			common += Weight(c)
		}
	}
	return 2 * common / (wa + wb)
}

// Similarity scores how alike two field names are, in [0, 1]: 1 when they
// differ only in case, separators or decorations, 0.95 when they name the
// same concepts ("Telephone" and "phone"), else the best of the weighted
// concept overlap, character trigram overlap and containment.
func Similarity(a, b string) float64 { return SimilarityIn(a, b) }

// SimilarityIn is Similarity with the context's concepts (such as the
// entity a field belongs to: "opportunity" for a deal's "DealValue")
// dropped from both names, unless a name would be left with nothing.
func SimilarityIn(a, b string, context ...string) float64 {
	ca, cb := Compact(a), Compact(b)
	if ca == "" || cb == "" {
		return 0
	}
	if ca == cb {
		return 1
	}
	ka, kb := without(Concepts(a), context), without(Concepts(b), context)
	if sameSet(ka, kb) && len(ka) > 0 {
		return 0.95
	}
	sim := Overlap(ka, kb)
	if t := 0.9 * Trigram(ca, cb); t > sim {
		sim = t
	}
	short, long := ca, cb
	if len(short) > len(long) {
		short, long = long, short
	}
	if len(short) >= 4 && strings.Contains(long, short) {
		if c := 0.5 + 0.4*float64(len(short))/float64(len(long)); c > sim {
			sim = c
		}
	}
	if sim > 0.94 {
		sim = 0.94 // only equal names or equal concepts score higher
	}
	return sim
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[string]bool{}
	for _, x := range a {
		in[x] = true
	}
	for _, x := range b {
		if !in[x] {
			return false
		}
	}
	return true
}

// Trigram is the Jaccard overlap of the padded character trigrams of two
// strings.
func Trigram(a, b string) float64 {
	ta, tb := trigrams(a), trigrams(b)
	if len(ta) == 0 || len(tb) == 0 {
		return 0
	}
	inter := 0
	for g := range ta {
		if tb[g] {
			inter++
		}
	}
	return float64(inter) / float64(len(ta)+len(tb)-inter)
}

func trigrams(s string) map[string]bool {
	rs := []rune("  " + s + " ")
	out := map[string]bool{}
	for i := 0; i+3 <= len(rs); i++ {
		out[string(rs[i:i+3])] = true
	}
	return out
}

// Units returns the unit or scale words of a name ("cents", "k", "pct",
// "net") — a field carrying one its counterpart lacks holds the value in
// another unit.
func Units(name string) []string {
	var out []string
	for _, w := range Words(name) {
		if units[w] {
			out = append(out, w)
		}
	}
	return out
}

// UnitMismatch reports whether one name carries a unit word the other
// lacks.
func UnitMismatch(a, b string) bool {
	ua, ub := Units(a), Units(b)
	return !sameSet(ua, ub)
}

// without drops the context's concepts from cs, unless none would be left.
func without(cs []string, context []string) []string {
	if len(context) == 0 {
		return cs
	}
	drop := map[string]bool{}
	for _, c := range context {
		for _, k := range Concepts(c) {
			drop[k] = true
		}
	}
	var out []string
	for _, c := range cs {
		if !drop[c] {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return cs
	}
	return out
}
