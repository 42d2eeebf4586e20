// Package crmsim stands in for the remote CRMs — Salesforce, HubSpot and
// Dynamics 365 — in connector tests and in `autonomos demo`. A Sim generates
// a deterministic org per system from a seed (accounts, opportunities and
// contacts that point at accounts of the same system, realistic names, money
// with cents, some null optional fields), lets it evolve over time, and
// serves it over HTTP in each system's real wire format: its OAuth token
// endpoint, bearer auth, pagination, incremental filters, deletions, rate
// limit and error bodies. Tests can inject failures (FailNext), expire
// tokens (ExpireTokens), rename fields (RenameField, schema drift), upsert
// and delete records, and count API requests.
//
// # Base URLs
//
// Handler serves one mux; with the simulator at base (e.g. an
// httptest.Server's URL) connectors are configured as follows.
//
//	Salesforce  login_url = instance_url = base+"/salesforce", any api_version vNN.N
//	            POST /services/oauth2/token  (grant_type client_credentials or refresh_token)
//	            GET  /services/data/vNN.N/query?q=SOQL, /queryAll?q=SOQL
//	            GET  /services/data/vNN.N/query/{locator}-{offset}  (nextRecordsUrl, relative to instance_url)
//	            GET  /services/data/vNN.N/sobjects/{Object}/describe, /sobjects/{Object}/{id}
//	HubSpot     base_url = base+"/hubspot"
//	            GET  /crm/v3/objects/{companies|deals|contacts}[/{id}]?limit&after&properties&archived&associations
//	            POST /crm/v3/objects/{object}/search
//	            GET  /crm/v3/properties/{object}
//	            GET  /crm/v4/objects/{object}/{id}/associations/{to}
//	            POST /crm/v4/associations/{object}/{to}/batch/read
//	            POST /oauth/v1/token  (grant_type refresh_token)
//	Dynamics    base_url = base+"/dynamics", scope = base+"/dynamics/.default"
//	            token_url = base+"/dynamics/"+TenantID+"/oauth2/v2.0/token"  (client_credentials)
//	            GET  /api/data/v9.2/{accounts|opportunities|contacts}[({guid})]?$select&$filter&$orderby&$top&$count
//	            GET  /api/data/v9.2/EntityDefinitions(LogicalName='account')[/Attributes]
//
// # Contract
//
// Data is a pure function of Config.Seed and the clock until the first
// Evolve, Put or Delete; Credentials are a function of the seed until
// ExpireTokens. Every change bumps the record's modified stamp (Salesforce
// LastModifiedDate and SystemModstamp, HubSpot hs_lastmodifieddate or, for
// contacts, lastmodifieddate, Dynamics modifiedon) to Config.Now at the
// system's resolution and never backwards, so "modified after the last stamp
// seen" finds every change. Deletions are soft: Salesforce query omits them
// and queryAll returns them with IsDeleted true; HubSpot lists them only with
// archived=true; Dynamics reports them in delta responses as $deletedEntity.
// Pages are served from a snapshot taken by the first request (a Salesforce
// query locator, a Dynamics paging cookie), so paging visits every record of
// the result exactly once even while data changes; HubSpot lists page by id
// and HubSpot search by offset, capped at 10,000 as the real search is. Page
// size is what the client asks for (Sforce-Query-Options: batchSize=N,
// limit=N, Prefer: odata.maxpagesize=N) or Config.PageSize. Requests counts
// API requests only, token requests excluded. Every method of Sim is safe
// for concurrent use, also while the handler is serving.
package crmsim
