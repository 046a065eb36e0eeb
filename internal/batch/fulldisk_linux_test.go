package batch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berthml/berth/internal/diag"
)

// TestFullDisk runs a job whose folder is on a 64 KiB tmpfs: the journal fills it, and
// the job stops with OutOfQuota naming the folder and the fix, not a bare write error.
// It needs to mount (root with CAP_SYS_ADMIN) and skips otherwise.
func TestFullDisk(t *testing.T) {
	f := newFixture(t, 200, `
def init():
    pass
def run(mini_batch):
    return ["x" * 2000 for _ in mini_batch]
`)
	small := filepath.Join(t.TempDir(), "small")
	os.MkdirAll(small, 0o755)
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a small tmpfs here: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(small, 0) })
	f.job.Dir = filepath.Join(small, "job1")
	_, err := Run(context.Background(), f.job)
	de := diag.As(err)
	if de == nil || de.Code != diag.OutOfQuota || !strings.Contains(de.Message, f.job.Dir) ||
		!strings.Contains(de.Message, "no space left on device") || !strings.Contains(de.Message, "Free space") {
		t.Fatalf("Run: %v", err)
	}
	if _, err := os.Stat(f.job.outputPath()); err == nil {
		t.Error("an output file was written for a job that could not journal its mini-batches")
	}
}
