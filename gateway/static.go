package gateway

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// apiPath reports whether a path belongs to the API, where an unknown path
// is a JSON 404 and never the UI's page.
func apiPath(p string) bool {
	return p == "/api" || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/dcl/")
}

// notFound handles every request no route matched: GET and HEAD of UI paths
// are served from Config.UI (unknown paths without a file extension fall
// back to index.html, for the app's own router); the rest is a 404 in the
// error shape.
func (s *Server) notFound(c echo.Context) error {
	req := c.Request()
	p := req.URL.Path
	if methods := s.allowed[p]; len(methods) > 0 {
		c.Response().Header().Set(echo.HeaderAllow, strings.Join(methods, ", "))
		return echo.ErrMethodNotAllowed
	}
	if s.cfg.UI == nil || apiPath(p) || req.Method != http.MethodGet && req.Method != http.MethodHead {
		return echo.ErrNotFound
	}
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		name = "index.html"
	}
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if fi, err := fs.Stat(s.cfg.UI, name); err == nil && !fi.IsDir() {
		if strings.HasPrefix(name, "assets/") {
			h.Set(echo.HeaderCacheControl, "public, max-age=31536000, immutable")
		} else {
			h.Set(echo.HeaderCacheControl, "no-cache")
		}
		return s.serveUIFile(c, name, fi.ModTime())
	}
	if strings.Contains(path.Base(name), ".") {
		return echo.ErrNotFound // a missing asset, not an app route
	}
	h.Set(echo.HeaderCacheControl, "no-cache")
	fi, err := fs.Stat(s.cfg.UI, "index.html")
	if err != nil {
		return echo.ErrNotFound
	}
	return s.serveUIFile(c, "index.html", fi.ModTime())
}

func (s *Server) serveUIFile(c echo.Context, name string, mod time.Time) error {
	f, err := s.cfg.UI.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return echo.ErrNotFound
		}
		return internal(err)
	}
	defer f.Close()
	if rs, ok := f.(io.ReadSeeker); ok {
		http.ServeContent(c.Response(), c.Request(), name, mod, rs)
		return nil
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return internal(err)
	}
	http.ServeContent(c.Response(), c.Request(), name, mod, strings.NewReader(string(b)))
	return nil
}
