//go:build unix

package inference

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/supervise"
)

// StartBatchWorkers starts len(stdio) batch workers as one Python process that imports
// the worker once and forks the others from it, instead of one interpreter start each:
// on a machine whose cores the workers share, the start of a job is an interpreter
// start shorter. Each returned function waits for its worker's ready frame (its init())
// as StartBatchWorker does. A worker that dies later is replaced with StartBatchWorker.
// Call end once every worker has been stopped: it waits up to grace for the forking
// process to reap them and exit, then kills its process group.
func StartBatchWorkers(ctx context.Context, cfg BatchWorkerConfig, stdio []BatchStdio) (waits []func(context.Context) (*BatchWorker, error), end func(grace time.Duration), err error) {
	n := len(stdio)
	var extra, theirs []*os.File
	ins, outs := make([]*os.File, n), make([]*os.File, n)
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	for i := range n {
		inR, inW, err := os.Pipe()
		if err != nil {
			closeAll(theirs)
			closeAll(ins)
			closeAll(outs)
			return nil, nil, err
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			inR.Close()
			inW.Close()
			closeAll(theirs)
			closeAll(ins)
			closeAll(outs)
			return nil, nil, err
		}
		ins[i], outs[i] = inW, outR
		theirs = append(theirs, inR, outW)
		extra = append(extra, inR, outW, stdio[i].Stdout, stdio[i].Stderr)
	}
	zygote, err := supervise.Start(supervise.Command{
		Path:       cfg.Python,
		Args:       workerArgs(cfg.EntryScript, append([]string{"--logging_level", loggingLevel(cfg)}, cfg.Label...)...),
		Env:        append(batchEnv(cfg.Env), "BERTH_BATCH_FORK="+strconv.Itoa(n)),
		Dir:        cfg.Dir,
		Stdout:     stdio[0].Stdout,
		Stderr:     stdio[0].Stderr,
		ExtraFiles: extra,
	})
	closeAll(theirs)
	if err != nil {
		closeAll(ins)
		closeAll(outs)
		return nil, nil, &BatchWorkerError{Err: &diag.Error{Code: diag.UserScriptImportError,
			Message: fmt.Sprintf("cannot start the Python interpreter %q: %v", cfg.Python, err)}}
	}
	waits = make([]func(context.Context) (*BatchWorker, error), n)
	for i := range n {
		w := &BatchWorker{proc: &forkedProc{zygote: zygote}, in: ins[i], outF: outs[i], out: bufio.NewReaderSize(outs[i], 64<<10)}
		waits[i] = func(ctx context.Context) (*BatchWorker, error) { return w.ready(ctx, cfg.Python) }
	}
	end = func(grace time.Duration) {
		select {
		case <-zygote.Done():
		case <-time.After(grace):
		}
		zygote.Stop(0)
	}
	return waits, end, nil
}

// ready waits for a forked worker's frame with its pid, then for its ready frame; when
// ctx ends first the worker is killed.
func (w *BatchWorker) ready(ctx context.Context, py string) (*BatchWorker, error) {
	stop := context.AfterFunc(ctx, func() { w.outF.SetReadDeadline(time.Now()) })
	h, _, err := readBatchFrame(w.out)
	if err == nil && h.Ready == nil && h.PID > 0 {
		w.proc.(*forkedProc).pid = h.PID
		h, _, err = readBatchFrame(w.out)
	}
	if !stop() {
		w.Kill()
		return nil, ctx.Err()
	}
	if err != nil || h.Ready == nil {
		w.close()
		return nil, &BatchWorkerError{Err: &diag.Error{Code: diag.UserScriptImportError,
			Message: fmt.Sprintf("the Python worker (%s) exited before it was ready (%v): check that %q runs Python 3.9 or newer", py, err, py)}}
	}
	if !*h.Ready {
		w.Kill()
		de := hinted(ctx, instance.MachineInterpreters(), py, &diag.Error{Code: diag.Code(h.Code), Message: h.Message})
		return nil, &BatchWorkerError{Err: de, Traceback: h.Trace}
	}
	return w, nil
}

// forkedProc is a worker forked by the job's first Python process (the zygote), which
// reaps it; Berth kills it by pid, and all of them with the zygote's process group.
type forkedProc struct {
	zygote *supervise.Process
	pid    int // from its first frame; 0 before
	// gone is set once its answers reached EOF: it has exited and may be reaped, so its
	// pid may name another process and is never signalled again.
	gone atomic.Bool
	kill sync.Once
}

func (p *forkedProc) Pid() int { return p.pid }

func (p *forkedProc) Err() error { return errors.New("the forked worker process ended") }

// exited records that the worker's answers reached EOF.
func (p *forkedProc) exited() { p.gone.Store(true) }

// Stop kills the worker at once, once, unless it has exited (grace is for the caller,
// which waits for its EOF).
func (p *forkedProc) Stop(time.Duration) error {
	var err error
	p.kill.Do(func() {
		if p.pid > 0 && !p.gone.Load() {
			err = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	})
	return err
}
