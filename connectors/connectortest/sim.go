package connectortest

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomos/autonomos/connectors/crmsim"
)

// SimOptions tune a Sim source. Zero values take the defaults noted.
type SimOptions struct {
	Seed int64
	// Record counts per kind (defaults 12, 15 and 10).
	Accounts, Opportunities, Contacts int
	// PageSize is the connection's page_size (default 5).
	PageSize int
	// Now is the simulator's clock (default frozen at 2024-05-01T10:00:00Z,
	// so every change of a test lands on the same stamp: the hardest case
	// for incremental cursors).
	Now func() time.Time
}

// Sim is a Source backed by the CRM simulator, for one system.
type Sim struct {
	// Sim is the simulator, for connector-specific tests (RenameField…).
	Sim *crmsim.Sim
	// URL is the simulator's base URL.
	URL string

	system   string
	pageSize int
	mu       sync.Mutex
	counts   map[string]int // by kind
	n        int
}

var _ Source = (*Sim)(nil)

// simObject describes a source object of a system: its kind, id field and
// a text field the suite changes.
type simObject struct{ kind, id, text string }

var simObjects = map[string]map[string]simObject{
	crmsim.Salesforce: {
		"Account":     {"account", "Id", "Name"},
		"Opportunity": {"opportunity", "Id", "Name"},
		"Contact":     {"contact", "Id", "LastName"},
	},
	crmsim.HubSpot: {
		"companies": {"account", "hs_object_id", "name"},
		"deals":     {"opportunity", "hs_object_id", "dealname"},
		"contacts":  {"contact", "hs_object_id", "lastname"},
	},
	crmsim.Dynamics: {
		"accounts":      {"account", "accountid", "name"},
		"opportunities": {"opportunity", "opportunityid", "name"},
		"contacts":      {"contact", "contactid", "lastname"},
	},
}

// NewSim starts a simulator behind an httptest server (closed by
// t.Cleanup) and serves system's API from it.
func NewSim(t *testing.T, system string, o SimOptions) *Sim {
	t.Helper()
	if _, ok := simObjects[system]; !ok {
		t.Fatalf("crmsim serves no system %q", system)
	}
	def := func(v, d int) int {
		if v == 0 {
			return d
		}
		return v
	}
	o.Accounts, o.Opportunities, o.Contacts = def(o.Accounts, 12), def(o.Opportunities, 15), def(o.Contacts, 10)
	o.PageSize = def(o.PageSize, 5)
	if o.Now == nil {
		frozen := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
		o.Now = func() time.Time { return frozen }
	}
	sim := crmsim.New(crmsim.Config{Seed: o.Seed, Accounts: o.Accounts, Opportunities: o.Opportunities, Contacts: o.Contacts, Now: o.Now})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &Sim{Sim: sim, URL: srv.URL, system: system, pageSize: o.PageSize,
		counts: map[string]int{"account": max(o.Accounts, 0), "opportunity": max(o.Opportunities, 0), "contact": max(o.Contacts, 0)}}
}

// Config is a connection to the simulated system.
func (s *Sim) Config() map[string]any {
	switch s.system {
	case crmsim.Salesforce:
		return map[string]any{"instance_url": s.URL + "/salesforce", "login_url": s.URL + "/salesforce", "api_version": "v59.0", "page_size": s.pageSize}
	case crmsim.HubSpot:
		return map[string]any{"base_url": s.URL + "/hubspot", "page_size": s.pageSize}
	}
	tenantID := s.Sim.Credentials().Dynamics.TenantID
	return map[string]any{"base_url": s.URL + "/dynamics", "token_url": s.URL + "/dynamics/" + tenantID + "/oauth2/v2.0/token",
		"scope": s.URL + "/dynamics/.default", "page_size": s.pageSize}
}

// Secrets are the simulator's credentials. HubSpot gets its OAuth app (a
// refresh token), so an expired access token can be replaced.
func (s *Sim) Secrets() map[string]string {
	c := s.Sim.Credentials()
	switch s.system {
	case crmsim.Salesforce:
		return map[string]string{"client_id": c.Salesforce.ClientID, "client_secret": c.Salesforce.ClientSecret}
	case crmsim.HubSpot:
		return map[string]string{"client_id": c.HubSpot.ClientID, "client_secret": c.HubSpot.ClientSecret, "refresh_token": c.HubSpot.RefreshToken}
	}
	return map[string]string{"client_id": c.Dynamics.ClientID, "client_secret": c.Dynamics.ClientSecret}
}

func (s *Sim) object(object string) simObject {
	for name, o := range simObjects[s.system] {
		if strings.EqualFold(name, object) {
			return o
		}
	}
	panic(fmt.Sprintf("connectortest: %s has no object %q", s.system, object))
}

// Count is the number of live records of object.
func (s *Sim) Count(object string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[s.object(object).kind]
}

func (s *Sim) next() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return s.n
}

// Modify renames a record, bumping its modified stamp.
func (s *Sim) Modify(object, id string) error {
	o := s.object(object)
	_, err := s.Sim.Put(s.system, object, map[string]any{o.id: id, o.text: fmt.Sprintf("Changed %d", s.next())})
	return err
}

// Create adds a record.
func (s *Sim) Create(object string) (string, error) {
	o := s.object(object)
	id, err := s.Sim.Put(s.system, object, map[string]any{o.text: fmt.Sprintf("Created %d", s.next())})
	if err == nil {
		s.mu.Lock()
		s.counts[o.kind]++
		s.mu.Unlock()
	}
	return id, err
}

// Delete deletes a record as the system does.
func (s *Sim) Delete(object, id string) error {
	o := s.object(object)
	err := s.Sim.Delete(s.system, object, id)
	if err == nil {
		s.mu.Lock()
		s.counts[o.kind]--
		s.mu.Unlock()
	}
	return err
}

// FailNext makes the next n API requests fail with status.
func (s *Sim) FailNext(n, status int) { s.Sim.FailNext(s.system, n, status) }

// ExpireTokens invalidates every issued access token.
func (s *Sim) ExpireTokens() { s.Sim.ExpireTokens() }

// Requests counts API requests to the system.
func (s *Sim) Requests() int { return s.Sim.Requests(s.system) }
