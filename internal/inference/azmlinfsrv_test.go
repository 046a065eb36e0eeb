package inference

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveConfig starts an instance of echo_score.py with cfg and waits until the port
// answers healthy.
func serveConfig(t *testing.T, cfg Config) (string, *lockedLog) {
	t.Helper()
	log := &lockedLog{}
	cfg.EntryScript, cfg.ModelDir, cfg.Host, cfg.Log = filepath.Join("testdata", "echo_score.py"), t.TempDir(), "127.0.0.1", log
	if cfg.Port == 0 {
		cfg.Port = freePort(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
	url := fmt.Sprintf("http://127.0.0.1:%d", cfg.Port)
	waitHealthy(t, url, log)
	return url, log
}

func waitHealthy(t *testing.T, url string, log *lockedLog) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url + "/"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(b) == "Healthy" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not healthy; log:\n%s", url, log)
}

func do(t *testing.T, method, url string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestSeparateHealthPort: with a health port, both ports answer the probe (gunicorn
// binds both to the same app) and the settings block names both.
func TestSeparateHealthPort(t *testing.T) {
	health := freePort(t)
	url, log := serveConfig(t, Config{HealthPort: health})
	waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d", health), log)
	l := log.String()
	for _, want := range []string{fmt.Sprintf("Health Port: %d\n", health), fmt.Sprintf("Liveness Probe: GET   127.0.0.1:%d/\n", health), "Score:          POST  127.0.0.1:" + strings.TrimPrefix(url, "http://127.0.0.1:") + "/score\n"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
}

// TestScoringTimeout: past SCORING_TIMEOUT_MS, azmlinfsrv's 500 and message; run() is
// interrupted in its worker, which lives on and serves the next request; the time
// counts from run()'s start, not from when the request arrived.
func TestScoringTimeout(t *testing.T) {
	url, _ := serveConfig(t, Config{ScoringTimeout: 300 * time.Millisecond})
	_, before := post(t, url+"/score", "pid")
	queued := make(chan int, 1)
	go func() {
		// Sent while "sleep 0.2" runs: it waits its turn, then runs within the limit.
		time.Sleep(50 * time.Millisecond)
		resp, err := http.Post(url+"/score", "text/plain", strings.NewReader("sleep 0.2"))
		if err != nil {
			queued <- 0
			return
		}
		resp.Body.Close()
		queued <- resp.StatusCode
	}()
	if resp, body := post(t, url+"/score", "sleep 0.2"); resp.StatusCode != 200 {
		t.Fatalf("a run() within the limit: %d %s", resp.StatusCode, body)
	}
	if code := <-queued; code != 200 {
		t.Fatalf("a request that queued 150 ms and ran 200 ms: %d, want 200 (the limit counts from run()'s start)", code)
	}
	resp, body := post(t, url+"/score", "sleep 3")
	if resp.StatusCode != 500 || strings.TrimSpace(body) != `{"message": "Scoring timeout after 300 ms"}` && strings.TrimSpace(body) != `{"message":"Scoring timeout after 300 ms"}` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("x-ms-run-function-failed") != "True" {
		t.Fatalf("x-ms-run-function-failed = %q", resp.Header.Get("x-ms-run-function-failed"))
	}
	if resp, body := post(t, url+"/score", "again"); resp.StatusCode != 200 {
		t.Fatalf("after the timeout: %d %s", resp.StatusCode, body)
	}
	if _, after := post(t, url+"/score", "pid"); after != before {
		t.Fatalf("worker pid %s after the timeout, was %s: the timed-out worker should live on", after, before)
	}
}

// TestWorkerTimeoutClosesTheConnection: past WORKER_TIMEOUT the connection is closed
// without an answer, as when gunicorn kills its worker.
func TestWorkerTimeoutClosesTheConnection(t *testing.T) {
	url, log := serveConfig(t, Config{WorkerTimeout: 300 * time.Millisecond, ScoringTimeout: time.Hour})
	resp, err := http.Post(url+"/score", "text/plain", strings.NewReader("sleep 3"))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d, want the connection closed", resp.StatusCode)
	}
	if !strings.Contains(log.String(), "C ["+fmt.Sprint(os.Getpid())+"] azmlinfsrv - WORKER TIMEOUT") {
		t.Fatalf("log lacks WORKER TIMEOUT:\n%s", log)
	}
}

// TestVersionAndRequestHeaders: x-ms-server-version in azmlinfsrv's format on every
// route, and the request ids as azmlinfsrv echoes them.
func TestVersionAndRequestHeaders(t *testing.T) {
	url, log := serveConfig(t, Config{})
	for _, path := range []string{"/", "/score", "/swagger.json"} {
		resp, _ := do(t, "GET", url+path)
		if got := resp.Header.Get("x-ms-server-version"); got != "azmlinfsrv/1.5.1" {
			t.Errorf("GET %s: x-ms-server-version %q, want azmlinfsrv/1.5.1", path, got)
		}
	}
	resp, _ := do(t, "POST", url+"/score", "x-ms-client-request-id", "client-1", "TraceId", "trace-9")
	if resp.Header.Get("x-ms-request-id") != "client-1" || resp.Header.Get("x-ms-client-request-id") != "client-1" || resp.Header.Get("TraceId") != "trace-9" || len(resp.Header.Get("x-request-id")) != 36 {
		t.Fatalf("request ids: %v", resp.Header)
	}
	if resp, body := do(t, "PUT", url+"/score"); resp.StatusCode != 405 || !strings.Contains(body, msgMethodNotAllowed) {
		t.Fatalf("PUT /score: %d %s", resp.StatusCode, body)
	}
	l := log.await("azmlinfsrv - POST /score 200 ")
	for _, want := range []string{"\nServer Settings\n---------------\nEntry Script Name: ", "\nInferencing HTTP server version: azmlinfsrv/1.5.1\n",
		"\nWorker Count: 1\n", " I [" + fmt.Sprint(os.Getpid()) + "] azmlinfsrv - POST /score 200 "} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
	if strings.Contains(l, "GET / ") {
		t.Errorf("probes are logged:\n%s", l)
	}

	url, _ = serveConfig(t, Config{NoServerVersion: true})
	if resp, _ := do(t, "GET", url+"/score"); resp.Header.Get("x-ms-server-version") != "" {
		t.Fatalf("x-ms-server-version sent with SERVER_VERSION_LOG_RESPONSE_ENABLED=false: %q", resp.Header.Get("x-ms-server-version"))
	}
}

// TestCORS answers preflights and adds Access-Control-* headers as flask-cors does for
// azmlinfsrv; without origins, OPTIONS is a bare 200.
func TestCORS(t *testing.T) {
	url, _ := serveConfig(t, Config{CORSOrigins: []string{"https://a.com", "https://b.com"}})
	resp, _ := do(t, "OPTIONS", url+"/score", "Origin", "https://a.com", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type, authorization")
	want := map[string]string{"Access-Control-Allow-Origin": "https://a.com", "Access-Control-Allow-Methods": "GET, POST",
		"Access-Control-Allow-Headers": "authorization, content-type", "Vary": "Origin"}
	if resp.StatusCode != 200 {
		t.Fatalf("preflight: %d", resp.StatusCode)
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("preflight %s = %q, want %q", k, got, v)
		}
	}
	resp, _ = do(t, "POST", url+"/score", "Origin", "https://A.com")
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://A.com" || resp.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("POST from an allowed origin: %v", resp.Header)
	}
	resp, _ = do(t, "POST", url+"/score", "Origin", "https://evil.com")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("POST from another origin: %v", resp.Header)
	}
	resp, _ = do(t, "GET", url+"/score")
	if got := resp.Header.Values("Access-Control-Allow-Origin"); strings.Join(got, " ") != "https://a.com https://b.com" {
		t.Errorf("no Origin: Access-Control-Allow-Origin %q, want both origins", got)
	}

	url, _ = serveConfig(t, Config{CORSOrigins: []string{"*"}})
	resp, _ = do(t, "GET", url+"/score")
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Vary") != "" {
		t.Errorf("* without Origin: %v", resp.Header)
	}
	resp, _ = do(t, "GET", url+"/score", "Origin", "https://x.org")
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://x.org" || resp.Header.Get("Vary") != "Origin" {
		t.Errorf("* with Origin: %v", resp.Header)
	}

	url, _ = serveConfig(t, Config{})
	resp, body := do(t, "OPTIONS", url+"/score", "Origin", "https://a.com", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("OPTIONS without CORS: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

// TestPortInUse: a port in use is retried, then an error wrapping ErrPortInUse, with
// gunicorn's lines in the log.
func TestPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	log := &lockedLog{}
	err = Serve(context.Background(), Config{EntryScript: filepath.Join("testdata", "echo_score.py"), Host: "127.0.0.1", Port: port, Log: log, listenWait: 10 * time.Millisecond})
	if !errors.Is(err, ErrPortInUse) {
		t.Fatalf("err = %v, want ErrPortInUse", err)
	}
	if n := strings.Count(log.String(), fmt.Sprintf("Connection in use: ('127.0.0.1', %d)", port)); n != listenTries {
		t.Fatalf("%d tries logged, want %d:\n%s", n, listenTries, log)
	}
}
