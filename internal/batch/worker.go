package batch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/inference"
	"github.com/berthml/berth/internal/logs"
)

// initTries is how many times a worker is started before its slot gives up: Azure stops
// a node's workers after 3 × processes_per_node failed init() calls.
const initTries = 3

// slot is one worker position, <node>/process<NNN>: its log files, and its Python
// worker while one runs (a worker killed after a timeout is replaced in the same slot).
type slot struct {
	node, proc     string
	stdout, stderr *os.File
	w              worker
	pipe           []int // mini-batches sent to w and not yet answered, oldest first
	// first waits for the slot's first worker, forked with the others; nil once used.
	first func(context.Context) (*inference.BatchWorker, error)
}

// open opens the slot's stdout and stderr files for appending.
func (s *slot) open(dir string) error {
	var err error
	if s.stdout, err = logs.OpenAppend(filepath.Join(dir, "logs", "user", "stdout", s.node, s.proc+".stdout.txt")); err != nil {
		return err
	}
	if s.stderr, err = logs.OpenAppend(filepath.Join(dir, "logs", "user", "stderr", s.node, s.proc+".stderr.txt")); err != nil {
		s.stdout.Close()
		return err
	}
	return nil
}

// close stops the slot's worker, if any, and closes its files.
// The worker is asked to exit (its input closed) and reaped in the background, counted
// in exiting, so the job's output is written while Python shuts down.
func (s *slot) close(exiting *sync.WaitGroup) {
	w, stdout, stderr := s.w, s.stdout, s.stderr
	s.w = nil
	exiting.Add(1)
	go func() {
		defer exiting.Done()
		if w != nil {
			w.Stop(2 * time.Second)
		}
		stdout.Close()
		stderr.Close()
	}()
}

// outcome is how one run() attempt ended: err is "" on success.
type outcome struct {
	ans        inference.BatchAnswer
	err        string
	ok, failed int // items that succeeded and failed, for the logs
}

// pipelineDepth is how many mini-batches may be in a worker's pipe: the one run() is
// running and the next, so the worker goes from one to the next without waiting for Go.
const pipelineDepth = 2

// work starts slot s's worker, waits for ready (the queue is filled), and runs
// mini-batches from the queue until it is empty, ctx ends, or no worker can start in s.
func (r *runner) work(ctx context.Context, s *slot, ready <-chan struct{}) {
	defer s.close(&r.exiting)
	if !r.startWorker(ctx, s) {
		return
	}
	select {
	case <-ready:
	case <-ctx.Done():
		return
	}
	lostIdle := 0 // workers that died idle in a row, before taking a mini-batch
	for ctx.Err() == nil {
		if s.w == nil && !r.startWorker(ctx, s) {
			return
		}
		r.fill(s)
		if len(s.pipe) == 0 {
			if s.w != nil {
				return // the queue is empty
			}
			// The worker died between mini-batches (Send failed): start another, a few
			// times at most, as for a worker that fails to start.
			if lostIdle++; lostIdle >= initTries {
				r.noteInitErr(fmt.Sprintf("%s/%s: %d workers in a row exited before they took a mini-batch", s.node, s.proc, lostIdle))
				return
			}
			continue
		}
		lostIdle = 0
		r.receive(ctx, s)
	}
}

// fill sends mini-batches from the queue to s's worker until its pipe is pipelineDepth
// deep. A large request waits until the worker is idle, so Send never blocks.
func (r *runner) fill(s *slot) {
	for len(s.pipe) < pipelineDepth {
		mb, ok := r.next()
		if !ok {
			return
		}
		files := r.mbs[mb]
		if len(s.pipe) > 0 && inference.RequestSize(files) > inference.MaxPipelined {
			r.requeue(mb)
			return
		}
		r.logs.master("mini-batch %d (%d files, from %s) scheduled to %s/%s (pid %d), attempt %d of %d",
			mb, len(files), filepath.Base(files[0]), s.node, s.proc, s.w.Pid(), r.attempts(mb)+1, r.j.Settings.MaxRetries+1)
		if err := s.w.Send(mb, files); err != nil {
			r.requeue(mb)
			r.lost(s)
			return
		}
		s.pipe = append(s.pipe, mb)
	}
}

// lost gives back the mini-batches in the pipe of a worker that is gone: they never
// reached run(), so they cost no attempt.
func (r *runner) lost(s *slot) {
	for i := len(s.pipe) - 1; i >= 0; i-- {
		r.requeue(s.pipe[i])
	}
	s.pipe, s.w = nil, nil
}

// receive waits for the answer to the oldest mini-batch in s's pipe, within the
// timeout, and records it: a failed attempt goes back to the queue while retries are
// left, anything else is finished.
func (r *runner) receive(ctx context.Context, s *slot) {
	mb := s.pipe[0]
	s.pipe = s.pipe[1:]
	pid, attempt := s.w.Pid(), r.attempts(mb)
	start := time.Now()
	limit := r.j.Settings.Timeout
	if r.j.Remote != nil {
		limit += r.j.Remote.Grace // the pod enforces the timeout; this is for the network
	}
	tctx, cancel := context.WithTimeout(ctx, limit)
	ans, err := s.w.Recv(tctx)
	cancel()
	if err != nil {
		r.lost(s) // Recv killed the worker, or it died
	}
	if ctx.Err() != nil && err != nil {
		return // stopping mid-run: nothing is recorded, a resumed job runs it again
	}
	if errors.Is(err, errWorkerLost) {
		// The pod went away (deleted, restarted): run() may never have seen the
		// mini-batch, so it goes back to the queue without costing an attempt. A pod
		// that keeps dying fails the job through the cluster's own limits.
		r.requeue(mb)
		r.logs.sys(s, "mini-batch %d: %v; it goes back to the queue", mb, err)
		return
	}
	out := r.judge(s, mb, attempt, pid, ans, err)
	r.logs.sys(s, "mini-batch %d attempt %d: pid %d, items total %d, succeeded %d, failed %d, start %s, duration %.3f s",
		mb, attempt+1, pid, len(r.mbs[mb]), out.ok, out.failed, stamp(start), time.Since(start).Seconds())
	if out.err != "" && attempt < r.j.Settings.MaxRetries {
		r.retry(mb)
		return
	}
	r.finish(mb, out)
}

// judge says how one run() attempt ended, and logs a failure where Azure does.
func (r *runner) judge(s *slot, mb, attempt, pid int, ans inference.BatchAnswer, err error) outcome {
	files := r.mbs[mb]
	out := outcome{ans: ans}
	what := fmt.Sprintf("run() of mini-batch %d (attempt %d of %d)", mb, attempt+1, r.j.Settings.MaxRetries+1)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		t := strconv.FormatFloat(r.j.Settings.Timeout.Seconds(), 'f', -1, 64)
		out.err = fmt.Sprintf("No progress update in %s seconds. No progress update in this check. Wait %s seconds since last update.", t, t)
		r.logs.sys(s, "mini-batch %d: %s The worker (pid %d) is killed and a new one started.", mb, out.err, pid)
		r.logs.driverf("%s/%s: mini-batch %d: %s", s.node, s.proc, mb, out.err)
		r.logs.line("user/error.txt", "%s/%s: %s: %s", s.node, s.proc, what, out.err)
	case err != nil:
		out.err = err.Error()
		r.logs.userError(s, what, out.err, "")
	case ans.Failed:
		out.err = ans.Message
		r.logs.userError(s, what+" raised", ans.Message, ans.Traceback)
	case ans.Empty():
		out.err = diag.BatchNoSucceededItem
		r.logs.userError(s, what, out.err, "")
	}
	out.ok, out.failed = 0, len(files)
	if out.err == "" {
		out.ok, out.failed = ans.Items, max(0, len(files)-ans.Items)
	}
	return out
}

// startWorker starts a worker in s, trying initTries times; init() failures are logged
// with their traceback.
func (r *runner) startWorker(ctx context.Context, s *slot) bool {
	limit := r.initTimeout()
	for try := 1; try <= initTries; try++ {
		sctx, cancel := context.WithTimeout(ctx, limit)
		w, err := r.startOne(sctx, s)
		cancel()
		if err == nil {
			s.w = w
			r.logs.sys(s, "worker started with pid %d", w.Pid())
			r.logs.driverf("%s/%s: worker started with pid %d", s.node, s.proc, w.Pid())
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		msg, trace := err.Error(), ""
		var be *inference.BatchWorkerError
		switch {
		case errors.As(err, &be):
			msg, trace = be.Err.Message, be.Traceback
		case errors.Is(err, context.DeadlineExceeded):
			msg = fmt.Sprintf("init() did not finish within %s", limit)
		}
		r.logs.userError(s, fmt.Sprintf("init() failed (start %d of %d)", try, initTries), msg, trace)
		r.logs.driverf("%s/%s: the worker could not start (start %d of %d): %s", s.node, s.proc, try, initTries, msg)
		r.noteInitErr(msg)
	}
	r.logs.sys(s, "gave up after %d failed starts", initTries)
	if r.j.Remote != nil {
		r.j.Remote.giveUp(s.node + "/" + s.proc)
	}
	return false
}

// startOne starts a worker in s: the first one forked with the job's others, a new
// Python process, or — for a job whose workers run in pods — the next one that joins.
func (r *runner) startOne(ctx context.Context, s *slot) (worker, error) {
	if r.j.Remote != nil {
		return r.j.Remote.take(ctx, s.node+"/"+s.proc, s.stdout, s.stderr)
	}
	if first := s.first; first != nil {
		s.first = nil
		return first(ctx)
	}
	return inference.StartBatchWorker(ctx, r.workerConfig(s))
}

// initTimeout bounds one worker start: Azure fails a worker stuck in init() for more
// than 3 × timeout + 30 s.
func (r *runner) initTimeout() time.Duration {
	if r.j.Remote != nil {
		return max(r.j.Remote.JoinTimeout, 3*r.j.Settings.Timeout+30*time.Second)
	}
	return 3*r.j.Settings.Timeout + 30*time.Second
}

// workerConfig is how slot s starts a worker.
func (r *runner) workerConfig(s *slot) inference.BatchWorkerConfig {
	return inference.BatchWorkerConfig{
		Python:       r.j.Worker.Python,
		Env:          r.env,
		Dir:          r.j.Worker.CodeDir,
		EntryScript:  r.entry,
		Stdout:       s.stdout,
		Stderr:       s.stderr,
		LoggingLevel: r.j.Settings.LoggingLevel,
		Label:        []string{"--job", r.j.Name},
	}
}

// noteInitErr records why a slot has no worker, for the job's error.
func (r *runner) noteInitErr(msg string) {
	r.mu.Lock()
	r.initErr = msg
	r.mu.Unlock()
}
