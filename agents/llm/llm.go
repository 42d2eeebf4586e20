package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/agents/search"
	"github.com/autonomos/autonomos/canonical"
)

// Request describes one repair for a provider.
type Request struct {
	System string
	Object string
	Entity canonical.Entity
	// Needs are the canonical fields that want a source.
	Needs []match.Need
	// Fields are the source object's fields now (with types and samples).
	Fields []match.Field
	// Removed are the fields that disappeared.
	Removed []match.Field
	// Mapping is the mapping in force.
	Mapping canonical.ObjectSpec
}

// Suggestion is one provider proposal, not yet validated: the caller must
// check it against the canonical model before any use.
type Suggestion struct {
	Target     string  `json:"target"`
	Source     string  `json:"source"` // "" when the provider finds none
	Confidence float64 `json:"confidence"`
	Reason     string  `json:"reason"`
}

// Proposer asks a provider for mapping proposals. Propose is called
// concurrently; it honours ctx (cancel ends the HTTP call) and returns a
// *ProviderError for an error answer of the provider. Nothing to close.
type Proposer interface {
	Name() string
	Propose(ctx context.Context, req Request) ([]Suggestion, error)
}

// ProviderError is an error answer of a provider.
type ProviderError struct {
	Provider string
	Status   int    // HTTP status
	Code     string // the provider's code (rate_limit_exceeded, RESOURCE_EXHAUSTED, ...)
	Message  string
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s: %s", e.Provider, e.Status, e.Code, e.Message)
}

// RateLimited reports whether the provider asked to slow down (429).
func (e *ProviderError) RateLimited() bool { return e.Status == http.StatusTooManyRequests }

// IsRateLimited reports whether err is a provider's 429.
func IsRateLimited(err error) bool {
	var pe *ProviderError
	return errors.As(err, &pe) && pe.RateLimited()
}

const systemPrompt = `You repair data mappings from a CRM's source fields to a canonical model.
A source system changed its schema. For each canonical field listed under "needs", pick the one
source field (from "fields", exactly as spelled there) that now holds that information, or "" when
none does. Use the field names, their types, their sample values and the removed fields for
evidence. Never invent field names. Give a confidence from 0 to 1 and a short reason.
Answer with JSON only: {"proposals":[{"target":"...","source":"...","confidence":0.0,"reason":"..."}]}`

// maxSamples bounds the samples per field sent to a provider.
const maxSamples = 3

// Prompt renders a request as the user message (JSON).
func Prompt(req Request) string {
	type field struct {
		Name    string   `json:"name"`
		Type    string   `json:"type"`
		Samples []string `json:"samples,omitempty"`
		New     bool     `json:"new,omitempty"`
	}
	conv := func(fs []match.Field) []field {
		out := []field{}
		for _, f := range fs {
			s := f.Samples
			if len(s) > maxSamples {
				s = s[:maxSamples]
			}
			out = append(out, field{Name: f.Name, Type: string(f.Type()), Samples: s, New: f.Added})
		}
		return out
	}
	schema, _ := canonical.SchemaOf(req.Entity)
	type need struct {
		Target      string `json:"target"`
		Type        string `json:"type"`
		Description string `json:"description"`
		Previous    string `json:"previous_source,omitempty"`
	}
	var needs []need
	for _, n := range req.Needs {
		fd, _ := schema.Field(n.Target)
		needs = append(needs, need{Target: n.Target, Type: string(fd.Type), Description: fd.Description, Previous: n.Previous})
	}
	mapping := map[string]string{}
	for _, f := range req.Mapping.Fields {
		if f.Source != "" {
			mapping[f.Target] = f.Source
		}
	}
	b, _ := json.MarshalIndent(map[string]any{
		"system": req.System, "object": req.Object, "entity": req.Entity,
		"needs": needs, "fields": conv(req.Fields), "removed": conv(req.Removed), "current_mapping": mapping,
	}, "", " ")
	return string(b)
}

// responseSchema is the JSON schema of an answer.
var responseSchema = json.RawMessage(`{
 "type": "object",
 "properties": {
  "proposals": {
   "type": "array",
   "items": {
    "type": "object",
    "properties": {
     "target": {"type": "string"},
     "source": {"type": "string"},
     "confidence": {"type": "number"},
     "reason": {"type": "string"}
    },
    "required": ["target", "source", "confidence", "reason"],
    "additionalProperties": false
   }
  }
 },
 "required": ["proposals"],
 "additionalProperties": false
}`)

// ParseSuggestions reads a provider's answer: the JSON object of the
// response schema, possibly inside a Markdown code fence. Confidences are
// clamped to [0, 1]; entries without a target are dropped.
func ParseSuggestions(text string) ([]Suggestion, error) {
	t := strings.TrimSpace(text)
	if strings.HasPrefix(t, "```") {
		t = strings.TrimPrefix(t, "```json")
		t = strings.TrimPrefix(t, "```")
		t = strings.TrimSuffix(strings.TrimSpace(t), "```")
	}
	var ans struct {
		Proposals []Suggestion `json:"proposals"`
	}
	dec := json.NewDecoder(strings.NewReader(t))
	if err := dec.Decode(&ans); err != nil {
		return nil, fmt.Errorf("answer is not the expected JSON: %w", err)
	}
	out := make([]Suggestion, 0, len(ans.Proposals))
	for _, s := range ans.Proposals {
		if s.Target == "" {
			continue
		}
		if math.IsNaN(s.Confidence) {
			s.Confidence = 0
		}
		s.Confidence = math.Max(0, math.Min(1, s.Confidence))
		out = append(out, s)
	}
	return out, nil
}

// Config selects the providers; a provider with no API key is off.
type Config struct {
	OpenAI OpenAIConfig `yaml:"openai"`
	Gemini GeminiConfig `yaml:"gemini"`
	// Timeout bounds one provider call. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// ConfigFromEnv reads OPENAI_API_KEY, OPENAI_BASE_URL, GEMINI_API_KEY and
// GEMINI_BASE_URL through getenv (os.Getenv).
func ConfigFromEnv(getenv func(string) string) Config {
	return Config{
		OpenAI: OpenAIConfig{APIKey: getenv("OPENAI_API_KEY"), BaseURL: getenv("OPENAI_BASE_URL")},
		Gemini: GeminiConfig{APIKey: getenv("GEMINI_API_KEY"), BaseURL: getenv("GEMINI_BASE_URL")},
	}
}

// Providers builds the configured proposers and an embedder (the first
// configured provider's); with no key, none — never an error.
func Providers(ctx context.Context, cfg Config, hc *http.Client) ([]Proposer, search.Embedder, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Timeout}
	}
	var ps []Proposer
	var emb search.Embedder
	var errs []error
	if cfg.OpenAI.APIKey != "" {
		o, err := NewOpenAI(cfg.OpenAI, hc)
		if err != nil {
			errs = append(errs, err)
		} else {
			ps = append(ps, o)
			emb = o
		}
	}
	if cfg.Gemini.APIKey != "" {
		g, err := NewGemini(ctx, cfg.Gemini, hc)
		if err != nil {
			errs = append(errs, err)
		} else {
			ps = append(ps, g)
			if emb == nil {
				emb = g
			}
		}
	}
	return ps, emb, errors.Join(errs...)
}
