//go:build unix

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// journaled returns the mini-batches in a job's journal: records of a JSON header line
// ({"mb": i, "n": bytes of rows, ...}) followed by the mini-batch's rows.
func journaled(t *testing.T, s *server, job string) map[int]bool {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(s.dataDir, "jobs", job, "journal"))
	done := map[int]bool{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		var e struct {
			MB int `json:"mb"`
			N  int `json:"n"`
		}
		if nl < 0 || json.Unmarshal(b[:nl], &e) != nil || len(b) < nl+1+e.N {
			break // a torn last record
		}
		done[e.MB] = true
		b = b[nl+1+e.N:]
	}
	return done
}

// TestBatchResumesAfterKill9 kills the server halfway through a 200-mini-batch job:
// after a restart the job completes, no mini-batch journaled before the kill runs again
// (the script appends each run to a side file), and every row is in the output once.
func TestBatchResumesAfterKill9(t *testing.T) {
	side := filepath.Join(t.TempDir(), "runs")
	script := `
import os, time
def init():
    pass
def run(mini_batch):
    with open(` + fmt.Sprintf("%q", side) + `, "a") as f:
        for p in mini_batch:
            f.write(os.path.basename(p) + "\n")
    time.sleep(0.02)
    return [os.path.basename(p) for p in mini_batch]
`
	dir := batchProject(t, "resume", script, "  mini_batch_size: 1\n  max_concurrency_per_instance: 2\n", 200)
	s := startServer(t, "")
	deployBatch(t, s, dir, "resume")
	job := invokeBatch(t, s, "resume", filepath.Join(dir, "data"))
	eventually(t, 60*time.Second, "half the mini-batches to be journaled", func() bool { return len(journaled(t, s, job)) >= 100 })
	s.kill9()
	before := journaled(t, s, job)
	if len(before) >= 200 {
		t.Fatalf("the job finished before the kill: %d journaled", len(before))
	}
	s.start()
	if st := waitJob(t, s, job, 90*time.Second); st != "Completed" {
		t.Fatalf("status after restart %s; log:\n%s", st, jobFile(t, s, job, "azureml-logs/70_driver_log.txt"))
	}
	b, err := os.ReadFile(side)
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	for _, f := range strings.Fields(string(b)) {
		runs[f]++
	}
	for mb := range before {
		if f := fmt.Sprintf("f%03d.txt", mb); runs[f] != 1 {
			t.Errorf("mini-batch %d (%s) was journaled before the kill and ran %d times", mb, f, runs[f])
		}
	}
	lines := downloadScore(t, s, job, "predictions.csv")
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Errorf("row %q appears twice", l)
		}
		seen[l] = true
	}
	if len(lines) != 200 || len(seen) != 200 {
		t.Errorf("%d rows (%d distinct), want 200", len(lines), len(seen))
	}
	t.Logf("killed with %d of 200 mini-batches journaled; %d runs in all", len(before), len(strings.Fields(string(b))))
}

func TestBatchCancelStopsTheWorkers(t *testing.T) {
	script := "import time\ndef init():\n    pass\ndef run(mini_batch):\n    time.sleep(30)\n    return mini_batch\n"
	dir := batchProject(t, "cancel", script, "  mini_batch_size: 1\n", 3)
	s := startServer(t, "")
	deployBatch(t, s, dir, "cancel")
	job := invokeBatch(t, s, "cancel", filepath.Join(dir, "data"))
	eventually(t, 30*time.Second, "the job to run", func() bool {
		return strings.TrimSpace(s.ok("job", "show", "-n", job, "--query", "status", "-o", "tsv")) == "Running"
	})
	eventually(t, 10*time.Second, "the job's workers to start", func() bool { return len(processesWith(job)) > 0 })
	s.ok("job", "cancel", "-n", job)
	if st := waitJob(t, s, job, 20*time.Second); st != "Canceled" {
		t.Fatalf("status %s, want Canceled", st)
	}
	eventually(t, 10*time.Second, "the job's workers to exit", func() bool { return len(processesWith(job)) == 0 })
}

// processesWith lists the pids whose command line or environment mentions s.
func processesWith(s string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func TestBatchErrorsNameTheFix(t *testing.T) {
	dir := batchProject(t, "errs", echoScript, "  mini_batch_size: 2\n", 2)
	writeFiles(t, dir, map[string]string{
		"nocompute.yml": "name: nocomp\nendpoint_name: errs\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\ncompute: azureml:gpu-cluster\n",
		"pipeline.yml":  "name: pipe\nendpoint_name: errs\ntype: pipeline\ncomponent: azureml:hello@latest\n",
	})
	s := startServer(t, "")
	s.ok("compute", "create", "-n", "cpu", "--type", "amlcompute", "--max-instances", "2")
	s.ok("batch-endpoint", "create", "-n", "errs", "-f", filepath.Join(dir, "endpoint.yml"))
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"batch-deployment", "create", "-f", filepath.Join(dir, "nocompute.yml")}, []string{"ComputeNotFound", "berth compute create -n gpu-cluster"}},
		{[]string{"batch-deployment", "create", "-f", filepath.Join(dir, "pipeline.yml")}, []string{"not supported yet"}},
		{[]string{"batch-endpoint", "invoke", "-n", "errs", "--input", filepath.Join(dir, "data")}, []string{"No valid deployments to route to", "defaults.deployment_name"}},
		{[]string{"batch-endpoint", "invoke", "-n", "nope", "--input", filepath.Join(dir, "data")}, []string{"EndpointNotFound"}},
	} {
		r := s.berth(tc.args...)
		for _, w := range tc.want {
			if r.code == 0 || !strings.Contains(r.stderr, w) {
				t.Errorf("berth %s: exit %d, stderr %q; want %q", strings.Join(tc.args, " "), r.code, r.stderr, w)
			}
		}
	}
	// Batch and online endpoints share one table of names, both ways.
	s.ok("online-endpoint", "create", "-n", "online-one")
	for _, args := range [][]string{{"online-endpoint", "create", "-n", "errs"}, {"batch-endpoint", "create", "-n", "online-one"}} {
		if r := s.berth(args...); r.code == 0 || !strings.Contains(r.stderr, "EndpointAlreadyExists") {
			t.Errorf("berth %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	s.ok("batch-deployment", "create", "-f", filepath.Join(dir, "deployment.yml"), "--set-default")
	out := filepath.Join(s.dataDir, "datastores", "workspaceblobstore", "results")
	writeFiles(t, out, map[string]string{"predictions.csv": "keep me\n"})
	r := s.berth("batch-endpoint", "invoke", "-n", "errs", "--input", filepath.Join(dir, "data"),
		"--output-path", "azureml://datastores/workspaceblobstore/paths/results")
	if r.code == 0 || !strings.Contains(r.stderr, "never overwrites") {
		t.Errorf("invoke over an existing output: exit %d, stderr %q", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "predictions.csv")); string(b) != "keep me\n" {
		t.Errorf("the existing output changed: %q", b)
	}
	job := invokeBatch(t, s, "errs", "https://127.0.0.1:1/no-such-file.csv", "--input-type", "uri_file")
	if st := waitJob(t, s, job, 30*time.Second); st != "Failed" {
		t.Fatalf("an unreachable URL: status %s", st)
	}
	if msg := s.ok("job", "show", "-n", job, "--query", "error.message", "-o", "tsv"); !strings.Contains(msg, "https://127.0.0.1:1/no-such-file.csv") {
		t.Errorf("the error does not name the URL: %q", msg)
	}
}
