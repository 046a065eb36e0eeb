package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthml/berth/internal/autoscale"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/stage"
	"github.com/berthml/berth/internal/store"
)

// clusterRun is a deployment served by a Kubernetes compute: where it runs, how the
// router treats its requests, and the addresses of its ready pods, kept by a watch.
type clusterRun struct {
	target  runtime.ClusterTarget
	routing fleet.Routing
	gate    table.Gate

	mu      sync.Mutex
	addrs   []string
	cancels []context.CancelFunc // the pod watch and the autoscaler
}

// stop stops the run's watch and autoscaler.
func (r *clusterRun) stop() {
	r.mu.Lock()
	cancels := r.cancels
	r.cancels = nil
	r.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
}

// also adds a background task to the run.
func (r *clusterRun) also(cancel context.CancelFunc) {
	r.mu.Lock()
	r.cancels = append(r.cancels, cancel)
	r.mu.Unlock()
}

// computeOf is the compute an endpoint spec names ("" or "local" for this machine).
func computeOf(ep *spec.Endpoint) string {
	name := strings.TrimPrefix(ep.Compute, "azureml:")
	if name == "local" {
		return ""
	}
	return name
}

// clusterTarget returns the Kubernetes compute named name: ComputeNotFound when there is
// none, BadArgument when it is not a Kubernetes cluster.
func (c *Controller) clusterTarget(ctx context.Context, name string) (*runtime.ClusterTarget, error) {
	if c.cfg.Clusters == nil || c.cfg.Computes == nil {
		return nil, diag.New(diag.BadArgument, "compute %q: this server runs online deployments on this machine only", name)
	}
	rec, err := c.cfg.Computes.GetCompute(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &diag.Error{Code: diag.ComputeNotFound, Target: "compute",
			Message: fmt.Sprintf("compute %q was not found: attach the cluster with `berth compute attach -n %s --type kubernetes --kubeconfig <file>`, or name an existing one (`berth compute list`)", name, name)}
	}
	if err != nil {
		return nil, err
	}
	var cs spec.Compute
	if err := json.Unmarshal(rec.Spec, &cs); err != nil {
		return nil, fmt.Errorf("stored compute %s: %w", name, err)
	}
	if cs.Type != spec.KubernetesComputeType {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "compute",
			Message: fmt.Sprintf("compute %q is an %s, which runs batch jobs: online endpoints run on this machine (no compute) or on an attached Kubernetes compute", name, cs.Type)}
	}
	return &runtime.ClusterTarget{Compute: name, Kubeconfig: []byte(cs.Kubeconfig), Source: cs.KubeconfigFile,
		Namespace: cs.Namespace, Image: cs.Image}, nil
}

// endpointCluster is the Kubernetes compute an endpoint runs on, or nil.
func (c *Controller) endpointCluster(ctx context.Context, endpoint string) (*runtime.ClusterTarget, error) {
	ep, err := c.cfg.Store.GetEndpoint(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	var sp spec.Endpoint
	if err := json.Unmarshal(ep.Spec, &sp); err != nil {
		return nil, fmt.Errorf("stored endpoint %s: %w", endpoint, err)
	}
	if name := computeOf(&sp); name != "" {
		return c.clusterTarget(ctx, name)
	}
	return nil, nil
}

// clusterDeployment is d as a cluster runs it: the model laid out as stage lays it out
// on this machine, and the server address and token its storage initializer uses.
func (c *Controller) clusterDeployment(ctx context.Context, rec *store.Deployment, d *spec.Deployment) (runtime.ClusterDeployment, error) {
	cd := baseClusterDeployment(rec, d)
	if d.Model != nil {
		cd.ModelBase = filepath.Base(filepath.Clean(d.Model.Path))
		if d.Model.IsRef() {
			reg, err := c.cfg.Registry.Resolve(ctx, store.KindModel, d.Model.Ref)
			if err != nil {
				return cd, err
			}
			cd.ModelPath, cd.ModelBase = reg.Name+"/"+reg.Version, reg.PathBase
		}
	}
	if c.cfg.PodAccess != nil {
		cd.ServerURL, cd.Token = c.cfg.PodAccess()
	}
	return cd, nil
}

// baseClusterDeployment is what d says of itself as a cluster runs it.
func baseClusterDeployment(rec *store.Deployment, d *spec.Deployment) runtime.ClusterDeployment {
	probe := func(p spec.Probe) runtime.ClusterProbe {
		return runtime.ClusterProbe{InitialDelay: p.InitialDelay, Period: p.Period, Timeout: p.Timeout,
			SuccessThreshold: p.SuccessThreshold, FailureThreshold: p.FailureThreshold}
	}
	cd := runtime.ClusterDeployment{Endpoint: rec.Endpoint, Deployment: rec.Name, Replicas: max(d.InstanceCount, 1),
		Liveness: probe(d.LivenessProbe), Readiness: probe(d.ReadinessProbe), Env: map[string]string{},
		WorkerCount: stage.WorkerCount(d), ModelArtifact: rec.ModelArtifact, CodeArtifact: rec.CodeArtifact}
	for k, v := range d.EnvironmentVariables {
		cd.Env[k] = v
	}
	if d.CodeConfiguration != nil {
		cd.EntryScript = d.CodeConfiguration.ScoringScript
	}
	cd.Requests, cd.Limits = defaultInstanceType.requests, defaultInstanceType.limits
	if r := d.Resources; r != nil && (len(r.Requests) > 0 || len(r.Limits) > 0) {
		cd.Requests, cd.Limits = r.Requests, r.Limits
	}
	return cd
}

// kubernetesInstanceType is an instance type of a Kubernetes compute: the resources its
// pods request and are limited to.
type kubernetesInstanceType struct{ requests, limits map[string]string }

// defaultInstanceType is Azure's defaultinstancetype, which a Kubernetes compute has
// from the start (spec §2.5): requests cpu 100m, memory 2Gi; limits cpu 2, memory 2Gi.
var defaultInstanceType = kubernetesInstanceType{
	requests: map[string]string{"cpu": "100m", "memory": "2Gi"},
	limits:   map[string]string{"cpu": "2", "memory": "2Gi"},
}

// checkCluster refuses, at admission, a deployment its Kubernetes compute cannot run:
// an instance type the cluster lacks, autoscale settings out of range, resources or
// probes the API server would reject.
func (c *Controller) checkCluster(t runtime.ClusterTarget, d *spec.Deployment) error {
	if _, err := clusterResources(t.Compute, d); err != nil {
		return err
	}
	if st, ok := d.ScaleSettings.Autoscale(); ok {
		if err := st.Validate(); err != nil {
			return &diag.Error{Code: diag.BadArgument, Target: "scale_settings", Message: err.Error()}
		}
	}
	return c.cfg.Clusters.Check(t, baseClusterDeployment(&store.Deployment{Endpoint: d.EndpointName, Name: d.Name}, d))
}

// clusterResources checks a deployment's instance_type on a Kubernetes compute: the
// default instance type, or resources given outright. A managed SKU names no instance
// type of the cluster.
func clusterResources(compute string, d *spec.Deployment) (kubernetesInstanceType, error) {
	if r := d.Resources; r != nil && (len(r.Requests) > 0 || len(r.Limits) > 0) {
		return kubernetesInstanceType{r.Requests, r.Limits}, nil
	}
	switch strings.ToLower(d.InstanceType) {
	case "", "defaultinstancetype":
		return defaultInstanceType, nil
	}
	return kubernetesInstanceType{}, &diag.Error{Code: diag.BadArgument, Target: "instance_type",
		Message: fmt.Sprintf("instance_type %q is not an instance type of Kubernetes compute %s: use defaultinstancetype (requests cpu 100m, memory 2Gi; limits cpu 2, memory 2Gi), or give resources.requests and resources.limits", d.InstanceType, compute)}
}

// provisionCluster applies a deployment to its Kubernetes compute and waits until every
// replica is ready (Succeeded, its pods routed) or its pods fail (Failed with the
// documented code read from them).
func (c *Controller) provisionCluster(ctx context.Context, t *runtime.ClusterTarget, rec *store.Deployment, d *spec.Deployment) error {
	k := fleet.Key{Endpoint: rec.Endpoint, Deployment: rec.Name}
	cd, err := c.clusterDeployment(ctx, rec, d)
	st, autoscaled := d.ScaleSettings.Autoscale()
	if autoscaled && err == nil {
		if err = st.Validate(); err != nil {
			err = &diag.Error{Code: diag.BadArgument, Target: "scale_settings", Message: err.Error()}
		}
		cd.Replicas = min(max(cd.Replicas, st.MinInstances), st.MaxInstances)
	}
	if err == nil {
		err = c.cfg.Clusters.Apply(ctx, *t, cd)
	}
	if err != nil {
		c.finish(ctx, rec, err)
		return err
	}
	run := c.watchCluster(ctx, k, *t, c.desired(d, "", nil).Routing)
	if autoscaled {
		c.startScaler(ctx, k, run, st, cd)
	}
	budget := time.Duration(d.ReadinessProbe.InitialDelay)*time.Second + clusterReadyBudget
	deadline := time.Now().Add(budget)
	var unschedulable time.Time // when the pods were first seen unschedulable
	for {
		st, err := c.cfg.Clusters.State(ctx, *t, rec.Endpoint, rec.Name)
		if de := diag.As(st.Failure); de != nil && de.Code == diag.PodUnschedulable {
			// A node may be on its way (a taint lifted, an autoscaler adding one):
			// unschedulable fails the deployment only when it lasts.
			if unschedulable.IsZero() {
				unschedulable = time.Now()
				c.log.Info("cluster pods unschedulable, waiting", "endpoint", rec.Endpoint, "deployment", rec.Name, "why", de.Message)
			}
			if time.Since(unschedulable) < unschedulableGrace {
				st.Failure = nil
			}
		} else {
			unschedulable = time.Time{}
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			c.finish(ctx, rec, err)
			return err
		case st.Failure != nil:
			c.finish(ctx, rec, st.Failure)
			return st.Failure
		case st.Ready:
			c.finish(ctx, rec, nil)
			c.publish(ctx)
			return nil
		case time.Now().After(deadline):
			err := &diag.Error{Code: diag.ResourceNotReady, Message: fmt.Sprintf("the pods of %s/%s on compute %s were not all ready after %v: see `kubectl -n %s get pods -l berth.ml/deployment=%s` and `berth online-deployment get-logs -e %s -n %s`", rec.Endpoint, rec.Name, t.Compute, budget, t.Namespace, rec.Name, rec.Endpoint, rec.Name)}
			c.finish(ctx, rec, err)
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// unschedulableGrace is how long pods may stay unschedulable before the deployment
// fails with PodUnschedulable.
const unschedulableGrace = time.Minute

// clusterReadyBudget is how long a cluster's pods may take to be ready, beyond the
// readiness probe's initial delay (image pulls and scheduling included).
const clusterReadyBudget = 10 * time.Minute

// watchCluster (re)starts the watch that keeps k's ready pod addresses and routing
// settings, publishing a snapshot each time they change. It outlives ctx's cancel (a
// provision ends; the watch goes on) and stops with removeCluster or Close.
func (c *Controller) watchCluster(ctx context.Context, k fleet.Key, t runtime.ClusterTarget, routing fleet.Routing) *clusterRun {
	run := &clusterRun{target: t, routing: routing}
	run.also(c.background(ctx, func(ctx context.Context) {
		c.cfg.Clusters.Watch(ctx, t, k.Endpoint, k.Deployment, func(addrs []string) {
			run.mu.Lock()
			run.addrs = addrs
			run.mu.Unlock()
			c.log.Info("cluster pods ready", "endpoint", k.Endpoint, "deployment", k.Deployment, "addresses", strings.Join(addrs, " "))
			c.publish(ctx)
		})
	}))
	c.mu.Lock()
	old := c.clusters[k]
	c.clusters[k] = run
	c.mu.Unlock()
	if old != nil {
		old.stop()
	}
	return run
}

// startScaler runs the autoscaler of a cluster deployment (scale_settings.type:
// target_utilization): it samples the requests the router holds for the deployment,
// applies the replica count the autoscaler decides, and logs every decision with its
// inputs (changes at info level, the others at debug).
func (c *Controller) startScaler(ctx context.Context, k fleet.Key, run *clusterRun, st autoscale.Settings, cd runtime.ClusterDeployment) {
	var replicas atomic.Int64
	replicas.Store(int64(cd.Replicas))
	per := max(run.routing.MaxConcurrent, 1)
	sample := func() autoscale.Sample {
		return loadSample(int(replicas.Load()), per, int(run.gate.InFlight.Load()))
	}
	scale := func(ctx context.Context, n int) error {
		next := cd
		next.Replicas = n
		if err := c.cfg.Clusters.Apply(ctx, run.target, next); err != nil {
			return err
		}
		replicas.Store(int64(n))
		return nil
	}
	run.also(c.background(ctx, func(ctx context.Context) {
		autoscale.Run(ctx, st, sample, scale, c.logDecisions(ctx, k))
	}))
}

// clusterTable is the routing entry of a deployment served by a cluster, nil for one
// served on this machine.
func (c *Controller) clusterTable(k fleet.Key) *table.Deployment {
	c.mu.Lock()
	run := c.clusters[k]
	c.mu.Unlock()
	if run == nil {
		return nil
	}
	td := &table.Deployment{Name: k.Deployment, RequestTimeout: run.routing.RequestTimeout,
		MaxConcurrent: run.routing.MaxConcurrent, MaxQueueWait: run.routing.MaxQueueWait, Gate: &run.gate}
	run.mu.Lock()
	for _, a := range run.addrs {
		td.Instances = append(td.Instances, table.NewInstance(a, run.routing.MaxConcurrent))
	}
	run.mu.Unlock()
	return td
}

// removeCluster stops following k's pods and deletes its objects from the cluster; a
// deployment on this machine is left alone.
func (c *Controller) removeCluster(ctx context.Context, k fleet.Key) error {
	c.mu.Lock()
	run := c.clusters[k]
	delete(c.clusters, k)
	c.mu.Unlock()
	if run == nil {
		return nil
	}
	run.stop()
	return c.cfg.Clusters.Delete(ctx, run.target, k.Endpoint, k.Deployment)
}

// ClusterLogs returns the container logs of a deployment served by a Kubernetes
// compute, read from its pods; ok is false for a deployment served on this machine.
func (c *Controller) ClusterLogs(ctx context.Context, endpoint, name, container string, lines int) (data []byte, ok bool, err error) {
	t, err := c.endpointCluster(ctx, endpoint)
	if err != nil || t == nil {
		return nil, false, err
	}
	data, err = c.cfg.Clusters.Logs(ctx, *t, endpoint, name, container, lines)
	return data, true, err
}
