package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/autonomos/autonomos/agents/llm"
	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/agents/shape"
	"github.com/autonomos/autonomos/canonical"
)

func request() llm.Request {
	return llm.Request{
		System: "salesforce", Object: "Opportunity", Entity: canonical.OpportunityEntity,
		Needs:   []match.Need{{Target: "amount", Kind: match.NeedBroken, Previous: "Amount"}},
		Fields:  []match.Field{{Name: "Deal_Value__c", Types: shape.MaskOf(shape.Decimal, shape.String), Samples: []string{"185000.5"}, Added: true}},
		Removed: []match.Field{{Name: "Amount", Types: shape.MaskOf(shape.Decimal, shape.String), Samples: []string{"9800"}}},
		Mapping: canonical.ObjectSpec{Object: "Opportunity", Entity: canonical.OpportunityEntity, Fields: []canonical.FieldSpec{{Target: "amount", Source: "Amount"}}},
	}
}

const answer = `{"proposals":[{"target":"amount","source":"Deal_Value__c","confidence":0.92,"reason":"deal value holds the amount"}]}`

// fakeOpenAI speaks the chat completions and embeddings wire format.
func fakeOpenAI(t *testing.T, status *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer sk-test" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"message":"Incorrect API key provided: sk-bad.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
			return
		}
		if s := status.Load(); s == http.StatusTooManyRequests {
			w.Header().Set("x-ratelimit-remaining-requests", "0")
			w.Header().Set("retry-after", "20")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-test on requests per min (RPM): Limit 3, Used 3, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("request body: %v", err)
		}
		switch r.URL.Path {
		case "/v1/chat/completions":
			rf, _ := body["response_format"].(map[string]any)
			js, _ := rf["json_schema"].(map[string]any)
			msgs, _ := body["messages"].([]any)
			if rf["type"] != "json_schema" || js["strict"] != true || js["schema"] == nil || len(msgs) != 2 {
				t.Errorf("chat request %v", body)
			}
			user, _ := msgs[1].(map[string]any)
			if c, _ := user["content"].(string); !strings.Contains(c, "Deal_Value__c") {
				t.Errorf("the prompt lacks the fields: %v", user)
			}
			b, _ := json.Marshal(answer)
			io.WriteString(w, `{"id":"chatcmpl-9abc","object":"chat.completion","created":1715000000,"model":"gpt-4o-mini-2024-07-18",
"choices":[{"index":0,"message":{"role":"assistant","content":`+string(b)+`,"refusal":null},"logprobs":null,"finish_reason":"stop"}],
"usage":{"prompt_tokens":412,"completion_tokens":38,"total_tokens":450},"system_fingerprint":"fp_0aa8d3e20b"}`)
		case "/v1/embeddings":
			in, _ := body["input"].([]any)
			var data []string
			for i := range in {
				data = append(data, `{"object":"embedding","index":`+itoa(i)+`,"embedding":[0.1,`+itoa(i)+`,0.3]}`)
			}
			io.WriteString(w, `{"object":"list","data":[`+strings.Join(data, ",")+`],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"message":"Invalid URL","type":"invalid_request_error","param":null,"code":null}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestOpenAI(t *testing.T) {
	var status atomic.Int32
	srv := fakeOpenAI(t, &status)
	ctx := context.Background()
	o, err := llm.NewOpenAI(llm.OpenAIConfig{APIKey: "sk-test", BaseURL: srv.URL + "/v1"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	got, err := o.Propose(ctx, request())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Target != "amount" || got[0].Source != "Deal_Value__c" || got[0].Confidence != 0.92 {
		t.Fatalf("suggestions %+v", got)
	}
	vecs, err := o.Embed(ctx, []string{"a", "b"})
	if err != nil || len(vecs) != 2 || vecs[1][1] != 1 {
		t.Fatalf("embeddings %v (%v)", vecs, err)
	}

	status.Store(http.StatusTooManyRequests)
	_, err = o.Propose(ctx, request())
	var pe *llm.ProviderError
	if !errors.As(err, &pe) || !pe.RateLimited() || pe.Code != "rate_limit_exceeded" || !llm.IsRateLimited(err) {
		t.Fatalf("429: %v", err)
	}
	status.Store(0)

	bad, _ := llm.NewOpenAI(llm.OpenAIConfig{APIKey: "sk-bad", BaseURL: srv.URL + "/v1"}, srv.Client())
	_, err = bad.Propose(ctx, request())
	if !errors.As(err, &pe) || pe.Status != http.StatusUnauthorized || pe.Code != "invalid_api_key" {
		t.Fatalf("401: %v", err)
	}
}

// fakeGemini speaks the Gemini API's generateContent and
// batchEmbedContents wire format.
func fakeGemini(t *testing.T, status *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("x-goog-api-key") != "gm-test" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`)
			return
		}
		if status.Load() == http.StatusTooManyRequests {
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("request body: %v", err)
		}
		switch r.URL.Path {
		case "/v1beta/models/gemini-2.0-flash:generateContent":
			gc, _ := body["generationConfig"].(map[string]any)
			if gc["responseMimeType"] != "application/json" || gc["responseJsonSchema"] == nil || body["systemInstruction"] == nil || body["contents"] == nil {
				t.Errorf("generateContent request %v", body)
			}
			b, _ := json.Marshal(answer)
			io.WriteString(w, `{"candidates":[{"content":{"parts":[{"text":`+string(b)+`}],"role":"model"},"finishReason":"STOP","index":0}],
"usageMetadata":{"promptTokenCount":402,"candidatesTokenCount":31,"totalTokenCount":433},"modelVersion":"gemini-2.0-flash"}`)
		case "/v1beta/models/text-embedding-004:batchEmbedContents":
			reqs, _ := body["requests"].([]any)
			var es []string
			for i := range reqs {
				es = append(es, `{"values":[0.5,`+itoa(i)+`]}`)
			}
			io.WriteString(w, `{"embeddings":[`+strings.Join(es, ",")+`]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":404,"message":"models/x is not found","status":"NOT_FOUND"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestGemini(t *testing.T) {
	var status atomic.Int32
	srv := fakeGemini(t, &status)
	ctx := context.Background()
	g, err := llm.NewGemini(ctx, llm.GeminiConfig{APIKey: "gm-test", BaseURL: srv.URL}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.Propose(ctx, request())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Source != "Deal_Value__c" {
		t.Fatalf("suggestions %+v", got)
	}
	vecs, err := g.Embed(ctx, []string{"a", "b", "c"})
	if err != nil || len(vecs) != 3 || vecs[2][1] != 2 {
		t.Fatalf("embeddings %v (%v)", vecs, err)
	}

	status.Store(http.StatusTooManyRequests)
	_, err = g.Propose(ctx, request())
	var pe *llm.ProviderError
	if !errors.As(err, &pe) || !pe.RateLimited() || pe.Code != "RESOURCE_EXHAUSTED" {
		t.Fatalf("429: %v", err)
	}
	status.Store(0)

	bad, err := llm.NewGemini(ctx, llm.GeminiConfig{APIKey: "gm-bad", BaseURL: srv.URL}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Propose(ctx, request()); !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
		t.Fatalf("400: %v", err)
	}
}

func TestNoKeyNoProviders(t *testing.T) {
	ps, emb, err := llm.Providers(context.Background(), llm.ConfigFromEnv(func(string) string { return "" }), nil)
	if err != nil || len(ps) != 0 || emb != nil {
		t.Fatalf("providers %v %v %v", ps, emb, err)
	}
}

func TestParseSuggestions(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
		err  bool
	}{
		{"plain", answer, 1, false},
		{"fenced", "```json\n" + answer + "\n```", 1, false},
		{"clamped", `{"proposals":[{"target":"amount","source":"x","confidence":7,"reason":""}]}`, 1, false},
		{"no target dropped", `{"proposals":[{"source":"x","confidence":0.5}]}`, 0, false},
		{"prose", "I think Deal_Value__c", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := llm.ParseSuggestions(tt.in)
			if (err != nil) != tt.err || len(got) != tt.n {
				t.Fatalf("got %+v, %v", got, err)
			}
			for _, s := range got {
				if s.Confidence < 0 || s.Confidence > 1 {
					t.Fatalf("confidence %v", s.Confidence)
				}
			}
		})
	}
}
