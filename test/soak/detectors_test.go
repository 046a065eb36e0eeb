//go:build linux

package soak

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSoakDetectors shows that the orphan and leak checks the soak tests rely on find
// what they look for: a process naming a data dir, and bytes beyond logs.
func TestSoakDetectors(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", "sleep 30; :", filepath.Join(dir, "instances", "marker"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	eventually(t, 5*time.Second, "processesMentioning to find the process", func() bool {
		found := processesMentioning(dir)
		return len(found) == 1 && found[0] == cmd.Process.Pid
	})
	// A process that names the data dir only in its environment, as a worker's child.
	child := exec.Command("/bin/sleep", "30")
	child.Env = append(os.Environ(), "AZUREML_MODEL_DIR="+filepath.Join(dir, "instances", "e", "d", "0"))
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	eventually(t, 5*time.Second, "processesMentioning to find both processes", func() bool {
		return len(processesMentioning(dir)) == 2
	})
	if left := orphansAfter(dir, 100*time.Millisecond); len(left) != 2 {
		t.Fatalf("orphansAfter found %v, want 2 processes", left)
	}
	for _, c := range []*exec.Cmd{cmd, child} {
		c.Process.Kill()
		c.Wait()
	}
	if left := orphansAfter(dir, time.Second); len(left) != 0 {
		t.Fatalf("orphansAfter found %v after the process ended", left)
	}

	writeFiles(t, dir, map[string]string{
		"berth.db":                                  "db",
		"artifacts/sha256/abc/model.json":           "{}",
		"artifacts/tmp/upload-1":                    "12345",
		"instances/e/d/0/logs/inference-server.log": "log",
		"instances/e/d/0/status.json":               "{}",
		"instances/e/d/0/model/model.json":          "1234567",
	})
	u := measureDisk(t, dir)
	if u.leaked != 12 || u.logs != 5 || u.artifacts != 2 || u.metadata != 2 {
		t.Fatalf("measureDisk: %+v, want 12 leaked bytes (a model copy and an upload left over)", u)
	}
}
