package inference

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"

	"github.com/berthml/berth/internal/inference/python"
)

// workerScript is the worker written to a file once per process, so that `ps` shows
// `python3 .../berth_worker.py <score.py> --endpoint E ...` rather than the whole
// source; "" when no file could be written (workers then get the source with -c).
var workerScript = sync.OnceValue(func() string {
	sum := sha256.Sum256([]byte(python.Worker))
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	dir := filepath.Join(base, "berth", "worker-"+hex.EncodeToString(sum[:6]))
	path := filepath.Join(dir, "berth_worker.py")
	if b, err := os.ReadFile(path); err == nil && string(b) == python.Worker {
		return path
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	tmp, err := os.CreateTemp(dir, ".berth_worker-*.py")
	if err != nil {
		return ""
	}
	_, err = tmp.WriteString(python.Worker)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return ""
	}
	return path
})

// workerArgs are the interpreter's arguments that start a worker for entry, followed by
// args (which name it in `ps`).
func workerArgs(entry string, args ...string) []string {
	if path := workerScript(); path != "" {
		return append([]string{path, entry}, args...)
	}
	return append([]string{"-c", python.Worker, entry}, args...)
}
