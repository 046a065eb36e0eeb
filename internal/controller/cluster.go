package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/stage"
	"github.com/berthml/berth/internal/store"
)

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
		var err error
		if cd.ServerURL, cd.Token, err = c.cfg.PodAccess([]string{rec.ModelArtifact, rec.CodeArtifact}, ""); err != nil {
			return cd, err
		}
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
	cd.Requests, cd.Limits = runtime.DefaultInstanceType()
	if r := d.Resources; r != nil && (len(r.Requests) > 0 || len(r.Limits) > 0) {
		cd.Requests, cd.Limits = r.Requests, r.Limits
	}
	return cd
}

// kubernetesInstanceType is an instance type of a Kubernetes compute: the resources its
// pods request and are limited to.
type kubernetesInstanceType struct{ requests, limits map[string]string }

// defaultInstanceType is Azure's defaultinstancetype (runtime.DefaultInstanceType).
func defaultInstanceType() kubernetesInstanceType {
	req, lim := runtime.DefaultInstanceType()
	return kubernetesInstanceType{req, lim}
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
		return defaultInstanceType(), nil
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
		// Applied again (an update, a server restart): the autoscaler's count stands.
		if now, serr := c.cfg.Clusters.State(ctx, *t, rec.Endpoint, rec.Name); serr == nil && now.Replicas >= st.MinInstances && now.Replicas <= st.MaxInstances {
			cd.Replicas = now.Replicas
		}
	}
	if err == nil {
		// The previous run's autoscaler must not apply the previous spec over this one.
		c.pauseCluster(k)
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
	err = c.waitCluster(ctx, *t, rec, time.Duration(d.ReadinessProbe.InitialDelay)*time.Second+clusterReadyBudget)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.finish(ctx, rec, err)
	c.publish(ctx)
	return err
}

// waitCluster waits until every replica of rec is ready, its pods fail, or budget
// passes. Unschedulable pods fail it only when that lasts unschedulableGrace, and a
// cluster that does not answer is asked again until the budget ends.
func (c *Controller) waitCluster(ctx context.Context, t runtime.ClusterTarget, rec *store.Deployment, budget time.Duration) error {
	deadline := time.Now().Add(budget)
	var unschedulable time.Time // when the pods were first seen unschedulable
	var lastErr error
	for {
		st, err := c.cfg.Clusters.State(ctx, t, rec.Endpoint, rec.Name)
		if de := diag.As(st.Failure); de != nil && de.Code == diag.PodUnschedulable {
			// A node may be on its way (a taint lifted, an autoscaler adding one).
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
			lastErr = err
			c.log.Warn("cluster state", "endpoint", rec.Endpoint, "deployment", rec.Name, "err", err)
		case st.Failure != nil:
			return st.Failure
		case st.Ready:
			return nil
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return lastErr
			}
			return &diag.Error{Code: diag.ResourceNotReady, Message: fmt.Sprintf("the pods of %s/%s on compute %s were not all ready after %v: see `kubectl -n %s get pods -l berth.ml/deployment=%s` and `berth online-deployment get-logs -e %s -n %s`", rec.Endpoint, rec.Name, t.Compute, budget, t.Namespace, rec.Name, rec.Endpoint, rec.Name)}
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
