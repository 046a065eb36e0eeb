// Package web is the studio: the browser UI that `berth serve` serves at /. Its HTML,
// CSS and JavaScript are static files embedded in the binary (no build step); every
// piece of data the pages show comes from the control-plane REST API, called from the
// browser with the admin token the user signs in with. The package imports nothing of
// Berth.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// files holds index.html and the assets under static/.
//
//go:embed static
var files embed.FS

// AssetPrefix is the path under which the studio's assets are served.
const AssetPrefix = "/studio/"

// ContentSecurityPolicy is sent with every studio response: scripts, styles, images
// and API calls from the server's own origin only, no inline script or style, no
// plugins, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler returns the studio: GET / is the single page (index.html), GET /studio/...
// its assets. Mount it on both patterns; anything else under them is 404.
func Handler() http.Handler {
	static, err := fs.Sub(files, "static")
	if err != nil {
		// The embedded tree always has static/: a failure is a build mistake.
		panic(err)
	}
	assets := http.StripPrefix(strings.TrimSuffix(AssetPrefix, "/"), http.FileServerFS(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		// The pages change with the binary, never under one version: revalidate.
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == "/":
			http.ServeFileFS(w, r, static, "index.html")
		case strings.HasPrefix(r.URL.Path, AssetPrefix) && r.URL.Path != AssetPrefix:
			assets.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
