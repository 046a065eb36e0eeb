package inference

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestWorkerBytecodeCached: the worker is started through a launcher that imports it,
// so its compiled bytecode is cached next to it, even with PYTHONDONTWRITEBYTECODE set.
func TestWorkerBytecodeCached(t *testing.T) {
	path := workerScript()
	if path == "" {
		t.Skip("no cache folder for the worker here")
	}
	cache := filepath.Join(filepath.Dir(path), "__pycache__")
	os.RemoveAll(cache)
	cmd := exec.Command("/usr/bin/python3", path) // no script: the worker stops at once
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, _ := cmd.CombinedOutput()
	pycs, _ := filepath.Glob(filepath.Join(cache, "_berth_worker.*.pyc"))
	if len(pycs) != 1 {
		t.Fatalf("no cached bytecode in %s after a start; output:\n%s", cache, out)
	}
}
