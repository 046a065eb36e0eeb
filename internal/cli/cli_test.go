package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
)

// seen is one request the fake server received.
type seen struct {
	Method, Path, Body string
}

// answer is a canned response.
type answer struct {
	status int
	body   string
}

// fakeServer is a control plane that answers "METHOD /path" (path without /api/v1 and
// query) from a table and records every request; anything else is a 404 error body.
type fakeServer struct {
	url     string
	mu      sync.Mutex
	answers map[string]answer
	got     []seen
}

func newFakeServer(t *testing.T, answers map[string]answer) *fakeServer {
	t.Helper()
	f := &fakeServer{answers: answers}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/api/v1")
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") == "application/octet-stream" {
			b = []byte("<binary>")
		}
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		recorded := path
		if r.URL.RawQuery != "" {
			recorded += "?" + r.URL.RawQuery
		}
		f.got = append(f.got, seen{r.Method, recorded, string(b)})
		a, ok := f.answers[r.Method+" "+path]
		f.mu.Unlock()
		if !ok {
			a = answer{http.StatusNotFound, `{"error":{"code":"ResourceNotFound","message":"no route ` + r.Method + " " + path + `"}}`}
		}
		if a.status == 0 {
			a.status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fakeServer) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.got...)
}

// berth runs the real command tree against the fake server the way main does: an
// error is printed with PrintError.
func (f *fakeServer) berth(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := NewRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append(args, "--server", f.url, "--token", "tok"))
	if err = root.ExecuteContext(context.Background()); err != nil {
		PrintError(&errOut, err)
	}
	return out.String(), errOut.String(), err
}

const modelView = `{"id":"azureml:m:2","name":"m","version":"2","type":"custom_model","tags":{},"path":"model","artifact":"sha256:aa","stage":"Archived","created_at":"2026-01-01T00:00:00Z"}`

func TestEndpointShowYAML(t *testing.T) {
	f := newFakeServer(t, map[string]answer{
		"GET /endpoints/ep": {body: `{"name":"ep","auth_mode":"key","traffic":{"blue":100},"tags":{}}`},
	})
	out, _, err := f.berth(t, "online-endpoint", "show", "-n", "ep", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := "auth_mode: key\nname: ep\ntags: {}\ntraffic:\n    blue: 100\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
}

func TestModelCreateUploadsThenRegisters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my-model")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(`{"w":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	digest, err := archive.DigestContext(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeServer(t, map[string]answer{
		"POST /artifacts":    {body: `{"digest":"` + digest + `","size":1536}`},
		"POST /assets/model": {status: http.StatusCreated, body: modelView},
	})
	out, stderr, err := f.berth(t, "model", "create", "--name", "m", "--path", dir, "--type", "mlflow_model")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	body := `{"name":"m","type":"mlflow_model","path_base":"my-model","artifact":"` + digest + `"}`
	want := []seen{
		{"HEAD", "/artifacts/" + digest, ""},
		{"POST", "/artifacts", "<binary>"},
		{"POST", "/assets/model", body},
	}
	if diff := cmp.Diff(want, f.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if !strings.Contains(stderr, "Uploading model "+dir) {
		t.Errorf("stderr = %q, want the upload progress", stderr)
	}
	if !strings.Contains(out, `"id": "azureml:m:2"`) {
		t.Errorf("stdout = %q, want the model view as JSON", out)
	}
}

func TestAssetVerbsUseUnifiedRoutes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want seen
	}{
		{[]string{"environment", "list"}, seen{"GET", "/assets/environment", ""}},
		{[]string{"data", "list", "--name", "inputs"}, seen{"GET", "/assets/data?name=inputs", ""}},
		{[]string{"data", "show", "--name", "inputs", "--label", "latest"}, seen{"GET", "/assets/data/inputs/versions/latest", ""}},
		{[]string{"environment", "show", "-n", "env", "-v", "3"}, seen{"GET", "/assets/environment/env/versions/3", ""}},
		{[]string{"model", "archive", "--name", "m", "--version", "2"}, seen{"POST", "/assets/model/m/versions/2/archive", ""}},
		{[]string{"model", "restore", "--name", "m", "--version", "2"}, seen{"POST", "/assets/model/m/versions/2/restore", ""}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			route, _, _ := strings.Cut(tc.want.Path, "?")
			f := newFakeServer(t, map[string]answer{tc.want.Method + " " + route: {body: modelView}})
			if _, stderr, err := f.berth(t, tc.args...); err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			if diff := cmp.Diff([]seen{tc.want}, f.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAssetTables(t *testing.T) {
	list := `[{"name":"e","version":"1","stage":"Development","created_at":"t0","image":"python"}]`
	f := newFakeServer(t, map[string]answer{
		"GET /assets/environment": {body: list},
		"GET /assets/model":       {body: "[" + modelView + "]"},
	})
	for _, tc := range []struct {
		noun string
		head string
	}{
		{"environment", "NAME  VERSION  STAGE        CREATED AT\n"},
		{"model", "NAME  VERSION  TYPE          STAGE     PATH   CREATED AT\n"},
	} {
		out, _, err := f.berth(t, tc.noun, "list", "-o", "table")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out, tc.head) {
			t.Errorf("%s list -o table =\n%s\nwant the header %q", tc.noun, out, tc.head)
		}
	}
}

func TestEnvironmentCreateSendsCondaContent(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "req.txt"), "numpy==2.0\n# comment\n\nscipy\n")
	write(t, filepath.Join(dir, "env.yml"), "name: np-env\nimage: python:3.12\nconda_file: req.txt\n")
	f := newFakeServer(t, map[string]answer{"POST /assets/environment": {status: http.StatusCreated, body: `{"name":"np-env","version":"1"}`}})
	if _, stderr, err := f.berth(t, "environment", "create", "-f", filepath.Join(dir, "env.yml"), "--version", "7"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	got := f.requests()
	if len(got) != 1 || got[0].Path != "/assets/environment" {
		t.Fatalf("requests = %+v, want one POST /assets/environment", got)
	}
	var body struct {
		Name, Version string
		Spec          map[string]any
	}
	if err := json.Unmarshal([]byte(got[0].Body), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"image": "python:3.12", "conda_file": map[string]any{"dependencies": []any{map[string]any{"pip": []any{"numpy==2.0", "scipy"}}}}}
	if body.Name != "np-env" || body.Version != "7" {
		t.Errorf("name, version = %q, %q; want np-env, 7 (the flag wins over the file)", body.Name, body.Version)
	}
	if diff := cmp.Diff(want, body.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
}

func TestDataCreateUploadsFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	write(t, filepath.Join(dir, "a.csv"), "x\n1\n")
	digest, err := archive.DigestContext(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeServer(t, map[string]answer{
		"HEAD /artifacts/" + digest: {},
		"POST /assets/data":         {status: http.StatusCreated, body: `{"name":"inputs","version":"1","type":"uri_folder","path":"data"}`},
	})
	_, stderr, err := f.berth(t, "data", "create", "--name", "inputs", "--path", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "already uploaded") {
		t.Errorf("stderr = %q, want the artifact reused", stderr)
	}
	got := f.requests()
	want := `{"name":"inputs","spec":{"description":"","path":"data","type":"uri_folder"},"artifact":"` + digest + `"}`
	if len(got) != 2 || got[1].Body != want {
		t.Errorf("requests = %+v, want a HEAD then POST /assets/data with %s", got, want)
	}
}

func TestErrorAnswerPrintedOnce(t *testing.T) {
	f := newFakeServer(t, map[string]answer{
		"GET /assets/model/m/versions/9": {status: http.StatusNotFound, body: `{"error":{"code":"ResourceNotFound","message":"model azureml:m:9 not found","target":"model"}}`},
	})
	out, stderr, err := f.berth(t, "model", "show", "-n", "m", "-v", "9")
	if err == nil {
		t.Fatal("want an error")
	}
	if de := diag.As(err); de == nil || de.Code != diag.ResourceNotFound {
		t.Errorf("err = %v, want a ResourceNotFound *diag.Error", err)
	}
	if want := "ERROR: (ResourceNotFound) model azureml:m:9 not found\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
	if out != "" {
		t.Errorf("stdout = %q, want nothing", out)
	}
}

func TestCreateValidatesBeforeConnecting(t *testing.T) {
	f := newFakeServer(t, nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"model", "create", "--name", "m"}, "--name and --path are required"},
		{[]string{"model", "create", "--name", "m", "--path", filepath.Join(t.TempDir(), "missing")}, "does not exist"},
		{[]string{"environment", "create", "--name", "e"}, "exactly one of image or build"},
		{[]string{"data", "create", "--name", "d", "--path", t.TempDir(), "--type", "uri_file"}, "does not fit"},
	} {
		_, stderr, err := f.berth(t, tc.args...)
		if de := diag.As(err); de == nil || de.Code != diag.BadArgument || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: err = %v, stderr = %q; want BadArgument with %q", tc.args, err, stderr, tc.want)
		}
	}
	if got := f.requests(); len(got) != 0 {
		t.Errorf("requests = %+v, want none", got)
	}
}

func TestModelDownload(t *testing.T) {
	src := filepath.Join(t.TempDir(), "model")
	write(t, filepath.Join(src, "model.json"), `{"w":1}`)
	var tarball bytes.Buffer
	if err := archive.WriteTar(&tarball, src); err != nil {
		t.Fatal(err)
	}
	f := newFakeServer(t, map[string]answer{
		"GET /assets/model/m/versions/latest": {body: modelView},
		"GET /artifacts/sha256:aa":            {body: tarball.String()},
	})
	dst := t.TempDir()
	if _, stderr, err := f.berth(t, "model", "download", "-n", "m", "--download-path", dst); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	got, err := os.ReadFile(filepath.Join(dst, "m", "model", "model.json"))
	if err != nil || string(got) != `{"w":1}` {
		t.Errorf("downloaded model.json = %q, %v; want the registered file", got, err)
	}
}

func TestNoServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{url: "http://" + l.Addr().String()}
	l.Close() // nothing listens there any more
	_, stderr, err := f.berth(t, "environment", "list")
	if !errors.Is(err, client.ErrNoServer) || !strings.HasPrefix(stderr, "ERROR: no Berth server is reachable") {
		t.Errorf("err = %v, stderr = %q; want ErrNoServer", err, stderr)
	}
}

// TestNoServerFileNamesTheDataDirSetting: without server.json where the CLI looks, the
// error says how to point it at a server started with --data-dir.
func TestNoServerFileNamesTheDataDirSetting(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("BERTH_DATA_DIR", dir)
	t.Setenv("BERTH_SERVER", "")
	t.Setenv("BERTH_TOKEN", "")
	root := NewRoot()
	var errOut bytes.Buffer
	root.SetOut(io.Discard)
	root.SetErr(&errOut)
	root.SetArgs([]string{"online-endpoint", "list"})
	err := root.ExecuteContext(context.Background())
	if !errors.Is(err, client.ErrNoServer) || !strings.Contains(err.Error(), filepath.Join(dir, "server.json")+" not found") ||
		!strings.Contains(err.Error(), "--data-dir <dir>, set BERTH_DATA_DIR=<dir>") {
		t.Errorf("err = %v; want ErrNoServer naming %s and BERTH_DATA_DIR", err, dir)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScoringErrorIsPlainWords(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"error": {"code": "NoValidDeployment", "message": "use --traffic \"blue=100\""}}`, `answered 404 NoValidDeployment: use --traffic "blue=100"`},
		{`{"message": "bad input"}`, "answered 404: bad input"},
		{"plain text", "answered 404: plain text"},
	} {
		if got := scoringError("http://x/score", 404, []byte(tc.body)).Error(); !strings.HasSuffix(got, tc.want) {
			t.Errorf("%s: %q, want it to end with %q", tc.body, got, tc.want)
		}
	}
}

func TestLiveLineRewritesOnATerminalOnly(t *testing.T) {
	var piped bytes.Buffer
	l := &liveLine{w: &piped}
	l.show("a")
	l.show("b")
	l.end()
	if piped.String() != "a\nb\n" {
		t.Errorf("piped: %q", piped.String())
	}
	var tty bytes.Buffer
	l = &liveLine{w: &tty, tty: true}
	l.show("a")
	l.show("b")
	l.end()
	l.end()
	if tty.String() != "\r\033[Ka\r\033[Kb\n" {
		t.Errorf("terminal: %q", tty.String())
	}
}
