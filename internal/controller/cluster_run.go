package controller

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/berthml/berth/internal/autoscale"
	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
)

// clusterRun is a deployment served by a Kubernetes compute: where it runs, how the
// router treats its requests, and its ready pods as routing entries, kept by a watch.
type clusterRun struct {
	target  runtime.ClusterTarget
	routing fleet.Routing
	gate    table.Gate

	mu        sync.Mutex
	instances []*table.Instance // ready pods; an entry lives as long as its address
	tasks     []clusterTask     // the pod watch and the autoscaler
}

// clusterTask is a background task of a run.
type clusterTask struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// start runs fn in the background as one of r's tasks.
func (r *clusterRun) start(c *Controller, ctx context.Context, fn func(ctx context.Context)) {
	done := make(chan struct{})
	cancel := c.background(ctx, func(ctx context.Context) {
		defer close(done)
		fn(ctx)
	})
	r.mu.Lock()
	r.tasks = append(r.tasks, clusterTask{cancel, done})
	r.mu.Unlock()
}

// stop stops the run's watch and autoscaler and waits for them, so neither publishes
// nor applies anything afterwards. Never called with c.mu held (the watch publishes).
func (r *clusterRun) stop() {
	r.mu.Lock()
	tasks := r.tasks
	r.tasks = nil
	r.mu.Unlock()
	for _, t := range tasks {
		t.cancel()
	}
	for _, t := range tasks {
		<-t.done
	}
}

// setAddrs makes the ready pods addrs, keeping the entry (its slots and in-flight
// count) of every address that stays.
func (r *clusterRun) setAddrs(addrs []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := map[string]*table.Instance{}
	for _, in := range r.instances {
		old[in.Addr] = in
	}
	next := make([]*table.Instance, 0, len(addrs))
	for _, a := range addrs {
		in := old[a]
		if in == nil {
			in = table.NewInstance(a, r.routing.MaxConcurrent)
		}
		next = append(next, in)
	}
	r.instances = next
}

// pauseCluster stops the tasks of k's run, if it has one, and keeps it routed with the
// pods it last saw, until watchCluster replaces it.
func (c *Controller) pauseCluster(k fleet.Key) {
	c.mu.Lock()
	run := c.clusters[k]
	c.mu.Unlock()
	if run != nil {
		run.stop()
	}
}

// watchCluster (re)starts the watch that keeps k's ready pods and routing settings,
// publishing a snapshot each time they change. The new run takes over the previous
// run's pods until its first list. It outlives ctx's cancel (a provision ends; the
// watch goes on) and stops with removeCluster or Close.
func (c *Controller) watchCluster(ctx context.Context, k fleet.Key, t runtime.ClusterTarget, routing fleet.Routing) *clusterRun {
	run := &clusterRun{target: t, routing: routing}
	c.mu.Lock()
	old := c.clusters[k]
	c.clusters[k] = run
	c.mu.Unlock()
	if old != nil {
		old.stop()
		old.mu.Lock()
		run.instances = old.instances
		old.mu.Unlock()
	}
	run.start(c, ctx, func(ctx context.Context) {
		c.cfg.Clusters.Watch(ctx, t, k.Endpoint, k.Deployment, func(addrs []string) {
			run.setAddrs(addrs)
			c.log.Info("cluster pods ready", "endpoint", k.Endpoint, "deployment", k.Deployment, "addresses", strings.Join(addrs, " "))
			c.publish(ctx)
		})
	})
	return run
}

// startScaler runs the autoscaler of a cluster deployment (scale_settings.type:
// target_utilization): it samples the requests the router holds for the deployment
// and applies the replica count the autoscaler decides.
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
	run.start(c, ctx, func(ctx context.Context) {
		autoscale.Run(ctx, st, sample, scale, c.logDecisions(ctx, k))
	})
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
	td.Instances = append(td.Instances, run.instances...)
	run.mu.Unlock()
	return td
}

// removeCluster stops following k's pods and deletes its objects from the cluster,
// also when no run follows them (a failed apply, a restart); a deployment on this
// machine is left alone. The run is forgotten only once its objects are gone.
func (c *Controller) removeCluster(ctx context.Context, k fleet.Key) error {
	c.mu.Lock()
	run := c.clusters[k]
	c.mu.Unlock()
	var t runtime.ClusterTarget
	if run != nil {
		run.stop()
		t = run.target
	} else {
		found, err := c.endpointCluster(ctx, k.Endpoint)
		if err != nil || found == nil {
			if err != nil {
				c.log.Warn("delete cluster objects: find the endpoint's compute", "endpoint", k.Endpoint, "deployment", k.Deployment, "err", err)
			}
			return nil
		}
		t = *found
	}
	if err := c.cfg.Clusters.Delete(ctx, t, k.Endpoint, k.Deployment); err != nil {
		return err
	}
	c.mu.Lock()
	if c.clusters[k] == run {
		delete(c.clusters, k)
	}
	c.mu.Unlock()
	return nil
}

// rewatchCluster routes again, after a restart, to the pods of a Failed deployment on a
// cluster (an update that failed leaves the previous version serving there).
func (c *Controller) rewatchCluster(ctx context.Context, k fleet.Key, rec *store.Deployment) {
	t, err := c.endpointCluster(ctx, k.Endpoint)
	if err != nil || t == nil {
		return
	}
	d, err := spec.DecodeDeployment("stored deployment "+k.Endpoint+"/"+k.Deployment, rec.Spec, nil)
	if err != nil {
		return
	}
	c.watchCluster(ctx, k, *t, c.desired(d, "", nil).Routing)
}
