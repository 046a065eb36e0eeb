//go:build linux

package soak

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// berthBin is the binary built once by TestMain (or BERTH_SOAK_BIN, a prebuilt one).
var berthBin string

// python is the interpreter the workers run on: Debian's, with no environment build.
const python = "/usr/bin/python3"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-soak-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	berthBin = os.Getenv("BERTH_SOAK_BIN")
	if berthBin == "" {
		berthBin = filepath.Join(dir, "berth")
		build := exec.Command("go", "build", "-o", berthBin, "./cmd/berth")
		build.Dir = repoRoot()
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build berth:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	printTable()
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

// long reports whether BERTH_SOAK=long asks for the long form.
func long() bool { return os.Getenv("BERTH_SOAK") == "long" }

// pick returns the short-form value, or the long-form one under BERTH_SOAK=long.
func pick[T any](short, longForm T) T {
	if long() {
		return longForm
	}
	return short
}

// server is one `berth serve` on a fixed loopback port, so that it comes back on the
// same address after a kill -9.
type server struct {
	t       *testing.T
	dataDir string
	addr    string
	flags   []string
	cmd     *exec.Cmd
	done    chan struct{}
	log     *lockedBuffer
}

// startServer starts berth serve on a free port and a new data dir with extra flags.
func startServer(t *testing.T, flags ...string) *server {
	t.Helper()
	s := &server{t: t, dataDir: t.TempDir(), addr: freeAddr(t), flags: flags, log: &lockedBuffer{}}
	// Registered before the data dir's removal runs (cleanups run last first), so
	// every process is gone before the folder is.
	t.Cleanup(func() {
		s.stop()
		for _, p := range processesMentioning(s.dataDir) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
	s.start()
	return s
}

func (s *server) URL() string { return "http://" + s.addr }

func (s *server) start() {
	t := s.t
	t.Helper()
	os.Remove(filepath.Join(s.dataDir, "server.json"))
	args := append([]string{"serve", "--addr", s.addr, "--data-dir", s.dataDir, "--python", python}, s.flags...)
	cmd := exec.Command(berthBin, args...)
	cmd.Env = append(os.Environ(), "BERTH_DATA_DIR="+s.dataDir)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// Pdeathsig: a test binary killed by -timeout takes its servers with it (their
	// workers follow through their own Pdeathsig).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(s.dataDir, "server.json")); err == nil && bytes.Contains(b, []byte(s.addr)) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("berth serve did not write server.json; log:\n%s", s.log)
}

// pid is the running server's process id (0 when none runs).
func (s *server) pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// stop ends the server gracefully (SIGTERM) and waits; past 30 s it kills its group.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Errorf("berth serve did not stop within 30 s of SIGTERM")
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
	if s.t.Failed() {
		s.t.Logf("server log (last 8 KiB):\n%s", tail(s.log.String(), 8<<10))
	}
}

// kill9 kills the server process alone, as a crash would, and waits for it.
func (s *server) kill9() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

type result struct {
	stdout, stderr string
	code           int
}

// berth runs the CLI against s; it may be called from any goroutine.
func (s *server) berth(args ...string) result {
	cmd := exec.Command(berthBin, args...)
	cmd.Env = append(os.Environ(), "BERTH_DATA_DIR="+s.dataDir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return result{"", err.Error(), -1}
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

// workerPIDs are the running server's Python workers: its children whose command line
// ends with a scoring script under the data dir's instance folders.
func (s *server) workerPIDs() []int {
	var pids []int
	for _, p := range children(s.pid()) {
		args := cmdline(p)
		if len(args) > 2 && strings.HasSuffix(args[1], "berth_worker.py") && strings.HasPrefix(args[2], filepath.Join(s.dataDir, "instances")+"/") {
			pids = append(pids, p)
		}
	}
	return pids
}

// children lists the child processes of pid from /proc/<pid>/task/*/children.
func children(pid int) []int {
	if pid == 0 {
		return nil
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(field); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// cmdline is the argument list of a process, nil when it is gone.
func cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// processesMentioning lists the live processes (zombies aside) whose command line or
// environment contains marker: a test's unique data dir names its servers, its workers'
// scripts, its environments' interpreters and what they start.
func processesMentioning(marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		// The environment too: a child of a worker inherits AZUREML_MODEL_DIR and the
		// like, which name the instance folder, even when its command line does not.
		environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if strings.Contains(strings.Join(cmdline(pid), " "), marker) || bytes.Contains(environ, []byte(marker)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// orphansAfter waits up to grace for the processes that mention marker to end and
// returns those still alive.
func orphansAfter(marker string, grace time.Duration) []int {
	deadline := time.Now().Add(grace)
	for {
		left := processesMentioning(marker)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
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

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
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

// containsZ reports whether a /proc/<pid>/stat line says the process is a zombie.
func containsZ(stat []byte) bool { return bytes.Contains(stat, []byte(") Z ")) }

func itoa(n int) string { return strconv.Itoa(n) }
