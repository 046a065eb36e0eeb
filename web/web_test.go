package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHandlerServesThePageAndAssetsWithCSP checks the page and its assets are served
// over real HTTP with the Content-Security-Policy, and that nothing else is.
func TestHandlerServesThePageAndAssetsWithCSP(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", Handler())
	mux.Handle("GET "+AssetPrefix, Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tc := range []struct {
		path, status, contentType, body string
	}{
		{"/", "200 OK", "text/html", `<script type="module" src="/studio/app.js">`},
		{"/studio/app.js", "200 OK", "text/javascript", "import"},
		{"/studio/style.css", "200 OK", "text/css", "--accent"},
		{"/studio/", "404 Not Found", "text/plain", ""},
		{"/studio/nope.js", "404 Not Found", "text/plain", ""},
		{"/index.html", "404 Not Found", "text/plain", ""},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Status != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) || !strings.Contains(string(b), tc.body) {
			t.Errorf("GET %s = %s %s %.60q, want %s %s containing %q", tc.path, resp.Status, resp.Header.Get("Content-Type"), b, tc.status, tc.contentType, tc.body)
		}
		if tc.status == "200 OK" && resp.Header.Get("Content-Security-Policy") != ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy %q, want %q", tc.path, resp.Header.Get("Content-Security-Policy"), ContentSecurityPolicy)
		}
	}
}

// TestNoScriptPutsDataIntoHTML keeps every value out of innerHTML and friends: the
// studio's scripts build the DOM with textContent and attributes only.
func TestNoScriptPutsDataIntoHTML(t *testing.T) {
	entries, err := files.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".js") {
			continue
		}
		b, err := files.ReadFile("static/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s: build elements with h() and textContent", e.Name(), bad)
			}
		}
	}
}
