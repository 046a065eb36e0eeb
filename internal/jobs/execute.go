package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthml/berth/internal/batch"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/logs"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/stage"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// run is a job being run by this server.
type run struct {
	endpoint, deployment string
	cancel               context.CancelFunc
	canceled             atomic.Bool // a user asked: the job ends Canceled, not resumable
	progress             atomic.Pointer[batch.Progress]
	remote               atomic.Pointer[batch.Remote] // the slots of a job's pods on a Kubernetes compute
	saved                atomic.Int64                 // unix nanos of the last progress write to the store
}

// start runs a stored job in the background.
func (s *Service) start(ctx context.Context, j *store.Job, js jobSpec) {
	name := j.Name
	r := &run{endpoint: j.Endpoint, deployment: j.Deployment}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.running[name]; dup {
		return
	}
	s.running[name] = r
	// Under s.mu: a cancel that finds the run finds its cancel function too.
	r.cancel = s.background(ctx, func(ctx context.Context) {
		defer func() {
			s.mu.Lock()
			delete(s.running, name)
			s.mu.Unlock()
		}()
		s.execute(ctx, name, js, r)
	})
}

// execute takes a job from Preparing to its end. A job whose server stops meanwhile
// keeps its status and resumes at the next start.
func (s *Service) execute(ctx context.Context, name string, js jobSpec, r *run) {
	if j, err := s.cfg.Store.GetJob(ctx, name); err != nil || wire.JobTerminal(j.Status) || j.Status == wire.JobCancelRequested {
		if err == nil && j.Status == wire.JobCancelRequested {
			s.end(ctx, name, r, wire.JobCanceled, nil, batch.Progress{})
		}
		return // canceled (or gone) before it began
	}
	dir := s.jobDir(name)
	driver, err := openDriverLog(dir)
	if err != nil {
		s.end(ctx, name, r, wire.JobFailed, err, batch.Progress{})
		return
	}
	defer driver.Close()
	w := logs.NewTimestamped(driver, s.cfg.Now)
	s.setStatus(ctx, name, wire.JobPreparing)
	fmt.Fprintf(w, "job %s: preparing (deployment %s/%s, compute %s, %d node(s) × %d process(es), mini_batch_size %d)\n",
		name, r.endpoint, r.deployment, js.Compute, js.Nodes, js.Settings.MaxConcurrencyPerInstance, js.Settings.MiniBatchSize)
	onCluster, err := s.onCluster(ctx, js.Compute)
	if err != nil { // deleted since the job was invoked: ComputeNotFound names the fix
		s.finish(ctx, name, r, w, batch.Result{}, err)
		return
	}
	prepare := s.prepare
	if onCluster {
		prepare = s.prepareCluster
	}
	job, err := prepare(ctx, name, js, w)
	if err != nil {
		s.finish(ctx, name, r, w, batch.Result{}, err)
		return
	}
	if !onCluster { // a cluster schedules its own pods
		release, err := s.acquire(ctx, js.Compute, js.Nodes, w)
		if err != nil {
			s.finish(ctx, name, r, w, batch.Result{}, err)
			return
		}
		defer release()
	}
	s.setStatus(ctx, name, wire.JobRunning)
	job.Progress = func(p batch.Progress) { s.onProgress(ctx, name, r, p) }
	var res batch.Result
	if onCluster {
		res, err = s.runOnCluster(ctx, name, js, job, w)
	} else {
		res, err = batch.Run(ctx, job)
	}
	s.finish(ctx, name, r, w, res, err)
}

// onCluster reports whether compute is a Kubernetes compute.
func (s *Service) onCluster(ctx context.Context, compute string) (bool, error) {
	comp, err := s.GetCompute(ctx, compute)
	if err != nil {
		return false, err
	}
	cs, err := computeSpec(comp)
	if err != nil {
		return false, err
	}
	return cs.Type == spec.KubernetesComputeType, nil
}

// prepare resolves everything the runner needs: the input on disk, the environment,
// and the model and code laid out as Azure mounts them.
func (s *Service) prepare(ctx context.Context, name string, js jobSpec, w io.Writer) (batch.Job, error) {
	dir := s.jobDir(name)
	sp, err := decodeDeployment(&store.BatchDeployment{Spec: js.Deployment})
	if err != nil {
		return batch.Job{}, err
	}
	input, err := s.materialize(ctx, js.Source, dir, w)
	if err != nil {
		return batch.Job{}, err
	}
	od := sp.AsDeployment()
	env, err := s.cfg.Stage.EnvironmentOn(ctx, od, stage.Past{Kept: js.Python}, w)
	if err != nil {
		return batch.Job{}, err
	}
	rec := &store.Deployment{Endpoint: sp.EndpointName, Name: sp.Name, ModelArtifact: js.ModelArtifact, CodeArtifact: js.CodeArtifact}
	is, err := s.cfg.Stage.Prepare(ctx, stage.Instance{Deployment: rec, Spec: od, Dir: filepath.Join(dir, "mount")}, env)
	if err != nil {
		return batch.Job{}, err
	}
	if err := os.MkdirAll(js.OutputDir, 0o700); err != nil {
		return batch.Job{}, err
	}
	vars := make([]string, 0, len(is.Env))
	for k, v := range is.Env {
		vars = append(vars, k+"="+v)
	}
	sort.Strings(vars)
	fmt.Fprintf(w, "input %s (%s), output %s\n", input, js.Source.Type, js.OutputDir)
	return batch.Job{
		Name: name, Dir: dir, Input: input, InputType: js.Source.Type, OutputDir: js.OutputDir,
		Settings: js.Settings, Nodes: js.Nodes,
		Worker: batch.Worker{Python: is.Python, Env: vars, CodeDir: is.CodeDir, EntryScript: is.EntryScript,
			ModelDir: is.ModelDir, MLmodel: is.Env["BERTH_MLMODEL"]},
	}, nil
}

// finish records how a job ended: its result, a cancel, or nothing when the server is
// stopping (the job resumes at the next start).
func (s *Service) finish(ctx context.Context, name string, r *run, w io.Writer, res batch.Result, err error) {
	switch {
	case r.canceled.Load():
		fmt.Fprintf(w, "job %s: canceled\n", name)
		s.end(context.WithoutCancel(ctx), name, r, wire.JobCanceled, nil, res.Progress)
	case ctx.Err() != nil:
		fmt.Fprintf(w, "job %s: the server is stopping; the job resumes when it starts again\n", name)
	case err != nil:
		fmt.Fprintf(w, "job %s: failed: %v\n", name, err)
		s.end(ctx, name, r, wire.JobFailed, err, res.Progress)
	case res.Status == wire.JobCompleted:
		fmt.Fprintf(w, "job %s: completed: %d mini-batch(es), %d succeeded, %d failed\n", name, res.Progress.MiniBatches, res.Progress.Succeeded, res.Progress.Failed)
		s.end(ctx, name, r, wire.JobCompleted, nil, res.Progress)
	default:
		var e error = res.Error
		if res.Error == nil {
			e = &diag.Error{Code: diag.UserError, Message: diag.BatchRunFailed}
		}
		fmt.Fprintf(w, "job %s: failed: %v\n", name, e)
		s.end(ctx, name, r, wire.JobFailed, e, res.Progress)
	}
}

// end stores a job's final status.
func (s *Service) end(ctx context.Context, name string, r *run, status string, failure error, p batch.Progress) {
	defer s.observeEnd(name)
	var errJSON json.RawMessage
	if failure != nil {
		de := diag.As(failure)
		if de == nil {
			de = &diag.Error{Code: diag.InternalServerError, Message: failure.Error()}
		}
		errJSON, _ = json.Marshal(de)
	}
	if p.MiniBatches == 0 {
		if last := r.progress.Load(); last != nil {
			p = *last
		}
	}
	prog, _ := json.Marshal(p)
	_, err := s.cfg.Store.UpdateJob(ctx, name, func(j *store.Job) error {
		if wire.JobTerminal(j.Status) {
			return nil // it ended already (canceled before it ran): that stands
		}
		j.Status, j.Error, j.EndedAt = status, errJSON, s.cfg.Now()
		if p.MiniBatches > 0 {
			j.Progress = prog
		}
		return nil
	})
	if err != nil {
		s.log.Warn("batch job: record its end", "job", name, "err", err)
	}
}

// setStatus records a job's status, and its start the first time it leaves NotStarted.
func (s *Service) setStatus(ctx context.Context, name, status string) {
	_, err := s.cfg.Store.UpdateJob(ctx, name, func(j *store.Job) error {
		if wire.JobTerminal(j.Status) || j.Status == wire.JobCancelRequested {
			return nil
		}
		j.Status = status
		if j.StartedAt.IsZero() {
			j.StartedAt = s.cfg.Now()
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("batch job: record status", "job", name, "status", status, "err", err)
	}
}

// progressEvery is how often a running job's counts are written to the store.
const progressEvery = time.Second

// onProgress keeps a job's latest counts in memory, in the store at most every
// progressEvery, and marks it Finalizing once every mini-batch has ended.
func (s *Service) onProgress(ctx context.Context, name string, r *run, p batch.Progress) {
	r.progress.Store(&p)
	s.observe(name, r, p)
	now := s.cfg.Now().UnixNano()
	last := r.saved.Load()
	done := p.Succeeded+p.Failed >= p.MiniBatches
	if !done && time.Duration(now-last) < progressEvery {
		return
	}
	r.saved.Store(now)
	raw, _ := json.Marshal(p)
	_, err := s.cfg.Store.UpdateJob(ctx, name, func(j *store.Job) error {
		j.Progress = raw
		if done && j.Status == wire.JobRunning {
			j.Status = wire.JobFinalizing
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("batch job: record progress", "job", name, "err", err)
	}
}

// computeShare counts the nodes a compute's running jobs use.
type computeShare struct {
	mu      sync.Mutex
	used    int
	changed chan struct{}
}

// acquire waits until the compute has nodes free for a job and takes them.
func (s *Service) acquire(ctx context.Context, compute string, nodes int, w io.Writer) (func(), error) {
	comp, err := s.GetCompute(ctx, compute)
	if err != nil {
		return nil, err // deleted since the job was invoked: ComputeNotFound names the fix
	}
	cs, err := computeSpec(comp)
	if err != nil {
		return nil, err
	}
	limit := max(cs.MaxInstances, nodes)
	s.mu.Lock()
	sh := s.shares[compute]
	if sh == nil {
		sh = &computeShare{changed: make(chan struct{})}
		s.shares[compute] = sh
	}
	s.mu.Unlock()
	waited := false
	for {
		sh.mu.Lock()
		if sh.used+nodes <= limit {
			sh.used += nodes
			sh.mu.Unlock()
			return func() {
				sh.mu.Lock()
				sh.used -= nodes
				close(sh.changed)
				sh.changed = make(chan struct{})
				sh.mu.Unlock()
			}, nil
		}
		ch := sh.changed
		sh.mu.Unlock()
		if !waited {
			fmt.Fprintf(w, "waiting for %d free node(s) of compute %s (max_instances %d, other jobs use the rest)\n", nodes, compute, cs.MaxInstances)
			waited = true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// openDriverLog opens the job's driver log for appending.
func openDriverLog(dir string) (*os.File, error) {
	f, err := logs.OpenAppend(driverLog(dir))
	if err != nil {
		return nil, fmt.Errorf("job folder %s: %w", dir, err)
	}
	return f, nil
}

// driverLog is the file `job stream` follows.
func driverLog(dir string) string { return filepath.Join(dir, "azureml-logs", "70_driver_log.txt") }
