package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/inference"
)

// worker is what a slot runs mini-batches on: a Python process of this machine
// (*inference.BatchWorker) or a worker in another process that pulls them over HTTP
// (*remoteWorker).
type worker interface {
	Pid() int
	Send(mb int, files []string) error
	Recv(ctx context.Context) (inference.BatchAnswer, error)
	Stop(grace time.Duration)
}

// Remote runs a job's mini-batches in workers of other processes — the pods of a
// Kubernetes Indexed Job running `berth batch-worker` — which join a slot
// (<node>/<process>) and pull its mini-batches over HTTP (ServeHTTP). Everything else
// stays with Run on this server: the queue, retries, timeouts, the error threshold and
// the journal, so a job resumes after a restart exactly as a local one does.
//
// A Remote serves one Run; a resumed job gets a new one.
type Remote struct {
	// JoinTimeout bounds the wait for a slot's worker to join (its pod scheduled, its
	// image pulled, init() run); 0 is 10 minutes.
	JoinTimeout time.Duration
	// Grace is added to the mini-batch timeout when waiting for an answer, for the
	// network; the worker itself enforces the timeout. 0 is 30 seconds.
	Grace time.Duration
	// Poll is how long a worker's request for a mini-batch waits before it is told to
	// ask again; 0 is 20 seconds.
	Poll time.Duration

	run     string // this run's id: workers of another run (an old pod) are refused
	mu      sync.Mutex
	slots   map[string]*remoteSlot
	workers map[int]*remoteWorker
	nextID  int
	ended   bool
	root    string // the input's folder: files are sent by their path below it
}

// NewRemote returns a Remote with no worker joined, for the run whose workers say run
// (the pods started for it are given the same id).
func NewRemote(run string) *Remote {
	return &Remote{run: run, slots: map[string]*remoteSlot{}, workers: map[int]*remoteWorker{}}
}

// remoteSlot is one <node>/<process> slot as workers see it.
type remoteSlot struct {
	joins  chan remoteJoin // a worker that joined and the slot has not taken yet
	closed bool            // the slot gave up: later joins are refused
	// stdout and stderr are the slot's files once it has taken a worker; what its
	// workers wrote before waits in pending.
	stdout, stderr io.Writer
	pending        [2]string
}

// remoteJoin is a worker that joined, or the init() failure it reports.
type remoteJoin struct {
	w   *remoteWorker
	err error
}

// Why a remote worker's slot let it go.
const (
	goneStopped  = 1 // no more mini-batches for it: it exits
	goneReplaced = 2 // timed out, failed or replaced: it starts a new Python worker and joins again
)

// remoteWorker is a worker of another process as its slot sees it.
type remoteWorker struct {
	id, pid int
	key     string            // its slot
	tasks   chan remoteTask   // sent and not yet fetched
	answers chan remoteAnswer // answered and not yet received
	gone    chan struct{}
	once    sync.Once
	why     int
	bye     chan struct{} // closed when the worker, told to exit, sent its last output
	byeOnce sync.Once

	mu      sync.Mutex
	current *remoteTask // handed to the pod and not answered yet
}

// remoteTask is a mini-batch sent to a remote worker.
type remoteTask struct {
	mb    int
	files []string
}

// remoteAnswer is a remote worker's answer to its oldest mini-batch.
type remoteAnswer struct {
	ans inference.BatchAnswer
	err error
}

// errWorkerLost is the error of a mini-batch whose remote worker went away (its pod
// was deleted, or it started again) before it answered.
var errWorkerLost = errors.New("the worker's pod went away before it answered")

func (r *Remote) defaults() {
	if r.JoinTimeout <= 0 {
		r.JoinTimeout = 10 * time.Minute
	}
	if r.Grace <= 0 {
		r.Grace = 30 * time.Second
	}
	if r.Poll <= 0 {
		r.Poll = 20 * time.Second
	}
}

// slot returns the slot named key, creating it; r.mu is held.
func (r *Remote) slot(key string) *remoteSlot {
	sl := r.slots[key]
	if sl == nil {
		sl = &remoteSlot{joins: make(chan remoteJoin, 1)}
		r.slots[key] = sl
	}
	return sl
}

// start sets the folder input files are sent relative to.
func (r *Remote) start(root string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.defaults()
	r.root = root
}

// end refuses later joins and lets every worker go: their next request for a
// mini-batch tells them to exit.
func (r *Remote) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = true
	for _, w := range r.workers {
		w.drop(goneStopped)
	}
}

// take waits for a worker to join slot key: the worker, or the *inference.
// BatchWorkerError of an init() that failed in it. Its output goes to stdout and stderr.
func (r *Remote) take(ctx context.Context, key string, stdout, stderr io.Writer) (worker, error) {
	r.mu.Lock()
	sl := r.slot(key)
	if sl.stdout == nil {
		sl.stdout, sl.stderr = stdout, stderr
		io.WriteString(stdout, sl.pending[0])
		io.WriteString(stderr, sl.pending[1])
		sl.pending = [2]string{}
	}
	r.mu.Unlock()
	select {
	case j := <-sl.joins:
		if j.err != nil {
			return nil, j.err
		}
		return j.w, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// giveUp closes slot key: no worker may join it any more.
func (r *Remote) giveUp(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slot(key).closed = true
}

// join registers a worker of slot key whose Python process pid ran init(), or reports
// the init() failure initErr. A worker the slot has not taken yet is replaced. It
// returns the worker's id, or an error when the slot takes no more workers.
func (r *Remote) join(key string, pid int, initErr error) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sl := r.slot(key)
	if r.ended || sl.closed {
		return 0, errSlotClosed
	}
	j := remoteJoin{err: initErr}
	if initErr == nil {
		r.nextID++
		j.w = &remoteWorker{id: r.nextID, pid: pid, key: key, tasks: make(chan remoteTask, pipelineDepth),
			answers: make(chan remoteAnswer, pipelineDepth), gone: make(chan struct{}), bye: make(chan struct{})}
		r.workers[j.w.id] = j.w
	}
	// A worker of the same slot that joined before is from a process that started
	// again: let it go.
	for _, w := range r.workers {
		if w != j.w && w.key == key {
			w.drop(goneReplaced)
		}
	}
	select {
	case old := <-sl.joins:
		if old.w != nil {
			old.w.drop(goneReplaced)
		}
	default:
	}
	sl.joins <- j
	return j.w.idOrZero(), nil
}

// errSlotClosed refuses a worker whose slot gave up, or whose job ended.
var errSlotClosed = errors.New("the job takes no more workers in this slot")

// worker returns the worker with id, or nil.
func (r *Remote) worker(id int) *remoteWorker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.workers[id]
}

// forget removes a worker that was told it is gone.
func (r *Remote) forget(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.workers, id)
}

func (w *remoteWorker) idOrZero() int {
	if w == nil {
		return 0
	}
	return w.id
}

// drop lets the worker go for the reason why; the first reason stands.
func (w *remoteWorker) drop(why int) {
	w.once.Do(func() {
		w.why = why
		close(w.gone)
		for { // what the pod has not taken is not handed out any more
			select {
			case <-w.tasks:
				continue
			default:
			}
			return
		}
	})
}

// Pid is the worker's Python process id in its pod.
func (w *remoteWorker) Pid() int { return w.pid }

// Send queues a mini-batch for the worker's next request.
func (w *remoteWorker) Send(mb int, files []string) error {
	select {
	case <-w.gone:
		return errWorkerLost
	default:
	}
	select {
	case w.tasks <- remoteTask{mb: mb, files: files}:
		return nil
	default:
		return fmt.Errorf("remote worker %d: more than %d mini-batches sent", w.id, pipelineDepth)
	}
}

// Recv waits for the answer to the oldest mini-batch sent. When ctx ends first, or the
// worker reports a timeout or a crash, the worker is let go: it starts a new Python
// process and joins again.
func (w *remoteWorker) Recv(ctx context.Context) (inference.BatchAnswer, error) {
	select {
	case a := <-w.answers:
		if a.err != nil {
			w.drop(goneReplaced)
		}
		return a.ans, a.err
	case <-w.gone:
		return inference.BatchAnswer{}, errWorkerLost
	case <-ctx.Done():
		w.drop(goneReplaced)
		return inference.BatchAnswer{}, ctx.Err()
	}
}

// Stop lets the worker go: it has no more mini-batches. It waits up to grace for the
// worker's last output.
func (w *remoteWorker) Stop(grace time.Duration) {
	w.drop(goneStopped)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-w.bye:
	case <-t.C:
	}
}

// output writes what slot key's workers wrote to its files, or keeps it until the slot
// has them.
func (r *Remote) output(key, stdout, stderr string) {
	if stdout == "" && stderr == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sl := r.slot(key)
	if sl.stdout == nil {
		sl.pending[0] += stdout
		sl.pending[1] += stderr
		return
	}
	io.WriteString(sl.stdout, stdout)
	io.WriteString(sl.stderr, stderr)
}

// hand records the task given to the pod; a request that does not answer it gets it
// again (the pod never received it).
func (w *remoteWorker) hand(t remoteTask) {
	w.mu.Lock()
	w.current = &t
	w.mu.Unlock()
}

// unanswered is the task handed to the pod and not answered, or nil.
func (w *remoteWorker) unanswered() *remoteTask {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

// deliver hands an answer to the slot: only the answer to the task the pod holds
// counts, so a request sent twice (a retry after a broken connection) does not answer
// a mini-batch twice, nor another one.
func (w *remoteWorker) deliver(a *podAnswer) {
	w.mu.Lock()
	cur := w.current
	if cur == nil || cur.mb != a.MiniBatch {
		w.mu.Unlock()
		return // a duplicate, or output only
	}
	w.current = nil
	w.mu.Unlock()
	ra := remoteAnswer{ans: inference.BatchAnswer{Rows: a.Rows, Items: a.Items, Failed: a.Failed,
		Message: a.Message, Traceback: a.Traceback}}
	switch {
	case a.Timeout:
		ra.err = context.DeadlineExceeded
	case a.Lost != "":
		ra.err = errors.New(a.Lost)
	}
	select {
	case w.answers <- ra:
	case <-w.gone:
	}
}

// initFailure is the error a slot logs for a worker whose init() failed in its pod.
func initFailure(message, traceback string) error {
	return &inference.BatchWorkerError{Err: &diag.Error{Code: diag.UserError, Message: message}, Traceback: traceback}
}
