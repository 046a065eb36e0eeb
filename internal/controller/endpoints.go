package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// AuthMode returns the auth_mode of a stored endpoint (key when the spec sets none or
// cannot be read).
func AuthMode(e *store.Endpoint) string {
	var sp struct {
		AuthMode string `json:"auth_mode"`
	}
	if json.Unmarshal(e.Spec, &sp) != nil || sp.AuthMode == "" {
		return spec.DefaultAuthMode
	}
	return sp.AuthMode
}

// CreateEndpoint stores a new endpoint with fresh keys, in the local namespace when
// local is set. One server keeps one table of endpoint names: a name taken in either
// namespace is refused with EndpointAlreadyExists.
func (c *Controller) CreateEndpoint(ctx context.Context, ep *spec.Endpoint, local bool) (*store.Endpoint, error) {
	if name := computeOf(ep); name != "" {
		if _, err := c.clusterTarget(ctx, name); err != nil {
			return nil, err
		}
	}
	if len(ep.Traffic) > 0 {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "traffic",
			Message: "traffic cannot be set when an endpoint is created, because it has no deployments yet: create the deployments, then run `berth online-endpoint update -n " + ep.Name + ` --traffic "blue=100"` + "`"}
	}
	if len(ep.MirrorTraffic) > 0 {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "mirror_traffic",
			Message: "mirror_traffic cannot be set when an endpoint is created: set it later with `berth online-endpoint update --mirror-traffic`"}
	}
	eps, err := c.cfg.Store.ListEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.cfg.Quota.Endpoints(len(eps)); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(ep)
	if err != nil {
		return nil, err
	}
	primary, err := auth.NewKey()
	if err != nil {
		return nil, err
	}
	secondary, err := auth.NewKey()
	if err != nil {
		return nil, err
	}
	rec := &store.Endpoint{Name: ep.Name, Spec: raw, Traffic: map[string]int{}, MirrorTraffic: map[string]int{},
		PrimaryKey: primary, SecondaryKey: secondary, State: wire.StateSucceeded, Local: local}
	if err := c.cfg.Store.CreateEndpoint(ctx, rec); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, c.endpointExists(ctx, ep.Name, local)
		}
		return nil, fmt.Errorf("create endpoint: %w", err)
	}
	c.endOp(ctx, c.startOp(ctx, ep.Name, "", opCreate), nil)
	c.publish(ctx)
	return c.cfg.Store.GetEndpoint(ctx, ep.Name)
}

// GetEndpoint returns the stored endpoint or EndpointNotFound.
func (c *Controller) GetEndpoint(ctx context.Context, name string) (*store.Endpoint, error) {
	ep, err := c.cfg.Store.GetEndpoint(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, endpointNotFound(name)
	}
	return ep, err
}

// ListEndpoints returns the endpoints of one namespace: the local ones when local is
// set, else the managed ones.
func (c *Controller) ListEndpoints(ctx context.Context, local bool) ([]*store.Endpoint, error) {
	eps, err := c.cfg.Store.ListEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(eps, func(e *store.Endpoint) bool { return e.Local != local }), nil
}

func endpointNotFound(name string) *diag.Error {
	return &diag.Error{Code: diag.EndpointNotFound, Target: name,
		Message: fmt.Sprintf("endpoint %q does not exist: list endpoints with `berth online-endpoint list`, or create it with `berth online-endpoint create -f endpoint.yml`", name)}
}

func deploymentNotFound(endpoint, name string) *diag.Error {
	return &diag.Error{Code: diag.DeploymentNotFound, Target: name,
		Message: fmt.Sprintf("deployment %q does not exist on endpoint %q: list them with `berth online-deployment list -e %s`", name, endpoint, endpoint)}
}

// EndpointChange is a change to an endpoint; nil fields are left as they are.
type EndpointChange struct {
	Spec          *spec.Endpoint
	Traffic       map[string]int
	MirrorTraffic map[string]int
}

// UpdateEndpoint applies a change. Traffic must name existing deployments and sum to 0 or 100;
// a rejected change leaves the endpoint as it was.
func (c *Controller) UpdateEndpoint(ctx context.Context, name string, ch EndpointChange) (*store.Endpoint, error) {
	if _, err := c.GetEndpoint(ctx, name); err != nil {
		return nil, err
	}
	deps, err := c.cfg.Store.ListDeployments(ctx, name)
	if err != nil {
		return nil, err
	}
	exists := map[string]bool{}
	for _, d := range deps {
		exists[d.Name] = true
	}
	if err := checkTrafficChange(name, ch, exists); err != nil {
		return nil, err
	}
	rec, err := c.cfg.Store.UpdateEndpoint(ctx, name, func(e *store.Endpoint) error {
		return applyEndpointChange(e, ch, exists)
	})
	rec, err = c.updated(ctx, name, rec, err)
	if err == nil {
		c.endOp(ctx, c.startOp(ctx, name, "", opUpdate), nil)
	}
	return rec, err
}

// checkTrafficChange validates new traffic and mirror maps against the deployments.
func checkTrafficChange(name string, ch EndpointChange, exists map[string]bool) error {
	var problems []*diag.Error
	check := func(field string, m map[string]int) {
		for dep := range m {
			if !exists[dep] {
				problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: field + "." + dep,
					Message: fmt.Sprintf("deployment %q does not exist on endpoint %q: create it first, or remove it from %s", dep, name, field)})
			}
		}
	}
	if ch.Traffic != nil {
		if err := spec.ValidateTraffic(ch.Traffic); err != nil {
			return err
		}
		check("traffic", ch.Traffic)
	}
	if ch.MirrorTraffic != nil {
		if err := spec.ValidateMirror(ch.MirrorTraffic); err != nil {
			return err
		}
		check("mirror_traffic", ch.MirrorTraffic)
	}
	if len(problems) > 0 {
		return &diag.Error{Code: diag.BadArgument, Message: fmt.Sprintf("endpoint %q was not changed", name), Details: problems}
	}
	return nil
}

// applyEndpointChange changes a stored endpoint inside its update transaction.
func applyEndpointChange(e *store.Endpoint, ch EndpointChange, exists map[string]bool) error {
	if ch.Spec != nil {
		raw, err := json.Marshal(ch.Spec)
		if err != nil {
			return err
		}
		e.Spec = raw
		if len(ch.Spec.Traffic) > 0 && ch.Traffic == nil {
			ch.Traffic = ch.Spec.Traffic
		}
	}
	if ch.Traffic != nil {
		t := maps.Clone(ch.Traffic)
		// Azure keeps every deployment in the traffic map; one not named gets 0.
		for dep := range exists {
			if _, ok := t[dep]; !ok {
				t[dep] = 0
			}
		}
		e.Traffic = t
	}
	if ch.MirrorTraffic != nil {
		e.MirrorTraffic = map[string]int{}
		for k, v := range ch.MirrorTraffic {
			if v > 0 {
				e.MirrorTraffic[k] = v
			}
		}
	}
	for dep, pct := range e.MirrorTraffic {
		if e.Traffic[dep] > 0 {
			return &diag.Error{Code: diag.BadArgument, Target: "mirror_traffic." + dep,
				Message: fmt.Sprintf("deployment %q cannot get live traffic (%d%%) and mirror traffic (%d%%) at once: set one of them to 0", dep, e.Traffic[dep], pct)}
		}
	}
	return nil
}

// RegenerateKey replaces the primary or secondary key. An endpoint that does not use
// keys is refused: its tokens are simply fetched again.
func (c *Controller) RegenerateKey(ctx context.Context, name, keyType string) (*store.Endpoint, error) {
	key, err := auth.NewKey()
	if err != nil {
		return nil, err
	}
	rec, err := c.cfg.Store.UpdateEndpoint(ctx, name, func(e *store.Endpoint) error {
		if e.Local {
			return LocalNeedsNoKey(name)
		}
		if mode := AuthMode(e); mode != spec.DefaultAuthMode {
			return &diag.Error{Code: diag.BadArgument, Target: name,
				Message: fmt.Sprintf("endpoint %q does not use keys for authentication (auth_mode: %s), so it has none to regenerate: get a new token with `berth online-endpoint get-credentials -n %s`", name, mode, name)}
		}
		switch keyType {
		case "primary", "Primary":
			e.PrimaryKey = key
		case "secondary", "Secondary":
			e.SecondaryKey = key
		default:
			return &diag.Error{Code: diag.BadArgument, Target: "keyType",
				Message: fmt.Sprintf("key type %q is not one of primary, secondary", keyType)}
		}
		return nil
	})
	return c.updated(ctx, name, rec, err)
}

// DeleteEndpoint stops and deletes every deployment of the endpoint, then the endpoint.
func (c *Controller) DeleteEndpoint(ctx context.Context, name string) error {
	if _, err := c.GetEndpoint(ctx, name); err != nil {
		return err
	}
	if err := c.busy(ctx, name); err != nil {
		return err
	}
	op := c.startOp(ctx, name, "", opDelete)
	err := c.deleteEndpoint(ctx, name)
	c.endOp(ctx, op, err)
	return err
}

func (c *Controller) deleteEndpoint(ctx context.Context, name string) error {
	if _, err := c.cfg.Store.UpdateEndpoint(ctx, name, func(e *store.Endpoint) error {
		e.State = wire.StateDeleting
		return nil
	}); err != nil {
		return err
	}
	deps, err := c.cfg.Store.ListDeployments(ctx, name)
	if err != nil {
		return err
	}
	for _, d := range deps {
		k := fleet.Key{Endpoint: d.Endpoint, Deployment: d.Name}
		c.stopDeployment(ctx, k)
		if err := c.removeCluster(ctx, k); err != nil {
			return err
		}
	}
	if err := c.cfg.Store.DeleteEndpoint(ctx, name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	c.removeFiles(fleet.Key{Endpoint: name})
	c.publish(ctx)
	return nil
}

// removeFiles deletes the instance folders of a deployment, or of a whole endpoint
// when k.Deployment is "".
func (c *Controller) removeFiles(k fleet.Key) {
	if err := os.RemoveAll(c.instancesDir(k)); err != nil {
		c.log.Warn("remove instance files", "endpoint", k.Endpoint, "deployment", k.Deployment, "err", err)
	}
}

// updated finishes an endpoint change: it maps a missing endpoint to EndpointNotFound
// and publishes the new routing table.
func (c *Controller) updated(ctx context.Context, name string, rec *store.Endpoint, err error) (*store.Endpoint, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, endpointNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	c.publish(ctx)
	return rec, nil
}
