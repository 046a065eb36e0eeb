// Package supervise owns child processes: starting them in their own process group,
// stopping them with a grace period, the restart backoff policy and output tails.
//
// How much of that the system allows differs:
//   - Linux: a child runs in its own process group and the kernel kills it if berth
//     dies (parent-death signal). Stop signals and kills the whole group, so
//     grandchildren (an instance's Python workers) go with it.
//   - Other Unix systems (macOS, the BSDs): process groups as on Linux, but there is no
//     parent-death signal, so children are stopped by berth serve's shutdown only; if
//     berth is killed they keep running.
//   - Windows: there are no process groups and no SIGTERM, so Stop kills the process
//     itself at once (no grace period) and its own children are not stopped with it.
package supervise

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Command describes a child process to start.
type Command struct {
	Path       string
	Args       []string
	Env        []string
	Dir        string
	Stdout     io.Writer // nil discards
	Stderr     io.Writer
	ExtraFiles []*os.File
}

// Process is a started child. Its process group is killed when it is stopped, and
// (on Linux) it is killed if the parent dies. The package documentation says what
// other systems do instead.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	code int
	stop sync.Once
}

// Start starts the command in its own process group.
func Start(c Command) (*Process, error) {
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
	cmd.ExtraFiles = c.ExtraFiles
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				err = fmt.Errorf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
			}
		}
		p.err = err
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id (and process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode is the exit code after Done, or -1 when a signal ended the process.
func (p *Process) ExitCode() int { <-p.done; return p.code }

// Err describes how the process ended (after Done): nil for exit 0.
func (p *Process) Err() error { <-p.done; return p.err }

// Stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs the group
// and waits a bounded time. It is safe to call more than once and after exit.
// (On Windows it kills the process at once.)
func (p *Process) Stop(grace time.Duration) error {
	p.stop.Do(func() {
		terminate(p.cmd.Process)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
		// Kill what is left of the group, grandchildren included.
		kill(p.cmd.Process)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	})
	select {
	case <-p.done:
		return nil
	default:
		return fmt.Errorf("process %d did not exit after SIGKILL", p.cmd.Process.Pid)
	}
}

// Backoff is the restart-delay policy: exponential from Initial, doubling up to Max;
// a run that lasted at least ResetAfter starts over. It does not sleep.
type Backoff struct {
	Initial, Max, ResetAfter time.Duration
	restarts                 int
	next                     time.Duration
}

// Next returns how long to wait before restarting a process that ran for ranFor.
func (b *Backoff) Next(ranFor time.Duration) time.Duration {
	if b.ResetAfter > 0 && ranFor >= b.ResetAfter {
		b.restarts, b.next = 0, 0
	}
	if b.next == 0 {
		b.next = b.Initial
	} else {
		b.next *= 2
	}
	if b.Max > 0 && b.next > b.Max {
		b.next = b.Max
	}
	b.restarts++
	return b.next
}

// Restarts counts the restarts since the last reset.
func (b *Backoff) Restarts() int { return b.restarts }

// Tail is an io.Writer, safe for concurrent use, that keeps the last N lines.
type Tail struct {
	mu      sync.Mutex
	n       int
	lines   []string
	partial string
}

// NewTail returns a Tail keeping n lines.
func NewTail(n int) *Tail { return &Tail{n: n} }

// Write records p.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.partial + string(p)
	parts := strings.Split(s, "\n")
	t.partial = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		t.lines = append(t.lines, l)
	}
	if len(t.lines) > t.n {
		t.lines = append([]string(nil), t.lines[len(t.lines)-t.n:]...)
	}
	return len(p), nil
}

// Lines returns the kept lines, oldest first.
func (t *Tail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}
