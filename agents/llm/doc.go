// Package llm holds the optional LLM proposers and embedders: OpenAI
// (github.com/sashabaranov/go-openai, chat completions with a strict JSON
// schema, embeddings) and Gemini (google.golang.org/genai, generateContent
// with a JSON response schema, embedContent). Each is on only when its API
// key is configured, and each base URL is configurable, so tests run them
// against local servers speaking the provider's wire format.
//
// Contract and invariants: a provider's answer is a Suggestion, never a
// decision — the caller validates every suggestion against the canonical
// model (the target is a field that needs a source, the source is a field
// the object has, the patched mapping compiles and reads the sample
// values) before it may count, and a provider's confidence never lifts a
// proposal past validation. An error answer of a provider is a
// *ProviderError (429 is RateLimited); the caller falls back to the
// built-in matcher. With no key there are no providers, never an error.
package llm
