package salesforce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/httpx"
)

// System is the connector's system name (and its mapping file's).
const System = "salesforce"

// Defaults of the optional config keys.
const (
	DefaultLoginURL   = "https://login.salesforce.com"
	DefaultAPIVersion = "v59.0"
)

// DefaultLimits is the request budget of one org when Options gives none:
// Salesforce counts API calls per org per 24 hours and bounds concurrent
// long-running calls at 25; a steady 10/s stays well inside both.
func DefaultLimits() httpx.Limits {
	return httpx.Limits{PerSecond: 10, Burst: 20, Concurrency: 8}
}

// Options tune the connectors a factory builds.
type Options struct {
	// Budgets shares each org's request budget between every connection
	// (and instance) that calls it; nil gives every connector its own.
	Budgets httpx.Budgets
	// Limits size a new org budget (default DefaultLimits()).
	Limits httpx.Limits
	// HTTP tunes timeouts and retries.
	HTTP httpx.Config
	// Settle, when positive, holds back changes younger than it: a query
	// reads SystemModstamp < now - Settle. Salesforce stamps a record when
	// its transaction starts writing, so a long transaction can commit a
	// record stamped before records already read; a settle window of a
	// minute or two closes that gap at the cost of that much latency.
	// Default 0 (read up to now).
	Settle time.Duration
}

// Factory builds a Salesforce connector with default options: a connector
// of its own budget. Use NewFactory to share budgets.
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
	InstanceURL  string
	LoginURL     string
	APIVersion   string
	Objects      []string
	PageSize     int // 0: the server's default batch size
	ClientID     string
	ClientSecret string
	RefreshToken string
}

var (
	reAPIVersion = regexp.MustCompile(`^v\d{1,3}\.\d{1,2}$`)
	reSObject    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,79}$`)
	canonObjects = map[string]string{"account": "Account", "opportunity": "Opportunity", "contact": "Contact"}
)

// ParseConfig validates a connection's config and secrets: one joined error
// of *canonical.FieldError naming every bad field.
func ParseConfig(c connectors.Connection) (Config, error) {
	s := httpx.NewSettings(c)
	cfg := Config{
		InstanceURL: s.URL("instance_url", "", true),
		LoginURL:    s.URL("login_url", DefaultLoginURL, false),
		APIVersion:  s.String("api_version", DefaultAPIVersion),
		Objects:     s.List("objects", []string{"Account", "Opportunity", "Contact"}, canonObjects, reSObject.MatchString),
		PageSize:    s.Int("page_size", 0, 1, 2000),
	}
	if !reAPIVersion.MatchString(cfg.APIVersion) {
		s.Fail("config.api_version", "want a version like v59.0, got %q", cfg.APIVersion)
	}
	cfg.ClientID = s.Secret("client_id", true)
	cfg.ClientSecret = s.Secret("client_secret", true)
	cfg.RefreshToken = s.Secret("refresh_token", false)
	return cfg, s.Err()
}

// Connector reads one Salesforce org. Use it from one goroutine at a time.
type Connector struct {
	cfg    Config
	api    *httpx.Client
	log    *slog.Logger
	redact *httpx.Redactor
	settle time.Duration
	now    func() time.Time

	mu     sync.Mutex
	fields map[string]*fieldSet // by object, learned from describe
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
	redact := httpx.NewRedactor(cfg.ClientID, cfg.ClientSecret, cfg.RefreshToken)
	login := httpx.New(httpx.Options{HTTP: d.HTTP, Config: o.HTTP, Redactor: redact})
	limits := o.Limits
	if limits == (httpx.Limits{}) {
		limits = DefaultLimits()
	}
	var budget httpx.Budget
	if o.Budgets != nil {
		budget = o.Budgets.Budget(orgKey(cfg.InstanceURL), limits)
	} else {
		budget = httpx.NewBudget(limits)
	}
	con := &Connector{cfg: cfg, log: log.With("component", "connector", "system", System, "connection_id", c.ID),
		redact: redact, settle: max(o.Settle, 0), now: time.Now, fields: map[string]*fieldSet{}}
	tokens := httpx.NewTokens(func(ctx context.Context) (httpx.Token, error) { return con.grant(ctx, login) }, redact)
	con.api = httpx.New(httpx.Options{HTTP: d.HTTP, Config: o.HTTP, Auth: tokens, Budget: budget, Redactor: redact})
	return con, nil
}

// orgKey names an org's budget: its instance host (never a secret).
func orgKey(instance string) string {
	u, err := url.Parse(instance)
	if err != nil {
		return System + ":" + instance
	}
	return System + ":" + strings.ToLower(u.Host)
}

// grant runs the OAuth 2.0 token request: refresh_token when a refresh
// token is configured, client_credentials otherwise.
func (c *Connector) grant(ctx context.Context, login *httpx.Client) (httpx.Token, error) {
	form := url.Values{"client_id": {c.cfg.ClientID}, "client_secret": {c.cfg.ClientSecret}}
	if c.cfg.RefreshToken != "" {
		form.Set("grant_type", "refresh_token")
		form.Set("refresh_token", c.cfg.RefreshToken)
	} else {
		form.Set("grant_type", "client_credentials")
	}
	resp, err := login.Do(ctx, httpx.Request{Method: http.MethodPost, URL: c.cfg.LoginURL + "/services/oauth2/token",
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, Body: []byte(form.Encode())})
	if err != nil {
		return httpx.Token{}, httpx.Classify(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := resp.JSON(&tok); err != nil || tok.AccessToken == "" {
		return httpx.Token{}, &connectors.PermanentError{Err: errors.New("token response without an access_token")}
	}
	// Salesforce does not say when a session expires: the token is used
	// until a 401, then granted anew.
	return httpx.Token{Value: tok.AccessToken}, nil
}

// Objects lists the configured sObjects, in order.
func (c *Connector) Objects() []string { return append([]string(nil), c.cfg.Objects...) }

// Check gets a token and runs a one-row query on every configured object.
func (c *Connector) Check(ctx context.Context) error {
	for _, obj := range c.cfg.Objects {
		var out queryResult
		if err := c.api.GetJSON(ctx, c.queryURL("query", "SELECT Id FROM "+obj+" LIMIT 1"), nil, &out); err != nil {
			return fmt.Errorf("query %s: %w", obj, httpx.Classify(err))
		}
	}
	return nil
}

func (c *Connector) dataURL() string {
	return c.cfg.InstanceURL + "/services/data/" + c.cfg.APIVersion
}

func (c *Connector) queryURL(endpoint, soql string) string {
	return c.dataURL() + "/" + endpoint + "?q=" + url.QueryEscape(soql)
}

func (c *Connector) queryHeader() http.Header {
	h := http.Header{}
	if c.cfg.PageSize > 0 {
		h.Set("Sforce-Query-Options", fmt.Sprintf("batchSize=%d", c.cfg.PageSize))
	}
	return h
}

// String renders the config without its secrets.
func (c Config) String() string {
	return fmt.Sprintf("salesforce{instance_url=%s login_url=%s api_version=%s objects=%v page_size=%d secrets=[redacted]}",
		c.InstanceURL, c.LoginURL, c.APIVersion, c.Objects, c.PageSize)
}

// LogValue logs the config without its secrets.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }
