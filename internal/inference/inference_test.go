package inference

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/instance"
)

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// await waits until the log holds every one of want (access lines are written up to
// accessHold after their request), at most a few seconds, and returns it.
func (l *lockedLog) await(want ...string) string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := l.String()
		all := true
		for _, w := range want {
			all = all && strings.Contains(s, w)
		}
		if all || time.Now().After(deadline) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serve starts an instance for script and waits until it is healthy.
func serve(t *testing.T, script string, workers int) (string, *lockedLog) {
	t.Helper()
	return serveWith(t, Config{EntryScript: filepath.Join("testdata", script), ModelDir: t.TempDir(), WorkerCount: workers})
}

// serveWith starts an instance of cfg on a free local port, logging to a buffer, and
// waits until it is healthy.
func serveWith(t *testing.T, cfg Config) (string, *lockedLog) {
	t.Helper()
	log := &lockedLog{}
	port := freePort(t)
	cfg.Host, cfg.Port, cfg.Log = "127.0.0.1", port, log
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, cfg)
	}()
	t.Cleanup(func() { cancel(); <-done })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url + "/"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(b) == "Healthy" {
				return url, log
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("instance not healthy; log:\n%s", log)
	return "", nil
}

func post(t *testing.T, url, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
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

func TestScoreEchoHeadersAndLogs(t *testing.T) {
	url, log := serve(t, "echo_score.py", 1)
	resp, body := post(t, url+"/score", "hello", "X-Test", "yes", "x-request-id", "req-123")
	if resp.StatusCode != 200 || body != `{"echo": "hello", "ua": "yes"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("x-request-id") != "req-123" || resp.Header.Get("x-ms-run-function-failed") != "False" || resp.Header.Get("x-ms-run-fn-exec-ms") == "" {
		t.Fatalf("headers %v", resp.Header)
	}
	l := log.await("azmlinfsrv - POST /score 200 ")
	for _, want := range []string{"echo init done", "Worker with pid", "[req-123] scoring 5 chars", "azmlinfsrv - POST /score 200 "} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
	resp, body = post(t, url+"/score", "boom")
	var e struct {
		Exception struct{ Type, Message string }
	}
	json.Unmarshal([]byte(body), &e)
	if resp.StatusCode != 500 || e.Exception.Type != "ValueError" || resp.Header.Get("x-ms-run-function-failed") != "True" {
		t.Fatalf("exception: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(log.String(), "Traceback") {
		t.Fatalf("traceback not logged:\n%s", log)
	}
	if resp, _ := post(t, url+"/score", "\xff\xfe"); resp.StatusCode != 400 {
		t.Fatalf("non-UTF-8: %d", resp.StatusCode)
	}
	if resp, _ := post(t, url+"/score", "x", "x-request-id", strings.Repeat("a", 101)); resp.StatusCode != 431 {
		t.Fatalf("long request id: %d", resp.StatusCode)
	}
	get, _ := http.Get(url + "/score?a=1&b=x")
	b, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if !strings.Contains(string(b), `{\"a\": 1, \"b\": \"x\"}`) {
		t.Fatalf("GET query as JSON: %s", b)
	}
	for path, status := range map[string]int{"/swagger.json": 200, "/swagger.json?version=3": 200, "/swagger.json?version=9": 404, "/nope": 404} {
		resp, err := http.Get(url + path)
		if err != nil || resp.StatusCode != status {
			t.Errorf("%s: %v %v", path, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
}

func TestWorkerDeathIs502ThenRecovers(t *testing.T) {
	url, _ := serve(t, "echo_score.py", 1)
	if resp, body := post(t, url+"/score", "die"); resp.StatusCode != 502 {
		t.Fatalf("worker exit: %d %s", resp.StatusCode, body)
	}
	if resp, body := post(t, url+"/score", "again"); resp.StatusCode != 200 {
		t.Fatalf("after restart: %d %s", resp.StatusCode, body)
	}
}

func TestTwoWorkersServeConcurrently(t *testing.T) {
	url, _ := serve(t, "echo_score.py", 2)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Not post(): it calls t.Fatal, which must not run outside the test's goroutine.
			resp, err := http.Post(url+"/score", "text/plain", strings.NewReader("sleep 0.5"))
			if err != nil {
				t.Errorf("score: %v", err)
				return
			}
			defer resp.Body.Close()
			if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("two 0.5 s requests on two workers took %s", d)
	}
}

func TestRawHTTP(t *testing.T) {
	url, _ := serve(t, "raw_score.py", 1)
	resp, body := post(t, url+"/score", "abc")
	if resp.StatusCode != 418 || body != "ABC" || len(resp.Header.Values("X-Custom")) != 2 {
		t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
	get, _ := http.Get(url + "/score?a=7")
	b, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if string(b) != "args 7" {
		t.Fatalf("GET: %q", b)
	}
	for set, want := range map[string]int{"201": 201, "202 Accepted": 202} {
		resp, err := http.Get(url + "/score?status=" + neturl.QueryEscape(set))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("status %q set after construction: %d, want %d", set, resp.StatusCode, want)
		}
	}
	for typ, want := range map[string]string{"image/jpg": "image/jpg", "text/csv": "text/csv; charset=utf-8", "application/atom+xml": "application/atom+xml; charset=utf-8"} {
		resp, err := http.Get(url + "/score?type=" + neturl.QueryEscape(typ))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Type"); got != want {
			t.Errorf("mimetype %s set after construction: Content-Type %q, want %q", typ, got, want)
		}
	}
}

func TestStartupFailures(t *testing.T) {
	for script, want := range map[string]struct {
		code diag.Code
		text string
	}{
		"syntax_score.py":   {diag.UserScriptImportError, "SyntaxError"},
		"import_score.py":   {diag.UserScriptImportError, "BERTH_PYTHON"},
		"initfail_score.py": {diag.UserScriptInitFailed, "model missing (initfail_score.py, line 2, in init)"},
		// raised in a library: the message also names the script's line that called it
		"initlib_score.py": {diag.UserScriptInitFailed, "; from initlib_score.py, line 4, in init)"},
		"norun_score.py":   {diag.UserScriptFunctionNotFound, "run()"},
	} {
		t.Run(script, func(t *testing.T) {
			status := filepath.Join(t.TempDir(), "status.json")
			log := &lockedLog{}
			err := Serve(context.Background(), Config{EntryScript: filepath.Join("testdata", script), Host: "127.0.0.1", Port: freePort(t), StatusFile: status, Log: log})
			de := diag.As(err)
			if de == nil || de.Code != want.code || !strings.Contains(de.Message, want.text) {
				t.Fatalf("err = %v, want %s containing %q\nlog:\n%s", err, want.code, want.text, log)
			}
			written, err := instance.ReadStatus(status)
			if err != nil || written.Error == nil || written.Error.Code != want.code || written.Phases != nil {
				b, _ := os.ReadFile(status)
				t.Fatalf("status file: %s (%v)", b, err)
			}
		})
	}
}

// TestLogFormatOfTheScript: the worker skips the caller's file and line in log records
// only while its own format is in use; a script that sets a format using them gets them.
func TestLogFormatOfTheScript(t *testing.T) {
	url, log := serve(t, "logfmt_score.py", 1)
	for i := 0; i < 2; i++ {
		if resp, body := post(t, url+"/score", `"x"`); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	l := log.await("scored here")
	if !strings.Contains(l, "logfmt_score.py:11 MainThread scored here") {
		t.Fatalf("the script's format lost the caller's file, line or thread:\n%s", l)
	}
}

// TestRootLoggerLinesAreTheSameOnBothPaths: lines the worker writes directly for the
// root logger equal those logging's own path writes (which a script's filter restores).
func TestRootLoggerLinesAreTheSameOnBothPaths(t *testing.T) {
	url, log := serve(t, "logpaths_score.py", 1)
	var paths []string
	for i, data := range []string{"a", "switch", "a"} {
		resp, body := post(t, url+"/score", `"`+data+`"`, "x-request-id", fmt.Sprintf("req-%d", i))
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		paths = append(paths, body)
	}
	if paths[0] != `{"direct": true}` || paths[2] != `{"direct": false}` {
		t.Fatalf("the paths taken were %v: want the direct one first, logging's own after the filter", paths)
	}
	log.await("[req-2] 5% done")
	lines := map[string][]string{} // a request's lines, without the time stamp
	cur := ""
	for _, l := range strings.Split(log.String(), "\n") {
		if _, rest, ok := strings.Cut(l, " - [req-"); ok {
			cur = rest[:1]
		} else if l == "" || strings.Contains(l, "azmlinfsrv") || cur == "" {
			continue // the server's own lines
		}
		if f := strings.SplitN(l, " ", 3); len(f) == 3 && strings.Contains(l, " - [req-") {
			l = f[2]
		}
		lines[cur] = append(lines[cur], strings.Replace(l, "[req-"+cur+"]", "[req]", 1))
	}
	if len(lines["0"]) != 6 || !slices.Equal(lines["0"], lines["2"]) {
		t.Fatalf("direct path wrote:\n%q\nlogging's path wrote:\n%q", lines["0"], lines["2"])
	}
}

func TestWorkersRunUnderSchedBatchUnlessTheDeploymentSaysNormal(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SCHED_BATCH is Linux's")
	}
	for env, want := range map[string]string{"": `"batch"`, "normal": `"other"`} {
		cfg := Config{EntryScript: filepath.Join("testdata", "sched_score.py"), ModelDir: t.TempDir(), WorkerCount: 1}
		if env != "" {
			cfg.Env = []string{"BERTH_WORKER_SCHED=" + env}
		}
		url, log := serveWith(t, cfg)
		if resp, body := post(t, url+"/score", "{}"); resp.StatusCode != 200 || body != want {
			t.Errorf("BERTH_WORKER_SCHED=%q: %d %s, want %s; log:\n%s", env, resp.StatusCode, body, want, log)
		}
	}
}
