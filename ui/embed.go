// Package ui embeds the built web UI (ui/dist, made by `npm run build`).
// When the UI has not been built, Dist holds only a placeholder and the
// gateway serves a page saying so.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist returns the built UI at the root of the file system.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err)
	}
	return sub
}

// Built reports whether the UI was built into the binary.
func Built() bool {
	_, err := fs.Stat(Dist(), "index.html")
	return err == nil
}
