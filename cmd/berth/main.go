// Command berth deploys and serves Azure ML style online endpoints on one machine.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/berthml/berth/internal/batch"
	"github.com/berthml/berth/internal/cli"
	"github.com/berthml/berth/internal/inference"
	"github.com/berthml/berth/internal/server"
)

func main() {
	root := cli.NewRoot(server.NewServeCommand(), inference.NewCommand(), batch.NewPodCommand())
	args := cli.AzArgs(os.Args[1:])
	keepSysmonAwake(commandName(root, args))
	restoreGODEBUG()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first Ctrl-C the signals are no longer caught: a second one ends the
	// process at once, even in code that does not watch ctx.
	context.AfterFunc(ctx, stop)
	tuneRuntime()
	defer profileCPU()()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	stop()
	if err != nil {
		profileEnd()
		cli.PrintError(os.Stderr, err)
		cli.PrintNext(os.Stderr, err, cmd)
		os.Exit(cli.ExitCode(err))
	}
}

// gcPercent is Berth's GOGC. berth serve's live heap is a few MiB, so at Go's default
// of 100 a loaded server collected every ~16 ms and spent about a sixth of a core on it;
// at 400 it collects a quarter as often, for a heap that peaks a few MiB higher. A
// GOGC set in the environment wins.
const gcPercent = 400

// tuneRuntime sets Berth's GOGC and GOMAXPROCS unless the environment sets them.
func tuneRuntime() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(serverProcs(runtime.GOMAXPROCS(0)))
	}
}

// serverProcs is how many of the cpus Go may use (Go's own default: every cpu, or the
// container's CPU limit): half of them, at least one. The rest are the Python workers':
// they do the model's work, and on 2 cores a second Go thread woken for every handed-over
// request cost the sklearn example ~60 us of Go CPU per request (144 -> 83 us at one
// worker, throughput +46..47% in two interleaved wrk pairs).
func serverProcs(cpus int) int {
	return max(1, cpus/2)
}

// profileEnd ends the CPU profile, if one is being written; os.Exit skips deferred calls.
var profileEnd = func() {}

// profileCPU writes a CPU profile of this process to the file BERTH_CPU_PROFILE names,
// if set, until the returned function is called (for `go tool pprof`: where `berth serve`
// spends its time under load); BERTH_ALLOC_PROFILE, set too, names where it writes the
// allocation profile then.
func profileCPU() func() {
	path := os.Getenv("BERTH_CPU_PROFILE")
	if path == "" {
		return func() {}
	}
	os.Unsetenv("BERTH_CPU_PROFILE") // for this process, not the ones it starts

	f, err := os.Create(path)
	if err != nil {
		os.Stderr.WriteString("BERTH_CPU_PROFILE: " + err.Error() + "\n")
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		os.Stderr.WriteString("BERTH_CPU_PROFILE: " + err.Error() + "\n")
		return func() {}
	}
	allocs := os.Getenv("BERTH_ALLOC_PROFILE") // with it, where the process allocates, at the end
	os.Unsetenv("BERTH_ALLOC_PROFILE")
	profileEnd = func() {
		pprof.StopCPUProfile()
		f.Close()
		if allocs != "" {
			if a, err := os.Create(allocs); err == nil {
				pprof.Lookup("allocs").WriteTo(a, 0)
				a.Close()
			}
		}
		profileEnd = func() {}
	}
	return func() { profileEnd() }
}
