package inference

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/instance"
)

// TestImportFailureNamesTheInterpreterThatHasTheModule runs score.py importing
// scikit-learn with a virtual environment that lacks it, while /usr/bin/python3 has it:
// the error names /usr/bin/python3 and the command, and following it works.
func TestImportFailureNamesTheInterpreterThatHasTheModule(t *testing.T) {
	if err := exec.Command(instance.SystemPython, "-c", "import sklearn").Run(); err != nil {
		t.Skipf("%s has no sklearn (apt-get install python3-sklearn): %v", instance.SystemPython, err)
	}
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(instance.SystemPython, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("make venv: %v\n%s", err, out)
	}
	venvPython := filepath.Join(venv, "bin", "python3")
	in := &instance.Interpreters{System: instance.SystemPython, Path: filepath.Join(venv, "bin")}

	log := &lockedLog{}
	err := Serve(context.Background(), Config{EntryScript: filepath.Join("testdata", "sklearn_score.py"), Host: "127.0.0.1", Port: freePort(t),
		Python: venvPython, Log: log, interpreters: in})
	de := diag.As(err)
	if de == nil || de.Code != diag.UserScriptImportError {
		t.Fatalf("err = %v, want UserScriptImportError\nlog:\n%s", err, log)
	}
	for _, want := range []string{"No module named 'sklearn'", "/usr/bin/python3 (Python 3.", "has sklearn",
		"`berth serve --python /usr/bin/python3`", "BERTH_PYTHON=/usr/bin/python3 berth serve", "`BERTH_PYTHON: /usr/bin/python3` under environment_variables"} {
		if !strings.Contains(de.Message, want) {
			t.Errorf("message lacks %q:\n%s", want, de.Message)
		}
	}

	// Following the advice: the same script with /usr/bin/python3 starts.
	url, _ := serveWith(t, Config{EntryScript: filepath.Join("testdata", "sklearn_score.py"), Python: instance.SystemPython})
	if resp, body := post(t, url+"/score", "{}"); resp.StatusCode != 200 || !strings.Contains(body, "LinearRegression") {
		t.Errorf("with %s: %d %q", instance.SystemPython, resp.StatusCode, body)
	}
}

// TestImportFailureWithoutAnotherInterpreter keeps the worker's own message when no
// other interpreter has the module.
func TestImportFailureWithoutAnotherInterpreter(t *testing.T) {
	dir := t.TempDir()
	lacking := filepath.Join(dir, "python3.99")
	if err := os.WriteFile(lacking, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	in := &instance.Interpreters{System: lacking, Path: dir}
	log := &lockedLog{}
	err := Serve(context.Background(), Config{EntryScript: filepath.Join("testdata", "import_score.py"), Host: "127.0.0.1", Port: freePort(t),
		Log: log, interpreters: in})
	de := diag.As(err)
	if de == nil || de.Code != diag.UserScriptImportError || !strings.Contains(de.Message, "not_a_real_package_xyz") {
		t.Fatalf("err = %v, want UserScriptImportError naming the module\nlog:\n%s", err, log)
	}
	if strings.Contains(de.Message, "has not_a_real_package_xyz") {
		t.Errorf("names an interpreter that lacks the module: %s", de.Message)
	}
}

// TestBatchImportFailureNamesTheInterpreterThatHasTheModule: a batch worker whose script
// imports scikit-learn, started with a virtual environment that lacks it, fails naming
// /usr/bin/python3 (which has it).
func TestBatchImportFailureNamesTheInterpreterThatHasTheModule(t *testing.T) {
	if err := exec.Command(instance.SystemPython, "-c", "import sklearn").Run(); err != nil {
		t.Skipf("%s has no sklearn (apt-get install python3-sklearn): %v", instance.SystemPython, err)
	}
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(instance.SystemPython, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("make venv: %v\n%s", err, out)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "score.py")
	os.WriteFile(script, []byte("import sklearn\ndef init():\n    pass\ndef run(mini_batch):\n    return mini_batch\n"), 0o644)
	cfg := BatchWorkerConfig{Python: filepath.Join(venv, "bin", "python3"), Dir: dir, EntryScript: script}
	_, err := StartBatchWorker(context.Background(), cfg)
	if de := diag.As(err); de == nil || !strings.Contains(de.Message, "No module named 'sklearn'") || !strings.Contains(de.Message, "/usr/bin/python3") {
		t.Errorf("a batch worker's import failure: %v", err)
	}
}
