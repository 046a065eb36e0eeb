// Package process owns the process runtime: each instance's pool of Python workers runs
// inside `berth serve`, and the router calls the instance's handler in-process, so a
// scoring request crosses one process boundary — into the worker. The workers are
// children of berth serve (on Linux they die with it).
package process

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/berthml/berth/internal/inference"
	"github.com/berthml/berth/internal/logs"
	"github.com/berthml/berth/internal/runtime"
)

// Runtime starts instances in this process.
type Runtime struct{}

// compile-time check
var _ runtime.Runtime = (*Runtime)(nil)

// local is one in-process instance.
type local struct {
	*inference.Instance
	log *os.File
	oom atomic.Pointer[runtime.OutOfMemoryError]
}

func (l *local) Addr() string { return "" }

// Err says how the instance ended: out of memory when the watchdog stopped it.
func (l *local) Err() error {
	if o := l.oom.Load(); o != nil {
		return o
	}
	return l.Instance.Err()
}

// Stop stops the instance's workers (each gets the grace the pool gives it).
func (l *local) Stop(time.Duration) error {
	l.Instance.Stop()
	return nil
}

// Handler serves the instance in-process.
func (l *local) Handler() http.Handler { return l.Instance.Handler() }

// Start starts the instance's workers in this process; it returns at once, and the
// handler answers 503 until every worker has run init().
func (r *Runtime) Start(ctx context.Context, spec runtime.InstanceSpec) (runtime.Instance, error) {
	logFile, err := logs.OpenAppend(spec.LogPath)
	if err != nil {
		return nil, fmt.Errorf("open instance log: %w", err)
	}
	keys := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, k+"="+spec.Env[k])
	}
	inst, err := inference.Start(context.WithoutCancel(ctx), inference.Config{
		EntryScript:  spec.EntryScript,
		ModelDir:     spec.ModelDir,
		WorkerCount:  max(spec.WorkerCount, 1),
		Python:       spec.Python,
		StatusFile:   spec.StatusFile,
		Log:          logFile,
		Env:          env,
		Dir:          spec.CodeDir,
		WorkerExited: spec.WorkerExited,
		Label:        []string{"--endpoint", spec.Endpoint, "--deployment", spec.Deployment, "--instance", strconv.Itoa(spec.Index)},
	})
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start instance %s/%s/%d: %w", spec.Endpoint, spec.Deployment, spec.Index, err)
	}
	l := &local{Instance: inst, log: logFile}
	go func() {
		<-inst.Done()
		logFile.Close()
	}()
	if spec.MemoryLimit > 0 && canWatchMemory {
		go watchMemory(l, spec.MemoryLimit) // ends when the instance does
	}
	return l, nil
}
