package cli

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthml/berth/internal/client"
)

// tarOf builds a tar stream of name → content and returns it with its digest.
func tarOf(t *testing.T, files map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), "sha256:" + hex.EncodeToString(sum[:])
}

// fetchFrom runs the storage initializer for one code artifact against h.
func fetchFrom(t *testing.T, h http.Handler, digest string) (string, string, error) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	root := t.TempDir()
	var log bytes.Buffer
	si := &storageInit{server: srv.URL, targetDir: filepath.Join(root, "app"), codeArtifact: digest,
		retryFor: 3 * time.Second, backoff: 50 * time.Millisecond, log: &log, now: time.Now}
	arts, err := si.artifacts()
	if err != nil {
		t.Fatal(err)
	}
	err = si.run(t.Context(), client.New(srv.URL, "tok"), arts)
	return root, log.String(), err
}

func TestStorageInitializerRefusesEscapingEntries(t *testing.T) {
	data, digest := tarOf(t, map[string]string{"../../evil.py": "boom"})
	root, _, err := fetchFrom(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }), digest)
	if err == nil || !strings.Contains(err.Error(), "cannot be laid out") || !strings.Contains(err.Error(), "..") {
		t.Fatalf("err = %v, want the escaping entry refused", err)
	}
	for _, p := range []string{filepath.Join(root, "evil.py"), filepath.Join(filepath.Dir(root), "evil.py")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
}

func TestStorageInitializerChecksTheDigest(t *testing.T) {
	data, _ := tarOf(t, map[string]string{"score.py": "x = 1\n"})
	_, other := tarOf(t, map[string]string{"score.py": "x = 2\n"})
	root, _, err := fetchFrom(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }), other)
	if err == nil || !strings.Contains(err.Error(), "not "+other) {
		t.Fatalf("err = %v, want a digest mismatch", err)
	}
	if _, err := os.Stat(filepath.Join(root, "app", "code")); err == nil {
		t.Error("the code folder exists after a mismatch")
	}
}

func TestStorageInitializerRetriesTransientFailures(t *testing.T) {
	data, digest := tarOf(t, map[string]string{"score.py": strings.Repeat("# padding\n", 10_000)})
	var calls atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1: // a gateway not ready yet
			http.Error(w, "upstream not ready", http.StatusServiceUnavailable)
		case 2: // the connection breaks halfway through the stream
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		default:
			w.Write(data)
		}
	})
	root, log, err := fetchFrom(t, h, digest)
	if err != nil {
		t.Fatalf("err = %v\nlog:\n%s", err, log)
	}
	t.Log(log)
	if n := calls.Load(); n != 3 {
		t.Errorf("%d tries, want 3", n)
	}
	for _, want := range []string{"try 1 failed", "try 2 failed", "retrying in", "downloaded code " + digest} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "app", "code", "score.py")); err != nil || len(b) != 100_000 {
		t.Errorf("score.py: %d bytes, %v", len(b), err)
	}
}

func TestStorageInitializerModelBase(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // where model.pkl lands under the model dir
	}{
		{"folder keeps its name", map[string]string{"model.pkl": "w"}, "model/model.pkl"},
		{"single file of that name", map[string]string{"model": "w"}, "model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, digest := tarOf(t, tc.files)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
			defer srv.Close()
			dir := filepath.Join(t.TempDir(), "azureml-models")
			si := &storageInit{server: srv.URL, targetDir: filepath.Dir(dir), modelArtifact: digest, modelDir: dir, modelBase: "model",
				log: &bytes.Buffer{}, now: time.Now}
			arts, err := si.artifacts()
			if err != nil {
				t.Fatal(err)
			}
			if err := si.run(t.Context(), client.New(srv.URL, "tok"), arts); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(tc.want))); err != nil || string(b) != "w" {
				t.Errorf("%s: %q, %v", tc.want, b, err)
			}
		})
	}
}

func TestStorageInitializerArguments(t *testing.T) {
	for _, tc := range []struct {
		name string
		si   storageInit
		want string
	}{
		{"bad digest", storageInit{modelArtifact: "md5:abc"}, "--model-artifact md5:abc: want sha256:<64 hex digits>"},
		{"bad model base", storageInit{modelArtifact: "sha256:" + strings.Repeat("a", 64), modelBase: "../x"}, "--model-base ../x: want a folder or file name"},
		{"dir without artifact", storageInit{codeDir: "/x"}, "--code-dir /x: given without --code-artifact"},
		{"nested", storageInit{modelArtifact: "sha256:" + strings.Repeat("a", 64), modelDir: "/app/code/m",
			codeArtifact: "sha256:" + strings.Repeat("b", 64), codeDir: "/app/code"}, "one is inside the other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.si.artifacts(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
