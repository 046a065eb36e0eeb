//go:build unix

package e2e

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStorageInitializer runs `berth storage-initializer` as a pod's init container
// would: model and code registered on a real server are fetched into a folder with the
// token from BERTH_TOKEN and land byte for byte; a wrong token, an unknown digest and
// an unreachable server each end with one message naming the fix.
func TestStorageInitializer(t *testing.T) {
	s := startServer(t, "")
	src := t.TempDir()
	model, code := filepath.Join(src, "model"), filepath.Join(src, "code")
	writeFiles(t, model, map[string]string{
		"weights.bin":        string(bytes.Repeat([]byte{0, 1, 2, 255}, 300_000)),
		"sub/dir/config.txt": "alpha=1\n",
	})
	writeFiles(t, code, map[string]string{
		"score.py":        "def init():\n    pass\n\ndef run(data):\n    return data\n",
		"lib/helpers.py":  "X = 1\n",
		"data/empty.json": "",
	})
	modelDigest, codeDigest := artifactOf(s, "si-model", model), artifactOf(s, "si-code", code)
	token := adminToken(t, s)

	app := filepath.Join(t.TempDir(), "azureml-app")
	modelDir, codeDir := filepath.Join(app, "azureml-models", "si-model", "1"), filepath.Join(app, "code")
	args := []string{"--server", s.URL, "--endpoint", "si-ep", "--deployment", "blue", "--target-dir", app,
		"--model-artifact", modelDigest, "--model-dir", modelDir, "--model-base", "model", "--code-artifact", codeDigest, "--code-dir", codeDir}
	start := time.Now()
	r := storageInit(t, token, args...)
	if r.code != 0 {
		t.Fatalf("storage-initializer: exit %d\nstderr: %s", r.code, r.stderr)
	}
	t.Logf("fetched in %s:\n%s", time.Since(start), r.stderr)
	// The folder keeps its name beneath AZUREML_MODEL_DIR, as Azure mounts it.
	sameTree(t, model, filepath.Join(modelDir, "model"))
	sameTree(t, code, codeDir)
	for _, want := range []string{"downloaded model " + modelDigest + " to " + filepath.Join(modelDir, "model") + ": 2 files, 1200008 bytes",
		"downloaded code " + codeDigest + " to " + codeDir + ": 3 files", "digest checked"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("log lacks %q:\n%s", want, r.stderr)
		}
	}

	// An init container that runs again (the pod restarted, emptyDir kept) replaces
	// what it finds.
	writeFiles(t, codeDir, map[string]string{"stale.py": "x"})
	if r := storageInit(t, token, args...); r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}
	sameTree(t, code, codeDir)

	t.Run("wrong token", func(t *testing.T) {
		r := storageInit(t, "not-the-token", args...)
		t.Log(r.stderr)
		if r.code == 0 || !strings.Contains(r.stderr, "refused the token in BERTH_TOKEN") || !strings.Contains(r.stderr, s.URL) ||
			!strings.Contains(r.stderr, "si-ep-blue-berth-token") {
			t.Errorf("exit %d, stderr:\n%s\nwant a refusal naming the token, the server and the Secret", r.code, r.stderr)
		}
	})
	t.Run("no token", func(t *testing.T) {
		r := storageInit(t, "", args...)
		if r.code == 0 || !strings.Contains(r.stderr, "BERTH_TOKEN is empty") {
			t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("unknown artifact", func(t *testing.T) {
		gone := "sha256:" + strings.Repeat("0", 64)
		r := storageInit(t, token, "--server", s.URL, "--target-dir", app, "--model-artifact", gone)
		t.Log(r.stderr)
		if r.code == 0 || !strings.Contains(r.stderr, "does not store model "+gone) || !strings.Contains(r.stderr, "deploy again") {
			t.Errorf("exit %d, stderr:\n%s\nwant the artifact named and redeploy as the fix", r.code, r.stderr)
		}
	})
	t.Run("unreachable server", func(t *testing.T) {
		url := closedURL(t)
		start := time.Now()
		r := storageInit(t, token, "--server", url, "--target-dir", app, "--code-artifact", codeDigest, "--retry-for", "1500ms")
		took := time.Since(start)
		if r.code == 0 || !strings.Contains(r.stderr, "cannot reach the Berth server at "+url+" (--server)") ||
			!strings.Contains(r.stderr, "code "+codeDigest) || !strings.Contains(r.stderr, "try 1 failed") ||
			!strings.Contains(r.stderr, "tries in 1.5") {
			t.Errorf("exit %d, stderr:\n%s\nwant retries logged, then the URL and --server named", r.code, r.stderr)
		}
		if took < time.Second || took > 10*time.Second {
			t.Errorf("gave up after %s, want about --retry-for (1.5s)", took)
		}
	})
}

// artifactOf registers dir as a model and returns the digest of its artifact.
func artifactOf(s *server, name, dir string) string {
	s.t.Helper()
	var m struct{ Artifact string }
	s.okJSON(&m, "model", "create", "--name", name, "--path", dir)
	if !strings.HasPrefix(m.Artifact, "sha256:") {
		s.t.Fatalf("model %s: artifact %q, want a digest", name, m.Artifact)
	}
	return m.Artifact
}

// adminToken reads the admin token the server wrote for the CLI.
func adminToken(t *testing.T, s *server) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dataDir, "server.json"))
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Token string }
	if err := json.Unmarshal(b, &info); err != nil || info.Token == "" {
		t.Fatalf("server.json: %v, token %q", err, info.Token)
	}
	return info.Token
}

// storageInit runs `berth storage-initializer` as in a pod: no data dir, no
// server.json, the token only in BERTH_TOKEN.
func storageInit(t *testing.T, token string, args ...string) result {
	t.Helper()
	cmd := exec.Command(berthBin, append([]string{"storage-initializer"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "BERTH_TOKEN=" + token}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run storage-initializer: %v", err)
	}
	return result{out.String(), errb.String(), code}
}

// closedURL is the URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// sameTree fails unless got holds exactly want's files, byte for byte.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	files := func(root string) map[string][]byte {
		m := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			b, err := os.ReadFile(p)
			m[filepath.ToSlash(rel)] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	w, g := files(want), files(got)
	for name, b := range w {
		if gb, ok := g[name]; !ok || !bytes.Equal(gb, b) {
			t.Errorf("%s: %s differs from %s (present %v)", name, got, want, ok)
		}
	}
	for name := range g {
		if _, ok := w[name]; !ok {
			t.Errorf("%s: extra file %s", got, name)
		}
	}
}
