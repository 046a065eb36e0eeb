package controller

import (
	"context"
	"encoding/json"

	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
)

// publish builds a routing snapshot from the stored endpoints and the fleet's ready
// instances and hands it to the router. Snapshots are built one at a time so that an
// older one never replaces a newer one; a cancelled ctx still publishes, because the
// router must not keep routing to stopped instances.
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
		te := &table.Endpoint{
			Name:        ep.Name,
			AuthMode:    tableAuthMode(AuthMode(ep)),
			Keys:        []string{ep.PrimaryKey, ep.SecondaryKey},
			Deployments: map[string]*table.Deployment{},
			Traffic:     ep.Traffic,
			Mirror:      ep.MirrorTraffic,
		}
		if onCluster(ep) {
			p := table.KubernetesPolicy()
			te.Policy = &p
		}
		if ep.Local {
			// Azure's local endpoints take requests without a key.
			te.AuthMode, te.Keys = table.AuthNone, nil
		}
		t.Endpoints[ep.Name] = te
	}
	for _, d := range deps {
		te := t.Endpoints[d.Endpoint]
		if te == nil {
			continue
		}
		k := fleet.Key{Endpoint: d.Endpoint, Deployment: d.Name}
		td := c.clusterTable(k)
		if td == nil {
			td = c.fleet.Table(k)
		}
		if td == nil {
			td = &table.Deployment{Name: d.Name}
		}
		te.Deployments[d.Name] = td
	}
	c.cfg.Publish(t)
}

// tableAuthMode maps a spec auth_mode (the table spells them as the YAML does) to the
// routing table's; an unknown one becomes aml_token, which refuses keys, so a damaged
// spec never opens an endpoint.
func tableAuthMode(mode string) string {
	switch mode {
	case spec.DefaultAuthMode:
		return table.AuthKey
	case table.AuthAADToken:
		return table.AuthAADToken
	default:
		return table.AuthAMLToken
	}
}

// onCluster reports whether an endpoint runs on a Kubernetes compute.
func onCluster(ep *store.Endpoint) bool {
	var sp spec.Endpoint
	return json.Unmarshal(ep.Spec, &sp) == nil && computeOf(&sp) != ""
}
