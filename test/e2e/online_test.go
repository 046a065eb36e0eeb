//go:build unix

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// deployQuickstart creates the quickstart endpoint and its blue deployment with all traffic.
func deployQuickstart(t *testing.T, s *server) {
	t.Helper()
	s.ok("online-endpoint", "create", "-f", example("quickstart", "endpoint.yml"))
	s.ok("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"), "--all-traffic")
}

func TestQuickstartScript(t *testing.T) {
	cmd := exec.Command("bash", example("quickstart", "run.sh"))
	// run.sh keeps its data in its own temporary BERTH_DATA_DIR; drop the caller's other
	// BERTH_* settings (BERTH_SERVER, BERTH_TOKEN, ...) so it cannot reach a server of
	// theirs. HOME stays: a temporary one sends `go build` to a fresh module and build
	// cache, which re-downloads every module (about 170 s).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BERTH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "[7.0, 1.5]") {
		t.Fatalf("run.sh did not print the prediction [7.0, 1.5]:\n%s", out)
	}
	// The batch job's first output row: sample_00.csv's first row (5, 2) → 0.5 + 2*5 + 2.
	if !strings.Contains(string(out), "sample_00.csv 0 12.50") {
		t.Fatalf("run.sh did not print the batch job's first row:\n%s", out)
	}
}

func TestDeployInvokeLogsAndKeys(t *testing.T) {
	s := startServer(t, "")
	deployQuickstart(t, s)

	var ep struct {
		ProvisioningState string         `json:"provisioning_state"`
		ScoringURI        string         `json:"scoring_uri"`
		Traffic           map[string]int `json:"traffic"`
		AuthMode          string         `json:"auth_mode"`
	}
	s.okJSON(&ep, "online-endpoint", "show", "-n", "quickstart")
	if ep.ProvisioningState != "Succeeded" || ep.Traffic["blue"] != 100 || ep.AuthMode != "key" || ep.ScoringURI != s.URL+"/endpoints/quickstart/score" {
		t.Fatalf("endpoint show = %+v", ep)
	}
	var dep struct {
		ProvisioningState string `json:"provisioning_state"`
		Instances         []struct {
			Phases map[string]float64
		}
	}
	s.okJSON(&dep, "online-deployment", "show", "-e", "quickstart", "-n", "blue")
	if dep.ProvisioningState != "Succeeded" || len(dep.Instances) != 1 || dep.Instances[0].Phases["ready_ms"] <= 0 || dep.Instances[0].Phases["init_ms"] <= 0 {
		t.Fatalf("deployment show = %+v", dep)
	}
	// The phase timings agree everywhere: diagnose prints the line the storage-initializer
	// log has, with the same numbers.
	si := s.ok("online-deployment", "get-logs", "-e", "quickstart", "-n", "blue", "--container", "storage-initializer")
	_, phases, _ := strings.Cut(si, "instance 0 ready: ")
	phases, _, _ = strings.Cut(phases, "\n")
	if out := s.ok("diagnose", "-e", "quickstart"); !strings.Contains(out, "Healthy") || phases == "" || !strings.Contains(out, phases) ||
		!strings.Contains(out, "instance 0: Ready, 0 restarts") {
		t.Fatalf("diagnose of a healthy deployment does not show the log's phases %q, or its instance line:\n%s", phases, out)
	}

	out := s.ok("online-endpoint", "invoke", "-n", "quickstart", "--request-file", example("quickstart", "sample-request.json"))
	if strings.TrimSpace(out) != "[7.0, 1.5]" {
		t.Fatalf("invoke printed %q, want [7.0, 1.5]", out)
	}

	primary, secondary := s.keys("quickstart")
	body, _ := os.ReadFile(example("quickstart", "sample-request.json"))
	status, h, got := s.score("quickstart", primary, string(body), "x-ms-client-request-id", "my/client id!")
	if status != 200 || strings.TrimSpace(got) != "[7.0, 1.5]" {
		t.Fatalf("curl-style score: %d %q", status, got)
	}
	if h.Get("azureml-model-deployment") != "blue" || len(h.Get("x-request-id")) != 36 || h.Get("x-ms-client-request-id") != "myclientid" {
		t.Fatalf("response headers: %v", h)
	}
	if status, _, _ := s.score("quickstart", secondary, string(body)); status != 200 {
		t.Fatalf("secondary key: %d", status)
	}
	if status, _, _ := s.score("quickstart", "wrong-key", string(body)); status != 401 {
		t.Fatalf("wrong key: %d, want 401", status)
	}
	if status, _, _ := s.score("quickstart", "", string(body)); status != 401 {
		t.Fatalf("missing key: %d, want 401", status)
	}

	t.Run("get-logs", func(t *testing.T) {
		logs := s.ok("online-deployment", "get-logs", "-e", "quickstart", "-n", "blue")
		if !strings.Contains(logs, "quickstart model loaded") {
			t.Fatalf("inference-server log lacks the init message:\n%s", logs)
		}
		if !strings.Contains(logs, "scored 2 rows") {
			t.Fatalf("inference-server log lacks run()'s logging:\n%s", logs)
		}
		si := s.ok("online-deployment", "get-logs", "-e", "quickstart", "-n", "blue", "--container", "storage-initializer")
		if !strings.Contains(si, "linked (read-only) model") || !strings.Contains(si, "copied code") || !strings.Contains(si, "bytes") ||
			!strings.Contains(si, "import of score.py") || !strings.Contains(si, "init()") {
			t.Fatalf("storage-initializer log lacks the copy record:\n%s", si)
		}
		five := s.ok("online-deployment", "get-logs", "-e", "quickstart", "-n", "blue", "--lines", "5")
		if n := len(strings.Split(strings.TrimRight(five, "\n"), "\n")); n > 5 || strings.TrimSpace(five) == "" {
			t.Fatalf("--lines 5 returned %d lines:\n%s", n, five)
		}
	})

	t.Run("regenerate-keys", func(t *testing.T) {
		s.ok("online-endpoint", "regenerate-keys", "-n", "quickstart", "--key-type", "primary")
		newPrimary, newSecondary := s.keys("quickstart")
		if newPrimary == primary || newSecondary != secondary {
			t.Fatalf("keys after regenerating primary: primary changed=%v secondary changed=%v", newPrimary != primary, newSecondary != secondary)
		}
		if status, _, _ := s.score("quickstart", primary, string(body)); status != 401 {
			t.Fatalf("old primary: %d, want 401", status)
		}
		if status, _, _ := s.score("quickstart", secondary, string(body)); status != 200 {
			t.Fatalf("secondary after regenerating primary: %d", status)
		}
		if status, _, _ := s.score("quickstart", newPrimary, string(body)); status != 200 {
			t.Fatalf("new primary: %d", status)
		}
	})

	t.Run("output formats", func(t *testing.T) {
		table := s.ok("online-endpoint", "list", "-o", "table")
		if !strings.Contains(table, "quickstart") || !strings.Contains(table, "PROVISIONING STATE") {
			t.Fatalf("table output:\n%s", table)
		}
		y := s.ok("online-deployment", "show", "-e", "quickstart", "-n", "blue", "-o", "yaml")
		if !strings.Contains(y, "provisioning_state: Succeeded") {
			t.Fatalf("yaml output:\n%s", y)
		}
	})

	t.Run("delete", func(t *testing.T) {
		r := s.berth("online-deployment", "delete", "-e", "quickstart", "-n", "blue", "--yes")
		if r.code == 0 || !strings.Contains(r.stderr, "traffic") {
			t.Fatalf("deleting a deployment with traffic should fail and say why: %+v", r)
		}
		s.ok("online-endpoint", "delete", "-n", "quickstart", "--yes")
		if r := s.berth("online-endpoint", "show", "-n", "quickstart"); r.code == 0 || !strings.Contains(r.stderr, "EndpointNotFound") {
			t.Fatalf("show after delete: %+v", r)
		}
		if _, err := os.Stat(filepath.Join(s.dataDir, "instances", "quickstart")); !os.IsNotExist(err) {
			t.Fatalf("instance files left after delete: %v", err)
		}
	})
}

func TestTrafficSplitAndTargeting(t *testing.T) {
	s := startServer(t, "")
	deployQuickstart(t, s)
	s.ok("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"), "-n", "green")
	key, _ := s.keys("quickstart")
	body := `{"data": [[1, 2, 3, 4]]}`

	servedBy := func(n int, headers ...string) map[string]int {
		counts := map[string]int{}
		for i := 0; i < n; i++ {
			status, h, got := s.score("quickstart", key, body, headers...)
			if status != 200 {
				t.Fatalf("score: %d %s", status, got)
			}
			counts[h.Get("azureml-model-deployment")]++
		}
		return counts
	}
	if c := servedBy(40); c["blue"] != 40 {
		t.Fatalf("green at 0%%: un-targeted requests went to %v", c)
	}
	if c := servedBy(10, "azureml-model-deployment", "green"); c["green"] != 10 {
		t.Fatalf("header-targeted requests went to %v", c)
	}
	out := s.ok("online-endpoint", "invoke", "-n", "quickstart", "-d", "green", "--request-file", example("quickstart", "sample-request.json"))
	if strings.TrimSpace(out) != "[7.0, 1.5]" {
		t.Fatalf("invoke -d green: %q", out)
	}

	s.ok("online-endpoint", "update", "-n", "quickstart", "--traffic", "blue=50 green=50")
	c := servedBy(400)
	for _, d := range []string{"blue", "green"} {
		if c[d] < 140 || c[d] > 260 {
			t.Fatalf("50/50 split over 400 requests: %v (want each 35%%–65%%)", c)
		}
	}

	r := s.berth("online-endpoint", "update", "-n", "quickstart", "--traffic", "blue=50 green=40")
	if r.code == 0 || !strings.Contains(r.stderr, "BadArgument") {
		t.Fatalf("traffic summing to 90 should be rejected with BadArgument: %+v", r)
	}
	var ep struct{ Traffic map[string]int }
	s.okJSON(&ep, "online-endpoint", "show", "-n", "quickstart")
	if ep.Traffic["blue"] != 50 || ep.Traffic["green"] != 50 {
		t.Fatalf("traffic changed by a rejected update: %v", ep.Traffic)
	}
}

func TestScriptFailures(t *testing.T) {
	s := startServer(t, "")
	s.ok("online-endpoint", "create", "-f", example("quickstart", "endpoint.yml"))
	cases := []struct {
		name, script, code, pyText string
	}{
		{"syntax", "def init():\n    pass\n\ndef run(data)\n    return data\n", "UserScriptImportError", "SyntaxError"},
		{"initraise", "def init():\n    raise RuntimeError('model file is corrupt')\n\ndef run(data):\n    return data\n", "UserScriptInitFailed", "model file is corrupt"},
		{"norun", "def init():\n    pass\n", "UserScriptFunctionNotFound", "run"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{
				"code/score.py": tc.script,
				"model/m.txt":   "x",
				"dep.yml": fmt.Sprintf(`name: %s
endpoint_name: quickstart
model: {path: ./model}
code_configuration: {code: ./code, scoring_script: score.py}
instance_count: 1
`, tc.name),
			})
			r := s.berth("online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"))
			if r.code == 0 {
				t.Fatalf("create succeeded for a broken script: %s", r.stdout)
			}
			if !strings.Contains(r.stderr, "ResourceNotReady") || !strings.Contains(r.stderr, tc.code) || !strings.Contains(r.stderr, tc.pyText) || !strings.Contains(r.stderr, "get-logs") {
				t.Fatalf("create error should name ResourceNotReady, %s, the Python error %q and get-logs:\n%s", tc.code, tc.pyText, r.stderr)
			}
			var dep struct {
				ProvisioningState string `json:"provisioning_state"`
				Error             struct {
					Code    string
					Message string
					Details []struct{ Code, Message string }
				}
			}
			s.okJSON(&dep, "online-deployment", "show", "-e", "quickstart", "-n", tc.name)
			if dep.ProvisioningState != "Failed" || dep.Error.Code != "ResourceNotReady" || len(dep.Error.Details) == 0 || dep.Error.Details[0].Code != tc.code {
				t.Fatalf("show: %+v", dep)
			}
		})
	}
}

func TestRestartAfterKill9KeepsEndpoints(t *testing.T) {
	s := startServer(t, "")
	deployQuickstart(t, s)
	key, _ := s.keys("quickstart")
	body := `{"data": [[1, 2, 3, 4]]}`
	if status, _, got := s.score("quickstart", key, body); status != 200 {
		t.Fatalf("before kill: %d %s", status, got)
	}
	s.kill9()
	start := time.Now()
	s.start()
	eventually(t, 10*time.Second, "scoring after restart", func() bool {
		status, _, _ := s.score("quickstart", key, body)
		return status == 200
	})
	t.Logf("scoring again %s after restart", time.Since(start).Round(time.Millisecond))
	var ep struct {
		Traffic map[string]int
	}
	s.okJSON(&ep, "online-endpoint", "show", "-n", "quickstart")
	if ep.Traffic["blue"] != 100 {
		t.Fatalf("traffic after restart: %v", ep.Traffic)
	}
}

func TestInferenceServerStandalone(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command(berthBin, "inference-server",
		"--entry_script", example("quickstart", "onlinescoring", "score.py"),
		"--model_dir", example("quickstart"),
		"--port", fmt.Sprint(port), "--host", "127.0.0.1")
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	eventually(t, 15*time.Second, "inference-server healthy", func() bool {
		resp, err := httpGet(url + "/")
		return err == nil && resp == "Healthy"
	})
	status, got := httpPost(t, url+"/score", `{"data": [[1, 2, 3, 4], [0, 0, 0, 0]]}`)
	if status != 200 || strings.TrimSpace(got) != "[7.0, 1.5]" {
		t.Fatalf("standalone /score: %d %q\nlog:\n%s", status, got, log)
	}
}

func TestSklearnExample(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import sklearn, joblib, numpy").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must have Debian's scikit-learn (apt-get install python3-sklearn): %v", err)
		}
		t.Skipf("Debian's scikit-learn is not installed (apt-get install python3-sklearn): %v", err)
	}
	s := startServer(t, "", "BERTH_PYTHON="+py)
	s.ok("online-endpoint", "create", "-f", example("sklearn-regression", "endpoint.yml"))
	s.ok("online-deployment", "create", "-f", example("sklearn-regression", "blue-deployment.yml"), "--all-traffic")
	out := s.ok("online-endpoint", "invoke", "-n", "sklearn-regression", "--request-file", example("sklearn-regression", "sample-request.json"))
	var preds []float64
	if err := json.Unmarshal([]byte(out), &preds); err != nil || len(preds) != 2 {
		t.Fatalf("invoke printed %q: %v", out, err)
	}
	if preds[0] < 150 || preds[0] > 210 || preds[1] < 60 || preds[1] > 120 {
		t.Fatalf("predictions %v are not those of the fitted model (≈182.6, ≈91.5)", preds)
	}
}

func TestNoServerSaysHowToStartOne(t *testing.T) {
	cmd := exec.Command(berthBin, "online-endpoint", "list")
	cmd.Env = append(os.Environ(), "BERTH_DATA_DIR="+t.TempDir(), "BERTH_SERVER=", "BERTH_TOKEN=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "berth serve") {
		t.Fatalf("without a server: %v\n%s", err, out)
	}
	cmd = exec.Command(berthBin, "online-endpoint", "list", "--server", "http://127.0.0.1:1", "--token", "x")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "berth serve") {
		t.Fatalf("with an unreachable --server: %v\n%s", err, out)
	}
}

func TestBadSpecsAndReferences(t *testing.T) {
	s := startServer(t, "")
	s.ok("online-endpoint", "create", "-f", example("quickstart", "endpoint.yml"))
	r := s.berth("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"), "--set", "model=azureml:mymodel:1")
	if r.code == 0 || !strings.Contains(r.stderr, "azureml:mymodel:1") || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("a registry reference should fail with not found: %+v", r)
	}
	r = s.berth("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"),
		"--set", "instance_cout=2", "--set", "request_settings.request_timeout_ms=200000")
	if r.code == 0 || !strings.Contains(r.stderr, "BadArgument") || !strings.Contains(r.stderr, "blue-deployment.yml") ||
		!strings.Contains(r.stderr, "instance_cout") || !strings.Contains(r.stderr, "request_settings.request_timeout_ms") {
		t.Fatalf("bad spec should name the file and every bad field: %+v", r)
	}
	r = s.berth("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"), "-e", "nope")
	if r.code == 0 || !strings.Contains(r.stderr, "EndpointNotFound") {
		t.Fatalf("missing endpoint: %+v", r)
	}
	s.ok("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"))
	r = s.berth("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"))
	if r.code == 0 || !strings.Contains(r.stderr, "already exists") || !strings.Contains(r.stderr, "update") {
		t.Fatalf("second create: %+v", r)
	}
}

func TestWorkersReplacedAndInstanceRestartedWhenTheyKeepDying(t *testing.T) {
	s := startServer(t, "")
	deployQuickstart(t, s)
	key, _ := s.keys("quickstart")
	var dep struct {
		Instances []struct{ Restarts int }
	}
	// One killed worker is replaced in place: the instance keeps serving.
	first := workerPIDs(t, s, "quickstart", "blue")
	syscall.Kill(first[0], syscall.SIGKILL)
	eventually(t, 15*time.Second, "a new worker to replace the killed one and score", func() bool {
		pids := workerPIDs(t, s, "quickstart", "blue")
		if len(pids) == 0 || pids[0] == first[0] {
			return false
		}
		status, _, _ := s.score("quickstart", key, `{"data": [[1, 2, 3, 4]]}`)
		return status == 200
	})
	// Workers that keep dying stop the instance, and its keeper restarts it. Each kill
	// waits for the replacement to serve, so every death is of a running worker.
	restarted := func() bool {
		s.okJSON(&dep, "online-deployment", "show", "-e", "quickstart", "-n", "blue")
		return len(dep.Instances) > 0 && dep.Instances[0].Restarts > 0
	}
	for kills := 0; !restarted(); kills++ {
		if kills == 6 {
			t.Fatalf("six running workers were killed within a minute and the instance was not restarted")
		}
		for _, pid := range workerPIDs(t, s, "quickstart", "blue") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		eventually(t, 15*time.Second, "a replacement worker or a restarted instance", func() bool {
			status, _, _ := s.score("quickstart", key, `{"data": [[1, 2, 3, 4]]}`)
			return status == 200 || restarted()
		})
	}
	eventually(t, 15*time.Second, "the restarted instance to score", func() bool {
		status, _, _ := s.score("quickstart", key, `{"data": [[1, 2, 3, 4]]}`)
		return status == 200
	})
	if logs := s.ok("online-deployment", "get-logs", "-e", "quickstart", "-n", "blue"); !strings.Contains(logs, "exited") {
		t.Fatalf("the inference-server log does not say the workers exited:\n%s", logs)
	}
}

// workerPIDs finds the Python workers of a deployment: berth serve's children whose
// command line names a scoring script under the deployment's instance folders.
// Since workers run from a file, `ps` shows them as `python3 .../berth_worker.py
// <instance dir>/code/score.py --endpoint E --deployment D --instance N`.
func workerPIDs(t *testing.T, s *server, endpoint, deployment string) []int {
	t.Helper()
	dir := filepath.Join(s.dataDir, "instances", endpoint, deployment) + string(filepath.Separator)
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) > 2 && strings.HasSuffix(args[1], "berth_worker.py") && strings.HasPrefix(args[2], dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}
