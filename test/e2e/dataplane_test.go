//go:build unix

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// behaviourScript does what the request body says: sleep N, raise, answer with a status.
const behaviourScript = `import json, time
from azureml.contrib.services.aml_response import AMLResponse

def init():
    print("behaviour script ready")

def run(raw):
    req = json.loads(raw)
    if "sleep" in req:
        time.sleep(req["sleep"])
    if req.get("raise"):
        raise ValueError(req["raise"])
    if "status" in req:
        return AMLResponse(req["body"], req["status"])
    return {"ok": True}
`

// deployScript creates endpoint "dataplane" (once) and deployment name running script with extra YAML.
func deployScript(t *testing.T, s *server, name, script, extra string, flags ...string) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"code/score.py": script,
		"model/m.txt":   "x",
		"dep.yml": fmt.Sprintf("name: %s\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\ninstance_count: 1\n%s",
			name, extra),
	})
	if r := s.berth("online-endpoint", "show", "-n", "dataplane"); r.code != 0 {
		s.ok("online-endpoint", "create", "-n", "dataplane")
	}
	s.ok(append([]string{"online-deployment", "create", "-f", filepath.Join(dir, "dep.yml")}, flags...)...)
}

func TestAdmissionFailsFastBeyondTwiceConcurrency(t *testing.T) {
	s := startServer(t, "")
	deployScript(t, s, "slow", behaviourScript, "request_settings: {max_concurrent_requests_per_instance: 1, max_queue_wait_ms: 3000}\n", "--all-traffic")
	key, _ := s.keys("dataplane")
	type res struct {
		status int
		reason string
		took   time.Duration
	}
	results := make([]res, 10)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			status, h, _, err := s.tryScore("dataplane", key, `{"sleep": 1}`)
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = res{status, h.Get("ms-azureml-model-error-reason"), time.Since(t0)}
			if status == 429 && h.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		}()
	}
	close(start)
	wg.Wait()
	ok, rejected := 0, 0
	for _, r := range results {
		switch {
		case r.status == 200:
			ok++
		case r.status == 429 && r.reason == "too_many_pending_request":
			rejected++
			if r.took > 100*time.Millisecond {
				t.Errorf("a 429 took %s, want < 100ms", r.took)
			}
		default:
			t.Errorf("unexpected answer %+v", r)
		}
	}
	// 2 × max_concurrent_requests_per_instance (1) × instances (1) = 2 admitted.
	if ok != 2 || rejected != 8 {
		t.Fatalf("%d succeeded and %d got 429, want 2 and 8: %+v", ok, rejected, results)
	}
}

func TestTimeoutThenServedAgain(t *testing.T) {
	s := startServer(t, "")
	deployScript(t, s, "slow", behaviourScript, "request_settings: {request_timeout_ms: 500}\n", "--all-traffic")
	key, _ := s.keys("dataplane")
	t0 := time.Now()
	status, _, body := s.score("dataplane", key, `{"sleep": 2}`)
	took := time.Since(t0)
	if status != 408 || took < 450*time.Millisecond || took > 1500*time.Millisecond {
		t.Fatalf("slow run(): %d after %s (%s), want 408 after about 0.5s", status, took, body)
	}
	if status, _, body := s.score("dataplane", key, `{}`); status != 200 {
		t.Fatalf("the request after a timeout: %d %s", status, body)
	}
}

func TestModelErrorsAre424(t *testing.T) {
	s := startServer(t, "", "BERTH_MAX_REQUEST_BODY=1000", "BERTH_ENDPOINT_RPS=20")
	deployScript(t, s, "blue", behaviourScript, "", "--all-traffic")
	key, _ := s.keys("dataplane")
	status, h, body := s.score("dataplane", key, `{"raise": "bad feature"}`)
	if status != 424 || h.Get("ms-azureml-model-error-statuscode") != "500" || h.Get("ms-azureml-model-error-reason") == "" ||
		!strings.Contains(body, "ValueError") || !strings.Contains(body, "bad feature") || strings.Contains(body, "Traceback") {
		t.Fatalf("run() raising: %d %v %s", status, h, body)
	}
	status, h, body = s.score("dataplane", key, `{"status": 418, "body": "nope"}`)
	if status != 424 || h.Get("ms-azureml-model-error-statuscode") != "418" || body != "nope" {
		t.Fatalf("AMLResponse 418: %d %v %q", status, h, body)
	}
	logs := s.ok("online-deployment", "get-logs", "-e", "dataplane", "-n", "blue")
	if !strings.Contains(logs, "Traceback") || !strings.Contains(logs, "ValueError: bad feature") {
		t.Fatalf("traceback not in the inference-server log:\n%s", logs)
	}
	if status, _, _ := s.score("dataplane", key, "\xff\xfe"); status != 400 {
		t.Fatalf("non-UTF-8 body: %d, want 400", status)
	}
	if status, _, _ := s.score("dataplane", key, strings.Repeat("x", 2000)); status != 413 {
		t.Fatalf("body over the limit: %d, want 413", status)
	}
	limited := 0
	for i := 0; i < 60; i++ {
		status, h, _ := s.score("dataplane", key, `{}`)
		if status == 429 && h.Get("ms-azureml-model-error-reason") == "rate_limited" {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("60 quick requests against a 20 requests/s limit were never rate limited")
	}
}

func TestMirrorTraffic(t *testing.T) {
	s := startServer(t, "")
	deployScript(t, s, "blue", behaviourScript, "", "--all-traffic")
	deployScript(t, s, "green", behaviourScript, "")
	if r := s.berth("online-endpoint", "update", "-n", "dataplane", "--mirror-traffic", "green=60"); r.code == 0 || !strings.Contains(r.stderr, "50") {
		t.Fatalf("mirror 60%% accepted: %+v", r)
	}
	if r := s.berth("online-endpoint", "update", "-n", "dataplane", "--mirror-traffic", "blue=10"); r.code == 0 || !strings.Contains(r.stderr, "live traffic") {
		t.Fatalf("mirroring to a live deployment accepted: %+v", r)
	}
	s.ok("online-endpoint", "update", "-n", "dataplane", "--mirror-traffic", "green=20")
	key, _ := s.keys("dataplane")
	greenCount := func() int {
		return strings.Count(s.ok("online-deployment", "get-logs", "-e", "dataplane", "-n", "green"), "POST /score 200")
	}
	for i := 0; i < 500; i++ {
		status, h, _ := s.score("dataplane", key, `{}`)
		if status != 200 || h.Get("azureml-model-deployment") != "blue" {
			t.Fatalf("request %d: %d from %q", i, status, h.Get("azureml-model-deployment"))
		}
	}
	var n int
	last := -1
	eventually(t, 10*time.Second, "mirrored requests to settle", func() bool {
		n = greenCount()
		settled := n == last
		last = n
		return settled
	})
	if n < 60 || n > 140 {
		t.Fatalf("green saw %d of 500 requests mirrored, want 12%%–28%%", n)
	}
	for i := 0; i < 50; i++ {
		s.score("dataplane", key, `{}`, "azureml-model-deployment", "blue")
	}
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if m := greenCount(); m != n {
			t.Fatalf("header-targeted requests were mirrored: green went from %d to %d", n, m)
		}
	}
}
