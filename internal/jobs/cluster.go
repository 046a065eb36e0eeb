package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/berthml/berth/internal/batch"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
)

// clusterTarget is a Kubernetes compute's record as the runtime takes it.
func clusterTarget(cs *spec.Compute) runtime.ClusterTarget {
	return runtime.ClusterTarget{Compute: cs.Name, Kubeconfig: []byte(cs.Kubeconfig), Source: cs.KubeconfigFile,
		Namespace: cs.Namespace, Image: cs.Image}
}

// checkClusterDeployment refuses a batch deployment its Kubernetes compute cannot run,
// before anything is stored.
func (s *Service) checkClusterDeployment(cs *spec.Compute, in DeploymentInput) error {
	d := in.Spec
	if s.cfg.ClusterJobs == nil {
		return &diag.Error{Code: diag.BadArgument, Target: "compute", Message: fmt.Sprintf("compute %q is a Kubernetes cluster, and this server runs batch jobs on this machine only", cs.Name)}
	}
	if d.CodeConfiguration == nil || d.CodeConfiguration.ScoringScript == "" {
		return &diag.Error{Code: diag.BadArgument, Target: "code_configuration",
			Message: fmt.Sprintf("compute %q is a Kubernetes cluster: a batch deployment there needs a scoring script (code_configuration.scoring_script); MLflow models without one run on an amlcompute (`berth compute create -n cpu-cluster --type amlcompute`)", cs.Name)}
	}
	if d.Settings.OutputAction == spec.OutputSummaryOnly {
		return &diag.Error{Code: diag.BadArgument, Target: "settings.output_action",
			Message: fmt.Sprintf("compute %q is a Kubernetes cluster: output_action summary_only writes files in the pods, which Berth does not collect yet; use append_row, or an amlcompute", cs.Name)}
	}
	return s.cfg.ClusterJobs.CheckJob(clusterTarget(cs), clusterJob("check", d, in.ModelArtifact, in.CodeArtifact))
}

// clusterJob is what a cluster runs for job name of deployment d; the model's place and
// the server's address are filled in by runOnCluster.
func clusterJob(name string, d *spec.BatchDeployment, model, code string) runtime.ClusterJob {
	req, lim := runtime.DefaultInstanceType()
	j := runtime.ClusterJob{Job: name, Endpoint: d.EndpointName, Deployment: d.Name,
		Nodes: max(d.Resources.InstanceCount, 1), Processes: max(d.Settings.MaxConcurrencyPerInstance, 1),
		Requests: req, Limits: lim, Env: map[string]string{}, ModelArtifact: model, CodeArtifact: code,
		LoggingLevel: d.Settings.LoggingLevel}
	for k, v := range d.Settings.EnvironmentVariables {
		j.Env[k] = v
	}
	if d.CodeConfiguration != nil {
		j.EntryScript = d.CodeConfiguration.ScoringScript
	}
	if d.Model != nil {
		j.ModelBase = filepath.Base(filepath.Clean(d.Model.Path))
	}
	return j
}

// unschedulableGrace is how long a pod may stay unschedulable before the job fails: a
// node that is still starting, or one freeing room, is not a failure yet.
const unschedulableGrace = time.Minute

// runOnCluster runs a job on its Kubernetes compute: the mini-batches go to the pods of
// an Indexed Job, which pull them from this server (batch.Remote), while the job's
// queue, journal and output stay here. A pod that cannot run fails the job with the
// documented code. The Job is deleted when the job ends, and replaced when a job
// resumes.
func (s *Service) runOnCluster(ctx context.Context, name string, js jobSpec, job batch.Job, w io.Writer) (batch.Result, error) {
	comp, err := s.GetCompute(ctx, js.Compute)
	if err != nil {
		return batch.Result{}, err
	}
	cs, err := computeSpec(comp)
	if err != nil {
		return batch.Result{}, err
	}
	t := clusterTarget(cs)
	cj, err := s.clusterJobOf(ctx, name, js)
	if err != nil {
		return batch.Result{}, err
	}
	fmt.Fprintf(w, "job %s: on Kubernetes compute %s: Indexed Job %s with %d pod(s) × %d process(es), image %s\n",
		name, cs.Name, t.Namespace, cj.Nodes, cj.Processes, t.Image)
	// The pods find the job's slots from the moment they exist; pods of an earlier run
	// (still terminating) are refused by the run id.
	cj.Run = uuid.NewString()[:8]
	job.Remote = batch.NewRemote(cj.Run)
	s.mu.Lock()
	if r := s.running[name]; r != nil {
		r.remote.Store(job.Remote)
	}
	s.mu.Unlock()
	jobs := s.cfg.ClusterJobs
	if err := jobs.DeleteJob(ctx, t, name); err != nil { // left by an earlier run of this job
		return batch.Result{}, err
	}
	if err := jobs.ApplyJob(ctx, t, cj); err != nil {
		return batch.Result{}, err
	}
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		s.watchClusterJob(rctx, t, name, w, cancel)
	}()
	res, err := batch.Run(rctx, job)
	cancel(nil)
	<-watched
	if cause := context.Cause(rctx); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // the cluster failed the pods
	}
	if ctx.Err() == nil || s.canceled(name) {
		if derr := jobs.DeleteJob(context.WithoutCancel(ctx), t, name); derr != nil {
			fmt.Fprintf(w, "job %s: could not delete its Indexed Job: %v\n", name, derr)
		}
	}
	return res, err
}

// clusterJobOf is the ClusterJob of a stored job: its deployment, nodes and settings,
// the model's place, and the server's address and token.
func (s *Service) clusterJobOf(ctx context.Context, name string, js jobSpec) (runtime.ClusterJob, error) {
	d, err := decodeDeployment(&store.BatchDeployment{Spec: js.Deployment})
	if err != nil {
		return runtime.ClusterJob{}, err
	}
	cj := clusterJob(name, d, js.ModelArtifact, js.CodeArtifact)
	cj.Nodes, cj.Processes = js.Nodes, js.Settings.MaxConcurrencyPerInstance
	cj.TimeoutSeconds, cj.LoggingLevel = js.Settings.Timeout.Seconds(), js.Settings.LoggingLevel
	if d.Model != nil && d.Model.IsRef() {
		reg, err := s.cfg.Registry.Resolve(ctx, store.KindModel, d.Model.Ref)
		if err != nil {
			return cj, err
		}
		cj.ModelPath, cj.ModelBase = reg.Name+"/"+reg.Version, reg.PathBase
	}
	if s.cfg.PodAccess != nil {
		if cj.ServerURL, cj.Token, err = s.cfg.PodAccess([]string{js.ModelArtifact, js.CodeArtifact}, name); err != nil {
			return cj, err
		}
	}
	return cj, nil
}

// watchClusterJob reads the Job's pods every second until ctx ends, and stops the run
// (stop) with the documented failure when they cannot run.
func (s *Service) watchClusterJob(ctx context.Context, t runtime.ClusterTarget, name string, w io.Writer, stop context.CancelCauseFunc) {
	var unschedulableSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		st, err := s.cfg.ClusterJobs.JobState(ctx, t, name)
		if err == nil && !st.Exists && ctx.Err() == nil {
			gone := fmt.Errorf("the Indexed Job of job %s was deleted from namespace %s of compute %s while the job ran: invoke the job again", name, t.Namespace, t.Compute)
			fmt.Fprintf(w, "job %s: %v\n", name, gone)
			stop(gone)
			return
		}
		if err != nil || st.Failure == nil {
			unschedulableSince = time.Time{}
			continue
		}
		if de := diag.As(st.Failure); de != nil && de.Code == diag.PodUnschedulable {
			if unschedulableSince.IsZero() {
				unschedulableSince = time.Now()
			}
			if time.Since(unschedulableSince) < unschedulableGrace {
				continue
			}
		}
		fmt.Fprintf(w, "job %s: the cluster cannot run its pods: %v\n", name, st.Failure)
		stop(st.Failure)
		return
	}
}

// canceled reports whether a user canceled the running job name.
func (s *Service) canceled(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.running[name]
	return r != nil && r.canceled.Load()
}

// WorkerHandler serves the pods of jobs on Kubernetes computes: POST
// .../jobs/{name}/workers/{node}/{process}/{verb} (batch.Remote's protocol). The caller
// authenticates the request.
func (s *Service) WorkerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		node, err1 := strconv.Atoi(r.PathValue("node"))
		proc, err2 := strconv.Atoi(r.PathValue("process"))
		if err1 != nil || err2 != nil || node < 0 || proc < 0 {
			http.Error(w, "node and process must be numbers", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		var rem *batch.Remote
		if run := s.running[name]; run != nil {
			rem = run.remote.Load()
		}
		s.mu.Unlock()
		if rem == nil {
			// Not running here (ended, or not started yet): a pod of an ended job exits.
			http.Error(w, fmt.Sprintf("job %s is not running on this server", name), http.StatusGone)
			return
		}
		rem.ServeWorker(w, r, node, proc, r.PathValue("verb"))
	})
}

// prepareCluster resolves what the server keeps of a job on a Kubernetes compute: its
// input on disk and its output folder. Model, code and Python are the pods'.
func (s *Service) prepareCluster(ctx context.Context, name string, js jobSpec, w io.Writer) (batch.Job, error) {
	dir := s.jobDir(name)
	input, err := s.materialize(ctx, js.Source, dir, w)
	if err != nil {
		return batch.Job{}, err
	}
	if err := os.MkdirAll(js.OutputDir, 0o700); err != nil {
		return batch.Job{}, err
	}
	fmt.Fprintf(w, "input %s (%s), output %s\n", input, js.Source.Type, js.OutputDir)
	return batch.Job{Name: name, Dir: dir, Input: input, InputType: js.Source.Type, OutputDir: js.OutputDir,
		Settings: js.Settings, Nodes: js.Nodes}, nil
}
