package pgsource

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/httpx"
)

// Modes.
const (
	ModeCDC  = "cdc"
	ModePoll = "poll"
)

// Defaults of the optional config keys.
const (
	DefaultPollColumn = "updated_at"
	DefaultPageSize   = 1000
	// DefaultPrefix starts the slot and publication names derived from a
	// connection id.
	DefaultPrefix = "autonomos_"
)

// Config is a connection's validated settings.
type Config struct {
	Tables []Table
	// Mode is ModeCDC (logical replication) or ModePoll.
	Mode string
	// Publication and Slot name the publication and the logical
	// replication slot (cdc); both are created when missing.
	Publication, Slot string
	// PollColumn carries a row's modified stamp: the incremental column of
	// poll mode; in cdc mode a delete carries its commit time in this field
	// (when the table has the column), so it orders after the row's last
	// version.
	PollColumn string
	// DeletedColumn, poll mode only, is a boolean column marking soft
	// deleted rows; such rows become deletes. Hard deletes are invisible to
	// poll mode.
	DeletedColumn string
	// PollInterval is how long a caught-up Fetch keeps waiting for new
	// changes before it reports More=false (0: report at once).
	PollInterval time.Duration
	// PageSize bounds the records of a page (snapshot chunk, poll page,
	// stream page).
	PageSize int
	// DSN is the connection string (secret).
	DSN string
}

// String never shows the DSN.
func (c Config) String() string {
	return fmt.Sprintf("pgsource.Config{mode %s, tables %v, slot %s, publication %s}", c.Mode, c.Tables, c.Slot, c.Publication)
}

// GoString never shows the DSN.
func (c Config) GoString() string { return c.String() }

// Table is one configured source table.
type Table struct {
	// Name is the table as configured: "accounts" or "crm.accounts"
	// (SQL identifiers; quote mixed case: `"CRM"."Accounts"`).
	Name string
	// Object is the connector's object name for the table: the mapping's
	// object and the RAW subject token. Default: the table name without
	// schema.
	Object string
	// Entity is the canonical entity the table holds, when configured.
	Entity canonical.Entity
}

var (
	reName   = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
	reObject = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	reIdent  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)
)

// ParseConfig validates a connection's config and secrets: one joined error
// of *canonical.FieldError naming every bad field ("config.<key>",
// "secrets.<key>"). It never quotes the DSN.
func ParseConfig(c connectors.Connection) (Config, error) {
	s := settings{httpx.NewSettings(c)}
	cfg := Config{
		Tables:        s.tables("tables"),
		Mode:          s.String("mode", ModeCDC),
		Publication:   s.String("publication", ""),
		Slot:          s.String("slot", ""),
		PollColumn:    s.String("poll_column", DefaultPollColumn),
		DeletedColumn: s.String("deleted_column", ""),
		PollInterval:  s.Duration("poll_interval", 0, time.Hour),
		PageSize:      s.Int("page_size", DefaultPageSize, 1, 10000),
	}
	if cfg.Mode != ModeCDC && cfg.Mode != ModePoll {
		s.Fail("config.mode", "want cdc or poll, got %q", cfg.Mode)
	}
	def := defaultName(c.ID)
	for _, n := range []struct {
		key string
		v   *string
	}{{"publication", &cfg.Publication}, {"slot", &cfg.Slot}} {
		if *n.v == "" {
			*n.v = def
		} else if !reName.MatchString(*n.v) {
			s.Fail("config."+n.key, "want 1 to 63 of [a-z0-9_], got %q", *n.v)
		}
	}
	for _, n := range []struct{ key, v string }{{"poll_column", cfg.PollColumn}, {"deleted_column", cfg.DeletedColumn}} {
		if n.v != "" && len(n.v) > 63 {
			s.Fail("config."+n.key, "a column name is at most 63 bytes")
		}
	}
	if cfg.DeletedColumn != "" && cfg.Mode != ModePoll {
		s.Fail("config.deleted_column", "only poll mode reads a soft-delete column (cdc sees real deletes)")
	}
	cfg.DSN = strings.TrimSpace(c.Secrets["dsn"])
	if cfg.DSN == "" {
		s.Fail("secrets.dsn", "required (a Postgres URL or key=value connection string)")
	} else if _, err := pgconn.ParseConfig(cfg.DSN); err != nil {
		// The parser's message quotes the string, which may hold a
		// password: say what is wrong without it.
		s.Fail("secrets.dsn", "not a valid Postgres connection string (URL or key=value)")
	}
	return cfg, s.Err()
}

// defaultName derives a slot or publication name from a connection id.
func defaultName(id string) string {
	var b strings.Builder
	b.WriteString(DefaultPrefix)
	for _, r := range strings.ToLower(id) {
		if b.Len() >= 63 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}

// splitName splits a configured table name into its schema ("" when none)
// and table, folding unquoted identifiers to lower case as Postgres does.
func splitName(s string) (schema, table string, err error) {
	var parts []string
	rest := strings.TrimSpace(s)
	for {
		var part string
		if strings.HasPrefix(rest, `"`) {
			i := 1
			var b strings.Builder
			for ; i < len(rest); i++ {
				if rest[i] == '"' {
					if i+1 < len(rest) && rest[i+1] == '"' {
						b.WriteByte('"')
						i++
						continue
					}
					break
				}
				b.WriteByte(rest[i])
			}
			if i >= len(rest) {
				return "", "", errors.New("unterminated quoted identifier")
			}
			part, rest = b.String(), rest[i+1:]
			if part == "" {
				return "", "", errors.New("empty quoted identifier")
			}
		} else {
			end := strings.IndexByte(rest, '.')
			if end < 0 {
				end = len(rest)
			}
			part, rest = rest[:end], rest[end:]
			if !reIdent.MatchString(part) {
				return "", "", fmt.Errorf("%q is not an identifier (quote it)", part)
			}
			part = strings.ToLower(part)
		}
		if len(part) > 63 {
			return "", "", fmt.Errorf("identifier %q is longer than 63 bytes", part)
		}
		parts = append(parts, part)
		if rest == "" {
			break
		}
		if rest[0] != '.' || len(parts) == 2 {
			return "", "", errors.New("want table or schema.table")
		}
		rest = rest[1:]
	}
	if len(parts) == 1 {
		return "", parts[0], nil
	}
	return parts[0], parts[1], nil
}

// settings is the shared config reader with the table list on top.
type settings struct{ *httpx.Settings }

// tables reads the table list: names, or objects {table, object, entity},
// or one comma-separated string of names.
func (s settings) tables(key string) []Table {
	field := "config." + key
	v, ok := s.Raw(key)
	if !ok {
		s.Fail(field, `required: the tables to read, e.g. ["accounts"] or [{"table": "crm.accounts", "entity": "account"}]`)
		return nil
	}
	var items []any
	switch x := v.(type) {
	case string:
		for _, n := range strings.Split(x, ",") {
			items = append(items, n)
		}
	case []string:
		for _, n := range x {
			items = append(items, n)
		}
	case []any:
		items = x
	default:
		s.Fail(field, "want a list of tables, got %T", v)
		return nil
	}
	var out []Table
	objects := map[string]string{}
	for i, it := range items {
		var t Table
		switch x := it.(type) {
		case string:
			t.Name = strings.TrimSpace(x)
			if t.Name == "" {
				continue
			}
		case map[string]any:
			for k := range x {
				if k != "table" && k != "object" && k != "entity" {
					s.Fail(field, "item %d: unknown key %q (known: table, object, entity)", i+1, k)
				}
			}
			name, _ := x["table"].(string)
			obj, okObj := x["object"].(string)
			ent, okEnt := x["entity"].(string)
			if _, has := x["object"]; has && !okObj {
				s.Fail(field, "item %d: object must be text", i+1)
			}
			if _, has := x["entity"]; has && !okEnt {
				s.Fail(field, "item %d: entity must be text", i+1)
			}
			t.Name, t.Object = strings.TrimSpace(name), strings.TrimSpace(obj)
			if t.Name == "" {
				s.Fail(field, "item %d: table is required", i+1)
				continue
			}
			if ent = strings.TrimSpace(ent); ent != "" {
				e, err := canonical.ParseEntity(ent)
				if err != nil {
					s.Fail(field, "item %d: %v", i+1, err)
				}
				t.Entity = e
			}
		default:
			s.Fail(field, "item %d: want a table name or {table, object, entity}, got %T", i+1, it)
			continue
		}
		_, table, err := splitName(t.Name)
		if err != nil {
			s.Fail(field, "table %q: %v", t.Name, err)
			continue
		}
		if t.Object == "" {
			t.Object = table
		}
		if !reObject.MatchString(t.Object) {
			s.Fail(field, "table %q: object name %q must be 1 to 128 of [A-Za-z0-9_-]; set object", t.Name, t.Object)
			continue
		}
		if prev, dup := objects[t.Object]; dup {
			s.Fail(field, "tables %q and %q share the object name %q; give one an object", prev, t.Name, t.Object)
			continue
		}
		objects[t.Object] = t.Name
		out = append(out, t)
	}
	if len(out) == 0 && s.Failures() == 0 {
		s.Fail(field, "names no table")
	}
	return out
}
