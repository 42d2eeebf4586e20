package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/genai"

	"github.com/autonomos/autonomos/agents/search"
)

// GeminiConfig configures the Gemini provider (Gemini API backend).
type GeminiConfig struct {
	APIKey string `yaml:"-"`
	// BaseURL is the API root, default https://generativelanguage.googleapis.com/.
	BaseURL string `yaml:"base_url"`
	// Model, default gemini-2.0-flash.
	Model string `yaml:"model"`
	// EmbeddingModel, default text-embedding-004.
	EmbeddingModel string `yaml:"embedding_model"`
}

// Gemini proposes mappings with generateContent (JSON output with a
// response schema) and embeds texts. It is safe for concurrent use.
type Gemini struct {
	client   *genai.Client
	model    string
	embModel string
}

var (
	_ Proposer        = (*Gemini)(nil)
	_ search.Embedder = (*Gemini)(nil)
)

// NewGemini returns the provider; hc carries the calls. The SDK's own
// retries are off: a 429 comes back as a *ProviderError at once.
func NewGemini(ctx context.Context, cfg GeminiConfig, hc *http.Client) (*Gemini, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("gemini: no API key")
	}
	if cfg.Model == "" {
		cfg.Model = "gemini-2.0-flash"
	}
	if cfg.EmbeddingModel == "" {
		cfg.EmbeddingModel = "text-embedding-004"
	}
	cc := &genai.ClientConfig{APIKey: cfg.APIKey, Backend: genai.BackendGeminiAPI, HTTPClient: hc,
		HTTPOptions: genai.HTTPOptions{BaseURL: cfg.BaseURL}}
	c, err := genai.NewClient(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("gemini: %w", err)
	}
	return &Gemini{client: c, model: cfg.Model, embModel: cfg.EmbeddingModel}, nil
}

// Name is "gemini".
func (g *Gemini) Name() string { return "gemini" }

// Propose asks for proposals in the response schema.
func (g *Gemini) Propose(ctx context.Context, req Request) ([]Suggestion, error) {
	var schema map[string]any
	_ = json.Unmarshal(responseSchema, &schema)
	delete(schema, "additionalProperties")
	if items, ok := schema["properties"].(map[string]any)["proposals"].(map[string]any)["items"].(map[string]any); ok {
		delete(items, "additionalProperties")
	}
	temp := float32(0)
	resp, err := g.client.Models.GenerateContent(ctx, g.model, genai.Text(Prompt(req)), &genai.GenerateContentConfig{
		SystemInstruction:  genai.NewContentFromText(systemPrompt, genai.RoleUser),
		Temperature:        &temp,
		ResponseMIMEType:   "application/json",
		ResponseJsonSchema: schema,
	})
	if err != nil {
		return nil, geminiError(err)
	}
	if len(resp.Candidates) == 0 {
		reason := ""
		if resp.PromptFeedback != nil {
			reason = string(resp.PromptFeedback.BlockReason)
		}
		return nil, fmt.Errorf("gemini: an answer without candidates %s", reason)
	}
	s, err := ParseSuggestions(resp.Text())
	if err != nil {
		return nil, fmt.Errorf("gemini: %w", err)
	}
	return s, nil
}

// Embed returns one embedding per text.
func (g *Gemini) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	contents := make([]*genai.Content, len(texts))
	for i, t := range texts {
		contents[i] = genai.NewContentFromText(t, genai.RoleUser)
	}
	resp, err := g.client.Models.EmbedContent(ctx, g.embModel, contents, nil)
	if err != nil {
		return nil, geminiError(err)
	}
	if len(resp.Embeddings) != len(texts) {
		return nil, fmt.Errorf("gemini: %d embeddings for %d texts", len(resp.Embeddings), len(texts))
	}
	out := make([][]float32, len(texts))
	for i, e := range resp.Embeddings {
		if e == nil {
			return nil, fmt.Errorf("gemini: no embedding for text %d", i)
		}
		out[i] = e.Values
	}
	return out, nil
}

func geminiError(err error) error {
	var ae genai.APIError
	if errors.As(err, &ae) {
		return &ProviderError{Provider: "gemini", Status: ae.Code, Code: ae.Status, Message: ae.Message}
	}
	return fmt.Errorf("gemini: %w", err)
}
