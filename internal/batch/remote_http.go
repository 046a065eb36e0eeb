package batch

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The protocol between a job's server and the workers of its pods, under
// /api/v1/jobs/<job>/workers/<node>/<process>/ (admin or pod token):
//
//	POST join  {"pid": 123} or {"error": ..., "traceback": ...}
//	           → 200 {"worker": 7}; 410 when the slot takes no more workers
//	POST next  {"worker": 7, "answer": {...}}: the answer to the last mini-batch (if any)
//	           → 200 a tar of the next mini-batch's files (header MiniBatchHeader)
//	           → 202 none yet: ask again; 204 no more: exit; 409 start a new Python
//	             worker and join again
const (
	VerbJoin = "join"
	VerbNext = "next"
	// MiniBatchHeader carries the index of the mini-batch a next answer holds.
	MiniBatchHeader = "X-Berth-Mini-Batch"
)

// podJoin is the body of a join.
type podJoin struct {
	// Run is the id of the run the pod was started for.
	Run       string `json:"run,omitempty"`
	PID       int    `json:"pid,omitempty"`
	Error     string `json:"error,omitempty"`
	Traceback string `json:"traceback,omitempty"`
	// Stdout and Stderr are what the slot's previous Python worker wrote last.
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
}

// podNext is the body of a next. Bye is the last call of a worker told to exit: it
// carries the output its Python process wrote until it ended.
type podNext struct {
	Run    string     `json:"run,omitempty"`
	Worker int        `json:"worker"`
	Answer *podAnswer `json:"answer,omitempty"`
	Bye    bool       `json:"bye,omitempty"`
}

// podAnswer is what run() did with a mini-batch in a pod, and the output its worker
// wrote since the last answer. MiniBatch < 0 carries output only.
type podAnswer struct {
	MiniBatch int    `json:"mini_batch"`
	Rows      []byte `json:"rows,omitempty"`
	Items     int    `json:"items,omitempty"`
	Failed    bool   `json:"failed,omitempty"`
	Message   string `json:"message,omitempty"`
	Traceback string `json:"traceback,omitempty"`
	// Timeout: run() outlasted the mini-batch timeout and the worker was killed. Lost:
	// the worker died, in these words.
	Timeout bool   `json:"timeout,omitempty"`
	Lost    string `json:"lost,omitempty"`
	Stdout  string `json:"stdout,omitempty"`
	Stderr  string `json:"stderr,omitempty"`
}

// maxPodBody bounds what a worker may post: a mini-batch's rows and output.
const maxPodBody = 256 << 20

// SlotKey names the slot of a pod's node (its completion index) and process.
func SlotKey(node, process int) string { return fmt.Sprintf("node%d/process%03d", node, process) }

// ServeWorker answers one request of a pod's worker of slot (node, process): verb is
// VerbJoin or VerbNext.
func (r *Remote) ServeWorker(w http.ResponseWriter, req *http.Request, node, process int, verb string) {
	key := SlotKey(node, process)
	body := http.MaxBytesReader(w, req.Body, maxPodBody)
	switch verb {
	case VerbJoin:
		var j podJoin
		if err := json.NewDecoder(body).Decode(&j); err != nil {
			http.Error(w, "bad join: "+err.Error(), http.StatusBadRequest)
			return
		}
		if j.Run != r.run {
			http.Error(w, "this pod was started for another run of the job: it exits", http.StatusGone)
			return
		}
		r.output(key, j.Stdout, j.Stderr)
		var initErr error
		if j.Error != "" {
			initErr = initFailure(j.Error, j.Traceback)
		}
		id, err := r.join(key, j.PID, initErr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusGone)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int{"worker": id})
	case VerbNext:
		var n podNext
		if err := json.NewDecoder(body).Decode(&n); err != nil {
			http.Error(w, "bad next: "+err.Error(), http.StatusBadRequest)
			return
		}
		if n.Run != r.run {
			http.Error(w, "this pod was started for another run of the job: it exits", http.StatusGone)
			return
		}
		r.next(w, req, key, n)
	default:
		http.Error(w, "unknown verb "+verb, http.StatusNotFound)
	}
}

// next records a worker's answer and hands it its next mini-batch.
func (r *Remote) next(w http.ResponseWriter, req *http.Request, key string, n podNext) {
	if n.Answer != nil {
		r.output(key, n.Answer.Stdout, n.Answer.Stderr)
	}
	rw := r.worker(n.Worker)
	if n.Bye {
		if rw != nil {
			rw.byeOnce.Do(func() { close(rw.bye) })
			r.forget(rw.id)
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if rw == nil {
		http.Error(w, "unknown worker: join again", http.StatusConflict)
		return
	}
	if n.Answer != nil {
		rw.deliver(n.Answer)
	}
	select { // a worker let go takes nothing more, even with tasks left
	case <-rw.gone:
		r.letGo(w, rw)
		return
	default:
	}
	if t := rw.unanswered(); t != nil { // handed out, but the pod did not get it
		r.send(w, *t)
		return
	}
	r.mu.Lock()
	poll := r.Poll
	r.mu.Unlock()
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case task := <-rw.tasks:
		rw.hand(task)
		r.send(w, task)
	case <-rw.gone:
		r.letGo(w, rw)
	case <-t.C:
		w.WriteHeader(http.StatusAccepted)
	case <-req.Context().Done():
	}
}

// letGo answers a worker its slot let go: 204 (exit, after a last call with its
// output) when the job needs it no more, 409 (start a new Python worker and join
// again) after a timeout, a crash or a newer worker of the slot.
func (r *Remote) letGo(w http.ResponseWriter, rw *remoteWorker) {
	if rw.why == goneStopped {
		w.WriteHeader(http.StatusNoContent) // the worker says bye, then it is forgotten
		return
	}
	r.forget(rw.id)
	http.Error(w, "this worker was let go (a timeout, a crash, or a newer worker of the slot): start a new one and join again", http.StatusConflict)
}

// send writes a mini-batch's files as a tar, each named by its path below the input's
// folder. A file that cannot be read is sent empty: run() then fails on it, as it
// would on this machine.
func (r *Remote) send(w http.ResponseWriter, task remoteTask) {
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set(MiniBatchHeader, strconv.Itoa(task.mb))
	tw := tar.NewWriter(w)
	for _, f := range task.files {
		name, err := filepath.Rel(r.root, f)
		if err != nil || name == "." || filepath.IsAbs(name) {
			name = filepath.Base(f)
		}
		if err := sendFile(tw, filepath.ToSlash(name), f); err != nil {
			return // the connection broke: the worker is let go when it joins again
		}
	}
	tw.Close()
}

func sendFile(tw *tar.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg})
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, st.Size())
	return err
}
