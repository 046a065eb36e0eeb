package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthml/berth/internal/wire"
)

// syncBuffer is a log sink the test reads while the server writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs New and Run with cfg until the test ends, and waits for server.json.
// stop stops the server and waits for Run to return.
func startServer(t *testing.T, cfg Config) (s *Server, log *syncBuffer, stop func()) {
	t.Helper()
	log = &syncBuffer{}
	cfg.LogOutput = log
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			// Stopping while Run still recovers deployments returns context.Canceled.
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	infoPath := filepath.Join(cfg.DataDir, wire.ServerInfoFile)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(infoPath); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s; log:\n%s", wire.ServerInfoFile, log.String())
		}
	}
	return s, log, stop
}

// idleConn opens a connection, makes one keep-alive request on it and leaves it idle.
func idleConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: berth\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("request on connection to %s: %v", addr, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c
}

func TestIdleConnectionsDoNotLockOutScoring(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxConnections = 4
	s, _, _ := startServer(t, cfg)
	addr := strings.TrimPrefix(s.URL(), "http://")

	var conns []net.Conn
	for range 3 * cfg.MaxConnections {
		conns = append(conns, idleConn(t, addr))
	}
	// Idle connections were closed to make room: all but the cap's worth. Which ones
	// depends on when the server marked each idle (after the client had its answer), so
	// only the count is checked, and that the newest, accepted last, is open. Each close
	// happened before a later connection was accepted: its EOF is already there.
	closed := 0
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		switch {
		case errors.Is(err, io.EOF):
			closed++
			if i == len(conns)-1 {
				t.Errorf("the newest connection was closed")
			}
		case !errors.Is(err, os.ErrDeadlineExceeded):
			t.Errorf("connection %d: read = %v", i, err)
		}
	}
	if want := len(conns) - cfg.MaxConnections; closed < want {
		t.Errorf("%d idle connections were closed, want %d: more than %d stayed open", closed, want, cfg.MaxConnections)
	}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Post(s.URL()+"/endpoints/nothing/score", "application/json", strings.NewReader(`{"data":[1]}`))
	if err != nil {
		t.Fatalf("scoring with %d idle connections open: %v", len(conns), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("scoring an unknown endpoint = %d, want 404", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL()+wire.APIPrefix+"/endpoints", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatalf("API with %d idle connections open: %v", len(conns), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("list endpoints = %d", resp.StatusCode)
	}
}

func TestSecondServerOnSameDataDir(t *testing.T) {
	cfg := testConfig(t)
	first, _, stop := startServer(t, cfg)

	second, err := New(cfg)
	if err == nil {
		second.Close()
		t.Fatal("a second server opened a data dir in use")
	}
	var inUse *DataDirInUseError
	if !errors.As(err, &inUse) || inUse.PID != os.Getpid() || inUse.URL != first.URL() {
		t.Fatalf("second New: %v (%#v), want the first server's pid %d and URL %s", err, inUse, os.Getpid(), first.URL())
	}
	if !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) || !strings.Contains(err.Error(), first.URL()) {
		t.Errorf("error does not name the first server: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, wire.ServerInfoFile)); err != nil {
		t.Errorf("the failed second server removed the first one's server.json: %v", err)
	}

	stop()
	third, err := New(cfg)
	if err != nil {
		t.Fatalf("New after the first server stopped: %v", err)
	}
	third.Close()
}

func TestDataDirMadePrivate(t *testing.T) {
	cfg := testConfig(t)
	if err := os.Mkdir(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfg.DataDir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	var log bytes.Buffer
	cfg.LogOutput = &log
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for path, want := range map[string]os.FileMode{cfg.DataDir: 0o700, filepath.Join(cfg.DataDir, "berth.db"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s is %#o, want %#o", path, fi.Mode().Perm(), want)
		}
	}
	abs, _ := filepath.Abs(cfg.DataDir)
	if line := fmt.Sprintf("data dir %s was 0755, now 0700", abs); !strings.Contains(log.String(), line) {
		t.Errorf("log lacks %q:\n%s", line, log.String())
	}
}

func TestSelfSignedTLSIsReused(t *testing.T) {
	cfg := testConfig(t)
	cfg.TLS = true
	s, _, stop := startServer(t, cfg)
	if !strings.HasPrefix(s.URL(), "https://127.0.0.1:") {
		t.Errorf("URL = %s, want https://127.0.0.1:P", s.URL())
	}
	certFile := filepath.Join(cfg.DataDir, tlsDirName, selfCertName)
	pemCert, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(cfg.DataDir, tlsDirName, selfKeyName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v", err, fi)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemCert)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := client.Get(s.URL() + "/")
	if err != nil {
		t.Fatalf("GET over TLS trusting %s: %v", certFile, err)
	}
	resp.Body.Close()
	if _, err := http.Get(s.URL() + "/"); err == nil {
		t.Error("a client without the certificate trusted it")
	}
	stop()

	startServer(t, cfg)
	again, err := os.ReadFile(certFile)
	if err != nil || !bytes.Equal(again, pemCert) {
		t.Errorf("the certificate was not reused across a restart (err %v)", err)
	}
}

func TestURLs(t *testing.T) {
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	tests := []struct {
		name, addr, scheme, public, host, wantLocal, wantPub string
	}{
		{"loopback", "127.0.0.1:5555", "http", "", "box", "http://127.0.0.1:5555", "http://127.0.0.1:5555"},
		{"wildcard v6 uses the hostname", "[::]:5555", "http", "", "box", "http://127.0.0.1:5555", "http://box:5555"},
		{"wildcard v4 with TLS", "0.0.0.0:5555", "https", "", "box", "https://127.0.0.1:5555", "https://box:5555"},
		{"wildcard without hostname", "0.0.0.0:5555", "http", "", "", "http://127.0.0.1:5555", "http://127.0.0.1:5555"},
		{"public url wins", "0.0.0.0:5555", "http", "https://berth.example.com", "box", "http://127.0.0.1:5555", "https://berth.example.com"},
		{"specific address", "192.0.2.7:80", "http", "", "box", "http://192.0.2.7:80", "http://192.0.2.7:80"},
	}
	for _, tt := range tests {
		local, pub := urls(tcp(tt.addr), tt.scheme, tt.public, tt.host)
		if local != tt.wantLocal || pub != tt.wantPub {
			t.Errorf("%s: urls = %s, %s; want %s, %s", tt.name, local, pub, tt.wantLocal, tt.wantPub)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "0.0.0.0:1": false, "[::]:1": false, "192.0.2.7:1": false} {
		if got := isLoopback(tcp(addr)); got != want {
			t.Errorf("isLoopback(%s) = %v", addr, got)
		}
	}
}

func TestControlPlaneBodyDeadline(t *testing.T) {
	const d = 200 * time.Millisecond
	type result struct {
		path    string
		readErr error
		ctxErr  error
	}
	results := make(chan result, 4)
	h := bodyDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		if err == nil {
			// A handler that runs past the deadline after reading its body keeps its context.
			select {
			case <-r.Context().Done():
			case <-time.After(3 * d):
			}
		}
		results <- result{r.URL.Path, err, r.Context().Err()}
	}), d)
	srv := httptest.NewServer(h)
	defer srv.Close()

	slow := func(path string) {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: berth\r\nContent-Length: 10\r\n\r\n12345", path)
		select {
		case got := <-results:
			if got.readErr == nil {
				t.Errorf("%s: a body that stopped arriving was read in full", got.path)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: a body that stopped arriving is still awaited after 5 s", path)
		}
		c.Close()
	}
	slow(wire.APIPrefix + "/endpoints")
	// Artifact uploads and scoring have no body deadline: the handler still waits.
	for _, path := range []string{wire.APIPrefix + "/artifacts", "/endpoints/e/score"} {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: berth\r\nContent-Length: 10\r\n\r\n12345", path)
		select {
		case got := <-results:
			t.Errorf("%s: the body read ended after %v: %v", path, d, got.readErr)
		case <-time.After(3 * d):
		}
		c.Close()
		<-results
	}

	resp, err := http.Post(srv.URL+wire.APIPrefix+"/endpoints", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := <-results; got.readErr != nil || got.ctxErr != nil {
		t.Errorf("a complete body: read %v, context %v after the deadline", got.readErr, got.ctxErr)
	}
}
