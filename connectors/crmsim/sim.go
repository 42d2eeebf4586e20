package crmsim

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config sets up a Sim. Zero values take the defaults noted per field.
type Config struct {
	// Seed makes the generated data (ids, names, amounts, stamps relative
	// to Now) and the simulator's credentials repeatable.
	Seed int64 `yaml:"seed"`
	// Accounts, Opportunities and Contacts are the record counts generated
	// per system (defaults 20, 40 and 40; a negative count means none).
	Accounts      int `yaml:"accounts"`
	Opportunities int `yaml:"opportunities"`
	Contacts      int `yaml:"contacts"`
	// PageSize is the page size used when a client does not ask for one
	// (Salesforce batchSize, HubSpot limit, Dynamics odata.maxpagesize;
	// default 100).
	PageSize int `yaml:"page_size"`
	// EvolveRecords is how many records per system each tick of Run
	// modifies (default 3).
	EvolveRecords int `yaml:"evolve_records"`
	// Now is the clock behind every stamp (default time.Now).
	Now func() time.Time `yaml:"-"`
}

// Credentials are what the simulator accepts, per system.
type Credentials struct {
	Salesforce SalesforceCredentials
	HubSpot    HubSpotCredentials
	Dynamics   DynamicsCredentials
}

// SalesforceCredentials are a connected app's consumer key and secret (for
// grant_type=client_credentials) and a refresh token (for
// grant_type=refresh_token).
type SalesforceCredentials struct {
	ClientID, ClientSecret, RefreshToken string
}

// HubSpotCredentials hold a private app access token, used as a bearer
// token directly, and an OAuth app (client id, secret and refresh token) for
// POST /oauth/v1/token. ExpireTokens rotates AccessToken.
type HubSpotCredentials struct {
	AccessToken                          string
	ClientID, ClientSecret, RefreshToken string
}

// DynamicsCredentials are an Entra ID (Azure AD) app registration in a
// tenant, for the client credentials grant. Any scope ending in "/.default"
// is accepted.
type DynamicsCredentials struct {
	TenantID, ClientID, ClientSecret string
}

// ErrNotFound is returned for an unknown system, object, field or record.
var ErrNotFound = errors.New("crmsim: not found")

var systemNames = []string{Salesforce, HubSpot, Dynamics}

// Sim holds three simulated CRM orgs and serves them over HTTP. All methods
// are safe for concurrent use, also while the handler serves requests.
type Sim struct {
	cfg Config
	now func() time.Time
	mux *http.ServeMux

	mu          sync.Mutex
	rng         *mrand.Rand
	sys         map[string]*system
	creds       Credentials
	sfOrg       string
	sfUser      string
	cursors     map[string]*snapshot
	cursorOrder []string
	cursorSeq   int
}

type owner struct{ id, name string }

// system is one simulated org.
type system struct {
	name      string
	tables    []*table
	unit      time.Duration // stamp resolution
	seq       int64         // change sequence (Dynamics delta tokens)
	requests  int
	failN     int
	failCode  int
	tokens    map[string]bool // issued access tokens → still valid
	nextNum   uint64          // id counter
	owners    []owner
	usedNames map[string]bool
}

// snapshot is a result set kept for paging (a Salesforce query locator, a
// Dynamics paging cookie).
type snapshot struct {
	items []any
	path  string // Salesforce: "query" or "queryAll"
	link  string // Dynamics: the request URL without $skiptoken
	ctx   string // Dynamics: @odata.context
	delta string // Dynamics: @odata.deltaLink for the last page
}

const maxCursors = 512

// New generates deterministic data for each system from cfg.Seed.
func New(cfg Config) *Sim {
	cfg.Accounts = countOr(cfg.Accounts, 20)
	cfg.Opportunities = countOr(cfg.Opportunities, 40)
	cfg.Contacts = countOr(cfg.Contacts, 40)
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.EvolveRecords <= 0 {
		cfg.EvolveRecords = 3
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s := &Sim{
		cfg:     cfg,
		now:     now,
		rng:     mrand.New(mrand.NewPCG(uint64(cfg.Seed), 0x5eed)),
		sys:     map[string]*system{},
		cursors: map[string]*snapshot{},
	}
	s.creds = seededCredentials(cfg.Seed)
	for i, name := range systemNames {
		rng := mrand.New(mrand.NewPCG(uint64(cfg.Seed), uint64(i+1)*0x9E3779B97F4A7C15))
		s.sys[name] = s.generate(name, rng)
	}
	sf := s.sys[Salesforce]
	sfr := mrand.New(mrand.NewPCG(uint64(cfg.Seed), 7))
	s.sfOrg = sfID("00D", uint64(sfr.IntN(1<<20)))
	s.sfUser = sf.owners[0].id
	s.mux = s.routes()
	return s
}

func countOr(n, def int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return def
	}
	return n
}

func seededCredentials(seed int64) Credentials {
	r := mrand.New(mrand.NewPCG(uint64(seed), 0xc0ffee))
	word := func(n int) string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	return Credentials{
		Salesforce: SalesforceCredentials{
			ClientID:     "3MVG9" + word(80),
			ClientSecret: fmt.Sprintf("%X", r.Uint64()) + fmt.Sprintf("%X", r.Uint64()),
			RefreshToken: "5Aep861" + word(80),
		},
		HubSpot: HubSpotCredentials{
			AccessToken:  "pat-na1-" + guid(r),
			ClientID:     guid(r),
			ClientSecret: guid(r),
			RefreshToken: "na1-" + word(4) + "-" + guid(r),
		},
		Dynamics: DynamicsCredentials{
			TenantID:     guid(r),
			ClientID:     guid(r),
			ClientSecret: word(8) + "~" + word(31),
		},
	}
}

// Handler serves all three systems on one mux, each under its own prefix:
// /salesforce/..., /hubspot/... and /dynamics/... (see the package doc for
// the base URLs connectors are configured with).
func (s *Sim) Handler() http.Handler { return s.mux }

// Credentials returns the client ids, secrets and tokens the simulator
// accepts now.
func (s *Sim) Credentials() Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creds
}

// Evolve modifies n random live records of every system, and creates a few
// new ones (n/4, at least one), bumping their modified stamps. Stamps come
// from Config.Now and always move forward.
func (s *Sim) Evolve(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range systemNames {
		s.evolve(s.sys[name], n)
	}
}

// Run calls Evolve(Config.EvolveRecords) every period until ctx is done; it
// returns nil then.
func (s *Sim) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("crmsim run: period must be positive, got %s", every)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.Evolve(s.cfg.EvolveRecords)
		}
	}
}

// Delete removes a record the way each system does: Salesforce keeps it for
// queryAll with IsDeleted true, HubSpot archives it (archived=true), and
// Dynamics reports it in delta responses as a $deletedEntity.
func (s *Sim) Delete(system, object, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sys, t, err := s.table(system, object)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", system, object, err)
	}
	r, ok := t.recs[id]
	if !ok {
		return fmt.Errorf("delete %s %s %s: %w", system, object, id, ErrNotFound)
	}
	if r.deleted {
		return nil
	}
	r.deleted = true
	s.touch(sys, r)
	r.deletedAt = r.modified
	return nil
}

// Purge removes a record without a trace any read can see: no IsDeleted
// row, no archived record, no $deletedEntity — as a Salesforce hard delete
// (or an emptied recycle bin), a HubSpot GDPR delete, or a Dynamics delete
// older than the change-tracking window. Only a full read notices it is gone.
func (s *Sim) Purge(system, object, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, t, err := s.table(system, object)
	if err != nil {
		return fmt.Errorf("purge %s %s: %w", system, object, err)
	}
	if _, ok := t.recs[id]; !ok {
		return fmt.Errorf("purge %s %s %s: %w", system, object, id, ErrNotFound)
	}
	delete(t.recs, id)
	t.order = slices.DeleteFunc(t.order, func(o string) bool { return o == id })
	return nil
}

// SetQuietly changes one field of a record (named as served now) without
// bumping its modified stamp, as a Salesforce formula field or a HubSpot
// calculated property changes: incremental reads, which filter on the
// stamp, never see it.
func (s *Sim) SetQuietly(system, object, id, field string, value any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, t, err := s.table(system, object)
	if err != nil {
		return fmt.Errorf("set %s %s: %w", system, object, err)
	}
	r, ok := t.recs[id]
	if !ok {
		return fmt.Errorf("set %s %s %s: %w", system, object, id, ErrNotFound)
	}
	f, ok := t.resolve(field, system == Salesforce)
	if !ok || f.role != roleData {
		return fmt.Errorf("set %s %s field %s: not a plain field of the object", system, object, field)
	}
	val, err := coerce(f.typ, value)
	if err != nil {
		return fmt.Errorf("set %s %s field %s: %w", system, object, field, err)
	}
	r.fields[f.name] = val
	return nil
}

// Put upserts a record given in the system's wire field names as served now
// (after any RenameField). A record whose id field (Id, hs_object_id or id,
// accountid/opportunityid/contactid) names an existing record is updated
// field by field and undeleted; otherwise a record is created, with the given
// id or a new one. The parent account is set through the reference field
// (AccountId, _parentaccountid_value, _parentcustomerid_value) or, for
// HubSpot, the key "associations.companies". A modified stamp in rec is kept;
// without one the stamp is bumped. Fields the object does not have yet are
// added to its schema (schema drift: a new field). Put returns the id.
func (s *Sim) Put(system, object string, rec map[string]any) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sys, t, err := s.table(system, object)
	if err != nil {
		return "", fmt.Errorf("put %s %s: %w", system, object, err)
	}
	fold := system == Salesforce
	idf, _ := t.byRole(roleID)
	var id string
	for k, v := range rec {
		if k == t.current(idf.name) || (fold && strings.EqualFold(k, t.current(idf.name))) || (system == HubSpot && k == "id") {
			if v != nil {
				id = fmt.Sprint(v)
			}
		}
	}
	r, exists := t.recs[id]
	if !exists {
		if id == "" {
			id = s.newID(sys, t, s.rng)
		}
		r = &record{id: id, fields: map[string]any{}, created: s.stamp(sys, time.Time{})}
	}
	var modified time.Time
	for k, v := range rec {
		if system == HubSpot && (k == "id" || k == "associations.companies") {
			if k == "associations.companies" {
				r.ref = fmt.Sprint(v)
			}
			continue
		}
		f, ok := t.resolve(k, fold)
		if !ok {
			f = fieldDef{name: k, typ: inferType(v), native: nativeType(system, inferType(v))}
			t.fields = append(t.fields, f)
		}
		val, err := coerce(f.typ, v)
		if err != nil {
			return "", fmt.Errorf("put %s %s field %s: %w", system, object, k, err)
		}
		switch f.role {
		case roleID:
		case roleRef:
			r.ref = ""
			if val != nil {
				r.ref = val.(string)
			}
		case roleCreated:
			if val != nil {
				r.created = val.(time.Time)
			}
		case roleModified:
			if val != nil {
				modified = val.(time.Time)
			}
		case roleDeleted:
			if b, ok := val.(bool); ok {
				r.deleted = b
			}
		default:
			r.fields[f.name] = val
		}
	}
	if _, deletedGiven := rec[t.current("IsDeleted")]; !deletedGiven {
		r.deleted = false
	}
	if !exists {
		t.recs[id] = r
		t.order = append(t.order, id)
	}
	s.touch(sys, r)
	if !modified.IsZero() {
		r.modified = modified
	}
	return id, nil
}

func nativeType(system string, t valueType) string {
	names := map[string][]string{
		Salesforce: {"string", "id", "double", "int", "picklist", "boolean", "datetime", "date"},
		HubSpot:    {"string", "string", "number", "number", "enumeration", "bool", "datetime", "date"},
		Dynamics:   {"String", "Uniqueidentifier", "Decimal", "Integer", "Picklist", "Boolean", "DateTime", "DateTime"},
	}
	return names[system][t]
}

// RenameField makes later responses carry field old of object under the name
// new (schema drift). The old name is then unknown: Salesforce SOQL naming
// it fails with INVALID_FIELD, Dynamics $select/$filter fail with an OData
// error, and HubSpot silently leaves it out of properties, as each does.
func (s *Sim) RenameField(system, object, old, new string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, t, err := s.table(system, object)
	if err != nil {
		return fmt.Errorf("rename field %s %s: %w", system, object, err)
	}
	fold := system == Salesforce
	f, ok := t.resolve(old, fold)
	if !ok {
		return fmt.Errorf("rename field %s %s %s: %w", system, object, old, ErrNotFound)
	}
	if other, taken := t.resolve(new, fold); taken && other.name != f.name {
		return fmt.Errorf("rename field %s %s %s: %s already exists", system, object, old, new)
	}
	if new == f.name {
		delete(t.renames, f.name)
	} else {
		t.renames[f.name] = new
	}
	return nil
}

// FailNext makes the next n API requests to system (token requests
// excluded) answer status in the system's error shape; 429 and 503 carry
// Retry-After: 1. Status 0 means 429.
func (s *Sim) FailNext(system string, n int, status int) {
	if status == 0 {
		status = http.StatusTooManyRequests
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sys, ok := s.sys[system]; ok {
		sys.failN, sys.failCode = n, status
	}
}

// ExpireTokens invalidates every access token issued so far, and rotates
// the HubSpot private app token (Credentials reports the new one). Requests
// bearing an old token get 401 in the system's error shape; refresh tokens
// and client secrets stay valid.
func (s *Sim) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sys := range s.sys {
		for tok := range sys.tokens {
			sys.tokens[tok] = false
		}
	}
	s.sys[HubSpot].tokens[s.creds.HubSpot.AccessToken] = false
	s.creds.HubSpot.AccessToken = "pat-na1-" + randomGUID()
}

// Requests is the number of API requests (token requests excluded) system
// has received, failed ones included.
func (s *Sim) Requests(system string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sys, ok := s.sys[system]; ok {
		return sys.requests
	}
	return 0
}

// table finds an object by its native name (case-insensitive) or its kind.
func (s *Sim) table(system, object string) (*system, *table, error) {
	sys, ok := s.sys[system]
	if !ok {
		return nil, nil, fmt.Errorf("system %q: %w", system, ErrNotFound)
	}
	for _, t := range sys.tables {
		if strings.EqualFold(t.def.name, object) || strings.EqualFold(t.def.kind, object) {
			return sys, t, nil
		}
	}
	return nil, nil, fmt.Errorf("object %q: %w", object, ErrNotFound)
}

func (sys *system) tableOf(kind string) *table {
	for _, t := range sys.tables {
		if t.def.kind == kind {
			return t
		}
	}
	return nil
}

// stamp is a new modified stamp: now at the system's resolution, and always
// after prev.
func (s *Sim) stamp(sys *system, prev time.Time) time.Time {
	t := s.now().UTC().Truncate(sys.unit)
	if !t.After(prev) {
		t = prev.Add(sys.unit)
	}
	return t
}

// touch records a change to r.
func (s *Sim) touch(sys *system, r *record) {
	r.modified = s.stamp(sys, r.modified)
	sys.seq++
	r.version = sys.seq
}

func (s *Sim) insert(sys *system, t *table, r *record) {
	t.recs[r.id] = r
	t.order = append(t.order, r.id)
	sys.seq++
	r.version = sys.seq
}

// putSnapshot keeps a result set for paging and returns its key. The oldest
// are dropped beyond maxCursors, as real servers expire query cursors.
func (s *Sim) putSnapshot(sn *snapshot) string {
	s.cursorSeq++
	key := fmt.Sprintf("%d", s.cursorSeq)
	s.cursors[key] = sn
	s.cursorOrder = append(s.cursorOrder, key)
	if len(s.cursorOrder) > maxCursors {
		delete(s.cursors, s.cursorOrder[0])
		s.cursorOrder = s.cursorOrder[1:]
	}
	return key
}

// authorize checks the bearer token of an API request: "" when valid, else
// "missing", "expired" or "invalid".
func (s *Sim) authorize(sys *system, r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || tok == "" || !(strings.EqualFold(scheme, "Bearer") || (sys.name == Salesforce && strings.EqualFold(scheme, "OAuth"))) {
		return "missing"
	}
	tok = strings.TrimSpace(tok)
	if sys.name == HubSpot && tok == s.creds.HubSpot.AccessToken {
		return ""
	}
	valid, known := sys.tokens[tok]
	switch {
	case !known:
		return "invalid"
	case !valid:
		return "expired"
	}
	return ""
}

// api wraps an API handler of system: it counts the request, answers an
// injected failure, then checks the bearer token.
func (s *Sim) api(system string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		sys := s.sys[system]
		sys.requests++
		fail := 0
		if sys.failN > 0 {
			sys.failN--
			fail = sys.failCode
		}
		auth := ""
		if fail == 0 {
			auth = s.authorize(sys, r)
		}
		s.mu.Unlock()
		switch {
		case fail != 0:
			if fail == http.StatusTooManyRequests || fail == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "1")
			}
			switch system {
			case Salesforce:
				sfFailure(w, fail)
			case HubSpot:
				hsFailure(w, fail)
			default:
				dynFailure(w, fail)
			}
		case auth != "":
			switch system {
			case Salesforce:
				sfUnauthorized(w)
			case HubSpot:
				hsUnauthorized(w, auth)
			default:
				s.dynUnauthorized(w, r)
			}
		default:
			h(w, r)
		}
	}
}

func (s *Sim) issue(system, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sys[system].tokens[token] = true
}

func (s *Sim) routes() *http.ServeMux {
	mux := http.NewServeMux()
	sf := func(h http.HandlerFunc) http.HandlerFunc { return s.api(Salesforce, h) }
	mux.HandleFunc("POST /salesforce/services/oauth2/token", s.sfToken)
	mux.HandleFunc("GET /salesforce/services/data/{version}/query", sf(s.sfQuery("query")))
	mux.HandleFunc("GET /salesforce/services/data/{version}/queryAll", sf(s.sfQuery("queryAll")))
	mux.HandleFunc("GET /salesforce/services/data/{version}/query/{locator}", sf(s.sfMore))
	mux.HandleFunc("GET /salesforce/services/data/{version}/queryAll/{locator}", sf(s.sfMore))
	mux.HandleFunc("GET /salesforce/services/data/{version}/sobjects/{object}/describe", sf(s.sfDescribe))
	mux.HandleFunc("GET /salesforce/services/data/{version}/sobjects/{object}/{id}", sf(s.sfRetrieve))
	mux.HandleFunc("/salesforce/", sfNotFound)

	hs := func(h http.HandlerFunc) http.HandlerFunc { return s.api(HubSpot, h) }
	mux.HandleFunc("POST /hubspot/oauth/v1/token", s.hsToken)
	mux.HandleFunc("GET /hubspot/crm/v3/objects/{object}", hs(s.hsList))
	mux.HandleFunc("GET /hubspot/crm/v3/objects/{object}/{id}", hs(s.hsGet))
	mux.HandleFunc("POST /hubspot/crm/v3/objects/{object}/search", hs(s.hsSearch))
	mux.HandleFunc("GET /hubspot/crm/v3/properties/{object}", hs(s.hsProperties))
	mux.HandleFunc("GET /hubspot/crm/v4/objects/{object}/{id}/associations/{to}", hs(s.hsAssociations))
	mux.HandleFunc("POST /hubspot/crm/v4/associations/{object}/{to}/batch/read", hs(s.hsAssociationsBatch))
	mux.HandleFunc("/hubspot/", hsNotFound)

	dyn := func(h http.HandlerFunc) http.HandlerFunc { return s.api(Dynamics, h) }
	mux.HandleFunc("POST /dynamics/{tenant}/oauth2/v2.0/token", s.dynToken)
	mux.HandleFunc("GET /dynamics/api/data/{version}/{set}", dyn(s.dynGet))
	mux.HandleFunc("GET /dynamics/api/data/{version}/{set}/Attributes", dyn(s.dynAttributes))
	mux.HandleFunc("/dynamics/", dynNotFound)
	return mux
}

// randomToken is an unguessable token with the given prefix.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func randomGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return formatGUID(b)
}

func formatGUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// guid is a version-4 GUID drawn from r.
func guid(r *mrand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return formatGUID(b)
}
