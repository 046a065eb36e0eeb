package inference

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/supervise"
)

const batchScript = `
import argparse, logging, os, sys, time
logger = logging.getLogger("azureml")

def init():
    global level
    parser = argparse.ArgumentParser()
    parser.add_argument("--logging_level")
    args, _ = parser.parse_known_args()
    level = args.logging_level
    print("init level", level, os.environ.get("BERTH_WORKER_MODE"), os.environ.get("OMP_NUM_THREADS"))

def run(mini_batch):
    first = os.path.basename(mini_batch[0])
    if first == "raise":
        raise ValueError("bad file " + first)
    if first == "empty":
        return []
    if first == "none":
        return None
    if first == "sleep":
        time.sleep(30)
    if first == "exit":
        os._exit(7)
    if first == "frame":
        import pandas as pd
        return pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    if first == "csv":
        import pandas as pd
        df = pd.DataFrame({"a": [1], "b": ["x"]})
        df.attrs["berth_sep"] = ","
        return df
    if first == "array":
        import numpy as np
        return np.array([[1, 2], [3, 4]])
    logger.error("Error processing input file %s", first)
    return [os.path.basename(f) for f in mini_batch] + [("t", 1)]
`

func startTestBatchWorker(t *testing.T, script string) (*BatchWorker, string) {
	t.Helper()
	dir := t.TempDir()
	entry := filepath.Join(dir, "batch_score.py")
	if err := os.WriteFile(entry, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, err := os.Create(filepath.Join(dir, "stdout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdout.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := StartBatchWorker(ctx, BatchWorkerConfig{Python: "/usr/bin/python3", Dir: dir, EntryScript: entry,
		Stdout: stdout, Stderr: stdout, LoggingLevel: "debug"})
	if err != nil {
		return nil, err.Error() + "\n" + readFileT(t, filepath.Join(dir, "stdout.txt"))
	}
	t.Cleanup(w.Kill)
	return w, filepath.Join(dir, "stdout.txt")
}

func readFileT(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBatchWorkerRuns(t *testing.T) {
	w, stdout := startTestBatchWorker(t, batchScript)
	if w == nil {
		t.Fatal(stdout)
	}
	ctx := context.Background()
	cases := []struct {
		files []string
		rows  string
		items int
	}{
		{[]string{"/in/a.txt", "/in/b.txt"}, "a.txt\nb.txt\nt 1\n", 3},
		{[]string{"/in/frame"}, "1 x\n2 y\n", 2},
		{[]string{"/in/csv"}, "1,x\n", 1},
		{[]string{"/in/array"}, "1 2\n3 4\n", 2},
		{[]string{"/in/empty"}, "", 0},
		{[]string{"/in/none"}, "", 0},
	}
	for i, c := range cases {
		a, err := w.Run(ctx, i, c.files)
		if err != nil {
			t.Fatalf("%v: %v", c.files, err)
		}
		if string(a.Rows) != c.rows || a.Items != c.items || a.Failed || a.Empty() != (c.items == 0) {
			t.Errorf("%v: got %+v, want rows %q items %d", c.files, a, c.rows, c.items)
		}
	}
	a, err := w.Run(ctx, 9, []string{"/in/raise"})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Failed || a.Message != "ValueError: bad file raise" || !strings.Contains(a.Traceback, "Traceback (most recent call last)") ||
		!strings.Contains(a.Traceback, `raise ValueError("bad file " + first)`) {
		t.Errorf("a raise: got %+v", a)
	}
	// The worker lives on after a raise.
	if a, err := w.Run(ctx, 10, []string{"/in/c"}); err != nil || a.Items != 2 {
		t.Errorf("after a raise: %+v, %v", a, err)
	}
	out := readFileT(t, stdout)
	for _, want := range []string{"init level debug batch 1", "ERROR:azureml:Error processing input file a.txt"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}

func TestBatchWorkerTimeoutAndExit(t *testing.T) {
	w, stdout := startTestBatchWorker(t, batchScript)
	if w == nil {
		t.Fatal(stdout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := w.Run(ctx, 0, []string{"/in/sleep"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("a run() past its deadline: %v after %s", err, time.Since(start))
	}
	select {
	case <-w.proc.(*supervise.Process).Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the worker still runs after its deadline")
	}

	w2, stdout := startTestBatchWorker(t, batchScript)
	if w2 == nil {
		t.Fatal(stdout)
	}
	_, err = w2.Run(context.Background(), 0, []string{"/in/exit"})
	if !errors.Is(err, ErrBatchWorkerDied) || !strings.Contains(err.Error(), "exit status 7") {
		t.Fatalf("a worker that exits: %v", err)
	}
}

func TestBatchWorkerInitFailure(t *testing.T) {
	w, msg := startTestBatchWorker(t, "def init():\n    raise RuntimeError('no model here')\n\ndef run(mb):\n    return mb\n")
	if w != nil {
		t.Fatal("init() raised but the worker started")
	}
	if !strings.Contains(msg, "UserScriptInitFailed") || !strings.Contains(msg, "RuntimeError: no model here") {
		t.Errorf("init failure: %s", msg)
	}
	dir := t.TempDir()
	entry := filepath.Join(dir, "s.py")
	os.WriteFile(entry, []byte("import not_a_module_anywhere\n"), 0o644)
	_, err := StartBatchWorker(context.Background(), BatchWorkerConfig{Python: "/usr/bin/python3", Dir: dir, EntryScript: entry})
	var be *BatchWorkerError
	if !errors.As(err, &be) || be.Err.Code != diag.UserScriptImportError ||
		!strings.Contains(be.Traceback, "ModuleNotFoundError: No module named 'not_a_module_anywhere'") ||
		!strings.Contains(be.Traceback, "Traceback") {
		t.Fatalf("import failure: %#v", err)
	}
	if diag.As(err) == nil {
		t.Error("a BatchWorkerError is not a *diag.Error for diag.As")
	}
}

func TestBatchWorkerStartCancelled(t *testing.T) {
	dir := t.TempDir()
	entry := filepath.Join(dir, "s.py")
	os.WriteFile(entry, []byte("import time\ndef init():\n    time.sleep(30)\ndef run(mb):\n    return mb\n"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := StartBatchWorker(ctx, BatchWorkerConfig{Python: "/usr/bin/python3", Dir: dir, EntryScript: entry})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("a start past its deadline: %v after %s", err, time.Since(start))
	}
}
