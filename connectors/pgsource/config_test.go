package pgsource_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/pgsource"
)

func TestConfigDefaults(t *testing.T) {
	cfg, err := pgsource.ParseConfig(connectors.Connection{ID: "Conn-42/x",
		Config:  map[string]any{"tables": `crm.accounts, "CRM"."Big Deals", Contacts`},
		Secrets: map[string]string{"dsn": "postgres://app:s3cr3t-pw@db.example.com/crm"}})
	if err == nil {
		t.Fatal(`"CRM"."Big Deals" has no object name, yet it was accepted`)
	}
	cfg, err = pgsource.ParseConfig(connectors.Connection{ID: "Conn-42/x",
		Config: map[string]any{"tables": []any{"crm.accounts", map[string]any{"table": `"CRM"."Big Deals"`, "object": "deals", "entity": "opportunity"}, "Contacts"},
			"poll_interval": "30s"},
		Secrets: map[string]string{"dsn": "postgres://app:s3cr3t-pw@db.example.com/crm"}})
	if err != nil {
		t.Fatal(err)
	}
	var objects []string
	for _, tb := range cfg.Tables {
		objects = append(objects, tb.Object+"="+tb.Name+"/"+string(tb.Entity))
	}
	if got := strings.Join(objects, " "); got != `accounts=crm.accounts/ deals="CRM"."Big Deals"/opportunity contacts=Contacts/` {
		t.Errorf("tables: %s", got)
	}
	if cfg.Mode != pgsource.ModeCDC || cfg.Slot != "autonomos_conn_42_x" || cfg.Publication != cfg.Slot || cfg.PollColumn != "updated_at" ||
		cfg.PageSize != 1000 || cfg.PollInterval != 30*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
	if s := fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg); strings.Contains(s, "s3cr3t-pw") {
		t.Errorf("a printed config shows the DSN's password: %s", s)
	}
}

func TestConfigErrorsNeverQuoteTheDSN(t *testing.T) {
	for _, dsn := range []string{"postgres://u:hunter2-pw@db:notaport/x", "host=db password=hunter2-pw port=x"} {
		_, err := pgsource.ParseConfig(connectors.Connection{Config: map[string]any{"tables": "a"}, Secrets: map[string]string{"dsn": dsn}})
		if err == nil || !strings.Contains(err.Error(), "secrets.dsn") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("dsn %q: %v", dsn, err)
		}
	}
}
