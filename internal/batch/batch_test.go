//go:build unix

package batch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthml/berth/internal/diag"
)

const debianPython = "/usr/bin/python3"

// names is the script's default: one row per file, its base name.
const namesScript = `
import os, logging, time
def init():
    logging.getLogger("azureml").info("init done")
def run(mini_batch):
    time.sleep(float(os.environ.get("NAP", "0")))
    side = os.environ.get("SIDE")
    if side:
        with open(side, "a") as f:
            f.write(os.path.basename(mini_batch[0]) + "\n")
    return [os.path.basename(p) for p in mini_batch]
`

type fixture struct {
	t   *testing.T
	job Job
	in  string
}

// newFixture writes n input files f000… and script, and returns a job over them.
func newFixture(t *testing.T, n int, script string) *fixture {
	t.Helper()
	root := t.TempDir()
	in := filepath.Join(root, "in")
	os.MkdirAll(in, 0o755)
	for i := 0; i < n; i++ {
		writeT(t, filepath.Join(in, fmt.Sprintf("f%03d.txt", i)), fmt.Sprint(i))
	}
	code := filepath.Join(root, "code")
	os.MkdirAll(code, 0o755)
	writeT(t, filepath.Join(code, "score.py"), script)
	return &fixture{t: t, in: in, job: Job{
		Name: "job1", Dir: filepath.Join(root, "jobs", "job1"), Input: in, InputType: URIFolder,
		OutputDir: filepath.Join(root, "out"),
		Settings: Settings{MiniBatchSize: 10, MaxConcurrencyPerInstance: 1, MaxRetries: 1, Timeout: 5 * time.Second,
			ErrorThreshold: -1, OutputAction: AppendRow, OutputFileName: "predictions.csv", LoggingLevel: "info"},
		Worker: Worker{Python: debianPython, CodeDir: code, EntryScript: filepath.Join(code, "score.py"), ModelDir: filepath.Join(root, "model")},
		Nodes:  1,
	}}
}

func writeT(t *testing.T, path, text string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readT(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (f *fixture) run(ctx context.Context) Result {
	f.t.Helper()
	res, err := Run(ctx, f.job)
	if err != nil {
		f.t.Fatalf("Run: %v", err)
	}
	return res
}

func (f *fixture) log(rel string) string {
	f.t.Helper()
	return readT(f.t, filepath.Join(f.job.Dir, rel))
}

func (f *fixture) output() string { f.t.Helper(); return readT(f.t, f.job.outputPath()) }

func fileNames(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "f%03d.txt\n", i)
	}
	return b.String()
}

func TestHundredFilesTenMiniBatches(t *testing.T) {
	f := newFixture(t, 90, namesScript)
	// Nested files come after the top level, in relative-path order.
	for i := 0; i < 10; i++ {
		writeT(t, filepath.Join(f.in, "sub", fmt.Sprintf("g%03d.txt", i)), "x")
	}
	f.job.Settings.MaxConcurrencyPerInstance = 2
	f.job.Nodes = 2
	var mu sync.Mutex
	var calls []Progress
	f.job.Progress = func(p Progress) { mu.Lock(); calls = append(calls, p); mu.Unlock() }
	var driver strings.Builder
	f.job.Log = &driver
	res := f.run(context.Background())
	if res.Status != StatusCompleted || res.Error != nil {
		t.Fatalf("got %+v", res)
	}
	p := res.Progress
	if p.MiniBatches != 10 || p.Succeeded != 10 || p.Failed != 0 || p.Files != 100 || p.FilesSucceeded != 100 {
		t.Errorf("progress %+v", p)
	}
	want := fileNames(0, 90)
	for i := 0; i < 10; i++ {
		want += fmt.Sprintf("g%03d.txt\n", i)
	}
	if got := f.output(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	if len(calls) != 11 || calls[9].Succeeded != 10 || calls[9].Finalizing || !calls[10].Finalizing {
		t.Errorf("progress calls: %+v", calls)
	}
	for _, rel := range []string{"logs/readme.txt", "logs/job_result.txt", "logs/sys/master_role.txt",
		"logs/sys/node/node0/process000.txt", "logs/sys/node/node0/process001.txt", "logs/sys/node/node1/process001.txt",
		"logs/user/stdout/node0/process000.stdout.txt", "logs/user/stderr/node0/process001.stderr.txt", "azureml-logs/70_driver_log.txt"} {
		if _, err := os.Stat(filepath.Join(f.job.Dir, rel)); err != nil {
			t.Errorf("missing %s", rel)
		}
	}
	if !strings.Contains(f.log("logs/user/stdout/node0/process000.stdout.txt"), "INFO:azureml:init done") {
		t.Error("the script's logging is not in its stdout file")
	}
	if !strings.Contains(f.log("logs/job_result.txt"), "Completed") || !strings.Contains(driver.String(), "Job job1 Completed") {
		t.Errorf("job_result / driver log:\n%s\n%s", f.log("logs/job_result.txt"), driver.String())
	}
	overview, _ := filepath.Glob(filepath.Join(f.job.Dir, "logs", "job_progress_overview.*.txt"))
	if len(overview) != 1 || !strings.Contains(readT(t, overview[0]), "10 mini-batches created from 100 files") {
		t.Errorf("overview %v", overview)
	}
	// A second Run of a finished job changes nothing and says Completed.
	res = f.run(context.Background())
	if res.Status != StatusCompleted || f.output() != want {
		t.Errorf("second run: %+v", res)
	}
}

func TestDataFrameRows(t *testing.T) {
	f := newFixture(t, 4, `
import os
import pandas as pd
def init():
    pass
def run(mini_batch):
    return pd.DataFrame({"file": [os.path.basename(p) for p in mini_batch], "n": range(len(mini_batch))})
`)
	f.job.Settings.MiniBatchSize = 3
	if res := f.run(context.Background()); res.Status != StatusCompleted {
		t.Fatalf("%+v", res)
	}
	if got, want := f.output(), "f000.txt 0\nf001.txt 1\nf002.txt 2\nf003.txt 0\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

const raiseScript = `
import os, time
def init():
    pass
def run(mini_batch):
    for p in mini_batch:
        if os.path.basename(p) == "f012.txt":
            raise ValueError("cannot read " + os.path.basename(p))
        if os.path.basename(p) == "f000.txt" and os.environ.get("SLOW"):
            time.sleep(30)
        if os.path.basename(p) == "f020.txt" and os.environ.get("EMPTY"):
            return []
    return [os.path.basename(p) for p in mini_batch]
`

func TestRaiseWithoutThreshold(t *testing.T) {
	f := newFixture(t, 30, raiseScript)
	f.job.Worker.Env = []string{"EMPTY=1"}
	res := f.run(context.Background())
	if res.Status != StatusCompleted {
		t.Fatalf("%+v", res)
	}
	if p := res.Progress; p.Succeeded != 1 || p.Failed != 2 || p.FilesFailed != 20 {
		t.Errorf("progress %+v", p)
	}
	if got := f.output(); got != fileNames(0, 10) {
		t.Errorf("output %q", got)
	}
	trace := f.log("logs/user/error/node0/process000.txt")
	if strings.Count(trace, `raise ValueError("cannot read " + os.path.basename(p))`) != 2 || !strings.Contains(trace, "ValueError: cannot read f012.txt") {
		t.Errorf("traceback file:\n%s", trace)
	}
	summary := f.log("logs/user/error.txt")
	if !strings.Contains(summary, "ValueError: cannot read f012.txt") || !strings.Contains(summary, diag.BatchNoSucceededItem) {
		t.Errorf("error.txt:\n%s", summary)
	}
	if !strings.Contains(f.log("logs/sys/master_role.txt"), "mini-batch 1 (10 files, from f010.txt) scheduled to node0/process000") {
		t.Errorf("master_role:\n%s", f.log("logs/sys/master_role.txt"))
	}
}

func TestThresholdExceeded(t *testing.T) {
	f := newFixture(t, 30, raiseScript)
	f.job.Settings.ErrorThreshold = 0
	f.job.Settings.MaxRetries = 0
	res := f.run(context.Background())
	if res.Status != StatusFailed || res.Error == nil || res.Error.Code != diag.UserError || res.Error.Message != diag.BatchRunFailed {
		t.Fatalf("%+v", res)
	}
	if !strings.Contains(res.Error.Error(), "10 files failed, more than the error_threshold of 0") ||
		!strings.Contains(res.Error.Error(), "ValueError: cannot read f012.txt") {
		t.Errorf("error: %v", res.Error)
	}
	if res.Progress.Succeeded+res.Progress.Failed == 3 {
		t.Errorf("the job went on after the threshold: %+v", res.Progress)
	}
	if _, err := os.Stat(f.job.outputPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed job wrote its output: %v", err)
	}
}

func TestTimeoutRetried(t *testing.T) {
	f := newFixture(t, 4, raiseScript)
	f.job.Worker.Env = []string{"SLOW=1"}
	f.job.Settings.MiniBatchSize = 2
	f.job.Settings.Timeout = time.Second
	f.job.Settings.MaxRetries = 1
	start := time.Now()
	res := f.run(context.Background())
	if res.Status != StatusCompleted || res.Progress.Failed != 1 || res.Progress.Succeeded != 1 {
		t.Fatalf("%+v", res)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("took %s", took)
	}
	msg := "No progress update in 1 seconds. No progress update in this check. Wait 1 seconds since last update."
	if n := strings.Count(f.log("azureml-logs/70_driver_log.txt"), "mini-batch 0: "+msg); n != 2 {
		t.Errorf("driver log has the timeout %d times:\n%s", n, f.log("azureml-logs/70_driver_log.txt"))
	}
	sys := f.log("logs/sys/node/node0/process000.txt")
	if strings.Count(sys, msg) != 2 || strings.Count(sys, "worker started with pid") != 3 {
		t.Errorf("sys log:\n%s", sys)
	}
	if !strings.Contains(f.log("logs/sys/master_role.txt"), "attempt 2 of 2") {
		t.Errorf("master_role:\n%s", f.log("logs/sys/master_role.txt"))
	}
	if f.output() != fileNames(2, 4) {
		t.Errorf("output %q", f.output())
	}
}

func TestInitFailure(t *testing.T) {
	f := newFixture(t, 3, "def init():\n    raise RuntimeError('model.pkl not found')\n\ndef run(mb):\n    return mb\n")
	res := f.run(context.Background())
	if res.Status != StatusFailed || res.Error.Code != diag.UserError || res.Error.Message != diag.BatchRunFailed ||
		!strings.Contains(res.Error.Error(), "RuntimeError: model.pkl not found") {
		t.Fatalf("%+v %v", res, res.Error)
	}
	trace := f.log("logs/user/error/node0/process000.txt")
	if strings.Count(trace, "Traceback (most recent call last)") != initTries || !strings.Contains(trace, "raise RuntimeError('model.pkl not found')") {
		t.Errorf("traceback file:\n%s", trace)
	}
	if !strings.Contains(f.log("logs/user/error.txt"), "init() failed (start 3 of 3)") {
		t.Errorf("error.txt:\n%s", f.log("logs/user/error.txt"))
	}
	if !strings.Contains(f.log("logs/job_result.txt"), diag.BatchRunFailed) {
		t.Errorf("job_result:\n%s", f.log("logs/job_result.txt"))
	}
}

func TestResume(t *testing.T) {
	f := newFixture(t, 50, namesScript)
	side := filepath.Join(t.TempDir(), "side.txt")
	f.job.Worker.Env = []string{"SIDE=" + side}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.job.Progress = func(p Progress) {
		if p.Succeeded == 3 {
			cancel()
		}
	}
	_, err := Run(ctx, f.job)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled run: %v", err)
	}
	if _, err := os.Stat(f.job.outputPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a stopped job wrote its output")
	}
	jr, journaledBefore, err := openJournal(f.job.Dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	jr.close()
	// A torn line from a crash mid-append is ignored.
	j, _ := os.OpenFile(filepath.Join(f.job.Dir, "journal"), os.O_APPEND|os.O_WRONLY, 0)
	j.WriteString(`{"mb":3,"ok":tr`)
	j.Close()
	f.job.Progress = nil
	res := f.run(context.Background())
	if res.Status != StatusCompleted || res.Progress.Succeeded != 5 {
		t.Fatalf("%+v", res)
	}
	// A journaled mini-batch never runs again; one in a worker's pipe when the run
	// stopped (not journaled) may run twice.
	runs := map[string]int{}
	for _, name := range strings.Fields(readT(t, side)) {
		runs[name]++
	}
	for mb := range journaledBefore {
		if name := fmt.Sprintf("f%03d.txt", mb*10); runs[name] != 1 {
			t.Errorf("journaled mini-batch %d ran %d times", mb, runs[name])
		}
	}
	for mb := 0; mb < 5; mb++ {
		if name := fmt.Sprintf("f%03d.txt", mb*10); runs[name] < 1 || runs[name] > 2 {
			t.Errorf("mini-batch %d ran %d times", mb, runs[name])
		}
	}
	if got := f.output(); got != fileNames(0, 50) {
		t.Errorf("output:\n%s", got)
	}
	// Workers go on while the journal makes a mini-batch durable, so 3 or more were done.
	if !regexp.MustCompile(`resumed: [345] of 5 mini-batches already done`).MatchString(f.log("azureml-logs/70_driver_log.txt")) {
		t.Errorf("driver log:\n%s", f.log("azureml-logs/70_driver_log.txt"))
	}
}

func TestExistingOutputIsKept(t *testing.T) {
	f := newFixture(t, 3, namesScript)
	writeT(t, f.job.outputPath(), "earlier predictions\n")
	res := f.run(context.Background())
	if res.Status != StatusFailed || res.Error.Code != diag.UserError ||
		!strings.Contains(res.Error.Message, f.job.outputPath()) || !strings.Contains(res.Error.Message, "--set output_file_name=") {
		t.Fatalf("%+v", res)
	}
	if f.output() != "earlier predictions\n" {
		t.Error("the existing output was changed")
	}
	if _, err := os.Stat(filepath.Join(f.job.Dir, "logs", "sys", "master_role.txt")); err == nil {
		t.Error("mini-batches ran although the output exists")
	}
}

func TestSummaryOnly(t *testing.T) {
	f := newFixture(t, 5, `
import os
def init():
    pass
def run(mini_batch):
    out = os.environ["AZUREML_BI_OUTPUT_PATH"]
    with open(os.path.join(out, "part-" + os.path.basename(mini_batch[0])), "w") as f:
        f.write(str(len(mini_batch)))
    return mini_batch
`)
	f.job.Settings.OutputAction = SummaryOnly
	f.job.Settings.MiniBatchSize = 2
	if res := f.run(context.Background()); res.Status != StatusCompleted {
		t.Fatalf("%+v", res)
	}
	for name, want := range map[string]string{"part-f000.txt": "2", "part-f002.txt": "2", "part-f004.txt": "1"} {
		if got := readT(t, filepath.Join(f.job.OutputDir, name)); got != want {
			t.Errorf("%s: %q", name, got)
		}
	}
	if _, err := os.Stat(f.job.outputPath()); !errors.Is(err, os.ErrNotExist) {
		t.Error("summary_only wrote predictions.csv")
	}
}

func TestListInput(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"b.csv", "a.csv", "a/z.csv", "a.d/y.csv"} {
		writeT(t, filepath.Join(dir, p), "x")
	}
	rel := func(files []string) string { return strings.Join(files, " ") }
	all, err := listInput(dir, URIFolder, false)
	if err != nil || rel(all) != "a.csv a.d/y.csv a/z.csv b.csv" {
		t.Errorf("all: %q %v", rel(all), err)
	}
	top, err := listInput(dir, URIFolder, true)
	if err != nil || rel(top) != "a.csv b.csv" {
		t.Errorf("top: %q %v", rel(top), err)
	}
	one, err := listInput(filepath.Join(dir, "b.csv"), URIFile, false)
	if err != nil || len(one) != 1 || (manifest{Files: one}).paths(filepath.Join(dir, "b.csv"))[0] != filepath.Join(dir, "b.csv") {
		t.Errorf("uri_file: %v %v", one, err)
	}
	if _, err := listInput(t.TempDir(), URIFolder, false); diag.As(err) == nil || diag.As(err).Code != diag.UserError {
		t.Errorf("empty folder: %v", err)
	}
}

func TestCancelKillsWorkers(t *testing.T) {
	f := newFixture(t, 4, raiseScript)
	f.job.Worker.Env = []string{"SLOW=1"}
	f.job.Settings.Timeout = 20 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, f.job)
		done <- err
	}()
	sysLog := filepath.Join(f.job.Dir, "logs", "sys", "master_role.txt")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile(sysLog); strings.Contains(string(b), "mini-batch 0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("mini-batch 0 never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var pid int
	fmt.Sscanf(f.log("logs/sys/node/node0/process000.txt")[24:], "worker started with pid %d", &pid)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stopping took %s", took)
	}
	if pid == 0 || syscall.Kill(pid, 0) == nil {
		t.Errorf("worker %d still runs after cancel", pid)
	}
	// The mini-batch that was running runs again.
	f.job.Worker.Env = nil
	if res := f.run(context.Background()); res.Status != StatusCompleted || f.output() != fileNames(0, 4) {
		t.Errorf("resumed: %+v", res)
	}
}

func TestFinalizeResumes(t *testing.T) {
	root := t.TempDir()
	j := Job{Dir: filepath.Join(root, "job"), OutputDir: filepath.Join(root, "out"), Settings: Settings{OutputFileName: "p.csv"}}
	os.MkdirAll(j.Dir, 0o755)
	jr, done, err := openJournal(j.Dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer jr.close()
	for mb, rows := range []string{"a\n", "b\n"} {
		e := entry{MB: mb, OK: true, Files: 1, Items: 1}
		if err := jr.commit(e, []byte(rows)); err != nil {
			t.Fatal(err)
		}
		done[mb] = e
	}
	if err := finalize(j, jr, done, 2); err != nil || readT(t, j.outputPath()) != "a\nb\n" {
		t.Fatalf("finalize: %v", err)
	}
	// Again: the marker says the file is ours.
	if err := finalize(j, jr, done, 2); err != nil {
		t.Fatalf("finalize again: %v", err)
	}
	// A crash after the link, before the marker: the temp file is the output.
	os.Remove(filepath.Join(j.Dir, "finalized"))
	tmp := filepath.Join(j.OutputDir, ".p.csv.job.berth-tmp")
	if err := os.Link(j.outputPath(), tmp); err != nil {
		t.Fatal(err)
	}
	if err := finalize(j, jr, done, 2); err != nil {
		t.Fatalf("finalize after a crash: %v", err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Error("the temp file is left")
	}
	// Someone else's file, without our marker: refused, and kept.
	os.Remove(filepath.Join(j.Dir, "finalized"))
	writeT(t, j.outputPath(), "theirs\n")
	if err := finalize(j, jr, done, 2); diag.As(err) == nil || readT(t, j.outputPath()) != "theirs\n" {
		t.Errorf("finalize over another file: %v", err)
	}
}

// commit adds a record to the journal and waits until it is durable.
func (jr *journal) commit(e entry, rows []byte) error {
	ch := make(chan error, 1)
	jr.add(e, rows, func(err error) { ch <- err })
	return <-ch
}
