package inference

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"

	"github.com/berthml/berth/internal/inference/python"
)

// launcher is the script a worker's interpreter runs: it imports the worker as the
// module _berth_worker from the same folder, so Python compiles the worker's source once
// and then loads its cached bytecode (a script run as __main__ is compiled at every
// start: about 14 ms of every worker's start-up). The folder is Berth's, so the bytecode
// is written even when PYTHONDONTWRITEBYTECODE is set.
const launcher = `# Berth's Python worker: the code is _berth_worker.py, next to this file.
if __name__ == "__main__":  # not when multiprocessing's spawn imports it again
    import sys
    if sys.dont_write_bytecode:  # PYTHONDONTWRITEBYTECODE: this folder is Berth's own
        import importlib.util, os
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_berth_worker.py")
        if not os.path.exists(importlib.util.cache_from_source(src)):
            import py_compile
            try:
                py_compile.compile(src, doraise=True)
            except Exception:
                pass  # compiled at each start, as without the cache
    import _berth_worker
    _berth_worker.main()
`

// workerScript is the worker written to files once per process, so that `ps` shows
// `python3 .../berth_worker.py <score.py> --endpoint E ...` rather than the whole
// source; "" when no file could be written (workers then get the source with -c).
var workerScript = sync.OnceValue(func() string {
	sum := sha256.Sum256([]byte(python.Worker + launcher))
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	dir := filepath.Join(base, "berth", "worker-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	// The module first: a launcher present means its module is whole.
	if !writeOnce(filepath.Join(dir, "_berth_worker.py"), python.Worker) ||
		!writeOnce(filepath.Join(dir, "berth_worker.py"), launcher) {
		return ""
	}
	return filepath.Join(dir, "berth_worker.py")
})

// writeOnce makes path hold text, writing it through a temp file and a rename unless it
// already does. It reports whether path holds text.
func writeOnce(path, text string) bool {
	if b, err := os.ReadFile(path); err == nil && string(b) == text {
		return true
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".berth_worker-*.py")
	if err != nil {
		return false
	}
	_, err = tmp.WriteString(text)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return false
	}
	return true
}

// workerArgs are the interpreter's arguments that start a worker for entry, followed by
// args (which name it in `ps`).
func workerArgs(entry string, args ...string) []string {
	if path := workerScript(); path != "" {
		return append([]string{path, entry}, args...)
	}
	return append([]string{"-c", python.Worker, entry}, args...)
}
