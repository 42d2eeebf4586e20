package config

import "embed"

// Mappings holds the shipped mapping files, config/mappings/*.yaml.
//
//go:embed mappings/*.yaml
var Mappings embed.FS
