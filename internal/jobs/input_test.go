package jobs

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestDatastorePathStaysInsideDatastores(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	good, err := s.datastorePath("azureml://datastores/workspaceblobstore/paths/a/../b")
	if err != nil || good != filepath.Join(dir, "datastores", "workspaceblobstore", "b") {
		t.Errorf("a datastore path: %q, %v", good, err)
	}
	for _, uri := range []string{
		"azureml://datastores/../paths/admin-token",
		"azureml://datastores/./paths/x",
		"azureml://datastores/a%2F..%2F/paths/x",
		"azureml://datastores//paths/x",
		"azureml://datastores/workspaceblobstore/x",
	} {
		if p, err := s.datastorePath(uri); err == nil {
			t.Errorf("%s was accepted as %s", uri, p)
		}
	}
	if p, _ := s.datastorePath("azureml://datastores/workspaceblobstore/paths/../../admin-token"); p != filepath.Join(dir, "datastores", "workspaceblobstore", "admin-token") {
		t.Errorf("a path climbing out of its datastore: %q", p)
	}
}

func TestDownloadOnceAndKeptForAResume(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		io.WriteString(w, "a,b\n1,2\n")
	}))
	defer srv.Close()
	s, err := New(Config{DataDir: t.TempDir(), HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	job := t.TempDir()
	src := source{Kind: sourceURL, URL: srv.URL + "/data/heart.csv", Type: "uri_file"}
	got, err := s.download(t.Context(), src, job, io.Discard)
	if err != nil || got != filepath.Join(job, "inputs", "heart.csv") {
		t.Fatalf("download: %q, %v", got, err)
	}
	if b, _ := os.ReadFile(got); string(b) != "a,b\n1,2\n" {
		t.Errorf("content %q", b)
	}
	if _, err := os.Stat(filepath.Join(job, "inputs.part")); !os.IsNotExist(err) {
		t.Error("the temporary file is left")
	}
	// A resumed job (its manifest written) keeps the file it listed.
	os.WriteFile(filepath.Join(job, "manifest"), []byte("{}"), 0o600)
	if again, err := s.download(t.Context(), src, job, io.Discard); err != nil || again != got || hits != 1 {
		t.Errorf("resume: %q, %v, %d downloads", again, err, hits)
	}
}
