package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/logs"
	"github.com/berthml/berth/internal/quota"
	"github.com/berthml/berth/internal/runtime"
)

// keep starts the instance, reports its first start on m.first, and then keeps it
// running: an instance that exits is taken out of routing and restarted with backoff.
// It returns, with the instance stopped, when ctx is cancelled.
func (f *Fleet) keep(ctx context.Context, k Key, m *member) {
	defer close(m.done)
	defer m.setState(instance.Stopped)
	backoff := instance.InstanceBackoff()
	firstDone := false
	for {
		inst, err := f.startOnce(ctx, m)
		if !firstDone {
			firstDone = true
			if err != nil {
				stopIf(inst, f.cfg.StopGrace)
				m.fail(err)
				return
			}
			close(m.first)
		}
		if ctx.Err() != nil {
			stopIf(inst, f.cfg.StopGrace)
			return // stopped while (re)starting: not a crash
		}
		var ranFor time.Duration
		if err == nil {
			var stopped bool
			ranFor, stopped = f.serve(ctx, k, m, inst)
			if stopped {
				return
			}
		} else {
			stopIf(inst, f.cfg.StopGrace)
		}
		m.mu.Lock()
		m.state = instance.Restarting
		m.restarts++
		m.mu.Unlock()
		f.cfg.Changed(ctx)
		delay := backoff.Next(ranFor)
		if backoff.Restarts() == instance.CrashLoopRestarts {
			f.crashLoop(ctx, k, m, inst, backoff.Restarts())
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
	}
}

func stopIf(inst runtime.Instance, grace time.Duration) {
	if inst != nil {
		inst.Stop(grace)
	}
}

// startOnce starts the instance and waits until it is ready.
func (f *Fleet) startOnce(ctx context.Context, m *member) (runtime.Instance, error) {
	removeStatus(m.spec.StatusFile)
	startAt := time.Now()
	inst, err := f.cfg.Runtime.Start(ctx, m.spec)
	if err != nil {
		return nil, err
	}
	if err := f.waitReady(ctx, m, inst); err != nil {
		return inst, err
	}
	f.recordPhases(m, msSince(startAt))
	m.ready(inst)
	return inst, nil
}

// serve publishes a ready instance and probes it until it exits (stopped false) or
// ctx is cancelled (stopped true, the instance stopped).
func (f *Fleet) serve(ctx context.Context, k Key, m *member, inst runtime.Instance) (ranFor time.Duration, stopped bool) {
	started := time.Now()
	f.cfg.Changed(ctx)
	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		f.probe(probeCtx, m, inst)
	}()
	defer func() {
		stopProbe()
		<-probeDone
	}()
	select {
	case <-inst.Done():
		f.log.Warn("instance exited", "endpoint", k.Endpoint, "deployment", k.Deployment, "instance", m.index, "err", inst.Err())
		return time.Since(started), false
	case <-ctx.Done():
		inst.Stop(f.cfg.StopGrace)
		return 0, true
	}
}

// waitReady polls the instance's liveness route until it answers 200, the instance
// exits (its status file then says why), or the readiness budget runs out.
func (f *Fleet) waitReady(ctx context.Context, m *member, inst runtime.Instance) error {
	p := m.want.Readiness
	budget := p.InitialDelay + p.Period*time.Duration(p.FailureThreshold)
	deadline := time.NewTimer(budget)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	s := m.spec
	for {
		select {
		case <-inst.Done():
			return f.startupError(m, inst)
		case <-deadline.C:
			return &diag.Error{Code: diag.ResourceNotReady,
				Message: fmt.Sprintf("instance %d of deployment %s/%s was not ready after %s (readiness_probe: initial_delay %s + period %s × failure_threshold %d): init() may be too slow; raise readiness_probe.failure_threshold or period, and check `berth online-deployment get-logs -e %s -n %s`",
					m.index, s.Endpoint, s.Deployment, budget, p.InitialDelay, p.Period, p.FailureThreshold, s.Endpoint, s.Deployment)}
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if check(ctx, inst, p.Timeout) {
				return nil
			}
		}
	}
}

// startupError explains why an instance exited before it was ready, in the child's own
// words when it wrote a status file.
func (f *Fleet) startupError(m *member, inst runtime.Instance) error {
	e, n := m.spec.Endpoint, m.spec.Deployment
	hint := fmt.Sprintf("see the full log with `berth online-deployment get-logs -e %s -n %s --lines 100`", e, n)
	if st, err := instance.ReadStatus(m.spec.StatusFile); err == nil && st.Error != nil {
		child := st.Error
		return &diag.Error{Code: diag.ResourceNotReady, Target: n,
			Message: fmt.Sprintf("deployment %s failed to start: %s: %s; %s", n, child.Code, child.Message, hint),
			Details: []*diag.Error{child}}
	}
	var oom *runtime.OutOfMemoryError
	if errors.As(inst.Err(), &oom) {
		return &diag.Error{Code: diag.OutOfQuota, Target: "memory",
			Message: fmt.Sprintf("instance %d of deployment %s ran out of memory while starting: %v (peak seen %s); pick an instance_type with more memory, or load a smaller model; %s",
				m.index, n, oom, quota.Bytes(oom.Peak), hint),
			Details: []*diag.Error{{Code: diag.PodOutOfMemory, Message: oom.Error()}}}
	}
	tail, _ := logs.Tail(m.spec.LogPath, 10)
	return &diag.Error{Code: diag.ResourceNotReady, Target: n,
		Message: fmt.Sprintf("instance %d of deployment %s exited before it was ready (%v); last log lines:\n%s\n%s",
			m.index, n, inst.Err(), strings.TrimRight(string(tail), "\n"), hint)}
}

// crashLoop reports DeploymentCrashLoopBackOff; the keeper goes on restarting the
// instance with growing delays.
func (f *Fleet) crashLoop(ctx context.Context, k Key, m *member, inst runtime.Instance, restarts int) {
	exit := "it did not start"
	if inst != nil {
		exit = fmt.Sprint(inst.Err())
	}
	tail, _ := logs.Tail(m.spec.LogPath, 10)
	de := &diag.Error{Code: diag.DeploymentCrashLoopBackOff, Target: k.Deployment,
		Message: fmt.Sprintf("instance %d of deployment %s keeps exiting: restarted %d times in a row; last exit: %s; Berth keeps restarting it with growing delays. Last log lines:\n%s\nFix the cause and run `berth online-deployment update`; the full log: `berth online-deployment get-logs -e %s -n %s --lines 200`",
			m.index, k.Deployment, restarts, exit, strings.TrimRight(string(tail), "\n"), k.Endpoint, k.Deployment)}
	f.log.Warn("instance in a crash loop", "endpoint", k.Endpoint, "deployment", k.Deployment, "instance", m.index, "restarts", restarts)
	if f.cfg.CrashLoop != nil {
		f.cfg.CrashLoop(ctx, k, de)
	}
}

// recordPhases reads the import and init() times the instance wrote to its status file,
// keeps them for `show`, and writes every phase to the storage-initializer log so a slow
// start names its slow phase.
func (f *Fleet) recordPhases(m *member, readyMs float64) {
	var ph instance.Phases
	if st, err := instance.ReadStatus(m.spec.StatusFile); err == nil && st.Phases != nil {
		ph = *st.Phases
	}
	m.mu.Lock()
	m.phases["import_ms"], m.phases["init_ms"], m.phases["ready_ms"] = ph.ImportMs, ph.InitMs, readyMs
	phases := maps.Clone(m.phases)
	m.mu.Unlock()
	f.appendLog(m, fmt.Sprintf("instance %d ready: artifact copy %.0f ms, environment %.0f ms, import of score.py %.0f ms, init() %.0f ms, ready %.0f ms after start",
		m.index, phases["artifact_copy_ms"], phases["environment_ms"], phases["import_ms"], phases["init_ms"], phases["ready_ms"]))
}

// appendLog appends a line to the instance's storage-initializer (deployment) log.
func (f *Fleet) appendLog(m *member, msg string) {
	file, err := logs.OpenAppend(filepath.Join(m.spec.Dir, "logs", "storage-initializer.log"))
	if err != nil {
		return
	}
	defer file.Close()
	fmt.Fprintln(logs.NewTimestamped(file, f.cfg.Now), msg)
}

// removeStatus clears the status file of an earlier start; a missing file is fine.
func removeStatus(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return // the next start overwrites it
	}
}
