package config_test

import (
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/config"
)

// TestShippedMappingsCompile checks every embedded mapping file (MappingFS):
// it parses,
// compiles, names its file's system, and maps each canonical entity once
// with a version field.
func TestShippedMappingsCompile(t *testing.T) {
	fsys := config.MappingFS()
	files, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var systems []string
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			b, err := fs.ReadFile(fsys, name)
			if err != nil {
				t.Fatal(err)
			}
			mf, ms, err := canonical.ParseMappingFile(name, b)
			if err != nil {
				t.Fatalf("does not compile: %v", err)
			}
			if want := strings.TrimSuffix(name, ".yaml"); mf.System != want {
				t.Errorf("system %q in a file named for %q", mf.System, want)
			}
			systems = append(systems, mf.System)
			var entities []canonical.Entity
			for _, m := range ms {
				entities = append(entities, m.Entity())
				if m.Spec.VersionField == "" {
					t.Errorf("object %s has no version_field", m.Object())
				}
			}
			slices.Sort(entities)
			if want := []canonical.Entity{"account", "contact", "opportunity"}; !slices.Equal(entities, want) {
				t.Errorf("maps entities %v, want %v", entities, want)
			}
		})
	}
	slices.Sort(systems)
	if want := []string{"dynamics", "filesource", "hubspot", "postgres", "salesforce"}; !slices.Equal(systems, want) {
		t.Errorf("shipped systems %v, want %v", systems, want)
	}
}
