//go:build unix

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// deploymentError returns state, code, detail codes and message of a deployment.
func deploymentError(t *testing.T, s *server, endpoint, name string) (state, code string, details []string, message string) {
	t.Helper()
	var d struct {
		ProvisioningState string `json:"provisioning_state"`
		Error             *struct {
			Code, Message string
			Details       []struct{ Code, Message string }
		}
	}
	s.okJSON(&d, "online-deployment", "show", "-e", endpoint, "-n", name)
	if d.Error == nil {
		return d.ProvisioningState, "", nil, ""
	}
	for _, det := range d.Error.Details {
		details = append(details, det.Code)
	}
	return d.ProvisioningState, d.Error.Code, details, d.Error.Message
}

func TestDiagnoseExplainsAFailedDeployment(t *testing.T) {
	s := startServer(t, "")
	r := s.berth("online-endpoint", "create", "-n", "dataplane")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"code/score.py": "import os\n\ndef init():\n    open(os.path.join(os.environ['AZUREML_MODEL_DIR'], 'missing.pkl'))\n\ndef run(d):\n    return d\n",
		"model/m.txt":   "x",
		"dep.yml":       "name: broken\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\n",
	})
	if r := s.berth("online-deployment", "create", "-f", filepath.Join(dir, "dep.yml")); r.code == 0 {
		t.Fatal("a script whose init() fails was deployed")
	}
	out := s.ok("diagnose", "-e", "dataplane", "-n", "broken")
	for _, want := range []string{"Failed", "ResourceNotReady", "UserScriptInitFailed", "Fix:", "FileNotFoundError", "missing.pkl", "inference-server log",
		"Recent operations", "Create deployment broken"} {
		if !strings.Contains(out, want) {
			t.Errorf("diagnose output lacks %q:\n%s", want, out)
		}
	}
	code := s.ok("diagnose", "DeploymentCrashLoopBackOff")
	if !strings.Contains(code, "Fix:") || !strings.Contains(code, "restart") {
		t.Fatalf("diagnose CODE:\n%s", code)
	}
	if r := s.berth("diagnose", "NoSuchCode"); r.code == 0 {
		t.Fatal("an unknown code was explained")
	}
}

func TestSpecAndScriptFailuresNameTheirCause(t *testing.T) {
	s := startServer(t, "")
	s.ok("online-endpoint", "create", "-n", "dataplane")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"code/score.py":   "import package_that_does_not_exist\n\ndef init():\n    pass\n\ndef run(d):\n    return d\n",
		"model/m.txt":     "x",
		"dep.yml":         "name: nomodule\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\n",
		"nomodel.yml":     "name: nomodel\nendpoint_name: dataplane\nmodel: {path: ./not-there}\ncode_configuration: {code: ./code, scoring_script: score.py}\n",
		"limits.yml":      "name: limits\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\nresources: {requests: {cpu: '2'}, limits: {cpu: '1'}}\n",
		"zero.yml":        "name: zero\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\ninstance_count: 0\n",
		"fiftyone.yml":    "name: fiftyone\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\ninstance_count: 51\n",
		"slow/score.py":   "import time\n\ndef init():\n    time.sleep(30)\n\ndef run(d):\n    return d\n",
		"slowinit.yml":    "name: slowinit\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./slow, scoring_script: score.py}\nreadiness_probe: {initial_delay: 1, period: 1, failure_threshold: 2}\n",
		"crash/score.py":  "import os, threading\n\ndef init():\n    threading.Timer(0.3, lambda: os._exit(9)).start()\n\ndef run(d):\n    return d\n",
		"crashloop.yml":   "name: crashloop\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./crash, scoring_script: score.py}\n",
		"locked/score.py": "import time\n\ndef init():\n    time.sleep(3)\n\ndef run(d):\n    return d\n",
		"locked.yml":      "name: locked\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./locked, scoring_script: score.py}\n",
	})
	file := func(name string) string { return filepath.Join(dir, name) }

	r := s.berth("online-deployment", "create", "-f", file("dep.yml"))
	if r.code == 0 || !strings.Contains(r.stderr, "UserScriptImportError") || !strings.Contains(r.stderr, "package_that_does_not_exist") || !strings.Contains(r.stderr, "BERTH_PYTHON") {
		t.Fatalf("missing module: %+v", r)
	}
	for _, tc := range []struct{ file, field, text string }{
		{"nomodel.yml", "model.path", "does not exist"},
		{"limits.yml", "resources.requests.cpu", "greater than limits"},
		{"zero.yml", "instance_count", "got 0"},
		{"fiftyone.yml", "instance_count", "got 51"},
	} {
		r := s.berth("online-deployment", "create", "-f", file(tc.file))
		if r.code == 0 || !strings.Contains(r.stderr, "BadArgument") || !strings.Contains(r.stderr, tc.field) || !strings.Contains(r.stderr, tc.text) {
			t.Errorf("%s: want BadArgument naming %s (%q): %+v", tc.file, tc.field, tc.text, r)
		}
	}

	start := time.Now()
	r = s.berth("online-deployment", "create", "-f", file("slowinit.yml"))
	if r.code == 0 || !strings.Contains(r.stderr, "ResourceNotReady") || !strings.Contains(r.stderr, "readiness_probe") || time.Since(start) > 15*time.Second {
		t.Fatalf("slow init() against a 3 s readiness budget: %+v after %s", r, time.Since(start))
	}

	s.ok("online-deployment", "create", "-f", file("locked.yml"), "--no-wait")
	r = s.berth("online-deployment", "create", "-f", file("crashloop.yml"))
	if r.code == 0 || !strings.Contains(r.stderr, "OperationCanceled") || !strings.Contains(r.stderr, "in progress") {
		t.Fatalf("a create while another is Creating should get 409 OperationCanceled: %+v", r)
	}
	if r := s.berth("online-deployment", "show", "-e", "dataplane", "-n", "crashloop"); r.code == 0 {
		t.Fatal("the refused create left a deployment behind")
	}
	eventually(t, 20*time.Second, "the locked deployment to finish", func() bool {
		state, _, _, _ := deploymentError(t, s, "dataplane", "locked")
		return state == "Succeeded"
	})

	s.berth("online-deployment", "create", "-f", file("crashloop.yml"), "--no-wait")
	eventually(t, 30*time.Second, "DeploymentCrashLoopBackOff", func() bool {
		_, code, _, _ := deploymentError(t, s, "dataplane", "crashloop")
		return code == "DeploymentCrashLoopBackOff"
	})
	state, _, _, msg := deploymentError(t, s, "dataplane", "crashloop")
	if state != "Failed" || !strings.Contains(msg, "exit status 9") || !strings.Contains(msg, "get-logs") {
		t.Fatalf("crash loop: %s %q", state, msg)
	}
}

func TestUpdateUnderLoadLosesNoRequest(t *testing.T) {
	s := startServer(t, "", "BERTH_LOG_LEVEL=info")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"v1/score.py": "def init():\n    pass\n\ndef run(d):\n    return 'v1'\n",
		"v2/score.py": "def init():\n    pass\n\ndef run(d):\n    return 'v2'\n",
		"v3/score.py": "def init():\n    raise RuntimeError('v3 is broken')\n\ndef run(d):\n    return 'v3'\n",
		"model/m.txt": "x",
	})
	for _, v := range []string{"v1", "v2", "v3"} {
		writeFiles(t, dir, map[string]string{v + ".yml": fmt.Sprintf("name: blue\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./%s, scoring_script: score.py}\ninstance_count: 2\n", v)})
	}
	s.ok("online-endpoint", "create", "-n", "dataplane")
	s.ok("online-deployment", "create", "-f", filepath.Join(dir, "v1.yml"), "--all-traffic")
	key, _ := s.keys("dataplane")

	var failed, total atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond) // 50 requests/s
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			total.Add(1)
			status, _, body, err := s.tryScore("dataplane", key, "{}")
			if err != nil {
				failed.Add(1)
				t.Logf("request failed during update: %v", err)
				continue
			}
			if status != 200 {
				failed.Add(1)
				t.Logf("request failed during update: %d %s", status, body)
				continue
			}
			mu.Lock()
			seen[strings.Trim(body, "\"\n")]++
			mu.Unlock()
		}
	}()
	time.Sleep(300 * time.Millisecond) // let the load start before the update
	s.ok("online-deployment", "update", "-f", filepath.Join(dir, "v2.yml"))
	eventually(t, 10*time.Second, "v2 to answer", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["v2"] > 20
	})
	if r := s.berth("online-deployment", "update", "-f", filepath.Join(dir, "v3.yml")); r.code == 0 || !strings.Contains(r.stderr, "v3 is broken") {
		t.Errorf("update to a broken script: %+v", r)
	}
	mu.Lock()
	v2Before := seen["v2"]
	mu.Unlock()
	eventually(t, 5*time.Second, "v2 to keep serving after the failed update", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["v2"] > v2Before+20
	})
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || seen["v3"] != 0 {
		t.Fatalf("%d of %d requests failed during the updates; answers: %v", failed.Load(), total.Load(), seen)
	}
	state, code, details, _ := deploymentError(t, s, "dataplane", "blue")
	if state != "Failed" || code != "ResourceNotReady" || len(details) == 0 || details[0] != "UserScriptInitFailed" {
		t.Fatalf("after the broken update: %s %s %v", state, code, details)
	}
}

func TestQuotasAndMemoryCap(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"types.yml":            "- {name: Test_Tiny, cores: 1, memory_bytes: 157286400, disk_bytes: 1073741824}\n- {name: Test_NoDisk, cores: 1, memory_bytes: 157286400, disk_bytes: 1024}\n",
		"bigmodel/weights.bin": strings.Repeat("w", 4096),
		"disk.yml":             "name: disk\nendpoint_name: dataplane\nmodel: {path: ./bigmodel}\ncode_configuration: {code: ./ok, scoring_script: score.py}\ninstance_type: Test_NoDisk\n",
		"ok/score.py":          "def init():\n    pass\n\ndef run(d):\n    return d\n",
		"big/score.py":         "import time\n\ndef init():\n    global blob\n    blob = b'x' * (400 << 20)\n    time.sleep(20)\n\ndef run(d):\n    return d\n",
		"model/m.txt":          "x",
		"cores.yml":            "name: cores\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./ok, scoring_script: score.py}\ninstance_type: Standard_DS3_v2\ninstance_count: 2\n",
		"memory.yml":           "name: memory\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./big, scoring_script: score.py}\ninstance_type: Test_Tiny\n",
		"unknownsku.yml":       "name: sku\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./ok, scoring_script: score.py}\ninstance_type: Standard_Nope\n",
	})
	s := startServer(t, "", "BERTH_QUOTA_CORES=6", "BERTH_INSTANCE_TYPES="+filepath.Join(dir, "types.yml"))
	s.ok("online-endpoint", "create", "-n", "dataplane")

	r := s.berth("online-deployment", "create", "-f", filepath.Join(dir, "cores.yml"))
	if r.code == 0 || !strings.Contains(r.stderr, "OutOfQuota") || !strings.Contains(r.stderr, "8 cores") || !strings.Contains(r.stderr, "only 6") {
		t.Fatalf("2 × Standard_DS3_v2 against 6 cores: %+v", r)
	}
	r = s.berth("online-deployment", "create", "-f", filepath.Join(dir, "disk.yml"))
	if r.code == 0 || !strings.Contains(r.stderr, "OutOfQuota") || !strings.Contains(r.stderr, "disk") || !strings.Contains(r.stderr, "Test_NoDisk") {
		t.Fatalf("a 4 KiB model on a 1 KiB disk: %+v", r)
	}
	r = s.berth("online-endpoint", "create", "-n", "dataplane")
	if r.code == 0 || !strings.Contains(r.stderr, "EndpointAlreadyExists") {
		t.Fatalf("second endpoint create: %+v", r)
	}
	r = s.berth("online-deployment", "create", "-f", filepath.Join(dir, "unknownsku.yml"))
	if r.code == 0 || !strings.Contains(r.stderr, "Standard_Nope") || !strings.Contains(r.stderr, "Standard_DS3_v2") {
		t.Fatalf("unknown instance_type: %+v", r)
	}
	r = s.berth("online-deployment", "create", "-f", filepath.Join(dir, "memory.yml"))
	if r.code == 0 || !strings.Contains(r.stderr, "OutOfQuota") || !strings.Contains(r.stderr, "PodOutOfMemory") || !strings.Contains(r.stderr, "150 MiB") {
		t.Fatalf("init() allocating 400 MiB on a 150 MiB instance type: %+v", r)
	}
	state, code, details, msg := deploymentError(t, s, "dataplane", "memory")
	if state != "Failed" || code != "OutOfQuota" || len(details) == 0 || details[0] != "PodOutOfMemory" || !strings.Contains(msg, "peak") {
		t.Fatalf("show: %s %s %v %q", state, code, details, msg)
	}
}

func TestSecretsFromConnections(t *testing.T) {
	s := startServer(t, "")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"code/score.py": "import os\n\ndef init():\n    print('init sees a password of length', len(os.environ['DB_PASSWORD']))\n\ndef run(d):\n    return os.environ['DB_PASSWORD'][::-1] + '|' + os.environ['DB_HOST']\n",
		"model/m.txt":   "x",
		"dep.yml": "name: secret\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\n" +
			"environment_variables:\n  DB_PASSWORD: ${{azureml://connections/db/credentials/password}}\n  DB_HOST: ${{azureml://connections/db/target}}\n",
	})
	s.ok("online-endpoint", "create", "-n", "dataplane")
	r := s.berth("online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "--all-traffic")
	if r.code == 0 || !strings.Contains(r.stderr, "SecretsInjectionError") || !strings.Contains(r.stderr, "azureml://connections/db/credentials/password") {
		t.Fatalf("missing secret: %+v", r)
	}
	s.ok("online-deployment", "delete", "-e", "dataplane", "-n", "secret", "--yes")
	s.ok("connection", "create", "-n", "db", "--target", "db.local", "--credential", "password=s3cr3t-value")
	shown := s.ok("connection", "show", "-n", "db")
	if strings.Contains(shown, "s3cr3t-value") || !strings.Contains(shown, "***") {
		t.Fatalf("connection show printed the secret:\n%s", shown)
	}
	s.ok("online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "--all-traffic")
	key, _ := s.keys("dataplane")
	if status, _, body := s.score("dataplane", key, "{}"); status != 200 || !strings.Contains(body, "eulav-t3rc3s|db.local") {
		t.Fatalf("score with injected secrets: %d %s", status, body)
	}
	for _, c := range []string{"inference-server", "storage-initializer"} {
		if logs := s.ok("online-deployment", "get-logs", "-e", "dataplane", "-n", "secret", "--container", c); strings.Contains(logs, "s3cr3t-value") {
			t.Fatalf("the secret value is in the %s log:\n%s", c, logs)
		}
	}
	if show := s.ok("online-deployment", "show", "-e", "dataplane", "-n", "secret"); strings.Contains(show, "s3cr3t-value") {
		t.Fatalf("deployment show printed the secret:\n%s", show)
	}
}

func TestProbesTakeAHungWorkerOutAndReplaceIt(t *testing.T) {
	s := startServer(t, "")
	deployScript(t, s, "probed", behaviourScript,
		"readiness_probe: {period: 1, timeout: 1, failure_threshold: 1}\nliveness_probe: {period: 1, timeout: 1, failure_threshold: 3}\n", "--all-traffic")
	var dep struct {
		Instances []struct{ State string }
	}
	hung := workerPIDs(t, s, "dataplane", "probed")
	if len(hung) != 1 {
		t.Fatalf("want one worker, found %v", hung)
	}
	syscall.Kill(hung[0], syscall.SIGSTOP)
	defer syscall.Kill(hung[0], syscall.SIGKILL)
	eventually(t, 10*time.Second, "the instance with a hung worker to leave routing", func() bool {
		s.okJSON(&dep, "online-deployment", "show", "-e", "dataplane", "-n", "probed")
		return len(dep.Instances) > 0 && dep.Instances[0].State == "NotReady"
	})
	key, _ := s.keys("dataplane")
	eventually(t, 20*time.Second, "a new worker, the instance back in routing and scoring again", func() bool {
		s.okJSON(&dep, "online-deployment", "show", "-e", "dataplane", "-n", "probed")
		if len(dep.Instances) == 0 || dep.Instances[0].State != "Ready" {
			return false
		}
		status, _, _ := s.score("dataplane", key, "{}")
		return status == 200
	})
	if pids := workerPIDs(t, s, "dataplane", "probed"); len(pids) != 1 || pids[0] == hung[0] {
		t.Fatalf("workers now %v, want one new worker in place of %d", pids, hung[0])
	}
	if logs := s.ok("online-deployment", "get-logs", "-e", "dataplane", "-n", "probed", "--container", "storage-initializer"); !strings.Contains(logs, "readiness probe failed") {
		t.Fatalf("the deployment log does not say why the instance left routing:\n%s", logs)
	}
}
