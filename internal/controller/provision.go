package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/logs"
	"github.com/berthml/berth/internal/rollout"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/stage"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// startProvision rolls the stored spec of a deployment out in the background,
// cancelling a provision of the same deployment still in progress.
func (c *Controller) startProvision(ctx context.Context, k fleet.Key, gen string, op int64) {
	c.startRun(ctx, k, op, func(ctx context.Context) error { return c.provision(ctx, k, gen) })
}

// startRun runs a rollout of k in the background (a provision, or a restore of its
// serving version), cancelling and then waiting for the one still in progress.
func (c *Controller) startRun(ctx context.Context, k fleet.Key, op int64, run func(context.Context) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.provisions[k]
	if old != nil {
		old.cancel()
	}
	p := &provisionRun{done: make(chan struct{})}
	p.cancel = c.background(ctx, func(ctx context.Context) {
		defer close(p.done)
		if old != nil {
			<-old.done // one provision of a deployment at a time
		}
		start := time.Now()
		err := run(ctx)
		if !errors.Is(err, context.Canceled) {
			c.operated(ctx, OpProvision, k, start, err)
		}
		c.mu.Lock()
		if c.provisions[k] == p {
			delete(c.provisions, k)
		}
		c.mu.Unlock()
		if errors.Is(err, context.Canceled) {
			c.finishOp(ctx, op, opCanceled, err)
			return
		}
		c.endOp(ctx, op, err)
	})
	c.provisions[k] = p
}

// startProvisionIf starts a provision of generation gen when gen is still k's and no
// provision of k runs, calling before first, in the same critical section; it reports
// whether it started one.
func (c *Controller) startProvisionIf(ctx context.Context, k fleet.Key, gen string, before func()) bool {
	c.mu.Lock()
	if c.gens[k] != gen || c.provisions[k] != nil {
		c.mu.Unlock()
		return false
	}
	before()
	c.mu.Unlock()
	c.startProvision(ctx, k, gen, 0)
	return true
}

// provisionRun is a provision in progress.
type provisionRun struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the provision has returned
}

// provision builds the deployment's environment and hands its desired state to the
// fleet; the deployment ends Succeeded, or Failed with the reason while the instances
// that served before go on serving.
func (c *Controller) provision(ctx context.Context, k fleet.Key, gen string) error {
	if err := ctx.Err(); err != nil {
		return err // superseded before it began
	}
	rec, err := c.cfg.Store.GetDeployment(ctx, k.Endpoint, k.Deployment)
	if err != nil {
		c.log.Warn("provision: read deployment", "endpoint", k.Endpoint, "deployment", k.Deployment, "err", err)
		return err
	}
	d, err := spec.DecodeDeployment("stored deployment "+k.Endpoint+"/"+k.Deployment, rec.Spec, nil)
	if err != nil {
		c.finish(ctx, rec, err)
		return err
	}
	t, err := c.endpointCluster(ctx, k.Endpoint)
	if err != nil {
		c.finish(ctx, rec, err)
		return err
	}
	if t != nil {
		return c.provisionCluster(ctx, t, rec, d)
	}
	return c.rollOutHere(ctx, k, gen, rec, d, outcome{
		failed:    func(ctx context.Context, err error) { c.finish(ctx, rec, err) },
		succeeded: func(ctx context.Context, python string) { c.succeed(ctx, rec, python) },
		scale:     true,
	})
}

// outcome is what a rollout on this machine does when it ends: a provision records it in
// the store and starts the autoscaler; a restore after a restart only logs it.
type outcome struct {
	failed    func(ctx context.Context, err error)
	succeeded func(ctx context.Context, python string) // python: the interpreter to keep, or ""
	scale     bool
	// restore: the version rolled out is not the deployment's current one, so its
	// warnings and phases are not shown as the deployment's.
	restore bool
}

// rollOutHere builds the environment of rec's version and hands its desired state to the
// fleet on this machine; the instances that served before go on serving if it fails.
func (c *Controller) rollOutHere(ctx context.Context, k fleet.Key, gen string, rec *store.Deployment, d *spec.Deployment, end outcome) error {
	envStart := time.Now()
	env, err := c.stage.EnvironmentOn(ctx, d, pastOf(rec), c.fleet.Progress(k))
	envEnd := time.Now()
	envPhase := phase(PhaseEnvironment, envStart, envEnd)
	if !end.restore {
		c.phases.set(k, []wire.Phase{envPhase})
		c.fleet.SetWarnings(k, env.Warnings)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.failedEnvironmentLog(k, env.Log, env.BuildLog, err)
		end.failed(ctx, err)
		return err
	}
	want := c.desired(d, gen, func(ctx context.Context, index int) (runtime.InstanceSpec, error) {
		return c.stage.Prepare(ctx, stage.Instance{Deployment: rec, Spec: d, Index: index, Dir: c.instanceDir(k, index)}, env)
	})
	count := c.scaledCount(k, d)
	want.Target.Count = count
	want.Phases = map[string]float64{"environment_ms": msSince(envStart)}
	routed := false
	want.OnRouted = func(ctx context.Context) {
		// The new set serves: the deployment is Succeeded while the old set drains.
		routed = true
		end.succeeded(ctx, env.Base)
	}
	err = c.fleet.Apply(ctx, k, want)
	if ctx.Err() != nil {
		return ctx.Err() // superseded by a newer rollout or a delete
	}
	if !end.restore {
		c.phases.set(k, append([]wire.Phase{envPhase}, c.instancePhases(k, envEnd)...))
	}
	switch {
	case err != nil:
		end.failed(ctx, err)
	case !routed:
		end.succeeded(ctx, env.Base)
	}
	if err == nil && end.scale {
		c.ensureScaler(ctx, k, d, gen, count)
	}
	c.publish(ctx)
	return err
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// desired is the fleet's view of a deployment spec.
func (c *Controller) desired(d *spec.Deployment, gen string, prepare func(context.Context, int) (runtime.InstanceSpec, error)) fleet.Desired {
	probe := func(p spec.Probe) fleet.Probe {
		sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
		return fleet.Probe{InitialDelay: sec(p.InitialDelay), Period: sec(p.Period), Timeout: sec(p.Timeout),
			FailureThreshold: p.FailureThreshold, SuccessThreshold: p.SuccessThreshold}
	}
	rs := d.RequestSettings
	return fleet.Desired{
		Target:    rollout.Target{Generation: gen, Count: max(d.InstanceCount, 1)},
		Prepare:   prepare,
		Readiness: probe(d.ReadinessProbe),
		Liveness:  probe(d.LivenessProbe),
		Routing: fleet.Routing{
			RequestTimeout: time.Duration(rs.RequestTimeoutMs) * time.Millisecond,
			MaxConcurrent:  rs.MaxConcurrentRequestsPerInstance,
			MaxQueueWait:   time.Duration(rs.MaxQueueWaitMs) * time.Millisecond,
		},
	}
}

// finish records the outcome of a rollout.
func (c *Controller) finish(ctx context.Context, rec *store.Deployment, failure error) {
	c.record(ctx, rec, failure, nil)
}

// succeed records a rollout on this machine that succeeded on the interpreter python
// (absolute; "" records none), which a restart then builds the deployment on again, and
// its version as the one serving (store.Deployment.Serving).
func (c *Controller) succeed(ctx context.Context, rec *store.Deployment, python string) {
	c.record(ctx, rec, nil, &store.Served{Python: python})
}

// record stores a rollout's outcome and, with served, the version serving now.
func (c *Controller) record(ctx context.Context, rec *store.Deployment, failure error, served *store.Served) {
	var raw json.RawMessage
	state := wire.StateSucceeded
	if failure != nil {
		state = wire.StateFailed
		de := diag.As(failure)
		if de == nil {
			de = &diag.Error{Code: diag.InternalServerError, Message: failure.Error()}
		}
		raw, _ = json.Marshal(de)
		c.log.Info("deployment failed", "endpoint", rec.Endpoint, "deployment", rec.Name, "code", de.Code)
	}
	allTraffic := false
	_, err := c.cfg.Store.UpdateDeployment(ctx, rec.Endpoint, rec.Name, func(r *store.Deployment) error {
		if superseded(rec, r) {
			return errSuperseded // the newer rollout records its own outcome
		}
		r.State, r.Error = state, raw
		if served != nil {
			if served.Python != "" {
				r.Python = served.Python
			}
			v := store.Served{Spec: r.Spec, ModelArtifact: r.ModelArtifact, CodeArtifact: r.CodeArtifact, Python: r.Python}
			r.Serving, _ = json.Marshal(v)
		}
		allTraffic = r.AllTraffic && failure == nil
		if failure != nil {
			r.AllTraffic = false // the create it came with failed
		}
		return nil
	})
	if errors.Is(err, errSuperseded) {
		c.log.Debug("rollout superseded before its outcome was recorded", "endpoint", rec.Endpoint, "deployment", rec.Name)
		return
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.log.Warn("record deployment state", "endpoint", rec.Endpoint, "deployment", rec.Name, "err", err)
	}
	if allTraffic {
		c.applyAllTraffic(ctx, rec.Endpoint, rec.Name)
	}
}

// errSuperseded aborts recording the outcome of a rollout that a newer one replaced.
var errSuperseded = errors.New("superseded by a newer rollout")

// superseded reports whether the stored deployment now is another rollout than the one
// that read rec: an update, a replace or a delete began after it (a re-provision after a
// restart, or an autoscale, runs while the deployment is Succeeded, so an update is not
// refused meanwhile).
func superseded(rec, now *store.Deployment) bool {
	return !bytes.Equal(rec.Spec, now.Spec) || now.ModelArtifact != rec.ModelArtifact || now.CodeArtifact != rec.CodeArtifact ||
		(inProgress(now.State) && now.State != rec.State)
}

// applyAllTraffic gives a deployment that succeeded the 100% of its endpoint's traffic
// its create asked for, then clears the stored intent. Both steps are idempotent: after
// a crash in between, the next successful provision (Recover runs one) applies it again.
func (c *Controller) applyAllTraffic(ctx context.Context, endpoint, name string) {
	if _, err := c.cfg.Store.UpdateEndpoint(ctx, endpoint, func(e *store.Endpoint) error {
		for dep := range e.Traffic {
			e.Traffic[dep] = 0
		}
		if e.Traffic == nil {
			e.Traffic = map[string]int{}
		}
		e.Traffic[name] = 100
		delete(e.MirrorTraffic, name) // live traffic and mirror traffic exclude each other
		return nil
	}); err != nil {
		c.log.Warn("apply --all-traffic", "endpoint", endpoint, "deployment", name, "err", err)
		return
	}
	c.publish(ctx)
	if _, err := c.cfg.Store.UpdateDeployment(ctx, endpoint, name, func(r *store.Deployment) error {
		r.AllTraffic = false
		return nil
	}); err != nil && !errors.Is(err, store.ErrNotFound) {
		c.log.Warn("clear --all-traffic", "endpoint", endpoint, "deployment", name, "err", err)
	}
}

// crashLoop marks a deployment Failed with DeploymentCrashLoopBackOff, unless a
// rollout in progress will report its own outcome.
func (c *Controller) crashLoop(ctx context.Context, k fleet.Key, de *diag.Error) {
	raw, _ := json.Marshal(de)
	if _, err := c.cfg.Store.UpdateDeployment(ctx, k.Endpoint, k.Deployment, func(r *store.Deployment) error {
		if r.State == wire.StateSucceeded || r.State == wire.StateFailed {
			r.State, r.Error = wire.StateFailed, raw
		}
		return nil
	}); err != nil && !errors.Is(err, store.ErrNotFound) {
		c.log.Warn("record crash loop", "endpoint", k.Endpoint, "deployment", k.Deployment, "err", err)
	}
}

// stopDeployment cancels a deployment's provision, stops its instances and forgets it.
func (c *Controller) stopDeployment(ctx context.Context, k fleet.Key) {
	c.stopScaler(k) // first: a scale starts provisions
	c.mu.Lock()
	p := c.provisions[k]
	delete(c.provisions, k)
	delete(c.gens, k)
	c.mu.Unlock()
	if p != nil {
		p.cancel()
		<-p.done // no provision of it starts instances after this
	}
	c.stopScaler(k) // again: the provision may have started one before it saw the cancel
	c.fleet.Remove(ctx, k)
	c.phases.forget(k)
}

// DeleteDeployment stops the deployment's instances and deletes it. A deployment that
// still has live traffic is not deleted.
func (c *Controller) DeleteDeployment(ctx context.Context, endpoint, name string) error {
	ep, err := c.GetEndpoint(ctx, endpoint)
	if err != nil {
		return err
	}
	if _, err := c.GetDeployment(ctx, endpoint, name); err != nil {
		return err
	}
	if err := c.busy(ctx, endpoint); err != nil {
		return err
	}
	if w := ep.Traffic[name]; w > 0 {
		return &diag.Error{Code: diag.BadArgument, Target: name,
			Message: fmt.Sprintf("deployment %q still receives %d%% of the traffic of endpoint %q: move it elsewhere first, e.g. `berth online-endpoint update -n %s --traffic \"%s=0 ...\"`", name, w, endpoint, endpoint, name)}
	}
	op := c.startOp(ctx, endpoint, name, opDelete)
	k, start := fleet.Key{Endpoint: endpoint, Deployment: name}, time.Now()
	err = c.deleteDeployment(ctx, k)
	c.operated(ctx, OpDelete, k, start, err)
	c.endOp(ctx, op, err)
	return err
}

func (c *Controller) deleteDeployment(ctx context.Context, k fleet.Key) error {
	if _, err := c.cfg.Store.UpdateDeployment(ctx, k.Endpoint, k.Deployment, func(r *store.Deployment) error {
		r.State = wire.StateDeleting
		return nil
	}); err != nil {
		return err
	}
	c.stopDeployment(ctx, k)
	if err := c.removeCluster(ctx, k); err != nil {
		// Not left Deleting (that would refuse every later operation): Failed, with why,
		// so the delete can be asked again.
		de := &diag.Error{Code: diag.KubernetesUnaccessible, Message: fmt.Sprintf("the deployment's objects could not be deleted from its cluster: %v. Delete it again once the cluster answers", err)}
		if d := diag.As(err); d != nil {
			de.Code = d.Code
		}
		raw, _ := json.Marshal(de)
		c.cfg.Store.UpdateDeployment(ctx, k.Endpoint, k.Deployment, func(r *store.Deployment) error {
			r.State, r.Error = wire.StateFailed, raw
			return nil
		})
		return de
	}
	if err := c.cfg.Store.DeleteDeployment(ctx, k.Endpoint, k.Deployment); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// Zero-weight entries of a deleted deployment leave the traffic map.
	if _, err := c.cfg.Store.UpdateEndpoint(ctx, k.Endpoint, func(e *store.Endpoint) error {
		delete(e.Traffic, k.Deployment)
		delete(e.MirrorTraffic, k.Deployment)
		return nil
	}); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	c.removeFiles(k)
	c.publish(ctx)
	return nil
}

// Recover re-provisions every deployment found in the store, as after a restart.
// Endpoints and deployments left in Deleting are deleted.
func (c *Controller) Recover(ctx context.Context) error {
	eps, err := c.cfg.Store.ListEndpoints(ctx)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	for _, ep := range eps {
		if ep.State == wire.StateDeleting {
			if err := c.DeleteEndpoint(ctx, ep.Name); err != nil {
				c.log.Warn("recover: finish deleting endpoint", "endpoint", ep.Name, "err", err)
			}
		}
	}
	deps, err := c.cfg.Store.ListDeployments(ctx, "")
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	for _, d := range deps {
		k := fleet.Key{Endpoint: d.Endpoint, Deployment: d.Name}
		switch d.State {
		case wire.StateDeleting:
			if err := c.removeCluster(ctx, k); err != nil {
				c.log.Warn("recover: delete the deployment's cluster objects", "endpoint", d.Endpoint, "deployment", d.Name, "err", err)
			}
			if err := c.cfg.Store.DeleteDeployment(ctx, d.Endpoint, d.Name); err != nil {
				c.log.Warn("recover: finish deleting deployment", "endpoint", d.Endpoint, "deployment", d.Name, "err", err)
			}
			c.removeFiles(k)
		case wire.StateFailed:
			// The error stays for the user to read. What served before the failed update
			// serves again: here the version that last succeeded, on a cluster the pods
			// of the last version that ran.
			c.rewatchCluster(ctx, k, d)
			c.restoreServing(ctx, k, d)
		default:
			c.startProvision(ctx, k, c.newGeneration(k, false), 0)
		}
	}
	c.publish(ctx)
	return nil
}

// InstanceStatus is the live state of one instance.
type InstanceStatus = fleet.InstanceStatus

// Instances returns the live state of the deployment's instances.
func (c *Controller) Instances(endpoint, name string) []InstanceStatus {
	return c.fleet.Instances(fleet.Key{Endpoint: endpoint, Deployment: name})
}

// Rollout returns the last step of the deployment's rollout in progress and the
// warnings of its environment build.
func (c *Controller) Rollout(endpoint, name string) (progress string, warnings []string) {
	return c.fleet.Rollout(fleet.Key{Endpoint: endpoint, Deployment: name})
}

// failedEnvironmentLog keeps the environment build's output where `get-logs --container
// storage-initializer` finds it when no instance could be prepared.
func (c *Controller) failedEnvironmentLog(k fleet.Key, envLog []byte, buildLog string, failure error) {
	f, err := logs.OpenAppend(c.logFile(k, c.fleet.ReserveIndex(k), "storage-initializer"))
	if err != nil {
		return
	}
	defer f.Close()
	w := logs.NewTimestamped(f, c.cfg.Now)
	w.Write(envLog)
	what := "environment build failed"
	if de := diag.As(failure); de != nil && de.Code == diag.SecretsInjectionError {
		what = "secret injection failed"
	}
	fmt.Fprintf(w, "%s: %v\n", what, failure)
	if buildLog != "" {
		if tail, err := logs.Tail(buildLog, 20); err == nil {
			fmt.Fprintf(w, "tail of the build log:\n%s\n", strings.TrimRight(string(tail), "\n"))
		}
	}
}
