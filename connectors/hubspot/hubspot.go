package hubspot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/httpx"
)

// System is the connector's system name (and its mapping file's).
const System = "hubspot"

// DefaultBaseURL is the API root when config.base_url is not set.
const DefaultBaseURL = "https://api.hubapi.com"

// DefaultLimits is the request budget of one app when Options gives none:
// HubSpot allows a private app 100 requests per 10 seconds (more on higher
// tiers) and its search endpoints about 5 per second.
func DefaultLimits() httpx.Limits {
	return httpx.Limits{PerSecond: 4, Burst: 10, Concurrency: 4}
}

// Options tune the connectors a factory builds.
type Options struct {
	// Budgets shares each app's request budget between every connection
	// (and instance) that uses it; nil gives every connector its own.
	Budgets httpx.Budgets
	// Limits size a new budget (default DefaultLimits()).
	Limits httpx.Limits
	// HTTP tunes timeouts and retries.
	HTTP httpx.Config
	// Settle is how long a change waits before the search may return it
	// (default DefaultSettle; negative: no wait). HubSpot indexes changes
	// for search a few seconds after they happen; searching up to "now"
	// could pass over a change not indexed yet and never see it.
	Settle time.Duration
}

// DefaultSettle is the default Options.Settle.
const DefaultSettle = 15 * time.Second

// Factory builds a HubSpot connector with default options.
func Factory(c connectors.Connection, d connectors.Deps) (connectors.Connector, error) {
	return NewFactory(Options{})(c, d)
}

// NewFactory returns a factory building connectors with o.
func NewFactory(o Options) connectors.Factory {
	return func(c connectors.Connection, d connectors.Deps) (connectors.Connector, error) {
		return New(c, d, o)
	}
}

// Config is a connection's validated settings.
type Config struct {
	BaseURL      string
	Objects      []string
	PageSize     int
	AccessToken  string
	ClientID     string
	ClientSecret string
	RefreshToken string
}

// objects are the supported CRM objects, with their modified-stamp property.
var objects = map[string]string{"companies": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate", "contacts": "lastmodifieddate"}

var canonObjects = map[string]string{"account": "companies", "opportunity": "deals", "contact": "contacts",
	"companies": "companies", "deals": "deals", "contacts": "contacts", "company": "companies", "deal": "deals"}

// ParseConfig validates a connection's config and secrets: one joined error
// of *canonical.FieldError naming every bad field.
func ParseConfig(c connectors.Connection) (Config, error) {
	s := httpx.NewSettings(c)
	cfg := Config{
		BaseURL:  s.URL("base_url", DefaultBaseURL, false),
		Objects:  s.List("objects", []string{"companies", "deals", "contacts"}, canonObjects, func(o string) bool { _, ok := objects[o]; return ok }),
		PageSize: s.Int("page_size", 100, 1, 100),
	}
	cfg.AccessToken = s.Secret("access_token", false)
	cfg.ClientID = s.Secret("client_id", false)
	cfg.ClientSecret = s.Secret("client_secret", false)
	cfg.RefreshToken = s.Secret("refresh_token", false)
	oauth := cfg.ClientID != "" || cfg.ClientSecret != "" || cfg.RefreshToken != ""
	switch {
	case cfg.AccessToken != "" && oauth:
		s.Fail("secrets.access_token", "give either access_token (a private app) or client_id, client_secret and refresh_token (an OAuth app), not both")
	case cfg.AccessToken == "" && !oauth:
		s.Fail("secrets.access_token", "required (or client_id, client_secret and refresh_token of an OAuth app)")
	case oauth:
		for _, kv := range [][2]string{{"client_id", cfg.ClientID}, {"client_secret", cfg.ClientSecret}, {"refresh_token", cfg.RefreshToken}} {
			if kv[1] == "" {
				s.Fail("secrets."+kv[0], "required with an OAuth app")
			}
		}
	}
	return cfg, s.Err()
}

// Connector reads one HubSpot account. Use it from one goroutine at a time.
type Connector struct {
	cfg    Config
	api    *httpx.Client
	log    *slog.Logger
	settle time.Duration
	now    func() time.Time

	mu    sync.Mutex
	props map[string][]string // by object
}

var _ connectors.Connector = (*Connector)(nil)

// New validates c and returns its connector; it does not call the source.
func New(c connectors.Connection, d connectors.Deps, o Options) (*Connector, error) {
	cfg, err := ParseConfig(c)
	if err != nil {
		return nil, err
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	redact := httpx.NewRedactor(cfg.AccessToken, cfg.ClientID, cfg.ClientSecret, cfg.RefreshToken)
	limits := o.Limits
	if limits == (httpx.Limits{}) {
		limits = DefaultLimits()
	}
	var budget httpx.Budget
	if o.Budgets != nil {
		budget = o.Budgets.Budget(appKey(cfg), limits)
	} else {
		budget = httpx.NewBudget(limits)
	}
	settle := o.Settle
	switch {
	case settle == 0:
		settle = DefaultSettle
	case settle < 0:
		settle = 0
	}
	con := &Connector{cfg: cfg, log: log.With("component", "connector", "system", System, "connection_id", c.ID),
		settle: settle, now: time.Now, props: map[string][]string{}}
	var auth httpx.Auth = httpx.Static(cfg.AccessToken)
	if cfg.AccessToken == "" {
		login := httpx.New(httpx.Options{HTTP: d.HTTP, Config: o.HTTP, Redactor: redact})
		auth = httpx.NewTokens(func(ctx context.Context) (httpx.Token, error) { return con.grant(ctx, login) }, redact)
	}
	con.api = httpx.New(httpx.Options{HTTP: d.HTTP, Config: o.HTTP, Auth: auth, Budget: budget, Redactor: redact})
	return con, nil
}

// appKey names a budget: HubSpot limits each app, so the key is the API
// host and a hash of the app's credential (never the credential).
func appKey(cfg Config) string {
	cred := cfg.AccessToken
	if cred == "" {
		cred = cfg.ClientID
	}
	sum := sha256.Sum256([]byte(cred))
	host := cfg.BaseURL
	if u, err := url.Parse(cfg.BaseURL); err == nil {
		host = strings.ToLower(u.Host)
	}
	return System + ":" + host + ":" + hex.EncodeToString(sum[:6])
}

// grant exchanges the OAuth app's refresh token for an access token.
func (c *Connector) grant(ctx context.Context, login *httpx.Client) (httpx.Token, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret}, "refresh_token": {c.cfg.RefreshToken}}
	resp, err := login.Do(ctx, httpx.Request{Method: http.MethodPost, URL: c.cfg.BaseURL + "/oauth/v1/token",
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, Body: []byte(form.Encode())})
	if err != nil {
		return httpx.Token{}, httpx.Classify(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := resp.JSON(&tok); err != nil || tok.AccessToken == "" {
		return httpx.Token{}, &connectors.PermanentError{Err: errors.New("token response without an access_token")}
	}
	t := httpx.Token{Value: tok.AccessToken}
	if tok.ExpiresIn > 0 {
		t.Expiry = time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return t, nil
}

// Objects lists the configured objects, in order.
func (c *Connector) Objects() []string { return append([]string(nil), c.cfg.Objects...) }

// Check reads one record of every configured object.
func (c *Connector) Check(ctx context.Context) error {
	for _, obj := range c.cfg.Objects {
		var out listResult
		if err := c.api.GetJSON(ctx, c.cfg.BaseURL+"/crm/v3/objects/"+obj+"?limit=1", nil, &out); err != nil {
			return fmt.Errorf("list %s: %w", obj, httpx.Classify(err))
		}
	}
	return nil
}

// String renders the config without its secrets.
func (c Config) String() string {
	return fmt.Sprintf("hubspot{base_url=%s objects=%v page_size=%d secrets=[redacted]}", c.BaseURL, c.Objects, c.PageSize)
}

// LogValue logs the config without its secrets.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }
