//go:build unix

package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthml/berth/internal/inference"
)

// podServer serves a Remote's worker protocol on loopback, as the server's API does,
// checking the token.
func podServer(t *testing.T, rem *Remote) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/jobs/{job}/workers/{node}/{process}/{verb}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer pod-token" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		node, _ := strconv.Atoi(r.PathValue("node"))
		proc, _ := strconv.Atoi(r.PathValue("process"))
		rem.ServeWorker(w, r, node, proc, r.PathValue("verb"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// startPods runs nodes pods of the fixture's job against srv, as `berth batch-worker`
// does, each with its own copy of the code (its emptyDir), and returns a wait for them.
func (f *fixture) startPods(ctx context.Context, srv *httptest.Server, nodes int, env ...string) func() []error {
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	job := f.job // as it is now: the caller may change it
	for n := 0; n < nodes; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[n] = RunPod(ctx, PodConfig{Server: srv.URL, Token: "pod-token", Job: job.Name, Run: "r1", Node: n,
				Processes: job.Settings.MaxConcurrencyPerInstance, Timeout: job.Settings.Timeout,
				WorkDir: filepath.Join(f.t.TempDir(), "work"), RetryFor: 5 * time.Second,
				Worker: inference.BatchWorkerConfig{Python: debianPython, Dir: job.Worker.CodeDir,
					EntryScript: job.Worker.EntryScript, Env: env}})
		}()
	}
	return func() []error { wg.Wait(); return errs }
}

// TestRemoteWorkersSameOutput runs a job whose workers are two pods of two processes
// each, pulling mini-batches over HTTP: the output file is the one a local run writes,
// the workers' output lands in Azure's log layout, and the pods exit when the job ends.
func TestRemoteWorkersSameOutput(t *testing.T) {
	local := newFixture(t, 45, namesScript)
	local.job.Settings.MaxConcurrencyPerInstance, local.job.Nodes = 2, 2
	local.job.Settings.MiniBatchSize = 3
	if res := local.run(context.Background()); res.Status != StatusCompleted {
		t.Fatalf("local: %+v", res)
	}

	f := newFixture(t, 45, namesScript)
	f.job.Settings.MaxConcurrencyPerInstance, f.job.Nodes = 2, 2
	f.job.Settings.MiniBatchSize = 3
	rem := NewRemote("r1")
	f.job.Remote = rem
	// Each run() naps, so that every worker gets mini-batches.
	pods := f.startPods(t.Context(), podServer(t, rem), 2, "NAP=0.1")
	f.job.Worker = Worker{} // the pods have the script, the server nothing
	res := f.run(context.Background())
	if res.Status != StatusCompleted || res.Progress.Succeeded != 15 {
		t.Fatalf("remote: %+v", res)
	}
	if got, want := f.output(), local.output(); got != want {
		t.Errorf("remote output:\n%s\nlocal output:\n%s", got, want)
	}
	for i, err := range pods() {
		if err != nil {
			t.Errorf("pod %d: %v", i, err)
		}
	}
	if !strings.Contains(f.log("logs/user/stdout/node1/process001.stdout.txt"), "INFO:azureml:init done") {
		t.Error("the pod worker's output is not in its slot's stdout file")
	}
	if !strings.Contains(f.log("logs/sys/master_role.txt"), "scheduled to node1/process000") {
		t.Error("no mini-batch went to node1/process000")
	}
}

// TestRemoteTimeoutAndLostPod: a run() that outlasts the timeout in a pod is retried
// and its worker replaced, and a pod that goes away mid-job (its mini-batches never
// answered) leaves them to the other pod: the job still completes with every row.
func TestRemoteTimeoutAndLostPod(t *testing.T) {
	f := newFixture(t, 30, raiseScript)
	f.job.Settings.Timeout = 2 * time.Second
	f.job.Settings.MaxRetries = 2
	f.job.Settings.ErrorThreshold = -1
	rem := NewRemote("r1")
	rem.Grace = time.Second
	f.job.Remote = rem
	srv := podServer(t, rem)
	// The first pod sleeps in f000's run() (SLOW), so that mini-batch times out; it is
	// then killed while it sleeps again, and a second pod takes over.
	ctx1, kill := context.WithCancel(t.Context())
	pod1 := f.startPods(ctx1, srv, 1, "SLOW=1")
	pod2 := make(chan func() []error, 1)
	go func() {
		// Once the pod has reported the timeout, it is killed while it sleeps again.
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(readFile(filepath.Join(f.job.Dir, "logs", "user", "error.txt")), "No progress update"); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Error("the pod's timeout never reached user/error.txt")
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
		kill()
		pod1()
		pod2 <- f.startPods(t.Context(), srv, 1)
	}()
	res := f.run(context.Background())
	if res.Status != StatusCompleted {
		t.Fatalf("%+v", res)
	}
	// f012's mini-batch raises every time; the others succeed.
	if p := res.Progress; p.Succeeded != 2 || p.Failed != 1 {
		t.Errorf("progress %+v", p)
	}
	if got := f.output(); got != fileNames(0, 10)+fileNames(20, 30) {
		t.Errorf("output:\n%s", got)
	}
	if !strings.Contains(f.log("logs/user/error.txt"), "No progress update in 2 seconds") {
		t.Errorf("no timeout in user/error.txt:\n%s", f.log("logs/user/error.txt"))
	}
	for _, err := range (<-pod2)() {
		if err != nil {
			t.Errorf("pod 2: %v", err)
		}
	}
	os.RemoveAll(f.job.Dir)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestRemoteNextIsIdempotent: a pod whose call broke after the server handled it sends
// it again. The answer is not taken twice (nor as the answer of the next mini-batch),
// and the mini-batch the pod never received is handed to it again; a pod of another
// run is refused.
func TestRemoteNextIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.txt", "b.txt"} {
		writeT(t, filepath.Join(dir, f), f)
	}
	rem := NewRemote("r1")
	rem.Poll = 100 * time.Millisecond
	rem.start(dir)
	srv := podServer(t, rem)
	try := func(verb string, body any) (*http.Response, error) {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/jobs/j/workers/0/0/"+verb, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer pod-token")
		return http.DefaultClient.Do(req)
	}
	post := func(verb string, body any) *http.Response {
		t.Helper()
		resp, err := try(verb, body)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := post(VerbJoin, podJoin{Run: "old", PID: 7}); resp.StatusCode != http.StatusGone {
		t.Fatalf("a pod of another run joined: %d", resp.StatusCode)
	}
	var joined struct{ Worker int }
	json.NewDecoder(post(VerbJoin, podJoin{Run: "r1", PID: 7}).Body).Decode(&joined)
	var stdout, stderr strings.Builder
	w, err := rem.take(t.Context(), SlotKey(0, 0), &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	w.Send(0, []string{filepath.Join(dir, "a.txt")})
	w.Send(1, []string{filepath.Join(dir, "b.txt")})
	mbOf := func(resp *http.Response) string { return resp.Header.Get(MiniBatchHeader) }
	if mb := mbOf(post(VerbNext, podNext{Run: "r1", Worker: joined.Worker})); mb != "0" {
		t.Fatalf("first next: mini-batch %q", mb)
	}
	answer0 := &podAnswer{MiniBatch: 0, Rows: []byte("a\n"), Items: 1}
	if mb := mbOf(post(VerbNext, podNext{Run: "r1", Worker: joined.Worker, Answer: answer0})); mb != "1" {
		t.Fatalf("next after answering 0: mini-batch %q", mb)
	}
	// The same call again: mini-batch 1 is handed again, the answer is not taken twice.
	if mb := mbOf(post(VerbNext, podNext{Run: "r1", Worker: joined.Worker, Answer: answer0})); mb != "1" {
		t.Fatalf("repeated next: mini-batch %q, want 1 again", mb)
	}
	if a, err := w.Recv(t.Context()); err != nil || string(a.Rows) != "a\n" {
		t.Fatalf("answer to 0: %q %v", a.Rows, err)
	}
	go func() {
		if resp, err := try(VerbNext, podNext{Run: "r1", Worker: joined.Worker, Answer: &podAnswer{MiniBatch: 1, Rows: []byte("b\n"), Items: 1}}); err == nil {
			resp.Body.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if a, err := w.Recv(ctx); err != nil || string(a.Rows) != "b\n" {
		t.Fatalf("answer to 1: %q %v", a.Rows, err)
	}
}
