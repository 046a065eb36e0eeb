package batch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/inference"
)

// initTries is how many times a worker is started before its slot gives up: Azure stops
// a node's workers after 3 × processes_per_node failed init() calls.
const initTries = 3

// slot is one worker position, <node>/process<NNN>: its log files, and its Python
// worker while one runs (a worker killed after a timeout is replaced in the same slot).
type slot struct {
	node, proc     string
	stdout, stderr *os.File
	w              *inference.BatchWorker
}

// open opens the slot's stdout and stderr files for appending.
func (s *slot) open(dir string) error {
	var err error
	if s.stdout, err = openAppend(filepath.Join(dir, "logs", "user", "stdout", s.node, s.proc+".stdout.txt")); err != nil {
		return err
	}
	if s.stderr, err = openAppend(filepath.Join(dir, "logs", "user", "stderr", s.node, s.proc+".stderr.txt")); err != nil {
		s.stdout.Close()
		return err
	}
	return nil
}

// close stops the slot's worker, if any, and closes its files.
func (s *slot) close() {
	if s.w != nil {
		s.w.Stop(2 * time.Second)
		s.w = nil
	}
	s.stdout.Close()
	s.stderr.Close()
}

func openAppend(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

// outcome is how one run() attempt ended: err is "" on success.
type outcome struct {
	ans inference.BatchAnswer
	err string
}

// work runs mini-batches from the queue in slot s until the queue is empty, ctx ends,
// or no worker can start in s (its mini-batch then goes back to the queue).
func (r *runner) work(ctx context.Context, s *slot) {
	if err := s.open(r.j.Dir); err != nil {
		r.abort(err)
		return
	}
	defer s.close()
	for ctx.Err() == nil {
		mb, ok := r.next()
		if !ok {
			return
		}
		if !r.runMiniBatch(ctx, s, mb) {
			r.requeue(mb)
			return
		}
	}
}

// runMiniBatch runs mini-batch mb with up to MaxRetries retries and records how it
// ended; it returns false when no worker could start.
func (r *runner) runMiniBatch(ctx context.Context, s *slot, mb int) bool {
	var last outcome
	for attempt := 0; attempt <= r.j.Settings.MaxRetries; attempt++ {
		if s.w == nil && !r.startWorker(ctx, s) {
			return ctx.Err() != nil
		}
		last = r.attempt(ctx, s, mb, attempt)
		if ctx.Err() != nil {
			return true // stopping: nothing is recorded, a resumed job runs it again
		}
		if last.err == "" {
			break
		}
	}
	r.finish(mb, last)
	return true
}

// startWorker starts a worker in s, trying initTries times; init() failures are logged
// with their traceback.
func (r *runner) startWorker(ctx context.Context, s *slot) bool {
	limit := r.initTimeout()
	for try := 1; try <= initTries; try++ {
		sctx, cancel := context.WithTimeout(ctx, limit)
		w, err := inference.StartBatchWorker(sctx, r.workerConfig(s))
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
		r.mu.Lock()
		r.initErr = msg
		r.mu.Unlock()
	}
	r.logs.sys(s, "gave up after %d failed starts", initTries)
	return false
}

// initTimeout bounds one worker start: Azure fails a worker stuck in init() for more
// than 3 × timeout + 30 s.
func (r *runner) initTimeout() time.Duration { return 3*r.j.Settings.Timeout + 30*time.Second }

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
	}
}

// attempt calls run() once for mini-batch mb in s's worker, within the timeout.
func (r *runner) attempt(ctx context.Context, s *slot, mb, attempt int) outcome {
	files := r.mbs[mb]
	pid := s.w.Pid()
	tries := r.j.Settings.MaxRetries + 1
	r.logs.master("mini-batch %d (%d files, from %s) scheduled to %s/%s (pid %d), attempt %d of %d",
		mb, len(files), filepath.Base(files[0]), s.node, s.proc, pid, attempt+1, tries)
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, r.j.Settings.Timeout)
	ans, err := s.w.Run(tctx, mb, files)
	cancel()
	took := time.Since(start)
	if err != nil {
		s.w = nil // Run killed it, or it died
	}
	if ctx.Err() != nil {
		return outcome{err: ctx.Err().Error()}
	}
	out := outcome{ans: ans}
	what := fmt.Sprintf("run() of mini-batch %d (attempt %d of %d)", mb, attempt+1, tries)
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
	ok, failed := 0, len(files)
	if out.err == "" {
		ok, failed = ans.Items, max(0, len(files)-ans.Items)
	}
	r.logs.sys(s, "mini-batch %d attempt %d: pid %d, items total %d, succeeded %d, failed %d, start %s, duration %.3f s",
		mb, attempt+1, pid, len(files), ok, failed, stamp(start), took.Seconds())
	return out
}
