// Package process owns the process runtime: each instance is a `berth inference-server`
// child process of `berth serve` listening on its own loopback port.
//
// An instance's memory limit is enforced by a watchdog that reads Linux's /proc; on
// other systems the limit is not enforced. How instances are stopped on other systems
// is described in package supervise.
package process

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"sync/atomic"

	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/logs"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/supervise"
)

// Runtime starts instances as child processes of the running binary.
type Runtime struct {
	// Binary is the berth executable; empty means os.Executable().
	Binary string
}

// compile-time check
var _ runtime.Runtime = (*Runtime)(nil)

// child is one running instance: a berth inference-server process.
type child struct {
	*supervise.Process
	addr string
	log  *os.File
	oom  atomic.Pointer[runtime.OutOfMemoryError]
}

func (i *child) Addr() string { return i.addr }

// Err says how the instance ended: out of memory when the watchdog killed it.
func (i *child) Err() error {
	err := i.Process.Err()
	if o := i.oom.Load(); o != nil {
		return o
	}
	return err
}

// Start launches `berth inference-server` for spec on a free loopback port.
func (r *Runtime) Start(ctx context.Context, spec runtime.InstanceSpec) (runtime.Instance, error) {
	bin := r.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find berth binary: %w", err)
		}
		bin = exe
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := logs.OpenAppend(spec.LogPath)
	if err != nil {
		return nil, fmt.Errorf("open instance log: %w", err)
	}
	env := os.Environ()
	keys := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+spec.Env[k])
	}
	args := instance.Flags{
		EntryScript: spec.EntryScript,
		ModelDir:    spec.ModelDir,
		Host:        "127.0.0.1",
		Port:        port,
		WorkerCount: max(spec.WorkerCount, 1),
		Python:      spec.Python,
		StatusFile:  spec.StatusFile,
	}.Args()
	p, err := supervise.Start(supervise.Command{
		Path:   bin,
		Args:   args,
		Env:    env,
		Dir:    spec.CodeDir,
		Stdout: logFile,
		Stderr: logFile,
	})
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start instance %s/%s/%d: %w", spec.Endpoint, spec.Deployment, spec.Index, err)
	}
	inst := &child{Process: p, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: logFile}
	go func() {
		<-p.Done()
		logFile.Close()
	}()
	if spec.MemoryLimit > 0 && canWatchMemory {
		go watchMemory(inst, spec.MemoryLimit, &inst.oom) // ends when the instance does
	}
	return inst, nil
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
