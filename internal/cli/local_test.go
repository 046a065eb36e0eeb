package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLocalFlag checks that --local puts list, show and deployment commands in the
// local namespace (?local=true), that commands without it stay managed, and that
// invoke --local asks for no key and scores without an Authorization header.
func TestLocalFlag(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	scorer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write([]byte(`[1]`))
	}))
	t.Cleanup(scorer.Close)
	view := `{"name":"dev","local":true,"scoring_uri":"` + scorer.URL + `/endpoints/dev/score","traffic":{}}`
	f := newFakeServer(t, map[string]answer{
		"GET /endpoints":                 {body: `[` + view + `]`},
		"GET /endpoints/dev":             {body: view},
		"GET /endpoints/dev/deployments": {body: `[]`},
		"POST /endpoints/dev/listkeys":   {body: `{"primaryKey":"p","secondaryKey":"s"}`},
		"DELETE /endpoints/dev":          {status: http.StatusNoContent},
	})
	req := filepath.Join(t.TempDir(), "req.json")
	if err := os.WriteFile(req, []byte(`{"data":[1]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"online-endpoint", "list", "--local"},
		{"online-endpoint", "show", "-n", "dev", "--local", "--query", "local", "-o", "tsv"},
		{"online-endpoint", "list"},
		{"online-deployment", "list", "-e", "dev", "--local"},
		{"online-endpoint", "invoke", "-n", "dev", "--request-file", req, "--local"},
		{"online-endpoint", "invoke", "-n", "dev", "--request-file", req},
		{"online-endpoint", "delete", "-n", "dev", "--local", "--yes"},
	} {
		if _, stderr, err := f.berth(t, args...); err != nil {
			t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
	}
	var got []string
	for _, r := range f.requests() {
		got = append(got, r.Method+" "+r.Path)
	}
	want := []string{
		"GET /endpoints?local=true",
		"GET /endpoints/dev?local=true",
		"GET /endpoints",
		"GET /endpoints/dev/deployments?local=true",
		"GET /endpoints/dev?local=true", // invoke --local: no listkeys
		"GET /endpoints/dev",
		"POST /endpoints/dev/listkeys",
		"DELETE /endpoints/dev?local=true",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"", "Bearer p"}, auths); diff != "" {
		t.Errorf("Authorization of the scoring requests, local then managed (-want +got):\n%s", diff)
	}
	if out, _, _ := f.berth(t, "online-endpoint", "show", "-n", "dev", "--local", "--query", "local", "-o", "tsv"); out != "true\n" {
		t.Errorf("show --local --query local -o tsv: %q", out)
	}
}
