package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/logs"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/supervise"
)

// Instance states shown by `online-deployment show`.
const (
	instStarting   = "Starting"
	instReady      = "Ready"
	instRestarting = "Restarting"
	instStopped    = "Stopped"
)

// deploymentRun is the live side of one deployment: the instances serving now and the
// ones being rolled out.
type deploymentRun struct {
	key deploymentKey

	mu             sync.Mutex
	current        []*instanceRun
	pending        []*instanceRun
	cancel         context.CancelFunc // cancels the rollout in progress
	nextIndex      int
	requestTimeout time.Duration
	maxConcurrent  int
	maxQueueWait   time.Duration
	gate           table.Gate // in-flight count, the same in every snapshot
	warnings       []string   // from the environment build, shown by `show`
	progress       string     // the last step of the rollout in progress
}

// Write records the last line written as the rollout's progress (an io.Writer for
// the environment build's steps).
func (r *deploymentRun) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	r.mu.Lock()
	r.progress = line
	r.mu.Unlock()
	return len(p), nil
}

// instanceRun is one instance and the goroutine that keeps it running.
type instanceRun struct {
	index int
	spec  runtime.InstanceSpec
	entry *table.Instance // routing entry of the running process; new per start

	mu       sync.Mutex
	state    string
	restarts int
	phases   map[string]float64 // milliseconds per start phase

	stopOnce sync.Once
	stop     chan struct{} // closed to ask the keeper to stop the instance
	done     chan struct{} // closed when the keeper has stopped it
}

func (ir *instanceRun) setState(s string) {
	ir.mu.Lock()
	ir.state = s
	ir.mu.Unlock()
}

// readyEntry returns the routing entry of a ready instance, or nil.
func (ir *instanceRun) readyEntry() *table.Instance {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	if ir.state != instReady {
		return nil
	}
	return ir.entry
}

func (ir *instanceRun) requestStop() { ir.stopOnce.Do(func() { close(ir.stop) }) }

// stopAll stops every instance of the run and waits for them.
func (r *deploymentRun) stopAll(grace time.Duration) {
	r.mu.Lock()
	if r.cancel != nil {
		r.cancel()
	}
	all := append(append([]*instanceRun{}, r.current...), r.pending...)
	r.current, r.pending = nil, nil
	r.mu.Unlock()
	stopInstances(all)
}

func stopInstances(irs []*instanceRun) {
	for _, ir := range irs {
		ir.requestStop()
	}
	for _, ir := range irs {
		<-ir.done
	}
}

// InstanceStatus is the live state of one instance.
type InstanceStatus struct {
	Index    int
	State    string
	Address  string
	Restarts int
	Phases   map[string]float64
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// Instances returns the live state of the deployment's serving instances.
func (c *Controller) Instances(endpoint, name string) []InstanceStatus {
	c.mu.Lock()
	r := c.runs[deploymentKey{endpoint, name}]
	c.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	irs := append(append([]*instanceRun{}, r.current...), r.pending...)
	r.mu.Unlock()
	out := make([]InstanceStatus, 0, len(irs))
	for _, ir := range irs {
		ir.mu.Lock()
		st := InstanceStatus{Index: ir.index, State: ir.state, Restarts: ir.restarts, Phases: ir.phases}
		if ir.entry != nil {
			st.Address = ir.entry.Addr
		}
		out = append(out, st)
		ir.mu.Unlock()
	}
	return out
}

// Logs returns the last lines of a container log of the deployment (see LogPath);
// nothing when no instance has written one yet.
func (c *Controller) Logs(endpoint, name, container string, lines int) ([]byte, error) {
	path := c.LogPath(endpoint, name, container)
	if path == "" {
		return nil, nil
	}
	return logs.Tail(path, lines)
}

// Rollout returns the last step of the deployment's rollout in progress and the
// warnings of its environment build.
func (c *Controller) Rollout(endpoint, name string) (progress string, warnings []string) {
	c.mu.Lock()
	r := c.runs[deploymentKey{endpoint, name}]
	c.mu.Unlock()
	if r == nil {
		return "", nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.progress, append([]string(nil), r.warnings...)
}

// LogPath returns the log file of the deployment's newest instance for a container
// ("inference-server" or "storage-initializer"), or "" when it has none.
func (c *Controller) LogPath(endpoint, name, container string) string {
	dir := filepath.Join(c.cfg.DataDir, "instances", endpoint, name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	c.mu.Lock()
	r := c.runs[deploymentKey{endpoint, name}]
	c.mu.Unlock()
	best := -1
	if r != nil {
		// Prefer the instance being rolled out (its log says why it is not ready yet),
		// then the first serving one.
		r.mu.Lock()
		if len(r.pending) > 0 {
			best = r.pending[0].index
		} else if len(r.current) > 0 {
			best = r.current[0].index
		}
		r.mu.Unlock()
	}
	if best < 0 {
		for _, e := range entries {
			if n, err := strconv.Atoi(e.Name()); err == nil && n > best {
				best = n
			}
		}
	}
	if best < 0 {
		return ""
	}
	return filepath.Join(dir, strconv.Itoa(best), "logs", container+".log")
}

func (c *Controller) run(endpoint, name string) *deploymentRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := deploymentKey{endpoint, name}
	r := c.runs[k]
	if r == nil {
		r = &deploymentRun{key: k}
		// Continue numbering after instance folders left by an earlier server.
		if entries, err := os.ReadDir(filepath.Join(c.cfg.DataDir, "instances", endpoint, name)); err == nil {
			for _, e := range entries {
				if n, err := strconv.Atoi(e.Name()); err == nil && n >= r.nextIndex {
					r.nextIndex = n + 1
				}
			}
		}
		c.runs[k] = r
	}
	return r
}

// stopDeployment stops every instance of a deployment and forgets it.
func (c *Controller) stopDeployment(endpoint, name string) {
	c.mu.Lock()
	k := deploymentKey{endpoint, name}
	r := c.runs[k]
	delete(c.runs, k)
	c.mu.Unlock()
	if r != nil {
		r.stopAll(c.cfg.StopGrace)
	}
}

// startProvision rolls the stored spec of a deployment out in the background,
// cancelling a rollout of the same deployment still in progress.
func (c *Controller) startProvision(endpoint, name string, op int64) {
	r := c.run(endpoint, name)
	r.mu.Lock()
	if r.cancel != nil {
		r.cancel()
	}
	ctx, cancel := context.WithCancel(c.ctx)
	r.cancel = cancel
	r.mu.Unlock()
	c.goBackground(func(context.Context) {
		defer cancel()
		err := c.provision(ctx, r)
		switch {
		case errors.Is(err, context.Canceled):
			c.finishOp(op, opCanceled, err)
		default:
			c.endOp(op, err)
		}
	})
}

// provision starts a new set of instances for the stored spec; once all are ready they
// replace the serving set and the deployment is Succeeded. On failure the serving set
// (if any) keeps serving and the deployment is Failed with the reason.
func (c *Controller) provision(ctx context.Context, r *deploymentRun) error {
	endpoint, name := r.key.endpoint, r.key.name
	rec, err := c.cfg.Store.GetDeployment(ctx, endpoint, name)
	if err != nil {
		c.log.Warn("provision: read deployment", "endpoint", endpoint, "deployment", name, "err", err)
		return err
	}
	d, err := spec.DecodeDeployment("stored deployment "+endpoint+"/"+name, rec.Spec, nil)
	if err != nil {
		c.finish(ctx, rec, err)
		return err
	}
	count := max(d.InstanceCount, 1)
	workers := 1
	if v, ok := d.EnvironmentVariables["WORKER_COUNT"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			workers = n
		}
	}

	var envLog bytes.Buffer
	envStart := time.Now()
	python, warnings, err := c.environment(ctx, d, io.MultiWriter(&envLog, r))
	envMs := msSince(envStart)
	r.mu.Lock()
	r.warnings, r.progress = warnings, ""
	r.mu.Unlock()
	if err != nil {
		c.failedEnvironmentLog(r, envLog.Bytes(), err)
		c.finish(ctx, rec, err)
		return err
	}

	fresh := make([]*instanceRun, 0, count)
	r.mu.Lock()
	for i := 0; i < count; i++ {
		fresh = append(fresh, &instanceRun{index: r.nextIndex, state: instStarting, stop: make(chan struct{}), done: make(chan struct{})})
		r.nextIndex++
	}
	r.pending = fresh
	r.mu.Unlock()

	results := make(chan error, count)
	for _, ir := range fresh {
		prepStart := time.Now()
		is, err := c.prepareInstance(rec, d, ir.index, workers, python, envLog.Bytes())
		ir.spec = is
		ir.phases = map[string]float64{"artifact_copy_ms": msSince(prepStart), "environment_ms": envMs}
		if err != nil {
			close(ir.done)
			results <- err
			continue
		}
		c.goBackground(func(life context.Context) { c.keep(life, r, ir, d, results) })
	}
	var firstErr error
	for range fresh {
		select {
		case err := <-results:
			if err != nil && firstErr == nil {
				firstErr = err
			}
		case <-ctx.Done():
			if firstErr == nil {
				firstErr = ctx.Err()
			}
		}
		if firstErr != nil {
			break
		}
	}

	r.mu.Lock()
	if r.pending != nil && &r.pending[0] == &fresh[0] {
		r.pending = nil
	}
	var old []*instanceRun
	if firstErr == nil {
		old, r.current = r.current, fresh
		r.requestTimeout = time.Duration(d.RequestSettings.RequestTimeoutMs) * time.Millisecond
		r.maxConcurrent = d.RequestSettings.MaxConcurrentRequestsPerInstance
		r.maxQueueWait = time.Duration(d.RequestSettings.MaxQueueWaitMs) * time.Millisecond
	}
	r.mu.Unlock()

	if firstErr != nil {
		stopInstances(fresh)
		if errors.Is(firstErr, context.Canceled) {
			return firstErr // superseded by a newer rollout or a delete
		}
		c.finish(ctx, rec, firstErr)
		c.publish(ctx)
		return firstErr
	}
	c.publish(ctx)
	c.finish(ctx, rec, nil)
	if len(old) > 0 {
		// Requests that picked an old instance from the previous snapshot finish first.
		select {
		case <-time.After(drainDelay):
		case <-ctx.Done():
		}
		stopInstances(old)
	}
	return nil
}

// drainDelay is how long replaced instances keep serving after the switch.
const drainDelay = 2 * time.Second

// crashLoopRestarts is how many restarts in a row, without a long healthy run in
// between, make a deployment report DeploymentCrashLoopBackOff.
const crashLoopRestarts = 3

// finish records the outcome of a rollout.
func (c *Controller) finish(ctx context.Context, rec *store.Deployment, failure error) {
	var raw json.RawMessage
	state := StateSucceeded
	if failure != nil {
		state = StateFailed
		de := diag.As(failure)
		if de == nil {
			de = &diag.Error{Code: diag.InternalServerError, Message: failure.Error()}
		}
		raw, _ = json.Marshal(de)
		c.log.Info("deployment failed", "endpoint", rec.Endpoint, "deployment", rec.Name, "code", de.Code)
	}
	_, err := c.cfg.Store.UpdateDeployment(ctx, rec.Endpoint, rec.Name, func(r *store.Deployment) error {
		r.State, r.Error = state, raw
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.log.Warn("record deployment state", "endpoint", rec.Endpoint, "deployment", rec.Name, "err", err)
	}
}

// prepareInstance lays out an instance folder as Azure mounts it: the model under
// azureml-models/ (AZUREML_MODEL_DIR), the code as the working directory, and logs/.
func (c *Controller) prepareInstance(rec *store.Deployment, d *spec.Deployment, index, workers int, python string, envLog []byte) (runtime.InstanceSpec, error) {
	dir := filepath.Join(c.cfg.DataDir, "instances", rec.Endpoint, rec.Name, strconv.Itoa(index))
	is := runtime.InstanceSpec{
		Endpoint: rec.Endpoint, Deployment: rec.Name, Index: index, Dir: dir,
		CodeDir:     filepath.Join(dir, "code"),
		ModelDir:    filepath.Join(dir, "azureml-models"),
		WorkerCount: workers,
		Python:      python,
		LogPath:     filepath.Join(dir, "logs", "inference-server.log"),
		StatusFile:  filepath.Join(dir, "status.json"),
		Env:         map[string]string{},
	}
	if err := os.RemoveAll(dir); err != nil {
		return is, fmt.Errorf("clear instance folder: %w", err)
	}
	f, err := logs.OpenAppend(filepath.Join(dir, "logs", "storage-initializer.log"))
	if err != nil {
		return is, err
	}
	defer f.Close()
	w := logs.NewTimestamped(f, c.cfg.Now)
	fmt.Fprintf(w, "storage-initializer: preparing instance %d of deployment %s/%s in %s\n", index, rec.Endpoint, rec.Name, dir)
	copyOne := func(what, digest, dst string) error {
		start := time.Now()
		files, size, err := c.cfg.Artifacts.CopyTo(digest, dst)
		if err != nil {
			fmt.Fprintf(w, "failed to copy %s %s to %s: %v\n", what, digest, dst, err)
			return &diag.Error{Code: diag.BadArgument, Target: what,
				Message: fmt.Sprintf("unable to download user %s %s: %v; deploy again so the CLI uploads it", what, digest, err)}
		}
		fmt.Fprintf(w, "copied %s %s to %s: %d files, %d bytes in %s\n", what, digest, dst, files, size, time.Since(start).Round(time.Millisecond))
		return nil
	}
	if err := os.MkdirAll(is.ModelDir, 0o755); err != nil {
		return is, err
	}
	modelFiles := ""
	if rec.ModelArtifact != "" {
		target := c.modelTarget(rec.ModelArtifact, d, is.ModelDir)
		if d.Model.IsRef() {
			// A registered model sits under <name>/<version>, as Azure mounts it.
			reg, err := c.ResolveModel(context.Background(), d.Model.Ref)
			if err != nil {
				fmt.Fprintf(w, "%v\n", err)
				return is, err
			}
			is.ModelDir = filepath.Join(is.ModelDir, reg.Name, reg.Version)
			target = c.registeredTarget(reg, is.ModelDir)
		}
		if err := copyOne("model", rec.ModelArtifact, target); err != nil {
			return is, err
		}
		modelFiles = target
	} else {
		fmt.Fprintf(w, "no model in the deployment spec: %s is empty\n", is.ModelDir)
	}
	if d.CodeConfiguration == nil {
		// A no-code MLflow deployment: Berth's own scoring script serves the model.
		if err := os.MkdirAll(is.CodeDir, 0o755); err != nil {
			return is, err
		}
		mlmodel, err := readMLmodel(modelFiles)
		if err != nil {
			fmt.Fprintf(w, "%v\n", err)
			return is, err
		}
		is.EntryScript = mlflowEntryScript
		is.Env["BERTH_MLMODEL"] = mlmodel
		is.Env["BERTH_MLFLOW_MODEL_DIR"] = modelFiles
		fmt.Fprintf(w, "no-code MLflow deployment: Berth's scoring script serves the model in %s\n", modelFiles)
	} else {
		if err := copyOne("code", rec.CodeArtifact, is.CodeDir); err != nil {
			return is, err
		}
		is.EntryScript = filepath.Join(is.CodeDir, filepath.FromSlash(d.CodeConfiguration.ScoringScript))
	}
	if it, err := c.instanceType(d.InstanceType); err == nil && it.MemoryBytes > 0 {
		is.MemoryLimit = it.MemoryBytes
		fmt.Fprintf(w, "instance_type %s: %g cores, memory capped at %s\n", it.Name, it.Cores, bytesString(it.MemoryBytes))
	}
	w.Write(envLog)
	fmt.Fprintf(w, "python: %s\n", python)
	for k, v := range d.EnvironmentVariables {
		is.Env[k] = v
	}
	n, err := c.resolveSecrets(context.Background(), is.Env)
	if err != nil {
		fmt.Fprintf(w, "secret injection failed: %v\n", err)
		return is, err
	}
	if n > 0 {
		fmt.Fprintf(w, "resolved %d secret reference(s) in environment_variables (values are not shown)\n", n)
	}
	is.Env["WORKER_COUNT"] = strconv.Itoa(workers)
	if mcr := d.RequestSettings.MaxConcurrentRequestsPerInstance; workers < mcr {
		fmt.Fprintf(w, "WARNING: WORKER_COUNT is %d but request_settings.max_concurrent_requests_per_instance is %d: "+
			"requests beyond %d per instance wait for a free Python worker; set environment_variables.WORKER_COUNT to %d\n", workers, mcr, workers, mcr)
	}
	fmt.Fprintf(w, "AZUREML_MODEL_DIR=%s\n", is.ModelDir)
	fmt.Fprintf(w, "entry script %s, working directory %s, %d worker(s)\n", is.EntryScript, is.CodeDir, workers)
	return is, nil
}

// keep starts the instance, reports its first readiness on first, and then keeps it
// running: an instance that exits is taken out of routing and restarted with backoff.
func (c *Controller) keep(life context.Context, r *deploymentRun, ir *instanceRun, d *spec.Deployment, first chan<- error) {
	defer close(ir.done)
	defer ir.setState(instStopped)
	backoff := supervise.Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, ResetAfter: time.Minute}
	reported := false
	for {
		os.Remove(ir.spec.StatusFile)
		startAt := time.Now()
		inst, err := c.cfg.Runtime.Start(life, ir.spec)
		if err == nil {
			err = c.waitReady(life, ir, inst, d)
		}
		if err == nil {
			c.recordPhases(ir, msSince(startAt))
			ir.mu.Lock()
			ir.entry = table.NewInstance(inst.Addr(), d.RequestSettings.MaxConcurrentRequestsPerInstance)
			ir.state = instReady
			ir.mu.Unlock()
		}
		if !reported {
			reported = true
			first <- err
			if err != nil {
				if inst != nil {
					inst.Stop(c.cfg.StopGrace)
				}
				return
			}
		}
		var ranFor time.Duration
		if err == nil {
			started := time.Now()
			c.publish(life)
			probeStop, probeDone := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(probeDone)
				c.probe(life, ir, inst, d, probeStop)
			}()
			stopped := false
			select {
			case <-inst.Done():
				ranFor = time.Since(started)
				c.log.Warn("instance exited", "endpoint", r.key.endpoint, "deployment", r.key.name, "instance", ir.index, "err", inst.Err())
			case <-ir.stop:
				stopped = true
			case <-life.Done():
				stopped = true
			}
			close(probeStop)
			<-probeDone
			if stopped {
				inst.Stop(c.cfg.StopGrace)
				return
			}
		} else if inst != nil {
			inst.Stop(c.cfg.StopGrace)
		}
		ir.mu.Lock()
		ir.state = instRestarting
		ir.restarts++
		ir.mu.Unlock()
		c.publish(life)
		delay := backoff.Next(ranFor)
		if backoff.Restarts() == crashLoopRestarts {
			c.crashLoop(life, ir, inst, backoff.Restarts())
		}
		select {
		case <-time.After(delay):
		case <-ir.stop:
			return
		case <-life.Done():
			return
		}
	}
}

// waitReady polls the instance's liveness route until it answers 200, the instance
// exits (its status file then says why), or the readiness budget runs out.
func (c *Controller) waitReady(ctx context.Context, ir *instanceRun, inst runtime.Instance, d *spec.Deployment) error {
	p := d.ReadinessProbe
	budget := time.Duration(p.InitialDelay+p.Period*p.FailureThreshold) * time.Second
	deadline := time.NewTimer(budget)
	defer deadline.Stop()
	probe := &http.Client{Timeout: time.Duration(max(p.Timeout, 1)) * time.Second}
	url := "http://" + inst.Addr() + "/"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-inst.Done():
			return c.startupError(ir, inst)
		case <-deadline.C:
			return &diag.Error{Code: diag.ResourceNotReady,
				Message: fmt.Sprintf("instance %d of deployment %s/%s was not ready after %s (readiness_probe: initial_delay %ds + period %ds × failure_threshold %d): init() may be too slow; raise readiness_probe.failure_threshold or period, and check `berth online-deployment get-logs -e %s -n %s`",
					ir.index, ir.spec.Endpoint, ir.spec.Deployment, budget, p.InitialDelay, p.Period, p.FailureThreshold, ir.spec.Endpoint, ir.spec.Deployment)}
		case <-ir.stop:
			return context.Canceled
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			resp, err := probe.Get(url)
			if err != nil {
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
}

// startupError explains why an instance exited before it was ready, in the child's own
// words when it wrote a status file.
func (c *Controller) startupError(ir *instanceRun, inst runtime.Instance) error {
	e, n := ir.spec.Endpoint, ir.spec.Deployment
	hint := fmt.Sprintf("see the full log with `berth online-deployment get-logs -e %s -n %s --lines 100`", e, n)
	if data, err := os.ReadFile(ir.spec.StatusFile); err == nil {
		var child diag.Error
		if json.Unmarshal(data, &child) == nil && child.Code != "" {
			return &diag.Error{Code: diag.ResourceNotReady, Target: n,
				Message: fmt.Sprintf("deployment %s failed to start: %s: %s; %s", n, child.Code, child.Message, hint),
				Details: []*diag.Error{&child}}
		}
	}
	var oom *runtime.OutOfMemoryError
	if errors.As(inst.Err(), &oom) {
		return &diag.Error{Code: diag.OutOfQuota, Target: "memory",
			Message: fmt.Sprintf("instance %d of deployment %s ran out of memory while starting: %v (peak seen %s); pick an instance_type with more memory, or load a smaller model; %s",
				ir.index, n, oom, bytesString(oom.Peak), hint),
			Details: []*diag.Error{{Code: diag.PodOutOfMemory, Message: oom.Error()}}}
	}
	tail, _ := logs.Tail(ir.spec.LogPath, 10)
	return &diag.Error{Code: diag.ResourceNotReady, Target: n,
		Message: fmt.Sprintf("instance %d of deployment %s exited before it was ready (%v); last log lines:\n%s\n%s",
			ir.index, n, inst.Err(), strings.TrimRight(string(tail), "\n"), hint)}
}

// registeredTarget is where a registered model's files go under its model dir.
func (c *Controller) registeredTarget(m *store.Model, modelDir string) string {
	if root, err := c.cfg.Artifacts.Path(m.Artifact); err == nil {
		entries, err := os.ReadDir(root)
		if err == nil && len(entries) == 1 && entries[0].Name() == m.PathBase && entries[0].Type().IsRegular() {
			return modelDir
		}
	}
	return filepath.Join(modelDir, m.PathBase)
}

// modelTarget is where a model artifact goes under AZUREML_MODEL_DIR, as Azure lays it
// out: a registered folder keeps its own name beneath the model dir
// ($AZUREML_MODEL_DIR/model/x.pkl for path: ./model), a single file sits directly in it.
func (c *Controller) modelTarget(digest string, d *spec.Deployment, modelDir string) string {
	base := filepath.Base(filepath.Clean(d.Model.Path))
	if root, err := c.cfg.Artifacts.Path(digest); err == nil {
		entries, err := os.ReadDir(root)
		if err == nil && len(entries) == 1 && entries[0].Name() == base && entries[0].Type().IsRegular() {
			return modelDir
		}
	}
	return filepath.Join(modelDir, base)
}

// crashLoop marks the deployment Failed with DeploymentCrashLoopBackOff; the keeper
// goes on restarting the instance with growing delays.
func (c *Controller) crashLoop(ctx context.Context, ir *instanceRun, inst runtime.Instance, restarts int) {
	e, n := ir.spec.Endpoint, ir.spec.Deployment
	exit := "it did not start"
	if inst != nil {
		exit = fmt.Sprint(inst.Err())
	}
	tail, _ := logs.Tail(ir.spec.LogPath, 10)
	de := &diag.Error{Code: diag.DeploymentCrashLoopBackOff, Target: n,
		Message: fmt.Sprintf("instance %d of deployment %s keeps exiting: restarted %d times in a row; last exit: %s; Berth keeps restarting it with growing delays. Last log lines:\n%s\nFix the cause and run `berth online-deployment update`; the full log: `berth online-deployment get-logs -e %s -n %s --lines 200`",
			ir.index, n, restarts, exit, strings.TrimRight(string(tail), "\n"), e, n)}
	raw, _ := json.Marshal(de)
	if _, err := c.cfg.Store.UpdateDeployment(ctx, e, n, func(r *store.Deployment) error {
		if r.State != StateSucceeded && r.State != StateFailed {
			return nil // a rollout in progress reports its own outcome
		}
		r.State, r.Error = StateFailed, raw
		return nil
	}); err != nil && !errors.Is(err, store.ErrNotFound) {
		c.log.Warn("record crash loop", "endpoint", e, "deployment", n, "err", err)
	}
}

// recordPhases reads the import and init() times the instance wrote to its status file,
// keeps them for `show`, and writes every phase to the storage-initializer log so a slow
// start names its slow phase.
func (c *Controller) recordPhases(ir *instanceRun, readyMs float64) {
	var st struct {
		Phases struct {
			ImportMs float64 `json:"import_ms"`
			InitMs   float64 `json:"init_ms"`
		} `json:"phases"`
	}
	if b, err := os.ReadFile(ir.spec.StatusFile); err == nil {
		json.Unmarshal(b, &st)
	}
	ir.mu.Lock()
	phases := map[string]float64{}
	for k, v := range ir.phases {
		phases[k] = v
	}
	phases["import_ms"] = st.Phases.ImportMs
	phases["init_ms"] = st.Phases.InitMs
	phases["ready_ms"] = readyMs
	ir.phases = phases
	ir.mu.Unlock()
	f, err := logs.OpenAppend(filepath.Join(ir.spec.Dir, "logs", "storage-initializer.log"))
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(logs.NewTimestamped(f, c.cfg.Now),
		"instance %d ready: artifact copy %.0f ms, environment 0 ms (not built), import of score.py %.0f ms, init() %.0f ms, ready %.0f ms after start\n",
		ir.index, phases["artifact_copy_ms"], phases["import_ms"], phases["init_ms"], phases["ready_ms"])
}

// failedEnvironmentLog keeps the environment build's output where `get-logs --container
// storage-initializer` finds it when no instance could be prepared.
func (c *Controller) failedEnvironmentLog(r *deploymentRun, envLog []byte, failure error) {
	r.mu.Lock()
	index := r.nextIndex
	r.nextIndex++
	r.mu.Unlock()
	dir := filepath.Join(c.cfg.DataDir, "instances", r.key.endpoint, r.key.name, strconv.Itoa(index))
	f, err := logs.OpenAppend(filepath.Join(dir, "logs", "storage-initializer.log"))
	if err != nil {
		return
	}
	defer f.Close()
	w := logs.NewTimestamped(f, c.cfg.Now)
	w.Write(envLog)
	fmt.Fprintf(w, "environment build failed: %v\n", failure)
	if de := diag.As(failure); de != nil && de.Code == diag.ImageBuildFailure {
		if b, ok := buildLogTail(de.Message); ok {
			fmt.Fprintf(w, "tail of the build log:\n%s\n", b)
		}
	}
}

// buildLogTail reads the last lines of the build log a message names.
func buildLogTail(msg string) (string, bool) {
	i := strings.Index(msg, "The build log is ")
	if i < 0 {
		return "", false
	}
	rest := msg[i+len("The build log is "):]
	path := strings.Fields(rest)[0]
	tail, err := logs.Tail(path, 20)
	return strings.TrimRight(string(tail), "\n"), err == nil
}

// mlflowEntryScript tells `berth inference-server` to use its built-in MLflow scorer
// (inference.BuiltinMLflow; the controller does not import the instance).
const mlflowEntryScript = "builtin:mlflow"

// readMLmodel finds the MLmodel file of an MLflow model folder and returns it as JSON.
func readMLmodel(dir string) (string, error) {
	path := filepath.Join(dir, "MLmodel")
	data, err := os.ReadFile(path)
	if err != nil {
		return "", &diag.Error{Code: diag.BadArgument, Target: "model",
			Message: fmt.Sprintf("a deployment without code_configuration needs an MLflow model (a folder with an MLmodel file), but %s has none: add code_configuration with a scoring script, or register the model with --type mlflow_model", dir)}
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", &diag.Error{Code: diag.BadArgument, Target: "model",
			Message: fmt.Sprintf("the MLmodel file %s is not valid YAML: %v", path, err)}
	}
	b, err := json.Marshal(doc)
	return string(b), err
}
