//go:build unix

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// batchProject writes a batch endpoint project: endpoint.yml, deployment.yml with the
// given settings block, code/score.py, a model file and n input files data/f<i>.txt.
func batchProject(t *testing.T, endpoint, script, settings string, n int) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"endpoint.yml": "name: " + endpoint + "\nauth_mode: aad_token\n",
		"deployment.yml": "name: dep\nendpoint_name: " + endpoint + "\ntype: model\nmodel: {path: ./model}\n" +
			"code_configuration: {code: ./code, scoring_script: score.py}\ncompute: azureml:cpu\n" +
			"resources: {instance_count: 1}\nsettings:\n" + settings,
		"code/score.py":   script,
		"model/model.txt": "2\n",
	}
	for i := range n {
		files[fmt.Sprintf("data/f%03d.txt", i)] = fmt.Sprintf("%d\n", i)
	}
	writeFiles(t, dir, files)
	return dir
}

// deployBatch creates the compute, the endpoint and its default deployment.
func deployBatch(t *testing.T, s *server, dir, endpoint string) {
	t.Helper()
	s.ok("compute", "create", "-n", "cpu", "--type", "amlcompute", "--min-instances", "0", "--max-instances", "4")
	s.ok("batch-endpoint", "create", "-n", endpoint, "-f", filepath.Join(dir, "endpoint.yml"))
	s.ok("batch-deployment", "create", "-f", filepath.Join(dir, "deployment.yml"), "--set-default")
}

// invokeBatch starts a job on the endpoint's default deployment and returns its name.
func invokeBatch(t *testing.T, s *server, endpoint, input string, flags ...string) string {
	t.Helper()
	args := append([]string{"batch-endpoint", "invoke", "-n", endpoint, "--input", input, "--query", "name", "-o", "tsv"}, flags...)
	name := strings.TrimSpace(s.ok(args...))
	if name == "" {
		t.Fatalf("invoke printed no job name")
	}
	return name
}

// waitJob waits until the job has ended and returns its status.
func waitJob(t *testing.T, s *server, job string, timeout time.Duration) string {
	t.Helper()
	var status string
	eventually(t, timeout, "job "+job+" to end", func() bool {
		status = strings.TrimSpace(s.ok("job", "show", "-n", job, "--query", "status", "-o", "tsv"))
		return status == "Completed" || status == "Failed" || status == "Canceled"
	})
	return status
}

// jobFile reads a file of a job's folder in the data dir.
func jobFile(t *testing.T, s *server, job, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dataDir, "jobs", job, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("job %s: %v", job, err)
	}
	return string(b)
}

// downloadScore downloads the job's score output and returns predictions.csv's lines.
func downloadScore(t *testing.T, s *server, job, file string) []string {
	t.Helper()
	dst := t.TempDir()
	s.ok("job", "download", "-n", job, "--output-name", "score", "--download-path", dst)
	b, err := os.ReadFile(filepath.Join(dst, "named-outputs", "score", file))
	if err != nil {
		t.Fatalf("downloaded output: %v", err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

const echoScript = `
import os
def init():
    pass
def run(mini_batch):
    return [os.path.basename(p) + " " + open(p).read().strip() for p in mini_batch]
`

func TestBatchJobWritesEachRowOnceInOrder(t *testing.T) {
	dir := batchProject(t, "rows", echoScript, "  mini_batch_size: 10\n  max_concurrency_per_instance: 2\n", 100)
	s := startServer(t, "")
	deployBatch(t, s, dir, "rows")
	job := invokeBatch(t, s, "rows", filepath.Join(dir, "data"))
	if st := waitJob(t, s, job, 60*time.Second); st != "Completed" {
		t.Fatalf("status %s; driver log:\n%s", st, jobFile(t, s, job, "azureml-logs/70_driver_log.txt"))
	}
	var shown struct {
		Progress struct {
			MiniBatches int `json:"mini_batches"`
			Done        int `json:"mini_batches_succeeded"`
		}
	}
	s.okJSON(&shown, "job", "show", "-n", job)
	if shown.Progress.MiniBatches != 10 || shown.Progress.Done != 10 {
		t.Errorf("progress %+v, want 10 of 10 mini-batches", shown.Progress)
	}
	lines := downloadScore(t, s, job, "predictions.csv")
	var want []string
	for i := range 100 {
		want = append(want, fmt.Sprintf("f%03d.txt %d", i, i))
	}
	if !slices.Equal(lines, want) {
		t.Errorf("output has %d lines, want the 100 rows in file order; first lines: %q", len(lines), lines[:min(5, len(lines))])
	}
	for _, f := range []string{"logs/readme.txt", "logs/job_result.txt", "logs/sys/master_role.txt", "logs/user/stdout/node0/process000.stdout.txt"} {
		jobFile(t, s, job, f)
	}
	jobs := s.ok("batch-deployment", "list-jobs", "-e", "rows", "-n", "dep", "--query", "[].name", "-o", "tsv")
	if !strings.Contains(jobs, job) {
		t.Errorf("list-jobs does not list %s: %q", job, jobs)
	}
}

const failOnBadScript = `
import os
def init():
    pass
def run(mini_batch):
    for p in mini_batch:
        if open(p).read().strip() == "13":
            raise ValueError("cannot score " + os.path.basename(p))
    return [os.path.basename(p) for p in mini_batch]
`

func TestBatchErrorThreshold(t *testing.T) {
	for _, tc := range []struct {
		threshold int
		want      string
	}{{-1, "Completed"}, {0, "Failed"}} {
		t.Run(fmt.Sprint(tc.threshold), func(t *testing.T) {
			settings := fmt.Sprintf("  mini_batch_size: 5\n  error_threshold: %d\n  retry_settings: {max_retries: 1, timeout: 30}\n", tc.threshold)
			dir := batchProject(t, "thr", failOnBadScript, settings, 30)
			s := startServer(t, "")
			deployBatch(t, s, dir, "thr")
			job := invokeBatch(t, s, "thr", filepath.Join(dir, "data"))
			if st := waitJob(t, s, job, 60*time.Second); st != tc.want {
				t.Fatalf("status %s, want %s", st, tc.want)
			}
			if errs := jobFile(t, s, job, "logs/user/error.txt"); !strings.Contains(errs, "cannot score f013.txt") {
				t.Errorf("logs/user/error.txt does not name the failure:\n%s", errs)
			}
			if tc.want == "Completed" {
				if lines := downloadScore(t, s, job, "predictions.csv"); len(lines) != 25 {
					t.Errorf("%d rows, want 25 (the failed mini-batch's 5 files are missing)", len(lines))
				}
				return
			}
			msg := s.ok("job", "show", "-n", job, "--query", "error.message", "-o", "tsv")
			if !strings.Contains(msg, "User program failed with Exception: Run failed, please check logs for details. You can check logs/readme.txt for the layout of logs.") {
				t.Errorf("error message %q lacks Azure's text", msg)
			}
		})
	}
}

func TestBatchTimeoutIsRetriedThenFailed(t *testing.T) {
	side := filepath.Join(t.TempDir(), "attempts")
	script := `
import os, time
def init():
    pass
def run(mini_batch):
    for p in mini_batch:
        if os.path.basename(p) == "f002.txt":
            with open(` + fmt.Sprintf("%q", side) + `, "a") as f:
                f.write("attempt\n")
            time.sleep(30)
    return [os.path.basename(p) for p in mini_batch]
`
	dir := batchProject(t, "slow", script, "  mini_batch_size: 1\n  retry_settings: {max_retries: 2, timeout: 1}\n", 4)
	s := startServer(t, "")
	deployBatch(t, s, dir, "slow")
	job := invokeBatch(t, s, "slow", filepath.Join(dir, "data"))
	if st := waitJob(t, s, job, 60*time.Second); st != "Completed" {
		t.Fatalf("status %s, want Completed (error_threshold -1)", st)
	}
	b, _ := os.ReadFile(side)
	if n := strings.Count(string(b), "attempt"); n != 3 {
		t.Errorf("the slow mini-batch ran %d times, want 3 (max_retries 2)", n)
	}
	if log := jobFile(t, s, job, "azureml-logs/70_driver_log.txt"); !strings.Contains(log, "No progress update in 1 seconds") {
		t.Errorf("the driver log lacks the timeout message:\n%s", log)
	}
	if lines := downloadScore(t, s, job, "predictions.csv"); len(lines) != 3 {
		t.Errorf("output %q, want the 3 other files", lines)
	}
}

func TestBatchInitFailureFailsTheJobWithTheTraceback(t *testing.T) {
	script := "def init():\n    raise RuntimeError('model file is corrupt')\ndef run(mini_batch):\n    return mini_batch\n"
	dir := batchProject(t, "initfail", script, "  mini_batch_size: 2\n", 4)
	s := startServer(t, "")
	deployBatch(t, s, dir, "initfail")
	job := invokeBatch(t, s, "initfail", filepath.Join(dir, "data"))
	if st := waitJob(t, s, job, 60*time.Second); st != "Failed" {
		t.Fatalf("status %s, want Failed", st)
	}
	tb := jobFile(t, s, job, "logs/user/error/node0/process000.txt")
	if !strings.Contains(tb, "Traceback") || !strings.Contains(tb, "model file is corrupt") {
		t.Errorf("process000.txt lacks the traceback:\n%s", tb)
	}
	r := s.berth("job", "stream", "-n", job)
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "Failed") {
		t.Errorf("job stream of a failed job: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestBatchDeploymentShowsItsEnvironmentWarnings: a version pin the interpreter does not
// meet is a warning on batch-deployment create and in show, as for online deployments.
func TestBatchDeploymentShowsItsEnvironmentWarnings(t *testing.T) {
	requireDebianPython(t, "numpy")
	dir := batchProject(t, "pins", echoScript, "  mini_batch_size: 1\n", 1)
	writeFiles(t, dir, map[string]string{
		"conda.yaml": "name: env\ndependencies:\n  - python=3\n  - numpy==1.0.0\n",
		"pinned.yml": "name: dep\nendpoint_name: pins\ntype: model\nmodel: {path: ./model}\n" +
			"code_configuration: {code: ./code, scoring_script: score.py}\ncompute: azureml:cpu\n" +
			"environment: {conda_file: ./conda.yaml, image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest}\n",
	})
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3")
	s.ok("compute", "create", "-n", "cpu", "--type", "amlcompute")
	s.ok("batch-endpoint", "create", "-n", "pins", "-f", filepath.Join(dir, "endpoint.yml"))
	r := s.berth("batch-deployment", "create", "-f", filepath.Join(dir, "pinned.yml"))
	if r.code != 0 || !strings.Contains(r.stderr, "WARNING") || !strings.Contains(r.stderr, "numpy==1.0.0") {
		t.Fatalf("create: %+v, want a warning about numpy==1.0.0", r)
	}
	if show := s.ok("batch-deployment", "show", "-e", "pins", "-n", "dep", "--query", "warnings", "-o", "tsv"); !strings.Contains(show, "numpy==1.0.0") {
		t.Fatalf("show lacks the pin warning: %q", show)
	}
}
