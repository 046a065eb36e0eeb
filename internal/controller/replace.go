package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// deploymentExists is the answer to creating a deployment whose name is taken by one
// that is not Failed.
func deploymentExists(endpoint, name string) *diag.Error {
	return &diag.Error{Code: diag.DeploymentAlreadyExists, Target: name,
		Message: fmt.Sprintf("deployment %q already exists on endpoint %q (create replaces a deployment only when it is Failed): change it with `berth online-deployment update -f <file>`, or choose another name", name, endpoint)}
}

// replaceFailed is a create over a Failed deployment of the same name: as if the
// failed one were deleted and the new one created, in one call. Its instances (a
// crash-looping one may still run some) stop, its instance folders and logs go, and
// the stored record takes the new spec as Creating. Its share of mirror traffic and
// its zero-weight traffic entry stay. A Failed deployment that still has live traffic
// is not replaced: the instances of its last good rollout serve that traffic, and
// `update` rolls the fix out without dropping them first.
func (c *Controller) replaceFailed(ctx context.Context, in DeploymentInput, raw json.RawMessage) (*store.Deployment, error) {
	d := in.Spec
	ep, err := c.GetEndpoint(ctx, d.EndpointName)
	if err != nil {
		return nil, err
	}
	if w := ep.Traffic[d.Name]; w > 0 {
		return nil, &diag.Error{Code: diag.DeploymentAlreadyExists, Target: d.Name,
			Message: fmt.Sprintf("deployment %q already exists on endpoint %q; it is Failed but still receives %d%% of the traffic, which its earlier instances serve, so create does not replace it: roll the fix out with `berth online-deployment update -f <file>`, which keeps them serving until the new instances are ready", d.Name, d.EndpointName, w)}
	}
	rec, err := c.cfg.Store.UpdateDeployment(ctx, d.EndpointName, d.Name, func(r *store.Deployment) error {
		if r.State != wire.StateFailed {
			return deploymentExists(d.EndpointName, d.Name) // it changed since admit read it
		}
		r.Spec, r.ModelArtifact, r.CodeArtifact = raw, in.ModelArtifact, in.CodeArtifact
		r.State, r.Error, r.AllTraffic = wire.StateCreating, nil, in.AllTraffic
		r.Python, r.Serving = "", nil // a new deployment: built on the server's interpreter, nothing of the old one kept
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		// Deleted meanwhile: create it as new.
		return c.CreateDeployment(ctx, in)
	}
	if err != nil {
		return nil, err
	}
	k := fleet.Key{Endpoint: d.EndpointName, Deployment: d.Name}
	c.stopDeployment(ctx, k)
	c.removeFiles(k)
	c.publish(ctx)
	c.startProvision(ctx, k, c.newGeneration(k, false), c.startOp(ctx, k.Endpoint, k.Deployment, opCreate))
	return rec, nil
}
