package dynamics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
const System = "dynamics"

// DefaultAPIVersion is the Web API version when config.api_version is not set.
const DefaultAPIVersion = "v9.2"

// DefaultLimits is the request budget of one app user in one org when
// Options gives none: Dataverse allows 6,000 requests per 5 minutes and 52
// concurrent requests per user.
func DefaultLimits() httpx.Limits {
	return httpx.Limits{PerSecond: 15, Burst: 30, Concurrency: 8}
}

// Options tune the connectors a factory builds.
type Options struct {
	// Budgets shares each org's request budget between every connection
	// (and instance) that uses it; nil gives every connector its own.
	Budgets httpx.Budgets
	// Limits size a new budget (default DefaultLimits()).
	Limits httpx.Limits
	// HTTP tunes timeouts and retries.
	HTTP httpx.Config
}

// Factory builds a Dynamics connector with default options.
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
	TokenURL     string
	Scope        string
	APIVersion   string
	Objects      []string
	PageSize     int
	ClientID     string
	ClientSecret string
}

var (
	reEntitySet  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,127}$`)
	reAPIVersion = regexp.MustCompile(`^v\d{1,2}\.\d{1,2}$`)
	canonObjects = map[string]string{"account": "accounts", "opportunity": "opportunities", "contact": "contacts"}
)

// ParseConfig validates a connection's config and secrets: one joined error
// of *canonical.FieldError naming every bad field.
func ParseConfig(c connectors.Connection) (Config, error) {
	s := httpx.NewSettings(c)
	cfg := Config{
		BaseURL:    s.URL("base_url", "", true),
		TokenURL:   s.URL("token_url", "", true),
		APIVersion: s.String("api_version", DefaultAPIVersion),
		Objects:    s.List("objects", []string{"accounts", "opportunities", "contacts"}, canonObjects, reEntitySet.MatchString),
		PageSize:   s.Int("page_size", 1000, 1, 5000),
	}
	cfg.Scope = s.String("scope", "")
	if cfg.Scope == "" && cfg.BaseURL != "" {
		cfg.Scope = cfg.BaseURL + "/.default"
	}
	if cfg.Scope != "" && !strings.HasSuffix(cfg.Scope, "/.default") {
		s.Fail("config.scope", "a client-credentials scope ends in /.default (e.g. https://org.crm.dynamics.com/.default), got %q", cfg.Scope)
	}
	if !reAPIVersion.MatchString(cfg.APIVersion) {
		s.Fail("config.api_version", "want a version like v9.2, got %q", cfg.APIVersion)
	}
	cfg.ClientID = s.Secret("client_id", true)
	cfg.ClientSecret = s.Secret("client_secret", true)
	return cfg, s.Err()
}

// Connector reads one Dataverse org. Use it from one goroutine at a time.
type Connector struct {
	cfg Config
	api *httpx.Client
	log *slog.Logger

	mu         sync.Mutex
	selects    map[string]*selectList // by entity set
	currencies map[string]string      // transactioncurrencyid → ISO code; nil until read
	noCurrency bool                   // the org does not let us read currencies
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
	redact := httpx.NewRedactor(cfg.ClientID, cfg.ClientSecret)
	limits := o.Limits
	if limits == (httpx.Limits{}) {
		limits = DefaultLimits()
	}
	var budget httpx.Budget
	if o.Budgets != nil {
		budget = o.Budgets.Budget(orgKey(cfg), limits)
	} else {
		budget = httpx.NewBudget(limits)
	}
	con := &Connector{cfg: cfg, log: log.With("component", "connector", "system", System, "connection_id", c.ID), selects: map[string]*selectList{}}
	login := httpx.New(httpx.Options{HTTP: d.HTTP, Config: o.HTTP, Redactor: redact})
	tokens := httpx.NewTokens(func(ctx context.Context) (httpx.Token, error) { return con.grant(ctx, login) }, redact)
	con.api = httpx.New(httpx.Options{HTTP: d.HTTP, Config: o.HTTP, Auth: tokens, Budget: budget, Redactor: redact})
	return con, nil
}

// orgKey names a budget: Dataverse limits each user (the app's client id)
// per org, so the key is the org host and a hash of the client id.
func orgKey(cfg Config) string {
	host := cfg.BaseURL
	if u, err := url.Parse(cfg.BaseURL); err == nil {
		host = strings.ToLower(u.Host)
	}
	sum := sha256.Sum256([]byte(cfg.ClientID))
	return System + ":" + host + ":" + hex.EncodeToString(sum[:6])
}

// grant runs the client-credentials grant.
func (c *Connector) grant(ctx context.Context, login *httpx.Client) (httpx.Token, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret}, "scope": {c.cfg.Scope}}
	resp, err := login.Do(ctx, httpx.Request{Method: http.MethodPost, URL: c.cfg.TokenURL,
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

// Objects lists the configured entity sets, in order.
func (c *Connector) Objects() []string { return append([]string(nil), c.cfg.Objects...) }

func (c *Connector) apiURL() string { return c.cfg.BaseURL + "/api/data/" + c.cfg.APIVersion }

func odataHeader(extra ...string) http.Header {
	h := http.Header{"OData-MaxVersion": {"4.0"}, "OData-Version": {"4.0"}}
	if len(extra) > 0 {
		h.Set("Prefer", strings.Join(extra, ","))
	}
	return h
}

// Check gets a token, checks that change tracking is enabled on every
// configured entity and reads one row of each.
func (c *Connector) Check(ctx context.Context) error {
	for _, set := range c.cfg.Objects {
		var def struct {
			ChangeTrackingEnabled *bool `json:"ChangeTrackingEnabled"`
		}
		u := c.apiURL() + "/EntityDefinitions(LogicalName='" + logicalName(set) + "')?$select=ChangeTrackingEnabled"
		if err := c.api.GetJSON(ctx, u, odataHeader(), &def); err != nil {
			return fmt.Errorf("entity definition of %s: %w", set, httpx.Classify(err))
		}
		if def.ChangeTrackingEnabled != nil && !*def.ChangeTrackingEnabled {
			return &connectors.PermanentError{Err: fmt.Errorf("change tracking is disabled on %s; enable it in the table's properties", set)}
		}
		var rows struct {
			Value []map[string]any `json:"value"`
		}
		if err := c.api.GetJSON(ctx, c.apiURL()+"/"+set+"?$select="+primaryKey(set)+"&$top=1", odataHeader(), &rows); err != nil {
			return fmt.Errorf("read %s: %w", set, httpx.Classify(err))
		}
	}
	return nil
}

// knownSets are the logical names of the standard entity sets.
var knownSets = map[string]string{"accounts": "account", "opportunities": "opportunity", "contacts": "contact",
	"leads": "lead", "systemusers": "systemuser", "transactioncurrencies": "transactioncurrency"}

// logicalName is an entity set's table logical name (accounts → account).
func logicalName(set string) string {
	if l, ok := knownSets[set]; ok {
		return l
	}
	switch {
	case strings.HasSuffix(set, "ies"):
		return strings.TrimSuffix(set, "ies") + "y"
	case strings.HasSuffix(set, "ses"):
		return strings.TrimSuffix(set, "es")
	}
	return strings.TrimSuffix(set, "s")
}

// primaryKey is an entity set's primary id attribute (accounts → accountid).
func primaryKey(set string) string { return logicalName(set) + "id" }

// String renders the config without its secrets.
func (c Config) String() string {
	return fmt.Sprintf("dynamics{base_url=%s token_url=%s scope=%s api_version=%s objects=%v page_size=%d secrets=[redacted]}",
		c.BaseURL, c.TokenURL, c.Scope, c.APIVersion, c.Objects, c.PageSize)
}

// LogValue logs the config without its secrets.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }
