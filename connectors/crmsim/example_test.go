package crmsim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/autonomos/autonomos/connectors/crmsim"
)

// A connector test starts the simulator behind httptest, logs in with the
// credentials it accepts, and reads records in the real wire format.
func ExampleSim() {
	sim := crmsim.New(crmsim.Config{
		Seed: 1, Accounts: 3, Opportunities: 6, Contacts: 6,
		Now: func() time.Time { return time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC) },
	})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()

	creds := sim.Credentials().Salesforce
	resp, err := http.PostForm(srv.URL+"/salesforce/services/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {creds.ClientID}, "client_secret": {creds.ClientSecret},
	})
	if err != nil {
		panic(err)
	}
	var token struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&token)
	resp.Body.Close()

	soql := "SELECT Id, Name FROM Account WHERE SystemModstamp > 2024-01-01T00:00:00Z ORDER BY Name"
	req, _ := http.NewRequest(http.MethodGet, token.InstanceURL+"/services/data/v59.0/query?q="+url.QueryEscape(soql), nil)
	req.Header.Set("Authorization", "Bearer "+token.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var page struct {
		TotalSize int  `json:"totalSize"`
		Done      bool `json:"done"`
		Records   []struct {
			Attributes struct{ Type string } `json:"attributes"`
			Name       string
		} `json:"records"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&page)
	fmt.Println(resp.StatusCode, page.TotalSize, page.Done)
	for _, r := range page.Records {
		fmt.Println(r.Attributes.Type, r.Name)
	}
	fmt.Println(sim.Requests(crmsim.Salesforce), "API request")
	// Output:
	// 200 2 true
	// Account Dunder Mifflin Corp.
	// Account Relecloud GmbH
	// 1 API request
}
