package batch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/inference"
	"github.com/berthml/berth/internal/inference/python"
	"github.com/berthml/berth/internal/instance"
)

// runner is one Run of a job: its mini-batches, the queue its workers pull from, and
// the counts.
type runner struct {
	j     Job
	logs  *logBook
	mbs   [][]string
	jr    *journal
	entry string   // the entry script's path
	env   []string // what the workers get besides the server's environment
	stop  context.CancelFunc

	mu      sync.Mutex
	queue   []int         // mini-batches not yet taken, in order
	tries   map[int]int   // failed attempts per mini-batch
	done    map[int]entry // journaled mini-batches
	prog    Progress
	lastErr string      // the last error of a mini-batch that failed for good
	initErr string      // the last init() failure, in the script's words
	failure *diag.Error // set when the error threshold is exceeded
	ioErr   error       // the journal could not be written: the run stops

	lastOverview time.Time // when job_progress_overview last got a line

	exiting   sync.WaitGroup      // workers asked to exit and not yet gone
	endForked func(time.Duration) // waits for the process that forked the first workers
}

// prepare reads or writes the manifest, opens the journal and fills the queue. A
// *diag.Error fails the job (bad input, an existing output file).
func (r *runner) prepare() (*diag.Error, error) {
	j := r.j
	path := filepath.Join(j.Dir, "manifest")
	m, resumed, err := readManifest(path)
	if err != nil {
		return nil, err
	}
	if !resumed {
		if de := checkOutput(j); de != nil {
			return de, nil
		}
		files, err := listInput(j.Input, j.InputType, j.Worker.EntryScript == instance.BuiltinMLflow)
		if err != nil {
			if de := diag.As(err); de != nil {
				return de, nil
			}
			return nil, err
		}
		m = manifest{Input: j.Input, Files: files}
		if err := writeManifest(path, m); err != nil {
			return nil, err
		}
	}
	r.mbs = miniBatches(m.paths(j.Input), j.Settings.MiniBatchSize)
	if r.jr, r.done, err = openJournal(j.Dir, len(r.mbs)); err != nil {
		return nil, err
	}
	r.prog.MiniBatches, r.prog.Files = len(r.mbs), len(m.Files)
	for mb := range r.mbs {
		if e, ok := r.done[mb]; ok {
			r.count(e)
		} else {
			r.queue = append(r.queue, mb)
		}
	}
	r.prog.FilesAtStart = r.prog.FilesSucceeded + r.prog.FilesFailed
	r.checkThreshold()
	if resumed {
		r.logs.driverf("Job %s resumed: %d of %d mini-batches already done", j.Name, len(r.done), len(r.mbs))
	} else {
		r.logs.driverf("Job %s started: %d files from %s in %d mini-batches of up to %d files", j.Name, len(m.Files), j.Input, len(r.mbs), j.Settings.MiniBatchSize)
		r.logs.overview("%d mini-batches created from %d files", len(r.mbs), len(m.Files))
	}
	return nil, nil
}

// workerSetup returns the entry script the workers run and the variables they get.
func workerSetup(j Job) (string, []string, error) {
	env := append([]string(nil), j.Worker.Env...)
	if j.Worker.ModelDir != "" {
		env = append(env, "AZUREML_MODEL_DIR="+j.Worker.ModelDir)
	}
	if j.Settings.OutputAction == SummaryOnly {
		if err := os.MkdirAll(j.OutputDir, 0o755); err != nil {
			return "", nil, err
		}
		env = append(env, "AZUREML_BI_OUTPUT_PATH="+j.OutputDir)
	}
	entryScript := j.Worker.EntryScript
	if entryScript == instance.BuiltinMLflow {
		src := python.MLflowBatch
		entryScript = filepath.Join(j.Dir, "builtin", "mlflow_batch.py")
		if err := os.MkdirAll(filepath.Dir(entryScript), 0o755); err != nil {
			return "", nil, err
		}
		if err := os.WriteFile(entryScript, []byte(src), 0o644); err != nil {
			return "", nil, err
		}
		env = append(env, "BERTH_MLMODEL="+j.Worker.MLmodel)
		if !hasVar(env, "BERTH_MLFLOW_MODEL_DIR") {
			// The stager names the model's own folder; a bare Worker gets its model dir.
			env = append(env, "BERTH_MLFLOW_MODEL_DIR="+j.Worker.ModelDir)
		}
	}
	return entryScript, env, nil
}

// hasVar reports whether env (KEY=VALUE) sets name.
func hasVar(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// startSlots starts Nodes × MaxConcurrencyPerInstance slots: each starts its worker at
// once, then waits for ready before it takes mini-batches from the queue. It returns a
// function that waits for the slots to end.
//
// The first workers come from one Python process that forks the others
// (inference.StartBatchWorkers); a slot whose worker fails to start or dies later starts
// a new one on its own.
func (r *runner) startSlots(ctx context.Context, ready <-chan struct{}) (wait func()) {
	var slots []*slot
	var stdio []inference.BatchStdio
	for p := 0; p < r.j.Settings.MaxConcurrencyPerInstance; p++ {
		for n := 0; n < r.j.Nodes; n++ {
			s := &slot{node: fmt.Sprintf("node%d", n), proc: fmt.Sprintf("process%03d", p)}
			if err := s.open(r.j.Dir); err != nil {
				r.abort(err)
				continue
			}
			slots = append(slots, s)
			stdio = append(stdio, inference.BatchStdio{Stdout: s.stdout, Stderr: s.stderr})
		}
	}
	if len(slots) > 0 && r.j.Remote == nil {
		if waits, end, err := inference.StartBatchWorkers(ctx, r.workerConfig(slots[0]), stdio); err == nil {
			for i, s := range slots {
				s.first = waits[i]
			}
			r.endForked = end
		}
	}
	var wg sync.WaitGroup
	for _, s := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx, s, ready)
		}()
	}
	return wg.Wait
}

// next takes the first mini-batch of the queue.
func (r *runner) next() (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) == 0 || r.failure != nil || r.ioErr != nil {
		return 0, false
	}
	mb := r.queue[0]
	r.queue = r.queue[1:]
	return mb, true
}

// attempts is how many times mini-batch mb has run and failed.
func (r *runner) attempts(mb int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tries[mb]
}

// retry puts a mini-batch whose attempt failed back at the head of the queue.
func (r *runner) retry(mb int) {
	r.mu.Lock()
	r.tries[mb]++
	r.mu.Unlock()
	r.requeue(mb)
}

// requeue gives back a mini-batch a slot could not run.
func (r *runner) requeue(mb int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append([]int{mb}, r.queue...)
}

// abort stops the run because of a local failure (a file that cannot be written).
func (r *runner) abort(err error) {
	r.mu.Lock()
	if r.ioErr == nil {
		r.ioErr = err
	}
	r.mu.Unlock()
	r.stop()
}

// finish hands a mini-batch that ended to the journal; it counts once it is durable.
// The slot goes on to its next mini-batch meanwhile, except after a failure: that one
// may cross the error threshold, so the slot waits to see whether the run stops.
func (r *runner) finish(mb int, out outcome) {
	e := entry{MB: mb, OK: out.err == "", Files: len(r.mbs[mb]), Items: out.ans.Items, Err: out.err}
	if e.OK {
		r.jr.add(e, out.ans.Rows, func(err error) { r.durable(e, err) })
		return
	}
	e.Items = 0
	counted := make(chan struct{})
	r.jr.add(e, nil, func(err error) { r.durable(e, err); close(counted) })
	<-counted
}

// overviewEvery is how often job_progress_overview gets a line while a job runs.
const overviewEvery = time.Second

// durable counts a journaled mini-batch, logs it, and stops the run when the error
// threshold is exceeded or the journal could not be written. The journal calls it one
// mini-batch at a time.
func (r *runner) durable(e entry, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.ioErr == nil {
			r.ioErr = err
		}
		r.stop()
		return
	}
	r.done[e.MB] = e
	r.count(e)
	if !e.OK {
		r.logs.driverf("Mini-batch %d failed: %s (%d of %d done, %d failed)", e.MB, e.Err, len(r.done), len(r.mbs), r.prog.Failed)
	}
	if now := time.Now(); now.Sub(r.lastOverview) >= overviewEvery || len(r.done) == len(r.mbs) {
		r.lastOverview = now
		r.logs.overview("%d of %d mini-batches processed, %d failed; %d of %d files succeeded, %d failed",
			len(r.done), len(r.mbs), r.prog.Failed, r.prog.FilesSucceeded, r.prog.Files, r.prog.FilesFailed)
	}
	if r.checkThreshold() {
		r.stop()
	}
	if r.j.Progress != nil {
		r.j.Progress(r.prog)
	}
}

// count adds a journaled mini-batch to the progress; r.mu is held or not yet shared.
func (r *runner) count(e entry) {
	if e.OK {
		r.prog.Succeeded++
		r.prog.FilesSucceeded += e.Files
		return
	}
	r.prog.Failed++
	r.prog.FilesFailed += e.Files
	r.lastErr = e.Err
}

// checkThreshold sets the failure when more files failed than the error threshold
// allows, and reports whether it did now.
func (r *runner) checkThreshold() bool {
	t := r.j.Settings.ErrorThreshold
	if r.failure != nil || t < 0 || r.prog.FilesFailed <= t {
		return false
	}
	r.failure = runFailed(
		fmt.Sprintf("%d files failed, more than the error_threshold of %d allows", r.prog.FilesFailed, t),
		r.lastErr)
	return true
}

// runFailed is Azure's error of a job whose script failed, with details.
func runFailed(details ...string) *diag.Error {
	de := &diag.Error{Code: diag.UserError, Message: diag.BatchRunFailed}
	for _, d := range details {
		if d != "" {
			de.Details = append(de.Details, &diag.Error{Code: diag.UserError, Message: d})
		}
	}
	return de
}

// conclude decides how a run that was not stopped ended, and writes the output.
func (r *runner) conclude() (Result, error) {
	switch {
	case r.failure != nil:
		return r.fail(r.failure), nil
	case len(r.done) < len(r.mbs):
		return r.fail(runFailed("no worker could run init(): "+r.initErr, r.lastErr)), nil
	case r.prog.Succeeded == 0:
		return r.fail(runFailed("every mini-batch failed", r.lastErr)), nil
	}
	if r.j.Settings.OutputAction == AppendRow {
		if r.j.Progress != nil {
			p := r.prog
			p.Finalizing = true
			r.j.Progress(p)
		}
		if err := finalize(r.j, r.jr, r.done, len(r.mbs)); err != nil {
			if de := diag.As(err); de != nil {
				return r.fail(de), nil
			}
			return Result{Progress: r.prog}, fmt.Errorf("batch job %s: %w", r.j.Name, err)
		}
	}
	summary := fmt.Sprintf("%d mini-batches, %d failed; %d files, %d failed", len(r.mbs), r.prog.Failed, r.prog.Files, r.prog.FilesFailed)
	r.logs.result(StatusCompleted + ": " + summary)
	r.logs.overview("Result: %s (%s)", StatusCompleted, summary)
	r.logs.driverf("Job %s %s in %s: %s", r.j.Name, StatusCompleted, r.elapsed(), summary)
	return Result{Status: StatusCompleted, Progress: r.prog}, nil
}

// fail ends the job Failed with de, in the logs too.
func (r *runner) fail(de *diag.Error) Result {
	r.logs.result(StatusFailed + ": " + de.Error())
	r.logs.overview("Result: %s: %s", StatusFailed, de.Error())
	r.logs.driverf("Job %s %s: %s", r.j.Name, StatusFailed, de.Error())
	return Result{Status: StatusFailed, Error: de, Progress: r.prog}
}

// elapsed is how long this Run has been going, for the logs.
func (r *runner) elapsed() time.Duration { return time.Since(r.prog.Started).Round(time.Millisecond) }
