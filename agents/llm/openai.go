package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"github.com/autonomos/autonomos/agents/search"
)

// OpenAIConfig configures the OpenAI provider (or any server speaking its
// chat completions API).
type OpenAIConfig struct {
	APIKey string `yaml:"-"`
	// BaseURL is the API root, default https://api.openai.com/v1.
	BaseURL string `yaml:"base_url"`
	// Model, default gpt-4o-mini.
	Model string `yaml:"model"`
	// EmbeddingModel, default text-embedding-3-small.
	EmbeddingModel string `yaml:"embedding_model"`
}

// OpenAI proposes mappings with chat completions (structured JSON output)
// and embeds texts. It is safe for concurrent use.
type OpenAI struct {
	client   *openai.Client
	model    string
	embModel string
}

var (
	_ Proposer        = (*OpenAI)(nil)
	_ search.Embedder = (*OpenAI)(nil)
)

// NewOpenAI returns the provider; hc carries the calls.
func NewOpenAI(cfg OpenAIConfig, hc *http.Client) (*OpenAI, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("openai: no API key")
	}
	c := openai.DefaultConfig(cfg.APIKey)
	if cfg.BaseURL != "" {
		c.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	}
	if hc != nil {
		c.HTTPClient = hc
	}
	if cfg.Model == "" {
		cfg.Model = "gpt-4o-mini"
	}
	if cfg.EmbeddingModel == "" {
		cfg.EmbeddingModel = string(openai.SmallEmbedding3)
	}
	return &OpenAI{client: openai.NewClientWithConfig(c), model: cfg.Model, embModel: cfg.EmbeddingModel}, nil
}

// Name is "openai".
func (o *OpenAI) Name() string { return "openai" }

// Propose asks for proposals in the response schema.
func (o *OpenAI) Propose(ctx context.Context, req Request) ([]Suggestion, error) {
	resp, err := o.client.CreateChatCompletion(ctx, openai.ChatCompletionRequest{
		Model:       o.model,
		Temperature: 0,
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: systemPrompt},
			{Role: openai.ChatMessageRoleUser, Content: Prompt(req)},
		},
		ResponseFormat: &openai.ChatCompletionResponseFormat{
			Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{
				Name: "mapping_proposals", Schema: responseSchema, Strict: true,
			},
		},
	})
	if err != nil {
		return nil, openAIError(err)
	}
	if len(resp.Choices) == 0 {
		return nil, errors.New("openai: an answer without choices")
	}
	ch := resp.Choices[0]
	if ch.Message.Refusal != "" {
		return nil, fmt.Errorf("openai: refused: %s", ch.Message.Refusal)
	}
	s, err := ParseSuggestions(ch.Message.Content)
	if err != nil {
		return nil, fmt.Errorf("openai: %w", err)
	}
	return s, nil
}

// Embed returns one embedding per text.
func (o *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	resp, err := o.client.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{Input: texts, Model: openai.EmbeddingModel(o.embModel)})
	if err != nil {
		return nil, openAIError(err)
	}
	out := make([][]float32, len(texts))
	for _, d := range resp.Data {
		if d.Index < 0 || d.Index >= len(out) {
			return nil, fmt.Errorf("openai: embedding index %d out of range", d.Index)
		}
		out[d.Index] = d.Embedding
	}
	for i, v := range out {
		if v == nil {
			return nil, fmt.Errorf("openai: no embedding for text %d", i)
		}
	}
	return out, nil
}

func openAIError(err error) error {
	var ae *openai.APIError
	if errors.As(err, &ae) {
		code := fmt.Sprint(ae.Code)
		if ae.Code == nil {
			code = ae.Type
		}
		return &ProviderError{Provider: "openai", Status: ae.HTTPStatusCode, Code: code, Message: ae.Message}
	}
	var re *openai.RequestError
	if errors.As(err, &re) {
		return &ProviderError{Provider: "openai", Status: re.HTTPStatusCode, Message: strings.TrimSpace(string(re.Body))}
	}
	return fmt.Errorf("openai: %w", err)
}
