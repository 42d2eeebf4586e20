package pgsource_test

import (
	"testing"

	"github.com/autonomos/autonomos/connectors/connectortest"
	"github.com/autonomos/autonomos/connectors/pgsource"
	"github.com/autonomos/autonomos/connectors/pgsource/pgsourcetest"
)

var badConfigs = []connectortest.BadConfig{
	{Name: "no tables", Config: map[string]any{"tables": nil}, Field: "config.tables"},
	{Name: "tables not a list", Config: map[string]any{"tables": 7}, Field: "config.tables"},
	{Name: "three-part table name", Config: map[string]any{"tables": []any{"a.b.c"}}, Field: "config.tables"},
	{Name: "table needing an object name", Config: map[string]any{"tables": []any{`"Big Table"`}}, Field: "config.tables"},
	{Name: "one object twice", Config: map[string]any{"tables": []any{"a.accounts", "b.accounts"}}, Field: "config.tables"},
	{Name: "unknown entity", Config: map[string]any{"tables": []any{map[string]any{"table": "accounts", "entity": "invoice"}}}, Field: "config.tables"},
	{Name: "unknown mode", Config: map[string]any{"mode": "stream"}, Field: "config.mode"},
	{Name: "bad slot name", Config: map[string]any{"slot": "My-Slot"}, Field: "config.slot"},
	{Name: "bad publication name", Config: map[string]any{"publication": "x;drop"}, Field: "config.publication"},
	{Name: "page_size zero", Config: map[string]any{"page_size": 0}, Field: "config.page_size"},
	{Name: "poll_interval not a duration", Config: map[string]any{"poll_interval": "soon"}, Field: "config.poll_interval"},
	{Name: "no dsn", Secrets: map[string]string{"dsn": ""}, Field: "secrets.dsn"},
	{Name: "unparseable dsn", Secrets: map[string]string{"dsn": "postgres://u:hunter2@db:notaport/x"}, Field: "secrets.dsn"},
}

func TestConformanceCDC(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		System:  pgsource.System,
		Factory: pgsource.Factory,
		NewSource: func(t *testing.T) connectortest.Source {
			return pgsourcetest.NewSource(t, pgsourcetest.SourceOptions{Cluster: logicalCluster(t)})
		},
		BadConfigs: append(badConfigs,
			connectortest.BadConfig{Name: "deleted_column in cdc mode", Config: map[string]any{"deleted_column": "is_deleted"}, Field: "config.deleted_column"}),
	})
}

func TestConformancePoll(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		System:  pgsource.System,
		Factory: pgsource.Factory,
		NewSource: func(t *testing.T) connectortest.Source {
			return pgsourcetest.NewSource(t, pgsourcetest.SourceOptions{Mode: "poll"})
		},
		BadConfigs: badConfigs,
	})
}
