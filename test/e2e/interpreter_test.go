//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secondInterpreter makes a virtual environment of /usr/bin/python3 in dir with a module,
// berth_only_in_a, that the system interpreter lacks, and returns it and its python3.
func secondInterpreter(t *testing.T, dir string) (venv, python string) {
	t.Helper()
	venv = filepath.Join(dir, "venv-a")
	if out, err := exec.Command("/usr/bin/python3", "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("create a second interpreter: %v\n%s (apt-get install python3-venv)", err, out)
	}
	sites, _ := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages"))
	if len(sites) != 1 {
		t.Fatalf("site-packages of %s: %v", venv, sites)
	}
	writeFiles(t, sites[0], map[string]string{"berth_only_in_a.py": "WHERE = 'a'\n"})
	return venv, filepath.Join(venv, "bin", "python3")
}

// TestRestartKeepsTheInterpreterADeploymentWasBuiltOn: a deployment that works on one
// interpreter (here a virtual environment with a package the system Python lacks) keeps
// running on it after berth serve restarts with another default; an update moves it to
// the server's interpreter.
func TestRestartKeepsTheInterpreterADeploymentWasBuiltOn(t *testing.T) {
	dir := t.TempDir()
	venv, pyA := secondInterpreter(t, dir)
	writeFiles(t, dir, map[string]string{
		"code/score.py": "import sys\ntry:\n    import berth_only_in_a\n    HAS = True\nexcept ImportError:\n    HAS = False\n\n" +
			"def init():\n    pass\n\ndef run(raw):\n    return {'python': sys.executable, 'has': HAS}\n",
		"model/m.txt": "x",
		"blue.yml":    "name: blue\nendpoint_name: kept\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\ninstance_count: 1\n",
	})
	deployment := filepath.Join(dir, "blue.yml")

	s := startServer(t, "", "BERTH_PYTHON="+pyA)
	s.ok("online-endpoint", "create", "-n", "kept")
	s.ok("online-deployment", "create", "-f", deployment, "--all-traffic")
	key, _ := s.keys("kept")
	scoredOn := func(when, python string, has bool) {
		t.Helper()
		status, _, body := s.score("kept", key, `{}`)
		if status != 200 || !strings.Contains(body, `"python": "`+python+`"`) || !strings.Contains(body, map[bool]string{true: `"has": true`, false: `"has": false`}[has]) {
			t.Fatalf("%s: %d %s, want run() on %s", when, status, body, python)
		}
	}
	restartWith := func(python string) {
		t.Helper()
		s.stop()
		s.env = []string{"BERTH_PYTHON=" + python}
		s.start()
		eventually(t, 30*time.Second, "scoring after a restart", func() bool {
			status, _, _ := s.score("kept", key, `{}`)
			return status == 200
		})
	}
	storageLog := func() string {
		return s.ok("online-deployment", "get-logs", "-e", "kept", "-n", "blue", "--container", "storage-initializer")
	}
	scoredOn("on the interpreter the server started with", pyA, true)

	// The server comes back with another default interpreter, which lacks the package:
	// the deployment stays on the one it was built on, and its log says why.
	restartWith("/usr/bin/python3")
	scoredOn("after a restart with another default", pyA, true)
	if si := storageLog(); !strings.Contains(si, pyA+" (Python") || !strings.Contains(si, "which this deployment was built on; the server's is now /usr/bin/python3") {
		t.Fatalf("the storage-initializer log does not say which interpreter it kept and why:\n%s", si)
	}
	if shown := strings.TrimSpace(s.ok("online-deployment", "show", "-e", "kept", "-n", "blue", "--query", "python", "-o", "tsv")); shown != pyA {
		t.Errorf("show gives python %q, want %s", shown, pyA)
	}
	if d := s.ok("diagnose", "-e", "kept"); !strings.Contains(d, "python: "+pyA+" (built on it") {
		t.Errorf("diagnose does not name the interpreter kept:\n%s", d)
	}

	// Scaling keeps it where it is, in place.
	for _, n := range []string{"2", "1"} {
		s.ok("online-deployment", "update", "-e", "kept", "-n", "blue", "--set", "instance_count="+n)
		scoredOn("after scaling to "+n, pyA, true)
	}

	// An update of nothing at all builds it on the server's interpreter, and the next
	// restart keeps that one.
	s.ok("online-deployment", "update", "-f", deployment)
	scoredOn("after an update", "/usr/bin/python3", false)
	restartWith(pyA)
	scoredOn("after a restart back on the first default", "/usr/bin/python3", false)
	s.ok("online-deployment", "update", "-f", deployment)
	scoredOn("after an update on the first default", pyA, true)

	// An interpreter that is gone keeps nothing: the deployment is built on the server's.
	s.stop()
	if err := os.RemoveAll(venv); err != nil {
		t.Fatal(err)
	}
	restartWith("/usr/bin/python3")
	scoredOn("after its interpreter was removed", "/usr/bin/python3", false)
	if si := storageLog(); !strings.Contains(si, pyA+", which this deployment was built on, can no longer be run") {
		t.Fatalf("the storage-initializer log does not say the kept interpreter is gone:\n%s", si)
	}
}

// TestBatchJobsRunOnTheInterpreterTheirDeploymentWasCreatedOn: a job invoked after
// berth serve restarted with another default still runs where its deployment was
// checked; replacing the deployment moves it to the server's interpreter.
func TestBatchJobsRunOnTheInterpreterTheirDeploymentWasCreatedOn(t *testing.T) {
	_, pyA := secondInterpreter(t, t.TempDir())
	script := "import sys\ndef init():\n    pass\ndef run(mini_batch):\n    return [sys.executable for p in mini_batch]\n"
	dir := batchProject(t, "keptb", script, "  mini_batch_size: 1\n", 1)
	s := startServer(t, "", "BERTH_PYTHON="+pyA)
	deployBatch(t, s, dir, "keptb")
	ranOn := func(when, python string) {
		t.Helper()
		job := invokeBatch(t, s, "keptb", filepath.Join(dir, "data"))
		if st := waitJob(t, s, job, 60*time.Second); st != "Completed" {
			t.Fatalf("%s: status %s; driver log:\n%s", when, st, jobFile(t, s, job, "azureml-logs/70_driver_log.txt"))
		}
		if lines := downloadScore(t, s, job, "predictions.csv"); len(lines) != 1 || lines[0] != python {
			t.Fatalf("%s: the job ran on %q, want %s", when, lines, python)
		}
	}
	s.stop()
	s.env = []string{"BERTH_PYTHON=/usr/bin/python3"}
	s.start()
	ranOn("after a restart with another default", pyA)
	s.ok("batch-deployment", "update", "-f", filepath.Join(dir, "deployment.yml"))
	ranOn("after the deployment was replaced", "/usr/bin/python3")
}
