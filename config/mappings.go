package config

import (
	"embed"
	"io/fs"
)

//go:embed mappings/*.yaml
var mappings embed.FS

// MappingFS returns the shipped mapping files (config/mappings/*.yaml) at
// the root of the file system.
func MappingFS() fs.FS {
	sub, err := fs.Sub(mappings, "mappings")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}
