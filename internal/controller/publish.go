package controller

import (
	"context"

	"github.com/berthml/berth/internal/router/table"
)

// publish builds a routing snapshot from the stored endpoints and the ready instances
// and hands it to the router. Snapshots are built one at a time so that an older one
// never replaces a newer one.
func (c *Controller) publish(ctx context.Context) {
	if c.cfg.Publish == nil {
		return
	}
	c.publishMu.Lock()
	defer c.publishMu.Unlock()
	ctx = context.WithoutCancel(ctx)
	eps, err := c.cfg.Store.ListEndpoints(ctx)
	if err != nil {
		c.log.Error("publish routing table: list endpoints", "err", err)
		return
	}
	deps, err := c.cfg.Store.ListDeployments(ctx, "")
	if err != nil {
		c.log.Error("publish routing table: list deployments", "err", err)
		return
	}
	t := &table.Table{Endpoints: make(map[string]*table.Endpoint, len(eps))}
	for _, ep := range eps {
		t.Endpoints[ep.Name] = &table.Endpoint{
			Name:        ep.Name,
			AuthMode:    "key",
			Keys:        []string{ep.PrimaryKey, ep.SecondaryKey},
			Deployments: map[string]*table.Deployment{},
			Traffic:     ep.Traffic,
			Mirror:      ep.MirrorTraffic,
		}
	}
	for _, d := range deps {
		te := t.Endpoints[d.Endpoint]
		if te == nil {
			continue
		}
		td := &table.Deployment{Name: d.Name}
		c.mu.Lock()
		r := c.runs[deploymentKey{d.Endpoint, d.Name}]
		c.mu.Unlock()
		if r != nil {
			r.mu.Lock()
			td.RequestTimeout = r.requestTimeout
			td.MaxConcurrent = r.maxConcurrent
			td.MaxQueueWait = r.maxQueueWait
			td.Gate = &r.gate
			serving := r.current
			r.mu.Unlock()
			for _, ir := range serving {
				if e := ir.readyEntry(); e != nil {
					td.Instances = append(td.Instances, e)
				}
			}
		}
		te.Deployments[d.Name] = td
	}
	c.cfg.Publish(t)
}
