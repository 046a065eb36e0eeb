//go:build unix

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// berthBin is the binary built once by TestMain.
var berthBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	berthBin = filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", berthBin, "./cmd/berth")
	build.Dir = repoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build berth:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func example(parts ...string) string {
	return filepath.Join(append([]string{repoRoot(), "examples"}, parts...)...)
}

// server is one running `berth serve`.
type server struct {
	t       *testing.T
	dataDir string
	env     []string
	cmd     *exec.Cmd
	log     *lockedBuffer
	URL     string
}

// startServer starts berth serve on a free port with dataDir ("" = a new temp dir).
func startServer(t *testing.T, dataDir string, env ...string) *server {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	s := &server{t: t, dataDir: dataDir, env: env, log: &lockedBuffer{}}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	t := s.t
	t.Helper()
	os.Remove(filepath.Join(s.dataDir, "server.json"))
	cmd := exec.Command(berthBin, "serve", "--addr", "127.0.0.1:0", "--data-dir", s.dataDir, "--log-level", "debug")
	cmd.Env = append(append(os.Environ(), s.env...), "BERTH_DATA_DIR="+s.dataDir)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(s.dataDir, "server.json"))
		if err == nil {
			var info struct{ URL string }
			if json.Unmarshal(b, &info) == nil && info.URL != "" {
				s.URL = info.URL
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("berth serve did not write server.json; log:\n%s", s.log)
}

// stop ends the server gracefully (SIGTERM) and waits.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	s.cmd = nil
	if s.t.Failed() {
		s.t.Logf("server log:\n%s", s.log)
	}
}

// kill9 kills the server process only (not its instances' process groups), as a crash would.
func (s *server) kill9() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	s.cmd = nil
}

type result struct {
	stdout, stderr string
	code           int
}

// berth runs the CLI against s and returns its output and exit code.
func (s *server) berth(args ...string) result {
	s.t.Helper()
	cmd := exec.Command(berthBin, args...)
	cmd.Env = append(os.Environ(), "BERTH_DATA_DIR="+s.dataDir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("run berth %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs the CLI and fails the test on a non-zero exit.
func (s *server) ok(args ...string) string {
	s.t.Helper()
	r := s.berth(args...)
	if r.code != 0 {
		s.t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// okJSON runs the CLI and decodes its JSON output.
func (s *server) okJSON(v any, args ...string) {
	s.t.Helper()
	out := s.ok(args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		s.t.Fatalf("berth %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (s *server) keys(endpoint string) (primary, secondary string) {
	var k struct{ PrimaryKey, SecondaryKey string }
	s.okJSON(&k, "online-endpoint", "get-credentials", "-n", endpoint)
	return k.PrimaryKey, k.SecondaryKey
}

// score POSTs body to the endpoint's scoring URI with key and extra headers.
func (s *server) score(endpoint, key, body string, headers ...string) (int, http.Header, string) {
	s.t.Helper()
	status, h, b, err := s.tryScore(endpoint, key, body, headers...)
	if err != nil {
		s.t.Fatal(err)
	}
	return status, h, b
}

// tryScore is score for goroutines other than the test's: it returns the transport
// error instead of failing the test, so the caller reports it with t.Errorf.
func (s *server) tryScore(endpoint, key, body string, headers ...string) (int, http.Header, string, error) {
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/endpoints/"+endpoint+"/score", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", fmt.Errorf("score %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), nil
}

// lockedBuffer lets a command's stdout and stderr share one buffer that tests read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// writeFiles creates files under dir from name → content.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// eventually polls cond until it is true or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// load sends requests to endpoint from clients goroutines, each the next as soon as the
// last is answered, until the returned function is called; it returns once they stop.
func (s *server) load(endpoint, key string, clients int) (stop func()) {
	var stopped atomic.Bool
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopped.Load() {
				s.tryScore(endpoint, key, `{}`)
			}
		}()
	}
	return func() {
		stopped.Store(true)
		wg.Wait()
	}
}
