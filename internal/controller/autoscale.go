package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/berthml/berth/internal/autoscale"
	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/spec"
)

// processScaler is the autoscaler of a deployment on this machine: the count it last
// applied (the fleet's target while it runs) and how to stop it.
type processScaler struct {
	settings autoscale.Settings
	gen      string
	count    atomic.Int64
	stop     context.CancelFunc
	done     chan struct{} // closed when the scaler has returned
}

// scaledCount is the instance count of k: its autoscaler's when it has one, else what
// the spec asks for.
func (c *Controller) scaledCount(k fleet.Key, d *spec.Deployment) int {
	c.mu.Lock()
	ps := c.scalers[k]
	c.mu.Unlock()
	if ps != nil {
		return int(ps.count.Load())
	}
	if st, ok := d.ScaleSettings.Autoscale(); ok {
		return min(max(d.InstanceCount, st.MinInstances), st.MaxInstances)
	}
	return max(d.InstanceCount, 1)
}

// ensureScaler starts the autoscaler of a deployment on this machine whose spec asks
// for target_utilization scaling, or keeps the one already running for the same
// generation and settings; it stops one the spec no longer asks for.
func (c *Controller) ensureScaler(ctx context.Context, k fleet.Key, d *spec.Deployment, gen string, count int) {
	st, ok := d.ScaleSettings.Autoscale()
	c.mu.Lock()
	old := c.scalers[k]
	if old != nil && ok && old.gen == gen && old.settings == st {
		c.mu.Unlock()
		return
	}
	delete(c.scalers, k)
	c.mu.Unlock()
	if old != nil {
		old.halt()
	}
	if !ok || st.Validate() != nil {
		return
	}
	ps := &processScaler{settings: st, gen: gen, done: make(chan struct{})}
	ps.count.Store(int64(count))
	sample := func() autoscale.Sample {
		per, total := 1, 0
		if td := c.fleet.Table(k); td != nil {
			per = max(td.MaxConcurrent, 1)
			if td.Gate != nil {
				total = int(td.Gate.InFlight.Load())
			}
		}
		return loadSample(int(ps.count.Load()), per, total)
	}
	scale := func(ctx context.Context, n int) error {
		// The same generation: the fleet scales in place. Not while another provision
		// runs (a user's update, or the previous scale): the autoscaler decides again.
		if !c.startProvisionIf(ctx, k, gen, func() { ps.count.Store(int64(n)) }) {
			return errScaleBusy
		}
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Err() != nil || c.gens[k] != gen {
		return // the provision was cancelled (a delete) or superseded: no scaler for it
	}
	ps.stop = c.background(ctx, func(ctx context.Context) {
		defer close(ps.done)
		autoscale.Run(ctx, st, sample, scale, c.logDecisions(ctx, k))
	})
	c.scalers[k] = ps
}

// errScaleBusy is a scale decision not applied because the deployment is being
// provisioned; the next poll decides again.
var errScaleBusy = errors.New("the deployment is being updated or scaled: the next poll decides again")

// stopScaler stops k's autoscaler, if it has one.
func (c *Controller) stopScaler(k fleet.Key) {
	c.mu.Lock()
	ps := c.scalers[k]
	delete(c.scalers, k)
	c.mu.Unlock()
	if ps != nil {
		ps.halt()
	}
}

// halt stops the scaler and waits for it, so it starts no provision afterwards.
func (ps *processScaler) halt() {
	ps.stop()
	<-ps.done
}

// loadSample is the autoscaler's view of a deployment of n instances (or replicas) that
// run per requests at once each, while the router holds total of its requests (running
// or waiting for a free instance).
func loadSample(n, per, total int) autoscale.Sample {
	running := min(total, n*per)
	return autoscale.Sample{Replicas: n, Busy: (running + per - 1) / per, Queued: total - running}
}

// logDecisions logs k's autoscaling decisions with their inputs: changes at info level,
// the others at debug.
func (c *Controller) logDecisions(ctx context.Context, k fleet.Key) func(autoscale.Decision) {
	return func(d autoscale.Decision) {
		level := slog.LevelDebug
		if d.Changed() || d.Err != nil {
			level = slog.LevelInfo
		}
		c.log.Log(ctx, level, "autoscale", "endpoint", k.Endpoint, "deployment", k.Deployment,
			"instances", d.Replicas, "decision", d.Reason, "err", d.Err)
	}
}
